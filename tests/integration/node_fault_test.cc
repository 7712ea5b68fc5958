// Faults of a node's machine in a real cluster. Its state directory (a small tmpfs) fills up:
// the node must say so (DRAIN with the reason in `herd nodes`), keep its running jobs, requeue
// the jobs it could not start, take jobs again once there is room, and cap each job's log.
// A job's herd-shim is killed: nothing of the job may run once it is reported ended.
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/support/eventually.h"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kNode[] = "ws01";

class NodeDiskTest : public ::testing::Test {
 protected:
  // A one-node cluster whose node keeps its state on a 16 MiB tmpfs; `node_toml`: its [node].
  void Start(const std::string& node_toml) {
    if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs for the node's state needs root";
    LocalCluster::Options options;
    options.nodes = {std::string(kNode) + "=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml"};
    options.node_state_size = "16M";
    options.extra_toml = "[node]\n" + node_toml;
    auto c = LocalCluster::Start(options);
    ASSERT_TRUE(c.ok()) << "the local cluster did not start: " << c.status().message();
    cluster_ = std::move(*c);
  }
  const LocalCluster& c() const { return *cluster_; }
  std::string StateDir() const { return c().dir() + "/nodes/" + kNode; }
  // Writes `size` of zeros (head -c SIZE) into the node's state directory, or until it is full.
  void Fill(const std::string& size) const {
    RunShell("head -c " + size + " /dev/zero > " + StateDir() + "/filler");
  }
  void Unfill() const { unlink((StateDir() + "/filler").c_str()); }

  // The node's entry in `herd nodes --json`.
  nlohmann::json NodeEntry() const {
    CommandResult r = c().Herd("nodes --json");
    auto list = nlohmann::json::parse(r.out, nullptr, false);
    if (list.is_array()) {
      for (const auto& n : list) {
        if (n.value("name", "") == kNode) return n;
      }
    }
    return nlohmann::json::object();
  }
  // Polls `herd nodes` until the node's state is `state`.
  bool WaitForNodeState(const std::string& state) const {
    return Eventually(std::chrono::seconds(20),
                      [&] { return NodeEntry().value("state", "") == state; });
  }
  // Polls `herd show ID` until `done` holds for it; returns the last one seen.
  nlohmann::json WaitForJob(long id, const std::function<bool(const nlohmann::json&)>& done) const {
    nlohmann::json last;
    Eventually(std::chrono::seconds(20), [&] {
      auto job = c().Show(id);
      if (job.ok()) last = *job;
      return job.ok() && done(last);
    });
    return last;
  }
  std::string JobState(long id) const {
    auto job = c().Show(id);
    return job.ok() ? (*job).value("state", "") : "";
  }

  std::unique_ptr<LocalCluster> cluster_;
};

TEST_F(NodeDiskTest, JobThatCannotStartOnAFullNodeIsRequeuedAndTheNodeDrainsUntilThereIsRoom) {
  // No free-space threshold: only the failed write tells the node its disk is full.
  Start("min_free_space = 0\n");
  if (HasFatalFailure() || IsSkipped()) return;
  const std::string go = c().dir() + "/go";
  auto running = c().Submit("-- sh -c 'while [ ! -e " + go + " ]; do sleep 0.05; done; echo a'");
  ASSERT_TRUE(running.ok()) << running.status().message();
  ASSERT_TRUE(c().WaitForState(*running, "RUNNING")) << c().log_tail();

  Fill("64M");  // more than the tmpfs holds
  auto blocked = c().Submit("-- echo b ran");
  ASSERT_TRUE(blocked.ok()) << blocked.status().message();
  ASSERT_TRUE(WaitForNodeState("DRAIN")) << NodeEntry().dump() << c().log_tail();
  EXPECT_THAT(NodeEntry().value("reason", ""), HasSubstr("is full")) << NodeEntry().dump();
  EXPECT_THAT(c().Herd("nodes").out, HasSubstr("is full"));
  // It never ran: it was requeued and waits, it did not fail; the running job runs on.
  nlohmann::json job = WaitForJob(*blocked, [](const nlohmann::json& j) {
    return j.value("restart_count", 0) >= 1 || j.value("state", "") == "FAILED";
  });
  EXPECT_EQ(job.value("state", ""), "PENDING") << job.dump() << c().log_tail();
  EXPECT_EQ(job.value("restart_count", 0), 1) << job.dump();
  EXPECT_EQ(JobState(*running), "RUNNING");

  Unfill();
  ASSERT_TRUE(WaitForNodeState("UP")) << NodeEntry().dump() << c().log_tail();
  EXPECT_EQ(c().WaitForEnd(*blocked), "COMPLETED") << c().log_tail();
  EXPECT_THAT(c().Herd("logs " + std::to_string(*blocked)).out, HasSubstr("b ran"));
  std::ofstream(go) << "";
  EXPECT_EQ(c().WaitForEnd(*running), "COMPLETED") << c().log_tail();
}

TEST_F(NodeDiskTest, NodeBelowMinFreeSpaceTakesNoJobUntilSpaceReturnsAndLogsAreCapped) {
  Start("min_free_space = \"8M\"\nmax_log_size = \"1M\"\n");
  if (HasFatalFailure() || IsSkipped()) return;
  // 4 MB of output: the log keeps 1 MiB of it and says the rest was cut.
  auto chatty = c().Submit("-- sh -c 'head -c 4000000 /dev/zero | tr \"\\0\" x; echo; echo end'");
  ASSERT_TRUE(chatty.ok()) << chatty.status().message();
  ASSERT_EQ(c().WaitForEnd(*chatty), "COMPLETED") << c().log_tail();
  const std::string log = c().Herd("logs " + std::to_string(*chatty)).out;
  EXPECT_EQ(log.substr(0, 1 << 20), std::string(1 << 20, 'x'));
  EXPECT_THAT(log.substr(1 << 20), HasSubstr("log truncated"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("end")));
  EXPECT_EQ(NodeEntry().value("state", ""), "UP");

  Fill("10M");  // leaves less than 8M
  ASSERT_TRUE(WaitForNodeState("DRAIN")) << NodeEntry().dump() << c().log_tail();
  EXPECT_THAT(NodeEntry().value("reason", ""), HasSubstr("min_free_space"));
  auto waiting = c().Submit("-- echo c ran");
  ASSERT_TRUE(waiting.ok()) << waiting.status().message();
  // A scheduling cycle gives a job it cannot place a reason: by then it must not have started.
  nlohmann::json job = WaitForJob(*waiting, [](const nlohmann::json& j) {
    return !j.value("reason", "").empty() || j.value("state", "") != "PENDING";
  });
  EXPECT_EQ(job.value("state", ""), "PENDING") << job.dump();
  EXPECT_FALSE(job.value("reason", "").empty()) << job.dump();

  Unfill();
  ASSERT_TRUE(WaitForNodeState("UP")) << NodeEntry().dump() << c().log_tail();
  EXPECT_EQ(c().WaitForEnd(*waiting), "COMPLETED") << c().log_tail();
  EXPECT_EQ(c().Show(*waiting)->value("restart_count", -1), 0);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// True while pid runs; a zombie (ended, not yet reaped by its new parent) counts as gone.
bool Running(pid_t pid) {
  std::string stat = Slurp("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

TEST(NodeShimTest, JobWhoseShimIsKilledEndsFailedOnlyOnceNothingOfItRuns) {
  LocalCluster::Options options;
  options.nodes = {std::string(kNode) + "=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml"};
  auto c = LocalCluster::Start(options);
  ASSERT_TRUE(c.ok()) << "the local cluster did not start: " << c.status().message();
  const LocalCluster& cluster = **c;
  const std::string bg = cluster.dir() + "/bg";
  auto id = cluster.Submit("-- sh -c 'sleep 1000 & echo $! > " + bg + "; sleep 1000'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(cluster.WaitForState(*id, "RUNNING")) << cluster.log_tail();
  Eventually(std::chrono::seconds(10), [&] { return std::atol(Slurp(bg).c_str()) > 0; });
  const std::string dir = cluster.JobDir(kNode, *id);
  const pid_t child = std::atol(Slurp(bg).c_str());
  const pid_t main = std::atol(Slurp(dir + "/pid").c_str());
  const pid_t shim = std::atol(Slurp(dir + "/shim.pid").c_str());
  ASSERT_GT(child, 0);
  ASSERT_GT(main, 0);
  ASSERT_GT(shim, 0);
  ASSERT_EQ(kill(shim, SIGKILL), 0);

  ASSERT_EQ(cluster.WaitForEnd(*id), "FAILED") << cluster.log_tail();
  auto job = cluster.Show(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_THAT((*job).value("reason", ""), HasSubstr("herd-shim died"));
  EXPECT_FALSE(Running(main)) << "the job's shell still runs";
  EXPECT_FALSE(Running(child)) << "the job's background sleep still runs";
}

}  // namespace
}  // namespace herd::testing
