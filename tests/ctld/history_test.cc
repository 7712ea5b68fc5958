// herd-ctld's own time series (ctld/history.h): samples every [history] interval from the live
// state and the GPU activity of heartbeats, 10-minute and hourly averages, retention, a restart
// in the middle of a period, and HistoryRequest (who may ask, bad keys, bounded replies).
#include <fstream>

#include "gtest/gtest.h"
#include "tests/support/in_process_cluster.h"

namespace herd::testing {
namespace {

constexpr uint32_t kAlice = 1000;
constexpr uint32_t kBob = 1001;

constexpr char kHistoryToml[] = R"toml(
[history]
interval = "1m"
raw_retention = "10m"
ten_minute_retention = "1h"
hourly_retention = "1d"

[projects.vision]
members = ["*"]
deserved = { gpu = 2 }
)toml";

// A node whose four GPUs report `pct` percent utilization at each heartbeat.
InProcessCluster::NodeOptions FedNode(const TempDir& dir, int pct) {
  const std::string feed = dir.path() + "/gpus";
  std::ofstream out(feed);
  for (int g = 0; g < 4; ++g) out << g << " " << pct << " 1000\n";
  return {"n1", 4, 16, 64 << 10, feed};
}

int64_t Value(const proto::HistoryReply& r, const proto::HistoryPoint& p, const std::string& f) {
  for (size_t i = 0; i < r.fields.size(); ++i) {
    if (r.fields[i] == f) return p.values.at(i);
  }
  ADD_FAILURE() << "no field " << f;
  return -1;
}

Result<proto::HistoryReply> Ask(InProcessCluster& c, uint32_t uid, const std::string& series,
                                const std::string& key, int64_t ago_s, int64_t max_points = 0) {
  const int64_t now = c.clock().NowSeconds();
  return c.Client(uid).Call<proto::HistoryReply>(
      proto::HistoryRequest{series, key, now - ago_s, now + 1, max_points});
}

TEST(HistoryTest, EachIntervalSamplesTheClusterProjectNodeAndJobWithGpuUtilization) {
  TempDir dir;
  auto c = InProcessCluster::Started({kHistoryToml, {FedNode(dir, 50)}});
  ASSERT_NE(c, nullptr);
  const model::JobId id = c->SubmitRunning(kAlice, Spec(2, "train", "vision"));
  ASSERT_NE(id, 0);
  c->Advance(185 * 1000);  // samples at 1, 2 and 3 minutes

  // Bob reads the cluster's and Alice's job's: public facts, as herd jobs shows them.
  auto job = Ask(*c, kBob, "job", std::to_string(id), 600);
  ASSERT_TRUE(job.ok()) << job.status().message();
  EXPECT_EQ(job->step_s, 60);
  ASSERT_EQ(job->points.size(), 3u);
  for (const auto& p : job->points) {
    EXPECT_EQ(p.samples, 1);
    EXPECT_EQ(Value(*job, p, "allocated_milli"), 2000);
    EXPECT_EQ(Value(*job, p, "measured_milli"), 2000);
    EXPECT_EQ(Value(*job, p, "busy_milli"), 1000);  // 50% of 2 GPUs
  }
  EXPECT_EQ(job->points[1].time - job->points[0].time, 60);

  auto cluster = Ask(*c, kBob, "cluster", "", 600);
  ASSERT_TRUE(cluster.ok()) << cluster.status().message();
  ASSERT_EQ(cluster->points.size(), 3u);
  const auto& p = cluster->points.back();
  EXPECT_EQ(Value(*cluster, p, "gpus_milli"), 4000);
  EXPECT_EQ(Value(*cluster, p, "allocated_milli"), 2000);
  EXPECT_EQ(Value(*cluster, p, "measured_milli"), 4000);
  EXPECT_EQ(Value(*cluster, p, "busy_milli"), 2000);  // every GPU at 50%, held or not
  EXPECT_EQ(Value(*cluster, p, "running_jobs"), 1);
  EXPECT_EQ(Value(*cluster, p, "pending_jobs"), 0);

  auto vision = Ask(*c, kBob, "project", "vision", 600);
  ASSERT_TRUE(vision.ok()) << vision.status().message();
  ASSERT_EQ(vision->points.size(), 3u);
  EXPECT_EQ(Value(*vision, vision->points[0], "allocated_milli"), 2000);
  EXPECT_EQ(Value(*vision, vision->points[0], "busy_milli"), 1000);
  EXPECT_EQ(Value(*vision, vision->points[0], "deserved_milli"), 2000);

  auto node = Ask(*c, kBob, "node", "n1", 600);
  ASSERT_TRUE(node.ok()) << node.status().message();
  ASSERT_EQ(node->points.size(), 3u);
  EXPECT_EQ(Value(*node, node->points[0], "allocated_milli"), 2000);
  EXPECT_EQ(Value(*node, node->points[0], "up_milli"), 1000);
}

TEST(HistoryTest, AveragesTenMinutesAndHoursPrunesEachTierAndSurvivesARestart) {
  TempDir dir;
  auto c = InProcessCluster::Started({kHistoryToml, {FedNode(dir, 50)}});
  ASSERT_NE(c, nullptr);
  // The clock starts on a whole hour: samples at minutes 1, 2, ... of it.
  ASSERT_EQ(c->clock().NowSeconds() % 3600, 0);
  const model::JobId id = c->SubmitRunning(kAlice, Spec(2, "train", "vision"));
  ASSERT_NE(id, 0);
  c->Advance(25 * 60 * 1000 + 30 * 1000);  // minute 25:30
  // A restart in the middle of a 10-minute period (20-30) and of the hour: both are rebuilt from
  // what was stored, so their averages still count every sample.
  ASSERT_TRUE(c->RestartController().ok());
  c->Settle();
  c->Advance(100 * 60 * 1000);  // minute 125:30 (samples every minute after the restart)

  // The last 35 minutes: before raw retention (10 min), so 10-minute averages.
  auto ten = Ask(*c, kBob, "job", std::to_string(id), 35 * 60);
  ASSERT_TRUE(ten.ok()) << ten.status().message();
  EXPECT_EQ(ten->step_s, 600);
  ASSERT_GE(ten->points.size(), 3u);
  for (size_t i = 0; i + 1 < ten->points.size(); ++i) {  // the last is the open period
    EXPECT_EQ(ten->points[i].time % 600, 0);
    EXPECT_EQ(ten->points[i].samples, 10) << i;
    EXPECT_EQ(Value(*ten, ten->points[i], "busy_milli"), 1000);
  }
  // Three hours: before the 10-minute retention (1 h), so hourly averages; the first hour and
  // the second each hold 60 samples (the restart's period included), the open one some.
  auto hours = Ask(*c, kBob, "cluster", "", 3 * 3600);
  ASSERT_TRUE(hours.ok()) << hours.status().message();
  EXPECT_EQ(hours->step_s, 3600);
  ASSERT_EQ(hours->points.size(), 3u);
  EXPECT_EQ(hours->points[0].samples, 59);  // minutes 1..59; minute 60 opens the next hour
  EXPECT_EQ(hours->points[1].samples, 60);
  EXPECT_EQ(hours->points[2].samples, 6);
  EXPECT_EQ(Value(*hours, hours->points[1], "allocated_milli"), 2000);
  // A job's series has no hourly points: its 10-minute ones, for as long as they are kept.
  auto job_hours = Ask(*c, kBob, "job", std::to_string(id), 3 * 3600);
  ASSERT_TRUE(job_hours.ok()) << job_hours.status().message();
  EXPECT_EQ(job_hours->step_s, 600);
  EXPECT_FALSE(job_hours->points.empty());

  // Each tier keeps its retention only.
  auto store = store::Store::Open(c->database());
  ASSERT_TRUE(store.ok()) << store.status().message();
  const int64_t now = c->clock().NowSeconds();
  auto raw = (*store)->LoadHistorySince(0, 0);
  ASSERT_TRUE(raw.ok());
  ASSERT_FALSE(raw->empty());
  EXPECT_GE(raw->front().time, now - 10 * 60);
  auto tens = (*store)->LoadHistorySince(1, 0);
  ASSERT_TRUE(tens.ok());
  ASSERT_FALSE(tens->empty());
  EXPECT_GE(tens->front().time, now - 3600);
  auto hourly = (*store)->LoadHistorySince(2, 0);
  ASSERT_TRUE(hourly.ok());
  ASSERT_FALSE(hourly->empty());
  EXPECT_EQ(hourly->front().time, now - now % 3600 - 2 * 3600);
  for (const auto& r : *hourly) EXPECT_NE(r.row.kind, 3) << "a job's row in the hourly tier";
}

TEST(HistoryTest, RequestsAreCheckedAndRepliesBounded) {
  TempDir dir;
  auto c = InProcessCluster::Started({kHistoryToml, {FedNode(dir, 10)}});
  ASSERT_NE(c, nullptr);
  c->Advance(4 * 60 * 1000);
  auto bad = [&](const std::string& series, const std::string& key) {
    auto r = Ask(*c, kBob, series, key, 600);
    EXPECT_FALSE(r.ok()) << series << " " << key;
    return r.ok() ? std::string() : r.status().message();
  };
  EXPECT_NE(bad("gpus", "").find("use cluster, project NAME, node NAME or job ID"),
            std::string::npos);
  EXPECT_NE(bad("project", "nosuch").find("no project or department named 'nosuch'"),
            std::string::npos);
  EXPECT_NE(bad("node", "n9").find("no node named 'n9'"), std::string::npos);
  EXPECT_NE(bad("job", "x1").find("needs its id"), std::string::npos);
  EXPECT_NE(bad("job", "99").find("job 99 not found"), std::string::npos);
  EXPECT_NE(bad("cluster", "n1").find("takes no name"), std::string::npos);
  const int64_t now = c->clock().NowSeconds();
  auto backwards = c->Client(kBob).Call<proto::HistoryReply>(
      proto::HistoryRequest{"cluster", "", now, now - 60, 0});
  EXPECT_FALSE(backwards.ok());

  // However many points are asked for, at most kHistoryMaxPoints come back.
  auto two = Ask(*c, kBob, "cluster", "", 600, 2);
  ASSERT_TRUE(two.ok()) << two.status().message();
  EXPECT_LE(two->points.size(), 2u);
  int64_t samples = 0;
  for (const auto& p : two->points) samples += p.samples;
  EXPECT_EQ(samples, 4);
  auto huge = Ask(*c, kBob, "cluster", "", 10LL * 365 * 86400, 1'000'000'000);
  ASSERT_TRUE(huge.ok()) << huge.status().message();
  EXPECT_LE(huge->points.size(), static_cast<size_t>(proto::kHistoryMaxPoints));
}

TEST(HistoryTest, NoHistoryWhenTheIntervalIsZero) {
  auto c = InProcessCluster::Started({"[history]\ninterval = 0\n", {{"n1"}}});
  ASSERT_NE(c, nullptr);
  c->Advance(3 * 60 * 1000);
  auto r = Ask(*c, kAlice, "cluster", "", 600);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("[history] interval is 0"), std::string::npos);
}

}  // namespace
}  // namespace herd::testing
