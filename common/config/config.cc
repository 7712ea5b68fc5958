#include "common/config/config.h"

#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>

#include "common/model/fleet.h"
#include "common/model/job_class.h"
#include "common/model/placement.h"
#include "common/model/units.h"

namespace herd::config {
namespace {

using Region = toml::source_region;

// Bounds that keep every sum of quotas and every unit conversion far from int64 overflow.
constexpr int64_t kMaxGpus = 1'000'000'000;
constexpr int64_t kMaxCount = 1'000'000'000'000;
constexpr int64_t kMaxSeconds = int64_t{100} * 366 * 86400;
constexpr int kMaxPriority = 1'000'000;
constexpr int64_t kMaxJobsPage = 20'000;  // a page of full jobs stays well within a message
constexpr int64_t kMaxSubmitLimit = int64_t{1} << 40;  // a [controller] max_* beyond this is a typo

const char* const kTopLevelKeys =
    "controller, auth, scheduler, classes, departments, projects, nodes, node, containers, "
    "admins, default_project, gpu_types, pools, web, history";

std::string TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a decimal number";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date or time";
  }
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// Names of queues, classes and nodes appear in tables, logs and command lines: keep them plain.
bool IsPlainName(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

// The unit parsers in common/model do not guard against int64 overflow on absurd inputs, so
// numbers longer than 9 digits are refused before they get there.
bool HasLongNumber(std::string_view s) {
  int run = 0;
  for (char c : s) {
    run = std::isdigit(static_cast<unsigned char>(c)) ? run + 1 : 0;
    if (run > 9) return true;
  }
  return s.size() > 32;
}

bool IsLoopbackEndpoint(std::string_view ep) {
  if (ep.starts_with("ipc://")) return true;
  std::string_view host = ep.substr(6);
  host = host.substr(0, host.rfind(':'));
  return host.starts_with("127.") || host == "localhost" || host == "[::1]";
}

bool IsValidEndpoint(std::string_view ep) {
  if (ep.starts_with("ipc://")) return ep.size() > 6;
  if (!ep.starts_with("tcp://")) return false;
  const size_t colon = ep.rfind(':');
  if (colon <= 6 || colon + 1 == ep.size()) return false;
  std::string_view port = ep.substr(colon + 1);
  return port == "*" ||
         std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Built-in classes (model::kBuiltinClasses), before any [classes.X] override.
std::map<std::string, ClassConfig> BuiltinClasses() {
  std::map<std::string, ClassConfig> classes;
  for (const model::BuiltinClass& b : model::kBuiltinClasses) {
    ClassConfig& c = classes[b.name];
    c.name = b.name;
    c.priority = b.priority;
    c.preemptible = b.preemptible;
    c.max_time_s = b.max_time_s;
    c.min_runtime_s = b.min_runtime_s;
    c.idle_timeout_s = b.idle_timeout_s;
    c.within_quota_only = b.within_quota_only;
    c.idle_input_timeout_s = b.idle_input_timeout_s;
  }
  return classes;
}

// A queue as read from its table, with the places later checks point at.
struct RawQueue {
  QueueConfig q;
  std::string path;  // "projects.vision"
  Region at, parent_at, deserved_at, limit_at;
  std::array<bool, 3> deserved_given{};
  int depth = 0;
};

// Reads one parsed TOML document into a Config. Each method returns the first error found.
class Parser {
 public:
  explicit Parser(std::string_view source) : source_(source) {}

  Result<Config> Parse(const toml::table& root) {
    config_.classes = BuiltinClasses();
    bool default_given = false;
    Region default_at;
    std::vector<RawQueue> queues;
    for (auto&& [key, value] : root) {
      const std::string k(key.str());
      const Region& at = key.source();
      Status s;
      if (k == "controller") {
        s = Section(value, at, k, [&](auto&&... a) { return Controller(a...); });
      } else if (k == "auth") {
        s = Section(value, at, k, [&](auto&&... a) { return Auth(a...); });
      } else if (k == "scheduler") {
        s = Section(value, at, k, [&](auto&&... a) { return Scheduler(a...); });
      } else if (k == "containers") {
        s = Section(value, at, k, [&](auto&&... a) { return Containers(a...); });
      } else if (k == "node") {
        s = Section(value, at, k, [&](auto&&... a) { return NodeDaemon(a...); });
      } else if (k == "web") {
        s = Section(value, at, k, [&](auto&&... a) { return Web(a...); });
      } else if (k == "history") {
        s = Section(value, at, k, [&](auto&&... a) { return History(a...); });
      } else if (k == "classes") {
        s = Named(value, at, k, [&](auto&&... a) { return Class(a...); });
      } else if (k == "nodes") {
        s = Named(value, at, k, [&](auto&&... a) { return Node(a...); });
      } else if (k == "pools") {
        s = Named(value, at, k, [&](auto&&... a) { return Pool(a...); });
      } else if (k == "gpu_types") {
        s = Section(value, at, k, [&](auto&&... a) { return GpuTypes(a...); });
      } else if (k == "departments" || k == "projects") {
        s = Named(value, at, k,
                  [&](const toml::table& t, const Region& r, const std::string& name,
                      const std::string& path) {
                    return Queue(t, r, name, path, k == "projects", &queues);
                  });
      } else if (k == "admins") {
        s = Strings(value, at, k, &config_.admins);
      } else if (k == "default_project") {
        s = String(value, at, k, &config_.default_project);
        default_given = true;
        default_at = at;
      } else {
        Warn(at, "unknown top-level key " + Quote(k) + " (ignored); known keys: " + kTopLevelKeys);
      }
      if (!s.ok()) return s;
    }
    HERD_RETURN_IF_ERROR(CheckAuth());
    if (queues.empty()) {
      RawQueue d;
      d.q.name = "default";
      d.q.is_project = true;
      d.q.members = {"*"};
      d.deserved_given = {true, true, true};
      queues.push_back(std::move(d));
    }
    HERD_RETURN_IF_ERROR(BuildTree(queues));
    HERD_RETURN_IF_ERROR(CheckQuotaPools());
    if (!FindQueueIn(config_.default_project, true)) {
      if (default_given) {
        return Error(default_at, "default_project",
                     Quote(config_.default_project) + " is not a configured project");
      }
      config_.default_project.clear();
    }
    return std::move(config_);
  }

 private:
  using Handler = std::function<Status(const toml::table&, const Region&, const std::string&,
                                       const std::string&)>;

  std::string Where(const Region& r) const {
    return source_ + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
  }
  Status Error(const Region& r, std::string_view path, std::string_view msg) const {
    return Invalid(Where(r) + ": " + std::string(path) + ": " + std::string(msg));
  }
  void Warn(const Region& r, std::string msg) {
    config_.warnings.push_back(Where(r) + ": " + std::move(msg));
  }
  void UnknownKey(const Region& r, const std::string& path) {
    Warn(r, "unknown key " + Quote(path) + " (ignored)");
  }

  // [name] holding plain keys.
  Status Section(const toml::node& v, const Region& at, const std::string& path,
                 const Handler& body) {
    const toml::table* t = v.as_table();
    if (!t) return Error(at, path, "expected a table [" + path + "], got " + TypeName(v));
    return body(*t, at, path, path);
  }
  // [name.X] tables, one per named thing.
  Status Named(const toml::node& v, const Region& at, const std::string& path,
               const Handler& body) {
    const toml::table* t = v.as_table();
    if (!t) return Error(at, path, "expected tables [" + path + ".NAME], got " + TypeName(v));
    for (auto&& [key, value] : *t) {
      const std::string name(key.str());
      const std::string sub = path + "." + name;
      if (!IsPlainName(name)) {
        return Error(key.source(), sub,
                     Quote(name) +
                         " is not a valid name; use letters, digits, '-', '_' or '.' "
                         "(at most 64)");
      }
      const toml::table* entry = value.as_table();
      if (!entry) return Error(key.source(), sub, "expected a table, got " + TypeName(value));
      HERD_RETURN_IF_ERROR(body(*entry, key.source(), name, sub));
    }
    return Status::Ok();
  }

  Status String(const toml::node& v, const Region& at, const std::string& path, std::string* out) {
    const auto* s = v.as_string();
    if (!s) return Error(at, path, "expected a string, got " + TypeName(v));
    *out = s->get();
    return Status::Ok();
  }
  Status Bool(const toml::node& v, const Region& at, const std::string& path, bool* out) {
    const auto* b = v.as_boolean();
    if (!b) return Error(at, path, "expected true or false, got " + TypeName(v));
    *out = b->get();
    return Status::Ok();
  }
  // A string or an array of non-empty strings.
  Status Strings(const toml::node& v, const Region& at, const std::string& path,
                 std::vector<std::string>* out) {
    out->clear();
    if (const auto* s = v.as_string()) {
      out->push_back(s->get());
    } else if (const auto* a = v.as_array()) {
      for (const toml::node& e : *a) {
        const auto* s = e.as_string();
        if (!s) return Error(e.source(), path, "expected strings, got " + TypeName(e));
        out->push_back(s->get());
      }
    } else {
      return Error(at, path, "expected an array of strings, got " + TypeName(v));
    }
    for (const std::string& s : *out) {
      if (s.empty()) return Error(at, path, "an entry is empty");
    }
    return Status::Ok();
  }
  Status Int(const toml::node& v, const Region& at, const std::string& path, int64_t lo, int64_t hi,
             int64_t* out) {
    const auto* i = v.as_integer();
    if (!i || i->get() < lo || i->get() > hi) {
      return Error(at, path,
                   "expected an integer from " + std::to_string(lo) + " to " + std::to_string(hi) +
                       (i ? ", got " + std::to_string(i->get()) : ", got " + TypeName(v)));
    }
    *out = i->get();
    return Status::Ok();
  }
  // Integers are seconds; strings are model::ParseDurationSeconds forms. Where `allow_zero`,
  // zero in any form (0, "0", "0s", "0h0m") means none; elsewhere every form of it is refused
  // with the same message.
  Status Duration(const toml::node& v, const Region& at, const std::string& path, bool allow_zero,
                  int64_t* seconds) {
    const std::string expected = std::string("expected a duration such as \"30s\", \"10m\" or ") +
                                 "\"12h\" (an integer is seconds)" +
                                 (allow_zero ? ", or 0 for none" : "");
    if (const auto* i = v.as_integer()) {
      const int64_t n = i->get();
      if (n < 0 || (n == 0 && !allow_zero) || n > kMaxSeconds) {
        return Error(at, path, expected + ", got " + std::to_string(n));
      }
      *seconds = n;
      return Status::Ok();
    }
    const auto* s = v.as_string();
    if (!s) return Error(at, path, expected + ", got " + TypeName(v));
    const std::string& text = s->get();
    if (HasLongNumber(text)) return Error(at, path, Quote(text) + " is too long a duration");
    Result<int64_t> r = model::ParseDurationSecondsOrZero(text);
    if (!r.ok()) return Error(at, path, r.status().message());
    if (*r == 0 && !allow_zero) return Error(at, path, expected + ", got " + Quote(text));
    if (*r > kMaxSeconds) return Error(at, path, Quote(text) + " is more than 100 years");
    *seconds = *r;
    return Status::Ok();
  }
  // A message size in MiB ("4M", or a bare number of MiB), 1 MiB up to the protocol's limit.
  Status MessageSize(const toml::node& v, const Region& at, const std::string& path,
                     int64_t* mib) {
    constexpr int64_t kMaxMib = kMaxMessageMib;
    const std::string range = "expected a size from \"1M\" to \"" + std::to_string(kMaxMib) + "M\"";
    int64_t n = 0;
    if (const auto* i = v.as_integer()) {
      n = i->get();
    } else if (const auto* s = v.as_string(); s && !HasLongNumber(s->get())) {
      Result<int64_t> r = model::ParseSizeMiB(s->get());
      if (!r.ok()) return Error(at, path, r.status().message() + "; " + range);
      n = *r;
    } else {
      return Error(at, path, range + ", got " + TypeName(v));
    }
    if (n < 1 || n > kMaxMib) return Error(at, path, range);
    *mib = n;
    return Status::Ok();
  }
  // Like Duration, in milliseconds, also accepting "500ms"; never zero.
  Status Millis(const toml::node& v, const Region& at, const std::string& path, int64_t* ms) {
    if (const auto* s = v.as_string(); s && s->get().ends_with("ms")) {
      std::string_view digits = std::string_view(s->get()).substr(0, s->get().size() - 2);
      int64_t n = 0;
      const bool ok =
          !digits.empty() && digits.size() <= 9 &&
          std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (ok) n = std::stoll(std::string(digits));
      if (!ok || n == 0) {
        return Error(at, path, "expected a duration such as \"500ms\", \"2s\" or \"1m\"");
      }
      *ms = n;
      return Status::Ok();
    }
    int64_t seconds = 0;
    HERD_RETURN_IF_ERROR(Duration(v, at, path, false, &seconds));
    *ms = seconds * 1000;
    return Status::Ok();
  }
  // A GPU count: 8, 0.25 or "1500m".
  Status GpuAmount(const toml::node& value, const Region& kat, const std::string& p, int64_t* milli) {
    const auto* i = value.as_integer();
    if (i) {
      if (i->get() > kMaxGpus) return Error(kat, p, "more GPUs than any cluster has");
      *milli = i->get() * 1000;
    } else if (const auto* f = value.as_floating_point()) {
      const double x = f->get();
      if (!std::isfinite(x) || x < 0 || x > kMaxGpus) {
        return Error(kat, p, "expected a GPU count from 0 (0.25 for a quarter GPU)");
      }
      const double thousandths = x * 1000;
      if (std::fabs(thousandths - std::round(thousandths)) > 1e-6) {
        return Error(kat, p, "GPU counts have at most three decimals");
      }
      *milli = std::llround(thousandths);
    } else if (const auto* s = value.as_string()) {
      if (HasLongNumber(s->get())) return Error(kat, p, "too many GPUs");
      Result<int64_t> r = model::ParseGpuMilli(s->get());
      if (!r.ok()) return Error(kat, p, r.status().message());
      *milli = *r;
    } else {
      return Error(kat, p, "expected a GPU count, got " + TypeName(value));
    }
    return Status::Ok();
  }

  // { gpu = 8, cpu = 128, memory = "1T" }. A limit starts unlimited, deserved starts at zero.
  // With `typed`: also "gpu.TYPE" = N, GPUs of one type, into (*typed)[TYPE], and
  // "pool.NAME" = N, GPUs of one pool's nodes, into (*pooled)[NAME].
  Status ResourcesValue(const toml::node& v, const Region& at, const std::string& path,
                        bool is_limit, model::Resources* out, std::array<bool, 3>* given,
                        std::map<std::string, int64_t>* typed = nullptr,
                        std::map<std::string, int64_t>* pooled = nullptr) {
    const toml::table* t = v.as_table();
    if (!t) {
      return Error(
          at, path,
          "expected a table such as { gpu = 8, cpu = 64, memory = \"512G\" }, got " + TypeName(v));
    }
    const int64_t start = is_limit ? kUnlimited : 0;
    *out = {start, start, start};
    for (auto&& [key, value] : *t) {
      const std::string k(key.str());
      const std::string p = path + "." + k;
      const Region& kat = key.source();
      const auto* i = value.as_integer();
      if (i && i->get() < 0) return Error(kat, p, "must not be negative");
      if (k == "gpu") {
        (*given)[0] = true;
        HERD_RETURN_IF_ERROR(GpuAmount(value, kat, p, &out->gpu_milli));
      } else if (k.starts_with("gpu.") && typed != nullptr) {
        const std::string type = k.substr(4);
        if (!model::IsGpuTypeName(type)) {
          return Error(kat, p,
                       "not a GPU type: " + Quote(type) +
                           "; a type is 1 to 64 of a-z 0-9 . _ - (herd nodes shows each GPU's)");
        }
        HERD_RETURN_IF_ERROR(GpuAmount(value, kat, p, &(*typed)[type]));
      } else if (k.starts_with("pool.") && pooled != nullptr) {
        const std::string pool = k.substr(5);
        if (pool.empty()) return Error(kat, p, "name a pool: \"pool.NAME\" ([pools.NAME])");
        quota_pool_at_.try_emplace(pool, kat);
        HERD_RETURN_IF_ERROR(GpuAmount(value, kat, p, &(*pooled)[pool]));
      } else if (k == "cpu") {
        (*given)[1] = true;
        HERD_RETURN_IF_ERROR(Int(value, kat, p, 0, kMaxCount, &out->cpus));
      } else if (k == "memory") {
        (*given)[2] = true;
        if (i) {
          if (i->get() > kMaxCount) return Error(kat, p, "more memory than any cluster has");
          out->memory_mib = i->get();  // a bare number is MiB, as on the command line
        } else if (const auto* s = value.as_string()) {
          if (HasLongNumber(s->get())) return Error(kat, p, "more memory than any cluster has");
          Result<int64_t> r = model::ParseSizeMiB(s->get());
          if (!r.ok()) return Error(kat, p, r.status().message());
          if (*r > kMaxCount) return Error(kat, p, "more memory than any cluster has");
          out->memory_mib = *r;
        } else {
          return Error(kat, p,
                       "expected a size such as \"512G\" or \"1T\", got " + TypeName(value));
        }
      } else {
        return Error(
            kat, p,
            "unknown resource " + Quote(k) +
                (typed != nullptr
                     ? "; use gpu, \"gpu.TYPE\" (GPUs of one type), \"pool.NAME\" (GPUs of "
                       "one pool's nodes), cpu or memory"
                     : "; use gpu, cpu or memory"));
      }
    }
    return Status::Ok();
  }

  // The [controller] limit named `key` (max_*), or nullptr.
  int64_t* SubmitLimit(const std::string& key) {
    ControllerConfig& c = config_.controller;
    const std::pair<const char*, int64_t*> limits[] = {
        {"max_name_bytes", &c.max_name_bytes},       {"max_arg_bytes", &c.max_arg_bytes},
        {"max_command_bytes", &c.max_command_bytes}, {"max_env_entries", &c.max_env_entries},
        {"max_env_bytes", &c.max_env_bytes},         {"max_spec_bytes", &c.max_spec_bytes},
        {"max_submit_bytes", &c.max_submit_bytes},
        {"max_pending_per_user", &c.max_pending_per_user}};
    for (const auto& [name, field] : limits) {
      if (key == name) return field;
    }
    return nullptr;
  }

  Status Controller(const toml::table& t, const Region&, const std::string&, const std::string&) {
    for (auto&& [key, v] : t) {
      const std::string k(key.str()), p = "controller." + k;
      const Region& at = key.source();
      if (k == "listen") {
        HERD_RETURN_IF_ERROR(Strings(v, at, p, &config_.controller.listen));
        if (config_.controller.listen.empty()) {
          return Error(at, p, "needs at least one endpoint, e.g. [\"tcp://0.0.0.0:6817\"]");
        }
        for (const std::string& ep : config_.controller.listen) {
          if (!IsValidEndpoint(ep)) {
            return Error(at, p,
                         Quote(ep) + " is not an endpoint; use tcp://HOST:PORT or ipc://PATH");
          }
        }
        listen_at_ = at;
      } else if (k == "state_dir") {
        HERD_RETURN_IF_ERROR(String(v, at, p, &config_.controller.state_dir));
        if (config_.controller.state_dir.empty()) return Error(at, p, "must not be empty");
      } else if (k == "log_file") {
        HERD_RETURN_IF_ERROR(String(v, at, p, &config_.controller.log_file));
      } else if (k == "user") {
        HERD_RETURN_IF_ERROR(String(v, at, p, &config_.controller.user));
      } else if (k == "allow_root_jobs") {
        HERD_RETURN_IF_ERROR(Bool(v, at, p, &config_.controller.allow_root_jobs));
      } else if (k == "jobs_page_size") {
        HERD_RETURN_IF_ERROR(Int(v, at, p, 1, kMaxJobsPage, &config_.controller.jobs_page_size));
      } else if (k == "private_commands") {
        HERD_RETURN_IF_ERROR(Bool(v, at, p, &config_.controller.private_commands));
      } else if (int64_t* limit = SubmitLimit(k); limit != nullptr) {
        HERD_RETURN_IF_ERROR(Int(v, at, p, 1, kMaxSubmitLimit, limit));
      } else if (k == "max_message_size") {
        HERD_RETURN_IF_ERROR(MessageSize(v, at, p, &config_.controller.max_message_mib));
      } else if (k == "max_connections") {
        HERD_RETURN_IF_ERROR(Int(v, at, p, 16, 1 << 20, &config_.controller.max_connections));
      } else if (k == "message_timeout") {
        HERD_RETURN_IF_ERROR(Millis(v, at, p, &config_.controller.message_timeout_ms));
        if (config_.controller.message_timeout_ms < 100) {
          return Error(at, p, "must be at least 100ms");
        }
      } else if (k == "min_job_age") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, true, &config_.controller.min_job_age_s));
      } else if (k == "job_retention") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, true, &config_.controller.job_retention_s));
        if (config_.controller.job_retention_s > 0 && config_.controller.job_retention_s < 86400) {
          return Error(at, p, "must be at least \"1d\" (or 0 to keep job records forever)");
        }
      } else {
        UnknownKey(at, p);
      }
    }
    return Status::Ok();
  }

  Status Auth(const toml::table& t, const Region&, const std::string&, const std::string&) {
    for (auto&& [key, v] : t) {
      const std::string k(key.str()), p = "auth." + k;
      const Region& at = key.source();
      if (k == "method") {
        HERD_RETURN_IF_ERROR(String(v, at, p, &config_.auth.method));
        if (config_.auth.method != "munge" && config_.auth.method != "none") {
          return Error(at, p, Quote(config_.auth.method) + " is not a method; use munge or none");
        }
        method_at_ = at;
      } else if (k == "munge_socket") {
        HERD_RETURN_IF_ERROR(String(v, at, p, &config_.auth.munge_socket));
      } else {
        UnknownKey(at, p);
      }
    }
    return Status::Ok();
  }

  // Pools named in quotas exist ([pools.NAME], or a node's `pool` label) and share no node, so
  // that each GPU counts in one pool's quota. Checked on every node herd.toml names: in
  // [nodes.NAME], or by name in a quota pool's nodes.
  Status CheckQuotaPools() const {
    const std::vector<std::string> pools = config_.QuotaPools();
    for (const std::string& pool : pools) {
      if (config_.pools.count(pool)) continue;
      bool labelled = false;
      for (const auto& [name, n] : config_.nodes) {
        auto label = n.labels.find("pool");
        labelled = labelled || (label != n.labels.end() && label->second == pool);
      }
      if (labelled) continue;
      std::string known;
      for (const auto& [name, p] : config_.pools) known += (known.empty() ? "" : ", ") + name;
      return Error(quota_pool_at_.at(pool), "pool." + pool,
                   "no pool " + Quote(pool) + " is defined (pools: " +
                       (known.empty() ? std::string("none") : known) + "): add [pools." + pool +
                       "], give nodes the label pool = " + Quote(pool) + ", or fix the name");
    }
    if (pools.size() < 2) return Status::Ok();
    std::set<std::string> names;
    for (const auto& [name, n] : config_.nodes) names.insert(name);
    for (const std::string& pool : pools) {
      for (const std::string& name : config_.PoolSelector(pool).names) {
        if (name.find_first_of("*?") == std::string::npos) names.insert(name);
      }
    }
    for (const std::string& node : names) {
      std::string first;
      for (const std::string& pool : pools) {
        if (!config_.InPool(pool, node)) continue;
        if (first.empty()) {
          first = pool;
          continue;
        }
        const Region& at = quota_pool_at_.at(pool);
        return Error(at, "pool." + pool,
                     "node " + Quote(node) + " is in pools " + Quote(first) + " and " +
                         Quote(pool) + ", and both have quotas; a GPU counts in one pool's " +
                         "quota: change [pools." + first + "] or [pools." + pool +
                         "] so that they share no node, or drop the quota on one of them");
      }
    }
    return Status::Ok();
  }

  // Without credentials anyone who reaches the socket can act as any user.
  Status CheckAuth() {
    if (config_.auth.method != "none") return Status::Ok();
    for (const std::string& ep : config_.controller.listen) {
      if (!IsLoopbackEndpoint(ep)) {
        return Error(listen_at_.begin.line ? listen_at_ : method_at_, "auth.method",
                     "'none' trusts every caller, so the controller may listen only on ipc:// "
                     "or loopback tcp (127.x, localhost); " +
                         Quote(ep) + " is reachable from other hosts; use method = \"munge\"");
      }
    }
    // The same for herd-noded's sessions (herd run, attach, exec): by default they then listen
    // on loopback only; a session_listen other hosts can reach is refused.
    std::string& sessions = config_.node.session_listen;
    if (!sessions.empty() && !IsLoopbackEndpoint(sessions)) {
      if (!session_listen_set_) {
        sessions = "tcp://127.0.0.1:0";
      } else {
        return Error(session_listen_at_, "node.session_listen",
                     "'none' trusts every caller, so sessions may listen only on ipc:// or "
                     "loopback tcp (127.x, localhost); " +
                         Quote(sessions) + " is reachable from other hosts; use [auth] method = "
                         "\"munge\"");
      }
    }
    return Status::Ok();
  }

  Status Scheduler(const toml::table& t, const Region&, const std::string&, const std::string&) {
    SchedulerConfig& s = config_.scheduler;
    for (auto&& [key, v] : t) {
      const std::string k(key.str()), p = "scheduler." + k;
      const Region& at = key.source();
      if (k == "placement") {
        HERD_RETURN_IF_ERROR(String(v, at, p, &s.placement));
        if (std::none_of(std::begin(model::kPlacementPolicies), std::end(model::kPlacementPolicies),
                         [&](const model::PlacementPolicy& x) { return s.placement == x.name; })) {
          return Error(at, p,
                       Quote(s.placement) + " is not a placement; use " + model::PlacementNames());
        }
      } else if (k == "preempt_grace") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, true, &s.preempt_grace_s));
      } else if (k == "reserve_after") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, true, &s.reserve_after_s));
      } else if (k == "reclaim_backoff") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, true, &s.reclaim_backoff_s));
      } else if (k == "cycle_interval") {
        HERD_RETURN_IF_ERROR(Millis(v, at, p, &s.cycle_interval_ms));
      } else if (k == "heartbeat_interval") {
        HERD_RETURN_IF_ERROR(Millis(v, at, p, &s.heartbeat_interval_ms));
      } else if (k == "node_timeout") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, false, &s.node_timeout_s));
      } else if (k == "kill_grace") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, true, &s.kill_grace_s));
      } else if (k == "fair_share_half_life") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, true, &s.fair_share_half_life_s));
      } else {
        UnknownKey(at, p);
      }
    }
    return Status::Ok();
  }

  // A size in MiB: an integer (MiB) or a string such as "512M", "1G"; 0 = none.
  Status SizeMiB(const toml::node& v, const Region& at, const std::string& path, int64_t* mib) {
    const std::string expected = "expected a size such as \"64M\" or \"1G\" (an integer is MiB)";
    if (const auto* i = v.as_integer()) {
      if (i->get() < 0 || i->get() > kMaxCount) {
        return Error(at, path, expected + ", got " + std::to_string(i->get()));
      }
      *mib = i->get();
      return Status::Ok();
    }
    const auto* s = v.as_string();
    if (!s) return Error(at, path, expected + ", got " + TypeName(v));
    if (HasLongNumber(s->get())) return Error(at, path, Quote(s->get()) + " is too large a size");
    Result<int64_t> r = model::ParseSizeMiB(s->get());
    if (!r.ok()) return Error(at, path, r.status().message());
    *mib = *r;
    return Status::Ok();
  }

  Status NodeDaemon(const toml::table& t, const Region&, const std::string&, const std::string&) {
    for (auto&& [key, v] : t) {
      const std::string k(key.str()), p = "node." + k;
      const Region& at = key.source();
      if (k == "max_log_size") {
        HERD_RETURN_IF_ERROR(SizeMiB(v, at, p, &config_.node.max_log_mib));
      } else if (k == "min_free_space") {
        HERD_RETURN_IF_ERROR(SizeMiB(v, at, p, &config_.node.min_free_space_mib));
      } else if (k == "start_timeout") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, false, &config_.node.start_timeout_s));
      } else if (k == "max_image_size") {
        HERD_RETURN_IF_ERROR(SizeMiB(v, at, p, &config_.node.max_image_mib));
      } else if (k == "session_listen") {
        const auto* str = v.as_string();
        if (!str) return Error(at, p, "expected a string such as \"tcp://0.0.0.0:0\", got " + TypeName(v));
        config_.node.session_listen = str->get();
        session_listen_at_ = at;
        session_listen_set_ = true;
      } else {
        UnknownKey(at, p);
      }
    }
    return Status::Ok();
  }

  Status History(const toml::table& t, const Region& r, const std::string&, const std::string&) {
    HistoryConfig& h = config_.history;
    for (auto&& [key, v] : t) {
      const std::string k(key.str()), p = "history." + k;
      const Region& at = key.source();
      if (k == "interval") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, true, &h.interval_s));
      } else if (k == "raw_retention") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, false, &h.raw_retention_s));
      } else if (k == "ten_minute_retention") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, false, &h.ten_minute_retention_s));
      } else if (k == "hourly_retention") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, false, &h.hourly_retention_s));
      } else {
        UnknownKey(at, p);
      }
    }
    // A restart rebuilds the open 10-minute period from the samples and the open hour from the
    // 10-minute averages: each must still be there.
    if (h.raw_retention_s < 600 || h.raw_retention_s < h.interval_s) {
      return Error(r, "history.raw_retention", "must be at least 10m and at least the interval");
    }
    if (h.ten_minute_retention_s < 3600) {
      return Error(r, "history.ten_minute_retention", "must be at least 1h");
    }
    return Status::Ok();
  }

  Status Web(const toml::table& t, const Region& table, const std::string&, const std::string&) {
    for (auto&& [key, v] : t) {
      const std::string k(key.str()), p = "web." + k;
      const Region& at = key.source();
      if (k == "listen" || k == "metrics_listen") {
        std::string& address = k == "listen" ? config_.web.listen : config_.web.metrics_listen;
        HERD_RETURN_IF_ERROR(String(v, at, p, &address));
        if (address.empty() && k == "metrics_listen") continue;
        if (auto hp = SplitHostPort(address); !hp.ok()) {
          return Error(at, p, hp.status().message());
        }
      } else if (k == "user") {
        HERD_RETURN_IF_ERROR(String(v, at, p, &config_.web.user));
      } else if (k == "log_file") {
        HERD_RETURN_IF_ERROR(String(v, at, p, &config_.web.log_file));
      } else if (k == "url") {
        HERD_RETURN_IF_ERROR(String(v, at, p, &config_.web.url));
        const std::string& u = config_.web.url;
        if (!u.empty() && u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0) {
          return Error(at, p, "expected an address such as \"https://herd.example.org:9180\"");
        }
      } else if (k == "login_token_ttl") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, false, &config_.web.login_token_s));
      } else if (k == "session_ttl") {
        HERD_RETURN_IF_ERROR(Duration(v, at, p, false, &config_.web.session_s));
      } else if (k == "tls_cert") {
        HERD_RETURN_IF_ERROR(String(v, at, p, &config_.web.tls_cert));
      } else if (k == "tls_key") {
        HERD_RETURN_IF_ERROR(String(v, at, p, &config_.web.tls_key));
      } else {
        UnknownKey(at, p);
      }
    }
    if (config_.web.tls_cert.empty() != config_.web.tls_key.empty()) {
      return Error(table, "web", "tls_cert and tls_key go together: set both (HTTPS) or neither");
    }
    // Login forms, session cookies and API tokens cross `listen`: in plain HTTP
    // only on this host.
    auto listen = SplitHostPort(config_.web.listen);
    if (config_.web.tls_cert.empty() && listen.ok() && !listen->first.starts_with("127.") &&
        listen->first != "localhost" && listen->first != "::1") {
      return Error(table, "web.listen",
                   Quote(config_.web.listen) +
                       " is not a loopback address, and tokens and session "
                       "cookies must not "
                       "cross the network in plain HTTP: set [web] tls_cert "
                       "and tls_key (HTTPS), "
                       "or listen on 127.0.0.1 behind a TLS proxy");
    }
    return Status::Ok();
  }

  Status Containers(const toml::table& t, const Region&, const std::string&, const std::string&) {
    for (auto&& [key, v] : t) {
      const std::string k(key.str()), p = "containers." + k;
      const Region& at = key.source();
      if (k == "allowed_volumes") {
        HERD_RETURN_IF_ERROR(Strings(v, at, p, &config_.volume_prefixes));
        for (const std::string& prefix : config_.volume_prefixes) {
          if (prefix[0] != '/') {
            return Error(at, p, Quote(prefix) + " is not an absolute path prefix");
          }
        }
      } else {
        UnknownKey(at, p);
      }
    }
    return Status::Ok();
  }

  Status Class(const toml::table& t, const Region& at, const std::string& name,
               const std::string& path) {
    auto [it, is_new] = config_.classes.try_emplace(name);
    ClassConfig& c = it->second;
    c.name = name;
    bool quota_only_given = false;
    bool priority_given = false;
    for (auto&& [key, v] : t) {
      const std::string k(key.str()), p = path + "." + k;
      const Region& kat = key.source();
      if (k == "priority") {
        int64_t n = 0;
        HERD_RETURN_IF_ERROR(Int(v, kat, p, 0, kMaxPriority, &n));
        c.priority = static_cast<int>(n);
        priority_given = true;
      } else if (k == "preemptible") {
        HERD_RETURN_IF_ERROR(Bool(v, kat, p, &c.preemptible));
      } else if (k == "max_time") {
        HERD_RETURN_IF_ERROR(Duration(v, kat, p, true, &c.max_time_s));
      } else if (k == "min_runtime") {
        HERD_RETURN_IF_ERROR(Duration(v, kat, p, true, &c.min_runtime_s));
      } else if (k == "idle_timeout") {
        HERD_RETURN_IF_ERROR(Duration(v, kat, p, true, &c.idle_timeout_s));
      } else if (k == "idle_input_timeout") {
        HERD_RETURN_IF_ERROR(Duration(v, kat, p, true, &c.idle_input_timeout_s));
      } else if (k == "within_quota_only") {
        HERD_RETURN_IF_ERROR(Bool(v, kat, p, &c.within_quota_only));
        quota_only_given = true;
      } else {
        return Error(kat, p,
                     "unknown class key " + Quote(k) +
                         "; use priority, preemptible, max_time, min_runtime, idle_timeout, "
                         "idle_input_timeout or within_quota_only");
      }
    }
    if (is_new && !priority_given) {
      return Error(at, path,
                   "a new class needs a priority (an integer; the built-ins are inference 125, "
                   "interactive 100, train 50)");
    }
    if (!quota_only_given) c.within_quota_only = !c.preemptible;
    return Status::Ok();
  }

  Status Node(const toml::table& t, const Region&, const std::string& name,
              const std::string& path) {
    NodeConfig& n = config_.nodes[name];
    n.name = name;
    for (auto&& [key, v] : t) {
      const std::string k(key.str()), p = path + "." + k;
      const Region& at = key.source();
      if (k != "labels") {
        UnknownKey(at, p);
        continue;
      }
      HERD_RETURN_IF_ERROR(Labels(v, at, p, &n.labels));
    }
    return Status::Ok();
  }

  // A table of string labels, such as { rack = "r1" }.
  Status Labels(const toml::node& v, const Region& at, const std::string& path,
                std::map<std::string, std::string>* out) {
    const toml::table* labels = v.as_table();
    if (!labels) {
      return Error(at, path, "expected a table such as { rack = \"r1\" }, got " + TypeName(v));
    }
    for (auto&& [lk, lv] : *labels) {
      HERD_RETURN_IF_ERROR(String(lv, lk.source(), path + "." + std::string(lk.str()),
                                  &(*out)[std::string(lk.str())]));
    }
    return Status::Ok();
  }

  Status Pool(const toml::table& t, const Region& at, const std::string& name,
              const std::string& path) {
    PoolConfig& pool = config_.pools[name];
    pool.name = name;
    for (auto&& [key, v] : t) {
      const std::string k(key.str()), p = path + "." + k;
      const Region& kat = key.source();
      if (k == "nodes") {
        std::vector<std::string> lists;
        HERD_RETURN_IF_ERROR(Strings(v, kat, p, &lists));
        for (const std::string& list : lists) {
          if (list.find_first_of("*?") != std::string::npos) {
            pool.nodes.push_back(list);
            continue;
          }
          auto names = model::ExpandHostList(list);
          if (!names.ok()) return Error(kat, p, names.status().message());
          pool.nodes.insert(pool.nodes.end(), names->begin(), names->end());
        }
      } else if (k == "labels") {
        HERD_RETURN_IF_ERROR(Labels(v, kat, p, &pool.labels));
      } else {
        return Error(kat, p, "unknown pool key " + Quote(k) + "; use nodes or labels");
      }
    }
    if (pool.nodes.empty() && pool.labels.empty()) {
      return Error(at, path, "a pool needs nodes (names such as ws[01-04] or dgx*) or labels");
    }
    return Status::Ok();
  }

  Status GpuTypes(const toml::table& t, const Region&, const std::string&, const std::string&) {
    std::map<std::string, std::string> type_of;  // model -> the type that claimed it
    for (auto&& [key, v] : t) {
      const std::string type(key.str()), p = "gpu_types." + type;
      const Region& at = key.source();
      if (!model::IsGpuTypeName(type)) {
        return Error(at, p,
                     Quote(type) + " is not a valid GPU type; use lower-case letters, digits, "
                     "'.', '_' or '-' (at most 64), such as a100");
      }
      std::vector<std::string>& models = config_.gpu_types[type];
      HERD_RETURN_IF_ERROR(Strings(v, at, p, &models));
      for (const std::string& m : models) {
        auto [it, fresh] = type_of.emplace(m, type);
        if (!fresh) {
          return Error(at, p, "model " + Quote(m) + " is already of type " + Quote(it->second));
        }
      }
    }
    return Status::Ok();
  }

  Status Queue(const toml::table& t, const Region& at, const std::string& name,
               const std::string& path, bool is_project, std::vector<RawQueue>* queues) {
    RawQueue r;
    r.q.name = name;
    r.q.is_project = is_project;
    r.path = path;
    r.at = at;
    const char* parent_key = is_project ? "department" : "parent";
    for (auto&& [key, v] : t) {
      const std::string k(key.str()), p = path + "." + k;
      const Region& kat = key.source();
      if (k == parent_key) {
        HERD_RETURN_IF_ERROR(String(v, kat, p, &r.q.parent));
        r.parent_at = kat;
      } else if (k == "deserved") {
        std::map<std::string, int64_t> typed, pooled;
        HERD_RETURN_IF_ERROR(
            ResourcesValue(v, kat, p, false, &r.q.deserved, &r.deserved_given, &typed, &pooled));
        for (const auto& [type, milli] : typed) r.q.by_type[type].deserved_milli = milli;
        for (const auto& [pool, milli] : pooled) r.q.by_pool[pool].deserved_milli = milli;
        r.deserved_at = kat;
      } else if (k == "limit") {
        model::Resources limit;
        std::array<bool, 3> unused{};
        std::map<std::string, int64_t> typed, pooled;
        HERD_RETURN_IF_ERROR(ResourcesValue(v, kat, p, true, &limit, &unused, &typed, &pooled));
        if (limit != model::Resources{kUnlimited, kUnlimited, kUnlimited}) r.q.limit = limit;
        for (const auto& [type, milli] : typed) r.q.by_type[type].limit_milli = milli;
        for (const auto& [pool, milli] : pooled) r.q.by_pool[pool].limit_milli = milli;
        r.limit_at = kat;
      } else if (k == "over_quota_weight") {
        HERD_RETURN_IF_ERROR(Weights(v, kat, p, &r.q));
      } else if (k == "members") {
        HERD_RETURN_IF_ERROR(Strings(v, kat, p, &r.q.members));
      } else if (k == "min_runtime") {
        HERD_RETURN_IF_ERROR(Duration(v, kat, p, true, &r.q.min_runtime_s));
      } else {
        return Error(kat, p,
                     "unknown key " + Quote(k) + "; use " + parent_key +
                         ", deserved, limit, over_quota_weight, members or min_runtime");
      }
    }
    queues->push_back(std::move(r));
    return Status::Ok();
  }

  // over_quota_weight = 2, or per GPU type or pool: { gpu = 2, "gpu.h100" = 4, "pool.train" = 3 }
  // (gpu: every other).
  Status Weights(const toml::node& v, const Region& at, const std::string& path, QueueConfig* q) {
    auto weight = [&](const toml::node& n, const Region& nat, const std::string& p, double* out) {
      const std::optional<double> w = n.value<double>();
      if (!n.is_number() || !w || !std::isfinite(*w) || *w < 0 || *w > 1e6) {
        return Error(nat, p, "expected a number from 0 to 1000000");
      }
      *out = *w;
      return Status::Ok();
    };
    const toml::table* t = v.as_table();
    if (t == nullptr) return weight(v, at, path, &q->over_quota_weight);
    for (auto&& [key, value] : *t) {
      const std::string k(key.str()), p = path + "." + k;
      if (k == "gpu") {
        HERD_RETURN_IF_ERROR(weight(value, key.source(), p, &q->over_quota_weight));
      } else if (k.starts_with("gpu.") && model::IsGpuTypeName(k.substr(4))) {
        HERD_RETURN_IF_ERROR(
            weight(value, key.source(), p, &q->by_type[k.substr(4)].over_quota_weight));
      } else if (k.starts_with("pool.") && k.size() > 5) {
        quota_pool_at_.try_emplace(k.substr(5), key.source());
        HERD_RETURN_IF_ERROR(
            weight(value, key.source(), p, &q->by_pool[k.substr(5)].over_quota_weight));
      } else {
        return Error(key.source(), p,
                     "unknown key " + Quote(k) +
                         "; use gpu (the weight of every GPU), \"gpu.TYPE\" (of one GPU type) or "
                         "\"pool.NAME\" (of one pool's GPUs)");
      }
    }
    return Status::Ok();
  }

  const QueueConfig* FindQueueIn(std::string_view name, bool project) const {
    const QueueConfig* q = config_.FindQueue(name);
    return q && q->is_project == project ? q : nullptr;
  }

  // Links parents, rejects cycles, orders the queues, fills department quotas from their
  // children, checks limits and resolves inherited members and min_runtime.
  Status BuildTree(std::vector<RawQueue>& raw) {
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < raw.size(); ++i) {
      auto [it, fresh] = index.emplace(raw[i].q.name, i);
      if (!fresh) {
        const RawQueue& other = raw[it->second];
        return Error(raw[i].at, raw[i].path,
                     Quote(raw[i].q.name) + " is already a " +
                         (other.q.is_project ? "project" : "department") + " (" + Where(other.at) +
                         "); queue names must be unique");
      }
    }
    for (RawQueue& r : raw) {
      if (r.q.parent.empty()) continue;
      const std::string key = r.path + (r.q.is_project ? ".department" : ".parent");
      auto it = index.find(r.q.parent);
      if (it == index.end()) {
        return Error(r.parent_at, key,
                     "unknown department " + Quote(r.q.parent) + "; define [departments." +
                         r.q.parent + "] or fix the name");
      }
      if (raw[it->second].q.is_project) {
        return Error(r.parent_at, key,
                     Quote(r.q.parent) + " is a project; only a department can contain queues");
      }
    }
    for (RawQueue& r : raw) {
      std::string chain = r.q.name;
      const RawQueue* cur = &r;
      while (!cur->q.parent.empty()) {
        cur = &raw[index[cur->q.parent]];
        chain += " -> " + cur->q.name;
        if (cur == &r) {
          return Error(r.parent_at, r.path + ".parent", "departments form a cycle: " + chain);
        }
        if (++r.depth > static_cast<int>(raw.size())) break;  // a cycle above r, reported there
      }
    }
    // Departments by depth then name, then projects by name: parents always come first.
    std::vector<size_t> order(raw.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return std::tie(raw[a].q.is_project, raw[a].depth, raw[a].q.name) <
             std::tie(raw[b].q.is_project, raw[b].depth, raw[b].q.name);
    });
    // Deepest departments first, so a department's children are complete when it is summed.
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
      RawQueue& d = raw[*it];
      if (d.q.is_project) continue;
      model::Resources sum;
      for (const RawQueue& c : raw) {
        if (c.q.parent == d.q.name) sum += c.q.deserved;
      }
      // Per GPU type and pool: one the department's deserved does not name is its queues' sum.
      for (const bool pools : {false, true}) {
        std::map<std::string, int64_t> typed_sum;
        for (const RawQueue& c : raw) {
          if (c.q.parent != d.q.name) continue;
          for (const auto& [type, tq] : pools ? c.q.by_pool : c.q.by_type) {
            typed_sum[type] += tq.deserved_milli;
          }
        }
        model::GpuTypeQuotas& own_quotas = pools ? d.q.by_pool : d.q.by_type;
        for (const auto& [type, milli] : typed_sum) {
          if (milli <= 0) continue;
          auto own = own_quotas.find(type);
          if (own == own_quotas.end() || own->second.deserved_milli == 0) {
            own_quotas[type].deserved_milli = milli;
          } else if (milli > own->second.deserved_milli) {
            return Error(d.deserved_at, d.path + ".deserved",
                         "its queues deserve " + Amount(0, milli) + (pools ? " pool." : " gpu.") +
                             type + " in all, more than the department's " +
                             Amount(0, own->second.deserved_milli) +
                             "; raise the department's deserved or lower its queues'");
          }
        }
      }
      int64_t* have[3] = {&d.q.deserved.gpu_milli, &d.q.deserved.cpus, &d.q.deserved.memory_mib};
      const int64_t need[3] = {sum.gpu_milli, sum.cpus, sum.memory_mib};
      const char* names[3] = {"gpu", "cpu", "memory"};
      for (int i = 0; i < 3; ++i) {
        if (!d.deserved_given[i]) {
          *have[i] = need[i];
        } else if (need[i] > *have[i]) {
          return Error(d.deserved_at, d.path + ".deserved",
                       "its queues deserve " + Amount(i, need[i]) + " " + names[i] +
                           " in all, more than the department's " + Amount(i, *have[i]) +
                           "; raise the department's deserved or lower its queues'");
        }
      }
    }
    for (const RawQueue& r : raw) {
      for (const bool pools : {false, true}) {
        for (const auto& [type, tq] : pools ? r.q.by_pool : r.q.by_type) {
          if (tq.limit_milli >= 0 && tq.limit_milli < tq.deserved_milli) {
            return Error(
                r.limit_at, r.path + ".limit.\"" + (pools ? "pool." : "gpu.") + type + "\"",
                Amount(0, tq.limit_milli) + " is below the deserved " +
                    Amount(0, tq.deserved_milli) + "; a limit must be at least the deserved quota");
          }
        }
      }
      if (!r.q.limit) continue;
      const model::Resources& l = *r.q.limit;
      const int64_t lim[3] = {l.gpu_milli, l.cpus, l.memory_mib};
      const int64_t des[3] = {r.q.deserved.gpu_milli, r.q.deserved.cpus, r.q.deserved.memory_mib};
      const char* names[3] = {"gpu", "cpu", "memory"};
      for (int i = 0; i < 3; ++i) {
        if (lim[i] != kUnlimited && lim[i] < des[i]) {
          return Error(r.limit_at, r.path + ".limit." + names[i],
                       Amount(i, lim[i]) + " is below the deserved " + Amount(i, des[i]) +
                           "; a limit must be at least the deserved quota");
        }
      }
    }
    for (size_t i : order) {
      QueueConfig q = raw[i].q;
      if (const QueueConfig* parent = config_.FindQueue(q.parent)) {
        if (q.members.empty()) q.members = parent->members;
        if (q.min_runtime_s < 0) q.min_runtime_s = parent->min_runtime_s;
      }
      config_.queues.push_back(std::move(q));
    }
    return Status::Ok();
  }

  static std::string Amount(int component, int64_t v) {
    if (component == 0) return model::FormatGpuMilli(v);
    if (component == 1) return std::to_string(v);
    return model::FormatSizeMiB(v);
  }

  std::string source_;
  std::map<std::string, Region> quota_pool_at_;  // where a quota first names each pool
  Config config_;
  Region listen_at_, method_at_, session_listen_at_;
  bool session_listen_set_ = false;
};

// Durations are written as text when FormatDuration reads back exactly, else as seconds.
void PutDuration(toml::table& t, std::string_view key, int64_t seconds) {
  const std::string text = model::FormatDuration(seconds);
  Result<int64_t> back = model::ParseDurationSeconds(text);
  if (seconds > 0 && back.ok() && *back == seconds) {
    t.insert_or_assign(key, text);
  } else {
    t.insert_or_assign(key, seconds);
  }
}

void PutMillis(toml::table& t, std::string_view key, int64_t ms) {
  if (ms % 1000 == 0) {
    PutDuration(t, key, ms / 1000);
  } else {
    t.insert_or_assign(key, std::to_string(ms) + "ms");
  }
}

toml::array StringArray(const std::vector<std::string>& v) {
  toml::array a;
  for (const std::string& s : v) a.push_back(s);
  return a;
}

void GpuValue(toml::table& t, const std::string& key, int64_t milli) {
  if (milli % 1000 == 0) {
    t.insert_or_assign(key, milli / 1000);
  } else {
    t.insert_or_assign(key, static_cast<double>(milli) / 1000.0);
  }
}

// A queue's per-GPU-type and per-pool quotas as "gpu.TYPE" and "pool.NAME" keys of its deserved,
// limit and over_quota_weight.
void PutTypedQuotas(toml::table& t, const QueueConfig& q) {
  if (q.by_type.empty() && q.by_pool.empty()) return;
  toml::table weights{{"gpu", q.over_quota_weight}};
  weights.is_inline(true);
  bool weighted = false;
  std::vector<std::pair<std::string, model::GpuTypeQuota>> keyed;
  for (const auto& [type, tq] : q.by_type) keyed.emplace_back("gpu." + type, tq);
  for (const auto& [pool, tq] : q.by_pool) keyed.emplace_back("pool." + pool, tq);
  for (const auto& [key, tq] : keyed) {
    GpuValue(*t["deserved"].as_table(), key, tq.deserved_milli);
    if (tq.limit_milli >= 0) {
      if (!t.contains("limit")) {
        toml::table limit;
        limit.is_inline(true);
        t.insert_or_assign("limit", std::move(limit));
      }
      GpuValue(*t["limit"].as_table(), key, tq.limit_milli);
    }
    if (tq.over_quota_weight >= 0) weights.insert_or_assign(key, tq.over_quota_weight), weighted = true;
  }
  if (weighted) t.insert_or_assign("over_quota_weight", std::move(weights));
}

toml::table ResourcesTable(const model::Resources& r) {
  toml::table t;
  if (r.gpu_milli >= 0) {
    if (r.gpu_milli % 1000 == 0) {
      t.insert_or_assign("gpu", r.gpu_milli / 1000);
    } else {
      t.insert_or_assign("gpu", static_cast<double>(r.gpu_milli) / 1000.0);
    }
  }
  if (r.cpus >= 0) t.insert_or_assign("cpu", r.cpus);
  if (r.memory_mib >= 0) {
    const std::string text = model::FormatSizeMiB(r.memory_mib);
    Result<int64_t> back = model::ParseSizeMiB(text);
    if (back.ok() && *back == r.memory_mib) {
      t.insert_or_assign("memory", text);
    } else {
      t.insert_or_assign("memory", r.memory_mib);
    }
  }
  t.is_inline(true);
  return t;
}

}  // namespace

const QueueConfig* Config::FindQueue(std::string_view name) const {
  for (const QueueConfig& q : queues) {
    if (q.name == name) return &q;
  }
  return nullptr;
}

const ClassConfig* Config::FindClass(std::string_view name) const {
  auto it = classes.find(std::string(name));
  return it == classes.end() ? nullptr : &it->second;
}

const std::map<std::string, std::string>& Config::LabelsOf(const std::string& name) const {
  static const std::map<std::string, std::string> kNone;
  auto it = nodes.find(name);
  return it == nodes.end() ? kNone : it->second.labels;
}

bool Config::InPool(const std::string& pool, const std::string& name) const {
  const auto& labels = LabelsOf(name);
  return PoolSelector(pool).Matches(name, labels);
}

model::NodeSelector Config::PoolSelector(const std::string& pool) const {
  auto it = pools.find(pool);
  return it == pools.end() ? model::LabelPool(pool)
                           : model::NodeSelector{it->second.nodes, it->second.labels};
}

std::vector<std::string> Config::QuotaPools() const {
  std::set<std::string> out;
  for (const QueueConfig& q : queues) {
    for (const auto& [pool, quota] : q.by_pool) out.insert(pool);
  }
  return {out.begin(), out.end()};
}

std::string Config::QuotaPoolOf(const std::string& name) const {
  for (const std::string& pool : QuotaPools()) {
    if (InPool(pool, name)) return pool;
  }
  return "";
}

std::vector<std::string> Config::PoolsOf(const std::string& name) const {
  std::vector<std::string> out;
  for (const auto& [pool, p] : pools) {
    if (InPool(pool, name)) out.push_back(pool);
  }
  const auto& labels = LabelsOf(name);
  if (auto label = labels.find("pool"); label != labels.end() && !pools.count(label->second)) {
    out.push_back(label->second);
  }
  return out;
}

bool Config::IsMember(std::string_view project, std::string_view user) const {
  const QueueConfig* q = FindQueue(project);
  if (!q || !q->is_project) return false;
  return std::any_of(q->members.begin(), q->members.end(),
                     [&](const std::string& m) { return m == "*" || m == user; });
}

namespace {

Result<toml::table> ParseToml(std::string_view text, std::string_view source_name) {
  try {
    return toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    return Invalid(std::string(source_name) + ":" + std::to_string(e.source().begin.line) + ":" +
                   std::to_string(e.source().begin.column) +
                   ": invalid TOML: " + std::string(e.description()));
  }
}

// Extra wins key by key; two tables under one key merge, anything else is replaced.
void MergeInto(toml::table& into, const toml::table& extra) {
  for (auto&& entry : extra) {
    const toml::key& key = entry.first;  // a named copy: lambdas cannot capture bindings (C++20)
    const toml::node& value = entry.second;
    const toml::table* from = value.as_table();
    if (toml::table* to = into.get_as<toml::table>(key); from && to) {
      MergeInto(*to, *from);
      continue;
    }
    value.visit([&](const auto& v) { into.insert_or_assign(key, v); });
  }
}

// Double-quoted strings, the form people write by hand.
toml::toml_formatter Formatted(const toml::table& t) {
  return toml::toml_formatter(
      t, toml::toml_formatter::default_flags & ~toml::format_flags::allow_literal_strings);
}

}  // namespace

Result<Config> ParseConfig(std::string_view text, std::string_view source_name) {
  Result<toml::table> root = ParseToml(text, source_name);
  if (!root.ok()) return root.status();
  try {
    return Parser(source_name).Parse(*root);
  } catch (const std::exception& e) {  // allocation failure; toml++ throws only while parsing
    return Internal(std::string(source_name) + ": " + e.what());
  }
}

namespace {

// The text of the file at `path`. A directory is refused by name: reading one yields no text,
// which would pass for an empty, valid herd.toml.
Result<std::string> ReadConfigFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    std::string dir = path;
    while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
    return Invalid(path + " is a directory: give the configuration file, such as " +
                   (dir == "/" ? "" : dir) + "/herd.toml");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return NotFound("cannot read " + path + ": " + std::strerror(errno));
  return text.str();
}

// Whether the table header on `line` ("[auth]", "[controller.x]") opens a table a client reads.
// Returns nullopt when the line is no table header.
std::optional<bool> ClientHeader(std::string_view line) {
  const size_t start = line.find_first_not_of(" \t");
  if (start == std::string_view::npos || line[start] != '[') return std::nullopt;
  const size_t end = line.find(']', start);
  if (end == std::string_view::npos) return std::nullopt;
  std::string_view name = line.substr(start + 1, end - start - 1);
  if (!name.empty() && name.front() == '[') name.remove_prefix(1);  // [[array.of.tables]]
  const size_t a = name.find_first_not_of(" \t"), b = name.find_last_not_of(" \t");
  name = a == std::string_view::npos ? std::string_view() : name.substr(a, b - a + 1);
  for (std::string_view table : {"controller", "auth"}) {
    if (name == table || (name.starts_with(table) && name.substr(table.size()).starts_with("."))) {
      return true;
    }
  }
  // Any other plain name is another table; anything else ("[1, 2]" in an array) is a value.
  const bool plain = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' ||
           c == '"' || c == ' ';
  });
  return plain ? std::optional<bool>(false) : std::nullopt;
}

// `text` with every line outside the [controller] and [auth] tables blanked, so that the lines
// left keep their numbers in errors.
std::string ClientLines(std::string_view text) {
  std::string out;
  bool keep = false;  // the top level, before any header, belongs to no client table
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    if (std::optional<bool> header = ClientHeader(line)) keep = *header;
    if (keep) out += line;
    out += '\n';
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  }
  return out;
}

// What a client uses of a parsed herd.toml: [controller] listen and [auth]; so a bad value of a
// key only the daemons read does not stop `herd`.
toml::table ClientPart(const toml::table& root) {
  toml::table client;
  if (const toml::table* controller = root.get_as<toml::table>("controller")) {
    toml::table listen;
    if (const toml::node* l = controller->get("listen")) listen.insert("listen", *l);
    client.insert("controller", std::move(listen));
  } else if (const toml::node* other = root.get("controller")) {
    client.insert("controller", *other);  // not a table: the parser says so
  }
  if (const toml::node* auth = root.get("auth")) client.insert("auth", *auth);
  return client;
}

}  // namespace

Result<Config> LoadConfig(const std::string& path) {
  Result<std::string> text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return ParseConfig(*text, path);
}

Result<std::pair<std::string, int>> SplitHostPort(std::string_view address) {
  const std::string bad = Quote(std::string(address)) +
                          " is not an address; use HOST:PORT, such as 127.0.0.1:9180 or [::1]:9180";
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return Invalid(bad);
  std::string_view host = address.substr(0, colon), port = address.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return Invalid(bad);
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return Invalid(bad);  // an IPv6 host needs brackets
  }
  int n = 0;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    return Invalid(bad);
  }
  n = std::stoi(std::string(port));
  if (n < 1 || n > 65535) return Invalid(bad + " (the port is 1 to 65535)");
  return std::make_pair(std::string(host), n);
}

Result<Config> LoadClientConfig(const std::string& path) {
  Result<std::string> text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  Result<toml::table> root = ParseToml(*text, path);
  std::string broken;
  if (!root.ok()) {
    // Another table's error need not stop herd: read the client's tables on their own.
    broken = root.status().message();
    root = ParseToml(ClientLines(*text), path);
    if (!root.ok()) return root.status();
  }
  try {
    Result<Config> config = Parser(path).Parse(ClientPart(*root));
    if (config.ok() && !broken.empty()) {
      config->warnings.push_back(broken + "; herd read only [controller] and [auth]");
    }
    return config;
  } catch (const std::exception& e) {
    return Internal(path + ": " + e.what());
  }
}

Result<std::string> MergeToml(std::string_view base, std::string_view base_name,
                              std::string_view extra, std::string_view extra_name) {
  Result<toml::table> merged = ParseToml(base, base_name);
  if (!merged.ok()) return merged.status();
  Result<toml::table> over = ParseToml(extra, extra_name);
  if (!over.ok()) return over.status();
  MergeInto(*merged, *over);
  std::ostringstream out;
  out << Formatted(*merged) << "\n";
  return out.str();
}

std::string ToToml(const Config& c) {
  toml::table root;
  const ControllerConfig& cc = c.controller;
  toml::table controller{{"listen", StringArray(cc.listen)},
                         {"state_dir", cc.state_dir},
                         {"log_file", cc.log_file},
                         {"user", cc.user},
                         {"allow_root_jobs", cc.allow_root_jobs},
                         {"jobs_page_size", cc.jobs_page_size},
                         {"private_commands", cc.private_commands},
                         {"max_name_bytes", cc.max_name_bytes},
                         {"max_arg_bytes", cc.max_arg_bytes},
                         {"max_command_bytes", cc.max_command_bytes},
                         {"max_env_entries", cc.max_env_entries},
                         {"max_env_bytes", cc.max_env_bytes},
                         {"max_spec_bytes", cc.max_spec_bytes},
                         {"max_submit_bytes", cc.max_submit_bytes},
                         {"max_pending_per_user", cc.max_pending_per_user},
                         {"max_message_size", std::to_string(cc.max_message_mib) + "M"},
                         {"max_connections", cc.max_connections}};
  PutMillis(controller, "message_timeout", cc.message_timeout_ms);
  PutDuration(controller, "min_job_age", cc.min_job_age_s);
  PutDuration(controller, "job_retention", cc.job_retention_s);
  root.insert_or_assign("controller", std::move(controller));
  root.insert_or_assign(
      "auth", toml::table{{"method", c.auth.method}, {"munge_socket", c.auth.munge_socket}});
  toml::table sched{{"placement", c.scheduler.placement}};
  PutDuration(sched, "preempt_grace", c.scheduler.preempt_grace_s);
  PutDuration(sched, "reserve_after", c.scheduler.reserve_after_s);
  PutDuration(sched, "reclaim_backoff", c.scheduler.reclaim_backoff_s);
  PutMillis(sched, "cycle_interval", c.scheduler.cycle_interval_ms);
  PutMillis(sched, "heartbeat_interval", c.scheduler.heartbeat_interval_ms);
  PutDuration(sched, "node_timeout", c.scheduler.node_timeout_s);
  PutDuration(sched, "kill_grace", c.scheduler.kill_grace_s);
  PutDuration(sched, "fair_share_half_life", c.scheduler.fair_share_half_life_s);
  root.insert_or_assign("scheduler", std::move(sched));

  toml::table classes;
  for (const auto& [name, k] : c.classes) {
    toml::table t{{"priority", k.priority},
                  {"preemptible", k.preemptible},
                  {"within_quota_only", k.within_quota_only}};
    PutDuration(t, "max_time", k.max_time_s);
    PutDuration(t, "min_runtime", k.min_runtime_s);
    PutDuration(t, "idle_timeout", k.idle_timeout_s);
    PutDuration(t, "idle_input_timeout", k.idle_input_timeout_s);
    classes.insert_or_assign(name, std::move(t));
  }
  root.insert_or_assign("classes", std::move(classes));

  toml::table departments, projects;
  for (const QueueConfig& q : c.queues) {
    toml::table t{{"deserved", ResourcesTable(q.deserved)},
                  {"over_quota_weight", q.over_quota_weight},
                  {"members", StringArray(q.members)}};
    if (!q.parent.empty()) t.insert_or_assign(q.is_project ? "department" : "parent", q.parent);
    if (q.limit) t.insert_or_assign("limit", ResourcesTable(*q.limit));
    PutTypedQuotas(t, q);
    if (q.min_runtime_s >= 0) PutDuration(t, "min_runtime", q.min_runtime_s);
    (q.is_project ? projects : departments).insert_or_assign(q.name, std::move(t));
  }
  if (!departments.empty()) root.insert_or_assign("departments", std::move(departments));
  root.insert_or_assign("projects", std::move(projects));

  if (!c.nodes.empty()) {
    toml::table nodes;
    for (const auto& [name, n] : c.nodes) {
      toml::table labels;
      for (const auto& [k, v] : n.labels) labels.insert_or_assign(k, v);
      labels.is_inline(true);
      nodes.insert_or_assign(name, toml::table{{"labels", std::move(labels)}});
    }
    root.insert_or_assign("nodes", std::move(nodes));
  }
  if (!c.gpu_types.empty()) {
    toml::table types;
    for (const auto& [type, models] : c.gpu_types) types.insert_or_assign(type, StringArray(models));
    root.insert_or_assign("gpu_types", std::move(types));
  }
  if (!c.pools.empty()) {
    toml::table pools;
    for (const auto& [name, p] : c.pools) {
      toml::table t;
      if (!p.nodes.empty()) t.insert_or_assign("nodes", StringArray(p.nodes));
      if (!p.labels.empty()) {
        toml::table labels;
        for (const auto& [k, v] : p.labels) labels.insert_or_assign(k, v);
        labels.is_inline(true);
        t.insert_or_assign("labels", std::move(labels));
      }
      pools.insert_or_assign(name, std::move(t));
    }
    root.insert_or_assign("pools", std::move(pools));
  }
  toml::table node;
  for (auto [key, mib] : {std::pair{"max_log_size", c.node.max_log_mib},
                          std::pair{"min_free_space", c.node.min_free_space_mib},
                          std::pair{"max_image_size", c.node.max_image_mib}}) {
    const std::string text = model::FormatSizeMiB(mib);
    Result<int64_t> back = model::ParseSizeMiB(text);
    if (back.ok() && *back == mib) {
      node.insert_or_assign(key, text);
    } else {
      node.insert_or_assign(key, mib);
    }
  }
  PutDuration(node, "start_timeout", c.node.start_timeout_s);
  node.insert_or_assign("session_listen", c.node.session_listen);
  root.insert_or_assign("node", std::move(node));
  toml::table web{{"listen", c.web.listen},     {"metrics_listen", c.web.metrics_listen},
                  {"user", c.web.user},         {"log_file", c.web.log_file},
                  {"url", c.web.url},           {"tls_cert", c.web.tls_cert},
                  {"tls_key", c.web.tls_key}};
  PutDuration(web, "login_token_ttl", c.web.login_token_s);
  PutDuration(web, "session_ttl", c.web.session_s);
  root.insert_or_assign("web", std::move(web));
  toml::table history;
  PutDuration(history, "interval", c.history.interval_s);
  PutDuration(history, "raw_retention", c.history.raw_retention_s);
  PutDuration(history, "ten_minute_retention", c.history.ten_minute_retention_s);
  PutDuration(history, "hourly_retention", c.history.hourly_retention_s);
  root.insert_or_assign("history", std::move(history));
  root.insert_or_assign("containers",
                        toml::table{{"allowed_volumes", StringArray(c.volume_prefixes)}});
  root.insert_or_assign("admins", StringArray(c.admins));
  if (!c.default_project.empty()) root.insert_or_assign("default_project", c.default_project);
  std::ostringstream out;
  out << Formatted(root) << "\n";
  return out.str();
}

std::string WebConfig::BaseUrl() const {
  if (!url.empty()) return url.back() == '/' ? url.substr(0, url.size() - 1) : url;
  std::string host_port = listen;
  // A wildcard address is no place a browser can go: this host's name stands for it.
  if (host_port.rfind("0.0.0.0:", 0) == 0 || host_port.rfind("[::]:", 0) == 0) {
    char name[256] = {};
    gethostname(name, sizeof name - 1);
    host_port = std::string(name) + host_port.substr(host_port.rfind(':'));
  }
  return (tls_cert.empty() ? "http://" : "https://") + host_port;
}

std::string LocalEndpoint(const std::string& listen) {
  for (std::string_view wildcard : {"tcp://0.0.0.0:", "tcp://*:"}) {
    if (listen.starts_with(wildcard)) return "tcp://127.0.0.1:" + listen.substr(wildcard.size());
  }
  return listen;
}

}  // namespace herd::config
