// Heterogeneous fleets end to end: a cluster of two emulated node types (an 8-GPU A100 server and
// two 4-GPU RTX A6000 workstations) where GPU types, pools, constraints, node lists and exclusions
// land jobs where asked, and requests no node could ever satisfy are refused at submit (exit 2)
// with the list of what exists.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/support/eventually.h"

namespace herd::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The workstations' model gets a type of its own; dgx01's A100s keep the default type, a100.
constexpr char kFleet[] = R"(
[gpu_types]
a6000 = ["NVIDIA RTX A6000"]

[nodes.dgx01]
labels = { pool = "train", rack = "r1" }

[nodes.ws01]
labels = { rack = "r1" }

[nodes.ws02]
labels = { rack = "r2" }

[pools.dev]
nodes = ["ws[01-02]"]

[projects.default]
members = ["*"]
deserved = { "gpu.a100" = 4 }
)";

class FleetTest : public SharedClusterTest<FleetTest> {
 public:
  static LocalCluster::Options ClusterOptions() {
    const std::string dir = SourceDir() + "/etc/topologies/";
    return {kFleet,
            {"dgx01=" + dir + "dgx-a100-8gpu.xml", "ws01=" + dir + "workstation-4gpu.xml",
             "ws02=" + dir + "workstation-4gpu.xml"}};
  }

 protected:
  // Submits `args` -- sleep 300, waits until it runs and returns the node it runs on.
  std::string RunsOn(const std::string& args) {
    auto id = c().Submit(args + " -- sleep 300");
    if (!id.ok()) return "refused: " + id.status().message();
    started_.push_back(*id);
    if (!c().WaitForState(*id, "RUNNING")) return "not running: " + c().log_tail();
    auto j = c().Show(*id);
    if (!j.ok() || (*j)["nodes"].size() != 1) return "no single node";
    return (*j)["nodes"][0].get<std::string>();
  }
  // `herd submit ARGS -- true`, expected refused with exit 2: its message.
  std::string Refused(const std::string& args) {
    CommandResult r = c().Herd("submit " + args + " -- true");
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.out << r.err;
    return r.err;
  }
  void CancelStarted() {
    std::string ids;
    for (long id : started_) ids += " " + std::to_string(id);
    if (!ids.empty()) {
      EXPECT_EQ(c().Herd("cancel" + ids).exit_code, 0);
    }
    for (long id : started_) EXPECT_NE(c().WaitForEnd(id), "");
    started_.clear();
  }
  void TearDown() override {
    if (cluster_ != nullptr) CancelStarted();
  }

  std::vector<long> started_;
};

TEST_F(FleetTest, NodesShowTypesLabelsAndPools) {
  CommandResult r = c().Herd("nodes --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json nodes = nlohmann::json::parse(r.out);
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0]["name"], "dgx01");
  EXPECT_EQ(nodes[0]["gpu_types"], nlohmann::json({"a100"}));
  EXPECT_EQ(nodes[0]["pools"], nlohmann::json({"train"}));
  EXPECT_EQ(nodes[0]["labels"]["rack"], "r1");
  EXPECT_EQ(nodes[0]["gpu_list"][0]["type"], "a100");
  EXPECT_EQ(nodes[1]["gpu_types"], nlohmann::json({"a6000"}));
  EXPECT_EQ(nodes[1]["pools"], nlohmann::json({"dev"}));
  EXPECT_EQ(nodes[2]["labels"]["rack"], "r2");
  CommandResult table = c().Herd("nodes");
  EXPECT_THAT(table.out, HasSubstr("TYPE"));
  EXPECT_THAT(table.out, HasSubstr("a6000"));
}

TEST_F(FleetTest, JobsLandWhereTheyAsk) {
  EXPECT_EQ(RunsOn("-g a100:1"), "dgx01");
  EXPECT_EQ(RunsOn("--gres gpu:a100:1"), "dgx01");
  EXPECT_THAT(RunsOn("--gpu-type a6000 -g 1"), ::testing::StartsWith("ws0"));
  EXPECT_THAT(RunsOn("--pool dev -g 1"), ::testing::StartsWith("ws0"));
  EXPECT_EQ(RunsOn("-P train -g 1"), "dgx01");
  EXPECT_EQ(RunsOn("--constraint rack=r2 -g 1"), "ws02");
  EXPECT_EQ(RunsOn("--constraint pool=train"), "dgx01");
  EXPECT_EQ(RunsOn("--nodelist ws01 -g 1"), "ws01");
  EXPECT_EQ(RunsOn("-w ws[01-02] --exclude ws01 -g 1"), "ws02");
  EXPECT_EQ(RunsOn("--gpu-type a100,a6000 --exclude dgx01,ws02"), "ws01");
  auto j = c().Show(started_.front());
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["gpu_types"], nlohmann::json({"a100"}));
}

TEST_F(FleetTest, ImpossibleRequestsAreRefusedWithWhatExists) {
  EXPECT_THAT(Refused("-g h100:1"),
              HasSubstr("unknown GPU type 'h100': GPU types are a100 (8 GPUs on 1 node), "
                        "a6000 (8 GPUs on 2 nodes)"));
  EXPECT_THAT(Refused("--pool nope"), HasSubstr("unknown pool 'nope': pools are dev, train"));
  EXPECT_THAT(Refused("--constraint rack=r9"),
              HasSubstr("no node has rack=r9; node labels are pool=train, rack=r1, rack=r2"));
  EXPECT_THAT(Refused("--pool dev -g a100:1"),
              HasSubstr("no node it may use has GPU type a100; those nodes have a6000 (8 GPUs "
                        "on 2 nodes)"));
  EXPECT_THAT(Refused("-g a6000:5"), HasSubstr("needs 5 a6000 GPUs per worker; the largest node "
                                               "has 4 a6000"));
  EXPECT_THAT(Refused("--gpu-type a6000 -g 0.5 --gpu-memory 60G"),
              HasSubstr("needs 60G GPU memory; the largest a6000 GPU has 48G"));
  EXPECT_THAT(Refused("--nodelist nosuch"),
              HasSubstr("no node matches --nodelist nosuch; nodes are dgx01, ws01, ws02"));
  EXPECT_THAT(Refused("-w ws01 -x ws01"), HasSubstr("no node is in --nodelist ws01 and --exclude ws01"));
  EXPECT_THAT(Refused("-w 'n[0-1100]'"), HasSubstr("at most 1024 --nodelist names, not 1101"));
}

TEST_F(FleetTest, AJobWaitingForItsTypeSaysOnlyOthersAreFree) {
  EXPECT_THAT(RunsOn("-g a6000:4"), ::testing::StartsWith("ws0"));
  EXPECT_THAT(RunsOn("-g a6000:4"), ::testing::StartsWith("ws0"));
  auto id = c().Submit("-g a6000:1 -- true");
  ASSERT_TRUE(id.ok()) << id.status().message();
  started_.push_back(*id);
  std::string reason;
  EXPECT_TRUE(Eventually(std::chrono::seconds(20), [&] {
    auto j = c().Show(*id);
    reason = j.ok() ? (*j).value("reason", "") : "";
    return reason.find("waiting for 1 a6000 GPU") != std::string::npos;
  })) << reason;
  EXPECT_THAT(reason, HasSubstr("waiting for 1 a6000 GPU: only a100 free"));
}

TEST_F(FleetTest, ProjectsShowTheQuotaAndUseOfOneGpuType) {
  EXPECT_EQ(RunsOn("-g a100:2"), "dgx01");
  // The next cycle counts the job in its project's use of a100 GPUs.
  nlohmann::json a100;
  EXPECT_TRUE(Eventually(std::chrono::seconds(20), [&] {
    CommandResult r = c().Herd("projects --json");
    auto projects = nlohmann::json::parse(r.out, nullptr, false);
    if (r.exit_code != 0 || !projects.is_array() || projects.empty()) return false;
    a100 = projects[0]["by_type"]["a100"];
    return a100.is_object() && a100["allocated"] == 2;
  })) << a100.dump();
  EXPECT_EQ(a100["deserved"], 4);
  EXPECT_EQ(a100["limit"], nullptr);

  CommandResult table = c().Herd("projects --type a100");
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, ::testing::ContainsRegex("default +- +project +4 +- +[0-9.]+ +2\n"));
  EXPECT_THAT(table.out, HasSubstr("a100 GPUs only"));

  CommandResult unknown = c().Herd("projects --type a6000");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("no project has a quota of GPU type 'a6000' (GPU types with "
                                     "quotas: a100)"));
}

}  // namespace
}  // namespace herd::testing
