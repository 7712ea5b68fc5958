// InProcessCluster: one herd-ctld Controller and N herd-noded Agents in the test's process,
// joined by an InProcessNetwork, on one ManualClock, with a real SQLite store in a temporary
// directory and FakeNodeJobs for each node's jobs. The test steps everything explicitly:
// Settle() delivers messages until none moves, Advance() moves the clock in small steps and
// settles after each, so a test reads as what happens at which instant, in milliseconds of
// real time. Daemons' log lines are kept and printed only when the test fails.
// Real time does not pace herd-ctld's cycles here (Controller::set_pacing_clock): a request
// that asks for a cycle (a submit, an end) gets it in the Step that handles it.
// Built by tests/ctld. Thread-safety: none; one test thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/model/job.h"
#include "common/proto/messages.h"
#include "ctld/controller.h"
#include "noded/agent.h"
#include "tests/support/in_process.h"

namespace herd::testing {

class InProcessCluster;

// A user of the cluster: sends requests signed as `uid` on a connection of its own and returns
// the reply, after everything the request set off among the daemons has settled.
class TestClient {
 public:
  TestClient(InProcessCluster* cluster, uint32_t uid);

  // The reply envelope to `request` (signed here), or Unavailable when none came.
  Result<proto::Envelope> CallRaw(proto::Envelope request);
  // The reply as Rep, or the Status of an ErrorReply.
  template <typename Rep, typename Req>
  Result<Rep> Call(const Req& request) {
    auto reply = CallRaw(proto::MakeEnvelope(request));
    if (!reply.ok()) return reply.status();
    if (Status s = net::ReplyStatus(*reply); !s.ok()) return s;
    return proto::BodyOf<Rep>(*reply);
  }
  Result<model::JobId> Submit(model::JobSpec spec);
  // The job as this user sees it (finished ones too).
  Result<model::Job> Show(model::JobId id);
  // "cancel", "suspend", "resume" or "release" of `id`: the result for it.
  Result<proto::JobActionResult> Action(const std::string& action, model::JobId id);

 private:
  InProcessCluster* cluster_;
  uint32_t uid_;
  std::unique_ptr<net::Dealer> dealer_;
  uint64_t next_id_ = 1;
};

class InProcessCluster {
 public:
  struct NodeOptions {
    std::string name;
    int gpus = 4;
    int cores = 16;
    int64_t memory_mib = 64 << 10;
    // A file its herd-noded reads GPU activity from at each heartbeat (gpu::OpenFedSource's
    // format, "INDEX UTIL_PCT MEM_USED_MIB" per line); "" = no GPU metrics.
    std::string gpu_feed = {};
  };
  struct Options {
    std::string toml;  // herd-ctld's herd.toml ("" = every default)
    std::vector<NodeOptions> nodes = {{"n1"}};
  };

  // The controller recovered from a fresh database and every node connected (registered at
  // the first Settle).
  static Result<std::unique_ptr<InProcessCluster>> Start(const Options& options);
  // Start, then Settle (every node registered); null and a failed test when it cannot start.
  static std::unique_ptr<InProcessCluster> Started(const Options& options);
  static std::unique_ptr<InProcessCluster> Started();  // one node "n1", every default
  ~InProcessCluster();

  // Steps the controller and every running agent until no message moves. Reports a failure
  // (ADD_FAILURE) when the controller's Step fails or messages never stop.
  void Settle();
  // Moves the clock `ms` forward in steps of at most 100 ms (an agent's poll interval),
  // settling after each: heartbeats, reports and cycles happen when due. (Moving clock() by more
// than half a node_timeout at once looks to herd-ctld like its own loop stalled.)
  void Advance(int64_t ms);
  // Advance by one cycle_interval: a scheduling cycle and its launches, reports and replies.
  void Cycle();

  // herd-ctld killed (its connections go with it), started again over the same database, or
  // both.
  void StopController();
  Status StartController();
  Status RestartController();
  // Node `name`'s herd-noded gone (kill -9): it stops stepping and its connection closes. Its
  // jobs run on (FakeNodeJobs).
  void StopNode(const std::string& name);
  // A new herd-noded for node `name` over the same jobs, on a new connection.
  Status StartNode(const std::string& name);
  // Node `name`'s herd-noded frozen (SIGSTOP) or thawed: messages to it wait.
  void FreezeNode(const std::string& name, bool frozen);

  TestClient Client(uint32_t uid) { return TestClient(this, uid); }
  // `spec` submitted as `uid`: the new job's id, or 0 and a failed test when it is refused.
  model::JobId Submit(uint32_t uid, model::JobSpec spec);
  // Submit, then Cycle: the job's id once it runs, or 0 and a failed test.
  model::JobId SubmitRunning(uint32_t uid, model::JobSpec spec);
  // The job as root sees it; a failed test when it cannot be read.
  model::Job Job(model::JobId id);
  // Node `name` as `herd nodes` shows it ("UP", "DOWN", "DRAIN"; "" when unknown).
  std::string NodeState(const std::string& name);
  // The jobs of node `name` ("42.0.0" = job 42, run 0, worker 0).
  FakeNodeJobs& jobs(const std::string& name) { return *nodes_.at(name).jobs; }

  // herd-ctld's database (a test may open a second Store on it to look inside).
  std::string database() const { return dir_.path() + "/herd.db"; }
  ManualClock& clock() { return clock_; }
  // herd-ctld's controller. REQUIRES: it runs (not between StopController and StartController).
  ctld::Controller& controller() { return *controller_; }
  InProcessNetwork& network() { return network_; }
  const config::Config& config() const { return config_; }
  std::string log() const { return log_.Text(); }

 private:
  struct Node {
    NodeOptions options;
    std::unique_ptr<TempDir> state_dir;
    std::shared_ptr<FakeNodeJobs> jobs;
    std::unique_ptr<noded::Agent> agent;  // null while its herd-noded is stopped
    bool frozen = false;
  };
  InProcessCluster() = default;
  void StepController();

  CapturedLog log_;
  ManualClock clock_;
  std::unique_ptr<TestClient> root_;  // for Job() and NodeState()
  InProcessNetwork network_;
  TempDir dir_;
  config::Config config_;
  std::unique_ptr<ctld::Controller> controller_;
  std::map<std::string, Node> nodes_;
};

// A job of `gpus` whole GPUs per worker (its command is never run), in `project` ("" = the
// default project).
model::JobSpec Spec(int64_t gpus, const std::string& job_class = "train",
                    const std::string& project = "");

// An array of `indexes` submitted as `uid`, each member a Spec(gpus): its id (its first
// member's); 0 after a failed expectation.
model::JobId SubmitArray(InProcessCluster& c, uint32_t uid, std::vector<int64_t> indexes,
                         int64_t gpus = 1);
// A CPU-only job of `uid` that depends on `after` ("12:ok", "12_3:any").
model::JobId SubmitAfter(InProcessCluster& c, uint32_t uid, const std::string& after);
// Job `id`'s current run on node n1 exits with `exit_code`, and 100 ms pass: false if it has
// no process there.
bool Ends(InProcessCluster& c, model::JobId id, int exit_code);

}  // namespace herd::testing
