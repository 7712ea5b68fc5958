#include "common/model/output_path.h"

#include <algorithm>

namespace herd::model {
namespace {

constexpr size_t kMaxPad = 10;  // as Slurm: a wider pad is taken as 10

// One replacement at pattern[at] ('%'): its text and the length it spans; length 0 when the
// '%' starts none.
struct Replacement {
  std::string text;
  size_t length = 0;
};

Replacement ReplacementAt(std::string_view pattern, size_t at, const OutputNames& names) {
  size_t i = at + 1;
  size_t pad = 0;
  while (i < pattern.size() && pattern[i] >= '0' && pattern[i] <= '9') {
    pad = std::min(kMaxPad, pad * 10 + static_cast<size_t>(pattern[i] - '0'));
    ++i;
  }
  if (i >= pattern.size()) return {};
  const bool padded = i > at + 1;
  auto number = [&](int64_t n) {
    std::string s = std::to_string(n);
    if (s.size() < pad) s.insert(0, pad - s.size(), '0');
    return Replacement{s, i + 1 - at};
  };
  switch (pattern[i]) {
    case 'j':
      return number(names.job_id);
    case 'A':
      return number(names.array_id != 0 ? names.array_id : names.job_id);
    case 'a':
      return number(names.array_index);
    case 't':
      return number(names.worker);
    case 'x':
      return {names.name, i + 1 - at};
    case 'u':
      return {names.user, i + 1 - at};
    case 'N':
      return {names.node.empty() ? std::string(pattern.substr(at, i + 1 - at)) : names.node,
              i + 1 - at};
    case '%':
      if (padded) return {};
      return {"%", 2};
    default:
      return {};
  }
}

}  // namespace

OutputNames OutputNamesOf(const Job& job, int32_t worker) {
  OutputNames n;
  n.job_id = job.id;
  n.array_id = job.spec.array_id;
  n.array_index = job.spec.array_index;
  n.name = job.spec.name;
  n.user = job.user;
  if (!job.placement.empty()) n.node = job.placement.front().node;
  n.worker = worker;
  return n;
}

Status CheckOutputPattern(std::string_view pattern, std::string_view option) {
  const OutputNames sample;
  for (size_t i = pattern.find('%'); i != std::string_view::npos; i = pattern.find('%', i)) {
    Replacement r = ReplacementAt(pattern, i, sample);
    if (r.length == 0) {
      return Invalid(std::string(option) + ": '" + std::string(pattern) + "': '" +
                     std::string(pattern.substr(i, 2)) +
                     "' is not a replacement herd knows: use %j (job id), %A (array id), "
                     "%a (array index), %x (job name), %u (user), %N (node), %t (worker) or %% "
                     "(a literal %)");
    }
    i += r.length;
  }
  if (pattern.find('\0') != std::string_view::npos) {
    return Invalid(std::string(option) + ": a path cannot hold a NUL byte");
  }
  if (pattern.size() > kMaxOutputPathBytes) {
    return Invalid(std::string(option) + ": the path is longer than " +
                   std::to_string(kMaxOutputPathBytes) + " bytes");
  }
  return Status::Ok();
}

std::string ExpandOutputPattern(std::string_view pattern, const OutputNames& names) {
  std::string out;
  size_t i = 0;
  while (i < pattern.size()) {
    const size_t pct = pattern.find('%', i);
    out.append(pattern.substr(i, pct == std::string_view::npos ? pct : pct - i));
    if (pct == std::string_view::npos) break;
    Replacement r = ReplacementAt(pattern, pct, names);
    if (r.length == 0) {
      out.append(pattern.substr(pct));
      break;
    }
    out += r.text;
    i = pct + r.length;
  }
  return out;
}

OutputPaths ResolveOutputPaths(const JobSpec& spec, const OutputNames& names) {
  OutputPaths paths;
  if (!spec.output.empty()) paths.stdout_path = ExpandOutputPattern(spec.output, names);
  if (!spec.error.empty()) {
    paths.stderr_path = ExpandOutputPattern(spec.error, names);
  } else {
    paths.stderr_path = paths.stdout_path;
  }
  return paths;
}

}  // namespace herd::model
