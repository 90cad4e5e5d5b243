// The RocksDB spool: metadata and bodies in two column families of one database, written in
// one synced WriteBatch per group of messages (group commit).
//
// Layout (doc/spool.md): column family "meta" maps the 8-byte big-endian id to encode(meta);
// "body" maps the same key to the body octets (blob files: bodies are written once and read
// once, so they stay out of compaction). Ids are time-ordered, so iteration is arrival order.
//
// Threads: one writer thread owns the write path. store() queues the request; the writer takes
// everything queued, writes it in one batch with sync=true, and completes the callbacks. While
// one sync is in flight the next group gathers, so the number of fsyncs adapts to the load.
// Disk space: before each group the writer checks the file system keeps min_free_bytes plus
// twice the new messages' size free (WAL now, SST later); if not, the group's stores fail and
// its updates and removes are written all the same: removes are how a full spool frees space,
// and updates are small. Failures are per operation: a store refused for space never fails the
// update or remove batched with it. After a write error the writer asks RocksDB to resume and
// writes the group's updates and removes again on their own; the next group tries everything
// again: the server keeps running and answers 452 meanwhile.
//
// Trusts: nothing it reads back is trusted — metadata that does not decode is an error.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "spool/spool.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace sluice::spool {

struct RocksSpoolOptions {
  std::string path;
  bool read_only = false;  // for `sluice spool` tools while the server is stopped
  bool sync = true;        // false only for benchmarks that measure the cost of durability
  // Refuse stores (452) when the file system would keep less than this free: RocksDB needs room
  // for flushes and compactions, and must never meet ENOSPC itself (Postfix: queue_minfree).
  uint64_t min_free_bytes = 0;
  // Called on the writer thread after each successful batch write, with its duration (seconds):
  // the metrics' spool sync histogram.
  std::function<void(double)> on_sync = nullptr;
};

class RocksSpool final : public Spool {
 public:
  static Result<std::unique_ptr<RocksSpool>> open(const RocksSpoolOptions& options);
  ~RocksSpool() override;
  RocksSpool(const RocksSpool&) = delete;
  RocksSpool& operator=(const RocksSpool&) = delete;

  void store(MessageMeta meta, Body body, Done done) override;
  MessageId next_id() override;
  void update(MessageMeta meta, Done done) override;
  void remove(MessageId id, Done done) override;
  Result<MessageMeta> read_meta(MessageId id) override;
  Result<std::string> read_body(MessageId id) override;
  Result<uint64_t> recover(const std::function<void(MessageMeta)>& each) override;
  Status put_state(const std::string& key, const std::string& value) override;
  Result<std::vector<std::pair<std::string, std::string>>> read_state(
      const std::string& prefix) override;

  // Waits until every operation queued before the call has been written (or has failed) and its
  // callback has run: at shutdown, before the objects those callbacks reach go away.
  void drain();

  // Synced writes so far, and messages they carried: the group-commit ratio.
  uint64_t sync_count() const { return syncs_.load(); }
  uint64_t stored_count() const { return stored_.load(); }

 private:
  enum class Op : uint8_t { kStore, kUpdate, kRemove, kBarrier };  // kBarrier: drain()
  struct Pending {
    Op op;
    MessageMeta meta;  // kStore, kUpdate; kRemove uses meta.id only
    Body body;         // kStore
    Done done;
  };
  void enqueue(Pending p);

  explicit RocksSpool(const RocksSpoolOptions& options);
  void writer_loop();
  // Writes the group; sets each operation's outcome in `results` (same order).
  void write_group(std::deque<Pending>& group, std::vector<Status>& results);
  std::chrono::steady_clock::time_point last_flush_{};  // writer thread only
  // One synced batch of the operations of `group` for which `include` is true.
  Status write_batch(std::deque<Pending>& group, const std::vector<bool>& include);
  Status check_space(uint64_t bytes) const;

  // Constant after open().
  RocksSpoolOptions options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // destroyed before db_; [0] is default
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;     // = handles_[1]
  rocksdb::ColumnFamilyHandle* body_cf_ = nullptr;     // = handles_[2]

  // Protected by mu_.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  MessageId last_id_ = 0;      // ids are max(last + 1, now_us << 12): unique and time-ordered
  bool needs_resume_ = false;  // the last write failed; ask RocksDB to resume first (writer only)

  std::atomic<uint64_t> syncs_{0};
  std::atomic<uint64_t> stored_{0};
  std::thread writer_;  // last: started after everything above exists
};

}  // namespace sluice::spool
