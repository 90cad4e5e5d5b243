#include "spool/rocks_spool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>
#include <vector>

namespace sluice::spool {
namespace {

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/sluice-spool-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

Status store_sync(Spool& s, MessageMeta m, Body b) {
  std::promise<Status> p;
  auto f = p.get_future();
  s.store(std::move(m), std::move(b), [&p](const Status& st) { p.set_value(st); });
  return f.get();
}

MessageMeta meta_for(Spool& s, const std::string& rcpt) {
  MessageMeta m;
  m.id = s.next_id();
  m.sender = "s@example.com";
  m.recipients = {{rcpt, 0, "", ""}};
  return m;
}

TEST(RocksSpool, StoresRecoversAndRemoves) {
  TempDir dir;
  std::vector<MessageId> ids;
  {
    auto spool = RocksSpool::open({dir.path});
    ASSERT_TRUE(spool.ok()) << spool.error().message;
    for (int i = 0; i < 3; ++i) {
      MessageMeta m = meta_for(**spool, "r" + std::to_string(i) + "@example.org");
      ids.push_back(m.id);
      ASSERT_TRUE(
          store_sync(**spool, m, Body{"Received: x\r\n", "body " + std::to_string(i)}).ok());
    }
    EXPECT_EQ(*(*spool)->read_body(ids[1]), "Received: x\r\nbody 1");
    std::promise<Status> removed;
    (*spool)->remove(ids[0], [&](const Status& st) { removed.set_value(st); });
    ASSERT_TRUE(removed.get_future().get().ok());
    MessageMeta changed = *(*spool)->read_meta(ids[2]);
    changed.attempts = 2;
    std::promise<Status> updated;
    (*spool)->update(changed, [&](const Status& st) { updated.set_value(st); });
    ASSERT_TRUE(updated.get_future().get().ok());
  }
  // Reopen: what was stored and not removed comes back, in arrival order, with its size.
  auto spool = RocksSpool::open({dir.path});
  ASSERT_TRUE(spool.ok());
  std::vector<MessageMeta> seen;
  auto n = (*spool)->recover([&](MessageMeta m) { seen.push_back(std::move(m)); });
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].id, ids[1]);
  EXPECT_EQ(seen[1].id, ids[2]);
  EXPECT_EQ(seen[0].size, std::string("Received: x\r\nbody 1").size());
  EXPECT_EQ(seen[1].recipients[0].address, "r2@example.org");
  EXPECT_EQ(seen[1].attempts, 2u);
  EXPECT_FALSE((*spool)->read_meta(ids[0]).ok());
  // Ids keep increasing after a restart.
  EXPECT_GT((*spool)->next_id(), ids[2]);
}

TEST(RocksSpool, StateLivesBesideMessagesAndSurvivesReopening) {
  TempDir dir;
  {
    auto spool = RocksSpool::open({dir.path});
    ASSERT_TRUE(spool.ok());
    ASSERT_TRUE(store_sync(**spool, meta_for(**spool, "a@example.com"), Body{"", "x"}).ok());
    ASSERT_TRUE((*spool)->put_state("shaping/|site-b", "v1 b").ok());
    ASSERT_TRUE((*spool)->put_state("shaping/|site-a", "v1 a").ok());
    ASSERT_TRUE((*spool)->put_state("shaping/|site-a", "v1 a2").ok());  // replaces
    ASSERT_TRUE((*spool)->put_state("other/x", "y").ok());
  }
  auto spool = RocksSpool::open({dir.path});
  ASSERT_TRUE(spool.ok());
  auto st = (*spool)->read_state("shaping/");
  ASSERT_TRUE(st.ok());
  ASSERT_EQ(st->size(), 2u);
  EXPECT_EQ((*st)[0], (std::pair<std::string, std::string>{"shaping/|site-a", "v1 a2"}));
  EXPECT_EQ((*st)[1].first, "shaping/|site-b");
  // Recovery sees messages only.
  uint64_t n = 0;
  ASSERT_TRUE((*spool)->recover([&](MessageMeta) { ++n; }).ok());
  EXPECT_EQ(n, 1u);
}

TEST(RocksSpool, ConcurrentStoresShareSyncs) {
  TempDir dir;
  auto spool = RocksSpool::open({dir.path});
  ASSERT_TRUE(spool.ok());
  constexpr int kThreads = 8, kEach = 50;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        if (store_sync(**spool, meta_for(**spool, "x@example.org"),
                       Body{"", std::string(4096, 'b')})
                .ok())
          ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads * kEach);
  EXPECT_EQ((*spool)->stored_count(), uint64_t(kThreads * kEach));
  // Group commit: with 8 writers waiting on syncs, groups form (fewer syncs than messages).
  EXPECT_LT((*spool)->sync_count(), (*spool)->stored_count());
  uint64_t n = 0;
  ASSERT_TRUE((*spool)->recover([&](MessageMeta) { ++n; }).ok());
  EXPECT_EQ(n, uint64_t(kThreads * kEach));
}

TEST(RocksSpool, ReadOnlyOpenSeesStoredMessages) {
  TempDir dir;
  {
    auto spool = RocksSpool::open({dir.path});
    ASSERT_TRUE(store_sync(**spool, meta_for(**spool, "a@b.example"), Body{"", "x"}).ok());
  }
  auto ro = RocksSpool::open({dir.path, /*read_only=*/true});
  ASSERT_TRUE(ro.ok()) << ro.error().message;
  uint64_t n = 0;
  ASSERT_TRUE((*ro)->recover([&](MessageMeta) { ++n; }).ok());
  EXPECT_EQ(n, 1u);
}

TEST(RocksSpool, OpenFailureIsAnError) {
  auto spool = RocksSpool::open({"/proc/sluice-cannot-create-this"});
  EXPECT_FALSE(spool.ok());
}

TEST(RocksSpool, AFullDiskRefusesNewMessagesOnlyAndFailuresStayPerOperation) {
  TempDir dir;
  MessageId kept = 0, gone = 0;
  {
    auto spool = RocksSpool::open({dir.path});
    ASSERT_TRUE(spool.ok()) << spool.error().message;
    MessageMeta a = meta_for(**spool, "a@example.org"), b = meta_for(**spool, "b@example.org");
    kept = a.id;
    gone = b.id;
    ASSERT_TRUE(store_sync(**spool, a, Body{"", "a"}).ok());
    ASSERT_TRUE(store_sync(**spool, b, Body{"", "b"}).ok());
  }
  // No file system has this much free: every store is refused for space.
  RocksSpoolOptions full{dir.path};
  full.min_free_bytes = uint64_t{1} << 62;
  auto spool = RocksSpool::open(full);
  ASSERT_TRUE(spool.ok()) << spool.error().message;
  // One group: a store, an update and a remove queued together.
  std::promise<Status> stored, updated, removed;
  MessageMeta c = meta_for(**spool, "c@example.org");
  MessageMeta changed = *(*spool)->read_meta(kept);
  changed.attempts = 3;
  (*spool)->store(c, Body{"", "c"}, [&](const Status& st) { stored.set_value(st); });
  (*spool)->update(changed, [&](const Status& st) { updated.set_value(st); });
  (*spool)->remove(gone, [&](const Status& st) { removed.set_value(st); });
  const Status st = stored.get_future().get();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("disk full"), std::string::npos);
  EXPECT_TRUE(updated.get_future().get().ok());
  EXPECT_TRUE(removed.get_future().get().ok());
  EXPECT_EQ((*spool)->read_meta(kept)->attempts, 3u);
  EXPECT_FALSE((*spool)->read_meta(gone).ok());
  EXPECT_FALSE((*spool)->read_meta(c.id).ok());
  (*spool)->drain();  // returns once everything queued before it is done
}

}  // namespace
}  // namespace sluice::spool
