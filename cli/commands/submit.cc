// herd submit [options] -- COMMAND [ARGS...]  |  herd submit [options] SCRIPT [ARGS...]
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sys/stat.h>
#include <unistd.h>

#include <time.h>

#include <charconv>
#include <memory>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>
#include <utility>

#include "cli/batch.h"
#include "cli/commands/commands.h"
#include "cli/commands/validators.h"
#include "cli/format.h"
#include "cli/forward.h"
#include "cli/interrupt.h"
#include "common/model/fleet.h"
#include "common/model/output_path.h"
#include "common/model/sweep.h"

namespace herd::cli {
namespace {

struct SubmitOptions {
  model::JobSpec spec;
  std::vector<std::string> ports;       // herd run --port [LOCAL:]REMOTE
  std::string gpus;                     // -g [TYPE:]N
  std::string gres;                     // --gres gpu[:TYPE][:N] (Slurm's spelling)
  std::vector<std::string> gpu_types;   // --gpu-type a100,h100
  std::vector<std::string> constraints; // --constraint KEY=VAL[,KEY=VAL]
  std::vector<std::string> nodelist;    // --nodelist ws[01-04],gpu7
  std::vector<std::string> exclude;     // --exclude ws03
  std::string gpu_memory;  // --gpu-memory REQ[:LIMIT]
  std::vector<std::string> env;
  std::string export_rule;  // --export; empty: ALL, or NONE for a container job
  std::string open_mode;    // --open-mode append|truncate; empty: truncate
  std::string job_class;
  bool interactive = false;
  bool train = false;
  bool quiet = false;
  bool json = false;
  std::vector<std::string> after;
  std::string begin;
  std::string array;
  std::vector<std::string> sweep;
  int32_t sweep_limit = 0;
  bool wait = false;
  bool pty = false;
  // herd run: called with the new job's id instead of printing it; returns herd's exit code.
  std::function<int(model::JobId)> then;
};

std::optional<int64_t> ParseNumber(std::string_view v) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n < 0) return {};
  return n;
}

// --array "1-100%8", "0-9", "1,3,5", "1-10:2": the indexes (sorted, distinct) and the %N cap.
Result<std::vector<int64_t>> ParseArray(const std::string& text, int32_t* limit) {
  const Status bad = Invalid("--array: invalid '" + text +
                             "': use 1-100, 0-9, 1,3,5 or 1-10:2, optionally %N to run at most N "
                             "at once");
  std::string list = text;
  *limit = 0;
  if (const auto pct = text.find('%'); pct != std::string::npos) {
    auto n = ParseNumber(std::string_view(text).substr(pct + 1));
    if (!n || *n < 1 || *n > 100000) return bad;
    *limit = static_cast<int32_t>(*n);
    list = text.substr(0, pct);
  }
  std::set<int64_t> indexes;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t comma = std::min(list.find(',', start), list.size());
    std::string_view item = std::string_view(list).substr(start, comma - start);
    const auto dash = item.find('-');
    const auto colon = item.find(':');
    auto first = ParseNumber(item.substr(0, std::min(dash, colon)));
    std::optional<int64_t> last = first;
    std::optional<int64_t> step = 1;
    if (dash != std::string_view::npos) {
      last = ParseNumber(item.substr(dash + 1, colon == std::string_view::npos
                                                   ? std::string_view::npos
                                                   : colon - dash - 1));
      if (colon != std::string_view::npos) step = ParseNumber(item.substr(colon + 1));
    } else if (colon != std::string_view::npos) {
      return bad;
    }
    if (!first || !last || !step || *step < 1 || *last < *first) return bad;
    for (int64_t i = *first; i <= *last; i += *step) {
      indexes.insert(i);
      if (indexes.size() > static_cast<size_t>(model::kMaxArrayJobs)) {
        return Invalid("--array: at most " + std::to_string(model::kMaxArrayJobs) +
                       " jobs in an array");
      }
    }
    start = comma + 1;
  }
  return std::vector<int64_t>(indexes.begin(), indexes.end());
}

// --after "12", "12:ok", "12:any", "12:fail", "12_3:ok" -> "12:ok" ... An array's id stands
// for all of its members (herd-ctld decides), ID_INDEX for one.
Result<std::string> ParseAfter(const std::string& text) {
  const auto colon = text.find(':');
  auto ref = ParseJobRef(text.substr(0, colon));
  const std::string kind = colon == std::string::npos ? "ok" : text.substr(colon + 1);
  if (!ref.ok() || (kind != "ok" && kind != "any" && kind != "fail")) {
    return Invalid("--after: invalid '" + text +
                   "': use JOB[:ok|:any|:fail] (ok: completed, any: ended, fail: did not "
                   "complete; JOB: a job, an array as a whole, or ARRAY_INDEX for one member)");
  }
  return text.substr(0, colon) + ":" + kind;
}

// --begin "2026-12-01T15:00" (local time), "15:00" (today, else tomorrow), "+10m" (from now).
Result<int64_t> ParseBegin(const std::string& text, int64_t now) {
  const Status bad = Invalid("--begin: invalid time '" + text +
                             "': use 2026-12-01T15:00, 15:00 (today or tomorrow) or +10m");
  if (text.starts_with("+")) {
    auto d = model::ParseDurationSeconds(text.substr(1));
    if (!d.ok()) return bad;
    return now + *d;
  }
  const time_t t_now = static_cast<time_t>(now);
  struct tm tm {};
  localtime_r(&t_now, &tm);
  for (const char* format : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S",
                             "%Y-%m-%d %H:%M", "%H:%M:%S", "%H:%M"}) {
    struct tm parsed = tm;
    parsed.tm_sec = 0;
    const char* end = strptime(text.c_str(), format, &parsed);
    if (end == nullptr || *end != '\0') continue;
    parsed.tm_isdst = -1;
    time_t t = mktime(&parsed);
    if (t == static_cast<time_t>(-1)) return bad;
    if (format[1] == 'H' && t <= t_now) {  // a time of day already past: tomorrow
      parsed.tm_mday += 1;
      parsed.tm_isdst = -1;
      t = mktime(&parsed);
    }
    return static_cast<int64_t>(t);
  }
  return bad;
}

// -g "2", "0.5" or "a100:2": milli-GPUs per worker and the type ("" for any). A bare word is a
// bad count, not a type: --gpu-type asks for one GPU of a type.
Result<std::pair<int64_t, std::string>> ParseGpuRequest(const std::string& text) {
  const auto colon = text.rfind(':');
  const std::string type = colon == std::string::npos ? "" : text.substr(0, colon);
  const std::string count = colon == std::string::npos ? text : text.substr(colon + 1);
  auto milli = model::ParseGpuMilli(count);
  if (!milli.ok() && type.empty()) return milli.status();
  if (!milli.ok() || (!type.empty() && !model::IsGpuTypeName(type))) {
    return Invalid("invalid GPU request '" + text +
                   "': use N (2, or a share such as 0.5) or TYPE:N (a100:2); `herd nodes` shows "
                   "the GPU types");
  }
  return std::make_pair(*milli, type);
}

// --gres "gpu", "gpu:2", "gpu:a100:2" (Slurm's generic resources; only GPUs) -> "[TYPE:]N".
Result<std::string> ParseGres(const std::string& text) {
  const Status bad = Invalid("invalid --gres '" + text +
                             "': herd knows gpu, gpu:N and gpu:TYPE:N (such as gpu:a100:2)");
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t colon = std::min(text.find(':', start), text.size());
    parts.push_back(text.substr(start, colon - start));
    start = colon + 1;
  }
  if (parts[0] != "gpu" || parts.size() > 3) return bad;
  if (parts.size() == 1) return std::string("1");
  if (parts.size() == 2) {
    return ParseNumber(parts[1]) ? parts[1] : parts[1] + ":1";  // gpu:N or gpu:TYPE
  }
  if (!ParseNumber(parts[2])) return bad;
  return parts[1] + ":" + parts[2];
}

// --gpu-memory "8G" or "8G:12G": the GPU memory reserved per worker and the most it may use
// (default: what it reserves), as MiB.
Result<std::pair<int64_t, int64_t>> ParseGpuMemory(const std::string& text) {
  const auto colon = text.find(':');
  auto request = model::ParseSizeMiB(text.substr(0, colon));
  auto limit = colon == std::string::npos ? request : model::ParseSizeMiB(text.substr(colon + 1));
  if (!request.ok() || !limit.ok()) {
    return Invalid("invalid GPU memory '" + text +
                   "': use REQ[:LIMIT] with sizes such as 8G or 8G:12G (a bare number is MiB)");
  }
  if (*limit < *request) {
    return Invalid("invalid GPU memory '" + text + "': the limit " +
                   model::FormatSizeMiB(*limit) + " is below the request " +
                   model::FormatSizeMiB(*request) + "; use REQ[:LIMIT] with LIMIT at least REQ");
  }
  return std::make_pair(*request, colon == std::string::npos ? int64_t{0} : *limit);
}

// KEY=VALUE with a shell-style name and a UTF-8 value.
CLI::Validator EnvValidator() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        const auto eq = v.find('=');
        const std::string key = v.substr(0, eq);
        const bool key_ok = !key.empty() && !std::isdigit(static_cast<unsigned char>(key[0])) &&
                            key.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
                                                  "TUVWXYZ0123456789_") == std::string::npos;
        if (eq == std::string::npos) {
          // sbatch's -e names the stderr file; herd's -e sets a variable.
          return "invalid '" + v + "': use KEY=VALUE (for a file that receives stderr, as "
                 "sbatch -e, use --error " + v + ")";
        }
        if (!key_ok) return "invalid '" + v + "': use KEY=VALUE, KEY made of letters, digits and _";
        if (!IsValidUtf8(v.substr(eq + 1))) {
          return "the value of " + key + " is not valid UTF-8";
        }
        return {};
      },
      "KEY=VAL");
}

std::string Absolute(const std::string& path, const std::string& cwd) {
  std::filesystem::path p(path);
  if (p.is_relative() && !cwd.empty()) p = std::filesystem::path(cwd) / p;
  return p.lexically_normal().string();
}

// A batch script bigger than this is not read (herd-ctld's max_spec_bytes is smaller still).
constexpr int64_t kMaxScriptBytes = 16 << 20;

// The text of `path` when `herd submit` takes it as a batch script: a regular file that is not
// an executable program (it is not executable, or it starts with #!). nullopt when it is not a
// script: no such file (then a command looked up in PATH on the node) or an executable program.
Result<std::optional<std::string>> ReadBatchScript(const std::string& path,
                                                   const std::string& shown) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::optional<std::string>();
  const bool executable = access(path.c_str(), X_OK) == 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (executable) return std::optional<std::string>();  // a program its owner may only run
    return Invalid("cannot read the batch script " + shown + ": " + std::strerror(errno));
  }
  char head[2] = {0, 0};
  in.read(head, 2);
  if (executable && !(in.gcount() == 2 && head[0] == '#' && head[1] == '!')) {
    return std::optional<std::string>();
  }
  if (st.st_size > kMaxScriptBytes) {
    return Invalid("the batch script " + shown + " is " + std::to_string(st.st_size) +
                   " bytes: too large (herd copies a script into its job at submit)");
  }
  in.seekg(0);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Invalid("cannot read the batch script " + shown);
  if (!IsValidUtf8(text)) {
    return Invalid("the batch script " + shown +
                   " is not valid UTF-8 text (herd copies a script into its job as text)");
  }
  return std::optional<std::string>(std::move(text));
}

void AddSubmitOptions(CLI::App* sub, SubmitOptions* o);

// Parses `args` (options, then the command) into *o as `herd submit` would, with a later
// option overriding an earlier one; returns the command.
Result<std::vector<std::string>> ParseSubmitArgs(const std::vector<std::string>& args,
                                                 SubmitOptions* o) {
  CLI::App app("herd submit", "submit");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  AddSubmitOptions(&app, o);
  app.prefix_command();
  try {
    app.parse(std::vector<std::string>(args.rbegin(), args.rend()));  // CLI11 pops the back
  } catch (const CLI::Error& e) {
    return Invalid(e.what());
  }
  return app.remaining();
}

int Submit(SubmitOptions& o, std::vector<std::string> command, Context& ctx);

// `herd submit [options] SCRIPT [ARGS]`: the script's directives come first, the command line's
// options after them (so they win), and the script's text travels in the spec.
int SubmitScript(std::string text, std::vector<std::string> command, Context& ctx) {
  const std::string shown = command[0];
  auto directives = ReadDirectives(text, shown);
  if (!directives.ok()) return ctx.UsageError(directives.status().message());
  for (const auto& w : directives->warnings) ctx.err() << "herd: warning: " << w << "\n";
  std::vector<std::string> args;
  for (const auto& d : directives->lines) {
    // Each line alone first, so that a bad one is named by its line number.
    SubmitOptions scratch;
    auto rest = ParseSubmitArgs(d.args, &scratch);
    const std::string where = shown + ":" + std::to_string(d.line) + ": ";
    if (!rest.ok()) return ctx.UsageError(where + rest.status().message());
    if (!rest->empty()) {
      return ctx.UsageError(where + "unexpected '" + rest->front() +
                            "' (a directive holds options; the command is the script)");
    }
    args.insert(args.end(), d.args.begin(), d.args.end());
  }
  args.insert(args.end(), ctx.submit_args.begin(), ctx.submit_args.end());
  SubmitOptions merged;
  auto rest = ParseSubmitArgs(args, &merged);
  if (!rest.ok()) return ctx.UsageError(rest.status().message());
  if (!merged.spec.image.empty()) {
    return ctx.UsageError("a batch script cannot run in a container (--image): put it in the "
                          "image or a volume and run it with -- COMMAND");
  }
  merged.spec.script = std::move(text);
  command[0] = Absolute(command[0], ctx.env().cwd);  // names the script in herd jobs and show
  return Submit(merged, std::move(command), ctx);
}

int RunSubmit(SubmitOptions& o, CLI::App& sub, Context& ctx) {
  // With prefix_command, the first word CLI11 does not know starts the command.
  std::vector<std::string> command = sub.remaining();
  if (!command.empty() && command.front().size() > 1 && command.front()[0] == '-') {
    return ctx.UsageError("submit: unknown option '" + command.front() +
                          "' (global options such as --config go before 'submit'; put the "
                          "command after --)");
  }
  if (ctx.submit_dashdash) {
    if (!command.empty()) command.push_back("--");  // the "--" belonged to the command
    command.insert(command.end(), ctx.submit_tail.begin(), ctx.submit_tail.end());
  }
  if (command.empty()) {
    return ctx.UsageError("missing command: herd submit [options] -- COMMAND [ARGS...]");
  }
  if (!ctx.submit_dashdash) {
    // `herd submit job.sh`: a script file, as sbatch takes it.
    auto script = ReadBatchScript(Absolute(command[0], ctx.env().cwd), command[0]);
    if (!script.ok()) return ctx.UsageError(script.status().message());
    if (*script) return SubmitScript(std::move(**script), std::move(command), ctx);
  }
  // `herd submit -- train.sh`: a script file that is not executable runs with /bin/sh.
  if (const std::string script = Absolute(command[0], ctx.env().cwd);
      command[0].find('/') != std::string::npos || access(command[0].c_str(), F_OK) == 0) {
    struct stat st;
    if (stat(script.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(script.c_str(), X_OK) != 0) {
      command[0] = script;
      command.insert(command.begin(), "/bin/sh");
    }
  }
  return Submit(o, std::move(command), ctx);
}

int Submit(SubmitOptions& o, std::vector<std::string> command, Context& ctx) {
  // A usage error like a missing command, found here rather than by herd-ctld.
  if (command.empty() || command.front().empty()) {
    return ctx.UsageError("empty command: the program to run is \"\"; herd submit [options] -- "
                          "COMMAND [ARGS...]");
  }
  model::JobSpec& spec = o.spec;
  spec.argv = std::move(command);

  const int class_flags = !o.job_class.empty() + o.interactive + o.train;
  if (class_flags > 1) return ctx.UsageError("choose one of --class, --interactive, --train");
  if (o.interactive) spec.job_class = "interactive";
  if (o.train) spec.job_class = "train";
  if (!o.job_class.empty()) spec.job_class = o.job_class;
  if (o.pty && spec.session.empty()) spec.session = "pty";
  if (!spec.session.empty() && !(spec.output.empty() && spec.error.empty())) {
    return ctx.UsageError("--pty: the output goes to herd attach (and herd logs); -o/--output "
                          "and --error are for batch jobs");
  }
  if (!IsValidUtf8(spec.name)) return ctx.UsageError("--name: not valid UTF-8");
  // The submitting environment first, then -e on top.
  auto rule = ParseExport(!o.export_rule.empty() ? o.export_rule
                          : spec.image.empty()   ? "ALL"
                                                 : "NONE");
  if (!rule.ok()) return ctx.UsageError(rule.status().message());
  std::vector<std::string> warnings;
  spec.env = ExportedEnvironment(*rule, ctx.env().vars, &warnings);
  for (const auto& w : warnings) ctx.err() << "herd: warning: " << w << "\n";
  for (const auto& kv : o.env) {
    const auto eq = kv.find('=');
    spec.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  // Where it may run: -g TYPE:N / --gres gpu:TYPE:N, --gpu-type, --constraint, --nodelist and
  // --exclude (--pool is taken as it is).
  if (!o.gpus.empty() && !o.gres.empty()) return ctx.UsageError("choose one of -g and --gres");
  std::string gpus = o.gpus;
  if (!o.gres.empty()) {
    auto g = ParseGres(o.gres);
    if (!g.ok()) return ctx.UsageError(g.status().message());
    gpus = *g;
  }
  if (!gpus.empty()) {
    auto g = ParseGpuRequest(gpus);
    if (!g.ok()) return ctx.UsageError(g.status().message());
    spec.gpu_milli = g->first;
    if (!g->second.empty()) {
      if (!o.gpu_types.empty()) {
        return ctx.UsageError("give the GPU type once: -g TYPE:N or --gpu-type, not both");
      }
      spec.gpu_types = {g->second};
    }
  }
  for (const std::string& t : o.gpu_types) {
    if (!model::IsGpuTypeName(t)) {
      return ctx.UsageError("--gpu-type: invalid type '" + t +
                            "': use lower-case names such as a100 (`herd nodes` shows them)");
    }
    spec.gpu_types.push_back(t);
  }
  if (!spec.gpu_types.empty() && spec.gpu_milli == 0) spec.gpu_milli = 1000;
  for (const std::string& c : o.constraints) {
    auto labels = model::ParseConstraints(c);
    if (!labels.ok()) return ctx.UsageError("--constraint: " + labels.status().message());
    for (const auto& [k, v] : *labels) spec.constraints[k] = v;
  }
  for (auto [list, out, name] : {std::tuple{&o.nodelist, &spec.nodelist, "--nodelist"},
                                 std::tuple{&o.exclude, &spec.exclude, "--exclude"}}) {
    for (const std::string& item : *list) {
      auto names = model::ExpandHostList(item);
      if (!names.ok()) return ctx.UsageError(std::string(name) + ": " + names.status().message());
      out->insert(out->end(), names->begin(), names->end());
    }
  }
  if (!o.gpu_memory.empty()) {
    auto mem = ParseGpuMemory(o.gpu_memory);  // already checked by the option's validator
    if (!mem.ok()) return ctx.UsageError("--gpu-memory: " + mem.status().message());
    std::tie(spec.gpu_memory_mib, spec.gpu_memory_limit_mib) = *mem;
  }
  // A container starts in its own root unless told: the directory here is seldom in the image,
  // and the node refuses a --chdir that does not exist in the container.
  if (spec.cwd.empty() && !spec.image.empty()) spec.cwd = "/";
  spec.cwd = Absolute(spec.cwd.empty() ? ctx.env().cwd : spec.cwd, ctx.env().cwd);
  if (!spec.image.empty()) spec.image = Absolute(spec.image, ctx.env().cwd);
  // Output files are host paths, relative to the job's working directory (a container's is a
  // path inside it: there, relative to the directory herd runs in).
  const std::string output_base = spec.image.empty() ? spec.cwd : ctx.env().cwd;
  for (auto [pattern, option] : {std::pair{&spec.output, "--output"}, {&spec.error, "--error"}}) {
    if (pattern->empty()) continue;
    if (Status s = model::CheckOutputPattern(*pattern, option); !s.ok()) {
      return ctx.UsageError(s.message());
    }
    if ((*pattern)[0] != '/') *pattern = (output_base == "/" ? "" : output_base) + "/" + *pattern;
  }
  if (o.open_mode == "append") spec.output_append = true;
  for (auto& v : spec.volumes) {
    const auto colon = v.find(':');
    v = Absolute(v.substr(0, colon), ctx.env().cwd) +
        (colon == std::string::npos ? "" : v.substr(colon));
  }

  proto::SubmitRequest request{spec, {}, {}};
  for (const auto& a : o.after) {
    auto dep = ParseAfter(a);
    if (!dep.ok()) return ctx.UsageError(dep.status().message());
    request.spec.after.push_back(*dep);
  }
  if (!o.begin.empty()) {
    auto begin = ParseBegin(o.begin, ctx.Now());
    if (!begin.ok()) return ctx.UsageError(begin.status().message());
    request.spec.begin_time = *begin;
  }
  if (!o.array.empty()) {
    auto indexes = ParseArray(o.array, &request.spec.array_limit);
    if (!indexes.ok()) return ctx.UsageError(indexes.status().message());
    request.array_indexes = std::move(*indexes);
  }
  if (!o.sweep.empty() && !o.array.empty()) {
    return ctx.UsageError("choose one of --array and --sweep");
  }
  if (!o.sweep.empty()) {
    std::string text;
    for (const auto& s : o.sweep) text += s + " ";
    auto params = model::ParseSweep(text);
    if (!params.ok()) return ctx.UsageError(params.status().message());
    request.sweep = model::SweepPoints(*params);
    // Every point uses the same names, so checking the first checks the command for all.
    auto bytes = model::SweepCommandBytes(request.spec.argv, request.sweep.front());
    if (!bytes.ok()) return ctx.UsageError(bytes.status().message());
    request.spec.array_limit = o.sweep_limit;
  } else if (o.sweep_limit > 0) {
    return ctx.UsageError("--sweep-limit needs --sweep");
  }
  if (request.spec.stop_after_success && request.array_indexes.empty() && request.sweep.empty()) {
    return ctx.UsageError("--stop-after-first-success needs --array or --sweep");
  }

  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  // From the request on, so that a Ctrl-C once the id is printed finds the question ready.
  std::optional<InterruptWatch> interrupt;
  if (o.wait) interrupt.emplace();
  auto reply = controller->Submit(request);
  if (!reply.ok()) return ctx.RequestError(reply.status());
  // An array's members have consecutive ids from the array id.
  const bool many = !request.array_indexes.empty() || !request.sweep.empty();
  const int64_t count = !request.sweep.empty()           ? request.sweep.size()
                        : request.array_indexes.empty() ? 1
                                                        : request.array_indexes.size();
  std::vector<model::JobId> ids;
  for (int64_t i = 0; i < count; ++i) ids.push_back(reply->id + i);
  if (o.then) return o.then(reply->id);
  if (o.json) {
    nlohmann::json j = {{"id", reply->id}};
    if (many) j["jobs"] = ids;
    ctx.out() << DumpJson(j) << "\n";
  } else if (o.quiet) {
    ctx.out() << reply->id << "\n";
  } else if (many) {
    ctx.out() << "submitted " << (request.sweep.empty() ? "array " : "sweep ") << reply->id
              << " (" << count << " jobs: " << ids.front() << "-" << ids.back() << ")\n";
  } else {
    ctx.out() << "submitted job " << reply->id << "\n";
  }
  ctx.out().flush();
  if (!o.wait) return kExitOk;
  return WaitForJobs(ids, 0, ctx, &*interrupt);
}

// Accepts a value that `parse` (text -> Result) accepts; else its message.
template <typename Parse>
CLI::Validator ParsedBy(Parse parse) {
  return CLI::Validator(
      [parse](std::string& v) -> std::string {
        auto parsed = parse(v);
        return parsed.ok() ? "" : parsed.status().message();
      },
      "");
}

void AddSubmitOptions(CLI::App* sub, SubmitOptions* o) {
  model::JobSpec& s = o->spec;
  sub->add_option("-g,--gpus", o->gpus,
                  "GPUs per worker: a whole number, a share (0.5), or TYPE:N (a100:2)")
      ->check(ParsedBy(ParseGpuRequest))
      ->type_name("[TYPE:]GPUS");
  sub->add_option("--gres", o->gres, "Slurm's spelling of -g: gpu, gpu:N or gpu:TYPE:N")
      ->check(ParsedBy(ParseGres))
      ->type_name("gpu[:TYPE][:N]");
  sub->add_option("--gpu-type", o->gpu_types,
                  "GPU types its GPUs may be of: a100, or a100,h100 (`herd nodes` lists them)")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->type_name("TYPES");
  sub->add_option("-P,--pool,--partition", s.pool,
                  "node pool to run in (herd.toml [pools], or nodes labelled pool=NAME)")
      ->type_name("NAME");
  sub->add_option("--constraint", o->constraints,
                  "node labels it needs: KEY=VAL[,KEY=VAL] (e.g. rack=r1)")
      ->allow_extra_args(false)
      ->type_name("LABELS");
  sub->add_option("-w,--nodelist", o->nodelist,
                  "run only on these nodes: names or host lists such as ws[01-04]")
      ->allow_extra_args(false)
      ->type_name("NODES");
  sub->add_option("-x,--exclude", o->exclude, "never run on these nodes: names or host lists")
      ->allow_extra_args(false)
      ->type_name("NODES");
  sub->add_option("--gpu-memory", o->gpu_memory,
                  "GPU memory per worker (fractional jobs): REQ reserved, LIMIT (default REQ) "
                  "the most it may use")
      ->check(ParsedBy(ParseGpuMemory))
      ->type_name("REQ[:LIMIT]");
  sub->add_option("-c,--cpus", s.cpus, "cores per worker (default 1)")
      ->transform(CountValidator("CPU count"))
      ->type_name("N");
  sub->add_option("-m,--mem", s.memory_mib, "memory per worker, e.g. 16G (default 1G)")
      ->transform(SizeValidator(true))
      ->type_name("SIZE");
  sub->add_option("-N,--workers", s.workers, "workers started together (gang; default 1)")
      ->transform(CountValidator("worker count"))
      ->type_name("N");
  sub->add_option("-t,--time", s.time_limit_s, "time limit: 90m, 2h, 1-00:00:00")
      ->transform(DurationValidator())
      ->type_name("DURATION");
  sub->add_option("-p,--project", s.project, "project charged (default: chosen by herd-ctld)");
  sub->add_option("--class", o->job_class, "priority class: interactive, train, inference, ...");
  sub->add_flag("--interactive", o->interactive, "same as --class interactive");
  sub->add_flag("--train", o->train, "same as --class train (the default)");
  sub->add_option("-n,-J,--name", s.name, "job name");
  sub->add_option("-i,--image", s.image,
                  "rootfs directory, tarball or OCI layout DIR[:TAG]: run in a container");
  sub->add_option("-v,--volume", s.volumes,
                  "bind HOST[:CONTAINER] into the container (paths the admin allows)");
  sub->add_flag("--spread", s.spread, "place away from other jobs instead of packing");
  sub->add_option("-e,--env", o->env, "environment variable KEY=VAL (repeatable)")
      ->allow_extra_args(false)
      ->transform(EnvValidator());
  sub->add_option("--export", o->export_rule,
                  "the submitting environment the job gets: ALL (the default; NONE with --image), "
                  "NONE, or KEY,KEY=VAL,... (only those; ALL,KEY=VAL,... adds to ALL)")
      ->check(ParsedBy(ParseExport))
      ->type_name("RULE");
  sub->add_option("-o,--output", s.output,
                  "write the job's stdout (and stderr, without --error) to this file, opened as "
                  "you on the node; %j job id, %A array id, %a array index, %x name, %u user, "
                  "%N node, %t worker, %% a %")
      ->type_name("PATH");
  sub->add_option("--error", s.error, "write the job's stderr to this file (patterns as -o)")
      ->type_name("PATH");
  sub->add_option("--open-mode", o->open_mode,
                  "truncate (the default) or append to the -o/--error files when the job starts "
                  "(a restarted job always appends)")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            return v == "append" || v == "truncate" ? "" : "use append or truncate, not '" + v + "'";
          },
          ""))
      ->type_name("MODE");
  sub->add_option("--chdir", s.cwd,
                  "working directory (default: the current one; in a container, /)");
  sub->add_option("--after", o->after,
                  "start after JOB[:ok|:any|:fail] (ok: completed, the default; comma-separated)")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->type_name("JOB[:ok|:any|:fail]");
  sub->add_flag("--hold", s.hold, "submit held: it starts only after `herd release JOB`");
  sub->add_option("--begin", o->begin, "start no earlier than 2026-12-01T15:00, 15:00 or +10m")
      ->type_name("TIME");
  sub->add_option("--array", o->array,
                  "one job per index: 1-100, 1,3,5, 1-10:2; %N runs at most N at once")
      ->type_name("INDEXES[%N]");
  sub->add_option("--sweep", o->sweep,
                  "one job per combination: 'lr=1e-3,1e-4 bs=32,64'; {lr} in the command is "
                  "replaced, $HERD_SWEEP_LR set")
      ->allow_extra_args(false)
      ->type_name("SPEC");
  sub->add_option("--sweep-limit", o->sweep_limit, "run at most N jobs of the sweep at once")
      ->transform(CountValidator("sweep limit"))
      ->type_name("N");
  sub->add_flag("--stop-after-first-success", s.stop_after_success,
                "array or sweep: when one job completes (exit 0), cancel the unfinished rest");
  sub->add_flag("--wait", o->wait, "wait until the job ends (like herd wait); exit with its code");
  sub->add_flag("--pty", o->pty, "run the command under a terminal that herd attach connects to");
  sub->add_flag("-q,--quiet", o->quiet, "print only the job id");
  sub->add_flag("--json", o->json, "print {\"id\": N}");
}

int RunRun(SubmitOptions& o, CLI::App& sub, Context& ctx) {
  std::vector<std::string> command = sub.remaining();
  if (!command.empty() && command.front().size() > 1 && command.front()[0] == '-') {
    return ctx.UsageError("run: unknown option '" + command.front() + "'");
  }
  if (ctx.submit_dashdash) {
    if (!command.empty()) command.push_back("--");
    command.insert(command.end(), ctx.submit_tail.begin(), ctx.submit_tail.end());
  }
  if (command.empty()) return ctx.UsageError("missing command: herd run [options] -- COMMAND [ARGS...]");
  if (o.array.size() + o.sweep.size() > 0 || o.wait) {
    return ctx.UsageError("run: --array, --sweep and --wait are for herd submit");
  }
  if (!o.spec.output.empty() || !o.spec.error.empty() || !o.open_mode.empty()) {
    return ctx.UsageError("run: the output goes to your terminal (and herd logs); -o/--output, "
                          "--error and --open-mode are for herd submit");
  }
  for (const std::string& port : o.ports) {
    if (auto pf = ParsePortForward(port); !pf.ok()) {
      return ctx.UsageError("--port " + pf.status().message());
    }
  }
  // An interactive session unless the user chose a class.
  if (o.job_class.empty() && !o.train) o.interactive = true;
  const bool terminal = isatty(0) && isatty(1);
  o.spec.session = terminal ? "pty" : "pipes";
  o.then = [&ctx, terminal, ports = o.ports](model::JobId id) {
    return RunAttached(id, terminal, ports, ctx);
  };
  return Submit(o, std::move(command), ctx);
}

}  // namespace

void RegisterRun(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<SubmitOptions>();
  CLI::App* sub = app.add_subcommand(
      "run", "Run a command interactively on the cluster: herd run [submit options] -- CMD ARGS");
  AddSubmitOptions(sub, o.get());
  sub->add_option("--port", o->ports,
                  "forward 127.0.0.1:LOCAL to the job's port REMOTE while it runs "
                  "([LOCAL:]REMOTE; repeatable; LOCAL 0 or left out: a free port)")
      ->type_name("[LOCAL:]REMOTE")
      ->allow_extra_args(false);
  sub->prefix_command();
  sub->callback([o, sub, &ctx] { ctx.exit_code = RunRun(*o, *sub, ctx); });
}

void RegisterSubmit(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<SubmitOptions>();
  CLI::App* sub = app.add_subcommand(
      "submit", "Submit a job: herd submit [options] -- CMD ARGS, or herd submit [options] SCRIPT");
  AddSubmitOptions(sub, o.get());
  sub->prefix_command();
  sub->callback([o, sub, &ctx] { ctx.exit_code = RunSubmit(*o, *sub, ctx); });
}

}  // namespace herd::cli
