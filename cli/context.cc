#include "cli/context.h"

#include <pwd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "common/config/config.h"

namespace herd::cli {

int ExitCodeFor(const Status& status) {
  if (status.ok()) return kExitOk;
  if (status.code() == Code::kNoSpace) return kExitNoSpace;
  return status.code() == Code::kUnavailable ? kExitUnreachable : kExitRejected;
}

Environment ProcessEnvironment() {
  Environment env;
  if (const char* c = std::getenv("HERD_CONFIG")) env.herd_config = c;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const size_t eq = entry.find('=');
    if (eq != std::string_view::npos && eq > 0) {
      env.vars.emplace(entry.substr(0, eq), entry.substr(eq + 1));
    }
  }
  std::error_code ec;
  env.cwd = std::filesystem::current_path(ec).string();
  if (struct passwd* pw = getpwuid(getuid())) {
    env.user = pw->pw_name;
  } else {
    env.user = std::to_string(getuid());
  }
  if (isatty(STDOUT_FILENO)) {
    struct winsize ws {};
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
      env.terminal_width = ws.ws_col;
    } else if (const char* cols = std::getenv("COLUMNS")) {
      env.terminal_width = std::atoi(cols);
    } else {
      env.terminal_width = 80;
    }
  }
  return env;
}

Context::Context(Environment env, std::ostream& out, std::ostream& err)
    : env_(std::move(env)), out_(out), err_(err) {
  options_.diagnostics = &err_;
}

int64_t Context::Now() const {
  if (env_.now) return env_.now();
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Controller* Context::controller(int* exit_code) {
  if (controller_) return controller_.get();
  if (!env_.connect) {
    *exit_code = UsageError("this build of herd cannot reach herd-ctld");
    return nullptr;
  }
  auto made = env_.connect(options_);
  if (!made.ok()) {
    err_ << "herd: " << made.status().message() << "\n";
    *exit_code =
        made.status().code() == Code::kUnavailable ? kExitUnreachable : kExitUsage;
    return nullptr;
  }
  controller_ = std::move(made).value();
  return controller_.get();
}

int Context::UsageError(const std::string& message) {
  err_ << "herd: " << message << "\n";
  return kExitUsage;
}

int Context::RequestError(const Status& status) {
  if (status.code() == Code::kUnavailable) {
    err_ << "herd: " << status.message() << "\n";
  } else {
    err_ << "herd: rejected: " << status.message() << "\n";
  }
  return ExitCodeFor(status);
}

Result<model::JobId> ParseJobId(const std::string& text) {
  model::JobId id = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || id <= 0) {
    return Invalid("invalid job id '" + text + "': use the number `herd submit` printed");
  }
  return id;
}

Result<std::vector<model::JobId>> ParseJobIds(const std::vector<std::string>& texts) {
  std::vector<model::JobId> ids;
  for (const auto& t : texts) {
    auto id = ParseJobId(t);
    if (!id.ok()) return id.status();
    ids.push_back(*id);
  }
  return ids;
}

Result<JobRef> ParseJobRef(const std::string& text) {
  JobRef ref;
  const auto under = text.find('_');
  auto id = ParseJobId(text.substr(0, under));
  if (!id.ok()) {
    return Invalid("invalid job id '" + text +
                   "': use the number `herd submit` printed, or ARRAY_INDEX for one job of an "
                   "array (12_3)");
  }
  ref.id = *id;
  if (under != std::string::npos) {
    const std::string index = text.substr(under + 1);
    auto [p, ec] = std::from_chars(index.data(), index.data() + index.size(), ref.index);
    if (index.empty() || ec != std::errc() || p != index.data() + index.size() || ref.index < 0) {
      return Invalid("invalid job id '" + text + "': ARRAY_INDEX takes a whole index (12_3)");
    }
  }
  return ref;
}

Result<std::vector<JobRef>> ParseJobRefs(const std::vector<std::string>& texts) {
  std::vector<JobRef> refs;
  for (const auto& t : texts) {
    auto ref = ParseJobRef(t);
    if (!ref.ok()) return ref.status();
    refs.push_back(*ref);
  }
  return refs;
}

Result<model::JobId> ResolveJobRef(Controller& controller, const JobRef& ref) {
  if (!ref.member()) return ref.id;
  proto::JobsRequest request;
  request.array = ref.id;
  request.all = true;
  request.brief = true;
  auto reply = controller.Jobs(request);
  if (!reply.ok()) return reply.status();
  for (const auto& j : reply->jobs) {
    if (j.spec.array_id == ref.id && j.spec.array_index == ref.index) return j.id;
  }
  const std::string name = std::to_string(ref.id) + "_" + std::to_string(ref.index);
  if (reply->jobs.empty()) return NotFound("job " + name + ": " + std::to_string(ref.id) + " is no array");
  return NotFound("job " + name + ": array " + std::to_string(ref.id) + " has no index " +
                  std::to_string(ref.index));
}

std::optional<model::JobId> Context::JobIdOf(const std::string& text, int* exit_code) {
  auto named = JobsOf({text}, exit_code);
  if (!named) return std::nullopt;
  return named->ids.empty() ? named->members.front() : named->ids.front();
}

std::optional<NamedJobs> Context::JobsOf(const std::vector<std::string>& texts, int* exit_code) {
  auto refs = ParseJobRefs(texts);
  if (!refs.ok()) {
    *exit_code = UsageError(refs.status().message());
    return std::nullopt;
  }
  NamedJobs named;
  for (size_t i = 0; i < refs->size(); ++i) {
    const JobRef& ref = (*refs)[i];
    if (!ref.member()) {
      named.ids.push_back(ref.id);
      continue;
    }
    Controller* c = controller(exit_code);
    if (c == nullptr) return std::nullopt;
    auto id = ResolveJobRef(*c, ref);
    if (!id.ok()) {
      *exit_code = RequestError(id.status());
      return std::nullopt;
    }
    named.members.push_back(*id);
    named.texts[*id] = texts[i];
  }
  return named;
}

Result<std::string> ChooseEndpoint(const std::vector<std::string>& listen,
                                   const std::string& override) {
  std::string endpoint = override;
  if (endpoint.empty()) {
    if (listen.empty()) {
      return Invalid("no controller endpoint: set [controller] listen in the config or pass "
                     "--controller tcp://HOST:PORT");
    }
    endpoint = listen.front();
  }
  if (endpoint.rfind("tcp://", 0) != 0 && endpoint.rfind("ipc://", 0) != 0) {
    return Invalid("invalid controller endpoint '" + endpoint +
                   "': use tcp://HOST:PORT or ipc:///PATH");
  }
  return config::LocalEndpoint(endpoint);
}

}  // namespace herd::cli
