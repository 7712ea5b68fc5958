// Workflows end to end through the real daemons: dependencies (--after), --hold and
// herd release, job arrays with a concurrency cap, and submit --wait.
#include <chrono>
#include <set>
#include <string>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

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
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = Field(id, "reason");
      if (r.is_string() && r.get<std::string>().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
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
  ASSERT_TRUE(WaitForReason(*id, "held: herd release " + std::to_string(*id))) << c().log_tail();
  EXPECT_EQ(Field(*id, "state"), "PENDING");
  CommandResult released = c().Herd("release " + std::to_string(*id));
  EXPECT_EQ(released.exit_code, 0) << released.err;
  EXPECT_EQ(released.out, "released job " + std::to_string(*id) + "\n");
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
  EXPECT_THAT(expanded.out, HasSubstr(std::to_string(*first + 3)));

  CommandResult cancel = c().Herd("cancel " + std::to_string(*first));
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_EQ(cancel.out, "cancelled array " + std::to_string(*first) + " (4 unfinished jobs)\n");
  for (long id = *first; id < *first + 4; ++id) {
    EXPECT_EQ(c().WaitForEnd(id, std::chrono::seconds(30)), "CANCELLED") << c().log_tail();
  }
}

TEST_F(WorkflowTest, SubmitWaitExitsWithTheJobsExitCode) {
  CommandResult r = c().Herd("submit --wait -- sh -c 'exit 7'");
  EXPECT_EQ(r.exit_code, 7) << r.err;
  EXPECT_THAT(r.out, HasSubstr("FAILED, exit code 7"));
  CommandResult ok = c().Herd("submit --wait -- true");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
}

}  // namespace
}  // namespace herd::testing
