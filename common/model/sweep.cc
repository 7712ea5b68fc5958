#include "common/model/sweep.h"

#include <cctype>
#include <set>

namespace herd::model {

bool IsSweepName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

std::string SweepEnvName(std::string_view name) {
  std::string env = "HERD_SWEEP_";
  for (char c : name) env += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

Result<std::vector<SweepParam>> ParseSweep(std::string_view text) {
  const std::string how = ": write NAME=V1,V2,... items separated by spaces, e.g. "
                          "'lr=1e-3,1e-4 bs=32,64'";
  std::vector<SweepParam> params;
  std::set<std::string> env_names;
  int64_t product = 1;
  size_t pos = 0;
  while (pos < text.size()) {
    if (std::isspace(static_cast<unsigned char>(text[pos]))) {
      ++pos;
      continue;
    }
    size_t end = pos;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end]))) ++end;
    const std::string item(text.substr(pos, end - pos));
    pos = end;
    const auto eq = item.find('=');
    if (eq == std::string::npos) return Invalid("--sweep: '" + item + "' has no '='" + how);
    SweepParam p;
    p.name = item.substr(0, eq);
    if (!IsSweepName(p.name)) {
      return Invalid("--sweep: invalid name '" + p.name +
                     "': use letters, digits and _, not starting with a digit");
    }
    if (!env_names.insert(SweepEnvName(p.name)).second) {
      return Invalid("--sweep: parameter '" + p.name + "' is given twice (names are compared "
                     "without case: each becomes " + SweepEnvName(p.name) + ")");
    }
    const std::string list = item.substr(eq + 1);
    if (list.empty()) return Invalid("--sweep: parameter '" + p.name + "' has no values" + how);
    size_t start = 0;
    while (start <= list.size()) {
      const size_t comma = std::min(list.find(',', start), list.size());
      if (comma == start) {
        return Invalid("--sweep: parameter '" + p.name + "' has an empty value in '" + list +
                       "'" + how);
      }
      p.values.push_back(list.substr(start, comma - start));
      start = comma + 1;
    }
    product *= static_cast<int64_t>(p.values.size());
    if (product > kMaxArrayJobs) {
      return Invalid("--sweep: the product of the value lists is over " +
                     std::to_string(kMaxArrayJobs) + " jobs; sweep fewer values");
    }
    params.push_back(std::move(p));
  }
  if (params.empty()) return Invalid("--sweep: no parameters" + how);
  return params;
}

std::vector<std::map<std::string, std::string>> SweepPoints(const std::vector<SweepParam>& params) {
  std::vector<std::map<std::string, std::string>> points(1);
  for (const auto& p : params) {
    std::vector<std::map<std::string, std::string>> next;
    next.reserve(points.size() * p.values.size());
    for (const auto& point : points) {
      for (const auto& v : p.values) {
        next.push_back(point);
        next.back()[p.name] = v;
      }
    }
    points = std::move(next);
  }
  return points;
}

namespace {

bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// Walks `arg` once, left to right: `text(piece)` for each run kept as written, `value(v)` for
// each {name} replaced. Linear in arg's size: a name's scan stops at its first non-name char.
template <typename Text, typename Value>
Status WalkSweepArg(const std::string& arg, const std::map<std::string, std::string>& point,
                    Text text, Value value) {
  size_t kept = 0;  // start of the run not yet given to text()
  for (size_t i = 0; i < arg.size(); ++i) {
    if (arg[i] != '{' || (i > 0 && arg[i - 1] == '$')) continue;
    size_t close = i + 1;
    while (close < arg.size() && IsNameChar(arg[close])) ++close;
    if (close == arg.size() || arg[close] != '}') continue;
    const std::string_view name(arg.data() + i + 1, close - i - 1);
    if (!IsSweepName(name)) continue;
    auto it = point.find(std::string(name));
    if (it == point.end()) {
      std::string known;
      for (const auto& [k, v] : point) known += (known.empty() ? "" : ", ") + k;
      return Invalid("the command uses {" + std::string(name) + "} but the sweep defines only " +
                     known + " (add " + std::string(name) + "=... to --sweep, or write ${" +
                     std::string(name) + "} for a shell variable)");
    }
    text(std::string_view(arg.data() + kept, i - kept));
    value(it->second);
    kept = close + 1;
    i = close;
  }
  text(std::string_view(arg.data() + kept, arg.size() - kept));
  return Status::Ok();
}

}  // namespace

Result<size_t> SweepCommandBytes(const std::vector<std::string>& argv,
                                 const std::map<std::string, std::string>& point) {
  size_t n = 0;
  for (const auto& arg : argv) {
    Status s = WalkSweepArg(
        arg, point, [&](std::string_view t) { n += t.size(); },
        [&](const std::string& v) { n += v.size(); });
    if (!s.ok()) return s;
  }
  return n;
}

Result<std::vector<std::string>> SubstituteSweep(const std::vector<std::string>& argv,
                                                 const std::map<std::string, std::string>& point) {
  std::vector<std::string> out;
  out.reserve(argv.size());
  for (const auto& arg : argv) {
    std::string s;
    Status st = WalkSweepArg(
        arg, point, [&](std::string_view t) { s += t; }, [&](const std::string& v) { s += v; });
    if (!st.ok()) return st;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace herd::model
