// Fakes that let herd-ctld's Controller and herd-noded's Agent run in one test process, stepped
// by hand: a clock the test moves, an authenticator that only tests may use, a transport that
// joins a Controller's server and Agents' dealers in memory, and a job runtime whose jobs end
// when the test says. Nothing here waits, sleeps or starts a thread.
// Built by in-process tests (tests/ctld, tests/noded, InProcessCluster).
// Thread-safety: none; one test thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/auth/auth.h"
#include "common/net/net.h"
#include "common/proto/codec.h"
#include "common/util/clock.h"
#include "noded/runtime/runtime.h"
#include "spdlog/sinks/ringbuffer_sink.h"
#include "spdlog/spdlog.h"

namespace herd::testing {

// A clock that moves only when the test advances it. Wall time is monotonic time / 1000.
class ManualClock final : public Clock {
 public:
  int64_t NowSeconds() const override { return ms_ / 1000; }
  int64_t MonotonicMillis() const override { return ms_; }
  void Advance(int64_t ms) { ms_ += ms; }

 private:
  int64_t ms_ = 1'800'000'000'000;  // far from 0, which herd-ctld reads as "never"
};

// FOR TESTS ONLY: an Authenticator whose credentials anyone can forge. Each instance signs as
// the uid it was made for ("fake:UID:BINDING"); Verify believes the uid but still checks that
// the credential was made for the message (its MessageBinding), as MUNGE's payload does, so a
// daemon's binding check runs. The user name of uid 0 is "root", of any other "userUID".
class FakeAuthForTests final : public auth::Authenticator {
 public:
  explicit FakeAuthForTests(uint32_t uid) : uid_(uid) {}
  Result<std::string> Credential(std::string_view binding) override;
  Result<auth::Identity> Verify(const std::string& cred, std::string_view binding) override;
  const char* Name() const override { return "fake-for-tests"; }
  static std::string UserName(uint32_t uid);

 private:
  uint32_t uid_;
};

// `e` with a credential of `uid` for `binding` (a fake credential made for another message when
// `binding` is not the envelope's own).
proto::Envelope SignedAs(uint32_t uid, proto::Envelope e);
proto::Envelope SignedForOtherMessage(uint32_t uid, proto::Envelope e);

// The controller's endpoint and its connections, in memory. A Server bound here receives what
// every connected Dealer sends, as an Incoming whose peer is that dealer's route ("conn-1",
// "conn-2", ...; each Connect a fresh one, as ZeroMQ gives each connection a routing id); what
// the Server sends to a route is queued at that dealer. At most one Server is bound at a time (a
// restarted controller binds a new one). A message to a route or server that is gone is
// dropped, as with a closed connection. Nothing waits: Poll and Receive return what is queued.
class InProcessNetwork {
 public:
  struct Message {
    std::string route;  // the dealer's route (the sender's, or the receiver's)
    bool to_server = false;
    proto::Envelope envelope;
  };
  // Returns false to drop a message (a lost packet, a test playing another peer).
  using Filter = std::function<bool(const Message&)>;

  InProcessNetwork();
  ~InProcessNetwork();
  InProcessNetwork(const InProcessNetwork&) = delete;
  InProcessNetwork& operator=(const InProcessNetwork&) = delete;

  // REQUIRES: no other Server bound here is alive.
  std::unique_ptr<net::Server> Bind();
  std::unique_ptr<net::Dealer> Connect();
  // Queues `e` at the server as if the dealer `route` sent it (the test speaks as that peer).
  void Inject(const std::string& route, const proto::Envelope& e);
  void set_filter(Filter filter);
  // How many messages were queued (not dropped) so far: a count that stops growing means quiet.
  int64_t moved() const;
  // Every message queued so far, oldest first.
  const std::vector<Message>& log() const;

  // What the network and its ends share (in_process.cc).
  struct Wire;

 private:
  std::shared_ptr<Wire> wire_;
};

// The jobs of one node as its state directory and herd-shims hold them: they outlive any one
// herd-noded (Agent), so a new FakeRuntime over the same FakeNodeJobs sees them all, as a
// restarted herd-noded does. Records what it was asked; a job runs until Kill (it then exits
// at once with 143, as one that obeys SIGTERM) or until the test ends it with Exit.
class FakeNodeJobs {
 public:
  struct Job {
    runtime::LaunchSpec spec;
    runtime::JobStatus status;
    int kills = 0;  // Kill calls
  };
  // Ends the running job `key` as if its command exited with `exit_code` ("" reason: the
  // runtime's own, "exit code N" when N != 0). False when no such job runs.
  bool Exit(const std::string& key, int exit_code, std::string reason = "");
  // The job `key` unless forgotten (acknowledged ended), or null.
  const Job* Find(const std::string& key) const;
  // Keys of the jobs that run (not ended), in key order.
  std::vector<std::string> Running() const;

  std::vector<runtime::LaunchSpec> launched;  // every launch asked, in order (failed ones too)
  std::vector<std::string> forgotten;         // every Forget asked, in order
  Status fail_next_launch;                    // when not ok, the next launch fails with it

 private:
  friend class FakeRuntime;
  std::map<std::string, Job> jobs_;
};

// herd-noded's Runtime over a FakeNodeJobs.
class FakeRuntime final : public runtime::Runtime {
 public:
  explicit FakeRuntime(std::shared_ptr<FakeNodeJobs> jobs) : jobs_(std::move(jobs)) {}
  // Starts the job at once (its outcome Ok at the next TakeStartOutcomes), or fails with
  // jobs.fail_next_launch as a shim that could not be started.
  Status BeginLaunch(const runtime::LaunchSpec& spec) override;
  std::vector<runtime::StartOutcome> TakeStartOutcomes() override;
  Status Kill(const std::string& job_key, int grace_ms) override;
  Status Suspend(const std::string& job_key) override;
  Status Resume(const std::string& job_key) override;
  std::vector<runtime::JobStatus> Poll() override;
  runtime::CgroupUsage Usage(const std::string& job_key) const override;
  Status Forget(const std::string& job_key) override;
  Result<std::string> ReadLog(const std::string& job_key, const std::string& stream,
                              int64_t offset, int64_t max_bytes, bool* eof) override;
  std::string CgroupMode() const override { return "none"; }
  bool ConfinesDevices() const override { return false; }

 private:
  Status Set(const std::string& job_key, runtime::JobStatus::State state);
  std::shared_ptr<FakeNodeJobs> jobs_;
  std::vector<runtime::StartOutcome> started_;  // since the last TakeStartOutcomes
};

// Keeps the daemons' log lines in memory while it lives, instead of printing them; prints them
// to stderr when the test has failed by then.
class CapturedLog {
 public:
  CapturedLog();
  ~CapturedLog();
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  // The lines logged so far (the latest 2000), one per line.
  std::string Text() const;

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

// A fresh directory under $TMPDIR, else /dev/shm where it can be written, else /tmp; removed
// with everything in it by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace herd::testing
