// herd-web against a real local cluster (herd-ctld, herd-noded on emulated topologies, munged):
// /metrics shows the jobs and GPUs the cluster has, promtool accepts a live scrape, a real
// Prometheus scrapes herd-web and answers a query with herd's numbers, and garbage over HTTP
// neither stops herd-web nor makes it hold more than its bounds. The REST API (WebApiTest) acts
// as the user of the token `herd web` printed, and as nobody else.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/integration/cluster.h"
#include "tests/support/eventually.h"
#include "tests/web/chromium.h"

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

// herd-web with cluster directory `dir`'s herd.toml, answering on `port` (0 when it cannot start).
pid_t StartHerdWeb(const std::string& dir, int port) {
  const pid_t web =
      Spawn({BinDir() + "/herd-web", "--config", dir + "/herd.toml"}, dir + "/web.out");
  Eventually(10s, [port] { return Get(port, "/").first == 200; });
  return web;
}

constexpr uint32_t kNobody = 65534;

// A suite of tests against herd-web beside a cluster shared by the suite. `Suite` gives the [web]
// table's settings after listen (and any other TOML) in WebToml(), and in Skip() why the suite
// cannot run here ("" when it can): then no cluster is started and each test is skipped.
template <typename Suite>
class HerdWebTest : public SharedClusterTest<Suite> {
  using Base = SharedClusterTest<Suite>;

 public:
  static std::string Skip() { return ""; }
  static LocalCluster::Options ClusterOptions() {
    port_ = FreePort();
    LocalCluster::Options o;
    o.extra_toml =
        "[web]\nlisten = \"127.0.0.1:" + std::to_string(port_) + "\"\n" + Suite::WebToml();
    return o;
  }
  static void SetUpTestSuite() {
    if (!Suite::Skip().empty()) return;  // SetUp skips
    Base::SetUpTestSuite();
    if (Base::cluster_ == nullptr) return;
    web_ = StartHerdWeb(Base::cluster_->dir(), port_);
  }
  static void TearDownTestSuite() {
    Stop(web_);
    web_ = 0;
    Base::TearDownTestSuite();
  }

 protected:
  void SetUp() override {
    if (const std::string why = Suite::Skip(); !why.empty()) GTEST_SKIP() << why;
    Base::SetUp();
    ASSERT_GT(web_, 0) << "cannot start " << BinDir() << "/herd-web";
    ASSERT_EQ(Get(port_, "/").first, 200) << ReadText(Base::c().dir() + "/web.out");
  }

  static inline int port_ = 0;
  static inline pid_t web_ = 0;
};

class WebTest : public HerdWebTest<WebTest> {
 public:
  // herd-web is started as root, as systemd would, and becomes nobody.
  static std::string WebToml() { return "user = \"nobody\"\n"; }

 protected:
  std::string Metrics() {
    auto [status, body] = Get(port_, "/metrics");
    EXPECT_EQ(status, 200) << ReadText(c().dir() + "/web.out");
    return body;
  }
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
  ASSERT_TRUE(Eventually(10s, [&] {
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
  const bool scraped = Eventually(25s, [&] {
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
      {"huge request line", "GET /" + big + " HTTP/1.1\r\nHost: localhost\r\n\r\n", "HTTP/1.1 414"},
      {"huge header", "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Big: " + big + "\r\n\r\n",
       "HTTP/1.1 400"},
      {"huge body",
       "POST /metrics HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000000\r\n\r\n",
       "HTTP/1.1 413"},
      {"negative length", "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: -5\r\n\r\n",
       "HTTP/1.1 4"},
  };
  for (const Case& c : cases) {
    const std::string reply = RawExchange(port_, c.bytes);
    EXPECT_EQ(reply.rfind(c.status, 0), 0u) << c.what << ": " << reply;
    EXPECT_TRUE(Alive(web_)) << c.what;
    EXPECT_EQ(Get(port_, "/metrics").first, 200) << c.what;
  }
  EXPECT_EQ(Get(port_, "/no-such-page").first, 404);
}

// DNS rebinding: another site's name resolving to herd-web's address gets 421 and no metrics,
// pages or API; herd-web's own address is answered.
TEST_F(WebTest, ARequestForAnotherHostNameIsRefused) {
  for (const char* path : {"/metrics", "/", "/api/v1/openapi.json", "/login?token=x"}) {
    const std::string reply =
        RawExchange(port_, std::string("GET ") + path + " HTTP/1.1\r\nHost: evil.example:" +
                               std::to_string(port_) + "\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(reply.rfind("HTTP/1.1 421", 0), 0u) << path << ": " << reply;
  }
  const std::string ok =
      RawExchange(port_, "GET /metrics HTTP/1.1\r\nHost: localhost:" + std::to_string(port_) +
                             "\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
}

TEST_F(WebTest, RunsAsItsUserNotRoot) {
  const std::string status = ReadText("/proc/" + std::to_string(web_) + "/status");
  const size_t uid = status.find("\nUid:");
  ASSERT_NE(uid, std::string::npos);
  EXPECT_EQ(status.substr(uid, 30).find("\t0\t"), std::string::npos) << status.substr(uid, 30);
  EXPECT_NE(status.substr(uid, 30).find("65534"), std::string::npos) << status.substr(uid, 30);
}

// herd-web holds its users' tokens: started directly as its unprivileged user (not by root, whose
// change of user would clear the flag anyway) it is still not dumpable (its /proc files stay
// root's, so no other process of that user reads its memory) and writes no core file.
TEST_F(WebTest, ItsMemoryStaysPrivateWhenStartedAsItsUser) {
  if (geteuid() != 0 || RunShell("command -v setpriv").exit_code != 0) {
    GTEST_SKIP() << "needs root and setpriv (to start herd-web as nobody)";
  }
  const std::string dir = c().dir() + "/web-as-nobody";
  const int port = FreePort();
  ASSERT_EQ(RunShell("mkdir -p " + dir + " && install -m 0755 " + BinDir() + "/herd-web " + dir +
                     "/herd-web && chmod 0755 " + c().dir() + " " + dir)
                .exit_code,
            0);
  std::ofstream(dir + "/herd.toml")
      << "[web]\nlisten = \"127.0.0.1:" << port << "\"\nuser = \"nobody\"\n";
  chmod((dir + "/herd.toml").c_str(), 0644);
  const pid_t web = Spawn({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                           dir + "/herd-web", "--config", dir + "/herd.toml"},
                          dir + "/web.out");
  ASSERT_GT(web, 0);
  const bool up = Eventually(10s, [port] { return Get(port, "/").first == 200; });
  struct stat st {};
  const bool stated = stat(("/proc/" + std::to_string(web) + "/status").c_str(), &st) == 0;
  const std::string status = ReadText("/proc/" + std::to_string(web) + "/status");
  const std::string limits = ReadText("/proc/" + std::to_string(web) + "/limits");
  Stop(web);
  ASSERT_TRUE(up) << ReadText(dir + "/web.out");
  EXPECT_NE(status.find("Uid:\t65534"), std::string::npos) << status.substr(0, 400);
  ASSERT_TRUE(stated);
  EXPECT_EQ(st.st_uid, 0u) << "/proc/PID of a dumpable process belongs to its user";
  std::string core;
  for (std::istringstream in(limits); std::getline(in, core);) {
    if (core.starts_with("Max core file size")) break;
  }
  EXPECT_THAT(core, ::testing::MatchesRegex("Max core file size +0 +0 .*")) << limits;
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

// ---- the REST API with tokens ----

// herd-web runs as daemon (uid 1); researchers are nobody; root is the admin. herd-ctld swaps
// login tokens within 3 s, so that the test sees one expire.
class WebApiTest : public HerdWebTest<WebApiTest> {
 public:
  static std::string WebToml() { return "user = \"daemon\"\nlogin_token_ttl = \"3s\"\n"; }
  static std::string Skip() {
    if (geteuid() != 0 || RunShell("command -v setpriv").exit_code != 0) {
      return "needs root and setpriv (herd-web runs as daemon, a researcher as nobody)";
    }
    return "";
  }

 protected:
  // `herd web --token` as root (uid 0) or as nobody: a session token for the API.
  std::string ApiToken(bool as_root) {
    CommandResult r =
        as_root ? c().Herd("web --token") : c().HerdAs(kNobody, kNobody, "web --token");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string token = r.out;
    while (!token.empty() && token.back() == '\n') token.pop_back();
    EXPECT_EQ(token.size(), 64u) << r.out << r.err;
    return token;
  }
  // A request to herd-web with `token` as Bearer ("" = none): status and body.
  httplib::Result Call(const std::string& method, const std::string& path, const std::string& token,
                       const std::string& body = "") {
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(10, 0);
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    if (method == "POST") return client.Post(path.c_str(), headers, body, "application/json");
    return client.Get(path.c_str(), headers);
  }
  // The login page's form, posted as a browser on herd-web's own page would.
  httplib::Result PostLogin(const std::string& login_token) {
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(10, 0);
    httplib::Headers headers{{"Origin", "http://127.0.0.1:" + std::to_string(port_)}};
    return client.Post("/login", headers, "token=" + login_token,
                       "application/x-www-form-urlencoded");
  }
  nlohmann::json Json(const httplib::Result& r) {
    if (!r) return nullptr;
    return nlohmann::json::parse(r->body, nullptr, false);
  }
  // web_relay_probe as uid `uid`: herd-ctld asked directly, with `token`, as herd-web would.
  CommandResult ProbeAs(uint32_t uid, const std::string& token) {
    const std::string probe = c().dir() + "/web_relay_probe";
    RunShell("install -m 0755 " + BinDir() + "/web_relay_probe " + probe);
    (void)c().HerdAs(kNobody, kNobody, "--version");  // opens the cluster directory to all
    return RunShell("cd / && setpriv --reuid=" + std::to_string(uid) +
                    " --regid=" + std::to_string(uid) + " --clear-groups " + probe + " " +
                    c().dir() + "/herd.toml " + token);
  }
};

TEST_F(WebApiTest, ListSubmitShowAndCancelWithAToken) {
  const std::string token = ApiToken(/*as_root=*/false);
  auto submitted = Call("POST", "/api/v1/jobs", token,
                        R"({"command": ["sleep", "300"], "cwd": "/tmp", "name": "api-job"})");
  ASSERT_TRUE(submitted);
  ASSERT_EQ(submitted->status, 201) << submitted->body << ReadText(c().dir() + "/web.out");
  const int64_t id = Json(submitted)["id"];
  ASSERT_TRUE(c().WaitForState(id, "RUNNING")) << c().log_tail();

  auto list = Call("GET", "/api/v1/jobs?state=RUNNING", token);
  ASSERT_TRUE(list);
  ASSERT_EQ(list->status, 200) << list->body;
  bool listed = false;
  const nlohmann::json listing = Json(list);
  for (const auto& j : listing["jobs"]) {
    if (j["id"] == id) listed = j["user"] == "nobody" && j["name"] == "api-job";
  }
  EXPECT_TRUE(listed) << list->body;

  auto shown = Call("GET", "/api/v1/jobs/" + std::to_string(id), token);
  ASSERT_TRUE(shown);
  ASSERT_EQ(shown->status, 200) << shown->body;
  EXPECT_EQ(Json(shown)["job"]["command"], nlohmann::json({"sleep", "300"}));
  EXPECT_FALSE(Json(shown)["events"].empty()) << shown->body;

  for (const char* path : {"/api/v1/nodes", "/api/v1/projects", "/api/v1/usage?by=project"}) {
    auto r = Call("GET", path, token);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path << ": " << r->body;
  }
  auto csv = Call("GET", "/api/v1/usage?format=csv", token);
  ASSERT_TRUE(csv);
  EXPECT_EQ(csv->body.rfind("user,gpu_hours,", 0), 0u) << csv->body;

  auto cancelled = Call("POST", "/api/v1/jobs/" + std::to_string(id) + "/cancel", token);
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 200) << cancelled->body;
  EXPECT_EQ(c().WaitForEnd(id), "CANCELLED");
}

// nobody sees root's job's public facts, never its environment or events, and cannot cancel it.
TEST_F(WebApiTest, AResearcherSeesOthersJobsPublicFactsOnlyAndCannotCancelThem) {
  auto other = c().Submit("-e HERD_TEST_SECRET=hunter2 -- sleep 300");
  ASSERT_TRUE(other.ok()) << other.status().message();
  ASSERT_TRUE(c().WaitForState(*other, "RUNNING")) << c().log_tail();
  const std::string token = ApiToken(/*as_root=*/false);

  auto shown = Call("GET", "/api/v1/jobs/" + std::to_string(*other), token);
  ASSERT_TRUE(shown);
  ASSERT_EQ(shown->status, 200) << shown->body;
  EXPECT_EQ(Json(shown)["job"]["user"], "root");
  EXPECT_EQ(shown->body.find("hunter2"), std::string::npos) << shown->body;
  EXPECT_TRUE(Json(shown)["events"].empty()) << shown->body;
  auto all = Call("GET", "/api/v1/jobs?all=true", token);
  ASSERT_TRUE(all);
  EXPECT_EQ(all->body.find("hunter2"), std::string::npos);

  auto refused = Call("POST", "/api/v1/jobs/" + std::to_string(*other) + "/cancel", token);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403) << refused->body;
  EXPECT_NE(refused->body.find("belongs to root"), std::string::npos) << refused->body;
  auto job = c().Show(*other);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["state"], "RUNNING");

  // The admin's token sees the environment and cancels it.
  const std::string admin = ApiToken(/*as_root=*/true);
  auto full = Call("GET", "/api/v1/jobs/" + std::to_string(*other), admin);
  ASSERT_TRUE(full);
  EXPECT_NE(full->body.find("hunter2"), std::string::npos) << full->body;
  auto cancelled = Call("POST", "/api/v1/jobs/" + std::to_string(*other) + "/cancel", admin);
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 200) << cancelled->body;
}

// A job's output through the API is its owner's (and admins'), as with herd logs; hold and
// release act on the owner's job alone.
TEST_F(WebApiTest, LogHoldAndReleaseAreTheOwnersAlone) {
  const std::string token = ApiToken(/*as_root=*/false);
  auto submitted =
      Call("POST", "/api/v1/jobs", token,
           R"({"command": ["sh", "-c", "echo out-of-the-job; sleep 300"], "cwd": "/tmp",)"
           R"( "hold": true})");
  ASSERT_TRUE(submitted);
  ASSERT_EQ(submitted->status, 201) << submitted->body;
  const long id = Json(submitted)["id"].get<long>();
  const std::string mine = "/api/v1/jobs/" + std::to_string(id);
  auto shown = Call("GET", mine, token);
  ASSERT_TRUE(shown);
  EXPECT_EQ(Json(shown)["may_act"], true) << shown->body;
  EXPECT_EQ(Json(shown)["waits_for"], "hold") << shown->body;
  auto released = Call("POST", mine + "/release", token);
  ASSERT_TRUE(released);
  EXPECT_EQ(released->status, 200) << released->body;
  ASSERT_TRUE(c().WaitForState(id, "RUNNING")) << c().log_tail();
  // A running job is not held: herd-ctld's reason, as a conflict.
  auto late = Call("POST", mine + "/hold", token);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->status, 409) << late->body;
  std::string data;
  EXPECT_TRUE(Eventually(10s, [&] {
    auto log = Call("GET", mine + "/log?stream=stdout&bytes=4096", token);
    data = log && log->status == 200 ? Json(log)["data"].get<std::string>() : "";
    return data.find("out-of-the-job") != std::string::npos;
  })) << data;
  auto bad = Call("GET", mine + "/log?bytes=2000000", token);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400) << bad->body;
  EXPECT_NE(bad->body.find("bytes: expected 1 to 1048576"), std::string::npos) << bad->body;
  auto anonymous = Call("GET", mine + "/log", "");
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);

  // root's job: nobody gets neither its output nor its hold.
  auto others = c().Submit("-- sh -c 'echo root-output; sleep 300'");
  ASSERT_TRUE(others.ok()) << others.status().message();
  const std::string other = "/api/v1/jobs/" + std::to_string(*others);
  auto seen = Call("GET", other, token);
  ASSERT_TRUE(seen);
  EXPECT_EQ(Json(seen)["may_act"], false) << seen->body;
  for (const char* action : {"/hold", "/release", "/cancel"}) {
    auto refused = Call("POST", other + action, token);
    ASSERT_TRUE(refused) << action;
    EXPECT_EQ(refused->status, 403) << action << ": " << refused->body;
  }
  ASSERT_TRUE(c().WaitForState(*others, "RUNNING")) << c().log_tail();
  auto log = Call("GET", other + "/log", token);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->status, 403) << log->body;
  EXPECT_EQ(log->body.find("root-output"), std::string::npos);
  // The admin's token reads it.
  const std::string admin = ApiToken(/*as_root=*/true);
  EXPECT_TRUE(Eventually(10s, [&] {
    auto r = Call("GET", other + "/log", admin);
    return r && r->status == 200 && r->body.find("root-output") != std::string::npos;
  }));
  // GPU-hours by GPU type, as herd usage --by type.
  auto by_type = Call("GET", "/api/v1/usage?by=type", token);
  ASSERT_TRUE(by_type);
  EXPECT_EQ(by_type->status, 200) << by_type->body;
  EXPECT_EQ(Json(by_type)["by"], "type") << by_type->body;
  auto csv = Call("GET", "/api/v1/usage?by=type&format=csv", token);
  ASSERT_TRUE(csv);
  EXPECT_EQ(csv->body.rfind("type,gpu_hours,", 0), 0u) << csv->body;
  EXPECT_EQ(Call("POST", mine + "/cancel", token)->status, 200);
  EXPECT_EQ(c().Herd("cancel " + std::to_string(*others)).exit_code, 0);
}

TEST_F(WebApiTest, WrongExpiredUsedAndRevokedTokensGet401AndNoData) {
  auto job = c().Submit("-- sleep 300");
  ASSERT_TRUE(job.ok());
  auto expect_401 = [&](const std::string& token, const std::string& what) {
    for (const char* path : {"/api/v1/jobs?all=true", "/api/v1/nodes"}) {
      auto r = Call("GET", path, token);
      ASSERT_TRUE(r) << what;
      EXPECT_EQ(r->status, 401) << what << ": " << r->body;
      EXPECT_EQ(r->body.find("\"jobs\""), std::string::npos) << what;
      EXPECT_EQ(r->body.find("dgx01"), std::string::npos) << what;
    }
  };
  expect_401("", "no token");
  expect_401(std::string(64, 'a'), "wrong token");

  // The login address works once, within login_token_ttl.
  CommandResult web = c().HerdAs(kNobody, kNobody, "web");
  ASSERT_EQ(web.exit_code, 0) << web.err;
  const std::string url = web.out.substr(0, web.out.find('\n'));
  const size_t path_at = url.find("/login?token=");
  ASSERT_NE(path_at, std::string::npos) << url;
  const std::string login = url.substr(path_at);
  // The address serves a form; its POST (from the same origin) swaps the token for the cookie.
  auto page = Call("GET", login, "");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200) << page->body;
  EXPECT_EQ(page->get_header_value("Set-Cookie"), "");
  const std::string login_token = login.substr(login.find('=') + 1);
  auto first = PostLogin(login_token);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->status, 303) << first->body;
  const std::string cookie = first->get_header_value("Set-Cookie");
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos) << cookie;
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos) << cookie;
  auto again = PostLogin(login_token);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 401) << again->body;

  // An unused login address expires.
  CommandResult late = c().HerdAs(kNobody, kNobody, "web");
  ASSERT_EQ(late.exit_code, 0) << late.err;
  const std::string late_login = late.out.substr(late.out.find("/login?token="));
  std::this_thread::sleep_for(4s);  // past login_token_ttl: what is tested is the clock itself
  const std::string late_token = late_login.substr(0, late_login.find('\n'));
  auto expired = PostLogin(late_token.substr(late_token.find('=') + 1));
  ASSERT_TRUE(expired);
  EXPECT_EQ(expired->status, 401) << expired->body;

  // herd web --revoke ends a user's tokens at once.
  const std::string token = ApiToken(/*as_root=*/false);
  ASSERT_EQ(Call("GET", "/api/v1/nodes", token)->status, 200);
  CommandResult revoke = c().HerdAs(kNobody, kNobody, "web --revoke");
  EXPECT_EQ(revoke.exit_code, 0) << revoke.err;
  expect_401(token, "revoked token");
  EXPECT_EQ(c().Herd("cancel " + std::to_string(*job)).exit_code, 0);
}

// A token is only good in herd-web's hands: herd-ctld takes a relayed request from herd-web's
// user alone, so a process of another user holding a valid token gets nothing.
TEST_F(WebApiTest, HerdCtldRefusesATokenRelayedByAnyoneButHerdWebsUser) {
  const std::string token = ApiToken(/*as_root=*/false);
  CommandResult stolen = ProbeAs(kNobody, token);
  EXPECT_EQ(stolen.exit_code, 1) << stolen.out << stolen.err;
  EXPECT_NE(stolen.out.find("only herd-web's user"), std::string::npos) << stolen.out;
  // The same probe as herd-web's user is answered: the refusal was for the user, not the probe.
  CommandResult as_web = ProbeAs(1, token);
  EXPECT_EQ(as_web.exit_code, 0) << as_web.out << as_web.err;
  // And herd-web's user with a wrong token gets nothing either.
  CommandResult wrong = ProbeAs(1, std::string(64, 'b'));
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out << wrong.err;
  EXPECT_NE(wrong.out.find("unknown, expired or revoked"), std::string::npos) << wrong.out;
}

// A token never crosses the network in the clear: herd-ctld seals it to a key the asker sent in its
// MUNGE-signed request, and refuses to mint one for a request without a key.
TEST_F(WebApiTest, HerdCtldMintsNoTokenForARequestWithoutAKeyToSealItTo) {
  CommandResult r = ProbeAs(kNobody, "--mint");
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("public key"), std::string::npos) << r.out;
  // `herd web --token` sends one, and its token works.
  const std::string token = ApiToken(/*as_root=*/false);
  auto jobs = Call("GET", "/api/v1/jobs", token);
  ASSERT_TRUE(jobs);
  EXPECT_EQ(jobs->status, 200) << jobs->body;
}

TEST_F(WebApiTest, MalformedAndOversizedBodiesAreRefusedAndHerdWebStaysUp) {
  const std::string token = ApiToken(/*as_root=*/false);
  for (const std::string& body :
       {std::string("{\"command\": [\"sleep\""), std::string("null"), std::string(5000, '['),
        std::string("{\"command\": [\"true\"], \"cwd\": \"/\", "
                    "\"gpus\": \"many\"}")}) {
    auto r = Call("POST", "/api/v1/jobs", token, body);
    ASSERT_TRUE(r) << body.substr(0, 40);
    EXPECT_EQ(r->status, 400) << body.substr(0, 40) << ": " << r->body;
    EXPECT_TRUE(Json(r).contains("error")) << r->body;
  }
  auto big = Call("POST", "/api/v1/jobs", token, std::string(300 << 10, ' '));
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
  // The server refuses a spec it cannot run with herd submit's own message.
  auto invalid = Call("POST", "/api/v1/jobs", token,
                      R"({"command": ["true"], "cwd": "/", "project": "no-such-project"})");
  ASSERT_TRUE(invalid);
  EXPECT_EQ(invalid->status / 100, 4) << invalid->body;
  EXPECT_TRUE(Alive(web_));
  auto still = Call("GET", "/api/v1/nodes", token);
  ASSERT_TRUE(still);
  EXPECT_EQ(still->status, 200);
}

// With [web] tls_cert and tls_key herd-web serves HTTPS (read as root, then dropped) and marks
// its cookies Secure; plain HTTP on that port gets no answer.
TEST_F(WebApiTest, ServesHttpsWithTheAdminsCertificate) {
  if (RunShell("command -v openssl").exit_code != 0) GTEST_SKIP() << "openssl is not installed";
  const std::string dir = c().dir() + "/tls";
  CommandResult made = RunShell("mkdir -p " + dir + " && chmod 0700 " + dir +
                                " && openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "
                                "/CN=127.0.0.1 -keyout " +
                                dir + "/key.pem -out " + dir + "/cert.pem 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.out;
  const int port = FreePort();
  // The cluster's herd.toml, with herd-web on another port and the certificate.
  std::string text = ReadText(c().dir() + "/herd.toml");
  const std::string listen = "127.0.0.1:" + std::to_string(port_);
  ASSERT_NE(text.find(listen), std::string::npos) << text;
  text.replace(text.find(listen), listen.size(), "127.0.0.1:" + std::to_string(port));
  const size_t web_table = text.find("[web]\n");
  ASSERT_NE(web_table, std::string::npos) << text;
  text.insert(web_table + 6,
              "tls_cert = \"" + dir + "/cert.pem\"\ntls_key = \"" + dir + "/key.pem\"\n");
  const std::string toml = dir + "/herd.toml";
  std::ofstream(toml) << text;
  pid_t web = Spawn({BinDir() + "/herd-web", "--config", toml}, dir + "/web.out");
  ASSERT_GT(web, 0);
  httplib::SSLClient client("127.0.0.1", port);
  client.enable_server_certificate_verification(false);  // self-signed, made just now
  client.set_connection_timeout(2, 0);
  int status = 0;
  Eventually(10s, [&] {
    auto r = client.Get("/");
    status = r ? r->status : 0;
    return status != 0;
  });
  const bool plain_answered = Get(port, "/").first != 0;
  Stop(web);
  EXPECT_EQ(status, 200) << ReadText(dir + "/web.out");
  EXPECT_FALSE(plain_answered);
}

// ---- the dashboard in a headless Chromium ----

// herd-web's pages in Debian's Chromium, logged in with the address `herd web` prints: each page
// shows the cluster's jobs, reasons and charts, built from the API; a job name with markup stays
// text; a browser without a valid session gets 401 and no data. Screenshots of each page go to
// build/test-artifacts/dashboard/.
class WebDashboardTest : public HerdWebTest<WebDashboardTest> {
 public:
  // A history sample every second, so that charts have points within the test.
  static std::string WebToml() { return "user = \"daemon\"\n[history]\ninterval = \"1s\"\n"; }
  static std::string Skip() {
    if (access(Chromium::kPath, X_OK) != 0) {
      return std::string(Chromium::kPath) + " is missing (apt-get install chromium)";
    }
    if (geteuid() != 0) return "needs root (herd-web runs as daemon)";
    return "";
  }

 protected:
  void SetUp() override {
    HerdWebTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    artifacts_ = BinDir() + "/../test-artifacts/dashboard";
    RunShell("mkdir -p " + artifacts_);
    auto browser = Chromium::Start(c().dir() + "/chromium-" +
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    if (!browser.ok()) GTEST_SKIP() << browser.status().message();
    browser_ = std::move(browser).value();
  }
  std::string Base() { return "http://127.0.0.1:" + std::to_string(port_); }
  // Opens page `hash` of the dashboard and waits until it has rendered (or failed).
  void Open(const std::string& hash) {
    ASSERT_TRUE(browser_->Navigate(Base() + "/#" + hash).ok());
    ASSERT_TRUE(
        browser_->WaitFor("document.getElementById('page').dataset.state !== 'loading' && "
                          "document.getElementById('page').dataset.page !== undefined",
                          15s))
        << hash;
  }
  std::string Text() {
    auto t = browser_->Evaluate("document.getElementById('page').textContent");
    return t.ok() && t->is_string() ? t->get<std::string>() : "";
  }
  // Logs the browser in as uid `uid` (0: root) would: the address `herd web` prints, then the
  // page's button.
  void LogIn(uint32_t uid) {
    CommandResult web = uid == 0 ? c().Herd("web") : c().HerdAs(uid, uid, "web");
    ASSERT_EQ(web.exit_code, 0) << web.err;
    const std::string url = web.out.substr(0, web.out.find('\n'));
    ASSERT_NE(url.find("/login?token="), std::string::npos) << url;
    ASSERT_TRUE(browser_->Navigate(Base() + url.substr(url.find("/login?token="))).ok());
    ASSERT_TRUE(browser_->Evaluate("document.querySelector('form').submit(), true").ok());
    ASSERT_TRUE(
        browser_->WaitFor("location.pathname === '/' && "
                          "document.getElementById('page')?.dataset.state === 'ready'",
                          15s))
        << Text() << ReadText(c().dir() + "/web.out");
  }
  // The HTTP status of a POST to `path` from the page, with its CSRF header, as its buttons send.
  nlohmann::json PostFromPage(const std::string& path) {
    auto status = browser_->Evaluate("fetch('" + path +
                                     "', {method: 'POST', headers: {'X-Herd-CSRF': csrf()}})"
                                     ".then(r => r.status)");
    return status.ok() ? *status : nlohmann::json(status.status().message());
  }
  void Shoot(const std::string& name) {
    const std::string path = artifacts_ + "/" + name + ".png";
    EXPECT_TRUE(browser_->Screenshot(path).ok());
    std::cout << "screenshot: " << path << "\n";
  }

  std::string artifacts_;
  std::unique_ptr<Chromium> browser_;
};

TEST_F(WebDashboardTest, PagesShowJobsReasonsAndUtilizationAfterLogin) {
  const std::string evil = "<img src=x onerror=window.pwned=1><script>window.pwned=2</script>";
  auto running = c().Submit("-g 8 --name '" + evil + "' -- sleep 300");
  ASSERT_TRUE(running.ok()) << running.status().message();
  ASSERT_TRUE(c().WaitForState(*running, "RUNNING")) << c().log_tail();
  auto pending = c().Submit("-g 8 --name waits-for-gpus -- sleep 300");
  ASSERT_TRUE(pending.ok()) << pending.status().message();
  {  // dgx01's GPUs 60% busy from now on, as its (fed) metrics source reports
    std::ofstream fed(c().dir() + "/nodes/dgx01/gpu-metrics");
    for (int g = 0; g < 8; ++g) fed << g << " 60 1000\n";
  }
  LogIn(/*uid=*/0);
  if (HasFatalFailure()) return;

  Open("jobs");
  EXPECT_NE(Text().find(evil), std::string::npos) << "the name shows as text: " << Text();
  EXPECT_NE(Text().find("waits-for-gpus"), std::string::npos) << Text();
  // The markup in the name made no element and ran nothing.
  EXPECT_EQ(*browser_->Evaluate("document.querySelectorAll('main img, main script').length"), 0);
  EXPECT_EQ(*browser_->Evaluate("window.pwned === undefined"), true);
  Shoot("jobs");

  Open("job/" + std::to_string(*pending));
  EXPECT_EQ(*browser_->Evaluate("document.getElementById('pending-reason') !== null"), true)
      << Text();
  EXPECT_NE(Text().find("Waits for"), std::string::npos) << Text();
  Shoot("job-pending");

  // The running job's chart, once herd-ctld has sampled its utilization: the page is rendered
  // again (hashchange) until the chart has points and Dygraph has drawn it.
  Open("job/" + std::to_string(*running));
  EXPECT_TRUE(browser_->WaitFor(
      "(() => { const c = document.querySelector('main .chart');"
      " if (c && Number(c.dataset.points) > 0 && c.querySelector('canvas')) return true;"
      " window.dispatchEvent(new HashChangeEvent('hashchange')); return false; })()",
      20s))
      << Text();
  Shoot("job-running");

  Open("overview");
  EXPECT_TRUE(browser_->WaitFor(
      "(() => { const c = document.querySelector('main .chart canvas');"
      " if (c) return true;"
      " window.dispatchEvent(new HashChangeEvent('hashchange')); return false; })()",
      20s))
      << Text();
  Shoot("overview");

  Open("nodes");
  EXPECT_NE(Text().find("dgx01"), std::string::npos) << Text();
  EXPECT_EQ(*browser_->Evaluate("document.querySelectorAll('#grid .gpu').length"), 12);
  EXPECT_TRUE(browser_->WaitFor(
      "(() => { if (document.querySelectorAll('#grid .gpu.u2').length === 8) return true;"
      " window.dispatchEvent(new HashChangeEvent('hashchange')); return false; })()",
      20s))
      << "dgx01's 8 GPUs are 60% busy: " << [&] {
           auto body = browser_->Evaluate("fetch('/api/v1/nodes').then(r => r.text())");
           return body.ok() ? body->dump().substr(0, 3000) : body.status().message();
         }();
  Shoot("nodes");

  Open("projects");
  EXPECT_NE(Text().find("default"), std::string::npos) << Text();
  Shoot("projects");

  Open("usage");
  EXPECT_EQ(*browser_->Evaluate("document.getElementById('csv').getAttribute('href')"),
            "/api/v1/usage?since=7d&by=user&format=csv");
  Shoot("usage");

  for (long id : {*running, *pending})
    EXPECT_EQ(c().Herd("cancel " + std::to_string(id)).exit_code, 0);
}

// A job's owner sees the output of its running job on its page and cancels it with the page's
// button; the job of another user shows neither output nor buttons, and herd-ctld refuses that
// user's POSTs to it. The usage page shows GPU-hours by GPU type beside those by user.
TEST_F(WebDashboardTest, TheOwnerSeesTheOutputAndCancelsFromTheJobPage) {
  CommandResult submitted =
      c().HerdAs(kNobody, kNobody, "submit -q -g 1 -- sh -c 'echo hello-from-the-job; sleep 300'");
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const long mine = std::stol(submitted.out);
  auto others = c().Submit("-- sleep 300");
  ASSERT_TRUE(others.ok()) << others.status().message();
  ASSERT_TRUE(c().WaitForState(mine, "RUNNING")) << c().log_tail();
  ASSERT_TRUE(c().WaitForState(*others, "RUNNING")) << c().log_tail();
  LogIn(kNobody);
  if (HasFatalFailure()) return;

  Open("job/" + std::to_string(mine));
  EXPECT_TRUE(browser_->WaitFor(
      "document.getElementById('log')?.textContent.includes('hello-from-the-job')", 20s))
      << Text();
  EXPECT_EQ(*browser_->Evaluate("document.querySelector('#log *') === null"), true) << "text only";
  EXPECT_EQ(*browser_->Evaluate("document.getElementById('cancel') !== null"), true) << Text();
  EXPECT_EQ(*browser_->Evaluate("document.getElementById('hold') === null"), true)
      << "a running job is not held";
  Shoot("job-output");
  ASSERT_TRUE(browser_->Evaluate("document.getElementById('cancel').click(), true").ok());
  // The button shows the page again; until herd-ctld has the job's end it is shown again (once
  // each earlier showing has finished, so that none is dropped for the next).
  EXPECT_TRUE(browser_->WaitFor(
      "(() => { const page = document.getElementById('page');"
      " if (page.dataset.state === 'ready' && page.textContent.includes('CANCELLED')) return true;"
      " if (page.dataset.state !== 'loading')"
      "   window.dispatchEvent(new HashChangeEvent('hashchange'));"
      " return false; })()",
      20s))
      << Text();
  EXPECT_EQ(c().WaitForEnd(mine), "CANCELLED");
  CommandResult jobs = c().Herd("jobs -a " + std::to_string(mine));
  EXPECT_NE(jobs.out.find("CANCELLED"), std::string::npos) << jobs.out << jobs.err;
  EXPECT_EQ(*browser_->Evaluate("document.getElementById('cancel') === null"), true)
      << "an ended job has no buttons: " << Text();
  Shoot("job-cancelled");

  const std::string other = "/api/v1/jobs/" + std::to_string(*others);
  Open("job/" + std::to_string(*others));
  EXPECT_EQ(*browser_->Evaluate("document.getElementById('page').dataset.state"), "ready");
  EXPECT_EQ(*browser_->Evaluate("document.getElementById('actions') === null && "
                                "document.getElementById('log') === null"),
            true)
      << Text();
  Shoot("job-of-another-user");
  for (const char* action : {"/cancel", "/hold"}) {
    EXPECT_EQ(PostFromPage(other + action), 403) << action;
  }
  EXPECT_EQ(*browser_->Evaluate("fetch('" + other + "/log').then(r => r.status)"), 403);
  auto job = c().Show(*others);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ((*job)["state"], "RUNNING");

  Open("usage");
  EXPECT_EQ(*browser_->Evaluate("document.querySelector('#usage-user table') !== null && "
                                "document.querySelector('#usage-type table') !== null"),
            true)
      << Text();
  EXPECT_NE(Text().find("By GPU type"), std::string::npos) << Text();
  EXPECT_EQ(*browser_->Evaluate("document.getElementById('csv-type').getAttribute('href')"),
            "/api/v1/usage?since=7d&by=type&format=csv");
  Shoot("usage-by-type");
  EXPECT_EQ(c().Herd("cancel " + std::to_string(*others)).exit_code, 0);
}

TEST_F(WebDashboardTest, AWrongOrExpiredSessionGets401AndNoData) {
  auto job = c().Submit("--name secret-job-name -- sleep 300");
  ASSERT_TRUE(job.ok());
  // No session at all, then a session cookie herd-ctld does not know (wrong or expired alike).
  for (const bool cookie : {false, true}) {
    if (cookie) {
      ASSERT_TRUE(browser_
                      ->Call("Network.setCookie", {{"name", "herd_session"},
                                                   {"value", std::string(64, 'a')},
                                                   {"url", Base() + "/"}})
                      .ok());
    }
    for (const char* page : {"jobs", "nodes", "overview"}) {
      Open(page);
      EXPECT_EQ(*browser_->Evaluate("document.getElementById('page').dataset.state"),
                "unauthorized")
          << page;
      EXPECT_EQ(Text().find("secret-job-name"), std::string::npos) << page;
      EXPECT_EQ(Text().find("dgx01"), std::string::npos) << page;
    }
    auto status = browser_->Evaluate("fetch('/api/v1/jobs?all=true').then(r => r.status)");
    ASSERT_TRUE(status.ok()) << status.status().message();
    EXPECT_EQ(*status, 401);
  }
  Shoot("unauthorized");
  // The pages come with a policy that runs no inline script and no frame around them.
  httplib::Client client("127.0.0.1", port_);
  auto r = client.Get("/");
  ASSERT_TRUE(r);
  EXPECT_NE(r->get_header_value("Content-Security-Policy").find("script-src 'self'"),
            std::string::npos);
  EXPECT_NE(r->get_header_value("Content-Security-Policy").find("frame-ancestors 'none'"),
            std::string::npos);
  EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(c().Herd("cancel " + std::to_string(*job)).exit_code, 0);
}

}  // namespace
}  // namespace herd::testing
