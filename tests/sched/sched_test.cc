// Tests of the scheduler core: every tests/scenarios/*.scenario file through the real Decide(),
// plus properties that are easier to state in code (determinism, seeded randomness, shape cache).
#include <climits>
#include <cmath>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "ctld/sched/evictions.h"
#include "ctld/sched/scheduler.h"
#include "common/model/placement.h"
#include "ctld/sched/scenario.h"
#include "ctld/sched/snapshot_builder.h"
#include "ctld/sched/usage.h"

namespace herd::sched {
namespace {


std::vector<std::string> ScenarioFiles() {
  std::vector<std::string> out;
  std::string all = HERD_SCENARIOS, cur;
  for (char c : all + ":") {
    if (c == ':') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  return out;
}

class ScenarioTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ScenarioTest, MeetsItsExpectations) {
  std::ifstream in(std::string(HERD_SCENARIO_DIR) + "/" + GetParam());
  ASSERT_TRUE(in) << "cannot read " << GetParam();
  std::stringstream text;
  text << in.rdbuf();
  auto scenario = ParseScenario(text.str());
  ASSERT_FALSE(scenario.expects.empty()) << GetParam() << " expects nothing";
  for (const std::string& f : CheckScenario(scenario)) ADD_FAILURE() << GetParam() << ": " << f;
}

std::string TestName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = info.param.substr(0, info.param.rfind('.'));
  for (char& c : name) {
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return name;
}

// What WriteScenario writes of a scenario's snapshot reads back equal, and its expectations of
// the decisions hold when read back (what `herd admin snapshot` and `herd-sim replay` rely on).
TEST_P(ScenarioTest, WrittenBackReadsEqualAndDecidesTheSame) {
  std::ifstream in(std::string(HERD_SCENARIO_DIR) + "/" + GetParam());
  ASSERT_TRUE(in) << "cannot read " << GetParam();
  std::stringstream text;
  text << in.rdbuf();
  const auto scenario = ParseScenario(text.str());
  const Decisions decided = Decide(scenario.snapshot, scenario.policy);
  const std::string written = WriteScenario(scenario.snapshot, scenario.policy, &decided);
  const auto back = ParseScenario(written);
  ASSERT_TRUE(back.errors.empty()) << back.errors.front() << "\n" << written;
  EXPECT_TRUE(back.snapshot == scenario.snapshot) << written;
  EXPECT_EQ(DumpDecisions(Decide(back.snapshot, back.policy)), DumpDecisions(decided));
  for (const std::string& f : CheckScenario(back)) ADD_FAILURE() << f << "\n" << written;
}

INSTANTIATE_TEST_SUITE_P(Scenarios, ScenarioTest, ::testing::ValuesIn(ScenarioFiles()), TestName);

TEST(ScenarioWriterTest, NamesOfAnyBytesAndExactLayoutsReadBackEqual) {
  auto sc = ParseScenario(
      "queue \"a b\" deserved=gpu:2\nqueue dep\nqueue x parent=dep\n"
      "node n1 gpus=4 cores=8 numa=2 labels=rack:r1 nics=numa\n"
      "running 5 queue=x gpu=0.25 gpu_memory=10G on=n1[1] start=99000\n"
      "pending 7 queue=x gpu=1 model=A100\n");
  ASSERT_TRUE(sc.errors.empty()) << sc.errors.front();
  Snapshot& s = sc.snapshot;
  s.nodes[0].labels["odd key#"] = "v,a:l=u\"e%";
  s.nodes[0].gpus[2].index = 6;  // GPU indexes need not be positions
  s.queues[0].over_quota_weight = 1.0 / 3;
  s.queues[1].deserved.gpu_milli = 1500;
  s.queues[2].by_type["a100"] = {1500, 4000, 0.25};  // quotas per GPU type
  s.queues[0].by_type["h100.sxm"] = {0, -1, -1};
  s.queues[1].by_type["h100.sxm"] = {2000, -1, 3};
  s.pending[0].nodes = std::vector<std::string>{};
  s.pending[0].room_on = {{"n1", {0, 6}, 1000, {2, 3}, 2048, "mlx5_0"}};
  s.pending[0].victims_stopping = 1;
  s.held_out.push_back(s.pending[0]);
  s.held_out[0].id = 9;
  s.running[0].evicted_for = 7;
  s.workload.push_back({500, 2, 1024, {"A100"}, 0.7});
  const std::string written = WriteScenario(s, sc.policy);
  const auto back = ParseScenario(written);
  ASSERT_TRUE(back.errors.empty()) << back.errors.front() << "\n" << written;
  EXPECT_TRUE(back.snapshot == s) << written;
}

// 16 nodes of 8 GPUs, half used, and 40 pending jobs of a few shapes.
std::string BusyCluster(const std::string& policy) {
  std::string s = "policy placement=" + policy + "\nqueue a deserved=gpu:40\nqueue b deserved=gpu:40\n";
  for (int n = 0; n < 16; ++n) s += "node n" + std::to_string(n) + " gpus=8 cores=64 numa=2 per_switch=2\n";
  for (int n = 0; n < 16; n += 2) {
    s += "running " + std::to_string(1000 + n) + " queue=a gpu=" + std::to_string(1 + n % 4) + " on=n" +
         std::to_string(n) + "[0-" + std::to_string(n % 4) + "]\n";
  }
  const char* shapes[] = {"gpu=1", "gpu=2", "gpu=0.5", "gpu=4", "gpu=0.25 gpu_memory=10G", "cpus=8"};
  for (int j = 1; j <= 40; ++j) {
    s += "pending " + std::to_string(j) + " queue=" + (j % 3 ? "a" : "b") + " " + shapes[j % 6] + "\n";
  }
  return s + "expect deterministic\n";
}

TEST(DecideTest, SameSnapshotGivesSameDecisionsForEveryPolicy) {
  for (const auto& [p, summary] : model::kPlacementPolicies) {
    auto sc = ParseScenario(BusyCluster(p));
    ASSERT_TRUE(sc.errors.empty()) << sc.errors.front();
    std::string first = DumpDecisions(Decide(sc.snapshot, sc.policy));
    EXPECT_EQ(first, DumpDecisions(Decide(sc.snapshot, sc.policy))) << p;
    EXPECT_NE(first.find("start "), std::string::npos) << p;
  }
}

TEST(DecideTest, RandomPlacementDependsOnlyOnTheSeed) {
  auto sc = ParseScenario(BusyCluster("random"));
  sc.policy.seed = 7;
  std::string seven = DumpDecisions(Decide(sc.snapshot, sc.policy));
  EXPECT_EQ(seven, DumpDecisions(Decide(sc.snapshot, sc.policy)));
  sc.policy.seed = 8;
  EXPECT_NE(seven, DumpDecisions(Decide(sc.snapshot, sc.policy)));
}

TEST(DecideTest, EveryPendingJobNotStartedHasAReasonAndEveryQueueAShare) {
  auto sc = ParseScenario(BusyCluster("herd"));
  Decisions d = Decide(sc.snapshot, sc.policy);
  EXPECT_EQ(d.starts.size() + d.pending_reasons.size(), sc.snapshot.pending.size());
  for (const auto& [id, why] : d.pending_reasons)
    EXPECT_FALSE(model::ReasonText(why).empty()) << id;
  EXPECT_EQ(d.shares.size(), sc.snapshot.queues.size());
}

TEST(DecideTest, StartsNeverOverlapOnAGpu) {
  for (const auto& [p, summary] : model::kPlacementPolicies) {
    auto sc = ParseScenario(BusyCluster(p));
    Decisions d = Decide(sc.snapshot, sc.policy);
    std::map<std::pair<std::string, int>, int64_t> used;
    for (const NodeView& n : sc.snapshot.nodes) {
      for (const GpuSlot& g : n.gpus) used[{n.name, g.index}] = 1000 - g.free_milli;
    }
    for (const auto& st : d.starts) {
      for (const auto& w : st.placement) {
        for (int g : w.gpus) used[{w.node, g}] += w.gpu_milli_each;
      }
    }
    for (const auto& [gpu, milli] : used) EXPECT_LE(milli, 1000) << p << " " << gpu.first << "[" << gpu.second << "]";
  }
}

// A 0.3 GPU job between a fuller node that would keep 0.4 of a GPU (useless to the 0.7 GPU jobs
// the cluster expects) and an emptier one: the target workload decides.
TEST(DecideTest, TargetWorkloadSteersFragmentationAwarePlacement) {
  auto sc = ParseScenario(
      "queue a\nnode n1 gpus=2 cores=32\nnode n2 gpus=2 cores=32\n"
      "running 10 queue=a gpu=0.3 on=n1[0]\nrunning 11 queue=a gpu=1 on=n1[1]\n"
      "pending 1 queue=a gpu=0.3\nexpect start 1 on n1[0]\n");
  ASSERT_TRUE(sc.errors.empty()) << sc.errors.front();
  sc.snapshot.running.clear();  // the workload: the pending job's shape alone; packing breaks the tie
  for (const char* p : {"herd", "fgd"}) {
    ASSERT_TRUE(ParsePlacement(p, &sc.policy.placement));
    sc.snapshot.workload.clear();
    Decisions d = Decide(sc.snapshot, sc.policy);
    ASSERT_EQ(d.starts.size(), 1u) << p;
    EXPECT_EQ(d.starts[0].placement[0].node, "n1") << p;
    sc.snapshot.workload = {{700, 0, 0, {}, 0.7}, {300, 0, 0, {}, 0.3}};
    d = Decide(sc.snapshot, sc.policy);
    ASSERT_EQ(d.starts.size(), 1u) << p;
    EXPECT_EQ(d.starts[0].placement[0].node, "n2") << p;
  }
}

// A 1-GPU job that may run anywhere, between a small node of the model that 1 % of the expected
// jobs are restricted to and a larger node of another model: FGD's scores tie (the restricted
// shape adds 0.1 GPU of change, below one point) and fgd takes the fuller node; herd leaves the
// model that restricted jobs need.
TEST(DecideTest, HerdKeepsTheGpuModelsRestrictedJobsNeed) {
  auto sc = ParseScenario(
      "queue a\nnode t4 gpus=2 cores=32 model=T4\nnode g2 gpus=8 cores=32 model=G2\n"
      "pending 1 queue=a gpu=1\n");
  ASSERT_TRUE(sc.errors.empty()) << sc.errors.front();
  sc.snapshot.workload = {{1000, 0, 0, {}, 0.99}, {1000, 0, 0, {"T4"}, 0.01}};
  for (const auto& [policy, node] : {std::pair{"fgd", "t4"}, std::pair{"herd", "g2"}}) {
    ASSERT_TRUE(ParsePlacement(policy, &sc.policy.placement));
    Decisions d = Decide(sc.snapshot, sc.policy);
    ASSERT_EQ(d.starts.size(), 1u) << policy;
    EXPECT_EQ(d.starts[0].placement[0].node, node) << policy;
  }
  // A job restricted to T4 still goes there.
  sc.snapshot.pending[0].gpu_models = {"T4"};
  Decisions d = Decide(sc.snapshot, sc.policy);
  ASSERT_EQ(d.starts.size(), 1u);
  EXPECT_EQ(d.starts[0].placement[0].node, "t4");
}

// A 16-core CPU job between two nodes with 8 free GPUs: on `a` it leaves cores for 6 workers of
// the expected 1-GPU 8-core shape (2 GPUs stranded), on `b` for 14. The published measure sees no
// change on either (one worker still fits) and fgd takes the node with fewer cores; herd counts
// the GPUs the cores can no longer feed.
TEST(DecideTest, HerdCountsGpusTheFreeCoresCannotFeed) {
  auto sc = ParseScenario(
      "queue a\nnode a gpus=8 cores=64\nnode b gpus=8 cores=128\npending 1 queue=a cpus=16\n");
  ASSERT_TRUE(sc.errors.empty()) << sc.errors.front();
  sc.snapshot.workload = {{1000, 8, 0, {}, 1.0}};
  for (const auto& [policy, node] : {std::pair{"fgd", "a"}, std::pair{"herd", "b"}}) {
    ASSERT_TRUE(ParsePlacement(policy, &sc.policy.placement));
    Decisions d = Decide(sc.snapshot, sc.policy);
    ASSERT_EQ(d.starts.size(), 1u) << policy;
    EXPECT_EQ(d.starts[0].placement[0].node, node) << policy;
  }
}

// The shared rule by which herd-ctld, the scenario runner and bench/ carry evictions over.
TEST(EvictionsTest, VictimsWaitOutOfSightAndTheirBeneficiaryWaitsForThemThenGoesFirst) {
  Snapshot snap;
  RunningJob still;  // evicted for job 1, still stopping
  still.id = 10;
  snap.running.push_back(still);
  for (model::JobId id : {1, 11, 20}) {  // 1 the beneficiary, 11 a victim that has stopped
    PendingJob p;
    p.id = id;
    snap.pending.push_back(p);
  }
  Decisions d;
  const std::vector<model::WorkerPlacement> planned{{"n2", {0, 1}, 1000, {4, 5}, 2048, ""}};
  d.preemptions.push_back(
      {.id = 10, .for_job = 1, .kind = EvictionKind::kReclaim, .room = planned});
  d.preemptions.push_back(
      {.id = 11, .for_job = 1, .kind = EvictionKind::kReclaim, .room = planned});
  d.preemptions.push_back({.id = 12,
                           .for_job = 12,
                           .kind = EvictionKind::kPreempt});  // no beneficiary: nothing to carry
  EvictedFor evicted_for;
  RoomFor room;
  RecordEvictions(d, evicted_for, room);
  EXPECT_EQ(evicted_for, (EvictedFor{{10, 1}, {11, 1}}));
  EXPECT_EQ(room, (RoomFor{{1, planned}}));

  Snapshot view = snap;
  MarkEvictions(evicted_for, room, view);
  EXPECT_EQ(view.running[0].evicted_for, 1);
  EXPECT_EQ(view.pending[0].room_on, planned);
  ASSERT_EQ(view.pending.size(), 2u) << "victim 11 waits out of sight";
  EXPECT_EQ(view.pending[0].id, 1);
  EXPECT_EQ(view.pending[0].victims_stopping, 1);
  EXPECT_FALSE(view.pending[0].room_made);
  EXPECT_EQ(view.pending[1].victims_stopping, 0);

  snap.running.clear();  // job 10 has stopped too: the room is made
  view = snap;
  MarkEvictions(evicted_for, room, view);
  EXPECT_EQ(view.pending[0].victims_stopping, 0);
  EXPECT_TRUE(view.pending[0].room_made);
  EXPECT_FALSE(view.pending[1].room_made);

  // Job 1 has started: its victims are back in line.
  ForgetSettled(evicted_for, room, [](model::JobId id) { return id != 1; });
  EXPECT_TRUE(evicted_for.empty());
  EXPECT_TRUE(room.empty());
  view = snap;
  MarkEvictions(evicted_for, room, view);
  EXPECT_EQ(view.pending.size(), 3u);
}

constexpr int64_t kDay = 86400;

TEST(DecayUsageTest, HalfLifeHalvesUsageExactlyWhateverTheSteps) {
  EXPECT_EQ(DecayUsage(1000, 0, 7 * kDay, 7 * kDay), 500);
  EXPECT_EQ(DecayUsage(1000, 0, 14 * kDay, 7 * kDay), 250);
  // One step or a week of 1-second cycles: the same, to rounding.
  double stepped = 1000;
  for (int64_t t = 0; t < 7 * kDay; ++t) stepped = DecayUsage(stepped, 0, 1, 7 * kDay);
  EXPECT_NEAR(stepped, 500, 1e-6);
}

TEST(DecayUsageTest, HeldGpusAddTheirGpuSecondsDecayedFromEachSecond) {
  // Far shorter than the half-life: almost exactly GPUs x seconds.
  EXPECT_NEAR(DecayUsage(0, 2, 60, 7 * kDay), 120, 0.01);
  // Over one half-life, 1 GPU adds h/ln2 x (1 - 1/2) GPU-seconds, however the time is cut.
  const double whole = DecayUsage(0, 1, kDay, kDay);
  EXPECT_NEAR(whole, kDay / std::log(2.0) / 2, 1e-6);
  double cycles = 0;
  for (int i = 0; i < 1440; ++i) cycles = DecayUsage(cycles, 1, 60, kDay);
  EXPECT_NEAR(cycles, whole, 1e-6 * whole);
}

TEST(DecayUsageTest, YearsOfAFullClusterStayBoundedAndFinite) {
  // 100,000 GPUs held for 10 years in 1-minute cycles with a 1-day half-life: the usage settles at
  // GPUs x h / ln2 and never overflows.
  double u = 0;
  for (int64_t t = 0; t < 10 * 365 * kDay; t += 60) u = DecayUsage(u, 100000, 60, kDay);
  const double bound = 100000.0 * kDay / std::log(2.0);
  EXPECT_TRUE(std::isfinite(u));
  EXPECT_LE(u, bound * (1 + 1e-9));
  EXPECT_NEAR(u, bound, 1e-6 * bound);
  // A huge stored value and a step of centuries: still finite.
  EXPECT_TRUE(std::isfinite(DecayUsage(1e300, 1e6, INT64_MAX, 1)));
  EXPECT_EQ(DecayUsage(1e300, 0, INT64_MAX, 1), 0);
}

TEST(DecayUsageTest, ZeroHalfLifeKeepsNothingAndWeightsStayAsConfigured) {
  EXPECT_EQ(DecayUsage(1000, 8, 60, 0), 0);
  EXPECT_EQ(DecayUsage(1000, 8, 0, kDay), 1000);  // no time passed
  std::vector<QueueView> queues(3);
  queues[0].name = "research";
  queues[1].name = "vision", queues[1].parent = "research", queues[1].over_quota_weight = 2;
  queues[2].name = "nlp", queues[2].parent = "research", queues[2].over_quota_weight = 0.3;
  auto weights = UsageWeights(queues);
  EXPECT_EQ(weights["research"], 1);
  EXPECT_EQ(weights["vision"], 2);
  EXPECT_EQ(weights["nlp"], 0.3);
}

TEST(DecayUsageTest, UsageLowersTheWeightOfTheHeavierSibling) {
  std::vector<QueueView> queues(4);
  queues[0].name = "research", queues[0].usage = 900;
  queues[1].name = "ops", queues[1].usage = 100;
  queues[2].name = "vision", queues[2].parent = "research", queues[2].usage = 450;
  queues[3].name = "nlp", queues[3].parent = "research", queues[3].usage = 450;
  auto w = UsageWeights(queues);
  EXPECT_DOUBLE_EQ(w["research"], std::exp2(-1.8));
  EXPECT_DOUBLE_EQ(w["ops"], std::exp2(-0.2));
  // Used in proportion to their weights: their ratio is kept.
  EXPECT_DOUBLE_EQ(w["vision"], w["nlp"]);
  // All of it by one: its weight stays above 0, so it still takes what nobody else wants.
  queues[1].usage = 0;
  EXPECT_GT(UsageWeights(queues)["research"], 0);
}

// A node of 2 GPUs on two NUMA nodes and switches, the first with a NIC, 4 cores, 64 GiB.
NodeFacts TwoGpuNode() {
  NodeFacts n;
  n.name = "n1";
  n.gpus = {{0, 40960, 0, 0, "a100", "mlx5_0"}, {1, 40960, 1, 1, "a100"}};
  n.cores_by_numa = {{0, {0, 1}}, {1, {2, 3}}};
  n.memory_mib = 65536;
  return n;
}

TEST(SnapshotBuilderTest, RunningJobsTakeTheirPlacementOffTheirNodesAndOnlyThere) {
  SnapshotFacts in;
  in.now = 1000;
  in.nodes = {TwoGpuNode()};
  in.classes = {{"train", 50, true, false, 600}};
  Request whole{.gpu_milli = 1000, .cpus = 1, .memory_mib = 1024, .time_limit_s = 60};
  Request share{.gpu_milli = 250, .cpus = 1, .memory_mib = 2048};
  in.running = {RunningOf({1, "q", "train", whole, 10}, {{"n1", {0}, 1000, {0}, 1024, ""}}, 100),
                RunningOf({2, "q", "train", share, 20}, {{"n1", {1}, 250, {2}, 2048, ""}}, 200),
                RunningOf({3, "q", "train", whole, 30}, {{"gone", {0}, 1000, {0}, 1024, ""}}, 300)};
  const Snapshot s = BuildSnapshot(std::move(in));
  ASSERT_EQ(s.nodes.size(), 1u);
  const NodeView& n = s.nodes[0];
  EXPECT_EQ(n.total_cores, 4);
  EXPECT_EQ(n.nic_by_switch, (std::map<int, std::string>{{0, "mlx5_0"}}));
  EXPECT_EQ(n.nic_by_numa, (std::map<int, std::string>{{0, "mlx5_0"}}));
  EXPECT_EQ(n.gpus[0].free_milli, 0);
  EXPECT_EQ(n.gpus[0].free_memory_mib, 0);  // a whole GPU holds all its memory
  EXPECT_EQ(n.gpus[1].free_milli, 750);
  EXPECT_EQ(n.gpus[1].free_memory_mib, 40960 - 10240);  // a share holds its part of it
  EXPECT_EQ(n.free_cores_by_numa, (std::map<int, std::vector<int>>{{0, {1}}, {1, {3}}}));
  EXPECT_EQ(n.free_memory_mib, 65536 - 1024 - 2048);
  ASSERT_EQ(s.running.size(), 3u);  // job 3's node is gone: it takes nothing, but still runs
  EXPECT_EQ(s.running[0].end_by, 160);
  EXPECT_EQ(s.running[1].end_by, 0);
  EXPECT_EQ(s.classes.at("train").min_runtime_s, 600);
}

TEST(SnapshotBuilderTest, GiveBackUndoesTakeAndRequeuedKeepsThePlaceInLine) {
  NodeView n = FreeNode(TwoGpuNode());
  const NodeView free = n;
  const Request r{.gpu_milli = 500, .gpu_memory_mib = 8192, .cpus = 2, .memory_mib = 4096};
  const RunningJob job =
      Started(PendingOf({7, "q", "", r, 50}, 60), {{"n1", {1}, 500, {2, 3}, 4096, ""}}, 90);
  TakeFromNode(n, job.placement[0], r.gpu_memory_mib);
  EXPECT_EQ(n.gpus[1].free_memory_mib, 40960 - 8192);  // the memory it asked for
  EXPECT_TRUE(n.free_cores_by_numa.at(1).empty());
  GiveBackToNode(n, job.placement[0], r.gpu_memory_mib, {{0, 0}, {1, 0}, {2, 1}, {3, 1}});
  EXPECT_EQ(n, free);
  const PendingJob again = Requeued(job, 120);
  EXPECT_EQ(again.submit_time, 50);
  EXPECT_EQ(again.pending_since, 120);
  EXPECT_EQ(again.request, r);
}

}  // namespace
}  // namespace herd::sched
