// What herd-ctld answers to StatsRequest (herd-web's /metrics): live counts, and the histograms and
// counters it accumulates as jobs are submitted, wait, start and are evicted.
#include <algorithm>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/configs.h"
#include "tests/support/in_process_cluster.h"

namespace herd::testing {
namespace {

using model::JobState;

constexpr uint32_t kAlice = 1000;
constexpr uint32_t kBob = 1001;

int64_t Total(const proto::Histogram& h) {
  int64_t n = 0;
  for (int64_t c : h.counts) n += c;
  return n;
}

TEST(StatsTest, ReclaimIsCountedWithTheGpuTimeItCost) {
  auto c = InProcessCluster::Started({kTwoProjects, {{"n1"}}});
  ASSERT_NE(c, nullptr);
  for (int i = 0; i < 4; ++i) c->Submit(kAlice, Spec(1, "train", "a"));
  c->Cycle();
  c->Advance(6 * 60 * 1000);  // a's four jobs run six minutes
  const model::JobId b = c->Submit(kBob, Spec(2, "train", "b"));
  c->Cycle();
  c->Cycle();
  ASSERT_EQ(c->Job(b).state, JobState::kRunning) << c->Job(b).reason;

  auto stats = c->Client(kBob).Call<proto::StatsReply>(proto::StatsRequest{});
  ASSERT_TRUE(stats.ok()) << stats.status().message();
  EXPECT_EQ(stats->submitted_jobs, 5);
  ASSERT_EQ(stats->evictions.size(), 3u);
  const proto::EvictionCount& reclaim = stats->evictions[0];
  EXPECT_EQ(reclaim.kind, "reclaim");
  EXPECT_EQ(reclaim.evictions, 2);  // two 1-GPU jobs of a, for b's 2 deserved GPUs
  EXPECT_GE(reclaim.gpu_milli_seconds, 2 * 1000 * 360);
  EXPECT_LE(reclaim.gpu_milli_seconds, 2 * 1000 * 365);
  EXPECT_EQ(stats->evictions[1].evictions + stats->evictions[2].evictions, 0);
  // Five starts, each after a wait of a few seconds at most.
  ASSERT_EQ(stats->waits.size(), 2u);
  EXPECT_EQ(stats->waits[0].project, "a");
  EXPECT_EQ(Total(stats->waits[0].waits), 4);
  EXPECT_EQ(stats->waits[1].project, "b");
  EXPECT_EQ(stats->waits[1].waits.counts[0], 1);  // <= 10 s
  EXPECT_GT(Total(stats->cycles), 0);
  EXPECT_EQ(stats->cycles.counts.size(), stats->cycle_bounds_us.size() + 1);
  EXPECT_GT(stats->rss_bytes, 0);
  // Two of a's jobs and b's run: 4 GPUs of n1 held, 2 by each project.
  int64_t running = 0, pending = 0;
  for (const auto& j : stats->jobs) {
    running += j.state == "RUNNING" ? j.jobs : 0;
    pending += j.state == "PENDING" ? j.jobs : 0;
  }
  EXPECT_EQ(running, 3);
  EXPECT_EQ(pending, 2);
  for (const auto& g : stats->gpus) {
    EXPECT_EQ(g.node, "n1");
    EXPECT_EQ(g.allocated_milli, g.project.empty() ? 4000 : 2000) << g.project;
    if (g.project.empty()) {
      EXPECT_EQ(g.gpus, 4);
    }
  }
  ASSERT_EQ(stats->nodes.size(), 1u);
  EXPECT_EQ(stats->nodes[0].state, "UP");
}

}  // namespace
}  // namespace herd::testing
