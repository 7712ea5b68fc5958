// The node side of a real cluster: herd-noded killed and started again while its jobs run
// under herd-shim, cgroup limits, and jobs of users other than root.
#include <unistd.h>

#include <fstream>
#include <memory>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kNode[] = "ws01";
constexpr uint32_t kNobody = 65534;
constexpr uint32_t kOtherUser = 65533;  // no passwd entry needed: MUNGE vouches for the uid

bool FileExists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// Polls for a file with a deadline.
bool WaitForFile(const std::string& path, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (FileExists(path)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
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
  CommandResult jobs = c().Herd("jobs --json");
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
  auto list = nlohmann::json::parse(jobs.out, nullptr, false);
  ASSERT_TRUE(list.is_array()) << jobs.out;
  int running = 0;
  for (const auto& j : list) running += j.value("state", "") == "RUNNING";
  EXPECT_EQ(running, 2) << jobs.out << c().log_tail();

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

}  // namespace
}  // namespace herd::testing
