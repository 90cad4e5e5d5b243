#include "queue/fair_queue.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace sluice::queue {
namespace {

TEST(FairQueue, TenantsAreServedInTurnWhateverTheirBacklog) {
  FairQueue<std::string> q;
  for (int i = 0; i < 1000; ++i) {
    std::string job("b");  // appended: GCC 12 warns falsely on "b" + std::string
    job += std::to_string(i);
    q.push_back("blaster", job);
  }
  q.push_back("quiet", "q0");
  q.push_back("quiet", "q1");
  EXPECT_EQ(q.size(), 1002u);
  std::vector<std::string> first;
  for (int i = 0; i < 4; ++i) first.push_back(q.pop_front());
  // The quiet tenant's two jobs are among the first four, not after a thousand.
  EXPECT_EQ(first, (std::vector<std::string>{"b0", "q0", "b1", "q1"}));
  EXPECT_EQ(q.front(), "b2");
  EXPECT_EQ(q.size(), 998u);
}

TEST(FairQueue, AReturningJobIsNextInItsTenantsLine) {
  FairQueue<int> q;
  q.push_back("a", 1);
  q.push_back("a", 2);
  EXPECT_EQ(q.pop_front(), 1);
  q.push_front("a", 1);
  EXPECT_EQ(q.pop_front(), 1);
  EXPECT_EQ(q.pop_front(), 2);
  EXPECT_TRUE(q.empty());
}

TEST(FairQueue, ParkingTakesFromTheLongestLine) {
  FairQueue<int> q;
  for (int i = 0; i < 5; ++i) q.push_back("big", i);
  q.push_back("small", 100);
  EXPECT_EQ(q.pop_back(), 4);
  EXPECT_EQ(q.sizes(), (std::map<std::string, size_t>{{"big", 4}, {"small", 1}}));
  while (q.size() > 1) q.pop_back();
  EXPECT_EQ(q.pop_front(), 100);  // the small tenant kept its one job
}

TEST(FairQueue, PriorityTenantsGoFirst) {
  const std::set<std::string> priority{"receipts"};
  FairQueue<int> q;
  q.prioritize(&priority);
  for (int i = 0; i < 3; ++i) q.push_back("blaster", i);
  q.push_back("receipts", 100);
  q.push_back("receipts", 101);
  q.push_back("zeta", 200);
  EXPECT_EQ(q.pop_front(), 100);
  EXPECT_EQ(q.pop_front(), 101);
  // Then the others in turn (in name order after the one served last).
  EXPECT_EQ(q.pop_front(), 200);
  EXPECT_EQ(q.pop_front(), 0);
  EXPECT_EQ(q.pop_front(), 1);
}

}  // namespace
}  // namespace sluice::queue
