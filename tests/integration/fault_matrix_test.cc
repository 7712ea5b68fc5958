// The fault matrix: a mixed workload (short and long jobs, an array, cancels) on a local cluster
// of two nodes, while one fault is injected per test: herd-ctld or a herd-noded paused past
// node_timeout, kill -9 of herd-ctld, of a herd-noded or of a herd-shim, a quick herd-noded
// restart. Each test then checks a history built from what herd reported (`herd jobs --all
// --json`, polled all along) and from what ran (every job appends "start|tick|end JOB RUN NODE
// PID TIME" lines to a file, RUN being its HERD_RESTART_COUNT):
//   * every acknowledged job exists once, and the workload ends;
//   * no (job, run) runs twice at the same time;
//   * nothing of a job runs after herd reported it ended;
//   * no job ended FAILED whose last run never started;
//   * where the fault took no node away for longer than node_timeout (herd-ctld paused or
//     killed), no job was requeued.
// The node faults run on one node, so that jobs requeued from it can only start on it again.
// ctest label: faults (ctest -L faults).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/integration/cluster.h"
#include "tests/support/eventually.h"

namespace herd::testing {
namespace {

using nlohmann::json;

constexpr int kNodeTimeoutS = 2;
// Long enough past node_timeout that herd-ctld, or a node, is surely taken for dead.
constexpr auto kPause = std::chrono::seconds(kNodeTimeoutS * 2 + 1);
// A run left behind on a node herd could not reach ends at most this long after the node is back.
constexpr double kLeftBehindBound = 5.0;

constexpr char kConfig[] = R"(
[scheduler]
heartbeat_interval = "250ms"
node_timeout = "2s"
kill_grace = "1s"
)";

// job.sh SECONDS LOG: announces itself, ticks every half second for SECONDS, then ends.
constexpr char kJobScript[] = R"sh(#!/bin/sh
log=$2
line() { echo "$1 $HERD_JOB_ID $HERD_RESTART_COUNT $HERD_NODE $$ $(date +%s.%N)" >> "$log"; }
line start
i=0
while [ $i -lt $(($1 * 2)) ]; do
  sleep 0.5
  line tick
  i=$((i + 1))
done
line end
)sh";

double WallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Terminal(const std::string& s) {
  return s == "COMPLETED" || s == "FAILED" || s == "CANCELLED" || s == "TIMEOUT" ||
         s == "NODE_FAIL";
}

std::string Topology(const std::string& name) {
  return name + "=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml";
}

// One line a job wrote.
struct Mark {
  std::string what;  // start, tick, end
  long job = 0;
  int run = 0;
  std::string node;
  long pid = 0;
  double time = 0;
};

class FaultMatrixTest : public ::testing::Test {
 protected:
  // Starts a cluster of `nodes` 4-GPU nodes (ws01, ws02...) and the poller of herd's reports.
  // With one node, jobs requeued from it can only start on it again once it is back.
  void StartCluster(int nodes) {
    LocalCluster::Options options;
    options.extra_toml = kConfig;
    for (int i = 1; i <= nodes; ++i) options.nodes.push_back(Topology("ws0" + std::to_string(i)));
    auto c = LocalCluster::Start(options);
    ASSERT_TRUE(c.ok()) << c.status().message();
    cluster_ = std::move(c).value();
    script_ = cluster_->dir() + "/job.sh";
    history_ = cluster_->dir() + "/history";
    std::ofstream(script_) << kJobScript;
    RunShell("chmod 0755 " + script_);
    poller_ = std::thread([this] { Poll(); });
  }

  void TearDown() override {
    stop_ = true;
    if (poller_.joinable()) poller_.join();
    cluster_.reset();
  }

  const LocalCluster& c() const { return *cluster_; }

  // Submits a job running SECONDS with `flags`; records the ids herd acknowledged.
  std::vector<long> Submit(const std::string& name, int seconds, const std::string& flags = "") {
    CommandResult r = c().Herd("--timeout 30 submit --json -J " + name + " " + flags + " -- " +
                               script_ + " " + std::to_string(seconds) + " " + history_);
    std::vector<long> ids;
    if (r.exit_code != 0) {
      ADD_FAILURE() << "submit of " << name << " failed (" << r.exit_code << "): " << r.err;
      return ids;
    }
    json j = json::parse(r.out, nullptr, false);
    if (j.is_discarded()) {
      ADD_FAILURE() << "submit printed no JSON: " << r.out;
      return ids;
    }
    if (j.contains("jobs")) {
      for (const auto& id : j["jobs"]) ids.push_back(id.get<long>());
    } else {
      ids.push_back(j["id"].get<long>());
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (long id : ids) acknowledged_[id] = name;
    return ids;
  }

  long SubmitOne(const std::string& name, int seconds, const std::string& flags = "") {
    std::vector<long> ids = Submit(name, seconds, flags);
    return ids.empty() ? 0 : ids[0];
  }

  // Starts a cluster of `nodes` nodes and the workload before the fault: long jobs (one to be
  // cancelled), short ones and an array; cancels one long job once it runs. Returns once the
  // first long job runs, its id in *long_job.
  void StartWorkload(int nodes, long* long_job) {
    ASSERT_NO_FATAL_FAILURE(StartCluster(nodes));
    std::vector<long> longs;
    for (int i = 0; i < 2; ++i) longs.push_back(SubmitOne("long-" + std::to_string(i), 10, "-g 1"));
    cancel_later_ = SubmitOne("cancel-later", 30, "-g 1");
    const long cancel_now = SubmitOne("cancel-now", 30, "-g 1");
    ASSERT_GT(longs[0], 0);
    ASSERT_GT(cancel_now, 0);
    for (int i = 0; i < 3; ++i) Submit("short-" + std::to_string(i), 1);
    Submit("array", 3, "--array 0-3");
    *long_job = longs[0];
    ASSERT_TRUE(
        Eventually(std::chrono::seconds(30),
                   [&] { return State(longs[0]) == "RUNNING" && State(cancel_now) == "RUNNING"; }))
        << "the workload did not start\n"
        << c().log_tail();
    EXPECT_EQ(c().Herd("--timeout 30 cancel " + std::to_string(cancel_now)).exit_code, 0);
  }

  // The workload after the fault: more jobs, and a cancel.
  void FinishWorkload() {
    for (int i = 0; i < 2; ++i) Submit("after-" + std::to_string(i), 1);
    Submit("array-after", 1, "--array 0-1");
    CommandResult r = c().Herd("--timeout 30 cancel " + std::to_string(cancel_later_));
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }

  // Waits for every acknowledged job to end, then checks the history. Unless `requeues_allowed`
  // (the fault took a node away for longer than node_timeout), every job also ran exactly once:
  // nothing was requeued for a fault that was no node's.
  void CheckHistory(bool requeues_allowed) {
    const bool ended = Eventually(std::chrono::seconds(90), [&] {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, name] : acknowledged_) {
        auto it = latest_.find(id);
        if (it == latest_.end() || !Terminal(it->second.value("state", ""))) return false;
      }
      return true;
    });
    stop_ = true;
    poller_.join();
    CommandResult listing = c().Herd("--timeout 30 jobs --all --json");
    ASSERT_EQ(listing.exit_code, 0) << listing.err;
    json jobs = json::parse(listing.out, nullptr, false);
    ASSERT_TRUE(jobs.is_array()) << listing.out;
    const std::vector<Mark> marks = ReadMarks();

    std::lock_guard<std::mutex> lock(mu_);
    // Every acknowledged job exists once (and its name belongs to one submit), and ended.
    std::map<long, int> seen;
    std::map<long, json> final_state;
    for (const auto& j : jobs) {
      seen[j["id"].get<long>()]++;
      final_state[j["id"].get<long>()] = j;
    }
    for (const auto& [id, name] : acknowledged_) {
      EXPECT_EQ(seen[id], 1) << "acknowledged job " << id << " (" << name << ") is listed "
                             << seen[id] << " times";
      auto it = final_state.find(id);
      if (it != final_state.end()) {
        EXPECT_EQ(it->second.value("name", ""), name) << "job " << id;
      }
    }
    std::map<std::string, std::set<long>> by_name;
    for (const auto& j : jobs) {
      if (j["array_id"].is_null()) by_name[j.value("name", "")].insert(j["id"].get<long>());
    }
    for (const auto& [name, ids] : by_name) {
      EXPECT_EQ(ids.size(), 1u) << "one submit of " << name << " is stored as " << ids.size()
                                << " jobs";
    }
    EXPECT_TRUE(ended) << "the workload did not end within 90 s:" << Unfinished()
                       << "\n" << c().log_tail();

    // No (job, run) runs twice at the same time.
    std::map<std::tuple<long, int, std::string, long>, std::pair<double, double>> copies;
    for (const auto& m : marks) {
      auto key = std::make_tuple(m.job, m.run, m.node, m.pid);
      auto it = copies.try_emplace(key, m.time, m.time).first;
      it->second.first = std::min(it->second.first, m.time);
      it->second.second = std::max(it->second.second, m.time);
    }
    for (auto a = copies.begin(); a != copies.end(); ++a) {
      for (auto b = std::next(a); b != copies.end(); ++b) {
        if (std::get<0>(a->first) != std::get<0>(b->first) ||
            std::get<1>(a->first) != std::get<1>(b->first)) {
          continue;
        }
        const bool overlap = a->second.first <= b->second.second &&
                             b->second.first <= a->second.second;
        EXPECT_FALSE(overlap) << "job " << std::get<0>(a->first) << " run "
                              << std::get<1>(a->first) << " ran twice at once: on "
                              << std::get<2>(a->first) << " (pid " << std::get<3>(a->first)
                              << ") and on " << std::get<2>(b->first) << " (pid "
                              << std::get<3>(b->first) << ")";
      }
    }

    // Nothing runs after herd reported it ended (the first line of each run that did is shown),
    // with one exception herd cannot avoid: a run on the node the fault took away cannot be
    // reached until that node's daemon is back and registered (a job cancelled meanwhile is
    // reported ended at once), so it must end within kLeftBehindBound of the node's return.
    std::set<std::pair<long, int>> late;
    for (const auto& m : marks) {
      auto it = reported_end_.find(m.job);
      if (it == reported_end_.end() || m.time <= it->second.first) continue;
      if (m.node == away_node_ && m.time <= node_back_ + kLeftBehindBound) continue;
      if (!late.insert({m.job, m.run}).second) continue;
      ADD_FAILURE() << "job " << m.job << " run " << m.run << " wrote '" << m.what << "' on "
                    << m.node << " (pid " << m.pid << ") " << m.time - it->second.first
                    << " s after herd reported it " << it->second.second;
    }

    if (!requeues_allowed) {
      for (const auto& [id, j] : final_state) {
        EXPECT_EQ(j.value("restart_count", 0), 0)
            << "job " << id << " (" << j.value("name", "") << ") was requeued "
            << j.value("restart_count", 0) << " times by a fault that took no node away";
      }
    }

    // No job FAILED whose last run never started.
    for (const auto& [id, j] : final_state) {
      if (j.value("state", "") != "FAILED") continue;
      const int run = j.value("restart_count", 0);
      const bool started = std::any_of(marks.begin(), marks.end(), [&](const Mark& m) {
        return m.what == "start" && m.job == id && m.run == run;
      });
      EXPECT_TRUE(started) << "job " << id << " (" << j.value("name", "") << ") ended FAILED ("
                           << j.value("reason", "") << ") but its run " << run
                           << " never started";
    }
  }

  // Notes that the daemon of `node`, which the fault took away, is back now.
  void NodeBack(const std::string& node) {
    away_node_ = node;
    node_back_ = WallNow();
  }

  pid_t ControllerPid() const {
    return static_cast<pid_t>(std::atol(ReadText(c().dir() + "/ctld.pid").c_str()));
  }

  // The node a job runs on, from herd's report.
  std::string NodeOf(long id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = latest_.find(id);
    if (it == latest_.end()) return "";
    const json& nodes = it->second["nodes"];
    if (nodes.is_array() && !nodes.empty()) return nodes[0].get<std::string>();
    if (nodes.is_string()) return nodes.get<std::string>();
    return "";
  }

  std::string State(long id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = latest_.find(id);
    return it == latest_.end() ? "" : it->second.value("state", "");
  }

 private:
  // Polls herd's listing; keeps each job's latest report and when it was first seen ended.
  void Poll() {
    while (!stop_) {
      CommandResult r = c().Herd("--timeout 2 jobs --all --json");
      const double received = WallNow();
      json jobs = r.exit_code == 0 ? json::parse(r.out, nullptr, false) : json();
      if (jobs.is_array()) {
        std::lock_guard<std::mutex> lock(mu_);
        for (const auto& j : jobs) {
          const long id = j["id"].get<long>();
          latest_[id] = j;
          const std::string state = j.value("state", "");
          if (Terminal(state) && !reported_end_.count(id)) reported_end_[id] = {received, state};
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the sampling period
    }
  }

  std::vector<Mark> ReadMarks() const {
    std::vector<Mark> marks;
    std::istringstream in(ReadText(history_));
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream fields(line);
      Mark m;
      if (fields >> m.what >> m.job >> m.run >> m.node >> m.pid >> m.time) {
        marks.push_back(m);
      } else {
        ADD_FAILURE() << "a job wrote an unreadable line: " << line;
      }
    }
    return marks;
  }

  std::string Unfinished() {
    std::ostringstream out;
    for (const auto& [id, name] : acknowledged_) {
      auto it = latest_.find(id);
      const std::string state = it == latest_.end() ? "unseen" : it->second.value("state", "");
      if (!Terminal(state)) {
        out << "\n  job " << id << " (" << name << "): " << state << " "
            << (it == latest_.end() ? "" : it->second.value("reason", ""));
      }
    }
    return out.str();
  }

  std::unique_ptr<LocalCluster> cluster_;
  // The node whose daemon the fault took away, and when it was back (resumed or started again).
  std::string away_node_;
  double node_back_ = 0;
  std::string script_;
  std::string history_;
  long cancel_later_ = 0;
  std::thread poller_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::map<long, std::string> acknowledged_;                      // id -> name
  std::map<long, json> latest_;                                   // id -> latest report
  std::map<long, std::pair<double, std::string>> reported_end_;  // id -> (when, state)
};

TEST_F(FaultMatrixTest, ControllerPausedPastNodeTimeout) {
  long job = 0;
  ASSERT_NO_FATAL_FAILURE(StartWorkload(2, &job));
  const pid_t ctld = ControllerPid();
  ASSERT_EQ(kill(ctld, SIGSTOP), 0);
  std::this_thread::sleep_for(kPause);  // the fault itself: herd-ctld stays stopped this long
  ASSERT_EQ(kill(ctld, SIGCONT), 0);
  FinishWorkload();
  CheckHistory(/*requeues_allowed=*/false);
}

TEST_F(FaultMatrixTest, NodeDaemonPausedPastNodeTimeout) {
  long job = 0;
  ASSERT_NO_FATAL_FAILURE(StartWorkload(1, &job));
  const std::string node = NodeOf(job);
  ASSERT_FALSE(node.empty());
  const pid_t noded = c().NodeDaemonPid(node);
  ASSERT_GT(noded, 0);
  ASSERT_EQ(kill(noded, SIGSTOP), 0);
  std::this_thread::sleep_for(kPause);  // the fault itself: herd-noded stays stopped this long
  ASSERT_EQ(kill(noded, SIGCONT), 0);
  NodeBack(node);
  FinishWorkload();
  CheckHistory(/*requeues_allowed=*/true);
}

TEST_F(FaultMatrixTest, ControllerKilled) {
  long job = 0;
  ASSERT_NO_FATAL_FAILURE(StartWorkload(2, &job));
  ASSERT_TRUE(c().RestartController().ok()) << c().log_tail();
  FinishWorkload();
  CheckHistory(/*requeues_allowed=*/false);
}

TEST_F(FaultMatrixTest, NodeDaemonKilledAndBackAfterNodeTimeout) {
  long job = 0;
  ASSERT_NO_FATAL_FAILURE(StartWorkload(1, &job));
  const std::string node = NodeOf(job);
  ASSERT_FALSE(node.empty());
  ASSERT_TRUE(c().KillNodeDaemon(node).ok());
  std::this_thread::sleep_for(kPause);  // the fault itself: the node is away this long
  ASSERT_TRUE(c().StartNodeDaemon(node).ok()) << c().log_tail();
  NodeBack(node);
  FinishWorkload();
  CheckHistory(/*requeues_allowed=*/true);
}

TEST_F(FaultMatrixTest, NodeDaemonRestartedQuickly) {
  long job = 0;
  ASSERT_NO_FATAL_FAILURE(StartWorkload(2, &job));
  const std::string node = NodeOf(job);
  ASSERT_FALSE(node.empty());
  ASSERT_TRUE(c().KillNodeDaemon(node).ok());
  // Jobs sent to the node while its daemon is down.
  for (int i = 0; i < 4; ++i) Submit("while-down-" + std::to_string(i), 1);
  ASSERT_TRUE(c().StartNodeDaemon(node).ok()) << c().log_tail();
  NodeBack(node);
  FinishWorkload();
  // Jobs sent to the node while its daemon was down never started: they may be requeued.
  CheckHistory(/*requeues_allowed=*/true);
}

TEST_F(FaultMatrixTest, ShimKilled) {
  long job = 0;
  ASSERT_NO_FATAL_FAILURE(StartWorkload(2, &job));
  const std::string node = NodeOf(job);
  ASSERT_FALSE(node.empty());
  const std::string pid_file = c().JobDir(node, job) + "/shim.pid";
  const pid_t shim = static_cast<pid_t>(std::atol(ReadText(pid_file).c_str()));
  ASSERT_GT(shim, 0) << "no " << pid_file;
  ASSERT_EQ(kill(shim, SIGKILL), 0);
  FinishWorkload();
  CheckHistory(/*requeues_allowed=*/true);
}

}  // namespace
}  // namespace herd::testing
