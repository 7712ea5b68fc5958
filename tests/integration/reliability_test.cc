// Reliability of a real cluster: the controller killed in the middle of a stream of submits, a
// node that freezes and comes back, a controller paused past node_timeout, requests from the
// wrong user or from nobody at all, and one user's huge submissions.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/auth/auth.h"
#include "common/net/net.h"
#include "common/proto/codec.h"
#include "common/proto/messages.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/support/eventually.h"
#include "zmq.hpp"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kNobody = 65534;
constexpr uint32_t kOtherUser = 65533;  // no passwd entry needed: MUNGE vouches for the uid

std::unique_ptr<LocalCluster> StartCluster(const LocalCluster::Options& options) {
  auto c = LocalCluster::Start(options);
  EXPECT_TRUE(c.ok()) << "the local cluster did not start: " << c.status().message();
  return c.ok() ? std::move(*c) : nullptr;
}

std::string Topology(const std::string& name) {
  return name + "=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml";
}

// The node of the job's first worker, "" when it has none.
std::string JobNode(const nlohmann::json& job) {
  const auto& p = job["placement"];
  return p.is_array() && !p.empty() ? p[0].value("node", "") : "";
}

TEST(ReliabilityTest, CrashDuringSubmitStreamLosesNothing) {
  LocalCluster::Options options;
  options.nodes = {"none"};  // jobs stay pending: the test is about the controller's state only
  auto cluster = StartCluster(options);
  ASSERT_NE(cluster, nullptr);
  const LocalCluster& c = *cluster;
  const std::string endpoint = c.ControllerEndpoint();
  ASSERT_FALSE(endpoint.empty());
  const std::string munge_socket = c.dir() + "/munge/munge.sock";

  constexpr int kThreads = 4, kTotal = 5000, kCrashAfter = 1500;
  std::atomic<int> claimed{0}, acknowledged{0}, unacknowledged{0};
  std::mutex mu;
  std::vector<long> ids;             // every acknowledged id, duplicates kept
  std::vector<std::string> errors;   // failures other than "no answer"
  const auto deadline = Clock::now() + std::chrono::seconds(50);

  auto client_loop = [&] {
    auto auth = auth::MakeAuthenticator("munge", munge_socket);
    if (!auth.ok()) {
      std::lock_guard lock(mu);
      errors.push_back(auth.status().message());
      return;
    }
    net::Client client(endpoint, std::move(*auth), 1000);
    proto::SubmitRequest req;
    req.spec.argv = {"true"};
    req.spec.cpus = 1;
    req.spec.memory_mib = 64;
    req.spec.gpu_milli = 0;
    while (claimed.fetch_add(1) < kTotal) {
      // Submit until acknowledged; each failed attempt may or may not have created a job.
      for (;;) {
        if (Clock::now() > deadline) {
          std::lock_guard lock(mu);
          errors.push_back("out of time");
          return;
        }
        auto reply = client.Call<proto::SubmitRequest, proto::SubmitReply>(req);
        if (reply.ok()) {
          std::lock_guard lock(mu);
          ids.push_back(reply->id);
          acknowledged.fetch_add(1);
          break;
        }
        unacknowledged.fetch_add(1);
        if (reply.status().code() != Code::kUnavailable) {
          std::lock_guard lock(mu);
          errors.push_back(reply.status().message());
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // back-off while it is down
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(client_loop);

  const bool reached = Eventually(std::chrono::seconds(40), [&] {
    return acknowledged.load() >= kCrashAfter || !errors.empty();
  });
  Status restarted = Unavailable("not restarted");
  if (reached) restarted = c.RestartController();
  for (auto& t : threads) t.join();
  ASSERT_TRUE(reached) << "only " << acknowledged.load() << " submits acknowledged"
                       << c.log_tail();
  ASSERT_TRUE(restarted.ok()) << restarted.message() << c.log_tail();
  ASSERT_TRUE(errors.empty()) << errors.front() << c.log_tail();
  ASSERT_EQ(acknowledged.load(), kTotal);

  CommandResult jobs = c.Herd("jobs --all --json");
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
  auto list = nlohmann::json::parse(jobs.out, nullptr, false);
  ASSERT_TRUE(list.is_array()) << jobs.out.substr(0, 200);
  std::set<long> stored;
  for (const auto& j : list) stored.insert(j.value("id", 0L));
  EXPECT_EQ(stored.size(), list.size()) << "a job id listed twice";

  const std::set<long> acked(ids.begin(), ids.end());
  EXPECT_EQ(acked.size(), ids.size()) << "an id was acknowledged twice";
  int lost = 0;
  for (long id : acked) lost += !stored.count(id);
  EXPECT_EQ(lost, 0) << "acknowledged jobs lost in the crash";
  EXPECT_LE(stored.size(), static_cast<size_t>(kTotal + unacknowledged.load()))
      << "more jobs than submit attempts: some were duplicated";
  RecordProperty("unacknowledged_attempts", unacknowledged.load());
  RecordProperty("unacknowledged_but_stored", static_cast<int>(stored.size() - acked.size()));
}

TEST(ReliabilityTest, FrozenNodeIsDeclaredDownAndItsJobsRunElsewhere) {
  LocalCluster::Options options;
  options.nodes = {Topology("ws01"), Topology("ws02")};
  options.extra_toml = "[scheduler]\nnode_timeout = \"3s\"\n";
  auto cluster = StartCluster(options);
  ASSERT_NE(cluster, nullptr);
  const LocalCluster& c = *cluster;

  auto id = c.Submit("-- sh -c 'echo run on $HERD_NODE; sleep 300'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(c.WaitForState(*id, "RUNNING")) << c.log_tail();
  auto job = c.Show(*id);
  ASSERT_TRUE(job.ok());
  const std::string frozen = JobNode(*job);
  ASSERT_TRUE(frozen == "ws01" || frozen == "ws02") << job->dump();
  const std::string other = frozen == "ws01" ? "ws02" : "ws01";
  const std::string old_pid_file = c.JobDir(frozen, *id) + "/pid";
  ASSERT_TRUE(Eventually(std::chrono::seconds(10),
                         [&] { return std::atol(ReadText(old_pid_file).c_str()) > 0; }));
  const pid_t old_job_pid = static_cast<pid_t>(std::atol(ReadText(old_pid_file).c_str()));

  const pid_t noded = c.NodeDaemonPid(frozen);
  ASSERT_GT(noded, 0);
  ASSERT_EQ(kill(noded, SIGSTOP), 0);
  struct Thaw {  // whatever fails below, the node daemon must not stay stopped
    pid_t pid;
    ~Thaw() { kill(pid, SIGCONT); }
  } thaw{noded};

  EXPECT_TRUE(Eventually(std::chrono::seconds(20), [&] { return NodeState(c, frozen) == "DOWN"; }))
      << c.Herd("nodes").out << c.log_tail();
  nlohmann::json moved;
  ASSERT_TRUE(Eventually(std::chrono::seconds(30),
                         [&] {
                           auto j = c.Show(*id);
                           if (!j.ok()) return false;
                           moved = *j;
                           return moved.value("state", "") == "RUNNING" && JobNode(moved) == other;
                         }))
      << moved.dump() << c.log_tail();
  EXPECT_EQ(moved.value("restart_count", -1), 1);
  EXPECT_TRUE(Alive(old_job_pid)) << "the frozen node's copy should still run until it is back";

  ASSERT_EQ(kill(noded, SIGCONT), 0);
  EXPECT_TRUE(Eventually(std::chrono::seconds(20), [&] { return NodeState(c, frozen) == "UP"; }))
      << c.Herd("nodes").out << c.log_tail();
  // The controller tells the returning node to kill the copy it no longer owns.
  EXPECT_TRUE(Eventually(std::chrono::seconds(20), [&] { return !Alive(old_job_pid); }))
      << "the old copy of job " << *id << " still runs on " << frozen << c.log_tail();

  auto after = c.Show(*id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->value("state", ""), "RUNNING") << after->dump();
  EXPECT_EQ(JobNode(*after), other);
  EXPECT_EQ(after->value("restart_count", -1), 1) << "the job was run a third time";
  EXPECT_THAT(c.Herd("logs " + std::to_string(*id)).out, HasSubstr("run on " + other));
}

TEST(ReliabilityTest, UserCannotTouchAnotherUsersJob) {
  if (geteuid() != 0) GTEST_SKIP() << "switching users needs root";
  if (RunShell("command -v setpriv").exit_code != 0) GTEST_SKIP() << "setpriv is not installed";
  LocalCluster::Options options;
  options.nodes = {Topology("ws01")};
  auto cluster = StartCluster(options);
  ASSERT_NE(cluster, nullptr);
  const LocalCluster& c = *cluster;

  CommandResult r = c.HerdAs(kNobody, kNobody, "submit -q -- sleep 300");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const long id = std::stol(r.out);
  const std::string ids = std::to_string(id);
  ASSERT_TRUE(c.WaitForState(id, "RUNNING")) << c.log_tail();

  for (const char* verb : {"cancel", "suspend", "resume", "logs"}) {
    CommandResult denied = c.HerdAs(kOtherUser, kOtherUser, std::string(verb) + " " + ids);
    EXPECT_EQ(denied.exit_code, 2) << verb << ": " << denied.out << denied.err;
    EXPECT_THAT(denied.err, HasSubstr("permission denied")) << verb;
  }
  auto job = c.Show(id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->value("state", ""), "RUNNING");

  // root is an admin: it may act on anyone's job.
  CommandResult s = c.Herd("suspend " + ids);
  EXPECT_EQ(s.exit_code, 0) << s.err;
  EXPECT_TRUE(c.WaitForState(id, "SUSPENDED")) << c.log_tail();
  CommandResult re = c.Herd("resume " + ids);
  EXPECT_EQ(re.exit_code, 0) << re.err;
  EXPECT_TRUE(c.WaitForState(id, "RUNNING")) << c.log_tail();
  CommandResult cancel = c.Herd("cancel " + ids);
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_EQ(c.WaitForEnd(id), "CANCELLED") << c.log_tail();
}

// The permission bits of `path`, or -1 when it cannot be stat'ed; its owner in *uid.
int Mode(const std::string& path, uid_t* uid = nullptr) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return -1;
  if (uid != nullptr) *uid = st.st_uid;
  return static_cast<int>(st.st_mode & 07777);
}

TEST(ReliabilityTest, OthersSeeAJobsPublicFactsButNeverItsSecrets) {
  if (geteuid() != 0) GTEST_SKIP() << "switching users needs root";
  if (RunShell("command -v setpriv").exit_code != 0) GTEST_SKIP() << "setpriv is not installed";
  LocalCluster::Options options;
  options.nodes = {Topology("ws01")};
  options.extra_toml = "[controller]\nprivate_commands = true\n";
  auto cluster = StartCluster(options);
  ASSERT_NE(cluster, nullptr);
  const LocalCluster& c = *cluster;

  CommandResult r = c.HerdAs(kNobody, kNobody,
                             "submit -q -n public-name -e SECRET_TOKEN=hunter2 -- sh -c "
                             "'echo output-of-nobody; sleep 300' secret-argument");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const long id = std::stol(r.out);
  const std::string ids = std::to_string(id);
  ASSERT_TRUE(c.WaitForState(id, "RUNNING")) << c.log_tail();
  const std::string log = c.JobDir("ws01", id) + "/log";
  ASSERT_TRUE(Eventually(std::chrono::seconds(10), [&] {
    return ReadText(log).find("output-of-nobody") != std::string::npos;
  })) << c.log_tail();

  // Another user sees the public facts, in every form, and nothing private.
  const std::vector<std::string> views = {"show " + ids + " --json", "show " + ids,
                                          "jobs --all --json",       "jobs --all",
                                          "why " + ids,              "jobs --all -u nobody --json"};
  for (const std::string& args : views) {
    CommandResult other = c.HerdAs(kOtherUser, kOtherUser, args);
    EXPECT_EQ(other.exit_code, 0) << args << ": " << other.err;
    for (const char* secret : {"hunter2", "SECRET_TOKEN", "secret-argument", "output-of"}) {
      EXPECT_THAT(other.out, Not(HasSubstr(secret))) << args;
    }
  }
  auto seen = nlohmann::json::parse(c.HerdAs(kOtherUser, kOtherUser, "show " + ids + " --json").out,
                                    nullptr, false);
  ASSERT_TRUE(seen.is_object());
  EXPECT_EQ(seen.value("name", ""), "public-name");
  EXPECT_EQ(seen.value("user", ""), "nobody");
  EXPECT_EQ(seen.value("state", ""), "RUNNING");
  EXPECT_EQ(seen["nodes"], nlohmann::json({"ws01"}));
  CommandResult logs = c.HerdAs(kOtherUser, kOtherUser, "logs " + ids);
  EXPECT_EQ(logs.exit_code, 2) << logs.out;
  EXPECT_THAT(logs.out, Not(HasSubstr("output-of")));

  // The owner and root (an admin) see all of it.
  CommandResult own = c.HerdAs(kNobody, kNobody, "show " + ids + " --json");
  EXPECT_THAT(own.out, HasSubstr("hunter2"));
  EXPECT_THAT(own.out, HasSubstr("secret-argument"));
  EXPECT_THAT(c.Herd("show " + ids + " --json").out, HasSubstr("hunter2"));
  EXPECT_THAT(c.Herd("jobs --all --json").out, HasSubstr("secret-argument"));

  // A name herd made up from the command, and the details of a reason, would tell the command.
  CommandResult unnamed = c.HerdAs(kNobody, kNobody, "submit -q -- /nonexistent/secret-tool");
  ASSERT_EQ(unnamed.exit_code, 0) << unnamed.out << unnamed.err;
  const std::string id2 = std::to_string(std::stol(unnamed.out));
  EXPECT_NE(c.WaitForEnd(std::stol(id2)), "") << c.log_tail();
  const std::string reason = c.Show(std::stol(id2)).value().value("reason", "");
  for (const std::string& args : std::vector<std::string>{"show " + id2 + " --json", "show " + id2, "jobs --all",
                                  "jobs --all --json", "why " + id2}) {
    CommandResult other = c.HerdAs(kOtherUser, kOtherUser, args);
    EXPECT_EQ(other.exit_code, 0) << args << ": " << other.err;
    EXPECT_THAT(other.out, Not(HasSubstr("secret-tool"))) << args << " (reason: " << reason << ")";
  }
  auto seen2 = nlohmann::json::parse(
      c.HerdAs(kOtherUser, kOtherUser, "show " + id2 + " --json").out, nullptr, false);
  ASSERT_TRUE(seen2.is_object());
  EXPECT_EQ(seen2.value("name", ""), "job");
  auto own2 = nlohmann::json::parse(c.HerdAs(kNobody, kNobody, "show " + id2 + " --json").out,
                                    nullptr, false);
  ASSERT_TRUE(own2.is_object());
  EXPECT_EQ(own2.value("name", ""), "secret-tool");
  EXPECT_EQ(own2.value("reason", ""), reason);

  // On disk: herd-ctld's state and the node's job directory are closed to others; the log
  // belongs to the job's user alone.
  EXPECT_EQ(Mode(c.dir() + "/ctld"), 0700);
  EXPECT_EQ(Mode(c.dir() + "/ctld/herd.db"), 0600);
  for (const char* extra : {"/ctld/herd.db-wal", "/ctld/herd.db-shm"}) {
    const int mode = Mode(c.dir() + extra);
    EXPECT_TRUE(mode == -1 || mode == 0600) << extra << " has mode " << std::oct << mode;
  }
  EXPECT_EQ(Mode(c.JobDir("ws01", id)), 0700);
  EXPECT_EQ(Mode(c.JobDir("ws01", id) + "/spec.json"), 0600);
  uid_t owner = 0;
  EXPECT_EQ(Mode(log, &owner), 0600);
  EXPECT_EQ(owner, kNobody);
  CommandResult peek = RunShell("setpriv --reuid=" + std::to_string(kOtherUser) + " --regid=" +
                                std::to_string(kOtherUser) + " --clear-groups cat " + log + " " +
                                c.JobDir("ws01", id) + "/spec.json 2>&1");
  EXPECT_NE(peek.exit_code, 0);
  EXPECT_THAT(peek.out, Not(HasSubstr("hunter2")));
  EXPECT_THAT(peek.out, Not(HasSubstr("output-of")));
  EXPECT_EQ(c.Herd("cancel " + ids).exit_code, 0);
}

// The controller's own pause is no node's fault: SIGSTOP of herd-ctld past node_timeout, then
// SIGCONT, leaves every node UP and every running job running to completion.
// herd-ctld keeps its files to itself, but a Unix listen socket is for every user: MUNGE, not the
// socket's mode, decides who may do what.
TEST(ReliabilityTest, UnixSocketServesEveryUserWhileTheControllersLogStaysPrivate) {
  if (geteuid() != 0) GTEST_SKIP() << "switching users needs root";
  if (RunShell("command -v setpriv").exit_code != 0) GTEST_SKIP() << "setpriv is not installed";
  char tmpl[] = "/tmp/herd-ipc-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string sock_dir = tmpl;
  chmod(sock_dir.c_str(), 0755);
  LocalCluster::Options options;
  options.nodes = {"none"};
  options.extra_toml = "[controller]\nlisten = [\"ipc://" + sock_dir + "/ctld.sock\"]\n";
  auto cluster = StartCluster(options);
  ASSERT_NE(cluster, nullptr);
  const LocalCluster& c = *cluster;

  EXPECT_EQ(Mode(sock_dir + "/ctld.sock"), 0666);
  CommandResult jobs = c.HerdAs(kNobody, kNobody, "jobs");
  EXPECT_EQ(jobs.exit_code, 0) << jobs.out << jobs.err;
  auto id = c.Submit("-- true");
  EXPECT_TRUE(id.ok()) << id.status().message();

  // A log file left open to others by an older herd-ctld is closed at the next start.
  EXPECT_EQ(Mode(c.dir() + "/ctld.log"), 0600);
  chmod((c.dir() + "/ctld.log").c_str(), 0644);
  ASSERT_TRUE(c.RestartController().ok()) << c.log_tail();
  EXPECT_EQ(Mode(c.dir() + "/ctld.log"), 0600);
  EXPECT_EQ(Mode(c.dir() + "/ctld"), 0700);
  EXPECT_EQ(c.HerdAs(kNobody, kNobody, "jobs").exit_code, 0);
  cluster.reset();
  RunShell("rm -rf " + sock_dir);
}

TEST(ReliabilityTest, PausedControllerBlamesNoNodeAndKillsNoJob) {
  LocalCluster::Options options;
  options.nodes = {Topology("ws01")};
  options.extra_toml = "[scheduler]\nnode_timeout = \"3s\"\n";
  auto cluster = StartCluster(options);
  ASSERT_NE(cluster, nullptr);
  const LocalCluster& c = *cluster;

  auto id = c.Submit("-- sleep 12");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(c.WaitForState(*id, "RUNNING")) << c.log_tail();
  const pid_t ctld = static_cast<pid_t>(std::atol(ReadText(c.dir() + "/ctld.pid").c_str()));
  ASSERT_GT(ctld, 0);
  ASSERT_EQ(kill(ctld, SIGSTOP), 0);
  {
    struct Thaw {  // whatever fails below, herd-ctld must not stay stopped
      pid_t pid;
      ~Thaw() { kill(pid, SIGCONT); }
    } thaw{ctld};
    // The fault itself: stopped for longer than node_timeout.
    std::this_thread::sleep_for(std::chrono::seconds(5));
  }
  // Until the job ends by itself, the node stays UP and the job RUNNING. The interval is the
  // test (an absence over time), so this loop waits it out and stops early only on a failure.
  std::string node_state, job_state;
  const auto deadline = Clock::now() + std::chrono::seconds(4);
  while (Clock::now() < deadline) {
    node_state = NodeState(c, "ws01");
    auto job = c.Show(*id);
    job_state = job.ok() ? job->value("state", "") : "";
    if (node_state != "UP" || job_state != "RUNNING") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(node_state, "UP") << c.log_tail();
  EXPECT_EQ(job_state, "RUNNING") << c.log_tail();
  EXPECT_EQ(c.WaitForEnd(*id), "COMPLETED") << c.log_tail();
  auto job = c.Show(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->value("restart_count", -1), 0) << job->dump();
}

// Small limits, so that the test's submissions stay small.
constexpr char kSmallSpecs[] = R"(
[controller]
max_arg_bytes = 1000
max_command_bytes = 3000
max_env_entries = 3
max_env_bytes = 2000
max_spec_bytes = 4000
max_submit_bytes = 20000
)";

// "1,2,...,n": the values of a sweep parameter.
std::string Values(int n) {
  std::string out;
  for (int i = 1; i <= n; ++i) out += (i > 1 ? "," : "") + std::to_string(i);
  return out;
}

// `herd submit ARGS` is refused (exit 2) with an error naming `key` and `value` (if not "").
// --export=NONE: the limits are those of kSmallSpecs, far below the test's own environment.
void ExpectRefused(const LocalCluster& c, const std::string& args, const std::string& key,
                   const std::string& value) {
  CommandResult r = c.Herd("submit -q --export=NONE " + args);
  EXPECT_EQ(r.exit_code, 2) << key << ": " << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr(key)) << key;
  EXPECT_THAT(r.err, HasSubstr(value.empty() ? " over the limit of "
                                              : " is " + value + ", over the limit of "))
      << key << ": " << r.err;
}

TEST(SubmitLimitsTest, OversizedFieldsAreRefusedNamingTheLimitAndTheValue) {
  auto started = LocalCluster::Start({kSmallSpecs, {"none"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  const std::string x900(900, 'x');
  ExpectRefused(c, "-n " + std::string(300, 'n') + " -- true", "max_name_bytes", "300");
  ExpectRefused(c, "-- echo " + std::string(1500, 'a'), "max_arg_bytes", "1500");
  ExpectRefused(c, "-- echo " + x900 + " " + x900 + " " + x900 + " " + x900, "max_command_bytes",
                "3604");
  ExpectRefused(c, "-e A=1 -e B=2 -e C=3 -e D=4 -- true", "max_env_entries", "4");
  ExpectRefused(c, "-e A=" + std::string(2500, 'v') + " -- true", "max_env_bytes", "2501");
  ExpectRefused(c, "-e A=" + std::string(1500, 'v') + " -- echo " + x900 + " " + x900 + " " + x900,
                "max_spec_bytes", "");
  ExpectRefused(c, "--array 0-99 -- echo " + x900, "max_submit_bytes", "");
  ExpectRefused(c, "--sweep p=" + Values(30) + " -- echo {p} " + x900, "max_submit_bytes", "");
  // Empty entries are not free: 200 empty arguments cost more than max_spec_bytes.
  std::string empties;
  for (int i = 0; i < 200; ++i) empties += " ''";
  ExpectRefused(c, "-- true" + empties, "max_spec_bytes", "");
  CommandResult jobs = c.Herd("jobs --all");
  EXPECT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_EQ(jobs.out.find('\n'), jobs.out.size() - 1) << "nothing was submitted:\n" << jobs.out;
  // Within every limit, it is taken.
  EXPECT_TRUE(c.Submit("--export=NONE -n ok -e A=1 --array 0-9 -- echo " + x900).ok());
  // A batch script counts toward max_spec_bytes, and one over it is named.
  const std::string script = c.dir() + "/big-script.sh";
  std::ofstream(script) << "#!/bin/sh\n# " << std::string(5000, 's') << "\ntrue\n";
  ExpectRefused(c, script, "the batch script (bytes)", "5018");
}

TEST(SubmitLimitsTest, PendingJobsOfOneUserAreCappedAndAnArrayOf10000Fits) {
  auto started = LocalCluster::Start({"", {"none"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  auto array = c.Submit("--array 0-9999 -- true");
  ASSERT_TRUE(array.ok()) << array.status().message();
  CommandResult more = c.Herd("submit -q -- true");
  EXPECT_EQ(more.exit_code, 2) << more.out;
  EXPECT_THAT(more.err, HasSubstr("has 10000 pending jobs"));
  EXPECT_THAT(more.err, HasSubstr("max_pending_per_user"));
  ASSERT_EQ(c.Herd("cancel " + std::to_string(*array)).exit_code, 0);
  auto sweep = c.Submit("--sweep 'a=" + Values(100) + " b=" + Values(100) + "' -- echo {a} {b}");
  EXPECT_TRUE(sweep.ok()) << sweep.status().message();
}

// The most memory herd-ctld has used (VmHWM, KiB), or -1.
long ControllerPeakKib(const LocalCluster& c) {
  const std::string pid = ReadText(c.dir() + "/ctld.pid");
  std::ifstream in("/proc/" + pid.substr(0, pid.find('\n')) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmHWM:")) return std::stol(line.substr(6));
  }
  return -1;
}

// A sweep's short {a} may stand for a long value: its commands' size is checked before they are
// built. 320,000 {a} of 1000 bytes each would be 320 MB per point.
TEST(SubmitLimitsTest, SweepThatWouldExpandPastTheLimitIsRefusedBeforeItIsBuilt) {
  auto started = LocalCluster::Start({"", {"none"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  const long before = ControllerPeakKib(c);
  ASSERT_GT(before, 0);
  const std::string arg = "\"$(yes '{a}' | head -n 40000 | tr -d '\\n')\"";
  std::string args;
  for (int i = 0; i < 8; ++i) args += " " + arg;
  const auto start = Clock::now();
  CommandResult r =
      c.Herd("submit -q --sweep \"a=$(head -c 1000 /dev/zero | tr '\\0' v),w\" -- echo" + args);
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("sweep point 0: the command with its arguments (bytes) is "
                               "320000004, over the limit of 1048576"));
  EXPECT_THAT(r.err, HasSubstr("max_command_bytes"));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  EXPECT_LT(ControllerPeakKib(c) - before, 100 << 10) << "herd-ctld built the commands";
}

// Jobs of 100 KB each: a listing is paged by bytes, so no reply is over the message limit.
TEST(SubmitLimitsTest, ListingOfHugeJobsIsPagedByBytes) {
  auto started = LocalCluster::Start({"", {"none"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  const std::string big(100'000, 'b');
  auto first = c.Submit("-n big --array 0-199 -- echo " + big);
  ASSERT_TRUE(first.ok()) << first.status().message();
  CommandResult json = c.Herd("jobs --all --json");
  ASSERT_EQ(json.exit_code, 0) << json.err << c.log_tail();
  auto list = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(list.is_array());
  EXPECT_EQ(list.size(), 200u);
  EXPECT_EQ(list.back().value("command", nlohmann::json::array()).dump().size(), big.size() + 11);
  CommandResult table = c.Herd("jobs --all --expand");
  EXPECT_EQ(table.exit_code, 0) << table.err;
}

// The first message on `socket` within 5 s, decoded; nullopt when none came.
std::optional<proto::Envelope> ReceiveEnvelope(zmq::socket_t& socket) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::milliseconds(5000)) <= 0) return std::nullopt;
  zmq::message_t msg;
  if (!socket.recv(msg, zmq::recv_flags::none)) return std::nullopt;
  auto e = proto::DecodeEnvelope(msg.to_string_view());
  if (!e.ok()) return std::nullopt;
  return *e;
}

TEST(ReliabilityTest, UnauthenticatedRequestIsRefused) {
  LocalCluster::Options options;
  options.nodes = {"none"};
  auto cluster = StartCluster(options);
  ASSERT_NE(cluster, nullptr);
  const LocalCluster& c = *cluster;
  ASSERT_TRUE(c.Submit("-- true").ok());

  zmq::context_t ctx;
  zmq::socket_t dealer(ctx, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::linger, 0);
  dealer.connect(c.ControllerEndpoint());

  proto::SubmitRequest submit;
  submit.spec.argv = {"true"};
  const std::vector<proto::Envelope> forged = {
      proto::MakeEnvelope(proto::JobsRequest{}, 1, ""),
      proto::MakeEnvelope(proto::JobsRequest{}, 2, "MUNGE:forged-credential:"),
      proto::MakeEnvelope(submit, 3, ""),
      proto::MakeEnvelope(submit, 4, "MUNGE:" + std::string(200, 'A') + ":"),
  };
  for (const auto& e : forged) {
    dealer.send(zmq::buffer(proto::EncodeEnvelope(e)), zmq::send_flags::none);
    auto reply = ReceiveEnvelope(dealer);
    ASSERT_TRUE(reply.has_value()) << "no reply to request " << e.id << c.log_tail();
    EXPECT_EQ(reply->type, "error") << "request " << e.id;
    auto error = proto::BodyOf<proto::ErrorReply>(*reply);
    ASSERT_TRUE(error.ok());
    EXPECT_THAT(error->message, HasSubstr("authentication")) << "request " << e.id;
  }

  // Random bytes that are no envelope at all end the connection unanswered (no herd client sends
  // them, and an answer to each would multiply what a peer sends).
  zmq::socket_t monitor(ctx, zmq::socket_type::pair);
  ASSERT_EQ(zmq_socket_monitor(dealer.handle(), "inproc://unauthenticated-monitor",
                               ZMQ_EVENT_DISCONNECTED),
            0);
  monitor.connect("inproc://unauthenticated-monitor");
  const std::string garbage = "\x93\xff\x00\x01not msgpack\xc1\xc1";
  dealer.send(zmq::buffer(garbage), zmq::send_flags::none);
  zmq::pollitem_t disconnected{monitor.handle(), 0, ZMQ_POLLIN, 0};
  EXPECT_EQ(zmq::poll(&disconnected, 1, std::chrono::milliseconds(5000)), 1)
      << "the peer that sent a malformed frame is still connected" << c.log_tail();
  zmq::pollitem_t answered{dealer.handle(), 0, ZMQ_POLLIN, 0};
  EXPECT_EQ(zmq::poll(&answered, 1, std::chrono::milliseconds(0)), 0)
      << "a malformed frame was answered";

  // Nothing was created, and the controller still serves.
  CommandResult jobs = c.Herd("jobs --all --json");
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err << c.log_tail();
  auto list = nlohmann::json::parse(jobs.out, nullptr, false);
  ASSERT_TRUE(list.is_array()) << jobs.out;
  EXPECT_EQ(list.size(), 1u) << jobs.out;
}

}  // namespace
}  // namespace herd::testing
