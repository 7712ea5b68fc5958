// LocalCluster: a real herd cluster for integration tests, started with scripts/local-cluster
// (herd-ctld, one herd-noded per emulated topology, its own munged) in a temporary directory,
// and driven through the real `herd` CLI, as a user would.
// Thread-safety: one test thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/util/status.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/configs.h"

namespace herd::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs `command` with /bin/sh; captures stdout and stderr.
CommandResult RunShell(const std::string& command);

class LocalCluster {
 public:
  struct Options {
    std::string extra_toml;          // merged over the generated herd.toml
    // "name=topology.xml", or "name=host" for this machine's own topology (hwloc discovery);
    // empty: dgx01 + ws01; {"none"}: no node.
    std::vector<std::string> nodes;
    std::string auth = "munge";
    std::string ctld_state_dir = "";  // herd-ctld's state_dir; empty: under the cluster directory
    // Each node's state directory is a tmpfs of this size ("16M"; needs root), "" = none.
    std::string node_state_size = "";
  };
  static Result<std::unique_ptr<LocalCluster>> Start(const Options& options);
  ~LocalCluster();

  // `herd ARGS` against this cluster.
  CommandResult Herd(const std::string& args) const;
  // `SHELL herd ARGS`: `shell` is shell text run first in the same shell, such as
  // "cd DIR && export FOO=x &&", so herd runs in that directory and environment.
  CommandResult HerdIn(const std::string& shell, const std::string& args) const;
  // `herd submit -q ARGS`: the new job's id, or a failed Status with the CLI's stderr.
  Result<long> Submit(const std::string& args) const;
  // `herd show ID --json`.
  Result<nlohmann::json> Show(long id) const;
  // Polls `herd show` until the job's state is `state` (or it ends otherwise): true when reached.
  bool WaitForState(long id, const std::string& state,
                    std::chrono::seconds timeout = std::chrono::seconds(30)) const;
  // Waits for the job to end; returns its final state ("" on timeout).
  std::string WaitForEnd(long id, std::chrono::seconds timeout = std::chrono::seconds(60)) const;

  // `herd ARGS` run from / as uid:gid with no supplementary groups (needs root and setpriv).
  // Opens the cluster directory to all users first, so they can read herd.toml, reach munged and
  // run the copy of herd kept there (the build tree may be closed to them).
  CommandResult HerdAs(uint32_t uid, uint32_t gid, const std::string& args) const;

  // kill -9 of node `name`'s herd-noded; returns once the process is gone.
  Status KillNodeDaemon(const std::string& name) const;
  // `scripts/local-cluster start-node`; returns once the new herd-noded has registered.
  Status StartNodeDaemon(const std::string& name) const;
  // kill -9 of herd-ctld, then `scripts/local-cluster start-ctld`; returns once it answers again.
  Status RestartController() const;
  // The two halves of RestartController: kill -9 of herd-ctld (returns once it is gone), and
  // `scripts/local-cluster start-ctld` (returns once it answers), with herd-ctld options
  // `ctld_args` (e.g. "--accept-lost-state") for this start only.
  Status KillController() const;
  Status StartController(const std::string& ctld_args = "") const;
  // The controller's first listen endpoint, from herd.toml ("tcp://127.0.0.1:PORT").
  std::string ControllerEndpoint() const;
  // The pid of node `name`'s herd-noded (from its pid file), or 0.
  pid_t NodeDaemonPid(const std::string& name) const;

  // The state directory of a job's worker on node `name` (holds the shim's `exit` file), for the
  // job's run `run` (its restart count when launched).
  std::string JobDir(const std::string& name, long id, int worker = 0, int run = 0) const;
  // The cgroup mode node `name` reported at start ("v1", "v2", "hybrid", "none"), "" if unknown.
  std::string CgroupMode(const std::string& name) const;

  const std::string& dir() const { return dir_; }
  std::string log_tail() const;  // the daemons' last log lines, for failure messages

 private:
  LocalCluster() = default;
  std::string dir_;
  std::string env_;  // "HERD_CONFIG=... PATH=..." prefix for commands
};

// A fixture whose tests share one cluster, started once per test process; `Suite` is the
// derived class, so each suite has a cluster of its own: the default one (dgx01 + ws01), or what
// a static `Suite::ClusterOptions()` asks for.
template <typename Suite>
class SharedClusterTest : public ::testing::Test {
 protected:
  static LocalCluster::Options ClusterOptions() { return {}; }
  static void SetUpTestSuite() {
    auto c = LocalCluster::Start(Suite::ClusterOptions());
    if (!c.ok()) {
      start_error_ = c.status().message();
      return;
    }
    cluster_ = c->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(cluster_, nullptr) << "the local cluster did not start: " << start_error_;
  }
  const LocalCluster& c() { return *cluster_; }

  static inline LocalCluster* cluster_ = nullptr;
  static inline std::string start_error_;
};

// The whole file at `path`, "" when it cannot be read.
std::string ReadText(const std::string& path);
// True while `pid` runs; a zombie counts as gone.
bool Alive(pid_t pid);
// `herd nodes --json` of `c`: the state of node `name`, "" if unknown.
std::string NodeState(const LocalCluster& c, const std::string& name);

// Paths of the build, set by CMake.
std::string SourceDir();
std::string BinDir();
// A busybox rootfs for container jobs under `dir`, or "" (with `why`) when it cannot be made.
std::string MakeRootfs(const std::string& dir, std::string* why);

}  // namespace herd::testing
