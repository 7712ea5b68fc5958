// herd-web: the HTTP daemon beside herd-ctld. It serves /metrics (Prometheus) from what herd-ctld
// answers to StatsRequest and ProjectsRequest, asked over herd's own protocol with herd-web's MUNGE
// credential, as the CLI asks; and the REST API (web/api.h), whose requests it relays to herd-ctld
// for the user whose web token they carry. A separate process, so that no fault in HTTP handling
// reaches the scheduler; it never runs as root.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/auth/auth.h"
#include "common/auth/web_tokens.h"
#include "common/config/config.h"
#include "common/net/net.h"
#include "common/util/daemon.h"
#include "httplib.h"
#include "spdlog/spdlog.h"
#include "web/api.h"
#include "web/httplib_glue.h"
#include "web/metrics.h"
#include "web/ui.h"

namespace {

using herd::Status;

// Bounds on what a browser or scraper can make herd-web hold. cpp-httplib itself caps a request
// line and each header line at 8 KiB.
constexpr size_t kMaxBodyBytes = herd::web::kMaxApiBodyBytes;  // POST /api/v1/jobs
constexpr int kTimeoutS = 5;          // to read a request, write a reply or keep it alive
constexpr size_t kThreads = 4;        // requests served at once, per address
constexpr int kCtldTimeoutMs = 5000;  // herd-ctld's answer, below Prometheus's 10 s

// Asks herd-ctld on behalf of every HTTP thread, one request at a time (net::Client is used by
// one thread at once).
class CtldSource : public herd::web::CtldLink {
 public:
  CtldSource(std::string endpoint, const herd::config::AuthConfig& auth)
      : endpoint_(std::move(endpoint)), auth_(auth) {}

  herd::Result<herd::proto::Envelope> Relay(const std::string& token,
                                            herd::proto::Envelope inner) override {
    std::lock_guard<std::mutex> lock(mu_);
    HERD_RETURN_IF_ERROR(Connect());
    herd::proto::WebRelay relay{token, std::move(inner.type), std::move(inner.body)};
    return client_->CallRaw(herd::proto::MakeEnvelope(relay));
  }

  herd::Result<herd::proto::WebTokenReply> WebToken(
      const herd::proto::WebTokenRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    HERD_RETURN_IF_ERROR(Connect());
    return herd::auth::CallSealed(request, [this](const herd::proto::WebTokenRequest& r) {
      return client_->Call<herd::proto::WebTokenRequest, herd::proto::WebTokenReply>(r);
    });
  }

  herd::web::Scrape Scrape() {
    std::lock_guard<std::mutex> lock(mu_);
    herd::web::Scrape s;
    if (Status c = Connect(); !c.ok()) return Failed(c);
    auto stats = client_->Call<herd::proto::StatsRequest, herd::proto::StatsReply>({});
    if (!stats.ok()) return Failed(stats.status());
    auto queues = client_->Call<herd::proto::ProjectsRequest, herd::proto::ProjectsReply>({});
    if (!queues.ok()) return Failed(queues.status());
    s.up = true;
    s.stats = std::move(stats).value();
    s.queues = std::move(queues).value();
    return s;
  }

 private:
  // REQUIRES: mu_ held.
  Status Connect() {
    if (client_) return Status::Ok();
    auto a = herd::auth::MakeAuthenticator(auth_.method, auth_.munge_socket);
    if (!a.ok()) return a.status();
    client_ = std::make_unique<herd::net::Client>(endpoint_, std::move(a).value(), kCtldTimeoutMs);
    return Status::Ok();
  }

  herd::web::Scrape Failed(const Status& why) {
    spdlog::warn("herd-ctld did not answer /metrics: {}", why.message());
    return {};
  }

  std::mutex mu_;
  std::string endpoint_;
  herd::config::AuthConfig auth_;
  std::unique_ptr<herd::net::Client> client_;
};

// One listening address and the thread that serves it.
struct Listener {
  std::unique_ptr<httplib::Server> server;
  std::string address;
  std::thread thread;
};

// 256 random bits in hex, for the CSRF cookie.
std::string RandomToken() {
  unsigned char bytes[32];
  randombytes_buf(bytes, sizeof bytes);
  std::string hex(2 * sizeof bytes, '0');
  static const char kDigits[] = "0123456789abcdef";
  for (size_t i = 0; i < sizeof bytes; ++i) {
    hex[2 * i] = kDigits[bytes[i] >> 4];
    hex[2 * i + 1] = kDigits[bytes[i] & 15];
  }
  return hex;
}

// The names of herd-web a browser's Host header may give besides IP addresses and localhost
// (api.h, HostAllowed): the hosts of [web] listen and url, and this machine's name when listen is
// a wildcard.
std::vector<std::string> ServedNames(const herd::config::WebConfig& web) {
  std::vector<std::string> names;
  auto add = [&names](std::string name) {
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (!name.empty()) names.push_back(std::move(name));
  };
  if (auto hp = herd::config::SplitHostPort(web.listen); hp.ok()) {
    if (hp->first == "0.0.0.0" || hp->first == "::" || hp->first == "*") {
      char name[256] = {};
      gethostname(name, sizeof name - 1);
      add(name);
    } else {
      add(hp->first);
    }
  }
  if (const size_t scheme = web.url.find("://"); scheme != std::string::npos) {
    std::string host = web.url.substr(scheme + 3);
    host = host.substr(0, host.find('/'));
    if (!host.empty() && host.front() != '[') host = host.substr(0, host.rfind(':'));
    add(host);
  }
  return names;
}

// A server with herd-web's bounds, bound to `address` (HOST:PORT) but not yet serving; HTTPS with
// `web`'s certificate and key when it names them (read now, before root is dropped).
herd::Result<Listener> Bind(const std::string& address, bool metrics_only, CtldSource* ctld,
                            const herd::web::Api* api, const herd::web::Ui* ui,
                            const herd::config::WebConfig& web) {
  auto hp = herd::config::SplitHostPort(address);
  if (!hp.ok()) return hp.status();
  Listener l;
  l.address = address;
  if (!metrics_only && !web.tls_cert.empty()) {
    auto tls = std::make_unique<httplib::SSLServer>(web.tls_cert.c_str(), web.tls_key.c_str());
    if (!tls->is_valid()) {
      return herd::Invalid("cannot use [web] tls_cert " + web.tls_cert + " and tls_key " +
                           web.tls_key + ": check that both are readable PEM files of one pair");
    }
    l.server = std::move(tls);
  } else {
    l.server = std::make_unique<httplib::Server>();
  }
  httplib::Server& s = *l.server;
  s.new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  s.set_payload_max_length(kMaxBodyBytes);
  s.set_read_timeout(kTimeoutS, 0);
  s.set_write_timeout(kTimeoutS, 0);
  s.set_keep_alive_timeout(kTimeoutS);
  s.set_keep_alive_max_count(100);
  s.Get("/metrics", [ctld](const httplib::Request&, httplib::Response& res) {
    res.set_content(herd::web::FormatMetrics(ctld->Scrape()), herd::web::kMetricsContentType);
  });
  if (!metrics_only) {
    // Only requests that name herd-web (DNS rebinding); the metrics-only address is open to all.
    s.set_pre_routing_handler(
        [names = ServedNames(web)](const httplib::Request& req, httplib::Response& res) {
          if (herd::web::HostAllowed(req.get_header_value("Host"), names)) {
            return httplib::Server::HandlerResponse::Unhandled;
          }
          res.status = 421;
          res.set_content(
              "{\"error\": \"herd-web does not answer for this host name: open it by an address, "
              "localhost, or the name in [web] url or listen (set [web] url to the name browsers "
              "use)\"}",
              "application/json");
          return httplib::Server::HandlerResponse::Handled;
        });
    // The dashboard: pages without data, whose script asks the API below.
    s.Get(R"(/|/ui/.*)", [ui](const httplib::Request& req, httplib::Response& res) {
      const herd::web::HttpResponse missing{404, "text/plain", "not found\n", {}};
      herd::web::ToHttplib(ui->Serve(req.path).value_or(missing), res);
    });
    auto serve = [api](const httplib::Request& req, httplib::Response& res) {
      herd::web::ToHttplib(api->Handle(herd::web::FromHttplib(req)), res);
    };
    for (const char* pattern : {"/login", "/logout", R"(/api/.*)"}) {
      s.Get(pattern, serve);
      s.Post(pattern, serve);
      s.Put(pattern, serve);
      s.Delete(pattern, serve);
      s.Patch(pattern, serve);
    }
  }
  // A handler that throws answers 500 and the daemon goes on.
  s.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr e) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          what = ex.what();
        } catch (...) {
        }
        spdlog::error("{} {}: {}", req.method, req.path.substr(0, 200), what);
        res.status = 500;
        res.set_content("internal error\n", "text/plain; charset=utf-8");
      });
  if (!s.bind_to_port(hp->first, hp->second)) {
    return herd::Unavailable("cannot listen on " + address + ": " + std::strerror(errno) +
                             " (another program on that port? see [web] listen in herd.toml)");
  }
  return l;
}

// Started as root, herd-web becomes [web] user (its log file made and given to that user first)
// and refuses to go on as root; started as another user, it runs as that user, unless [web] user
// names a third one. Never as herd-ctld's user, whose credential herd-ctld takes from nodes.
Status BecomeUser(const herd::config::Config& config) {
  const herd::config::WebConfig& web = config.web;
  if (!config.controller.user.empty()) {
    const struct passwd* ctld = getpwnam(config.controller.user.c_str());
    if (ctld != nullptr && (geteuid() == ctld->pw_uid || web.user == config.controller.user)) {
      return herd::Denied("herd-web does not run as herd-ctld's user '" + config.controller.user +
                          "' ([controller] user), whose credential speaks for nodes: set [web] "
                          "user to another");
    }
  }
  if (web.user.empty()) {
    if (geteuid() == 0) {
      return herd::Denied(
          "herd-web does not run as root: set [web] user in herd.toml (a system "
          "user such as herd-web, made by adduser --system herd-web) or start it "
          "as that user");
    }
    return Status::Ok();
  }
  struct passwd* pw = getpwnam(web.user.c_str());
  if (pw == nullptr) {
    return herd::Invalid("[web] user '" + web.user + "' is not a user on this machine");
  }
  if (pw->pw_uid == 0) return herd::Denied("[web] user '" + web.user + "' is root: name another");
  if (geteuid() == pw->pw_uid) return Status::Ok();
  if (geteuid() != 0) {
    return herd::Denied("herd-web runs as uid " + std::to_string(geteuid()) +
                        ", but [web] user is '" + web.user +
                        "': start it as that user, or as root (it then becomes that user)");
  }
  if (!web.log_file.empty()) {
    int fd =
        open(web.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return herd::Internal("cannot open " + web.log_file + ": " + std::strerror(errno));
    const bool given = fchown(fd, pw->pw_uid, pw->pw_gid) == 0;
    close(fd);
    if (!given) return herd::Internal("cannot give " + web.log_file + " to " + web.user);
  }
  if (setgroups(0, nullptr) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0 ||
      setuid(0) == 0) {
    return herd::Internal("cannot become " + web.user + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

// herd-web holds its users' session tokens in memory: it writes no core file, and no other process
// of its user may ptrace it or read its memory (/proc/PID/mem). Called after the change of user,
// which resets the dumpable flag.
Status KeepMemoryPrivate() {
  const rlimit none{0, 0};
  if (setrlimit(RLIMIT_CORE, &none) != 0) {
    return herd::Internal(std::string("cannot turn core files off: ") + std::strerror(errno));
  }
  if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
    return herd::Internal(std::string("cannot make herd-web undumpable: ") + std::strerror(errno));
  }
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "herd-web: herd's HTTP daemon (Prometheus /metrics, REST API), a client of herd-ctld"};
  std::string config_path = "/etc/herd/herd.toml";
  app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // herd-ctld's own file, read whole: herd-web needs [web], [auth] and [controller] (its listen
  // and its user, which herd-web must not be).
  auto config = herd::config::LoadConfig(config_path);
  if (!config.ok()) {
    std::cerr << "herd-web: " << config.status().message() << "\n";
    return 1;
  }
  const herd::config::WebConfig& web = config->web;
  umask(077);
  // Bound before root is dropped, so a port below 1024 may be configured.
  std::vector<Listener> listeners;
  CtldSource ctld(herd::config::LocalEndpoint(config->controller.listen.front()), config->auth);
  if (sodium_init() < 0) {
    std::cerr << "herd-web: libsodium cannot start (no source of random numbers)\n";
    return 1;
  }
  const herd::web::Api api(
      &ctld,
      {.tls = !web.tls_cert.empty(), .session_s = web.session_s, .random_token = RandomToken});
  const herd::web::Ui ui(herd::web::kDygraphsDir);
  for (const auto& [address, metrics_only] :
       {std::pair{web.listen, false}, std::pair{web.metrics_listen, true}}) {
    if (address.empty()) continue;
    auto l = Bind(address, metrics_only, &ctld, &api, &ui, web);
    if (!l.ok()) {
      std::cerr << "herd-web: " << l.status().message() << "\n";
      return 1;
    }
    listeners.push_back(std::move(l).value());
  }
  Status dropped = BecomeUser(*config);
  if (dropped.ok()) dropped = KeepMemoryPrivate();
  if (!dropped.ok()) {
    std::cerr << "herd-web: " << dropped.message() << "\n";
    return 1;
  }
  herd::InitDaemonLog("herd-web", web.log_file);
  if (ui.dygraphs_missing()) {
    spdlog::warn("no {}/dygraph.min.js: the dashboard draws no charts (apt-get install "
                 "libjs-dygraphs)",
                 herd::web::kDygraphsDir);
  }
  const int sigfd = herd::DaemonSignalFd();  // before any thread, so that all block the signals
  for (auto& l : listeners) {
    httplib::Server* server = l.server.get();
    l.thread = std::thread([server] { server->listen_after_bind(); });
    spdlog::info("listening on {}://{}{}",
                 !web.tls_cert.empty() && &l == &listeners.front() ? "https" : "http", l.address,
                 &l == &listeners.front() ? "/" : "/metrics (metrics only)");
  }
  while (true) {
    pollfd p{sigfd, POLLIN, 0};
    poll(&p, 1, -1);
    const int sig = herd::ReadSignal(sigfd);
    if (sig == SIGINT || sig == SIGTERM) break;
  }
  spdlog::info("stopping");
  for (auto& l : listeners) l.server->stop();
  for (auto& l : listeners) l.thread.join();
  return 0;
}
