// The /metrics text: exact numbers, cumulative histograms, escaping, and `promtool check metrics`
// (Prometheus's own linter) clean on a full sample.
#include "web/metrics.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herd::web {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Scrape Sample() {
  Scrape s;
  s.up = true;
  proto::StatsReply& r = s.stats;
  r.start_time = 1700000000;
  r.rss_bytes = 52428800;
  r.jobs = {{"RUNNING", "vision", "train", 3}, {"PENDING", "nlp", "interactive", 1}};
  r.gpus = {{"dgx01", "a100", "", 8, 2500, 1970}, {"dgx01", "a100", "vision", 0, 2500, 1250}};
  r.nodes = {{"dgx01", "UP"}, {"ws01", "DRAIN"}};
  r.wait_bounds_s = {10, 60};
  r.waits = {{"vision", "train", {{4, 1, 0}, 700}}};
  r.cycle_bounds_us = {1000, 10000};
  r.cycles = {{5, 2, 1}, 31000};
  r.lag_bounds_us = {1000};
  r.loop_lag = {{90, 1}, 4000};
  r.evictions = {{"reclaim", 2, 7200000}, {"preempt", 0, 0}, {"consolidate", 1, 1800000}};
  r.submitted_jobs = 42;
  proto::ProjectStatus vision;
  vision.name = "vision";
  vision.parent = "research";
  vision.is_project = true;
  vision.deserved.gpu_milli = 4000;
  vision.fair_share.gpu_milli = 6500;
  vision.allocated.gpu_milli = 2500;
  proto::ProjectStatus research;
  research.name = "research";
  research.limit.gpu_milli = 16000;
  s.queues.projects = {vision, research};
  return s;
}

TEST(MetricsTest, ScaledIsExactDecimal) {
  EXPECT_EQ(Scaled(2500, 1000), "2.5");
  EXPECT_EQ(Scaled(0, 1000), "0");
  EXPECT_EQ(Scaled(8000, 1000), "8");
  EXPECT_EQ(Scaled(-1500, 1000), "-1.5");
  EXPECT_EQ(Scaled(1, 1000000), "0.000001");
  EXPECT_EQ(Scaled(7200000, 3600 * 1000), "2");
  EXPECT_EQ(Scaled(1800000, 3600 * 1000), "0.5");
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  EXPECT_EQ(EscapeLabel("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(MetricsTest, SamplesCarryHerdCtldsNumbers) {
  const std::string text = FormatMetrics(Sample());
  for (const char* line : {
           "herd_ctld_up 1\n",
           "herd_jobs{state=\"RUNNING\",project=\"vision\",class=\"train\"} 3\n",
           "herd_jobs_submitted_total 42\n",
           "herd_node_gpus{node=\"dgx01\",gpu_type=\"a100\"} 8\n",
           "herd_node_gpus_allocated{node=\"dgx01\",gpu_type=\"a100\"} 2.5\n",
           "herd_node_gpus_idle{node=\"dgx01\",gpu_type=\"a100\"} 5.5\n",
           "herd_node_gpus_busy{node=\"dgx01\",gpu_type=\"a100\"} 1.97\n",
           "herd_project_gpus_allocated{node=\"dgx01\",gpu_type=\"a100\",project=\"vision\"} 2.5\n",
           "herd_project_gpus_busy{node=\"dgx01\",gpu_type=\"a100\",project=\"vision\"} 1.25\n",
           "herd_queue_gpus_deserved{queue=\"vision\",kind=\"project\"} 4\n",
           "herd_queue_gpus_limit{queue=\"research\",kind=\"department\"} 16\n",
           "herd_nodes{state=\"DRAIN\"} 1\n",
           "herd_nodes{state=\"DOWN\"} 0\n",
           "herd_node_state{node=\"ws01\",state=\"DRAIN\"} 1\n",
           "herd_evictions_total{kind=\"reclaim\"} 2\n",
           "herd_evicted_gpu_seconds_total{kind=\"reclaim\"} 7200\n",
           "herd_evicted_gpu_seconds_total{kind=\"consolidate\"} 1800\n",
           "herd_ctld_resident_memory_bytes 52428800\n",
       }) {
    EXPECT_THAT(text, HasSubstr(line));
  }
  EXPECT_THAT(text, Not(HasSubstr("herd_queue_gpus_limit{queue=\"vision\"")));  // unlimited
}

TEST(MetricsTest, HistogramBucketsAreCumulativeInBaseUnits) {
  const std::string text = FormatMetrics(Sample());
  EXPECT_THAT(text,
              HasSubstr("herd_job_wait_seconds_bucket{project=\"vision\",class=\"train\","
                        "le=\"10\"} 4\n"
                        "herd_job_wait_seconds_bucket{project=\"vision\",class=\"train\","
                        "le=\"60\"} 5\n"
                        "herd_job_wait_seconds_bucket{project=\"vision\",class=\"train\","
                        "le=\"+Inf\"} 5\n"
                        "herd_job_wait_seconds_sum{project=\"vision\",class=\"train\"} 700\n"
                        "herd_job_wait_seconds_count{project=\"vision\",class=\"train\"} 5\n"));
  EXPECT_THAT(text, HasSubstr("herd_scheduling_cycle_duration_seconds_bucket{le=\"0.001\"} 5\n"
                              "herd_scheduling_cycle_duration_seconds_bucket{le=\"0.01\"} 7\n"
                              "herd_scheduling_cycle_duration_seconds_bucket{le=\"+Inf\"} 8\n"
                              "herd_scheduling_cycle_duration_seconds_sum 0.031\n"
                              "herd_scheduling_cycle_duration_seconds_count 8\n"));
}

TEST(MetricsTest, WithoutHerdCtldOnlyUpIsZero) {
  const std::string text = FormatMetrics(Scrape{});
  EXPECT_THAT(text, HasSubstr("herd_ctld_up 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("herd_jobs")));
}

// Runs `promtool check metrics` on `text`: its exit status and output.
std::pair<int, std::string> Promtool(const std::string& text) {
  char path[] = "/tmp/herd-metrics-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return {-1, "mkstemp failed"};
  close(fd);
  std::ofstream(path) << text;
  const std::string cmd = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p != nullptr && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = p == nullptr ? -1 : pclose(p);
  unlink(path);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(MetricsTest, PromtoolFindsNoProblem) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool is not installed (apt-get install prometheus)";
  }
  for (const Scrape& s : {Sample(), Scrape{}}) {
    auto [code, out] = Promtool(FormatMetrics(s));
    EXPECT_EQ(code, 0) << out;
    EXPECT_EQ(out, "") << out;
  }
}

}  // namespace
}  // namespace herd::web
