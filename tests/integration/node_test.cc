// The node side of a real cluster: herd-noded killed and started again while its jobs run
// under herd-shim, cgroup limits, jobs of users other than root, a resent registration, and
// stops under way when herd-ctld is killed.
#include <unistd.h>

#include <fstream>
#include <memory>
#include <optional>
#include <set>

#include "common/auth/auth.h"
#include "common/net/net.h"
#include "common/proto/codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/support/eventually.h"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kNode[] = "ws01";
constexpr uint32_t kNobody = 65534;
constexpr uint32_t kOtherUser = 65533;  // no passwd entry needed: MUNGE vouches for the uid

bool FileExists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// Waits for a file to exist.
bool WaitForFile(const std::string& path, std::chrono::seconds timeout) {
  return Eventually(timeout, [&] { return FileExists(path); });
}

// Each test gets its own one-node cluster, so killing that node touches no other test.
class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LocalCluster::Options options;
    options.nodes = {std::string(kNode) + "=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml"};
    auto c = LocalCluster::Start(options);
    ASSERT_TRUE(c.ok()) << "the local cluster did not start: " << c.status().message();
    cluster_ = std::move(*c);
  }
  const LocalCluster& c() const { return *cluster_; }
  // A shell command that waits for the file `name` in the cluster directory, then runs `then`.
  std::string WaitThen(const std::string& name, const std::string& then) const {
    return "sh -c 'while [ ! -e " + c().dir() + "/" + name + " ]; do sleep 0.05; done; " + then +
           "'";
  }
  void Touch(const std::string& name) const { std::ofstream(c().dir() + "/" + name) << ""; }
  // How many jobs `herd jobs --json` lists as RUNNING; a failed or unparsable listing fails the test.
  int RunningJobs() const {
    CommandResult jobs = c().Herd("jobs --json");
    EXPECT_EQ(jobs.exit_code, 0) << jobs.err;
    auto list = nlohmann::json::parse(jobs.out, nullptr, false);
    EXPECT_TRUE(list.is_array()) << jobs.out;
    int running = 0;
    if (list.is_array()) {
      for (const auto& j : list) running += j.value("state", "") == "RUNNING";
    }
    return running;
  }

  std::unique_ptr<LocalCluster> cluster_;
};

std::string SkipUnlessUsersCanBeSwitched() {
  if (geteuid() != 0) return "switching users needs root";
  if (RunShell("command -v setpriv").exit_code != 0) return "setpriv is not installed";
  return "";
}

TEST_F(NodeTest, NodeDaemonRestartKeepsJobsRunning) {
  auto a = c().Submit("-- " + WaitThen("go", "echo a done"));
  auto b = c().Submit("-- " + WaitThen("go", "echo b done"));
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE(c().WaitForState(*a, "RUNNING")) << c().log_tail();
  ASSERT_TRUE(c().WaitForState(*b, "RUNNING")) << c().log_tail();

  ASSERT_TRUE(c().KillNodeDaemon(kNode).ok());
  Status started = c().StartNodeDaemon(kNode);
  ASSERT_TRUE(started.ok()) << started.message() << c().log_tail();

  // The new herd-noded registered with both jobs; herd-ctld must not have dropped them.
  EXPECT_EQ(RunningJobs(), 2) << c().log_tail();

  Touch("go");
  EXPECT_EQ(c().WaitForEnd(*a), "COMPLETED") << c().log_tail();
  EXPECT_EQ(c().WaitForEnd(*b), "COMPLETED") << c().log_tail();
  for (long id : {*a, *b}) {
    auto job = c().Show(id);
    ASSERT_TRUE(job.ok());
    EXPECT_EQ((*job)["exit_code"], 0);
  }
  EXPECT_THAT(c().Herd("logs " + std::to_string(*a)).out, HasSubstr("a done"));
}

TEST_F(NodeTest, JobEndingWhileNodeDaemonIsDownKeepsItsExitCode) {
  auto id = c().Submit("-- " + WaitThen("go", "exit 7"));
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(c().WaitForState(*id, "RUNNING")) << c().log_tail();

  ASSERT_TRUE(c().KillNodeDaemon(kNode).ok());
  Touch("go");
  // The shim records the end in the job's directory, with nobody to tell yet.
  ASSERT_TRUE(WaitForFile(c().JobDir(kNode, *id) + "/exit", std::chrono::seconds(10)));
  Status started = c().StartNodeDaemon(kNode);
  ASSERT_TRUE(started.ok()) << started.message() << c().log_tail();

  ASSERT_EQ(c().WaitForEnd(*id), "FAILED") << c().log_tail();
  auto job = c().Show(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["exit_code"], 7);
  EXPECT_THAT((*job)["reason"].get<std::string>(), HasSubstr("exit code 7"));
}

// A job sent to the node while its herd-noded restarts never reached it: it never ran, so it is
// requeued and runs once the new herd-noded registers, instead of failing as lost.
TEST_F(NodeTest, JobSentWhileNodeDaemonRestartsIsRequeuedNotFailed) {
  ASSERT_TRUE(c().KillNodeDaemon(kNode).ok());
  auto id = c().Submit("-- sh -c 'echo ran as run $HERD_RESTART_COUNT'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  // herd-ctld still thinks the node up (within node_timeout) and sends it the launch.
  ASSERT_TRUE(c().WaitForState(*id, "STARTING")) << c().log_tail();
  Status started = c().StartNodeDaemon(kNode);
  ASSERT_TRUE(started.ok()) << started.message() << c().log_tail();

  ASSERT_EQ(c().WaitForEnd(*id), "COMPLETED") << c().Show(*id)->dump() << c().log_tail();
  auto job = c().Show(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["restart_count"], 1) << job->dump();
  EXPECT_THAT(c().Herd("logs " + std::to_string(*id)).out, HasSubstr("ran as run 1"));
}

TEST_F(NodeTest, MemoryHogIsKilledAtItsLimit) {
  const std::string mode = c().CgroupMode(kNode);
  if (mode.empty() || mode == "none") {
    GTEST_SKIP() << "herd-noded confines no job with a memory cgroup here (cgroups: '" << mode
                 << "')";
  }
  // The shell holds the whole 500 MiB output of the pipe in one string.
  auto id = c().Submit(
      "--mem 64M -- sh -c 'x=$(head -c 500M /dev/zero | tr \"\\0\" a); echo survived'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_EQ(c().WaitForEnd(*id), "FAILED") << c().log_tail();
  auto job = c().Show(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_THAT((*job)["reason"].get<std::string>(), HasSubstr("out of memory"));
  EXPECT_THAT(c().Herd("logs " + std::to_string(*id)).out, ::testing::Not(HasSubstr("survived")));
}

TEST_F(NodeTest, UserJobRunsAsThatUser) {
  if (std::string why = SkipUnlessUsersCanBeSwitched(); !why.empty()) GTEST_SKIP() << why;
  CommandResult r = c().HerdAs(kNobody, kNobody, "submit -q -- sh -c 'echo uid=$(id -u)'");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const long id = std::stol(r.out);
  ASSERT_EQ(c().WaitForEnd(id), "COMPLETED") << c().log_tail();
  EXPECT_THAT(c().Herd("logs " + std::to_string(id)).out, HasSubstr("uid=65534"));
  auto job = c().Show(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["user"], "nobody");
}

TEST_F(NodeTest, AnotherUserCannotCancelMyJob) {
  if (std::string why = SkipUnlessUsersCanBeSwitched(); !why.empty()) GTEST_SKIP() << why;
  CommandResult r = c().HerdAs(kNobody, kNobody, "submit -q -- sleep 60");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string id = std::to_string(std::stol(r.out));

  CommandResult denied = c().HerdAs(kOtherUser, kOtherUser, "cancel " + id);
  EXPECT_EQ(denied.exit_code, 2) << denied.out << denied.err;
  EXPECT_THAT(denied.err, HasSubstr("permission denied"));
  auto job = c().Show(std::stol(id));
  ASSERT_TRUE(job.ok());
  EXPECT_NE((*job)["state"], "CANCELLED");

  CommandResult cancelled = c().Herd("cancel " + id);
  EXPECT_EQ(cancelled.exit_code, 0) << cancelled.err;
  EXPECT_EQ(c().WaitForEnd(std::stol(id)), "CANCELLED") << c().log_tail();
}

// Jobs keep running while herd-ctld is down; it learns their ends, exit codes included, from the
// nodes once it is back, even for a job that ended while it was gone.
TEST_F(NodeTest, ControllerRestartKeepsRunningJobsAndTheirExitCodes) {
  auto a = c().Submit("-- " + WaitThen("go", "exit 0"));
  auto b = c().Submit("-- " + WaitThen("go", "exit 3"));
  auto early = c().Submit("-- " + WaitThen("early", "exit 5"));
  ASSERT_TRUE(a.ok() && b.ok() && early.ok());
  for (long id : {*a, *b, *early}) ASSERT_TRUE(c().WaitForState(id, "RUNNING")) << c().log_tail();

  ASSERT_TRUE(c().KillController().ok());
  Touch("early");
  ASSERT_TRUE(WaitForFile(c().JobDir(kNode, *early) + "/exit", std::chrono::seconds(10)));
  Status started = c().StartController();
  ASSERT_TRUE(started.ok()) << started.message() << c().log_tail();

  ASSERT_EQ(c().WaitForEnd(*early), "FAILED") << c().log_tail();
  EXPECT_EQ((*c().Show(*early))["exit_code"], 5);
  EXPECT_EQ(RunningJobs(), 2) << c().log_tail();

  Touch("go");
  EXPECT_EQ(c().WaitForEnd(*a), "COMPLETED") << c().log_tail();
  EXPECT_EQ(c().WaitForEnd(*b), "FAILED") << c().log_tail();
  EXPECT_EQ((*c().Show(*a))["exit_code"], 0);
  EXPECT_EQ((*c().Show(*b))["exit_code"], 3);
}

// herd-noded reads each job's cgroup counters and herd-ctld keeps them: `herd show` has the CPU
// time and memory of a running job, and the totals once it ended.
TEST_F(NodeTest, ShowReportsCpuTimeAndMemoryFromTheJobsCgroups) {
  const std::string mode = c().CgroupMode(kNode);
  if (mode.empty() || mode == "none") {
    GTEST_SKIP() << "herd-noded confines no job with cgroups here (cgroups: '" << mode << "')";
  }
  // Holds 40 MiB in a shell variable, then spins (CPU) until told to stop.
  auto id = c().Submit("--mem 256M -- sh -c 'x=$(head -c 40M /dev/zero | tr \"\\0\" a); "
                       "while [ ! -e " + c().dir() + "/go ]; do :; done; echo ${#x}'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(c().WaitForState(*id, "RUNNING")) << c().log_tail();
  constexpr double kMiB = 1 << 20;
  nlohmann::json job;
  Eventually(std::chrono::seconds(20), [&] {
    job = *c().Show(*id);
    return job["cpu_seconds"].is_number() && job["cpu_seconds"].get<double>() >= 0.5 &&
           job["memory_bytes"].is_number() && job["memory_bytes"].get<double>() >= 30 * kMiB;
  });
  ASSERT_TRUE(job["cpu_seconds"].is_number()) << job.dump() << c().log_tail();
  EXPECT_GE(job["cpu_seconds"].get<double>(), 0.5) << job.dump();
  ASSERT_TRUE(job["memory_bytes"].is_number()) << job.dump();
  EXPECT_GE(job["memory_bytes"].get<double>(), 30 * kMiB) << job.dump();
  CommandResult text = c().Herd("show " + std::to_string(*id));
  EXPECT_THAT(text.out, HasSubstr("CpuTime:"));
  EXPECT_THAT(text.out, HasSubstr("MemUsed:"));

  Touch("go");
  ASSERT_EQ(c().WaitForEnd(*id), "COMPLETED") << c().log_tail();
  EXPECT_THAT(c().Herd("logs " + std::to_string(*id)).out, HasSubstr("41943040"));
  job = *c().Show(*id);
  ASSERT_TRUE(job["cpu_seconds"].is_number()) << job.dump();
  EXPECT_GE(job["cpu_seconds"].get<double>(), 0.5) << job.dump();
  ASSERT_TRUE(job["memory_peak_bytes"].is_number()) << job.dump();
  EXPECT_GE(job["memory_peak_bytes"].get<double>(), 30 * kMiB) << job.dump();
  EXPECT_TRUE(job["memory_bytes"].is_null()) << "an ended job uses no memory: " << job.dump();
  // Persisted with the finished job: a restarted controller still has them.
  ASSERT_TRUE(c().RestartController().ok());
  nlohmann::json after = *c().Show(*id);
  EXPECT_EQ(after["cpu_seconds"], job["cpu_seconds"]);
  EXPECT_EQ(after["memory_peak_bytes"], job["memory_peak_bytes"]);
  EXPECT_THAT(c().Herd("show " + std::to_string(*id)).out, HasSubstr("MemPeak:"));
}

// herd-noded resends its Register until herd-ctld answers; a copy that arrives after herd-ctld
// accepted the first one (it was busy with a long cycle) must not write off the jobs launched on
// the node since. The test speaks the node side of the protocol itself, to deliver that late
// copy at a chosen moment; a Register from a new herd-noded process is still a restart.
TEST(NodeRegistrationTest, ResentRegisterKeepsJobsLaunchedSinceButARestartDoesNot) {
  auto started = LocalCluster::Start({"", {"none"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  auto auth = auth::MakeAuthenticator("munge", c.dir() + "/munge/munge.sock");
  ASSERT_TRUE(auth.ok()) << auth.status().message();
  auto dealer = net::Dealer::Connect(c.ControllerEndpoint(), "pn01");
  ASSERT_TRUE(dealer.ok()) << dealer.status().message();
  auto send = [&](const auto& body) {
    proto::Envelope e = proto::MakeEnvelope(body);
    auto cred = (*auth)->Credential(auth::MessageBinding(e.type, e.id, e.body));
    EXPECT_TRUE(cred.ok()) << cred.status().message();
    e.cred = cred.ok() ? *cred : "";
    return (*dealer)->Send(e).ok();
  };
  // The next message of `type` from herd-ctld within 10 s; others are dropped.
  auto receive = [&](const std::string& type) -> std::optional<proto::Envelope> {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      auto e = (*dealer)->Receive(100);
      if (e && e->type == type) return e;
    }
    return std::nullopt;
  };

  model::NodeTopology topology;
  topology.hostname = "pn01";
  topology.sockets = 1;
  topology.numa = {{0, {0, 1, 2, 3}, 8192}};
  topology.memory_mib = 8192;
  topology.emulated = true;
  topology.source = "node_test";
  proto::RegisterRequest reg{"pn01", topology, {}, /*instance=*/1111};
  ASSERT_TRUE(send(reg));
  ASSERT_TRUE(receive("register_reply").has_value()) << c.log_tail();

  auto id = c.Submit("-c 1 --mem 64M -- sleep 300");
  ASSERT_TRUE(id.ok()) << id.status().message();
  auto launch = receive("launch");
  ASSERT_TRUE(launch.has_value()) << c.log_tail();
  auto cmd = proto::BodyOf<proto::LaunchCommand>(*launch);
  ASSERT_TRUE(cmd.ok()) << cmd.status().message();
  ASSERT_EQ(cmd->job.id, *id);
  ASSERT_TRUE(send(proto::JobEvent{"pn01", {*id, 0, "RUNNING", -1, "", {}}}));
  ASSERT_TRUE(c.WaitForState(*id, "RUNNING")) << c.log_tail();

  // The late copy of the first Register: it lists the jobs of that moment, none.
  ASSERT_TRUE(send(reg));
  ASSERT_TRUE(receive("register_reply").has_value()) << c.log_tail();
  auto job = c.Show(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->value("state", ""), "RUNNING") << job->dump() << c.log_tail();

  // A new herd-noded process that does not know the job: the job was lost with the old one.
  reg.instance = 2222;
  ASSERT_TRUE(send(reg));
  ASSERT_TRUE(receive("register_reply").has_value()) << c.log_tail();
  EXPECT_EQ(c.WaitForEnd(*id), "FAILED") << c.log_tail();
  job = c.Show(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_THAT(job->value("reason", ""), HasSubstr("lost when herd-noded on pn01 restarted"));
}

// A job that ignores SIGTERM until the file `name` appears in the cluster directory.
std::string StubbornJob(const LocalCluster& c, const std::string& name) {
  // It also ends once the cluster's directory is gone, so no test leaves it behind.
  return "sh -c 'trap \"\" TERM; while [ ! -e " + c.dir() + "/" + name + " ] && [ -d " +
         c.dir() + " ]; do sleep 0.05; done; exit 0'";
}

// How herd-ctld asked a running job to end is kept with the job: killed (-9) and started again
// before the job is gone, it still ends the job as asked (and asks the node again).
TEST(NodeStopTest, CancelUnderWayWhenTheControllerIsKilledStillEndsCancelled) {
  auto started = LocalCluster::Start({"[scheduler]\nkill_grace = \"60s\"\n",
                                      {std::string(kNode) + "=" + SourceDir() +
                                       "/etc/topologies/workstation-4gpu.xml"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  auto id = c.Submit("-- " + StubbornJob(c, "go"));
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(c.WaitForState(*id, "RUNNING")) << c.log_tail();

  CommandResult cancel = c.Herd("cancel " + std::to_string(*id));
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  // The node was told: it wrote the kill request for the job's supervisor.
  ASSERT_TRUE(WaitForFile(c.JobDir(kNode, *id) + "/kill", std::chrono::seconds(10)))
      << c.log_tail();
  Status restarted = c.RestartController();
  ASSERT_TRUE(restarted.ok()) << restarted.message() << c.log_tail();
  auto job = c.Show(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->value("state", ""), "RUNNING") << "the job ignores SIGTERM for 60 s";

  std::ofstream(c.dir() + "/go") << "";
  EXPECT_EQ(c.WaitForEnd(*id), "CANCELLED") << c.log_tail();
}

TEST(NodeStopTest, PreemptionUnderWayWhenTheControllerIsKilledStillRequeues) {
  auto started = LocalCluster::Start({std::string(kTwoProjects) +
                                          "\n[scheduler]\npreempt_grace = \"60s\"\n",
                                      {std::string(kNode) + "=" + SourceDir() +
                                       "/etc/topologies/workstation-4gpu.xml"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  // b takes all four GPUs (two jobs) while a is idle; a then claims its guaranteed 2 and one of
  // b's jobs is preempted.
  std::vector<long> b;
  for (const char* go : {"go0", "go1"}) {
    auto id = c.Submit("-p b -g 2 -- " + StubbornJob(c, go));
    ASSERT_TRUE(id.ok()) << id.status().message();
    ASSERT_TRUE(c.WaitForState(*id, "RUNNING")) << c.log_tail();
    b.push_back(*id);
  }
  auto claim = c.Submit("-p a -g 2 -- sleep 300");
  ASSERT_TRUE(claim.ok()) << claim.status().message();
  int victim = -1;
  Eventually(std::chrono::seconds(20), [&] {
    for (int k = 0; k < 2; ++k) {
      auto j = c.Show(b[k]);
      if (j.ok() && j->value("state", "") == "PREEMPTED") victim = k;
    }
    return victim >= 0;
  });
  ASSERT_GE(victim, 0) << "neither of b's jobs was preempted" << c.log_tail();
  ASSERT_TRUE(WaitForFile(c.JobDir(kNode, b[victim]) + "/kill", std::chrono::seconds(10)))
      << c.log_tail();

  Status restarted = c.RestartController();
  ASSERT_TRUE(restarted.ok()) << restarted.message() << c.log_tail();
  std::ofstream(c.dir() + "/go" + std::to_string(victim)) << "";
  // Requeued, not ended: it waits (no GPU is free) while a's job runs.
  ASSERT_TRUE(c.WaitForState(*claim, "RUNNING")) << c.log_tail();
  auto job = c.Show(b[victim]);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->value("state", ""), "PENDING") << job->dump() << c.log_tail();
  EXPECT_EQ(job->value("restart_count", -1), 1) << job->dump();
}

// A node on this machine's own topology (not emulated) pins each job to the cores it was given.
TEST(HostNodeTest, JobSeesOnlyItsCpusetCores) {
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) GTEST_SKIP() << "this host has fewer than 2 cores";
  auto started = LocalCluster::Start({"", {"host01=host"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  const std::string mode = c.CgroupMode("host01");
  if (mode.empty() || mode == "none") {
    GTEST_SKIP() << "herd-noded cannot make cgroups here (cgroups: '" << mode << "')";
  }
  if (mode != "v2" && access("/sys/fs/cgroup/cpuset/cpuset.cpus", F_OK) != 0) {
    GTEST_SKIP() << "no cpuset cgroup controller is mounted";
  }
  const std::string job = "-c 1 --mem 64M -- sh -c 'grep Cpus_allowed_list /proc/self/status; "
                          "while [ ! -e " + c.dir() + "/go ]; do sleep 0.05; done'";
  std::set<std::string> seen;
  std::vector<long> ids;
  for (int i = 0; i < 2; ++i) {
    auto id = c.Submit(job);
    ASSERT_TRUE(id.ok()) << id.status().message();
    ids.push_back(*id);
    ASSERT_TRUE(c.WaitForState(*id, "RUNNING")) << c.log_tail();
    auto shown = c.Show(*id);
    ASSERT_TRUE(shown.ok());
    const auto& cores = (*shown)["placement"][0]["cores"];
    ASSERT_EQ(cores.size(), 1u) << shown->dump();
    const std::string core = std::to_string(cores[0].get<int>());
    std::string out;
    Eventually(std::chrono::seconds(10), [&] {
      out = c.Herd("logs " + std::to_string(*id)).out;
      return out.find('\n') != std::string::npos;
    });
    EXPECT_EQ(out, "Cpus_allowed_list:\t" + core + "\n") << "assigned core " << core;
    seen.insert(core);
  }
  EXPECT_EQ(seen.size(), 2u) << "two concurrent 1-core jobs got the same core";
  std::ofstream(c.dir() + "/go") << "";
  for (long id : ids) EXPECT_EQ(c.WaitForEnd(id), "COMPLETED") << c.log_tail();
}

}  // namespace
}  // namespace herd::testing
