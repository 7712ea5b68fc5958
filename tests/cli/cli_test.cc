// Tests of the herd CLI through RunCli, with a Controller fake that records every request.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <functional>
#include <iostream>
#include <fstream>
#include <memory>
#include <thread>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/batch.h"
#include "cli/cli.h"
#include "cli/context.h"
#include "cli/format.h"
#include "cli/remote.h"
#include "common/model/output_path.h"
#include "common/net/net.h"
#include "tests/support/pty_process.h"

namespace herd::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// What the fake herd-ctld was asked and what it answers.
struct FakeState {
  Status fail;  // when not ok, every call returns it
  std::vector<proto::SubmitRequest> submits;
  std::vector<proto::JobsRequest> jobs_requests;
  std::vector<proto::JobActionRequest> actions;
  std::vector<proto::UpdateJobRequest> updates;
  std::vector<proto::AdminRequest> admin_requests;
  std::vector<proto::LogsRequest> logs_requests;
  int nodes_requests = 0;
  std::vector<GlobalOptions> connects;
  bool announce_jobs = false;  // each Jobs request prints "[jobs asked]" on stderr

  proto::SubmitReply submit_reply{42};
  std::deque<proto::JobsReply> jobs_replies;  // the last one repeats
  proto::JobActionReply action_reply;
  std::deque<proto::LogsReply> logs_replies;
  proto::NodesReply nodes_reply;
  proto::WhyReply why_reply;
  std::vector<proto::HistoryRequest> history_requests;
  proto::HistoryReply history_reply;
  proto::ProjectsReply projects_reply;
};

class FakeController : public Controller {
 public:
  explicit FakeController(FakeState* s) : s_(s) {}
  Result<proto::SubmitReply> Submit(const proto::SubmitRequest& r) override {
    s_->submits.push_back(r);
    if (!s_->fail.ok()) return s_->fail;
    return s_->submit_reply;
  }
  Result<proto::JobsReply> Jobs(const proto::JobsRequest& r) override {
    s_->jobs_requests.push_back(r);
    if (s_->announce_jobs) std::cerr << "[jobs asked]" << std::endl;
    if (!s_->fail.ok()) return s_->fail;
    proto::JobsReply reply = s_->jobs_replies.empty() ? proto::JobsReply{} : s_->jobs_replies[0];
    if (s_->jobs_replies.size() > 1) s_->jobs_replies.pop_front();
    return reply;
  }
  Result<proto::JobActionReply> JobAction(const proto::JobActionRequest& r) override {
    s_->actions.push_back(r);
    if (!s_->fail.ok()) return s_->fail;
    return s_->action_reply;
  }
  Result<proto::JobActionReply> UpdateJob(const proto::UpdateJobRequest& r) override {
    s_->updates.push_back(r);
    if (!s_->fail.ok()) return s_->fail;
    return s_->action_reply;
  }
  Result<proto::AdminReply> Admin(const proto::AdminRequest& r) override {
    s_->admin_requests.push_back(r);
    if (!s_->fail.ok()) return s_->fail;
    return proto::AdminReply{"done"};
  }
  Result<proto::LogsReply> Logs(const proto::LogsRequest& r) override {
    s_->logs_requests.push_back(r);
    if (!s_->fail.ok()) return s_->fail;
    if (s_->logs_replies.empty()) return proto::LogsReply{"", r.offset, true};
    proto::LogsReply reply = s_->logs_replies.front();
    s_->logs_replies.pop_front();
    return reply;
  }
  Result<proto::NodesReply> Nodes(const proto::NodesRequest&) override {
    ++s_->nodes_requests;
    if (!s_->fail.ok()) return s_->fail;
    return s_->nodes_reply;
  }
  Result<proto::WhyReply> Why(const proto::WhyRequest&) override {
    if (!s_->fail.ok()) return s_->fail;
    return s_->why_reply;
  }
  Result<proto::ProjectsReply> Projects(const proto::ProjectsRequest&) override {
    if (!s_->fail.ok()) return s_->fail;
    return s_->projects_reply;
  }
  Result<proto::HistoryReply> History(const proto::HistoryRequest& r) override {
    s_->history_requests.push_back(r);
    if (!s_->fail.ok()) return s_->fail;
    return s_->history_reply;
  }

 private:
  FakeState* s_;
};

constexpr int64_t kNow = 1'700'000'000;

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

class CliTest : public ::testing::Test {
 protected:
  CliTest() {
    env_.cwd = "/home/u/work";
    env_.user = "tester";
    env_.wait_poll_ms = 1;
    env_.logs_poll_ms = 1;
    env_.now = [] { return kNow; };
    env_.connect = [this](const GlobalOptions& o) -> Result<std::unique_ptr<Controller>> {
      fake_.connects.push_back(o);
      return std::unique_ptr<Controller>(std::make_unique<FakeController>(&fake_));
    };
  }

  Outcome Herd(std::vector<std::string> args) {
    std::ostringstream out, err;
    int code = RunCli(args, out, err, env_);
    return {code, out.str(), err.str()};
  }

  // Runs a command that must be refused before any request: exit 1, "herd: ..." on stderr.
  std::string Refused(std::vector<std::string> args) {
    const size_t requests =
        fake_.submits.size() + fake_.jobs_requests.size() + fake_.actions.size();
    Outcome r = Herd(std::move(args));
    EXPECT_EQ(r.code, kExitUsage) << r.err;
    EXPECT_THAT(r.err, HasSubstr("herd: "));
    EXPECT_THAT(r.out, IsEmpty());
    EXPECT_EQ(fake_.submits.size() + fake_.jobs_requests.size() + fake_.actions.size(), requests)
        << "a refused command sent a request";
    return r.err;
  }

  FakeState fake_;
  Environment env_;
};

model::Job MakeJob(model::JobId id, model::JobState state) {
  model::Job job;
  job.id = id;
  job.spec.name = "train-" + std::to_string(id);
  job.spec.project = "vision";
  job.spec.argv = {"python", "train.py"};
  job.spec.gpu_milli = 500;
  job.user = "alice";
  job.state = state;
  job.submit_time = kNow - 600;
  return job;
}

// ---- submit ----

TEST_F(CliTest, SubmitParsesEveryOptionIntoTheJobSpec) {
  Outcome r = Herd({"submit", "-g", "0.25", "--gpu-memory", "8G", "-c", "4", "--mem", "10G", "-t",
                    "1h30m", "-p", "vision", "-J", "exp1", "--image", "rootfs/../img", "--spread",
                    "-e", "A=1", "--env", "B=x=y", "--chdir", "sub", "--class", "inference",
                    "--", "python", "train.py", "--lr", "3"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "submitted job 42\n");
  ASSERT_EQ(fake_.submits.size(), 1u);
  const model::JobSpec& s = fake_.submits[0].spec;
  EXPECT_EQ(s.gpu_milli, 250);
  EXPECT_EQ(s.gpu_memory_mib, 8192);
  EXPECT_EQ(s.cpus, 4);
  EXPECT_EQ(s.memory_mib, 10240);
  EXPECT_EQ(s.time_limit_s, 5400);
  EXPECT_EQ(s.project, "vision");
  EXPECT_EQ(s.name, "exp1");
  EXPECT_EQ(s.image, "/home/u/work/img");
  EXPECT_TRUE(s.spread);
  EXPECT_EQ(s.env, (std::map<std::string, std::string>{{"A", "1"}, {"B", "x=y"}}));
  EXPECT_EQ(s.cwd, "/home/u/work/sub");
  EXPECT_EQ(s.job_class, "inference");
  EXPECT_THAT(s.argv, ElementsAre("python", "train.py", "--lr", "3"));
  EXPECT_EQ(s.workers, 1);
}

TEST_F(CliTest, SubmitGpuMemoryTakesARequestAndAnOptionalLimit) {
  ASSERT_EQ(Herd({"submit", "-g", "0.5", "--gpu-memory", "8G:12G", "--", "x"}).code, kExitOk);
  ASSERT_EQ(Herd({"submit", "-g", "0.5", "--gpu-memory", "8G", "--", "x"}).code, kExitOk);
  EXPECT_EQ(fake_.submits.at(0).spec.gpu_memory_mib, 8192);
  EXPECT_EQ(fake_.submits.at(0).spec.gpu_memory_limit_mib, 12288);
  EXPECT_EQ(fake_.submits.at(1).spec.gpu_memory_mib, 8192);
  EXPECT_EQ(fake_.submits.at(1).spec.gpu_memory_limit_mib, 0) << "no limit: the request";
  EXPECT_THAT(Refused({"submit", "--gpu-memory", "8G:4G", "--", "x"}),
              HasSubstr("the limit 4G is below the request 8G"));
  EXPECT_THAT(Refused({"submit", "--gpu-memory", "8Q", "--", "x"}),
              HasSubstr("invalid GPU memory '8Q': use REQ[:LIMIT]"));
  EXPECT_THAT(Refused({"submit", "--gpu-memory", "8G:", "--", "x"}),
              HasSubstr("invalid GPU memory"));
}

// The directory here is seldom in an image, and the node refuses a cwd the
// container lacks.
TEST_F(CliTest, ContainerJobStartsInTheContainersRootUnlessChdirIsGiven) {
  ASSERT_EQ(Herd({"submit", "--image", "img", "--", "true"}).code, kExitOk);
  ASSERT_EQ(Herd({"submit", "--image", "img", "--chdir", "/data", "--", "true"}).code, kExitOk);
  EXPECT_EQ(fake_.submits.at(0).spec.cwd, "/");
  EXPECT_EQ(fake_.submits.at(1).spec.cwd, "/data");
}

// herd projects --pool shows the tree's quota and use of one node pool's GPUs, as --type does of
// one GPU type; --json carries every pool's under by_pool.
TEST_F(CliTest, ProjectsShowTheQuotaAndUseOfOnePool) {
  proto::ProjectStatus a;
  a.name = "a";
  a.is_project = true;
  a.by_type = {{"h100", 4000, -1, 4000, 1000}};
  a.by_pool = {{"train", 6000, 7000, 6500, 3000}};
  proto::ProjectStatus b;
  b.name = "b";
  b.is_project = true;
  fake_.projects_reply.projects = {a, b};
  Outcome r = Herd({"projects", "--pool", "train"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, ::testing::ContainsRegex("a +- +project +6 +7 +6.5 +3\n"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex("b +- +project +0 +- +0 +0\n"));
  EXPECT_THAT(r.out, HasSubstr("GPUs of pool train's nodes only"));

  r = Herd({"projects", "--pool", "infer"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("no project has a quota of pool 'infer' (pools with quotas: train); "
                               "herd.toml(5) sets them as \"pool.infer\" keys"));
  r = Herd({"projects", "--pool", "train", "--type", "h100"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("give --type or --pool, not both"));

  r = Herd({"projects", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  auto json = nlohmann::json::parse(r.out);
  EXPECT_EQ(json[0]["by_pool"]["train"]["deserved"], 6);
  EXPECT_EQ(json[0]["by_pool"]["train"]["limit"], 7);
  EXPECT_EQ(json[0]["by_pool"]["train"]["allocated"], 3);
  EXPECT_EQ(json[0]["by_type"]["h100"]["deserved"], 4);
  EXPECT_TRUE(json[1]["by_pool"].empty());
}

TEST_F(CliTest, SubmitDefaultsLeaveProjectToTheController) {
  ASSERT_EQ(Herd({"submit", "--", "true"}).code, kExitOk);
  const model::JobSpec& s = fake_.submits.at(0).spec;
  EXPECT_EQ(s.project, "");
  EXPECT_EQ(s.cwd, "/home/u/work");
  EXPECT_EQ(s.gpu_milli, 0);
  EXPECT_EQ(s.workers, 1);
  EXPECT_EQ(s.cpus, 1);
  EXPECT_EQ(s.job_class, "train");
}

TEST_F(CliTest, SubmitGangOfWholeGpus) {
  ASSERT_EQ(Herd({"submit", "-N", "4", "-g", "8", "torchrun", "x.py"}).code, kExitOk);
  const model::JobSpec& s = fake_.submits.at(0).spec;
  EXPECT_EQ(s.workers, 4);
  EXPECT_EQ(s.gpu_milli, 8000);
  EXPECT_THAT(s.argv, ElementsAre("torchrun", "x.py"));
}

TEST_F(CliTest, SubmitInteractiveAndTrainSetTheClass) {
  ASSERT_EQ(Herd({"submit", "--interactive", "--", "bash"}).code, kExitOk);
  ASSERT_EQ(Herd({"submit", "--train", "--", "bash"}).code, kExitOk);
  EXPECT_EQ(fake_.submits.at(0).spec.job_class, "interactive");
  EXPECT_EQ(fake_.submits.at(1).spec.job_class, "train");
  Refused({"submit", "--interactive", "--train", "--", "bash"});
}

TEST_F(CliTest, SubmitWithoutDashDashStopsAtTheCommand) {
  Outcome r = Herd({"submit", "-q", "-g", "1", "python", "-g", "2", "--", "x"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "42\n");
  const model::JobSpec& s = fake_.submits.at(0).spec;
  EXPECT_EQ(s.gpu_milli, 1000);
  EXPECT_THAT(s.argv, ElementsAre("python", "-g", "2", "--", "x"));
}

TEST_F(CliTest, SubmitJsonPrintsTheId) {
  Outcome r = Herd({"submit", "--json", "--", "true"});
  ASSERT_EQ(r.code, kExitOk);
  EXPECT_EQ(nlohmann::json::parse(r.out), nlohmann::json({{"id", 42}}));
}

TEST_F(CliTest, SubmitRejectsBadValuesWithExitCode1) {
  EXPECT_THAT(Refused({"submit", "-g", "-1", "--", "x"}), HasSubstr("--gpus: invalid GPU count '-1'"));
  EXPECT_THAT(Refused({"submit", "--gpus", "1.5", "--", "x"}),
              HasSubstr("--gpus: invalid GPU count '1.5'"));
  EXPECT_THAT(Refused({"submit", "-t", "soon", "--", "x"}), HasSubstr("invalid duration 'soon'"));
  EXPECT_THAT(Refused({"submit", "-N", "0", "--", "x"}), HasSubstr("invalid worker count '0'"));
  EXPECT_THAT(Refused({"submit", "-c", "many", "--", "x"}), HasSubstr("invalid CPU count"));
  EXPECT_THAT(Refused({"submit", "--mem", "0", "--", "x"}), HasSubstr("more than zero"));
  EXPECT_THAT(Refused({"submit", "--mem", "lots", "--", "x"}), HasSubstr("invalid size 'lots'"));
  EXPECT_THAT(Refused({"submit", "-e", "NOVALUE", "--", "x"}), HasSubstr("use KEY=VALUE"));
  EXPECT_THAT(Refused({"submit", "-e", "A=\xff\xfe", "--", "x"}), HasSubstr("not valid UTF-8"));
  EXPECT_THAT(Refused({"submit", "-g", "1"}),
              HasSubstr("missing command: herd submit [options] -- COMMAND [ARGS...]"));
  EXPECT_THAT(Refused({"submit", "--"}), HasSubstr("missing command"));
  EXPECT_THAT(Refused({"submit", "--bogus", "--", "x"}), HasSubstr("unknown option '--bogus'"));
  EXPECT_THAT(Refused({"submit", "--bogus", "x"}), HasSubstr("unknown option '--bogus'"));
  EXPECT_THAT(Refused({"--nope", "jobs"}), HasSubstr("--nope"));
  EXPECT_THAT(Refused({"frobnicate"}), HasSubstr("frobnicate"));
  EXPECT_THAT(fake_.connects, IsEmpty());
}

// An empty program name is a usage error like a missing command (exit 1, nothing sent), not a
// request herd-ctld refuses (exit 2).
TEST_F(CliTest, EmptyCommandIsAUsageErrorLikeAMissingOne) {
  EXPECT_THAT(Refused({"submit", "--", ""}), HasSubstr("empty command"));
  EXPECT_THAT(Refused({"submit", "--", "", "arg"}), HasSubstr("empty command"));
  EXPECT_THAT(Refused({"run", "--", ""}), HasSubstr("empty command"));
  EXPECT_THAT(Refused({"submit"}), HasSubstr("missing command"));
  EXPECT_THAT(Refused({"run"}), HasSubstr("missing command"));
  EXPECT_THAT(fake_.submits, IsEmpty());
}

// `herd admin check-config DIR` used to read the directory as an empty file and say OK.
TEST_F(CliTest, CheckConfigOfADirectoryIsAnError) {
  std::string dir = (std::filesystem::temp_directory_path() / "herd-cli-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  Outcome r = Herd({"admin", "check-config", dir});
  std::filesystem::remove_all(dir);
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "herd: " + dir + " is a directory: give the configuration file, such as " +
                       dir + "/herd.toml\n");
}

TEST_F(CliTest, SubmitAsksForGpuTypesPoolsConstraintsAndNodes) {
  ASSERT_EQ(Herd({"submit", "-g", "a100:2", "-P", "train", "--constraint", "rack=r1,ib=yes",
                  "--nodelist", "ws[01-03],gpu7", "-x", "ws02", "--", "x"}).code, kExitOk);
  ASSERT_EQ(Herd({"submit", "--gpu-type", "a100,h100", "--partition", "p", "--", "x"}).code,
            kExitOk);
  ASSERT_EQ(Herd({"submit", "--gres=gpu:h100:4", "--", "x"}).code, kExitOk);
  ASSERT_EQ(Herd({"submit", "--gpu-type", "h100", "-w", "dgx*", "--", "x"}).code, kExitOk);
  const model::JobSpec& a = fake_.submits.at(0).spec;
  EXPECT_EQ(a.gpu_milli, 2000);
  EXPECT_THAT(a.gpu_types, ElementsAre("a100"));
  EXPECT_EQ(a.pool, "train");
  EXPECT_EQ(a.constraints, (std::map<std::string, std::string>{{"ib", "yes"}, {"rack", "r1"}}));
  EXPECT_THAT(a.nodelist, ElementsAre("ws01", "ws02", "ws03", "gpu7"));
  EXPECT_THAT(a.exclude, ElementsAre("ws02"));
  const model::JobSpec& b = fake_.submits.at(1).spec;
  EXPECT_THAT(b.gpu_types, ElementsAre("a100", "h100"));
  EXPECT_EQ(b.gpu_milli, 1000) << "a GPU type without -g asks for one GPU";
  EXPECT_EQ(b.pool, "p");
  EXPECT_EQ(fake_.submits.at(2).spec.gpu_milli, 4000);
  EXPECT_THAT(fake_.submits.at(2).spec.gpu_types, ElementsAre("h100"));
  EXPECT_EQ(fake_.submits.at(3).spec.gpu_milli, 1000);
  EXPECT_THAT(fake_.submits.at(3).spec.nodelist, ElementsAre("dgx*"));
  EXPECT_THAT(Refused({"submit", "-g", "A100:1", "--", "x"}), HasSubstr("use N (2, or a share"));
  EXPECT_THAT(Refused({"submit", "-g", "a100", "--", "x"}), HasSubstr("invalid GPU count 'a100'"));
  EXPECT_THAT(Refused({"submit", "--gres", "disk:1", "--", "x"}), HasSubstr("herd knows gpu"));
  EXPECT_THAT(Refused({"submit", "--constraint", "rack", "--", "x"}),
              HasSubstr("use KEY=VALUE[,KEY=VALUE] on node labels"));
  EXPECT_THAT(Refused({"submit", "-w", "ws[3-", "--", "x"}), HasSubstr("invalid host list item"));
  EXPECT_THAT(Refused({"submit", "-g", "a100:1", "--gpu-type", "h100", "--", "x"}),
              HasSubstr("give the GPU type once"));
}

TEST_F(CliTest, RejectionByTheControllerExits2) {
  fake_.fail = Invalid("project 'nope' does not exist");
  Outcome r = Herd({"submit", "-p", "nope", "--", "true"});
  EXPECT_EQ(r.code, kExitRejected);
  EXPECT_EQ(r.err, "herd: rejected: project 'nope' does not exist\n");
}

TEST_F(CliTest, UnreachableControllerExits3) {
  fake_.fail = Unavailable("no answer from herd-ctld at tcp://127.0.0.1:6817 within 10s: is it running?");
  Outcome r = Herd({"jobs"});
  EXPECT_EQ(r.code, kExitUnreachable);
  EXPECT_THAT(r.err, HasSubstr("herd: no answer from herd-ctld"));
}

TEST_F(CliTest, ConfigErrorExits1) {
  env_.connect = [](const GlobalOptions&) -> Result<std::unique_ptr<Controller>> {
    return Invalid("herd.toml:3:1: unknown table");
  };
  Outcome r = Herd({"nodes"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err, "herd: herd.toml:3:1: unknown table\n");
}

TEST_F(CliTest, HistoryAsksForTheSeriesAndPrintsGpusAndUtilization) {
  fake_.history_reply = {"job", "42", kNow - 7200, kNow + 1, 600,
                         {"allocated_milli", "measured_milli", "busy_milli"},
                         {{kNow - 1200, 10, {2000, 2000, 1500}}, {kNow - 600, 10, {2000, 0, 0}}}};
  Outcome r = Herd({"history", "job", "42", "--since", "2h", "--points", "50"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  ASSERT_EQ(fake_.history_requests.size(), 1u);
  EXPECT_EQ(fake_.history_requests[0],
            (proto::HistoryRequest{"job", "42", kNow - 7200, 0, 50}));
  EXPECT_NE(r.out.find("History of job 42, one point per 10m"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ALLOCATED"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("75%"), std::string::npos) << r.out;  // 1.5 busy of 2 measured GPUs
  EXPECT_NE(r.out.find(" -\n"), std::string::npos) << r.out;  // none measured
  r = Herd({"history", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(fake_.history_requests[1].series, "cluster");
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["points"][0]["busy_milli"], 1500);
  EXPECT_EQ(j["step_s"], 600);
  EXPECT_EQ(Herd({"history", "node"}).code, kExitUsage);
  EXPECT_EQ(Herd({"history", "cluster", "x"}).code, kExitUsage);
  EXPECT_EQ(Herd({"history", "--since", "yesterday-ish"}).code, kExitUsage);
  EXPECT_EQ(Herd({"history", "--points", "-3"}).code, kExitUsage);
}

TEST(CliExitCodeTest, MapsStatusCodes) {
  EXPECT_EQ(ExitCodeFor(Status::Ok()), 0);
  EXPECT_EQ(ExitCodeFor(Invalid("x")), 2);
  EXPECT_EQ(ExitCodeFor(NotFound("x")), 2);
  EXPECT_EQ(ExitCodeFor(Denied("x")), 2);
  EXPECT_EQ(ExitCodeFor(Internal("x")), 2);
  EXPECT_EQ(ExitCodeFor(Unavailable("x")), 3);
}

// ---- submit: the submitting shell's environment (--export) ----

class SubmitEnvTest : public CliTest {
 protected:
  SubmitEnvTest() {
    env_.vars = {{"FOO", "x"},
                 {"PATH", "/opt/conda/bin:/usr/bin"},
                 {"HOME", "/home/u"},
                 {"BASH_FUNC_module%%", "() {  eval x; }"},
                 {"HERD_CONFIG", "/etc/herd/other.toml"},
                 {"HERD_JOB_ID", "7"},
                 {"HERD_TOKEN", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
                 {"SSH_AUTH_SOCK", "/tmp/ssh-1/agent"},
                 {"DISPLAY", ":0"},
                 {"TERM", "xterm"},
                 {"PWD", "/home/u/work"},
                 {"CUDA_VISIBLE_DEVICES", "3"}};
  }
  // The environment of the job `herd submit ARGS -- true` submits.
  std::map<std::string, std::string> JobEnv(std::vector<std::string> args) {
    args.insert(args.begin(), "submit");
    args.insert(args.end(), {"--", "true"});
    last_ = Herd(args);
    EXPECT_EQ(last_.code, kExitOk) << last_.err;
    return fake_.submits.empty() ? std::map<std::string, std::string>{}
                                 : fake_.submits.back().spec.env;
  }
  Outcome last_;
};

using Env = std::map<std::string, std::string>;

TEST_F(SubmitEnvTest, TheShellsEnvironmentIsTheDefaultLessTheSessionsAndHerds) {
  EXPECT_EQ(JobEnv({}), (Env{{"FOO", "x"},
                             {"PATH", "/opt/conda/bin:/usr/bin"},
                             {"HOME", "/home/u"},
                             {"BASH_FUNC_module%%", "() {  eval x; }"},
                             {"HERD_CONFIG", "/etc/herd/other.toml"}}));
  EXPECT_EQ(last_.err, "");
  EXPECT_EQ(JobEnv({"--export=ALL"}), JobEnv({}));
}

TEST_F(SubmitEnvTest, DashEGoesOnTopAndWins) {
  Env env = JobEnv({"-e", "FOO=y", "-e", "NEW=1"});
  EXPECT_EQ(env["FOO"], "y");
  EXPECT_EQ(env["NEW"], "1");
  EXPECT_EQ(env["PATH"], "/opt/conda/bin:/usr/bin");
}

TEST_F(SubmitEnvTest, ExportNoneKeepsOnlyDashE) {
  EXPECT_EQ(JobEnv({"--export=NONE", "-e", "A=1"}), (Env{{"A", "1"}}));
  EXPECT_EQ(JobEnv({"--export", "NONE"}), Env{});
}

TEST_F(SubmitEnvTest, ExportListTakesOnlyThoseEvenSessionOnes) {
  EXPECT_EQ(JobEnv({"--export=FOO,BAR=2,DISPLAY"}),
            (Env{{"FOO", "x"}, {"BAR", "2"}, {"DISPLAY", ":0"}}));
  Env all = JobEnv({"--export=ALL,BAR=2,FOO=z"});
  EXPECT_EQ(all["BAR"], "2");
  EXPECT_EQ(all["FOO"], "z");
  EXPECT_EQ(all["PATH"], "/opt/conda/bin:/usr/bin");
  EXPECT_FALSE(all.contains("DISPLAY"));
}

TEST_F(SubmitEnvTest, ExportOfAnUnsetNameWarns) {
  EXPECT_EQ(JobEnv({"--export=FOO,NOPE"}), (Env{{"FOO", "x"}}));
  EXPECT_THAT(last_.err, HasSubstr("herd: warning: --export: NOPE is not set here"));
}

TEST_F(SubmitEnvTest, BadExportIsRefused) {
  EXPECT_THAT(Refused({"submit", "--export=1X", "--", "true"}), HasSubstr("--export: invalid"));
  EXPECT_THAT(Refused({"submit", "--export=NONE,FOO", "--", "true"}),
              HasSubstr("--export: invalid"));
  EXPECT_THAT(Refused({"submit", "--export=FOO,", "--", "true"}), HasSubstr("--export: invalid"));
}

TEST_F(SubmitEnvTest, ContainerJobsGetNoneOfTheShellUnlessAsked) {
  EXPECT_EQ(JobEnv({"--image", "/img", "-e", "A=1"}), (Env{{"A", "1"}}));
  EXPECT_EQ(JobEnv({"--image", "/img", "--export=ALL"})["FOO"], "x");
  EXPECT_EQ(JobEnv({"--image", "/img", "--export=FOO"}), (Env{{"FOO", "x"}}));
}

TEST_F(SubmitEnvTest, AHugeEnvironmentLosesItsLargestVariablesWithAWarning) {
  env_.vars.clear();
  for (int i = 0; i < 1000; ++i) env_.vars["V" + std::to_string(1000 + i)] = "v";
  env_.vars["BIG"] = std::string(100 << 10, 'b');
  env_.vars["BIGGER"] = std::string(150 << 10, 'b');
  Env env = JobEnv({"-e", "MINE=1"});
  EXPECT_FALSE(env.contains("BIG"));
  EXPECT_FALSE(env.contains("BIGGER"));
  EXPECT_EQ(env["MINE"], "1") << "-e is never left out";
  EXPECT_EQ(env.size(), kExportMaxEntries + 1);
  EXPECT_THAT(last_.err, HasSubstr("herd: warning: the environment is larger than herd records"));
  EXPECT_THAT(last_.err, HasSubstr("largest first: BIGGER, BIG, V"));
}

TEST_F(SubmitEnvTest, VariablesThatAreNotUtf8AreLeftOutWithAWarning) {
  env_.vars["LATIN1"] = "caf\xe9";
  EXPECT_FALSE(JobEnv({}).contains("LATIN1"));
  EXPECT_THAT(last_.err, HasSubstr("not exported (not valid UTF-8): LATIN1"));
}

// ---- submit: batch scripts and their directives ----

class SubmitScriptTest : public CliTest {
 protected:
  SubmitScriptTest() {
    std::string dir = (std::filesystem::temp_directory_path() / "herd-cli-XXXXXX").string();
    EXPECT_NE(mkdtemp(dir.data()), nullptr);
    dir_ = dir;
    env_.cwd = dir_;
  }
  ~SubmitScriptTest() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text, mode_t mode = 0644) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
  }
  // `herd submit ARGS`: the spec it sent.
  model::JobSpec Submitted(std::vector<std::string> args) {
    args.insert(args.begin(), "submit");
    last_ = Herd(args);
    EXPECT_EQ(last_.code, kExitOk) << last_.err;
    return fake_.submits.empty() ? model::JobSpec{} : fake_.submits.back().spec;
  }
  std::string dir_;
  Outcome last_;
};

constexpr char kJobScript[] = R"(#!/bin/bash
#SBATCH -J from-sbatch
#SBATCH --time=5   # minutes, as sbatch reads it
#SBATCH -c 4 --mem=8G
#HERD -g 2 -e "GREETING=hello there"
# a plain comment, then a blank line

#SBATCH --nodes=2
python train.py "$@"
#HERD --name after-the-command-is-not-a-directive
)";

TEST_F(SubmitScriptTest, DirectivesAtTheTopSetTheOptionsAndTheScriptIsCopied) {
  Write("job.sh", kJobScript);
  model::JobSpec s = Submitted({"job.sh", "a", "b"});
  EXPECT_EQ(s.name, "from-sbatch");
  EXPECT_EQ(s.time_limit_s, 300);
  EXPECT_EQ(s.cpus, 4);
  EXPECT_EQ(s.memory_mib, 8192);
  EXPECT_EQ(s.gpu_milli, 2000);
  EXPECT_EQ(s.workers, 2);
  EXPECT_EQ(s.env.at("GREETING"), "hello there");
  EXPECT_EQ(s.script, kJobScript);
  EXPECT_THAT(s.argv, ElementsAre(dir_ + "/job.sh", "a", "b"));
  EXPECT_EQ(last_.err, "");
}

TEST_F(SubmitScriptTest, TheCommandLineWinsOverDirectives) {
  Write("job.sh", kJobScript);
  model::JobSpec s = Submitted({"-t", "10m", "-e", "GREETING=hi", "-g", "1", "job.sh"});
  EXPECT_EQ(s.time_limit_s, 600);
  EXPECT_EQ(s.env.at("GREETING"), "hi");
  EXPECT_EQ(s.gpu_milli, 1000);
  EXPECT_EQ(s.name, "from-sbatch") << "what the command line leaves alone stays";
}

TEST_F(SubmitScriptTest, CommonSbatchOptionsMapToHerdsAndTheRestWarn) {
  Write("job.sbatch", R"(#!/bin/sh
#SBATCH --gres=gpu:a100:2
#SBATCH --array=1-3%2
#SBATCH --dependency=afterok:12:13,afterany:14
#SBATCH -A vision
#SBATCH -p gpu
#SBATCH -o out.%j
#SBATCH --error=err.%j
#SBATCH --mail-user=me@example.org
#SBATCH --exclusive
#SBATCH -t 1-02:03:04
#SBATCH --hold
#SBATCH --constraint=rack=r1 -w ws[01-02] --exclude=ws02
#SBATCH -C ib
hostname
)");
  model::JobSpec s = Submitted({"job.sbatch"});
  EXPECT_EQ(s.gpu_milli, 2000);
  EXPECT_THAT(s.gpu_types, ElementsAre("a100"));
  EXPECT_EQ(s.pool, "gpu");
  EXPECT_EQ(s.constraints, (std::map<std::string, std::string>{{"rack", "r1"}}));
  EXPECT_THAT(s.nodelist, ElementsAre("ws01", "ws02"));
  EXPECT_THAT(s.exclude, ElementsAre("ws02"));
  EXPECT_EQ(s.project, "vision");
  EXPECT_EQ(s.array_limit, 2);
  EXPECT_THAT(fake_.submits.back().array_indexes, ElementsAre(1, 2, 3));
  EXPECT_THAT(s.after, ElementsAre("12:ok", "13:ok", "14:any"));
  EXPECT_EQ(s.time_limit_s, ((24 + 2) * 60 + 3) * 60 + 4);
  EXPECT_TRUE(s.hold);
  EXPECT_THAT(last_.err, Not(HasSubstr("gres")));
  EXPECT_THAT(last_.err, Not(HasSubstr("#SBATCH -p")));
  EXPECT_THAT(last_.err, HasSubstr("job.sbatch:14: #SBATCH -C ib: herd's constraints are node "
                                   "labels KEY=VALUE"));
  EXPECT_EQ(s.output, dir_ + "/out.%j");
  EXPECT_EQ(s.error, dir_ + "/err.%j");
  EXPECT_THAT(last_.err, Not(HasSubstr("out.%j")));
  EXPECT_THAT(last_.err, HasSubstr("job.sbatch:9: #SBATCH --mail-user: herd has no such option"));
  EXPECT_THAT(last_.err, HasSubstr("job.sbatch:10: #SBATCH --exclusive: herd has no such option"));
}

TEST_F(SubmitScriptTest, HerdDirectivesAskForTypesPoolsAndNodes) {
  Write("job.sh", "#!/bin/sh\n#HERD -g 2 -P train --constraint rack=r1 -w 'ws[1-2]' -x ws2\n"
                  "#HERD --gpu-type a100,h100\nhostname\n");
  model::JobSpec s = Submitted({"job.sh"});
  EXPECT_EQ(s.gpu_milli, 2000);
  EXPECT_THAT(s.gpu_types, ElementsAre("a100", "h100"));
  EXPECT_EQ(s.pool, "train");
  EXPECT_EQ(s.constraints, (std::map<std::string, std::string>{{"rack", "r1"}}));
  EXPECT_THAT(s.nodelist, ElementsAre("ws1", "ws2"));
  EXPECT_THAT(s.exclude, ElementsAre("ws2"));
}

TEST_F(SubmitScriptTest, ABareNameWithoutExecBitOrShebangIsAScript) {
  Write("job.sbatch", "echo hi\n", 0644);
  model::JobSpec s = Submitted({"job.sbatch"});
  EXPECT_EQ(s.script, "echo hi\n");
  EXPECT_THAT(s.argv, ElementsAre(dir_ + "/job.sbatch"));
}

TEST_F(SubmitScriptTest, AnExecutableScriptIsCopiedToo) {
  Write("run.sh", "#!/bin/sh\n#HERD -J run\necho hi\n", 0755);
  model::JobSpec s = Submitted({"./run.sh"});
  EXPECT_EQ(s.name, "run");
  EXPECT_EQ(s.script, "#!/bin/sh\n#HERD -J run\necho hi\n");
}

TEST_F(SubmitScriptTest, AfterDashDashAFileIsACommandRunWhereItLies) {
  Write("run.sh", "#!/bin/sh\n#HERD -J run\necho hi\n", 0755);
  model::JobSpec s = Submitted({"--", "./run.sh"});
  EXPECT_EQ(s.script, "");
  EXPECT_EQ(s.name, "");
  EXPECT_THAT(s.argv, ElementsAre("./run.sh"));
}

TEST_F(SubmitScriptTest, AnExecutableProgramIsACommand) {
  Write("prog", std::string("\x7f" "ELF\x02\x01\x01", 7), 0755);
  model::JobSpec s = Submitted({"prog", "x"});
  EXPECT_EQ(s.script, "");
  EXPECT_THAT(s.argv, ElementsAre("prog", "x"));
}

TEST_F(SubmitScriptTest, BadDirectivesAreRefusedWithTheirLine) {
  Write("a.sh", "#!/bin/sh\n#HERD --time soon\necho\n");
  EXPECT_THAT(Refused({"submit", "a.sh"}), HasSubstr("a.sh:2: "));
  EXPECT_THAT(Refused({"submit", "a.sh"}), HasSubstr("invalid duration 'soon'"));
  Write("b.sh", "#!/bin/sh\n\n#HERD -t 5m extra\necho\n");
  EXPECT_THAT(Refused({"submit", "b.sh"}), HasSubstr("b.sh:3: unexpected 'extra'"));
  Write("c.sh", "#HERD -J 'unclosed\necho\n");
  EXPECT_THAT(Refused({"submit", "c.sh"}), HasSubstr("c.sh:1: unclosed quote"));
}

TEST_F(SubmitScriptTest, ScriptsThatCannotTravelAreRefused) {
  Write("job.sh", "#!/bin/sh\necho hi\n");
  EXPECT_THAT(Refused({"submit", "--image", "/img", "job.sh"}),
              HasSubstr("a batch script cannot run in a container"));
  Write("latin1.sh", "#!/bin/sh\necho caf\xe9\n");
  EXPECT_THAT(Refused({"submit", "latin1.sh"}), HasSubstr("is not valid UTF-8"));
}

TEST(SlurmTimeTest, ReadsSbatchTimeFormats) {
  EXPECT_EQ(SlurmTimeSeconds("5"), 300);
  EXPECT_EQ(SlurmTimeSeconds("5:30"), 330);
  EXPECT_EQ(SlurmTimeSeconds("1:00:00"), 3600);
  EXPECT_EQ(SlurmTimeSeconds("2-12"), (2 * 24 + 12) * 3600);
  EXPECT_EQ(SlurmTimeSeconds("2-0:30"), 2 * 86400 + 1800);
  EXPECT_EQ(SlurmTimeSeconds("0-0:0:9"), 9);
  EXPECT_EQ(SlurmTimeSeconds("UNLIMITED"), std::nullopt);
  EXPECT_EQ(SlurmTimeSeconds("1:2:3:4"), std::nullopt);
  EXPECT_EQ(SlurmTimeSeconds(""), std::nullopt);
}

// ---- global options ----

TEST_F(CliTest, GlobalOptionsReachTheConnection) {
  env_.herd_config = "/etc/from-env.toml";
  ASSERT_EQ(Herd({"--controller", "tcp://head:7000", "--timeout", "5", "jobs"}).code, kExitOk);
  ASSERT_EQ(Herd({"--config", "/tmp/x.toml", "jobs"}).code, kExitOk);
  env_.herd_config.clear();
  ASSERT_EQ(Herd({"nodes"}).code, kExitOk);
  ASSERT_EQ(fake_.connects.size(), 3u);
  EXPECT_EQ(fake_.connects[0].controller, "tcp://head:7000");
  EXPECT_EQ(fake_.connects[0].timeout_s, 5);
  EXPECT_EQ(fake_.connects[0].config_path, "/etc/from-env.toml");
  EXPECT_TRUE(fake_.connects[0].config_explicit);
  EXPECT_EQ(fake_.connects[1].config_path, "/tmp/x.toml");
  EXPECT_EQ(fake_.connects[2].config_path, "/etc/herd/herd.toml");
  EXPECT_FALSE(fake_.connects[2].config_explicit);
  EXPECT_EQ(fake_.connects[2].timeout_s, 10);
}

TEST_F(CliTest, HelpAndVersionNeedNoController) {
  Outcome help = Herd({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.out, HasSubstr("Exit codes:"));
  EXPECT_THAT(help.out, HasSubstr("submit"));
  Outcome sub = Herd({"submit", "--help"});
  EXPECT_EQ(sub.code, 0);
  EXPECT_THAT(sub.out, HasSubstr("--gpus"));
  Outcome version = Herd({"-V"});
  EXPECT_EQ(version.code, 0);
  EXPECT_THAT(version.out, HasSubstr("herd "));
  EXPECT_EQ(Herd({}).code, kExitUsage);
  EXPECT_THAT(fake_.connects, IsEmpty());
}

TEST(CliEndpointTest, WildcardBecomesLoopbackAndOverrideWins) {
  EXPECT_EQ(*ChooseEndpoint({"tcp://0.0.0.0:6817", "ipc:///x"}, ""), "tcp://127.0.0.1:6817");
  EXPECT_EQ(*ChooseEndpoint({"tcp://*:7000"}, ""), "tcp://127.0.0.1:7000");
  EXPECT_EQ(*ChooseEndpoint({"ipc:///run/herd/ctld.sock"}, ""), "ipc:///run/herd/ctld.sock");
  EXPECT_EQ(*ChooseEndpoint({"tcp://0.0.0.0:6817"}, "tcp://head:1"), "tcp://head:1");
  EXPECT_FALSE(ChooseEndpoint({}, "").ok());
  EXPECT_FALSE(ChooseEndpoint({}, "head:6817").ok());
}

// ---- jobs, show ----

TEST_F(CliTest, JobsSendsFiltersAndPrintsATable) {
  model::Job running = MakeJob(7, model::JobState::kRunning);
  running.start_time = kNow - 5400;
  running.placement = {{"dgx01", {0}, 500, {0, 1}, 1024, ""}};
  model::Job pending = MakeJob(8, model::JobState::kPending);
  pending.reason = "project vision is at its limit of 8 GPUs";
  fake_.jobs_replies = {proto::JobsReply{{running, pending}}};

  Outcome r = Herd({"jobs", "--me", "--state", "running,Pending", "7", "8"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const proto::JobsRequest& q = fake_.jobs_requests.at(0);
  EXPECT_EQ(q.user, "tester");
  EXPECT_THAT(q.states, ElementsAre("RUNNING", "PENDING"));
  EXPECT_THAT(q.ids, ElementsAre(7, 8));
  EXPECT_EQ(r.out,
            "ID  NAME     USER   PROJECT  CLASS  STATE    GPUS  NODES  TIME   REASON\n"
            "7   train-7  alice  vision   train  RUNNING  0.5   dgx01  1h30m  -\n"
            "8   train-8  alice  vision   train  PENDING  0.5   -      10m    project vision is "
            "at its limit of 8 GPUs\n");

  ASSERT_EQ(Herd({"jobs"}).code, kExitOk);
  EXPECT_FALSE(fake_.jobs_requests.at(1).all);
  EXPECT_EQ(fake_.jobs_requests.at(1).user, "");
  ASSERT_EQ(Herd({"jobs", "-a", "-u", "bob"}).code, kExitOk);
  EXPECT_TRUE(fake_.jobs_requests.at(2).all);
  EXPECT_EQ(fake_.jobs_requests.at(2).user, "bob");
}

TEST_F(CliTest, JobsRejectsBadFilters) {
  EXPECT_THAT(Refused({"jobs", "--state", "sleeping"}), HasSubstr("invalid state 'sleeping'"));
  EXPECT_THAT(Refused({"jobs", "x"}), HasSubstr("invalid job id 'x'"));
  Refused({"jobs", "--me", "-u", "bob"});
}

TEST_F(CliTest, JobsJsonHasStableKeys) {
  model::Job done = MakeJob(3, model::JobState::kFailed);
  done.spec.workers = 2;
  done.spec.gpu_milli = 4000;
  done.start_time = kNow - 100;
  done.end_time = kNow - 10;
  done.exit_code = 3;
  done.placement = {{"n1", {0, 1, 2, 3}, 1000, {}, 0, ""}, {"n2", {0, 1, 2, 3}, 1000, {}, 0, ""}};
  model::Job pending = MakeJob(4, model::JobState::kPending);
  pending.reason = "needs 1 GPU on one node; largest free block is 0";
  pending.reason_code = "gpu_block";
  fake_.jobs_replies = {proto::JobsReply{{done, pending}}};

  Outcome r = Herd({"jobs", "--json", "-a"});
  ASSERT_EQ(r.code, kExitOk);
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  for (const char* key :
       {"id", "name", "user", "project", "class", "state", "reason", "reason_code", "gpus", "nodes",
        "submit_time", "start_time", "end_time", "exit_code", "restart_count"}) {
    EXPECT_TRUE(j[0].contains(key)) << key;
    EXPECT_TRUE(j[1].contains(key)) << key;
  }
  EXPECT_EQ(j[0]["id"], 3);
  EXPECT_EQ(j[0]["state"], "FAILED");
  EXPECT_EQ(j[0]["gpus"], 8);
  EXPECT_EQ(j[0]["nodes"], nlohmann::json({"n1", "n2"}));
  EXPECT_EQ(j[0]["exit_code"], 3);
  EXPECT_EQ(j[0]["end_time"], kNow - 10);
  EXPECT_EQ(j[1]["gpus"], 0.5);
  EXPECT_TRUE(j[1]["exit_code"].is_null());
  EXPECT_TRUE(j[1]["start_time"].is_null());
  EXPECT_EQ(j[1]["nodes"], nlohmann::json::array());
  EXPECT_EQ(j[0]["reason_code"], "");  // ended: no code
  EXPECT_EQ(j[1]["reason_code"], "gpu_block");
  // Printed job by job, the text is what dumping the whole array prints.
  EXPECT_EQ(r.out, DumpJson(nlohmann::json::array({JobToJson(done), JobToJson(pending)})) + "\n");
  fake_.jobs_replies = {proto::JobsReply{}};
  EXPECT_EQ(Herd({"jobs", "--json"}).out, "[]\n");
}

TEST_F(CliTest, ShowPrintsEveryField) {
  model::Job job = MakeJob(9, model::JobState::kRunning);
  job.start_time = kNow - 60;
  job.restart_count = 2;
  job.spec.env = {{"SEED", "1"}};
  job.placement = {{"dgx01", {0, 1, 2, 3}, 1000, {0, 1, 2, 3, 8}, 65536, "mlx5_0"}};
  fake_.jobs_replies = {proto::JobsReply{{job}}};
  Outcome r = Herd({"show", "9"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_TRUE(fake_.jobs_requests.at(0).all);
  EXPECT_THAT(r.out, HasSubstr("JobId:         9\n"));
  EXPECT_THAT(r.out, HasSubstr("State:         RUNNING\n"));
  EXPECT_THAT(r.out, HasSubstr("Command:       python train.py\n"));
  EXPECT_THAT(r.out, HasSubstr("Restarts:      2\n"));
  EXPECT_THAT(r.out, HasSubstr("ExitCode:      -\n"));
  EXPECT_THAT(r.out, HasSubstr("Env:           SEED=1\n"));
  EXPECT_THAT(r.out, HasSubstr("Worker0:       node=dgx01 gpus=0-3 cores=0-3,8 mem=64G nic=mlx5_0"));

  Outcome json = Herd({"show", "9", "--json"});
  EXPECT_EQ(nlohmann::json::parse(json.out)["restart_count"], 2);

  fake_.jobs_replies = {proto::JobsReply{}};
  Outcome missing = Herd({"show", "10"});
  EXPECT_EQ(missing.code, kExitRejected);
  EXPECT_EQ(missing.err, "herd: job 10: not found\n");
}

TEST_F(CliTest, TerminalEscapesInUserTextArePrintedEscapedExceptInJson) {
  model::Job job = MakeJob(9, model::JobState::kPending);
  job.spec.name = "evil\x1b[2J\nID  NAME";
  job.reason = "waits\rhere\x07";
  job.spec.argv = {"sh", "-c", "echo\x1b]0;title\x07"};
  job.spec.env = {{"K", "v\n2"}};
  fake_.jobs_replies = {proto::JobsReply{{job}}, proto::JobsReply{{job}},
                        proto::JobsReply{{job}}};

  Outcome table = Herd({"jobs"});
  ASSERT_EQ(table.code, kExitOk) << table.err;
  EXPECT_THAT(table.out, HasSubstr("evil\\e[2J\\nID  NAME"));
  EXPECT_THAT(table.out, HasSubstr("waits\\rhere\\x07"));
  EXPECT_EQ(table.out.find('\x1b'), std::string::npos) << table.out;
  EXPECT_EQ(std::count(table.out.begin(), table.out.end(), '\n'), 2) << "a header and one row";

  Outcome show = Herd({"show", "9"});
  ASSERT_EQ(show.code, kExitOk) << show.err;
  EXPECT_EQ(show.out.find_first_of("\x1b\r\x07"), std::string::npos) << show.out;
  EXPECT_THAT(show.out, HasSubstr("Name:"));
  EXPECT_THAT(show.out, HasSubstr("evil\\e[2J\\nID  NAME\n"));
  EXPECT_THAT(show.out, HasSubstr("Env:           K=v\\n2\n"));

  Outcome json = Herd({"show", "9", "--json"});
  EXPECT_EQ(nlohmann::json::parse(json.out)["name"], job.spec.name);

  // The one-line summary of a job that no longer waits carries its reason too.
  fake_.why_reply.job = job;
  fake_.why_reply.job.state = model::JobState::kFailed;
  Outcome why = Herd({"why", "9"});
  ASSERT_EQ(why.code, kExitOk) << why.err;
  EXPECT_EQ(why.out.find_first_of("\x1b\r\x07"), std::string::npos) << why.out;
  EXPECT_THAT(why.out, HasSubstr("waits\\rhere\\x07"));
}

// herd why --json gives the reason's code beside its words: the code a program acts on; "" for a
// job that does not wait (or whose herd-ctld sent none).
TEST_F(CliTest, WhyJsonCarriesTheReasonCode) {
  fake_.why_reply.job = MakeJob(9, model::JobState::kPending);
  fake_.why_reply.job.reason =
      "project vision is at its limit of 4 GPUs (4 GPUs in use, job needs 1 GPU)";
  fake_.why_reply.job.reason_code = "limit";
  fake_.why_reply.waits_for = "quota";
  Outcome r = Herd({"why", "9", "--json"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["reason_code"], "limit");
  EXPECT_EQ(j["waits_for"], "quota");
  EXPECT_EQ(j["reason"], fake_.why_reply.job.reason);

  fake_.why_reply.job.state = model::JobState::kCompleted;
  fake_.why_reply.job.reason_code = "";
  j = nlohmann::json::parse(Herd({"why", "9", "--json"}).out);
  EXPECT_EQ(j["reason_code"], "");
  EXPECT_FALSE(j.contains("waits_for"));
}

// ---- cancel, suspend, resume, logs, nodes ----

TEST_F(CliTest, CancelPrintsOneLinePerJobAndExits2WhenAnyIsRefused) {
  fake_.action_reply.results = {{42, true, "CANCELLED", 0}, {7, false, "not found", 0}};
  Outcome r = Herd({"cancel", "42", "7"});
  EXPECT_EQ(r.code, kExitRejected);
  EXPECT_EQ(r.out, "cancelled job 42\n");
  EXPECT_EQ(r.err, "herd: job 7: not found\n");
  EXPECT_EQ(fake_.actions.at(0).action, "cancel");
  EXPECT_THAT(fake_.actions.at(0).ids, ElementsAre(42, 7));

  fake_.action_reply.results = {{5, true, "SUSPENDED", 0}};
  Outcome s = Herd({"suspend", "5"});
  EXPECT_EQ(s.code, kExitOk);
  EXPECT_EQ(s.out, "suspended job 5\n");
  fake_.action_reply.results = {{5, true, "RUNNING", 0}};
  EXPECT_EQ(Herd({"resume", "5"}).out, "resumed job 5\n");
  EXPECT_EQ(fake_.actions.at(2).action, "resume");
  Refused({"cancel", "-3"});
  Refused({"cancel"});
}

// ---- workflow: --after, --hold, --begin, --array, --wait, release ----

TEST_F(CliTest, SubmitWorkflowOptionsFillTheSpec) {
  Outcome r = Herd({"submit", "--after", "12,13:any", "--after", "14:fail", "--hold", "--begin",
                    "+10m", "--", "true"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const proto::SubmitRequest& req = fake_.submits.at(0);
  EXPECT_THAT(req.spec.after, ElementsAre("12:ok", "13:any", "14:fail"));
  EXPECT_TRUE(req.spec.hold);
  EXPECT_EQ(req.spec.begin_time, kNow + 600);
  EXPECT_THAT(req.array_indexes, IsEmpty());

  ASSERT_EQ(Herd({"submit", "--begin", "2026-12-01T15:00", "--", "true"}).code, kExitOk);
  struct tm tm {};
  tm.tm_year = 2026 - 1900, tm.tm_mon = 11, tm.tm_mday = 1, tm.tm_hour = 15, tm.tm_isdst = -1;
  EXPECT_EQ(fake_.submits.at(1).spec.begin_time, static_cast<int64_t>(mktime(&tm)));
  ASSERT_EQ(Herd({"submit", "--begin", "15:00", "--", "true"}).code, kExitOk);
  const int64_t today_or_tomorrow = fake_.submits.at(2).spec.begin_time;
  EXPECT_GT(today_or_tomorrow, kNow);
  EXPECT_LE(today_or_tomorrow, kNow + 25 * 3600);
}

TEST_F(CliTest, SubmitArraySendsEveryIndexAndTheCap) {
  Outcome r = Herd({"submit", "--array", "1-10:2,20%3", "--", "train.sh"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "submitted array 42 (6 jobs: 42-47)\n");
  EXPECT_THAT(fake_.submits.at(0).array_indexes, ElementsAre(1, 3, 5, 7, 9, 20));
  EXPECT_EQ(fake_.submits.at(0).spec.array_limit, 3);
  EXPECT_EQ(Herd({"submit", "-q", "--array", "0-9", "--", "x"}).out, "42\n");
  EXPECT_EQ(fake_.submits.at(1).array_indexes.size(), 10u);
  EXPECT_EQ(fake_.submits.at(1).spec.array_limit, 0);
  ASSERT_EQ(Herd({"submit", "--array", "5,1,3", "--", "x"}).code, kExitOk);
  EXPECT_THAT(fake_.submits.at(2).array_indexes, ElementsAre(1, 3, 5));
}

TEST_F(CliTest, SubmitRejectsBadWorkflowValuesWithExitCode1) {
  for (const char* bad : {"5-1", "x", "1-10:0", "1%0", "1,,2", "1-", "1:2", "1-3%x"}) {
    EXPECT_THAT(Refused({"submit", "--array", bad, "--", "x"}), HasSubstr("--array: invalid"))
        << bad;
  }
  EXPECT_THAT(Refused({"submit", "--array", "0-20000", "--", "x"}), HasSubstr("at most 10000"));
  for (const char* bad : {"abc", "12:maybe", "0", "12:"}) {
    EXPECT_THAT(Refused({"submit", "--after", bad, "--", "x"}),
                HasSubstr("use JOB[:ok|:any|:fail]"))
        << bad;
  }
  for (const char* bad : {"soon", "25:99", "+x", "2026-13-01T10:00", "15:00 tomorrow"}) {
    EXPECT_THAT(Refused({"submit", "--begin", bad, "--", "x"}), HasSubstr("--begin: invalid time"))
        << bad;
  }
}

TEST_F(CliTest, SubmitWaitExitsWithTheJobsExitCode) {
  model::Job running = MakeJob(42, model::JobState::kRunning);
  model::Job failed = MakeJob(42, model::JobState::kFailed);
  failed.exit_code = 7;
  fake_.jobs_replies = {proto::JobsReply{{running}}, proto::JobsReply{{failed}}};
  Outcome r = Herd({"submit", "--wait", "--", "false"});
  EXPECT_EQ(r.code, 7) << r.err;
  EXPECT_EQ(r.out, "submitted job 42\njob 42: FAILED, exit code 7\n");
}

// The node's reason for a failed job is its exit code: said once, not "exit code 3 (exit code 3)".
TEST_F(CliTest, SubmitWaitSaysTheExitCodeOnce) {
  model::Job failed = MakeJob(42, model::JobState::kFailed);
  failed.exit_code = 3;
  failed.reason = "exit code 3";
  fake_.jobs_replies = {proto::JobsReply{{failed}}};
  Outcome r = Herd({"submit", "--wait", "--", "false"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(r.out, "submitted job 42\njob 42: FAILED, exit code 3\n");
  // Another reason is kept.
  failed.exit_code = 137;
  failed.reason = "out of memory";
  fake_.jobs_replies = {proto::JobsReply{{failed}}};
  EXPECT_EQ(Herd({"wait", "42"}).out, "job 42: FAILED, exit code 137 (out of memory)\n");
}

TEST_F(CliTest, ReleaseAndArrayActionsSaySoInTheOutput) {
  fake_.action_reply.results = {{9, true, "released", 0}};
  Outcome r = Herd({"release", "9"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "released job 9\n");
  EXPECT_EQ(fake_.actions.at(0).action, "release");
  fake_.action_reply.results = {{40, true, "cancelled", 5}};
  EXPECT_EQ(Herd({"cancel", "40"}).out, "cancelled array 40 (5 unfinished jobs)\n");
}

TEST_F(CliTest, JobsShowsAnArrayAsOneLineUnlessExpanded) {
  std::vector<model::Job> jobs;
  for (int i = 0; i < 3; ++i) {
    model::Job j = MakeJob(40 + i, i == 0 ? model::JobState::kRunning : model::JobState::kPending);
    j.spec.array_id = 40;
    j.spec.array_index = i + 1;
    jobs.push_back(j);
  }
  fake_.jobs_replies = {proto::JobsReply{jobs}};
  Outcome grouped = Herd({"jobs"});
  ASSERT_EQ(grouped.code, kExitOk) << grouped.err;
  EXPECT_THAT(grouped.out, HasSubstr("40[1-3]"));
  EXPECT_THAT(grouped.out, HasSubstr("2 PENDING,1 RUNNING"));
  EXPECT_THAT(grouped.out, Not(HasSubstr("\n41 ")));
  Outcome expanded = Herd({"jobs", "--expand"});
  EXPECT_THAT(expanded.out, HasSubstr("\n40_2 "));  // member 41 by its array and index
  EXPECT_THAT(expanded.out, Not(HasSubstr("40[")));
}

TEST_F(CliTest, LogsFollowsUntilEof) {
  fake_.logs_replies = {{"hello\n", 6, false}, {"", 6, false}, {"world\n", 12, false},
                        {"", 12, true}};
  Outcome r = Herd({"logs", "5", "-w", "1", "-f"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "hello\nworld\n");
  ASSERT_EQ(fake_.logs_requests.size(), 4u);
  EXPECT_EQ(fake_.logs_requests[0].worker, 1);
  EXPECT_EQ(fake_.logs_requests[2].offset, 6);
  EXPECT_EQ(fake_.logs_requests[3].offset, 12);
}

TEST_F(CliTest, LogsWithoutFollowStopsAtTheEndOfWhatIsWritten) {
  fake_.logs_replies = {{"part\n", 5, false}, {"", 5, false}, {"never\n", 11, true}};
  Outcome r = Herd({"logs", "5"});
  ASSERT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "part\n");
  EXPECT_EQ(fake_.logs_requests.size(), 2u);
}

// ---- output files (-o/--output, --error) ----

TEST(OutputPatternTest, ExpandsSlurmsReplacements) {
  model::OutputNames n;
  n.job_id = 57;
  n.array_id = 50;
  n.array_index = 7;
  n.name = "train";
  n.user = "alice";
  n.node = "dgx01";
  n.worker = 2;
  EXPECT_EQ(model::ExpandOutputPattern("/o/%x-%j.%u.%N.%t", n), "/o/train-57.alice.dgx01.2");
  EXPECT_EQ(model::ExpandOutputPattern("/o/%A_%a.out", n), "/o/50_7.out");
  EXPECT_EQ(model::ExpandOutputPattern("/o/%4a_%3j%%j", n), "/o/0007_057%j");
  EXPECT_EQ(model::ExpandOutputPattern("/o/%2x", n), "/o/train") << "no padding of a name";
  n.array_id = 0;
  n.array_index = 0;
  n.node = "";
  EXPECT_EQ(model::ExpandOutputPattern("/o/%A_%a.%N", n), "/o/57_0.%N")
      << "a job outside an array is its own array; a node not yet known stays a pattern";
}

TEST(OutputPatternTest, RefusesUnknownReplacements) {
  EXPECT_TRUE(model::CheckOutputPattern("/o/%j-%A_%a%x%u%N%t%%.log", "--output").ok());
  EXPECT_TRUE(model::CheckOutputPattern("", "--output").ok());
  for (const char* bad : {"/o/%s", "/o/%", "/o/100%", "/o/%3%", "/o/%Z.%j"}) {
    Status s = model::CheckOutputPattern(bad, "--error");
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_THAT(s.message(), HasSubstr("--error: '")) << bad;
  }
  EXPECT_FALSE(model::CheckOutputPattern(std::string(5000, 'a'), "--output").ok());
}

TEST(OutputPatternTest, OutputAloneTakesStderrToo) {
  model::Job job = MakeJob(12, model::JobState::kRunning);
  job.spec.output = "/o/%j.out";
  job.placement = {{"ws01", {}, 0, {}, 0, ""}};
  model::OutputPaths p = model::ResolveOutputPaths(job.spec, model::OutputNamesOf(job));
  EXPECT_EQ(p.stdout_path, "/o/12.out");
  EXPECT_EQ(p.stderr_path, "/o/12.out");
  job.spec.error = "/o/%N.err";
  p = model::ResolveOutputPaths(job.spec, model::OutputNamesOf(job));
  EXPECT_EQ(p.stderr_path, "/o/ws01.err");
  job.spec.output = "";
  p = model::ResolveOutputPaths(job.spec, model::OutputNamesOf(job));
  EXPECT_EQ(p.stdout_path, "") << "--error alone leaves stdout to herd's log";
}

TEST_F(CliTest, SubmitOutputAndErrorAreAbsolutePatterns) {
  ASSERT_EQ(Herd({"submit", "-o", "out.%j", "--error", "/tmp/err.%A_%a", "--open-mode",
                  "append", "--", "x"})
                .code,
            kExitOk);
  model::JobSpec s = fake_.submits.back().spec;
  EXPECT_EQ(s.output, "/home/u/work/out.%j");
  EXPECT_EQ(s.error, "/tmp/err.%A_%a");
  EXPECT_TRUE(s.output_append);
  ASSERT_EQ(Herd({"submit", "--chdir", "/data/run", "--output", "logs/%x.txt", "--", "x"}).code,
            kExitOk);
  s = fake_.submits.back().spec;
  EXPECT_EQ(s.output, "/data/run/logs/%x.txt") << "relative to the job's working directory";
  EXPECT_EQ(s.error, "");
  EXPECT_FALSE(s.output_append);
  ASSERT_EQ(Herd({"submit", "--image", "/img", "--chdir", "/in", "-o", "o.%j", "--", "x"}).code,
            kExitOk);
  EXPECT_EQ(fake_.submits.back().spec.output, "/home/u/work/o.%j")
      << "a container's output files are host paths: relative to where herd runs";
}

TEST_F(CliTest, SubmitRefusesBadOutputOptions) {
  EXPECT_THAT(Refused({"submit", "-o", "out.%q", "--", "x"}),
              HasSubstr("--output: 'out.%q': '%q' is not a replacement herd knows"));
  EXPECT_THAT(Refused({"submit", "--open-mode", "sometimes", "--", "x"}), HasSubstr("open-mode"));
  EXPECT_THAT(Refused({"submit", "--pty", "-o", "o", "--", "x"}), HasSubstr("for batch jobs"));
  EXPECT_THAT(Refused({"run", "-o", "o", "--", "x"}), HasSubstr("are for herd submit"));
  // herd's -e sets a variable; a Slurm user's -e FILE is told where --error is.
  EXPECT_THAT(Refused({"submit", "-e", "err.%j", "--", "x"}), HasSubstr("use --error err.%j"));
}

TEST_F(CliTest, ShowPrintsTheResolvedOutputFiles) {
  model::Job job = MakeJob(9, model::JobState::kRunning);
  job.spec.output = "/o/%x-%j.out";
  job.spec.error = "/o/%N.err";
  job.placement = {{"dgx01", {0}, 1000, {0}, 1024, ""}};
  fake_.jobs_replies = {proto::JobsReply{{job}}, proto::JobsReply{{job}}};
  Outcome r = Herd({"show", "9"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("StdOut:        /o/train-9-9.out\n"));
  EXPECT_THAT(r.out, HasSubstr("StdErr:        /o/dgx01.err\n"));
  Outcome json = Herd({"show", "9", "--json"});
  ASSERT_EQ(json.code, kExitOk) << json.err;
  EXPECT_EQ(nlohmann::json::parse(json.out)["output"], "/o/train-9-9.out");
  EXPECT_EQ(nlohmann::json::parse(json.out)["error"], "/o/dgx01.err");
}

TEST_F(CliTest, LogsAsksForOneStream) {
  fake_.logs_replies = {{"out\n", 4, true}, {"err\n", 4, true}};
  ASSERT_EQ(Herd({"logs", "5", "--stdout"}).code, kExitOk);
  ASSERT_EQ(Herd({"logs", "5", "--stderr"}).code, kExitOk);
  ASSERT_EQ(fake_.logs_requests.size(), 2u);
  EXPECT_EQ(fake_.logs_requests[0].stream, "stdout");
  EXPECT_EQ(fake_.logs_requests[1].stream, "stderr");
  EXPECT_THAT(Refused({"logs", "5", "--stdout", "--stderr"}), HasSubstr("choose one"));
}

TEST_F(CliTest, NodesTableShowsUsageAndEmulatedTopology) {
  proto::NodeStatus n;
  n.name = "dgx01";
  n.topology.hostname = "dgx01.example.org";
  n.topology.emulated = true;
  n.topology.source = "/usr/share/herd/etc/topologies/dgx-a100-8gpu.xml";
  for (int i = 0; i < 8; ++i) {
    model::GpuInfo gpu;
    gpu.index = i;
    gpu.model = "NVIDIA A100-SXM4-40GB";
    n.topology.gpus.push_back(gpu);
    n.gpu_types.push_back("a100");
  }
  n.state = "UP";
  n.capacity = {8000, 128, 1024 * 1024};
  n.allocated = {2500, 16, 65536};
  n.gpu_milli_used = {1000, 1000, 500, 0, 0, 0, 0, 0};
  proto::NodeStatus cpu;
  cpu.topology.hostname = "cpu01";  // a status without a name shows the hostname
  cpu.topology.sockets = 2;
  cpu.topology.numa = {{0, {0, 1}, 4096}, {1, {2, 3}, 4096}};
  cpu.state = "DOWN";
  cpu.capacity = {0, 4, 8192};
  fake_.nodes_reply.nodes = {n, cpu};
  Outcome r = Herd({"nodes"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "NAME   STATE  GPUS   CPUS    MEM     TYPE  GPU-MODEL              TOPOLOGY\n"
            "dgx01  UP     2.5/8  16/128  64G/1T  a100  NVIDIA A100-SXM4-40GB  emulated: "
            "dgx-a100-8gpu.xml\n"
            "cpu01  DOWN   0/0    0/4     0M/8G   -     -                      2 sockets, 2 NUMA, 0 "
            "NICs\n");
  fake_.nodes_reply.nodes[0].labels = {{"rack", "r1"}};
  fake_.nodes_reply.nodes[0].pools = {"train"};
  r = Herd({"nodes"});
  EXPECT_THAT(r.out, HasSubstr("TYPE  POOL   GPU-MODEL"));
  EXPECT_THAT(r.out, HasSubstr("a100  train  NVIDIA"));
  nlohmann::json j = nlohmann::json::parse(Herd({"nodes", "--json"}).out);
  EXPECT_EQ(j[0]["gpu_types"], nlohmann::json({"a100"}));
  EXPECT_EQ(j[0]["gpu_list"][0]["type"], "a100");
  EXPECT_EQ(j[0]["labels"], nlohmann::json({{"rack", "r1"}}));
  EXPECT_EQ(j[0]["pools"], nlohmann::json({"train"}));
  EXPECT_EQ(j[0]["gpus_used"], 2.5);
  EXPECT_EQ(j[0]["gpu_list"][2]["used"], 0.5);
  EXPECT_EQ(j[1]["state"], "DOWN");
}

// ---- wait ----

TEST_F(CliTest, WaitReturnsZeroWhenAllComplete) {
  model::Job a = MakeJob(1, model::JobState::kRunning);
  model::Job b = MakeJob(2, model::JobState::kPending);
  model::Job a_done = MakeJob(1, model::JobState::kCompleted);
  a_done.exit_code = 0;
  model::Job b_done = MakeJob(2, model::JobState::kCompleted);
  b_done.exit_code = 0;
  fake_.jobs_replies = {proto::JobsReply{{a, b}}, proto::JobsReply{{a_done, b}},
                        proto::JobsReply{{b_done}}};
  Outcome r = Herd({"wait", "1", "2"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "job 1: COMPLETED, exit code 0\njob 2: COMPLETED, exit code 0\n");
  EXPECT_THAT(fake_.jobs_requests.back().ids, ElementsAre(2));
}

TEST_F(CliTest, WaitExitCodeFollowsTheJobs) {
  model::Job failed = MakeJob(1, model::JobState::kFailed);
  failed.exit_code = 3;
  model::Job cancelled = MakeJob(2, model::JobState::kCancelled);
  fake_.jobs_replies = {proto::JobsReply{{cancelled, failed}}};
  EXPECT_EQ(Herd({"wait", "2", "1"}).code, 3);
  EXPECT_EQ(Herd({"wait", "2"}).code, kExitJobFailed);
  fake_.jobs_replies = {proto::JobsReply{}};
  EXPECT_EQ(Herd({"wait", "99"}).code, kExitRejected);
}

TEST_F(CliTest, WaitTimesOutWithExitCode5) {
  fake_.jobs_replies = {proto::JobsReply{{MakeJob(1, model::JobState::kRunning)}}};
  Outcome r = Herd({"wait", "1", "--timeout", "1s"});
  EXPECT_EQ(r.code, kExitWaitTimeout);
  EXPECT_THAT(r.err, HasSubstr("herd: timed out after 1s"));
  EXPECT_THAT(Refused({"wait", "1", "--timeout", "never"}), HasSubstr("invalid duration"));
}

// ---- arrays as one thing; hold, requeue, update, cancel filters, drain --reason ----

// Members 10 (index 0) and 11 (index 1) of array 10.
std::vector<model::Job> ArrayOfTwo(model::JobState first, model::JobState second) {
  std::vector<model::Job> jobs = {MakeJob(10, first), MakeJob(11, second)};
  for (int i = 0; i < 2; ++i) {
    jobs[i].spec.array_id = 10;
    jobs[i].spec.array_index = i;
  }
  return jobs;
}

TEST_F(CliTest, WaitOnAnArrayWaitsForEveryMemberAndFailsWithAFailedOne) {
  std::vector<model::Job> running = ArrayOfTwo(model::JobState::kRunning, model::JobState::kRunning);
  std::vector<model::Job> first_done =
      ArrayOfTwo(model::JobState::kCompleted, model::JobState::kRunning);
  first_done[0].exit_code = 0;
  model::Job second_failed = ArrayOfTwo(model::JobState::kCompleted, model::JobState::kFailed)[1];
  second_failed.exit_code = 3;
  // The array named, its members listed, then polled until both ended.
  fake_.jobs_replies = {proto::JobsReply{{running[0]}}, proto::JobsReply{running},
                        proto::JobsReply{first_done}, proto::JobsReply{{second_failed}}};
  Outcome r = Herd({"wait", "10"});
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(r.out, "job 10_0: COMPLETED, exit code 0\njob 10_1: FAILED, exit code 3\n");
  EXPECT_EQ(fake_.jobs_requests.at(1).array, 10);
}

TEST_F(CliTest, IdIndexNamesOneMemberInEveryVerb) {
  const std::vector<model::Job> members =
      ArrayOfTwo(model::JobState::kRunning, model::JobState::kPending);
  fake_.jobs_replies = {proto::JobsReply{members}};
  fake_.action_reply.results = {{11, true, "held", 0}};
  Outcome r = Herd({"hold", "10_1"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "held job 10_1\n");
  EXPECT_EQ(fake_.jobs_requests.at(0).array, 10);
  EXPECT_THAT(fake_.actions.at(0).ids, IsEmpty());
  EXPECT_THAT(fake_.actions.at(0).members, ElementsAre(11));

  // The array's own first member, alone.
  fake_.action_reply.results = {{10, true, "cancelled", 0}};
  EXPECT_EQ(Herd({"cancel", "10_0"}).out, "cancelled job 10_0\n");
  EXPECT_THAT(fake_.actions.at(1).members, ElementsAre(10));

  fake_.why_reply.job = members[1];
  EXPECT_EQ(Herd({"why", "10_1"}).code, kExitOk);
  Herd({"show", "10_1"});
  EXPECT_THAT(fake_.jobs_requests.back().ids, ElementsAre(11));
  Herd({"logs", "10_1"});
  EXPECT_EQ(fake_.logs_requests.back().id, 11);

  Outcome missing = Herd({"requeue", "10_7"});
  EXPECT_EQ(missing.code, kExitRejected);
  EXPECT_THAT(missing.err, HasSubstr("array 10 has no index 7"));
  EXPECT_THAT(Refused({"hold", "10_x"}), HasSubstr("ARRAY_INDEX"));
  EXPECT_THAT(Refused({"submit", "--after", "10_x", "--", "true"}), HasSubstr("--after"));
  ASSERT_EQ(Herd({"submit", "--after", "10_1:any,10", "--", "true"}).code, kExitOk);
  EXPECT_THAT(fake_.submits.back().spec.after, ElementsAre("10_1:any", "10:ok"));
}

TEST_F(CliTest, HoldReleaseAndRequeueSendTheirActions) {
  fake_.action_reply.results = {{5, true, "held", 0}};
  EXPECT_EQ(Herd({"hold", "5"}).out, "held job 5\n");
  fake_.action_reply.results = {{5, true, "requeued", 0}};
  EXPECT_EQ(Herd({"requeue", "5"}).out, "requeued job 5\n");
  fake_.action_reply.results = {{5, false, "is pending: it is already in the queue", 0}};
  Outcome pending = Herd({"requeue", "5"});
  EXPECT_EQ(pending.code, kExitRejected);
  EXPECT_EQ(pending.err, "herd: job 5: is pending: it is already in the queue\n");
  ASSERT_EQ(fake_.actions.size(), 3u);
  EXPECT_EQ(fake_.actions[0].action, "hold");
  EXPECT_EQ(fake_.actions[1].action, "requeue");
  Refused({"hold"});
}

TEST_F(CliTest, CancelByFiltersCombinesThemAndCountsWhatWasCancelled) {
  fake_.action_reply.results = {{3, true, "cancelled", 0}, {4, true, "cancelling", 0}};
  Outcome r = Herd({"cancel", "-u", "bob", "--state", "pending,running", "--name", "sweep",
                    "--project", "vision"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "cancelled 2 jobs\n");
  const proto::JobActionRequest& sent = fake_.actions.at(0);
  EXPECT_EQ(sent.action, "cancel");
  EXPECT_THAT(sent.ids, IsEmpty());
  EXPECT_EQ(sent.user, "bob");
  EXPECT_THAT(sent.states, ElementsAre("PENDING", "RUNNING"));
  EXPECT_EQ(sent.name, "sweep");
  EXPECT_EQ(sent.project, "vision");
  EXPECT_THAT(Refused({"cancel"}), HasSubstr("-u USER"));
  EXPECT_THAT(Refused({"cancel", "7", "--name", "x"}), HasSubstr("not both"));
  EXPECT_THAT(Refused({"cancel", "--state", "sleepy"}), HasSubstr("invalid state"));
}

TEST_F(CliTest, UpdateSendsOnlyWhatChanges) {
  fake_.action_reply.results = {{5, true, "updated", 0}};
  Outcome r = Herd({"update", "5", "--time", "2h", "--name", "n2", "--project", "p", "--hold"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "updated job 5\n");
  const proto::UpdateJobRequest& sent = fake_.updates.at(0);
  EXPECT_THAT(sent.ids, ElementsAre(5));
  EXPECT_EQ(sent.time_limit_s, 7200);
  EXPECT_EQ(sent.name, "n2");
  EXPECT_EQ(sent.project, "p");
  EXPECT_TRUE(sent.hold);
  ASSERT_EQ(Herd({"update", "6", "-J", "x"}).code, kExitOk);
  EXPECT_EQ(fake_.updates.at(1).time_limit_s, -1);
  EXPECT_THAT(Refused({"update", "5"}), HasSubstr("nothing to change"));
  EXPECT_THAT(Refused({"update", "5", "--time", "0"}), HasSubstr("more than zero"));
}

TEST_F(CliTest, DrainSendsItsReason) {
  ASSERT_EQ(Herd({"admin", "drain", "n1", "--reason", "bad fan"}).code, kExitOk);
  ASSERT_EQ(Herd({"admin", "undrain", "n1"}).code, kExitOk);
  ASSERT_EQ(fake_.admin_requests.size(), 2u);
  EXPECT_EQ(fake_.admin_requests[0].action, "drain");
  EXPECT_THAT(fake_.admin_requests[0].args, ElementsAre("n1", "bad fan"));
  EXPECT_THAT(fake_.admin_requests[1].args, ElementsAre("n1"));
}

// ---- formatting ----

TEST(CliTableTest, AlignsColumnsWithoutTrailingBlanks) {
  Table t({"A", "LONGER", "C"});
  t.AddRow({"xyz", "1", ""});
  t.AddRow({"é", "22", "last"});
  std::ostringstream out;
  t.Print(out, 0);
  EXPECT_EQ(out.str(),
            "A    LONGER  C\n"
            "xyz  1\n"
            "é    22      last\n");
}

TEST(CliTableTest, CutsTheWidestColumnToFitATerminalOnly) {
  Table t({"ID", "REASON"});
  t.AddRow({"1", std::string(60, 'r')});
  std::ostringstream wide, narrow;
  t.Print(wide, 0);
  EXPECT_THAT(wide.str(), HasSubstr(std::string(60, 'r')));
  t.Print(narrow, 20);
  std::istringstream lines(narrow.str());
  std::string line;
  while (std::getline(lines, line)) EXPECT_LE(DisplayWidth(line), 20u) << line;
  EXPECT_THAT(narrow.str(), HasSubstr("1   " + std::string(15, 'r') + "\xE2\x80\xA6\n"));
}

// Columns are counted as a terminal shows them: East Asian wide characters and emoji take two,
// combining marks none.
TEST(CliTableTest, DisplayWidthCountsTerminalColumns) {
  EXPECT_EQ(DisplayWidth("abc"), 3u);
  EXPECT_EQ(DisplayWidth("d\xC3\xA9j\xC3\xA0"), 4u);                 // déjà
  EXPECT_EQ(DisplayWidth("\xE8\xAE\xAD\xE7\xBB\x83"), 4u);          // 训练
  EXPECT_EQ(DisplayWidth("\xED\x95\x9C"), 2u);                      // 한
  EXPECT_EQ(DisplayWidth("\xEF\xBC\xA1"), 2u);                      // fullwidth A
  EXPECT_EQ(DisplayWidth("\xF0\x9F\x9A\x80!"), 3u);                 // rocket emoji
  EXPECT_EQ(DisplayWidth("e\xCC\x81t\xCC\x81"), 2u);               // e and t with acute
  EXPECT_EQ(DisplayWidth("\xF0\xA0\x80\x80"), 2u);                  // CJK extension B
}

TEST(CliTableTest, WideCharactersKeepColumnsAligned) {
  Table t({"NAME", "USER"});
  t.AddRow({"\xE8\xAE\xAD\xE7\xBB\x83", "alice"});  // 训练: 4 columns
  t.AddRow({"\xF0\x9F\x9A\x80", "bob"});              // one emoji: 2 columns
  t.AddRow({"e\xCC\x81", "carol"});                     // é as e + combining acute: 1 column
  t.AddRow({"bad\xff", "dan"});                          // not UTF-8: printed escaped
  std::ostringstream out;
  t.Print(out, 0);
  EXPECT_EQ(out.str(),
            "NAME     USER\n"
            "\xE8\xAE\xAD\xE7\xBB\x83     alice\n"
            "\xF0\x9F\x9A\x80       bob\n"
            "e\xCC\x81        carol\n"
            "bad\\xff  dan\n");
}

// Cut by columns, ending in "…", never inside a character; a combining mark stays with its base.
TEST(CliTableTest, CutsWideTextByColumnsNeverInsideACharacter) {
  std::string cjk, emoji;
  for (int i = 0; i < 12; ++i) cjk += "\xE8\xAE\xAD";     // 训 x 12: 24 columns
  for (int i = 0; i < 12; ++i) emoji += "\xF0\x9F\x9A\x80";  // 24 columns
  Table t({"ID", "NAME"});
  t.AddRow({"1", cjk});
  t.AddRow({"2", emoji});
  t.AddRow({"3", "abcdefe\xCC\x81xyz"});
  std::ostringstream out;
  t.Print(out, 12);  // NAME gets 8 columns: 3 wide characters and the ellipsis
  EXPECT_EQ(out.str(),
            "ID  NAME\n"
            "1   \xE8\xAE\xAD\xE8\xAE\xAD\xE8\xAE\xAD\xE2\x80\xA6\n"
            "2   \xF0\x9F\x9A\x80\xF0\x9F\x9A\x80\xF0\x9F\x9A\x80\xE2\x80\xA6\n"
            "3   abcdefe\xCC\x81\xE2\x80\xA6\n");
  std::istringstream lines(out.str());
  std::string line;
  while (std::getline(lines, line)) {
    EXPECT_LE(DisplayWidth(line), 12u) << line;
    EXPECT_TRUE(IsValidUtf8(line)) << line;
  }
}

// A 5,000-character name, CJK and emoji names and bytes that are not UTF-8: every line of
// `herd jobs` fits the terminal and the USER column starts at the same column on each.
TEST_F(CliTest, JobsTableStaysAlignedWithLongWideAndBrokenNames) {
  std::vector<model::Job> jobs;
  for (const std::string& name :
       {std::string(5000, 'n'), std::string("\xE8\xAE\xAD\xE7\xBB\x83") + std::string(30, 'x'),
        std::string("\xF0\x9F\x9A\x80 launch \xF0\x9F\x9A\x80\xF0\x9F\x9A\x80"),
        std::string("bad\xff\xfe\xC3name"), std::string("ok")}) {
    jobs.push_back(MakeJob(static_cast<model::JobId>(jobs.size() + 1), model::JobState::kPending));
    jobs.back().spec.name = name;
  }
  fake_.jobs_replies = {proto::JobsReply{jobs}};
  env_.terminal_width = 100;
  Outcome r = Herd({"jobs"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<size_t> user_column;
  while (std::getline(lines, line)) {
    EXPECT_LE(DisplayWidth(line), 100u) << line;
    EXPECT_TRUE(IsValidUtf8(line)) << line;
    const size_t at = line.find(line.rfind("ID", 0) == 0 ? "USER" : "alice");
    ASSERT_NE(at, std::string::npos) << line;
    user_column.push_back(DisplayWidth(line.substr(0, at)));
  }
  ASSERT_EQ(user_column.size(), jobs.size() + 1);
  for (size_t c : user_column) EXPECT_EQ(c, user_column[0]) << r.out;
  EXPECT_THAT(r.out, HasSubstr("\xE8\xAE\xAD\xE7\xBB\x83"));
  EXPECT_THAT(r.out, HasSubstr("bad\\xff\\xfe\\xc3"));
}

TEST(CliFormatTest, JobTimeIsElapsedWaitOrRunTime) {
  model::Job job = MakeJob(1, model::JobState::kPending);
  EXPECT_EQ(JobTime(job, kNow), "10m");
  job.state = model::JobState::kRunning;
  job.start_time = kNow - 3600;
  EXPECT_EQ(JobTime(job, kNow), "1h");
  job.state = model::JobState::kCompleted;
  job.end_time = kNow - 1800;
  EXPECT_EQ(JobTime(job, kNow), "30m");
  job.state = model::JobState::kCancelled;
  job.start_time = 0;
  EXPECT_EQ(JobTime(job, kNow), "-");
}

TEST(CliFormatTest, CommandIsShellQuoted) {
  EXPECT_EQ(FormatCommand({"sh", "-c", "echo 'hi' $X", ""}), "sh -c 'echo '\\''hi'\\'' $X' ''");
}

TEST(CliFormatTest, Utf8Validation) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("d\xC3\xA9j\xC3\xA0 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xC3"));
  EXPECT_FALSE(IsValidUtf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));      // surrogate
}

TEST(CliFormatTest, EscapeTextKeepsPrintableUtf8AndEscapesControls) {
  EXPECT_EQ(EscapeText("d\xC3\xA9j\xC3\xA0 \xE2\x82\xAC ok"), "d\xC3\xA9j\xC3\xA0 \xE2\x82\xAC ok");
  EXPECT_EQ(EscapeText("a\nb\tc\rd\x1b[31me\x7f\x01"), "a\\nb\\tc\\rd\\e[31me\\x7f\\x01");
  EXPECT_EQ(EscapeText("\xC2\x9B" "2J"), "\\u009b2J");  // C1 CSI
  EXPECT_EQ(EscapeText("\xff\xC3"), "\\xff\\xc3");    // not UTF-8
}

// Bidirectional overrides, zero-width and line/paragraph separators would reorder or hide what
// a listing shows: written as escapes too.
TEST(CliFormatTest, EscapeTextEscapesBidiAndInvisibleFormatCharacters) {
  EXPECT_EQ(EscapeText("a\xE2\x80\xAE" "cod.exe"), "a\\u202ecod.exe");  // RIGHT-TO-LEFT OVERRIDE
  EXPECT_EQ(EscapeText("\xE2\x80\xAA\xE2\x81\xA6\xE2\x81\xA9"), "\\u202a\\u2066\\u2069");
  EXPECT_EQ(EscapeText("x\xE2\x80\x8By\xE2\x80\x8F"), "x\\u200by\\u200f");
  EXPECT_EQ(EscapeText("\xE2\x80\xA8\xE2\x80\xA9\xEF\xBB\xBF"), "\\u2028\\u2029\\ufeff");
  // Neighbours that are ordinary text stay as they are.
  EXPECT_EQ(EscapeText("\xE2\x80\x90\xE2\x80\xAF\xE2\x81\xA5"), "\xE2\x80\x90\xE2\x80\xAF\xE2\x81\xA5");
}

// ---- Ctrl-C while herd submit --wait or herd run waits for its job (a real terminal) ----

// herd's code in a child process with the fake herd-ctld, its job pending for ever. What the
// fake was asked to do is printed last: "[actions: cancel 42]".
class InterruptTest : public CliTest {
 protected:
  InterruptTest() {
    fake_.jobs_replies = {proto::JobsReply{{MakeJob(42, model::JobState::kPending)}}};
    fake_.action_reply.results = {{42, true, "CANCELLED", 0}};
    env_.wait_poll_ms = 20;
  }
  // The child's body: RunCli on the process's own stdout and stderr.
  std::function<int()> Child(std::vector<std::string> args) {
    return [this, args] {
      const int code = RunCli(args, std::cout, std::cerr, env_);
      std::cout << "[actions:";
      for (const auto& a : fake_.actions) {
        for (model::JobId id : a.ids) std::cout << " " << a.action << " " << id;
      }
      std::cout << "]" << std::endl;
      return code;
    };
  }
};

TEST_F(InterruptTest, CtrlCAtSubmitWaitAsksAndYesCancelsTheJob) {
  testing::PtyProcess herd(Child({"submit", "--wait", "--", "train"}));
  ASSERT_TRUE(herd.started());
  ASSERT_TRUE(herd.Expect("submitted job 42")) << herd.seen();
  herd.Send("\x03");
  ASSERT_TRUE(herd.Expect("Cancel job 42\\? \\[y/N\\] ")) << herd.seen();
  herd.Send("y\r");
  ASSERT_TRUE(herd.Expect("herd: cancelled job 42")) << herd.seen();
  ASSERT_TRUE(herd.Expect("\\[actions: cancel 42\\]")) << herd.seen();
  EXPECT_EQ(herd.Wait(), kExitInterrupted);
}

TEST_F(InterruptTest, EnterOrASecondCtrlCLeavesTheJobAndSaysHow) {
  for (const std::string second : {"\r", "n\r", "\x03"}) {
    SCOPED_TRACE(EscapeText(second));
    testing::PtyProcess herd(Child({"submit", "--wait", "--", "train"}));
    ASSERT_TRUE(herd.Expect("submitted job 42")) << herd.seen();
    herd.Send("\x03");
    ASSERT_TRUE(herd.Expect("Cancel job 42\\? \\[y/N\\] ")) << herd.seen();
    herd.Send(second);
    ASSERT_TRUE(herd.Expect("herd: interrupted; job 42 left to run \\(herd wait 42 waits for it, "
                            "herd cancel 42 cancels it\\)")) << herd.seen();
    ASSERT_TRUE(herd.Expect("\\[actions:\\]")) << herd.seen();
    EXPECT_EQ(herd.Wait(), kExitInterrupted);
  }
}

// herd run while its job is pending (its terminal not yet raw): the same question.
TEST_F(InterruptTest, CtrlCWhileHerdRunWaitsForItsJobAsksToo) {
  testing::PtyProcess herd(Child({"run", "--", "bash"}));
  ASSERT_TRUE(herd.Expect("job 42 PENDING")) << herd.seen();
  herd.Send("\x03");
  ASSERT_TRUE(herd.Expect("Cancel job 42\\? \\[y/N\\] ")) << herd.seen();
  herd.Send("y\r");
  ASSERT_TRUE(herd.Expect("\\[actions: cancel 42\\]")) << herd.seen();
  EXPECT_EQ(herd.Wait(), kExitInterrupted);
}

// From cron or a pipe (no terminal): SIGINT leaves the job, and stderr says which it is.
TEST_F(InterruptTest, WithoutATerminalSigintLeavesTheJobAndNamesIt) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    setsid();  // no controlling terminal, as under cron
    const int null = open("/dev/null", O_RDONLY);
    dup2(null, STDIN_FILENO);
    dup2(out[1], STDOUT_FILENO);
    dup2(out[1], STDERR_FILENO);
    close(out[0]);
    _exit(Child({"submit", "--wait", "--", "train"})());
  }
  close(out[1]);
  std::string text;
  char buf[512];
  bool signalled = false;
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) {
    text.append(buf, n);
    if (!signalled && text.find("submitted job 42\n") != std::string::npos) {
      kill(pid, SIGINT);
      signalled = true;
    }
  }
  close(out[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << text;
  EXPECT_EQ(WEXITSTATUS(status), kExitInterrupted) << text;
  EXPECT_THAT(text, HasSubstr("herd: interrupted; job 42 left to run (herd wait 42 waits for it, "
                              "herd cancel 42 cancels it)\n"));
  EXPECT_THAT(text, Not(HasSubstr("Cancel job")));
  EXPECT_THAT(text, HasSubstr("[actions:]"));
}

// `herd wait` did not submit the jobs: Ctrl-C ends it as before, asking nothing.
TEST_F(InterruptTest, CtrlCAtHerdWaitJustEndsIt) {
  fake_.announce_jobs = true;
  testing::PtyProcess herd(Child({"wait", "42"}));
  ASSERT_TRUE(herd.Expect("\\[jobs asked\\]")) << herd.seen();
  herd.Send("\x03");
  EXPECT_EQ(herd.Wait(), 128 + SIGINT) << herd.seen();
  EXPECT_THAT(herd.seen(), Not(HasSubstr("Cancel")));
  EXPECT_THAT(herd.seen(), Not(HasSubstr("[actions:")));  // killed by the signal, as before
}

// ---- the real transport: ConnectController, herd.toml, ZeroMQ, the codec ----

TEST(CliRemoteTest, SubmitTravelsToARealServerAndTheReplyComesBack) {
  auto server = net::Server::Bind({"tcp://127.0.0.1:*"});
  ASSERT_TRUE(server.ok()) << server.status().message();
  const std::string endpoint = (*server)->Endpoints().at(0);

  std::string dir_template = (std::filesystem::temp_directory_path() / "herd-cli-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
  const std::filesystem::path dir = dir_template;
  const std::string config = (dir / "herd.toml").string();
  std::ofstream(config) << "[controller]\nlisten = [\"" << endpoint
                        << "\"]\n[auth]\nmethod = \"none\"\n";

  proto::SubmitRequest received;
  std::thread ctld([&] {
    for (int i = 0; i < 100; ++i) {
      for (const net::Incoming& in : (*server)->Poll(100)) {
        auto body = proto::BodyOf<proto::SubmitRequest>(in.envelope);
        if (!body.ok()) continue;
        received = *body;
        (*server)->Send(in.peer, proto::MakeEnvelope(proto::SubmitReply{77}, in.envelope.id));
        return;
      }
    }
  });
  Environment env;
  env.cwd = "/work";
  env.connect = ConnectController;
  std::ostringstream out, err;
  int code = RunCli({"--config", config, "--timeout", "5", "submit", "-g", "0.5", "-J", "remote",
                     "--", "echo", "hi"},
                    out, err, env);
  ctld.join();
  std::filesystem::remove_all(dir);
  EXPECT_EQ(code, kExitOk) << err.str();
  EXPECT_EQ(out.str(), "submitted job 77\n");
  EXPECT_EQ(received.spec.name, "remote");
  EXPECT_EQ(received.spec.gpu_milli, 500);
  EXPECT_THAT(received.spec.argv, ElementsAre("echo", "hi"));
}

TEST(CliRemoteTest, SilentControllerExits3) {
  auto server = net::Server::Bind({"tcp://127.0.0.1:*"});  // bound, never answers
  ASSERT_TRUE(server.ok()) << server.status().message();
  std::string dir_template = (std::filesystem::temp_directory_path() / "herd-cli-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
  const std::string config = dir_template + "/herd.toml";
  std::ofstream(config) << "[auth]\nmethod = \"none\"\n";
  Environment env;
  env.connect = ConnectController;
  std::ostringstream out, err;
  int code = RunCli({"--config", config, "--controller", (*server)->Endpoints().at(0),
                     "--timeout", "1", "jobs"},
                    out, err, env);
  std::filesystem::remove_all(dir_template);
  EXPECT_EQ(code, kExitUnreachable);
  EXPECT_THAT(err.str(), HasSubstr("herd: no answer from herd-ctld at tcp://127.0.0.1:"));
}

// A herd.toml with a TOML error outside [controller] and [auth]: herd warns once, naming the
// file and line, and goes on to reach herd-ctld.
TEST(CliRemoteTest, BrokenConfigElsewhereWarnsOnceAndGoesOn) {
  auto server = net::Server::Bind({"tcp://127.0.0.1:*"});  // bound, never answers
  ASSERT_TRUE(server.ok()) << server.status().message();
  std::string dir_template = (std::filesystem::temp_directory_path() / "herd-cli-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir_template.data()), nullptr);
  const std::string config = dir_template + "/herd.toml";
  std::ofstream(config) << "[controller]\nlisten = [\"" << (*server)->Endpoints().at(0)
                        << "\"]\n[auth]\nmethod = \"none\"\n[projects.p]\nmembers = [\"*\"\n";
  Environment env;
  env.connect = ConnectController;
  std::ostringstream out, err;
  int code = RunCli({"--config", config, "--timeout", "1", "jobs"}, out, err, env);
  std::filesystem::remove_all(dir_template);
  EXPECT_EQ(code, kExitUnreachable) << err.str();
  EXPECT_THAT(err.str(), HasSubstr("herd: warning: " + config + ":6:"));
  EXPECT_THAT(err.str(), HasSubstr("herd: no answer from herd-ctld at tcp://127.0.0.1:"));
  EXPECT_EQ(err.str().find("warning"), err.str().rfind("warning")) << err.str();
}

// From cron (no HERD_CONFIG) on a host without /etc/herd/herd.toml: herd says so instead of
// trying the defaults and failing on MUNGE or the connection.
TEST(CliRemoteTest, NoConfigurationFileAtAllSaysWhatToDo) {
  GlobalOptions options;
  options.config_path = "/nonexistent/herd/herd.toml";
  options.config_explicit = false;
  auto made = ConnectController(options);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.status().message(),
            "no configuration file (set HERD_CONFIG or create /nonexistent/herd/herd.toml)");
  Environment env;
  env.connect = [](const GlobalOptions& o) {
    GlobalOptions missing = o;
    missing.config_path = "/nonexistent/herd/herd.toml";
    return ConnectController(missing);
  };
  std::ostringstream out, err;
  EXPECT_EQ(RunCli({"jobs"}, out, err, env), kExitUsage);
  EXPECT_EQ(err.str(),
            "herd: no configuration file (set HERD_CONFIG or create /nonexistent/herd/herd.toml)\n");
}

TEST(CliRemoteTest, MissingExplicitConfigExits1) {
  Environment env;
  env.connect = ConnectController;
  std::ostringstream out, err;
  int code = RunCli({"--config", "/nonexistent/herd.toml", "jobs"}, out, err, env);
  EXPECT_EQ(code, kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("/nonexistent/herd.toml"));
}

}  // namespace
}  // namespace herd::cli
