// herd-noded-emulator against a real herd-ctld: many emulated nodes register from one process
// over the real protocol, and a job placed on one of them goes RUNNING and ends when cancelled.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/support/eventually.h"

extern char** environ;

namespace herd::testing {
namespace {

constexpr int kNodes = 50;

// The emulator as a child of the test, stopped (SIGTERM, then waited for) when it goes away.
class Emulator {
 public:
  static pid_t Start(const LocalCluster& c) {
    std::vector<std::string> args = {BinDir() + "/herd-noded-emulator",
                                     "--config", c.dir() + "/herd.toml",
                                     "--nodes", std::to_string(kNodes),
                                     "--topology", SourceDir() + "/etc/topologies/dgx-a100-8gpu.xml",
                                     "--name-prefix", "emu",
                                     "--state-dir", c.dir() + "/emulator",
                                     "--log-file", c.dir() + "/emulator.log"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return 0;
    return pid;
  }
  static void Stop(pid_t pid) {
    if (pid <= 0) return;
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
  }
};

int UpNodes(const LocalCluster& c) {
  CommandResult r = c.Herd("nodes --json");
  if (r.exit_code != 0) return -1;
  auto nodes = nlohmann::json::parse(r.out, nullptr, false);
  if (!nodes.is_array()) return -1;
  int up = 0;
  for (const auto& n : nodes) {
    up += n.value("state", "") == "UP" && n.value("name", "").rfind("emu", 0) == 0;
  }
  return up;
}

TEST(EmulatorIntegrationTest, FiftyEmulatedNodesRegisterAndRunAJob) {
  LocalCluster::Options options;
  options.nodes = {"none"};
  auto started = LocalCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  std::unique_ptr<pid_t, void (*)(pid_t*)> emulator(new pid_t(Emulator::Start(c)), [](pid_t* p) {
    Emulator::Stop(*p);
    delete p;
  });
  ASSERT_GT(*emulator, 0) << "cannot start " << BinDir() << "/herd-noded-emulator";

  int up = 0;
  Eventually(std::chrono::seconds(20), [&] { return (up = UpNodes(c)) >= kNodes; });
  ASSERT_EQ(up, kNodes) << c.log_tail();

  auto id = c.Submit("-g 2 -- sleep 300");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(c.WaitForState(*id, "RUNNING", std::chrono::seconds(15))) << c.log_tail();
  auto job = c.Show(*id);
  ASSERT_TRUE(job.ok()) << job.status().message();
  ASSERT_EQ((*job)["placement"].size(), 1u);
  EXPECT_EQ((*job)["placement"][0]["node"].get<std::string>().rfind("emu", 0), 0u);
  EXPECT_EQ((*job)["placement"][0]["gpus"].size(), 2u);

  // An emulated job ends as soon as it is told to stop.
  CommandResult cancel = c.Herd("cancel " + std::to_string(*id));
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_EQ(c.WaitForEnd(*id, std::chrono::seconds(15)), "CANCELLED") << c.log_tail();
}

}  // namespace
}  // namespace herd::testing
