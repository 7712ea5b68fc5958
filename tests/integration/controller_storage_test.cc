// herd-ctld's database under faults of the disk it lives on: a full file system (a small tmpfs
// as state_dir) and a write-ahead log deleted while herd-ctld was down.
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace herd::testing {
namespace {

std::string WorkstationNode() {
  return "ws01=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml";
}

pid_t ControllerPid(const LocalCluster& c) {
  std::ifstream in(c.dir() + "/ctld.pid");
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

// A tmpfs of `size` mounted on a fresh directory, unmounted (and removed) at the end of scope;
// declare it before the cluster that uses it, so the cluster stops first.
class SmallFileSystem {
 public:
  explicit SmallFileSystem(const std::string& size) {
    char tmpl[] = "/tmp/herd-small-fs.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      why_ = std::string("mkdtemp: ") + strerror(errno);
      return;
    }
    path_ = tmpl;
    if (mount("tmpfs", path_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0) {
      why_ = std::string("cannot mount a tmpfs: ") + strerror(errno);
      return;
    }
    mounted_ = true;
  }
  ~SmallFileSystem() {
    if (mounted_) umount2(path_.c_str(), MNT_DETACH);
    if (!path_.empty()) rmdir(path_.c_str());
  }
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string why_;
  bool mounted_ = false;
};

TEST(ControllerStorageTest, FullDiskRefusesNewJobsKeepsListingsAndReportsAndRecoversByItself) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs as herd-ctld's state_dir needs root";
  SmallFileSystem fs("24m");
  if (!fs.mounted()) GTEST_SKIP() << fs.why();
  LocalCluster::Options options;
  options.nodes = {WorkstationNode()};
  options.ctld_state_dir = fs.path();
  auto started = LocalCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;

  auto running = c.Submit("-J before -- sleep 4");
  ASSERT_TRUE(running.ok()) << running.status().message();
  ASSERT_TRUE(c.WaitForState(*running, "RUNNING")) << c.log_tail();
  auto held = c.Submit("--hold -J held -- true");
  ASSERT_TRUE(held.ok()) << held.status().message();
  const pid_t ctld = ControllerPid(c);

  // Fill the file system up.
  RunShell("dd if=/dev/zero of=" + fs.path() + "/fill bs=1M 2>/dev/null; true");

  CommandResult refused = c.Herd("submit -q -J during -- true");
  EXPECT_EQ(refused.exit_code, 6) << refused.out << refused.err << c.log_tail();
  EXPECT_NE(refused.err.find("herd-ctld cannot write its database: No space left on device in " +
                             fs.path() + "; new work is refused until space is freed"),
            std::string::npos)
      << refused.err;
  // Reads go on.
  CommandResult listed = c.Herd("jobs --all --json");
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_NE(listed.out.find("\"before\""), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("\"held\""), std::string::npos) << listed.out;
  // The running job's end, reported by its node while the disk is full, is recorded.
  EXPECT_EQ(c.WaitForEnd(*running, std::chrono::seconds(30)), "COMPLETED") << c.log_tail();
  EXPECT_EQ(kill(ctld, 0), 0) << "herd-ctld exited on the full disk:\n" << c.log_tail();

  // Space returns: new work is accepted again, without a restart.
  std::filesystem::remove(fs.path() + "/fill");
  auto after = c.Submit("-J after -- true");
  ASSERT_TRUE(after.ok()) << after.status().message() << c.log_tail();
  EXPECT_GT(*after, *held);
  EXPECT_EQ(c.WaitForEnd(*after), "COMPLETED");
  EXPECT_EQ(ControllerPid(c), ctld);

  // Nothing acknowledged was lost: a restarted herd-ctld reads it all back.
  ASSERT_TRUE(c.RestartController().ok()) << c.log_tail();
  auto ran = c.Show(*running);
  ASSERT_TRUE(ran.ok()) << ran.status().message();
  EXPECT_EQ((*ran).value("state", ""), "COMPLETED");
  auto kept = c.Show(*held);
  ASSERT_TRUE(kept.ok()) << kept.status().message();
  EXPECT_EQ((*kept).value("state", ""), "PENDING");
  auto last = c.Show(*after);
  ASSERT_TRUE(last.ok()) << last.status().message();
  EXPECT_EQ((*last).value("state", ""), "COMPLETED");
}

TEST(ControllerStorageTest, DeletedWalIsRefusedAtStartAndAcceptingTheLossNeverReusesAJobId) {
  LocalCluster::Options options;
  options.nodes = {"none"};  // the jobs stay pending: only the controller's state matters
  auto started = LocalCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  long last = 0;
  for (int i = 0; i < 3; ++i) {
    auto id = c.Submit("-J acknowledged-" + std::to_string(i) + " -- true");
    ASSERT_TRUE(id.ok()) << id.status().message();
    last = *id;
  }
  // Killed, so the log is not folded into the database on the way out; then the log is lost.
  ASSERT_TRUE(c.KillController().ok());
  const std::string db = c.dir() + "/ctld/herd.db";
  ASSERT_TRUE(std::filesystem::exists(db + "-wal"));
  std::filesystem::remove(db + "-wal");
  std::filesystem::remove(db + "-shm");

  CommandResult refused =
      RunShell("timeout 20 " + BinDir() + "/herd-ctld --config " + c.dir() + "/herd.toml");
  EXPECT_EQ(refused.exit_code, 1) << "herd-ctld started on a database that lost "
                                  << "acknowledged jobs (124: it ran until killed)\n"
                                  << refused.err;
  EXPECT_NE(refused.err.find("holds less than herd-ctld committed"), std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("job ids up to " + std::to_string(last)), std::string::npos)
      << refused.err;
  EXPECT_NE(refused.err.find("--accept-lost-state"), std::string::npos) << refused.err;

  ASSERT_TRUE(c.StartController("--accept-lost-state").ok()) << c.log_tail();
  auto next = c.Submit("-J after-the-loss -- true");
  ASSERT_TRUE(next.ok()) << next.status().message();
  EXPECT_GT(*next, last) << "the id of a lost job was handed out again";
  // Accepted once: later starts need no flag and keep counting up.
  ASSERT_TRUE(c.RestartController().ok()) << c.log_tail();
  auto later = c.Submit("-J later -- true");
  ASSERT_TRUE(later.ok()) << later.status().message();
  EXPECT_GT(*later, *next);
}

}  // namespace
}  // namespace herd::testing
