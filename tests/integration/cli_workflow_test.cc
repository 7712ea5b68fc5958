// The CLI's workflow verbs against a real cluster: `herd why`, `herd usage`, and the
// interactive shell driven through a terminal (tmux).
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/support/eventually.h"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;


std::unique_ptr<LocalCluster> StartCluster() {
  auto started = LocalCluster::Start(
      {kTwoProjects, {"ws01=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml"}});
  EXPECT_TRUE(started.ok()) << started.status().message();
  return started.ok() ? std::move(started).value() : nullptr;
}

nlohmann::json Json(const CommandResult& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
  return j.is_discarded() ? nlohmann::json::object() : j;
}

TEST(CliWorkflowTest, WhyShowsTheReasonAndThePlaceInTheQueue) {
  auto c = StartCluster();
  ASSERT_TRUE(c);
  auto big = c->Submit("-p a -g 4 -t 10m -- sleep 300");
  ASSERT_TRUE(big.ok()) << big.status().message();
  ASSERT_TRUE(c->WaitForState(*big, "RUNNING")) << c->log_tail();
  auto first = c->Submit("-p a -g 4 -- sleep 300");
  auto second = c->Submit("-p a -g 2 -- sleep 300");
  ASSERT_TRUE(first.ok() && second.ok());

  // Wait for a scheduling cycle to have looked at the second job.
  nlohmann::json why;
  Eventually(std::chrono::seconds(8), [&] {
    why = Json(c->Herd("why " + std::to_string(*second) + " --json"));
    return why.value("waits_for", "") != "scheduler";
  });
  EXPECT_EQ(why["state"], "PENDING");
  EXPECT_EQ(why["position"], 1) << why.dump();
  EXPECT_EQ(why["queue_length"], 2) << why.dump();
  EXPECT_NE(why["waits_for"], "scheduler") << why.dump();
  EXPECT_FALSE(why["reason"].get<std::string>().empty());
  EXPECT_EQ(why["project"]["name"], "a");
  EXPECT_EQ(why["project"]["deserved_gpus"], 2.0);
  // Its 2 GPUs free up when the running job reaches its 10 minute limit.
  auto started = c->Show(*big);
  ASSERT_TRUE(started.ok());
  EXPECT_EQ(why["estimated_start"], (*started)["start_time"].get<int64_t>() + 600) << why.dump();

  CommandResult text = c->Herd("why " + std::to_string(*second));
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr(why["reason"].get<std::string>()));
  EXPECT_THAT(text.out, HasSubstr("Position:   1 pending job of project a ahead of it"));
  EXPECT_THAT(text.out, HasSubstr("deserved 2"));
  EXPECT_THAT(text.out, HasSubstr("Estimate:   could start at "));
  EXPECT_THAT(text.out, HasSubstr("when running jobs reach their time limits"));

  CommandResult running = c->Herd("why " + std::to_string(*big));
  EXPECT_THAT(running.out, StartsWith("job " + std::to_string(*big) + " is RUNNING on ws01"));
  EXPECT_EQ(c->Herd("why 99999").exit_code, 2);
  c->Herd("cancel " + std::to_string(*big) + " " + std::to_string(*first) + " " +
          std::to_string(*second));
}

// Writes what the node's fed GPU-metrics source reports: "INDEX UTIL_PCT MEM_USED_MIB" lines.
void FeedGpuMetrics(const LocalCluster& c, const std::string& node, const std::string& lines) {
  const std::string path = c.dir() + "/nodes/" + node + "/gpu-metrics";
  std::ofstream(path + ".tmp") << lines;
  rename((path + ".tmp").c_str(), path.c_str());
}

TEST(CliWorkflowTest, UsageByProjectCountsGpuHoursOfEachProject) {
  auto c = StartCluster();
  ASSERT_TRUE(c);
  // Every GPU of the (emulated) node reports 60% busy while the jobs run.
  FeedGpuMetrics(*c, "ws01", "0 60 1000\n1 60 1000\n2 60 1000\n3 60 1000\n");
  auto a = c->Submit("-p a -g 1 -- sleep 2");
  auto b = c->Submit("-p b -g 2 -- sleep 2");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(c->WaitForEnd(*a), "COMPLETED") << c->log_tail();
  EXPECT_EQ(c->WaitForEnd(*b), "COMPLETED") << c->log_tail();

  // Each finished job keeps its utilization and preemptions.
  double expected_hours = 0;
  for (long id : {*a, *b}) {
    auto job = c->Show(id);
    ASSERT_TRUE(job.ok());
    EXPECT_EQ((*job)["gpu_util_pct"], 60) << job->dump();
    EXPECT_EQ((*job)["preemptions"], 0);
    expected_hours += (*job)["gpus"].get<double>() *
                      ((*job)["end_time"].get<double>() - (*job)["start_time"].get<double>()) /
                      3600;
  }
  CommandResult shown = c->Herd("show " + std::to_string(*a));
  EXPECT_THAT(shown.out, HasSubstr("GpuUtil:"));
  EXPECT_THAT(shown.out, HasSubstr("60% (time-weighted average of its GPUs)"));

  nlohmann::json usage = Json(c->Herd("usage --by project --json"));
  ASSERT_EQ(usage["rows"].size(), 2u) << usage.dump();
  EXPECT_EQ(usage["rows"][0]["project"], "a");
  EXPECT_EQ(usage["rows"][1]["project"], "b");
  double hours = 0;
  for (const auto& row : usage["rows"]) {
    EXPECT_GT(row["gpu_hours"].get<double>(), 0) << usage.dump();
    EXPECT_EQ(row["jobs"], 1);
    EXPECT_EQ(row["gpu_util_pct"], 60) << usage.dump();
    EXPECT_EQ(row["preemptions"], 0);
    hours += row["gpu_hours"].get<double>();
  }
  // The figures add up: the groups' GPU-hours are the jobs' GPUs x run time, whatever the grouping.
  EXPECT_NEAR(hours, expected_hours, 1e-9) << usage.dump();
  nlohmann::json by_user = Json(c->Herd("usage --by user --json"));
  ASSERT_EQ(by_user["rows"].size(), 1u) << by_user.dump();
  EXPECT_NEAR(by_user["rows"][0]["gpu_hours"].get<double>(), expected_hours, 1e-9);
  EXPECT_EQ(by_user["rows"][0]["jobs"], 2);
  EXPECT_EQ(by_user["rows"][0]["gpu_util_pct"], 60);

  CommandResult csv = c->Herd("usage --by project --csv --since 1d");
  EXPECT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_THAT(csv.out, StartsWith("project,gpu_hours,jobs,wait_p50_s,wait_p90_s,wait_p99_s,"
                                   "gpu_util_pct,preemptions\n"));
  EXPECT_THAT(csv.out, HasSubstr("\na,"));
  EXPECT_THAT(csv.out, HasSubstr("\nb,"));

  CommandResult table = c->Herd("usage --by user");
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("GPU-HOURS"));
  EXPECT_THAT(table.out, HasSubstr("GPU-UTIL"));
  EXPECT_THAT(table.out, HasSubstr("60%"));
  EXPECT_EQ(c->Herd("usage --since yesterday-ish").exit_code, 1);
}

// herd as cron runs it: an empty environment but a minimal PATH (no HOME, no TERM, no
// HERD_CONFIG), no terminal, the configuration named by --config; output is plain text, exit
// codes are the documented ones and --json parses.
TEST(CliWorkflowTest, CronLikeEnvironmentGetsPlainOutputAndStableExitCodes) {
  auto c = StartCluster();
  ASSERT_TRUE(c);
  const std::string herd = "env -i PATH=/usr/bin:/bin " + BinDir() + "/herd --config " +
                           c->dir() + "/herd.toml ";
  auto plain = [](const CommandResult& r) {
    return r.out.find('\x1b') == std::string::npos && r.err.find('\x1b') == std::string::npos;
  };
  CommandResult sub = RunShell(herd + "submit -q -g 4 -- sleep 300 </dev/null");
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  EXPECT_TRUE(plain(sub));
  const long running = std::stol(sub.out);
  ASSERT_TRUE(c->WaitForState(running, "RUNNING")) << c->log_tail();
  CommandResult queued = RunShell(herd + "submit --json -g 4 -- true </dev/null");
  ASSERT_EQ(queued.exit_code, 0) << queued.err;
  const long pending = Json(queued)["id"].get<long>();

  const std::vector<std::string> verbs = {"jobs",     "jobs --all", "nodes",
                                         "projects", "usage",      "show " + std::to_string(running),
                                         "why " + std::to_string(pending)};
  for (const std::string& verb : verbs) {
    CommandResult text = RunShell(herd + verb + " </dev/null");
    EXPECT_EQ(text.exit_code, 0) << verb << ": " << text.err;
    EXPECT_TRUE(plain(text)) << verb << ":\n" << text.out;
    CommandResult json = RunShell(herd + verb + " --json </dev/null");
    EXPECT_EQ(json.exit_code, 0) << verb << ": " << json.err;
    EXPECT_TRUE(plain(json));
    EXPECT_FALSE(nlohmann::json::parse(json.out, nullptr, false).is_discarded()) << json.out;
  }
  nlohmann::json jobs = Json(RunShell(herd + "jobs --json"));
  ASSERT_TRUE(jobs.is_array());
  ASSERT_EQ(jobs.size(), 2u) << jobs.dump();
  for (const char* key : {"id", "name", "user", "project", "class", "state", "reason", "gpus",
                          "nodes", "submit_time", "start_time", "end_time", "exit_code"}) {
    EXPECT_TRUE(jobs[0].contains(key)) << key;
  }
  // Running jobs without a time limit: no estimate for the pending one.
  nlohmann::json why = Json(RunShell(herd + "why --json " + std::to_string(pending)));
  EXPECT_EQ(why["estimate_note"], "no estimate: running jobs have no time limit") << why.dump();

  // Documented exit codes (herd(1)): 1 usage, 2 rejected, 3 unreachable, 4 ended badly.
  EXPECT_EQ(RunShell(herd + "submit --gpus lots -- true").exit_code, 1);
  EXPECT_EQ(RunShell(herd + "show 999999").exit_code, 2);
  EXPECT_EQ(RunShell("env -i PATH=/usr/bin:/bin " + BinDir() + "/herd --config /nonexistent.toml jobs")
                .exit_code,
            1);
  EXPECT_EQ(RunShell(herd + "--controller tcp://127.0.0.1:1 --timeout 1 jobs").exit_code, 3);
  EXPECT_EQ(RunShell(herd + "cancel " + std::to_string(running)).exit_code, 0);
  EXPECT_EQ(RunShell(herd + "wait " + std::to_string(running)).exit_code, 4);
  EXPECT_EQ(RunShell(herd + "wait " + std::to_string(pending)).exit_code, 0);
}

// A listing longer than herd-ctld's page (3 jobs here) is asked for page after page: every job
// comes once, in id order; the table gets brief jobs, --json and `herd show` full ones.
TEST(CliWorkflowTest, ListingsSpanningSeveralPagesReturnEveryJobOnceInIdOrder) {
  auto started = LocalCluster::Start({"[controller]\njobs_page_size = 3\n", {"none"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  std::vector<long> ids;
  for (int i = 0; i < 4; ++i) {
    auto id = c.Submit("-n single" + std::to_string(i) + " -e FOO=bar -- echo " +
                       std::to_string(i));
    ASSERT_TRUE(id.ok()) << id.status().message();
    ids.push_back(*id);
  }
  auto array = c.Submit("--array 0-5 -e FOO=bar -- echo member");
  ASSERT_TRUE(array.ok()) << array.status().message();
  for (long k = 0; k < 6; ++k) ids.push_back(*array + k);  // 10 jobs: 4 pages
  // The table names array members ARRAY_INDEX.
  std::vector<std::string> shown_ids;
  for (long id : ids) {
    shown_ids.push_back(id < *array ? std::to_string(id)
                                    : std::to_string(*array) + "_" + std::to_string(id - *array));
  }

  auto table_ids = [](const std::string& out) {
    std::vector<std::string> listed;
    std::istringstream lines(out);
    std::string line;
    std::getline(lines, line);  // the header
    while (std::getline(lines, line)) listed.push_back(line.substr(0, line.find(' ')));
    return listed;
  };
  CommandResult table = c.Herd("jobs --expand");
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(table_ids(table.out), shown_ids) << table.out;
  EXPECT_THAT(table.out, HasSubstr("single3"));
  CommandResult grouped = c.Herd("jobs");
  EXPECT_THAT(grouped.out, HasSubstr(std::to_string(*array) + "[0-5]")) << grouped.out;

  nlohmann::json jobs = Json(c.Herd("jobs --json"));
  ASSERT_TRUE(jobs.is_array());
  std::vector<long> json_ids;
  for (const auto& j : jobs) {
    json_ids.push_back(j["id"].get<long>());
    EXPECT_EQ(j["command"].size(), 2u) << j.dump();
    EXPECT_EQ(j["env"]["FOO"], "bar") << j.dump();
  }
  EXPECT_EQ(json_ids, ids);

  // Named jobs, in any order and more than a page of them, come back once each in id order.
  std::string named;
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) named += " " + std::to_string(*it);
  CommandResult by_id = c.Herd("jobs --expand" + named + " " + std::to_string(ids[0]));
  ASSERT_EQ(by_id.exit_code, 0) << by_id.err;
  EXPECT_EQ(table_ids(by_id.out), shown_ids) << by_id.out;

  // `herd show` of the array finds its members across pages.
  auto shown = c.Show(*array);
  ASSERT_TRUE(shown.ok()) << shown.status().message();
  EXPECT_EQ((*shown)["members"].size(), 6u) << shown->dump();
  EXPECT_EQ((*shown)["env"]["FOO"], "bar");
}

// `herd` alone in a terminal: the shell runs a verb, keeps history, and leaves on `exit`.
TEST(CliWorkflowTest, InteractiveShellRunsVerbsInATerminal) {
  if (system("command -v tmux >/dev/null 2>&1") != 0) GTEST_SKIP() << "tmux is not installed";
  auto c = StartCluster();
  ASSERT_TRUE(c);
  const std::string home = c->dir() + "/home";
  const std::string tmux = "tmux -L herd-test-" + std::to_string(getpid()) + " -f /dev/null ";
  CommandResult started = RunShell(
      tmux + "new-session -d -s t -x 200 -y 50 'env HOME=" + home + " HERD_CONFIG=" + c->dir() +
      "/herd.toml " + BinDir() + "/herd; echo herd-exited-$?; sleep 30'");
  ASSERT_EQ(started.exit_code, 0) << started.err;
  auto screen_has = [&](const std::string& text) {
    std::string screen;
    if (Eventually(std::chrono::seconds(8), [&] {
          screen = RunShell(tmux + "capture-pane -p -t t").out;
          return screen.find(text) != std::string::npos;
        })) {
      return true;
    }
    ADD_FAILURE() << "no '" << text << "' on the screen:\n" << screen;
    return false;
  };
  EXPECT_TRUE(screen_has("herd>"));  // capture-pane drops trailing blanks
  RunShell(tmux + "send-keys -t t 'jobs' Enter");
  EXPECT_TRUE(screen_has("STATE"));
  // Tab completes a verb.
  RunShell(tmux + "send-keys -t t 'proj' Tab Enter");
  EXPECT_TRUE(screen_has("FAIR-SHARE"));
  RunShell(tmux + "send-keys -t t 'exit' Enter");
  EXPECT_TRUE(screen_has("herd-exited-0"));
  RunShell(tmux + "kill-server");

  std::ifstream history(home + "/.local/state/herd/history");
  std::stringstream lines;
  lines << history.rdbuf();
  EXPECT_THAT(lines.str(), HasSubstr("jobs\n"));
  EXPECT_THAT(lines.str(), HasSubstr("projects"));  // completed with a trailing blank
}

}  // namespace
}  // namespace herd::testing
