#include "cli/batch.h"

#include <algorithm>
#include <charconv>

#include "cli/format.h"

namespace herd::cli {
namespace {

std::optional<int64_t> Number(std::string_view v) {
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size() || n < 0) return {};
  return n;
}

// "a,b,,c" -> {"a", "b", "", "c"}; "" -> {""}.
std::vector<std::string> Split(std::string_view text, char separator) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t end = std::min(text.find(separator, start), text.size());
    out.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool ShellName(std::string_view name) {
  return !name.empty() && !(name[0] >= '0' && name[0] <= '9') &&
         name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
             std::string_view::npos;
}

// Splits a directive's text into words: blanks separate them, '…' and "…" group, and a word
// that starts with # begins a comment (as sbatch reads "#SBATCH -t 5  # five minutes").
Result<std::vector<std::string>> SplitWords(std::string_view text) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == ' ' || text[i] == '\t' || text[i] == '\r') {
      ++i;
      continue;
    }
    if (text[i] == '#') break;
    std::string word;
    while (i < text.size() && text[i] != ' ' && text[i] != '\t' && text[i] != '\r') {
      if (text[i] == '\'' || text[i] == '"') {
        const size_t close = text.find(text[i], i + 1);
        if (close == std::string_view::npos) return Invalid("unclosed quote");
        word.append(text.substr(i + 1, close - i - 1));
        i = close + 1;
      } else {
        word.push_back(text[i++]);
      }
    }
    words.push_back(std::move(word));
  }
  return words;
}

// How an #SBATCH option becomes herd's.
enum class Sbatch {
  kSame,        // the value goes to `herd` as it is
  kTime,        // sbatch's time format
  kNodes,       // N or MIN-MAX
  kGres,        // gpu[:TYPE]:N
  kConstraint,  // KEY=VAL[,KEY=VAL]; Slurm's bare features are not labels
  kDependency,  // afterok:ID[:ID...],...
  kFlag,        // no value
  kIgnored,     // takes a value; herd has no counterpart (see `note`)
};

struct SbatchOption {
  const char* short_name;  // "J", or "" when none
  const char* long_name;   // "job-name"
  Sbatch kind;
  const char* herd;  // herd's option, or for kIgnored why it is left out
};

// The common options of sbatch(1) herd takes over; herd-submit(1) lists the same.
constexpr SbatchOption kSbatchOptions[] = {
    {"J", "job-name", Sbatch::kSame, "--name"},
    {"t", "time", Sbatch::kTime, "--time"},
    {"c", "cpus-per-task", Sbatch::kSame, "--cpus"},
    {"", "mem", Sbatch::kSame, "--mem"},
    {"N", "nodes", Sbatch::kNodes, "--workers"},
    {"", "gres", Sbatch::kGres, "--gpus"},
    {"A", "account", Sbatch::kSame, "--project"},
    {"a", "array", Sbatch::kSame, "--array"},
    {"d", "dependency", Sbatch::kDependency, "--after"},
    {"D", "chdir", Sbatch::kSame, "--chdir"},
    {"H", "hold", Sbatch::kFlag, "--hold"},
    {"", "export", Sbatch::kSame, "--export"},
    {"p", "partition", Sbatch::kSame, "--pool"},
    {"C", "constraint", Sbatch::kConstraint, "--constraint"},
    {"w", "nodelist", Sbatch::kSame, "--nodelist"},
    {"x", "exclude", Sbatch::kSame, "--exclude"},
    {"o", "output", Sbatch::kSame, "--output"},
    {"e", "error", Sbatch::kSame, "--error"},
    {"", "open-mode", Sbatch::kSame, "--open-mode"},
};

const SbatchOption* FindSbatch(std::string_view name, bool is_long) {
  for (const auto& o : kSbatchOptions) {
    if (name == (is_long ? o.long_name : o.short_name)) return &o;
  }
  return nullptr;
}

// Translates the words of one #SBATCH line into herd options; warnings for what it leaves out.
Status TranslateSbatch(const std::vector<std::string>& words, const std::string& where,
                       std::vector<std::string>* args, std::vector<std::string>* warnings) {
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string& word = words[i];
    if (word.size() < 2 || word[0] != '-') {
      return Invalid(where + ": #SBATCH: unexpected '" + word + "' (a directive holds options)");
    }
    const bool is_long = word[1] == '-';
    std::string name, value;
    bool has_value = false;
    if (is_long) {
      const size_t eq = word.find('=');
      name = word.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      if (eq != std::string::npos) {
        value = word.substr(eq + 1);
        has_value = true;
      }
    } else {
      name = word.substr(1, 1);
      if (word.size() > 2) {
        value = word.substr(2);
        has_value = true;
      }
    }
    const std::string shown = (is_long ? "--" : "-") + name;
    const SbatchOption* o = FindSbatch(name, is_long);
    // The value of an option that takes one may be the next word.
    auto take_value = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 < words.size() && !(words[i + 1].size() > 1 && words[i + 1][0] == '-')) {
        value = words[++i];
        has_value = true;
      }
      return has_value;
    };
    if (o == nullptr) {
      // Unknown to herd: whether it takes a value is unknown too; a next word that is not an
      // option is taken as its value, so it is not read as an option of its own.
      take_value();
      warnings->push_back(where + ": #SBATCH " + shown +
                          ": herd has no such option; ignored (the job is submitted without it)");
      continue;
    }
    if (o->kind == Sbatch::kFlag) {
      args->push_back(o->herd);
      continue;
    }
    if (!take_value()) return Invalid(where + ": #SBATCH " + shown + ": missing its value");
    switch (o->kind) {
      case Sbatch::kSame:
        args->insert(args->end(), {o->herd, value});
        break;
      case Sbatch::kTime: {
        auto s = SlurmTimeSeconds(value);
        if (!s || *s == 0) {
          warnings->push_back(where + ": #SBATCH " + shown + " " + value +
                              ": not a time limit herd can use; the job gets its class's");
          break;
        }
        args->insert(args->end(), {o->herd, std::to_string(*s) + "s"});
        break;
      }
      case Sbatch::kNodes: {
        // MIN-MAX: herd starts a fixed number of workers, the least sbatch would accept.
        const size_t dash = value.find('-');
        if (dash != std::string::npos) {
          warnings->push_back(where + ": #SBATCH " + shown + " " + value +
                              ": herd starts a fixed number of workers; using " +
                              value.substr(0, dash));
        }
        args->insert(args->end(), {o->herd, value.substr(0, dash)});
        break;
      }
      case Sbatch::kGres: {
        // gpu, gpu:N, gpu:TYPE or gpu:TYPE:N; several resources are separated by commas.
        for (const std::string& item : Split(value, ',')) {
          const std::vector<std::string> parts = Split(item, ':');
          std::string type, count = "1";
          if (parts.size() == 2 && Number(parts[1])) {
            count = parts[1];
          } else if (parts.size() >= 2) {
            type = parts[1];
          }
          if (parts.size() == 3) count = parts[2];
          if (parts[0] != "gpu" || parts.size() > 3 || !Number(count)) {
            warnings->push_back(where + ": #SBATCH " + shown + " " + item +
                                ": herd knows only gpu, gpu:N and gpu:TYPE:N; ignored");
            continue;
          }
          args->insert(args->end(), {o->herd, type.empty() ? count : type + ":" + count});
        }
        break;
      }
      case Sbatch::kConstraint:
        if (value.find('=') == std::string::npos) {
          warnings->push_back(where + ": #SBATCH " + shown + " " + value +
                              ": herd's constraints are node labels KEY=VALUE (such as "
                              "gpu=a100); ignored");
          break;
        }
        args->insert(args->end(), {o->herd, value});
        break;
      case Sbatch::kDependency: {
        // afterok:ID[:ID...], afterany:..., afternotok:...; ',' means all of them.
        for (const std::string& item : Split(value, ',')) {
          const std::vector<std::string> parts = Split(item, ':');
          const std::string& type = parts[0];
          const char* kind = type == "afterok"      ? "ok"
                             : type == "afterany"   ? "any"
                             : type == "afternotok" ? "fail"
                                                    : nullptr;
          if (kind == nullptr || parts.size() < 2) {
            warnings->push_back(where + ": #SBATCH " + shown + " " + item +
                                ": herd knows afterok, afterany and afternotok; ignored");
            continue;
          }
          for (size_t p = 1; p < parts.size(); ++p) {
            args->insert(args->end(), {o->herd, parts[p] + ":" + kind});
          }
        }
        break;
      }
      case Sbatch::kIgnored:
        warnings->push_back(where + ": #SBATCH " + shown + " " + value + ": ignored: " + o->herd);
        break;
      case Sbatch::kFlag:
        break;
    }
  }
  return Status::Ok();
}

// Whether `line` is the directive `tag` ("#HERD") followed by a blank or nothing.
bool IsDirective(std::string_view line, std::string_view tag) {
  return line.starts_with(tag) &&
         (line.size() == tag.size() || line[tag.size()] == ' ' || line[tag.size()] == '\t');
}

}  // namespace

Result<Directives> ReadDirectives(std::string_view script, const std::string& file) {
  Directives out;
  size_t start = 0;
  int number = 0;
  while (start < script.size()) {
    size_t end = script.find('\n', start);
    if (end == std::string_view::npos) end = script.size();
    std::string_view line = script.substr(start, end - start);
    start = end + 1;
    ++number;
    if (number == 1 && line.starts_with("#!")) continue;
    const size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos) continue;  // blank
    if (line[first] != '#') break;                  // the script proper begins
    const bool herd = IsDirective(line, "#HERD");
    if (!herd && !IsDirective(line, "#SBATCH")) continue;  // a plain comment
    const std::string where = file + ":" + std::to_string(number);
    auto words = SplitWords(line.substr(herd ? 5 : 7));
    if (!words.ok()) return Invalid(where + ": " + words.status().message());
    DirectiveLine d{number, {}};
    if (herd) {
      d.args = std::move(*words);
    } else {
      HERD_RETURN_IF_ERROR(TranslateSbatch(*words, where, &d.args, &out.warnings));
    }
    if (!d.args.empty()) out.lines.push_back(std::move(d));
  }
  return out;
}

std::optional<int64_t> SlurmTimeSeconds(std::string_view text) {
  int64_t days = 0;
  bool has_days = false;
  if (const size_t dash = text.find('-'); dash != std::string_view::npos) {
    auto d = Number(text.substr(0, dash));
    if (!d) return {};
    days = *d;
    has_days = true;
    text = text.substr(dash + 1);
  }
  std::vector<int64_t> parts;
  for (const std::string& part : Split(text, ':')) {
    auto n = Number(part);
    if (!n || parts.size() == 3) return {};
    parts.push_back(*n);
  }
  int64_t h = 0, m = 0, s = 0;
  if (has_days) {  // D-H, D-H:M, D-H:M:S
    h = parts[0];
    if (parts.size() > 1) m = parts[1];
    if (parts.size() > 2) s = parts[2];
  } else if (parts.size() == 3) {  // H:M:S
    h = parts[0], m = parts[1], s = parts[2];
  } else {  // M, M:S
    m = parts[0];
    if (parts.size() > 1) s = parts[1];
  }
  return ((days * 24 + h) * 60 + m) * 60 + s;
}

Result<ExportRule> ParseExport(const std::string& text) {
  const Status bad = Invalid("--export: invalid '" + text +
                             "': use ALL, NONE, or KEY,KEY=VAL,... (ALL,KEY=VAL,... adds to ALL)");
  ExportRule rule;
  rule.all = false;
  if (text == "NONE") return rule;
  for (const std::string& item : Split(text, ',')) {
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    if (item == "ALL") {
      rule.all = true;
    } else if (item == "NONE" || !ShellName(key)) {  // NONE stands alone
      return bad;
    } else if (eq == std::string::npos) {
      rule.names.push_back(key);
    } else if (!IsValidUtf8(item.substr(eq + 1))) {
      return Invalid("--export: the value of " + key + " is not valid UTF-8");
    } else {
      rule.values[key] = item.substr(eq + 1);
    }
  }
  return rule;
}

bool LeftOutOfExport(std::string_view name) {
  // Of the login session, meaningless where the job runs.
  for (std::string_view prefix : {"SSH_", "XDG_SESSION_"}) {
    if (name.starts_with(prefix)) return true;
  }
  for (std::string_view exact :
       {"DISPLAY", "XAUTHORITY", "TERM", "TERMCAP", "PWD", "OLDPWD", "SHLVL", "_",
        "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS"}) {
    if (name == exact) return true;
  }
  // Set by herd for the job (where it would not set them, another job's would be wrong).
  if (name.starts_with("HERD_")) return name != "HERD_CONFIG";
  if (name.starts_with("CUDA_MPS_")) return true;
  for (std::string_view exact : {"CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES",
                                 "CUDA_DEVICE_ORDER"}) {
    if (name == exact) return true;
  }
  return false;
}

std::map<std::string, std::string> ExportedEnvironment(
    const ExportRule& rule, const std::map<std::string, std::string>& vars,
    std::vector<std::string>* warnings) {
  std::map<std::string, std::string> out;
  if (rule.all) {
    std::vector<std::string> not_utf8;
    for (const auto& [k, v] : vars) {
      if (k.empty() || LeftOutOfExport(k)) continue;
      if (!IsValidUtf8(k) || !IsValidUtf8(v)) {
        not_utf8.push_back(IsValidUtf8(k) ? k : "(a name that is not UTF-8)");
        continue;
      }
      out[k] = v;
    }
    if (!not_utf8.empty()) {
      std::string list;
      for (const auto& k : not_utf8) list += (list.empty() ? "" : ", ") + k;
      warnings->push_back("not exported (not valid UTF-8): " + list);
    }
    // Over the budget: the largest go first, so that as many variables as possible stay.
    size_t bytes = 0;
    for (const auto& [k, v] : out) bytes += k.size() + v.size();
    if (out.size() > kExportMaxEntries || bytes > kExportMaxBytes) {
      std::vector<std::pair<size_t, std::string>> by_size;
      for (const auto& [k, v] : out) by_size.emplace_back(k.size() + v.size(), k);
      std::sort(by_size.begin(), by_size.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
      });
      std::string list;
      for (const auto& [size, k] : by_size) {
        if (out.size() <= kExportMaxEntries && bytes <= kExportMaxBytes) break;
        out.erase(k);
        bytes -= size;
        list += (list.empty() ? "" : ", ") + k;
      }
      warnings->push_back("the environment is larger than herd records (" +
                          std::to_string(kExportMaxEntries) + " variables, " +
                          std::to_string(kExportMaxBytes >> 10) +
                          " KiB); not exported, largest first: " + list +
                          " (pass one with -e KEY=VAL or --export=ALL,KEY to keep it)");
    }
  }
  for (const auto& k : rule.names) {
    auto it = vars.find(k);
    if (it == vars.end()) {
      warnings->push_back("--export: " + k + " is not set here; not exported");
    } else if (!IsValidUtf8(it->second)) {
      warnings->push_back("--export: the value of " + k + " is not valid UTF-8; not exported");
    } else {
      out[k] = it->second;
    }
  }
  for (const auto& [k, v] : rule.values) out[k] = v;
  return out;
}

}  // namespace herd::cli
