// Workflows end to end through the real daemons: dependencies (--after), --hold and
// herd release, job arrays with a concurrency cap, submit --wait, and what a batch user brings
// (the submitting shell's environment, script files with #HERD and #SBATCH directives).
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/support/eventually.h"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;

class WorkflowTest : public SharedClusterTest<WorkflowTest> {
 protected:
  // The job's field `key` as JSON (null when the job cannot be read).
  nlohmann::json Field(long id, const std::string& key) {
    auto j = c().Show(id);
    return j.ok() ? (*j)[key] : nlohmann::json();
  }
  // Polls until the job's reason contains `text`.
  bool WaitForReason(long id, const std::string& text) {
    return Eventually(std::chrono::seconds(15), [&] {
      auto r = Field(id, "reason");
      return r.is_string() && r.get<std::string>().find(text) != std::string::npos;
    });
  }
};

TEST_F(WorkflowTest, AfterOkChainRunsInOrder) {
  auto a = c().Submit("-- sleep 2");
  ASSERT_TRUE(a.ok()) << a.status().message();
  auto b = c().Submit("--after " + std::to_string(*a) + " -- true");
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_TRUE(WaitForReason(*b, "waiting for job " + std::to_string(*a) + " to complete"))
      << c().log_tail();
  ASSERT_EQ(c().WaitForEnd(*b, std::chrono::seconds(30)), "COMPLETED") << c().log_tail();
  EXPECT_EQ(Field(*a, "state"), "COMPLETED");
  EXPECT_GE(Field(*b, "start_time").get<int64_t>(), Field(*a, "end_time").get<int64_t>());

  CommandResult unknown = c().Herd("submit --after 999999 -- true");
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("job 999999 not found"));
}

TEST_F(WorkflowTest, AfterOkOnAFailingJobCancelsTheDependent) {
  auto a = c().Submit("-- sh -c 'sleep 1; exit 3'");
  ASSERT_TRUE(a.ok()) << a.status().message();
  auto ok = c().Submit("--after " + std::to_string(*a) + ":ok -- true");
  auto fail = c().Submit("--after " + std::to_string(*a) + ":fail -- true");
  ASSERT_TRUE(ok.ok() && fail.ok());
  ASSERT_EQ(c().WaitForEnd(*ok, std::chrono::seconds(30)), "CANCELLED") << c().log_tail();
  EXPECT_EQ(Field(*ok, "reason"), "dependency job " + std::to_string(*a) + " ended FAILED");
  EXPECT_EQ(c().WaitForEnd(*fail, std::chrono::seconds(30)), "COMPLETED") << c().log_tail();
}

TEST_F(WorkflowTest, HoldThenRelease) {
  auto id = c().Submit("--hold -- true");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(WaitForReason(*id, "held by user: herd release " + std::to_string(*id))) << c().log_tail();
  EXPECT_EQ(Field(*id, "state"), "PENDING");
  auto why = nlohmann::json::parse(c().Herd("why --json " + std::to_string(*id)).out);
  EXPECT_EQ(why["estimated_start"], nullptr);
  EXPECT_EQ(why["estimate_note"], "no estimate: it waits for its hold");
  CommandResult released = c().Herd("release " + std::to_string(*id));
  EXPECT_EQ(released.exit_code, 0) << released.err;
  EXPECT_EQ(released.out, "released job " + std::to_string(*id) + "\n");
  // (The why was asked before the release: a held job has no start estimate.)
  EXPECT_EQ(c().WaitForEnd(*id, std::chrono::seconds(30)), "COMPLETED") << c().log_tail();
}

TEST_F(WorkflowTest, ArrayRunsEveryIndexOnceAndAtMostTwoAtOnce) {
  CommandResult sub = c().Herd(
      "submit --array 1-6%2 -- sh -c 'echo index=$HERD_ARRAY_INDEX array=$HERD_ARRAY_ID; sleep 1'");
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  long first = 0;
  ASSERT_EQ(sscanf(sub.out.c_str(), "submitted array %ld (6 jobs:", &first), 1) << sub.out;
  const long last = first + 5;
  EXPECT_EQ(sub.out, "submitted array " + std::to_string(first) + " (6 jobs: " +
                         std::to_string(first) + "-" + std::to_string(last) + ")\n");

  int max_running = 0;
  bool done = false;
  bool saw_cap_reason = false;
  // Not Eventually: every listing counts (the most RUNNING at once), not only the last one.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
  while (!done && std::chrono::steady_clock::now() < deadline) {
    CommandResult jobs = c().Herd("jobs --all --json");
    ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
    int running = 0, ended = 0;
    for (const auto& j : nlohmann::json::parse(jobs.out)) {
      const long id = j["id"].get<long>();
      if (id < first || id > last) continue;
      const std::string state = j["state"];
      running += state == "RUNNING" || state == "STARTING";
      ended += state == "COMPLETED" || state == "FAILED" || state == "CANCELLED";
      saw_cap_reason = saw_cap_reason || j["reason"] == "array " + std::to_string(first) +
                                                            " runs 2 at once";
    }
    max_running = std::max(max_running, running);
    done = ended == 6;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(done) << c().log_tail();
  EXPECT_LE(max_running, 2);
  EXPECT_GE(max_running, 1);
  EXPECT_TRUE(saw_cap_reason);

  std::multiset<std::string> seen;
  for (long id = first; id <= last; ++id) {
    EXPECT_EQ(Field(id, "state"), "COMPLETED");
    CommandResult logs = c().Herd("logs " + std::to_string(id));
    EXPECT_EQ(logs.exit_code, 0) << logs.err;
    EXPECT_THAT(logs.out, HasSubstr("array=" + std::to_string(first)));
    seen.insert(logs.out.substr(0, logs.out.find(' ')));
  }
  EXPECT_EQ(seen, (std::multiset<std::string>{"index=1", "index=2", "index=3", "index=4",
                                              "index=5", "index=6"}));
}

TEST_F(WorkflowTest, CancelOfAnArrayIdCancelsTheRest) {
  auto first = c().Submit("--array 0-3%1 -- sleep 300");
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(c().WaitForState(*first, "RUNNING")) << c().log_tail();
  CommandResult listed = c().Herd("jobs");
  EXPECT_THAT(listed.out, HasSubstr(std::to_string(*first) + "[0-3]"));
  CommandResult expanded = c().Herd("jobs " + std::to_string(*first));
  EXPECT_THAT(expanded.out, HasSubstr(std::to_string(*first) + "_3"));

  CommandResult cancel = c().Herd("cancel " + std::to_string(*first));
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_EQ(cancel.out, "cancelled array " + std::to_string(*first) + " (4 unfinished jobs)\n");
  for (long id = *first; id < *first + 4; ++id) {
    EXPECT_EQ(c().WaitForEnd(id, std::chrono::seconds(30)), "CANCELLED") << c().log_tail();
  }
}

// Ids of jobs in `herd jobs --all --json`.
std::set<long> AllIds(const LocalCluster& c) {
  std::set<long> ids;
  for (const auto& j : nlohmann::json::parse(c.Herd("jobs --all --json").out)) {
    ids.insert(j["id"].get<long>());
  }
  return ids;
}

TEST_F(WorkflowTest, SweepRunsEveryCombinationAsOneObject) {
  CommandResult sub = c().Herd(
      "submit --sweep 'lr=1e-3,1e-4 bs=32,64' -- sh -c "
      "'echo lr={lr} bs={bs} env=$HERD_SWEEP_LR,$HERD_SWEEP_BS index=$HERD_SWEEP_INDEX'");
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  long first = 0;
  ASSERT_EQ(sscanf(sub.out.c_str(), "submitted sweep %ld (4 jobs:", &first), 1) << sub.out;
  std::set<std::string> outputs;
  for (long id = first; id < first + 4; ++id) {
    ASSERT_EQ(c().WaitForEnd(id, std::chrono::seconds(30)), "COMPLETED") << c().log_tail();
    outputs.insert(c().Herd("logs " + std::to_string(id)).out);
  }
  // The first parameter varies slowest; each value is in the command and the environment.
  EXPECT_EQ(outputs, (std::set<std::string>{
                         "lr=1e-3 bs=32 env=1e-3,32 index=0\n", "lr=1e-3 bs=64 env=1e-3,64 index=1\n",
                         "lr=1e-4 bs=32 env=1e-4,32 index=2\n", "lr=1e-4 bs=64 env=1e-4,64 index=3\n"}));
  EXPECT_EQ(Field(first + 3, "sweep"), (nlohmann::json{{"lr", "1e-4"}, {"bs", "64"}}));

  // One line in `herd jobs`, the members in `herd show`.
  CommandResult listed = c().Herd("jobs --all");
  EXPECT_THAT(listed.out, HasSubstr(std::to_string(first) + "[0-3]"));
  EXPECT_THAT(listed.out, HasSubstr("4 COMPLETED"));
  EXPECT_THAT(listed.out, ::testing::Not(HasSubstr("\n" + std::to_string(first + 1) + " ")));
  CommandResult shown = c().Herd("show " + std::to_string(first));
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_THAT(shown.out, HasSubstr("Sweep " + std::to_string(first) + ": 4 jobs"));
  EXPECT_THAT(shown.out, HasSubstr("COMPLETED  0     bs=64 lr=1e-4"));
  auto json = nlohmann::json::parse(c().Herd("show --json " + std::to_string(first)).out);
  ASSERT_EQ(json["members"].size(), 4u) << json.dump();
  EXPECT_EQ(json["members"][2]["sweep"]["lr"], "1e-4");
}

TEST_F(WorkflowTest, BadSweepIsAUsageErrorAndSubmitsNothing) {
  const std::set<long> before = AllIds(c());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--sweep 'lr' -- echo {lr}", "'lr' has no '='"},
      {"--sweep 'lr=1,2 lr=3' -- echo {lr}", "parameter 'lr' is given twice"},
      {"--sweep 'lr=1 LR=3' -- echo {lr}", "parameter 'LR' is given twice"},
      {"--sweep 'lr=1,2' -- echo {lr} {bs}", "uses {bs} but the sweep defines only lr"},
      {"--sweep 'lr=' -- echo {lr}", "parameter 'lr' has no values"},
      {"--sweep 'lr=1,,2' -- echo {lr}", "has an empty value"},
      {"--sweep '9x=1' -- echo", "invalid name '9x'"},
      {"--sweep 'a=1,2,3,4,5,6,7,8,9,10 b=1,2,3,4,5,6,7,8,9,10 c=1,2,3,4,5,6,7,8,9,10 "
       "d=1,2,3,4,5,6,7,8,9,10 e=1,2' -- echo",
       "over 10000 jobs"},
      {"--sweep 'a=1' --array 1-2 -- echo", "choose one of --array and --sweep"},
      {"--stop-after-first-success -- echo", "needs --array or --sweep"},
  };
  for (const auto& [args, message] : cases) {
    CommandResult r = c().Herd("submit " + args);
    EXPECT_EQ(r.exit_code, 1) << args << ": " << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr(message)) << args;
  }
  // A shell variable ${name} is left for the shell.
  CommandResult shell = c().Herd("submit --wait --sweep 'x=5' -- sh -c 'y={x}; echo ${y}'");
  EXPECT_EQ(shell.exit_code, 0) << shell.err;
  EXPECT_EQ(AllIds(c()).size(), before.size() + 1);
}

TEST_F(WorkflowTest, StopAfterFirstSuccessCancelsTheRestAcrossARestart) {
  // Member 1 succeeds after a while; 0 and 2 run on, 3 waits for the cap of 3.
  CommandResult sub = c().Herd(
      "submit -q --sweep 'x=0,1,2,3' --sweep-limit 3 --stop-after-first-success -- "
      "sh -c 'if [ {x} = 1 ]; then sleep 3; exit 0; fi; sleep 300'");
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const long first = std::stol(sub.out);
  ASSERT_TRUE(c().WaitForState(first + 1, "RUNNING")) << c().log_tail();
  EXPECT_TRUE(WaitForReason(first + 3, "array " + std::to_string(first) + " runs 3 at once"));
  // The rule lives in the stored state: a controller restart does not lose it.
  ASSERT_TRUE(c().RestartController().ok()) << c().log_tail();
  ASSERT_EQ(c().WaitForEnd(first + 1, std::chrono::seconds(30)), "COMPLETED") << c().log_tail();
  const std::string reason = "cancelled: job " + std::to_string(first + 1) + " of array " +
                             std::to_string(first) + " completed (--stop-after-first-success)";
  for (long id : {first, first + 2, first + 3}) {
    EXPECT_EQ(c().WaitForEnd(id, std::chrono::seconds(30)), "CANCELLED") << c().log_tail();
    EXPECT_EQ(Field(id, "reason"), reason);
  }
  EXPECT_EQ(Field(first + 3, "start_time"), nullptr) << "the pending one never started";
}

TEST_F(WorkflowTest, SubmitWaitExitsWithTheJobsExitCode) {
  CommandResult r = c().Herd("submit --wait -- sh -c 'exit 7'");
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_THAT(r.out, HasSubstr("FAILED, exit code 7"));
  CommandResult ok = c().Herd("submit --wait -- true");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

// ---- what a batch user brings: the shell's environment, script files with directives ----

// Writes `text` to `path` with `mode`.
void WriteScript(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path) << text;
  chmod(path.c_str(), mode);
}

TEST_F(WorkflowTest, SubmitCarriesTheShellsEnvironmentAndPath) {
  // A command found only through the PATH of the shell that submits.
  const std::string bin = c().dir() + "/env-test-bin";
  ASSERT_EQ(mkdir(bin.c_str(), 0755), 0);
  WriteScript(bin + "/herd-env-probe", "#!/bin/sh\necho \"FOO=[$FOO] PATH=[$PATH]\"\n", 0755);
  const std::string shell = "export FOO=from-shell PATH=" + bin + ":$PATH &&";
  CommandResult r = c().HerdIn(shell, "submit -q -- herd-env-probe");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const long id = std::stol(r.out);
  ASSERT_EQ(c().WaitForEnd(id), "COMPLETED") << c().Herd("show " + std::to_string(id)).out;
  // herd itself ran with the cluster's build first in PATH, then the shell's.
  const std::string path = BinDir() + ":" + bin + ":" + getenv("PATH");
  EXPECT_THAT(c().Herd("logs " + std::to_string(id)).out,
              HasSubstr("FOO=[from-shell] PATH=[" + path + "]"));

  const std::string echo = " -- sh -c 'echo \"FOO=[$FOO] PATH=[$PATH]\"'";
  r = c().HerdIn(shell, "submit -q --export=NONE" + echo);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const long none = std::stol(r.out);
  r = c().HerdIn(shell, "submit -q --export=NONE -e FOO=dash-e" + echo);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const long dash_e = std::stol(r.out);
  ASSERT_EQ(c().WaitForEnd(none), "COMPLETED") << c().log_tail();
  ASSERT_EQ(c().WaitForEnd(dash_e), "COMPLETED") << c().log_tail();
  const std::string none_log = c().Herd("logs " + std::to_string(none)).out;
  EXPECT_THAT(none_log, HasSubstr("FOO=[] "));
  EXPECT_THAT(none_log, ::testing::Not(HasSubstr(bin)));
  EXPECT_THAT(c().Herd("logs " + std::to_string(dash_e)).out, HasSubstr("FOO=[dash-e] "));
}

TEST_F(WorkflowTest, ScriptDirectivesApplyAndTheScriptIsCopiedAtSubmit) {
  const std::string dir = c().dir() + "/scripts-copied";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  WriteScript(dir + "/job.sh",
              "#!/bin/sh\n#SBATCH -J from-sbatch -t 5\n#HERD -e GREETING=hello\n"
              "echo \"version one: $GREETING $1\"\n");
  // Held, so that it is still queued when the file changes; -t overrides the script's.
  CommandResult r = c().HerdIn("cd " + dir + " &&", "submit -q --hold -t 10m job.sh arg1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const long id = std::stol(r.out);
  EXPECT_EQ(Field(id, "name"), "from-sbatch");
  EXPECT_EQ(Field(id, "time_limit_s"), 600);
  WriteScript(dir + "/job.sh", "#!/bin/sh\necho version two\n");
  ASSERT_EQ(c().Herd("release " + std::to_string(id)).exit_code, 0);
  ASSERT_EQ(c().WaitForEnd(id), "COMPLETED") << c().Herd("show " + std::to_string(id)).out;
  const std::string log = c().Herd("logs " + std::to_string(id)).out;
  EXPECT_THAT(log, HasSubstr("version one: hello arg1"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("version two")));
}

TEST_F(WorkflowTest, ABareScriptNameWithNeitherExecBitNorShebangRuns) {
  const std::string dir = c().dir() + "/scripts-bare";
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  WriteScript(dir + "/job.sbatch", "#SBATCH -J bare -t 5\necho \"$# args: $1\"\n", 0644);
  CommandResult r = c().HerdIn("cd " + dir + " &&", "submit -q job.sbatch one");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const long id = std::stol(r.out);
  ASSERT_EQ(c().WaitForEnd(id), "COMPLETED") << c().Herd("show " + std::to_string(id)).out;
  EXPECT_EQ(Field(id, "name"), "bare");
  EXPECT_EQ(Field(id, "time_limit_s"), 300);
  EXPECT_THAT(c().Herd("logs " + std::to_string(id)).out, HasSubstr("1 args: one"));

  // A #! interpreter the node does not have is named in the reason.
  WriteScript(dir + "/lost.sh", "#!/no/such/interpreter\necho never\n");
  r = c().HerdIn("cd " + dir + " &&", "submit -q lost.sh");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const long lost = std::stol(r.out);
  ASSERT_EQ(c().WaitForEnd(lost), "FAILED") << c().Herd("show " + std::to_string(lost)).out;
  EXPECT_THAT(Field(lost, "reason").get<std::string>(),
              HasSubstr("cannot run the batch script '" + dir +
                        "/lost.sh' with '#!/no/such/interpreter': No such file or directory"));
}

// A user's script runs with that user's rights, and other users never see its text.
TEST_F(WorkflowTest, AUsersScriptRunsAsThemAndOnlyTheyCanReadIt) {
  if (geteuid() != 0) GTEST_SKIP() << "switching users needs root";
  if (RunShell("command -v setpriv").exit_code != 0) GTEST_SKIP() << "setpriv is not installed";
  constexpr uint32_t kNobody = 65534, kOtherUser = 65533;
  const std::string script = c().dir() + "/nobody-job.sh";
  WriteScript(script, "#!/bin/sh\n#HERD --hold\necho \"secret-word uid=$(id -u)\"\n");
  CommandResult r = c().HerdAs(kNobody, kNobody, "submit -q " + script);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string id = std::to_string(std::stol(r.out));
  CommandResult other = c().HerdAs(kOtherUser, kOtherUser, "show --json " + id);
  EXPECT_EQ(other.exit_code, 0) << other.err;
  EXPECT_THAT(other.out, ::testing::Not(HasSubstr("secret-word")));
  EXPECT_THAT(c().HerdAs(kNobody, kNobody, "show --json " + id).out, HasSubstr("secret-word"));
  ASSERT_EQ(c().HerdAs(kNobody, kNobody, "release " + id).exit_code, 0);
  ASSERT_EQ(c().WaitForEnd(std::stol(id)), "COMPLETED") << c().Herd("show " + id).out;
  EXPECT_THAT(c().Herd("logs " + id).out, HasSubstr("secret-word uid=65534"));
}

}  // namespace
}  // namespace herd::testing
