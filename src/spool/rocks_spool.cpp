#include "spool/rocks_spool.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/write_batch.h>

#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <future>

namespace sluice::spool {
namespace {

constexpr const char* kMetaCf = "meta";
constexpr const char* kBodyCf = "body";

// 8-byte big-endian: byte order = id order = arrival order.
struct Key {
  explicit Key(MessageId id) {
    for (int i = 7; i >= 0; --i) {
      bytes[i] = static_cast<char>(id & 0xff);
      id >>= 8;
    }
  }
  rocksdb::Slice slice() const { return {bytes, sizeof bytes}; }
  char bytes[8];
};

MessageId key_to_id(const rocksdb::Slice& s) {
  MessageId id = 0;
  for (size_t i = 0; i < s.size() && i < 8; ++i) id = (id << 8) | static_cast<uint8_t>(s[i]);
  return id;
}

Unexpected<Error> rocks_error(const char* what, const rocksdb::Status& s) {
  return error(std::string("spool: ") + what + ": " + s.ToString());
}

}  // namespace

RocksSpool::RocksSpool(const RocksSpoolOptions& options) : options_(options) {}

Result<std::unique_ptr<RocksSpool>> RocksSpool::open(const RocksSpoolOptions& options) {
  std::unique_ptr<RocksSpool> spool(new RocksSpool(options));

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  // A torn last WAL record after a crash is dropped; every acknowledged write was synced whole.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;

  rocksdb::ColumnFamilyOptions meta_options;
  rocksdb::ColumnFamilyOptions body_options;
  body_options.enable_blob_files = true;  // bodies: written once, read once, never compacted
  body_options.min_blob_size = 512;
  body_options.enable_blob_garbage_collection = true;
  body_options.write_buffer_size = 64 << 20;

  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
      {kMetaCf, meta_options},
      {kBodyCf, body_options}};
  rocksdb::DB* db = nullptr;
  rocksdb::Status s;
  if (options.read_only) {
    s = rocksdb::DB::OpenForReadOnly(db_options, options.path, families, &spool->handles_, &db);
  } else {
    s = rocksdb::DB::Open(db_options, options.path, families, &spool->handles_, &db);
  }
  if (!s.ok()) return rocks_error(("cannot open " + options.path).c_str(), s);
  spool->db_.reset(db);
  spool->meta_cf_ = spool->handles_[1];
  spool->body_cf_ = spool->handles_[2];

  // Ids continue after the newest stored one even if the clock went back.
  std::unique_ptr<rocksdb::Iterator> it(
      spool->db_->NewIterator(rocksdb::ReadOptions(), spool->meta_cf_));
  it->SeekToLast();
  if (it->Valid()) spool->last_id_ = key_to_id(it->key());

  if (!options.read_only) spool->writer_ = std::thread([p = spool.get()] { p->writer_loop(); });
  return spool;
}

RocksSpool::~RocksSpool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (db_ && !options_.read_only) {
    // Flush the memtables so the next start does not replay the WAL into memory.
    (void)db_->Flush(rocksdb::FlushOptions(), handles_);
  }
  for (auto* h : handles_) {
    if (db_) db_->DestroyColumnFamilyHandle(h);
  }
  handles_.clear();
  if (db_) db_->Close();
}

MessageId RocksSpool::next_id() {
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::lock_guard lock(mu_);
  last_id_ = std::max(last_id_ + 1, static_cast<MessageId>(now_us) << 12);
  return last_id_;
}

void RocksSpool::enqueue(Pending p) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(p));
      cv_.notify_one();
      return;
    }
  }
  p.done(error("spool: shutting down"));
}

void RocksSpool::store(MessageMeta meta, Body body, Done done) {
  enqueue(Pending{Op::kStore, std::move(meta), std::move(body), std::move(done)});
}

void RocksSpool::update(MessageMeta meta, Done done) {
  enqueue(Pending{Op::kUpdate, std::move(meta), Body{}, std::move(done)});
}

void RocksSpool::remove(MessageId id, Done done) {
  MessageMeta m;
  m.id = id;
  enqueue(Pending{Op::kRemove, std::move(m), Body{}, std::move(done)});
}

void RocksSpool::writer_loop() {
  std::deque<Pending> group;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      group.swap(queue_);  // everything that arrived while the last sync ran
    }
    std::vector<Status> results;
    write_group(group, results);
    for (size_t i = 0; i < group.size(); ++i) {
      if (group[i].done) group[i].done(results[i]);
    }
    group.clear();
  }
}

Status RocksSpool::check_space(uint64_t bytes) const {
  if (options_.min_free_bytes == 0) return ok_status();
  struct statvfs st {};
  if (statvfs(options_.path.c_str(), &st) != 0) return ok_status();  // cannot tell: let RocksDB try
  const uint64_t free = uint64_t(st.f_bavail) * st.f_frsize;
  const uint64_t need = options_.min_free_bytes + 2 * bytes;
  if (free >= need) return ok_status();
  return error("spool: disk full: " + std::to_string(free) + " bytes free, " + std::to_string(need) +
               " needed (spool.min_free_space + twice the messages)");
}

void RocksSpool::write_group(std::deque<Pending>& group, std::vector<Status>& results) {
  results.assign(group.size(), ok_status());
  std::vector<bool> include(group.size(), true);
  uint64_t bytes = 0;
  for (const auto& p : group) {
    if (p.op == Op::kStore) bytes += p.body.size() + 256;
  }
  // The space guard holds back new messages only.
  bool short_of_space = false;
  if (auto st = check_space(bytes); !st) {
    short_of_space = true;
    for (size_t i = 0; i < group.size(); ++i) {
      if (group[i].op != Op::kStore) continue;
      include[i] = false;
      results[i] = st;
    }
  }
  Status st = write_batch(group, include);
  if (st && short_of_space) {
    // A removed message's body leaves the disk only when its memtable is flushed (the WAL that
    // holds it is then deleted): short of space, flush as removes come, at most once a second.
    const bool removed = std::any_of(group.begin(), group.end(),
                                     [](const Pending& p) { return p.op == Op::kRemove; });
    const auto now = std::chrono::steady_clock::now();
    if (removed && now - last_flush_ >= std::chrono::seconds(1)) {
      last_flush_ = now;
      rocksdb::FlushOptions fo;
      fo.wait = false;
      fo.allow_write_stall = true;
      (void)db_->Flush(fo, {meta_cf_, body_cf_});
    }
  }
  if (!st) {
    // A write error fails the stores (their clients get 452 and keep the message); the
    // updates and removes get one more try on their own, after RocksDB resumed.
    for (size_t i = 0; i < group.size(); ++i) {
      if (!include[i]) continue;
      results[i] = st;
      if (group[i].op == Op::kStore) include[i] = false;
    }
    if (std::find(include.begin(), include.end(), true) != include.end()) {
      const Status again = write_batch(group, include);
      for (size_t i = 0; i < group.size(); ++i) {
        if (include[i]) results[i] = again;
      }
    }
  }
}

Status RocksSpool::write_batch(std::deque<Pending>& group, const std::vector<bool>& include) {
  if (needs_resume_) {
    // After an I/O error RocksDB refuses writes until resumed.
    if (auto s = db_->Resume(); !s.ok())
      return rocks_error("write refused after an earlier error", s);
    needs_resume_ = false;
  }
  rocksdb::WriteBatch batch;
  uint64_t stored = 0;
  for (size_t i = 0; i < group.size(); ++i) {
    if (!include[i]) continue;
    auto& p = group[i];
    const Key key(p.meta.id);
    switch (p.op) {
      case Op::kStore: {
        p.meta.size = p.body.size();
        batch.Put(meta_cf_, key.slice(), encode(p.meta));
        const rocksdb::Slice parts[2] = {p.body.prefix, p.body.data};
        const rocksdb::Slice key_slice = key.slice();
        batch.Put(body_cf_, rocksdb::SliceParts(&key_slice, 1), rocksdb::SliceParts(parts, 2));
        ++stored;
        break;
      }
      case Op::kUpdate:
        batch.Put(meta_cf_, key.slice(), encode(p.meta));
        break;
      case Op::kRemove:
        batch.Delete(meta_cf_, key.slice());
        batch.Delete(body_cf_, key.slice());
        break;
      case Op::kBarrier:
        break;
    }
  }
  if (batch.Count() == 0) return ok_status();
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  const auto began = std::chrono::steady_clock::now();
  const rocksdb::Status s = db_->Write(wo, &batch);
  if (!s.ok()) {
    needs_resume_ = true;
    return rocks_error("write failed", s);
  }
  if (options_.on_sync)
    options_.on_sync(std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
  syncs_.fetch_add(1, std::memory_order_relaxed);
  stored_.fetch_add(stored, std::memory_order_relaxed);
  return ok_status();
}

void RocksSpool::drain() {
  std::promise<void> written;
  auto future = written.get_future();
  // Callbacks run in queue order: when this one runs, every earlier one has.
  enqueue(Pending{Op::kBarrier, MessageMeta{}, Body{},
                  [&written](const Status&) { written.set_value(); }});
  future.wait();
}

Result<MessageMeta> RocksSpool::read_meta(MessageId id) {
  std::string value;
  const Key key(id);
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, key.slice(), &value);
  if (!s.ok()) return rocks_error(("read metadata " + format_id(id)).c_str(), s);
  return decode(value);
}

Result<std::string> RocksSpool::read_body(MessageId id) {
  std::string value;
  const Key key(id);
  const rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), body_cf_, key.slice(), &value);
  if (!s.ok()) return rocks_error(("read body " + format_id(id)).c_str(), s);
  return value;
}

Result<uint64_t> RocksSpool::recover(const std::function<void(MessageMeta)>& each) {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // one pass over everything: do not evict what is hot
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, meta_cf_));
  uint64_t n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto meta = decode(std::string_view(it->value().data(), it->value().size()));
    if (!meta) {
      return error("spool: message " + format_id(key_to_id(it->key())) + ": " +
                   meta.error().message);
    }
    each(std::move(*meta));
    ++n;
  }
  if (!it->status().ok()) return rocks_error("recovery scan failed", it->status());
  return n;
}

// State lives in the default column family, apart from messages (recovery never sees it).
Status RocksSpool::put_state(const std::string& key, const std::string& value) {
  rocksdb::WriteOptions wo;
  wo.sync = false;
  const rocksdb::Status s = db_->Put(wo, db_->DefaultColumnFamily(), key, value);
  if (!s.ok()) return rocks_error(("write state " + key).c_str(), s);
  return ok_status();
}

Result<std::vector<std::pair<std::string, std::string>>> RocksSpool::read_state(
    const std::string& prefix) {
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), db_->DefaultColumnFamily()));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next())
    out.emplace_back(it->key().ToString(), it->value().ToString());
  if (!it->status().ok()) return rocks_error("state scan failed", it->status());
  return out;
}

}  // namespace sluice::spool
