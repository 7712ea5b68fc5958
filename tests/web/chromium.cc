#include "tests/web/chromium.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

extern char **environ;

namespace herd::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr auto kCallTimeout = std::chrono::seconds(20);

}  // namespace

Result<std::unique_ptr<Chromium>> Chromium::Start(const std::string &profile_dir) {
  if (access(kPath, X_OK) != 0) {
    return Unavailable(std::string(kPath) + " is missing (apt-get install chromium)");
  }
  mkdir(profile_dir.c_str(), 0700);
  int in[2], out[2];  // in: we write, it reads (its fd 3); out: it writes (its
                      // fd 4), we read
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    return Unavailable(std::string("pipe: ") + std::strerror(errno));
  }
  std::vector<std::string> args = {kPath,
                                   "--headless",
                                   "--remote-debugging-pipe",
                                   "--no-first-run",
                                   "--no-default-browser-check",
                                   "--disable-gpu",
                                   "--disable-dev-shm-usage",
                                   "--disable-extensions",
                                   "--disable-background-networking",
                                   "--disable-sync",
                                   "--hide-scrollbars",
                                   "--mute-audio",
                                   "--window-size=1280,900",
                                   "--user-data-dir=" + profile_dir};
  if (geteuid() == 0) args.push_back("--no-sandbox");  // Chromium refuses its sandbox as root
  args.push_back("about:blank");
  std::vector<char *> argv;
  for (auto &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log = profile_dir + "/chromium.log";
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&files, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  posix_spawn_file_actions_adddup2(&files, 1, 2);
  posix_spawn_file_actions_adddup2(&files, in[0], 3);
  posix_spawn_file_actions_adddup2(&files, out[1], 4);
  std::unique_ptr<Chromium> c(new Chromium);
  const int err = posix_spawn(&c->pid_, kPath, &files, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  close(in[0]);
  close(out[1]);
  c->to_browser_ = in[1];
  c->from_browser_ = out[0];
  if (err != 0) {
    c->pid_ = 0;
    return Unavailable(std::string("cannot start chromium: ") + std::strerror(err));
  }
  auto target = c->Call("Target.createTarget", {{"url", "about:blank"}}, true);
  if (!target.ok()) {
    return Unavailable("chromium does not answer on its DevTools pipe (" +
                       target.status().message() + "); its log is " + log);
  }
  auto attached = c->Call("Target.attachToTarget",
                          {{"targetId", (*target)["targetId"]}, {"flatten", true}}, true);
  if (!attached.ok()) return attached.status();
  c->session_ = (*attached)["sessionId"].get<std::string>();
  if (auto s = c->Call("Page.enable"); !s.ok()) return s.status();
  return c;
}

Chromium::~Chromium() {
  if (to_browser_ >= 0) close(to_browser_);
  if (from_browser_ >= 0) close(from_browser_);
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

Result<json> Chromium::Call(const std::string &method, const json &params, bool to_browser) {
  return Send(method, params, to_browser ? "" : session_);
}

Result<json> Chromium::Send(const std::string &method, const json &params,
                            const std::string &session) {
  const int id = next_id_++;
  json message = {
      {"id", id}, {"method", method}, {"params", params.is_null() ? json::object() : params}};
  if (!session.empty()) message["sessionId"] = session;
  std::string bytes = message.dump();
  bytes.push_back('\0');
  for (size_t sent = 0; sent < bytes.size();) {
    const ssize_t n = write(to_browser_, bytes.data() + sent, bytes.size() - sent);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Unavailable(std::string("chromium's pipe: ") + std::strerror(errno));
    sent += static_cast<size_t>(n);
  }
  const auto deadline = Clock::now() + kCallTimeout;
  while (true) {
    // Every whole message read so far: events are dropped, the answer returned.
    for (size_t end; (end = buffer_.find('\0')) != std::string::npos;) {
      json reply = json::parse(buffer_.substr(0, end), nullptr, false);
      buffer_.erase(0, end + 1);
      if (!reply.is_object() || !reply.contains("id") || reply["id"] != id) continue;
      if (reply.contains("error")) {
        return Internal(method + ": " + reply["error"].value("message", reply["error"].dump()));
      }
      return reply.value("result", json::object());
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Unavailable(method + ": chromium did not answer within 20 s");
    pollfd p{from_browser_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char chunk[65536];
    const ssize_t n = read(from_browser_, chunk, sizeof chunk);
    if (n == 0) return Unavailable(method + ": chromium closed its pipe (did it crash?)");
    if (n > 0) buffer_.append(chunk, static_cast<size_t>(n));
  }
}

Status Chromium::Navigate(const std::string &url) {
  auto r = Call("Page.navigate", {{"url", url}});
  if (!r.ok()) return r.status();
  if (r->contains("errorText")) return Unavailable(url + ": " + (*r)["errorText"].dump());
  if (!WaitFor("document.readyState === 'complete' && location.href !== "
               "'about:blank'",
               std::chrono::seconds(15))) {
    return Unavailable(url + " did not load within 15 s");
  }
  return Status::Ok();
}

Result<json> Chromium::Evaluate(const std::string &expression) {
  auto r = Call("Runtime.evaluate",
                {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
  if (!r.ok()) return r.status();
  if (r->contains("exceptionDetails")) {
    return Internal("exception in '" + expression.substr(0, 80) +
                    "': " + (*r)["exceptionDetails"].dump().substr(0, 400));
  }
  return (*r)["result"].value("value", json());
}

bool Chromium::WaitFor(const std::string &expression, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    auto v = Evaluate(expression);
    if (v.ok() && *v == true) return true;
    if (Clock::now() >= deadline) return false;
    // The page changes on its own (a fetch answered); a DevTools round trip is
    // the wait.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

Status Chromium::Screenshot(const std::string &path) {
  auto r = Call("Page.captureScreenshot", {{"format", "png"}, {"captureBeyondViewport", true}});
  if (!r.ok()) return r.status();
  const std::string data = (*r)["data"].get<std::string>();
  std::string png(data.size(), '\0');
  size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char *>(png.data()), png.size(), data.data(),
                        data.size(), nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL) != 0) {
    return Internal("the screenshot is not base64");
  }
  png.resize(len);
  std::ofstream(path, std::ios::binary) << png;
  return Status::Ok();
}

}  // namespace herd::testing
