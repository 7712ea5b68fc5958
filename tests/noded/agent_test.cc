// herd-noded's Agent alone, in process: the test plays herd-ctld on an InProcessNetwork, on a
// ManualClock, with the node's jobs in FakeNodeJobs (or herd-noded-emulator's EmulatedRuntime).
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "noded/agent.h"
#include "noded/emulated_runtime.h"
#include "noded/gpu/gpu.h"
#include "tests/support/in_process.h"

namespace herd::testing {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

constexpr uint32_t kAlice = 1000;
constexpr uint32_t kStranger = 4242;  // neither root, nor herd-noded's user, nor herd-ctld's

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    ASSERT_NE(getuid(), kStranger);
    server_ = net_.Bind();
  }

  // A new herd-noded for node n1 over jobs_ (or over `runtime`), on a new connection.
  void StartAgent(int64_t controller_uid = -1, std::unique_ptr<runtime::Runtime> runtime = nullptr) {
    noded::AgentOptions o;
    o.name = "n1";
    o.controller = "inproc://herd-ctld";
    o.state_dir = dir_.path();
    o.topology.gpus.resize(2);
    o.topology.gpus[1].index = 1;
    o.topology.numa.push_back({0, {0, 1, 2, 3}, 4096});
    o.topology.memory_mib = 4096;
    o.topology.emulated = true;
    o.controller_uid = controller_uid;
    if (runtime == nullptr) runtime = std::make_unique<FakeRuntime>(jobs_);
    agent_.reset();
    agent_ = std::make_unique<noded::Agent>(std::move(o), std::move(runtime),
                                            std::make_unique<FakeAuthForTests>(0),
                                            gpu::NoMetrics(), &clock_);
    ASSERT_TRUE(agent_->Connect(net_.Connect()).ok());
  }

  // Steps the agent once; returns what it sent (each checked to carry root's credential).
  std::vector<proto::Envelope> Step() {
    agent_->Step(0);
    std::vector<proto::Envelope> out;
    for (auto& in : server_->Poll(0)) {
      const auto& e = in.envelope;
      auto who = FakeAuthForTests(0).Verify(e.cred, auth::MessageBinding(e.type, e.id, e.body));
      EXPECT_TRUE(who.ok() && who->uid == 0) << e.type;
      route_ = in.peer;
      out.push_back(std::move(in.envelope));
    }
    return out;
  }

  // Sends `body` to the agent as herd-ctld, signed as `uid`.
  template <typename T>
  void Send(const T& body, uint32_t uid = 0) {
    server_->Send(route_, SignedAs(uid, proto::MakeEnvelope(body)));
  }

  // Starts an agent and answers its Register: the Register it sent.
  proto::RegisterRequest Register(int64_t controller_uid = -1,
                                  std::unique_ptr<runtime::Runtime> runtime = nullptr) {
    StartAgent(controller_uid, std::move(runtime));
    auto sent = Step();
    EXPECT_EQ(sent.size(), 1u);
    if (sent.size() != 1 || sent[0].type != "register") return {};
    Send(proto::RegisterReply{1000});
    EXPECT_THAT(Step(), IsEmpty());
    return *proto::BodyOf<proto::RegisterRequest>(sent[0]);
  }

  static proto::LaunchCommand Launch(model::JobId id, uint32_t uid = kAlice, int run = 0) {
    proto::LaunchCommand cmd;
    cmd.job.id = id;
    cmd.job.uid = cmd.job.gid = uid;
    cmd.job.restart_count = run;
    cmd.job.spec.argv = {"train.py", "--epochs", "3"};
    model::WorkerPlacement w;
    w.node = "n1";
    w.gpus = {1};
    w.gpu_milli_each = 1000;
    w.cores = {2, 3};
    w.memory_mib = 1024;
    cmd.job.placement = {w};
    cmd.env = {{"HERD_JOB_ID", std::to_string(id)}};
    return cmd;
  }

  // The job reports among `sent`.
  static std::vector<proto::JobReport> Reports(const std::vector<proto::Envelope>& sent) {
    std::vector<proto::JobReport> out;
    for (const auto& e : sent) {
      if (e.type != "job_event") continue;
      if (auto ev = proto::BodyOf<proto::JobEvent>(e); ev.ok()) out.push_back(ev->report);
    }
    return out;
  }

  CapturedLog log_;
  ManualClock clock_;
  InProcessNetwork net_;
  std::unique_ptr<net::Server> server_;
  TempDir dir_;
  std::shared_ptr<FakeNodeJobs> jobs_ = std::make_shared<FakeNodeJobs>();
  std::unique_ptr<noded::Agent> agent_;
  std::string route_;
};

TEST_F(AgentTest, LaunchStartsTheJobAsItsUserReportsItAndReportsItsEndUntilAcknowledged) {
  Register();
  Send(Launch(7));
  auto reports = Reports(Step());
  ASSERT_EQ(jobs_->launched.size(), 1u);
  const runtime::LaunchSpec& spec = jobs_->launched[0];
  EXPECT_EQ(spec.job_key, "7.0.0");
  EXPECT_EQ(spec.uid, kAlice);
  EXPECT_EQ(spec.gid, kAlice);
  EXPECT_EQ(spec.argv, (std::vector<std::string>{"train.py", "--epochs", "3"}));
  EXPECT_EQ(spec.gpus, std::vector<int>{1});
  EXPECT_EQ(spec.memory_mib, 1024);
  EXPECT_THAT(spec.env, Contains(Pair("CUDA_VISIBLE_DEVICES", "1")));
  EXPECT_THAT(spec.env, Contains(Pair("HERD_NODE", "n1")));
  EXPECT_THAT(spec.env, Contains(Pair("HERD_JOB_ID", "7")));
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].id, 7);
  EXPECT_EQ(reports[0].state, "RUNNING");

  // Its end is reported at the next poll, then every 2 s until herd-ctld acknowledges it.
  ASSERT_TRUE(jobs_->Exit("7.0.0", 3));
  clock_.Advance(100);
  reports = Reports(Step());
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].state, "ENDED");
  EXPECT_EQ(reports[0].exit_code, 3);
  EXPECT_EQ(reports[0].reason, "exit code 3");
  clock_.Advance(1000);
  EXPECT_THAT(Reports(Step()), IsEmpty());
  clock_.Advance(1000);
  EXPECT_EQ(Reports(Step()).size(), 1u);

  Send(proto::EventAck{7, 0, 0});
  Step();
  EXPECT_THAT(jobs_->forgotten, ElementsAre("7.0.0"));
  clock_.Advance(5000);
  EXPECT_THAT(Reports(Step()), IsEmpty());
}

// The output patterns are expanded for the worker the node starts; a restarted run appends, so
// that what the run before it wrote stays.
TEST_F(AgentTest, LaunchExpandsTheOutputPatternsAndARestartAppends) {
  Register();
  proto::LaunchCommand cmd = Launch(8);
  cmd.job.user = "alice";
  cmd.job.spec.name = "train";
  cmd.job.spec.output = "/home/alice/%x.%j.%N.out";
  cmd.job.spec.error = "/home/alice/%u.%A_%a.err";
  Send(cmd);
  Step();
  cmd.job.restart_count = 1;
  Send(cmd);
  Step();
  ASSERT_EQ(jobs_->launched.size(), 2u);
  EXPECT_EQ(jobs_->launched[0].stdout_path, "/home/alice/train.8.n1.out");
  EXPECT_EQ(jobs_->launched[0].stderr_path, "/home/alice/alice.8_0.err");
  EXPECT_FALSE(jobs_->launched[0].append_output);
  EXPECT_EQ(jobs_->launched[1].job_key, "8.1.0");
  EXPECT_TRUE(jobs_->launched[1].append_output);
}

TEST_F(AgentTest, KillStopsOnlyTheWorkersOfTheRunItNames) {
  Register();
  Send(Launch(7));
  Send(Launch(8));
  Step();
  ASSERT_EQ(jobs_->Running(), (std::vector<std::string>{"7.0.0", "8.0.0"}));

  // A kill of another run of job 7 (a later one) leaves this run alone.
  Send(proto::SignalCommand{7, "kill", 0, "cancelled", 1});
  EXPECT_THAT(Reports(Step()), IsEmpty());
  EXPECT_EQ(jobs_->Running().size(), 2u);

  Send(proto::SignalCommand{7, "kill", 10'000, "cancelled", 0});
  auto reports = Reports(Step());
  EXPECT_EQ(jobs_->Find("7.0.0")->kills, 1);
  EXPECT_EQ(jobs_->Running(), std::vector<std::string>{"8.0.0"});
  ASSERT_EQ(reports.size(), 1u) << "a job that ends at once is reported at once";
  EXPECT_EQ(reports[0].id, 7);
  EXPECT_EQ(reports[0].state, "ENDED");
  EXPECT_EQ(reports[0].exit_code, 143);
}

TEST_F(AgentTest, CommandsSignedByAStrangerOrForAnotherMessageAreDropped) {
  Register();
  Send(Launch(7), kStranger);
  server_->Send(route_, SignedForOtherMessage(0, proto::MakeEnvelope(Launch(8))));
  EXPECT_THAT(Step(), IsEmpty());
  EXPECT_THAT(jobs_->launched, IsEmpty());
  EXPECT_THAT(log_.Text(), HasSubstr("sent as uid 4242"));
  EXPECT_THAT(log_.Text(), HasSubstr("made for another message"));

  // A kill signed by a stranger does not touch a running job either.
  Send(Launch(9));
  Step();
  Send(proto::SignalCommand{9, "kill", 0, "", 0}, kStranger);
  Step();
  EXPECT_EQ(jobs_->Running(), std::vector<std::string>{"9.0.0"});
}

TEST_F(AgentTest, LaunchSignedByHerdCtldsConfiguredUserIsObeyed) {
  Register(/*controller_uid=*/kStranger);
  Send(Launch(7), kStranger);
  Step();
  EXPECT_EQ(jobs_->Running(), std::vector<std::string>{"7.0.0"});
}

TEST_F(AgentTest, RootJobIsRefusedAndReportedAsNeverStarted) {
  Register();
  Send(Launch(7, /*uid=*/0));
  Step();
  EXPECT_THAT(jobs_->launched, IsEmpty());
  clock_.Advance(100);  // reported at the next poll
  auto reports = Reports(Step());
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].state, "ENDED");
  EXPECT_EQ(reports[0].exit_code, 127);
  EXPECT_THAT(reports[0].reason, HasSubstr("may not run as root"));
}

TEST_F(AgentTest, RestartedNodeDaemonRegistersWithItsRunningAndEndedJobs) {
  Register();
  Send(Launch(7));
  Send(Launch(8));
  Step();
  // herd-noded is replaced while its jobs run on; job 8 ends while none runs.
  agent_.reset();
  ASSERT_TRUE(jobs_->Exit("8.0.0", 0));
  proto::RegisterRequest reg = Register();
  ASSERT_EQ(reg.jobs.size(), 2u);
  EXPECT_EQ(reg.jobs[0].id, 7);
  EXPECT_EQ(reg.jobs[0].state, "RUNNING");
  EXPECT_EQ(reg.jobs[1].id, 8);
  EXPECT_EQ(reg.jobs[1].state, "ENDED");
  EXPECT_EQ(reg.jobs[1].exit_code, 0);
  Send(proto::EventAck{8, 0, 0});  // as herd-ctld acknowledges an end a Register carries
  Step();
  EXPECT_THAT(jobs_->forgotten, ElementsAre("8.0.0"));

  // The new herd-noded acts on the job it did not launch.
  Send(proto::SignalCommand{7, "kill", 0, "", 0});
  auto reports = Reports(Step());
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].exit_code, 143);
}

// herd-noded acts on the error's code, never on its words.
TEST_F(AgentTest, AnErrorThatOnlySaysNotRegisteredInWordsChangesNothing) {
  Register();
  Send(proto::ErrorReply{static_cast<int>(Code::kInvalid), "job 7 is not registered anywhere"});
  EXPECT_THAT(Step(), IsEmpty());
  for (const auto& e : Step()) EXPECT_NE(e.type, "register");
}

TEST_F(AgentTest, NotRegisteredErrorMakesTheNodeRegisterAgain) {
  Register();
  Send(proto::ErrorReply{static_cast<int>(Code::kNotRegistered),
                         "node n1 is not registered with this herd-ctld on this connection: "
                         "register first"});
  EXPECT_THAT(Step(), IsEmpty());
  auto sent = Step();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].type, "register");
}

// The code alone decides: herd-ctld may reword the message (or translate it).
TEST_F(AgentTest, NotRegisteredCodeWithOtherWordsMakesTheNodeRegisterAgain) {
  Register();
  Send(proto::ErrorReply{static_cast<int>(Code::kNotRegistered), "noeud inconnu"});
  EXPECT_THAT(Step(), IsEmpty());
  auto sent = Step();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].type, "register");
}

TEST_F(AgentTest, EmulatedJobRunsItsTimeAndCompletes) {
  Register(-1, std::make_unique<noded::EmulatedRuntime>(&clock_, /*run_ms=*/5000));
  Send(Launch(7));
  auto reports = Reports(Step());
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].state, "RUNNING");
  clock_.Advance(4900);
  EXPECT_THAT(Reports(Step()), IsEmpty());
  clock_.Advance(100);
  reports = Reports(Step());
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].state, "ENDED");
  EXPECT_EQ(reports[0].exit_code, 0);
}

}  // namespace
}  // namespace herd::testing
