// The CLI's workflow verbs against a real cluster: `herd why`, `herd usage`, and the
// interactive shell driven through a terminal (tmux).
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

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
  auto big = c->Submit("-p a -g 4 -- sleep 300");
  ASSERT_TRUE(big.ok()) << big.status().message();
  ASSERT_TRUE(c->WaitForState(*big, "RUNNING")) << c->log_tail();
  auto first = c->Submit("-p a -g 4 -- sleep 300");
  auto second = c->Submit("-p a -g 2 -- sleep 300");
  ASSERT_TRUE(first.ok() && second.ok());

  // Wait for a scheduling cycle to have looked at the second job.
  nlohmann::json why;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  do {
    why = Json(c->Herd("why " + std::to_string(*second) + " --json"));
    if (why.value("waits_for", "") != "scheduler") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling with a deadline
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(why["state"], "PENDING");
  EXPECT_EQ(why["position"], 1) << why.dump();
  EXPECT_EQ(why["queue_length"], 2) << why.dump();
  EXPECT_NE(why["waits_for"], "scheduler") << why.dump();
  EXPECT_FALSE(why["reason"].get<std::string>().empty());
  EXPECT_EQ(why["project"]["name"], "a");
  EXPECT_EQ(why["project"]["deserved_gpus"], 2.0);

  CommandResult text = c->Herd("why " + std::to_string(*second));
  EXPECT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr(why["reason"].get<std::string>()));
  EXPECT_THAT(text.out, HasSubstr("Position:   1 pending job of project a ahead of it"));
  EXPECT_THAT(text.out, HasSubstr("deserved 2"));

  CommandResult running = c->Herd("why " + std::to_string(*big));
  EXPECT_THAT(running.out, StartsWith("job " + std::to_string(*big) + " is RUNNING on ws01"));
  EXPECT_EQ(c->Herd("why 99999").exit_code, 2);
  c->Herd("cancel " + std::to_string(*big) + " " + std::to_string(*first) + " " +
          std::to_string(*second));
}

TEST(CliWorkflowTest, UsageByProjectCountsGpuHoursOfEachProject) {
  auto c = StartCluster();
  ASSERT_TRUE(c);
  auto a = c->Submit("-p a -g 1 -- sleep 1");
  auto b = c->Submit("-p b -g 2 -- sleep 1");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(c->WaitForEnd(*a), "COMPLETED") << c->log_tail();
  EXPECT_EQ(c->WaitForEnd(*b), "COMPLETED") << c->log_tail();

  nlohmann::json usage = Json(c->Herd("usage --by project --json"));
  ASSERT_EQ(usage["rows"].size(), 2u) << usage.dump();
  EXPECT_EQ(usage["rows"][0]["project"], "a");
  EXPECT_EQ(usage["rows"][1]["project"], "b");
  for (const auto& row : usage["rows"]) {
    EXPECT_GT(row["gpu_hours"].get<double>(), 0) << usage.dump();
    EXPECT_EQ(row["jobs"], 1);
  }

  CommandResult csv = c->Herd("usage --by project --csv --since 1d");
  EXPECT_EQ(csv.exit_code, 0) << csv.err;
  EXPECT_THAT(csv.out, StartsWith("project,gpu_hours,jobs,wait_p50_s,wait_p90_s,wait_p99_s\n"));
  EXPECT_THAT(csv.out, HasSubstr("\na,"));
  EXPECT_THAT(csv.out, HasSubstr("\nb,"));

  CommandResult table = c->Herd("usage --by user");
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("GPU-HOURS"));
  EXPECT_EQ(c->Herd("usage --since yesterday-ish").exit_code, 1);
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
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
    std::string screen;
    while (std::chrono::steady_clock::now() < deadline) {
      screen = RunShell(tmux + "capture-pane -p -t t").out;
      if (screen.find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // polling with a deadline
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
