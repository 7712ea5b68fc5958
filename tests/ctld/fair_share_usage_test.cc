// Time-decayed fair share through herd-ctld ([scheduler] fair_share_half_life,
// ctld/recent_usage.cc): each queue's GPU use accumulates cycle by cycle, decays, lowers its
// over-quota weight, is recorded in the store and comes back after a restart less the decay of the
// time herd-ctld was down; with a half-life of 0 nothing is counted.
#include <cmath>

#include "ctld/sched/usage.h"
#include "ctld/store/store.h"
#include "gtest/gtest.h"
#include "tests/support/in_process_cluster.h"

namespace herd::testing {
namespace {

constexpr uint32_t kAlice = 1000;
constexpr int64_t kHalfLife = 600;

std::string Toml(const std::string& half_life) {
  return "[scheduler]\nfair_share_half_life = " + half_life +
         "\n[projects.vision]\nmembers = [\"*\"]\n[projects.nlp]\nmembers = [\"*\"]\n";
}

proto::ProjectStatus Project(InProcessCluster& c, const std::string& name) {
  auto reply = c.Client(kAlice).Call<proto::ProjectsReply>(proto::ProjectsRequest{});
  EXPECT_TRUE(reply.ok()) << reply.status().message();
  if (reply.ok()) {
    for (const auto& p : reply->projects) {
      if (p.name == name) return p;
    }
  }
  ADD_FAILURE() << "no project " << name;
  return {};
}

std::map<std::string, store::QueueUsage> Stored(InProcessCluster& c) {
  auto store = store::Store::Open(c.database());
  EXPECT_TRUE(store.ok()) << store.status().message();
  if (!store.ok()) return {};
  auto usage = (*store)->LoadQueueUsage();
  EXPECT_TRUE(usage.ok()) << usage.status().message();
  return usage.ok() ? *usage : std::map<std::string, store::QueueUsage>{};
}

TEST(FairShareUsageTest, UsageAccumulatesLowersTheWeightAndSurvivesARestartLessTheDecay) {
  auto c = InProcessCluster::Started({Toml("\"10m\"")});
  ASSERT_NE(c, nullptr);
  const model::JobId id = c->SubmitRunning(kAlice, Spec(2, "train", "vision"));
  ASSERT_NE(id, 0);
  const int64_t started = c->Job(id).start_time;
  c->Advance(120'000);

  // Two GPUs for about two minutes (counted from the cycle after the start), decayed.
  const proto::ProjectStatus vision = Project(*c, "vision");
  const double expected =
      sched::DecayUsage(0, 2, c->clock().NowSeconds() - started, kHalfLife);
  EXPECT_NEAR(vision.usage_gpu_seconds, expected, 2 * 2.0) << c->log();
  EXPECT_GT(vision.usage_gpu_seconds, 200);
  EXPECT_EQ(vision.over_quota_weight, 1);
  EXPECT_LT(vision.effective_weight, 0.5);  // all the usage among its siblings is its own
  const proto::ProjectStatus nlp = Project(*c, "nlp");
  EXPECT_EQ(nlp.usage_gpu_seconds, 0);
  EXPECT_EQ(nlp.effective_weight, 1);

  // Recorded once a minute; herd-ctld down for one half-life keeps exactly half of that record.
  const auto stored = Stored(*c);
  ASSERT_TRUE(stored.count("vision"));
  const store::QueueUsage record = stored.at("vision");
  EXPECT_GT(record.gpu_seconds, 100);
  EXPECT_LE(record.gpu_seconds, vision.usage_gpu_seconds);
  c->StopController();
  c->clock().Advance((record.as_of + kHalfLife - c->clock().NowSeconds()) * 1000);
  ASSERT_TRUE(c->StartController().ok());
  EXPECT_DOUBLE_EQ(Project(*c, "vision").usage_gpu_seconds, record.gpu_seconds / 2);
  EXPECT_EQ(Project(*c, "nlp").usage_gpu_seconds, 0);

  // The job runs on: its use is counted again from there.
  c->Advance(c->config().scheduler.heartbeat_interval_ms + 10'000);
  EXPECT_GT(Project(*c, "vision").usage_gpu_seconds, record.gpu_seconds / 2);
}

TEST(FairShareUsageTest, ZeroHalfLifeCountsNothingAndKeepsConfiguredWeights) {
  auto c = InProcessCluster::Started({Toml("0")});
  ASSERT_NE(c, nullptr);
  ASSERT_NE(c->SubmitRunning(kAlice, Spec(2, "train", "vision")), 0);
  c->Advance(70'000);
  const proto::ProjectStatus vision = Project(*c, "vision");
  EXPECT_EQ(vision.usage_gpu_seconds, 0);
  EXPECT_EQ(vision.effective_weight, vision.over_quota_weight);
  EXPECT_TRUE(Stored(*c).empty());
}

}  // namespace
}  // namespace herd::testing
