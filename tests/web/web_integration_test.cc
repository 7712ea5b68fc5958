// herd-web against a real local cluster (herd-ctld, herd-noded on emulated topologies, munged):
// /metrics shows the jobs and GPUs the cluster has, promtool accepts a live scrape, a real
// Prometheus scrapes herd-web and answers a query with herd's numbers, and garbage over HTTP
// neither stops herd-web nor makes it hold more than its bounds.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/integration/cluster.h"

extern char** environ;

namespace herd::testing {
namespace {

using namespace std::chrono_literals;

// A TCP port free on loopback now.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(a.sin_port);
}

// Starts `args` with stdout and stderr appended to `log`; 0 when it cannot.
pid_t Spawn(std::vector<std::string> args, const std::string& log) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&files, 1, 2);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, argv[0], &files, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  return err == 0 ? pid : 0;
}

void Stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
}

// GET `path` on 127.0.0.1:`port`: the status (0: no answer) and body.
std::pair<int, std::string> Get(int port, const std::string& path,
                                const httplib::Params& params = {}) {
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(10, 0);
  auto res = client.Get(path.c_str(), params, httplib::Headers{});
  if (!res) return {0, ""};
  return {res->status, res->body};
}

// The sum of the samples of metric `name` whose labels include each of `labels` (k="v").
double Sum(const std::string& text, const std::string& name,
           const std::vector<std::string>& labels = {}) {
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    const std::string key = line.substr(0, space);
    if (key.substr(0, key.find('{')) != name) continue;
    bool match = true;
    for (const auto& l : labels) match = match && key.find(l) != std::string::npos;
    if (match) sum += std::stod(line.substr(space + 1));
  }
  return sum;
}

// Sends `bytes` on a fresh connection to herd-web and returns what comes back up to the end of
// the reply's header, or before herd-web closes the connection (or 8 s pass).
std::string RawExchange(int port, const std::string& bytes) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return "(cannot connect)";
  }
  timeval tv{8, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  (void)!send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[4096];
  ssize_t n;
  while (out.find("\r\n\r\n") == std::string::npos && (n = recv(fd, buf, sizeof buf, 0)) > 0) {
    out.append(buf, n);
  }
  close(fd);
  return out;
}

class WebTest : public SharedClusterTest<WebTest> {
 public:
  static LocalCluster::Options ClusterOptions() {
    port_ = FreePort();
    LocalCluster::Options o;
    // herd-web is started as root, as systemd would, and becomes nobody.
    o.extra_toml =
        "[web]\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\nuser = \"nobody\"\n";
    return o;
  }
  static void SetUpTestSuite() {
    SharedClusterTest::SetUpTestSuite();
    if (cluster_ == nullptr) return;
    web_ = Spawn({BinDir() + "/herd-web", "--config", cluster_->dir() + "/herd.toml"},
                 cluster_->dir() + "/web.out");
    PollUntil(10s, [] { return Get(port_, "/").first == 200; });
  }
  static void TearDownTestSuite() {
    Stop(web_);
    web_ = 0;
    SharedClusterTest::TearDownTestSuite();
  }

 protected:
  void SetUp() override {
    SharedClusterTest::SetUp();
    ASSERT_GT(web_, 0) << "cannot start " << BinDir() << "/herd-web";
    ASSERT_EQ(Get(port_, "/").first, 200) << ReadText(c().dir() + "/web.out");
  }
  std::string Metrics() {
    auto [status, body] = Get(port_, "/metrics");
    EXPECT_EQ(status, 200) << ReadText(c().dir() + "/web.out");
    return body;
  }

  static inline int port_ = 0;
  static inline pid_t web_ = 0;
};

TEST_F(WebTest, MetricsShowJobsGpusAndUtilization) {
  auto a = c().Submit("-g 2 -- sleep 300");
  auto b = c().Submit("-g 1 -- sleep 300");
  auto held = c().Submit("--hold -g 1 -- sleep 300");
  ASSERT_TRUE(a.ok() && b.ok() && held.ok()) << c().log_tail();
  ASSERT_TRUE(c().WaitForState(*a, "RUNNING")) << c().log_tail();
  ASSERT_TRUE(c().WaitForState(*b, "RUNNING")) << c().log_tail();
  // Every GPU of dgx01 half busy, as its (fed) metrics source reports from now on.
  {
    std::ofstream fed(c().dir() + "/nodes/dgx01/gpu-metrics");
    for (int g = 0; g < 8; ++g) fed << g << " 50 1000\n";
  }
  std::string text;
  ASSERT_TRUE(PollUntil(10s, [&] {
    text = Metrics();
    return Sum(text, "herd_node_gpus_busy", {"node=\"dgx01\""}) == 4;
  })) << text;
  EXPECT_EQ(Sum(text, "herd_ctld_up"), 1);
  EXPECT_EQ(Sum(text, "herd_jobs", {"state=\"RUNNING\""}), 2) << text;
  EXPECT_EQ(Sum(text, "herd_jobs", {"state=\"PENDING\"", "project=\"default\"", "class=\"train\""}),
            1);
  EXPECT_EQ(Sum(text, "herd_jobs_submitted_total"), 3);
  EXPECT_EQ(Sum(text, "herd_job_wait_seconds_count"), 2);
  EXPECT_EQ(Sum(text, "herd_node_gpus"), 12);  // dgx01's 8 and ws01's 4
  EXPECT_EQ(Sum(text, "herd_node_gpus_allocated"), 3);
  EXPECT_EQ(Sum(text, "herd_node_gpus_idle"), 9);
  EXPECT_EQ(Sum(text, "herd_project_gpus_allocated", {"project=\"default\""}), 3);
  // A project's jobs on dgx01 are as busy as the GPUs they hold.
  EXPECT_EQ(Sum(text, "herd_project_gpus_busy", {"node=\"dgx01\""}),
            0.5 * Sum(text, "herd_project_gpus_allocated", {"node=\"dgx01\""}));
  EXPECT_EQ(Sum(text, "herd_queue_gpus_allocated", {"queue=\"default\""}), 3);
  EXPECT_EQ(Sum(text, "herd_nodes", {"state=\"UP\""}), 2);
  EXPECT_EQ(Sum(text, "herd_node_state", {"node=\"ws01\"", "state=\"UP\""}), 1);
  EXPECT_EQ(Sum(text, "herd_evictions_total"), 0);
  EXPECT_GT(Sum(text, "herd_scheduling_cycle_duration_seconds_count"), 0);
  EXPECT_GT(Sum(text, "herd_ctld_event_loop_lag_seconds_count"), 0);
  EXPECT_GT(Sum(text, "herd_ctld_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(Sum(text, "herd_ctld_start_time_seconds"), 1.6e9);
}

TEST_F(WebTest, PromtoolAcceptsALiveScrape) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool is not installed (apt-get install prometheus)";
  }
  const std::string path = c().dir() + "/scrape.txt";
  std::ofstream(path) << Metrics();
  CommandResult r = RunShell("promtool check metrics < " + path);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.out + r.err, "");
}

TEST_F(WebTest, PrometheusScrapesHerdWebAndAnswersAQuery) {
  if (std::system("command -v prometheus >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "prometheus is not installed (apt-get install prometheus)";
  }
  const std::string dir = c().dir() + "/prometheus";
  ASSERT_EQ(RunShell("mkdir -p " + dir + "/data").exit_code, 0);
  std::ofstream(dir + "/prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
      << "scrape_configs:\n  - job_name: herd\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << port_ << "']\n";
  const int api = FreePort();
  pid_t prometheus =
      Spawn({"/bin/sh", "-c",
             "exec prometheus --config.file=" + dir + "/prometheus.yml" +
                 " --storage.tsdb.path=" + dir + "/data" +
                 " --web.listen-address=127.0.0.1:" + std::to_string(api) + " --log.level=warn"},
            dir + "/prometheus.log");
  ASSERT_GT(prometheus, 0);
  // The first scrape lands within a scrape interval of Prometheus's start; its query API answers
  // with an empty result until then.
  nlohmann::json answer;
  const bool scraped = PollUntil(25s, [&] {
    auto [status, body] = Get(api, "/api/v1/query", {{"query", "sum(herd_node_gpus)"}});
    if (status != 200) return false;
    answer = nlohmann::json::parse(body, nullptr, false);
    return answer.is_object() && answer["status"] == "success" && !answer["data"]["result"].empty();
  });
  Stop(prometheus);
  ASSERT_TRUE(scraped) << answer.dump() << "\n" << ReadText(dir + "/prometheus.log");
  EXPECT_EQ(answer["data"]["result"][0]["value"][1], "12") << answer.dump();
}

TEST_F(WebTest, MalformedRequestsAreRefusedAndHerdWebStaysUp) {
  const std::string big(20000, 'a');
  struct Case {
    const char* what;
    std::string bytes;
    const char* status;  // the start of the reply herd-web must give
  };
  const std::vector<Case> cases = {
      {"garbage", "GARBAGE\r\n\r\n", "HTTP/1.1 400"},
      {"binary", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\0\0\0\r\n\r\n", 18),
       "HTTP/1.1 400"},
      {"huge request line", "GET /" + big + " HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 414"},
      {"huge header", "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + big + "\r\n\r\n",
       "HTTP/1.1 400"},
      {"huge body", "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n",
       "HTTP/1.1 413"},
      {"negative length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", "HTTP/1.1 4"},
  };
  for (const Case& c : cases) {
    const std::string reply = RawExchange(port_, c.bytes);
    EXPECT_EQ(reply.rfind(c.status, 0), 0u) << c.what << ": " << reply;
    EXPECT_TRUE(Alive(web_)) << c.what;
    EXPECT_EQ(Get(port_, "/metrics").first, 200) << c.what;
  }
  EXPECT_EQ(Get(port_, "/no-such-page").first, 404);
}

TEST_F(WebTest, RunsAsItsUserNotRoot) {
  const std::string status = ReadText("/proc/" + std::to_string(web_) + "/status");
  const size_t uid = status.find("\nUid:");
  ASSERT_NE(uid, std::string::npos);
  EXPECT_EQ(status.substr(uid, 30).find("\t0\t"), std::string::npos) << status.substr(uid, 30);
  EXPECT_NE(status.substr(uid, 30).find("65534"), std::string::npos) << status.substr(uid, 30);
}

TEST_F(WebTest, RefusesRootWithoutAUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to start herd-web as root";
  const std::string toml = c().dir() + "/web-root.toml";
  std::ofstream(toml) << "[web]\nlisten = \"127.0.0.1:" << FreePort() << "\"\n";
  CommandResult r = RunShell("timeout 10 " + BinDir() + "/herd-web --config " + toml);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("does not run as root"), std::string::npos) << r.err;
}

// herd-ctld takes its own user's credential as a node's: herd-web must not hold it.
TEST_F(WebTest, RefusesToRunAsHerdCtldsUser) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to start herd-web as root";
  const std::string toml = c().dir() + "/web-ctld-user.toml";
  std::ofstream(toml) << "[controller]\nuser = \"daemon\"\n[web]\nuser = \"daemon\"\nlisten = "
                         "\"127.0.0.1:"
                      << FreePort() << "\"\n";
  CommandResult r = RunShell("timeout 10 " + BinDir() + "/herd-web --config " + toml);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("herd-ctld's user"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace herd::testing
