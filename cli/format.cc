#include "cli/format.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "common/model/output_path.h"
#include "common/model/units.h"

namespace herd::cli {
namespace {

// `herd show` lists a job's environment variables up to this many, else counts them.
constexpr size_t kShownEnvVariables = 10;

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// The length of the valid UTF-8 sequence at text[i] (its code point in *cp), or 0 when the byte
// there starts none: a stray continuation, a cut sequence, an overlong form, a surrogate.
size_t DecodeUtf8(std::string_view text, size_t i, char32_t* cp) {
  const auto c = static_cast<unsigned char>(text[i]);
  size_t len = 0;
  char32_t v = 0;
  if (c < 0x80) {
    *cp = c;
    return 1;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2, v = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3, v = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4, v = c & 0x07;
  } else {
    return 0;
  }
  if (i + len > text.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto d = static_cast<unsigned char>(text[i + k]);
    if (!IsContinuation(d)) return 0;
    v = (v << 6) | (d & 0x3F);
  }
  static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

struct CodePointRange {
  char32_t first, last;
};

// Characters a terminal draws in no column of their own: combining marks, variation selectors,
// zero-width characters, Hangul vowel and final jamo that join the syllable before them.
constexpr CodePointRange kZeroWidth[] = {
    {0x0300, 0x036F}, {0x0483, 0x0489}, {0x0591, 0x05BD}, {0x05BF, 0x05BF}, {0x05C1, 0x05C2},
    {0x05C4, 0x05C5}, {0x05C7, 0x05C7}, {0x0610, 0x061A}, {0x064B, 0x065F}, {0x0670, 0x0670},
    {0x06D6, 0x06DC}, {0x06DF, 0x06E4}, {0x06E7, 0x06E8}, {0x06EA, 0x06ED}, {0x0E31, 0x0E31},
    {0x0E34, 0x0E3A}, {0x0E47, 0x0E4E}, {0x1160, 0x11FF}, {0x1AB0, 0x1AFF}, {0x1DC0, 0x1DFF},
    {0x200B, 0x200F}, {0x20D0, 0x20FF}, {0xD7B0, 0xD7FF}, {0xFE00, 0xFE0F}, {0xFE20, 0xFE2F},
    {0xE0100, 0xE01EF},
};

// East Asian Wide and Fullwidth characters (CJK, Hangul syllables, kana, fullwidth forms) and
// emoji shown as emoji by default: two columns.
constexpr CodePointRange kWide[] = {
    {0x1100, 0x115F},   {0x231A, 0x231B},   {0x2329, 0x232A},   {0x23E9, 0x23EC},
    {0x23F0, 0x23F0},   {0x23F3, 0x23F3},   {0x25FD, 0x25FE},   {0x2614, 0x2615},
    {0x2648, 0x2653},   {0x267F, 0x267F},   {0x2693, 0x2693},   {0x26A1, 0x26A1},
    {0x26AA, 0x26AB},   {0x26BD, 0x26BE},   {0x26C4, 0x26C5},   {0x26CE, 0x26CE},
    {0x26D4, 0x26D4},   {0x26EA, 0x26EA},   {0x26F2, 0x26F3},   {0x26F5, 0x26F5},
    {0x26FA, 0x26FA},   {0x26FD, 0x26FD},   {0x2705, 0x2705},   {0x270A, 0x270B},
    {0x2728, 0x2728},   {0x274C, 0x274C},   {0x274E, 0x274E},   {0x2753, 0x2755},
    {0x2757, 0x2757},   {0x2795, 0x2797},   {0x27B0, 0x27B0},   {0x27BF, 0x27BF},
    {0x2B1B, 0x2B1C},   {0x2B50, 0x2B50},   {0x2B55, 0x2B55},   {0x2E80, 0x303E},
    {0x3041, 0x33FF},   {0x3400, 0x4DBF},   {0x4E00, 0x9FFF},   {0xA000, 0xA4CF},
    {0xA960, 0xA97F},   {0xAC00, 0xD7A3},   {0xF900, 0xFAFF},   {0xFE10, 0xFE19},
    {0xFE30, 0xFE6F},   {0xFF00, 0xFF60},   {0xFFE0, 0xFFE6},   {0x16FE0, 0x16FE4},
    {0x17000, 0x18AFF}, {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF},
    {0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F202}, {0x1F210, 0x1F23B},
    {0x1F240, 0x1F248}, {0x1F250, 0x1F251}, {0x1F260, 0x1F265}, {0x1F300, 0x1F64F},
    {0x1F680, 0x1F6FF}, {0x1F7E0, 0x1F7EB}, {0x1F90C, 0x1F9FF}, {0x1FA70, 0x1FAFF},
    {0x20000, 0x2FFFD}, {0x30000, 0x3FFFD},
};

template <size_t N>
bool InRanges(const CodePointRange (&ranges)[N], char32_t cp) {
  const auto* it = std::upper_bound(std::begin(ranges), std::end(ranges), cp,
                                    [](char32_t v, const CodePointRange& r) { return v < r.first; });
  return it != std::begin(ranges) && cp <= std::prev(it)->last;
}

// Terminal columns of one code point.
size_t CodePointWidth(char32_t cp) {
  if (InRanges(kZeroWidth, cp)) return 0;
  return InRanges(kWide, cp) ? 2 : 1;
}

// `cell` cut to at most `width` columns, ending in "…" when cut. Whole characters only; a
// combining mark stays with the character before it.
std::string Cut(const std::string& cell, size_t width) {
  if (DisplayWidth(cell) <= width) return cell;
  if (width == 0) return "";
  const size_t budget = width - 1;  // the ellipsis takes one
  size_t used = 0, i = 0;
  while (i < cell.size()) {
    char32_t cp = 0xFFFD;
    const size_t len = std::max<size_t>(DecodeUtf8(cell, i, &cp), 1);
    const size_t w = CodePointWidth(cp);
    if (used + w > budget) break;
    used += w;
    i += len;
  }
  return cell.substr(0, i) + "\xE2\x80\xA6";  // "…"
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

// {0,1,2,3,7} -> "0-3,7".
std::string FormatIdList(const std::vector<int>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(ids[i]);
    if (j > i) out += (j == i + 1 ? "," : "-") + std::to_string(ids[j]);
    i = j + 1;
  }
  return out.empty() ? "-" : out;
}

nlohmann::json GpuNumber(int64_t milli) {
  if (milli % 1000 == 0) return milli / 1000;
  return static_cast<double>(milli) / 1000.0;
}

nlohmann::json TimeOrNull(int64_t t) { return t > 0 ? nlohmann::json(t) : nlohmann::json(); }

// A measured quantity (-1: not measured) for --json.
nlohmann::json MeasuredOrNull(int64_t v) { return v >= 0 ? nlohmann::json(v) : nlohmann::json(); }

// Bytes as "512K", "40M", "1.5G".
std::string FormatBytes(int64_t bytes) {
  if (bytes < (1 << 20)) return std::to_string((bytes + 1023) / 1024) + "K";
  return model::FormatSizeMiB(bytes >> 20);
}

std::string Basename(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// `words` without repeats, in their order.
std::vector<std::string> Unique(const std::vector<std::string>& words) {
  std::vector<std::string> out;
  for (const auto& w : words) {
    if (std::find(out.begin(), out.end(), w) == out.end()) out.push_back(w);
  }
  return out;
}

// "a100,h100": `words` without repeats, joined by commas.
std::string Distinct(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : Unique(words)) out += (out.empty() ? "" : ",") + w;
  return out;
}

std::string GpuModels(const model::NodeTopology& topo) {
  std::vector<std::string> models;
  for (const auto& g : topo.gpus) models.push_back(g.model);
  return Distinct(models);
}

std::string NodeName(const proto::NodeStatus& n) {
  return n.name.empty() ? n.topology.hostname : n.name;
}

std::string Topology(const model::NodeTopology& topo) {
  if (topo.emulated) return "emulated: " + Basename(topo.source);
  return std::to_string(topo.sockets) + " sockets, " + std::to_string(topo.numa.size()) +
         " NUMA, " + std::to_string(topo.nics.size()) + " NICs";
}

}  // namespace

namespace {
// Characters that reorder or hide the text around them: zero-width spaces and marks, line and
// paragraph separators, bidirectional embeddings, overrides and isolates, the byte order mark.
bool IsHiddenFormat(unsigned cp) {
  return (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x2028 && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF;
}
// The code point of a valid 3-byte UTF-8 sequence.
unsigned CodePoint3(std::string_view seq) {
  const auto b = [&](size_t i) { return static_cast<unsigned>(static_cast<unsigned char>(seq[i])); };
  return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
}
}  // namespace

std::string EscapeText(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  auto hex = [&out](const char* prefix, unsigned v, int digits) {
    out += prefix;
    for (int d = digits - 1; d >= 0; --d) out += kHex[(v >> (4 * d)) & 0xF];
  };
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c == 0x7F) {
      switch (c) {
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        case 0x1B: out += "\\e"; break;
        default: hex("\\x", c, 2);
      }
      ++i;
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    // One UTF-8 sequence: kept when valid and not a C1 control, else escaped byte by byte.
    const size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    const std::string_view seq = text.substr(i, len);
    if (len == 0 || seq.size() < len || !IsValidUtf8(seq)) {
      hex("\\x", c, 2);
      ++i;
      continue;
    }
    if (c == 0xC2 && static_cast<unsigned char>(seq[1]) < 0xA0) {
      hex("\\u00", static_cast<unsigned char>(seq[1]), 2);  // U+0080..U+009F
    } else if (const unsigned cp = len == 3 ? CodePoint3(seq) : 0; IsHiddenFormat(cp)) {
      hex("\\u", cp, 4);
    } else {
      out += seq;
    }
    i += len;
  }
  return out;
}

size_t DisplayWidth(std::string_view text) {
  size_t columns = 0;
  for (size_t i = 0; i < text.size();) {
    char32_t cp = 0xFFFD;  // a byte that is not UTF-8 shows as one replacement character
    i += std::max<size_t>(DecodeUtf8(text, i, &cp), 1);
    columns += CodePointWidth(cp);
  }
  return columns;
}

bool IsValidUtf8(std::string_view text) {
  char32_t cp = 0;
  for (size_t i = 0, len = 0; i < text.size(); i += len) {
    len = DecodeUtf8(text, i, &cp);
    if (len == 0) return false;
  }
  return true;
}

Table::Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  for (auto& cell : cells) cell = EscapeText(cell);
  rows_.push_back(std::move(cells));
}

void Table::Print(std::ostream& out, int width) const {
  const size_t n = headers_.size();
  std::vector<size_t> widths(n), minimum(n);
  for (size_t i = 0; i < n; ++i) {
    widths[i] = DisplayWidth(headers_[i]);
    for (const auto& row : rows_) widths[i] = std::max(widths[i], DisplayWidth(row[i]));
    minimum[i] = std::min(widths[i], std::max<size_t>(DisplayWidth(headers_[i]), 4));
  }
  if (width > 0) {
    size_t total = 2 * (n - 1);
    for (size_t w : widths) total += w;
    // Take one column from the widest cuttable column until the line fits.
    while (total > static_cast<size_t>(width)) {
      size_t widest = n;
      for (size_t i = 0; i < n; ++i) {
        if (widths[i] > minimum[i] && (widest == n || widths[i] > widths[widest])) widest = i;
      }
      if (widest == n) break;
      --widths[widest];
      --total;
    }
  }
  auto print_line = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < n; ++i) {
      std::string cell = Cut(cells[i], widths[i]);
      line += cell;
      if (i + 1 < n) line += std::string(widths[i] - DisplayWidth(cell) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  };
  print_line(headers_);
  for (const auto& row : rows_) print_line(row);
}

std::string JobGpus(const model::Job& job) {
  return model::FormatGpuMilli(job.spec.gpu_milli * job.spec.workers);
}

std::string JobNodes(const model::Job& job) {
  std::vector<std::string> nodes;
  for (const auto& p : job.placement) {
    if (std::find(nodes.begin(), nodes.end(), p.node) == nodes.end()) nodes.push_back(p.node);
  }
  std::string out;
  for (const auto& node : nodes) out += (out.empty() ? "" : ",") + node;
  return OrDash(out);
}

// The REASON column: why it waits or ended, or for a running session whether a herd is attached.
std::string JobReason(const model::Job& job) {
  if (job.reason.empty() && job.state == model::JobState::kRunning && !job.session_state.empty()) {
    return "session " + job.session_state;
  }
  return job.reason;
}

std::string JobTime(const model::Job& job, int64_t now) {
  using model::JobState;
  if (model::IsTerminal(job.state)) {
    if (job.start_time <= 0 || job.end_time < job.start_time) return "-";
    return model::FormatDuration(job.end_time - job.start_time);
  }
  if (job.state == JobState::kPending) {
    return model::FormatDuration(std::max<int64_t>(0, now - job.submit_time));
  }
  if (job.start_time <= 0) return "-";
  return model::FormatDuration(std::max<int64_t>(0, now - job.start_time));
}

Result<int64_t> ParseWhen(const std::string& text, int64_t now) {
  if (text == "now") return now;
  for (const char* format : {"%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S",
                             "%Y-%m-%d %H:%M", "%Y-%m-%d"}) {
    struct tm tm = {};
    const char* end = strptime(text.c_str(), format, &tm);
    if (end != nullptr && *end == '\0') {
      tm.tm_isdst = -1;
      return static_cast<int64_t>(mktime(&tm));
    }
  }
  auto ago = model::ParseDurationSeconds(text);
  if (ago.ok()) return now - *ago;
  return Invalid("invalid date '" + text +
                 "': expected YYYY-MM-DD[THH:MM[:SS]], 'now', or a duration ago like 7d");
}

std::string FormatTimestamp(int64_t epoch_seconds) {
  if (epoch_seconds <= 0) return "-";
  const time_t t = static_cast<time_t>(epoch_seconds);
  struct tm tm {};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return buf;
}

std::string FormatCommand(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& arg : argv) {
    if (!out.empty()) out += " ";
    const bool plain = !arg.empty() && arg.find_first_not_of(
                                           "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789_./=:,@%+-") == std::string::npos;
    if (plain) {
      out += arg;
      continue;
    }
    out += "'";
    for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    out += "'";
  }
  return out;
}

std::string FormatSweepPoint(const std::map<std::string, std::string>& point) {
  std::string out;
  for (const auto& [name, value] : point) out += (out.empty() ? "" : " ") + name + "=" + value;
  return out;
}

void PrintJobsTable(const std::vector<model::Job>& jobs, int64_t now, int width,
                    std::ostream& out, bool group_arrays) {
  Table table({"ID", "NAME", "USER", "PROJECT", "CLASS", "STATE", "GPUS", "NODES", "TIME",
               "REASON"});
  std::map<model::JobId, std::vector<const model::Job*>> arrays;
  if (group_arrays) {
    for (const auto& job : jobs) {
      if (job.spec.array_id != 0) arrays[job.spec.array_id].push_back(&job);
    }
  }
  for (const auto& job : jobs) {
    if (auto it = arrays.find(job.spec.array_id); it != arrays.end()) {
      if (it->second.front() != &job) continue;  // one row per array, where its first member is
      std::vector<int> indexes;
      std::map<std::string, int> states;
      std::string reason;
      for (const model::Job* m : it->second) {
        indexes.push_back(static_cast<int>(m->spec.array_index));
        states[model::JobStateName(m->state)]++;
        if (reason.empty() && m->state == model::JobState::kPending) reason = m->reason;
      }
      std::sort(indexes.begin(), indexes.end());
      std::string counts;
      for (const auto& [state, n] : states) {
        counts += (counts.empty() ? "" : ",") + std::to_string(n) + " " + state;
      }
      table.AddRow({std::to_string(it->first) + "[" + FormatIdList(indexes) + "]",
                    OrDash(job.spec.name), OrDash(job.user), OrDash(job.spec.project),
                    OrDash(job.spec.job_class), counts, JobGpus(job) + " each", "-", "-",
                    OrDash(reason)});
      continue;
    }
    // An array's member as ID_INDEX (40_2), the name every verb takes for it.
    table.AddRow({model::JobRefText(job), OrDash(job.spec.name), OrDash(job.user),
                  OrDash(job.spec.project), OrDash(job.spec.job_class),
                  model::JobStateName(job.state), JobGpus(job), JobNodes(job), JobTime(job, now),
                  OrDash(JobReason(job))});
  }
  table.Print(out, width);
}

void PrintJobDetails(const model::Job& job, int64_t now, std::ostream& out) {
  const model::JobSpec& s = job.spec;
  std::vector<std::pair<std::string, std::string>> lines = {
      {"JobId", std::to_string(job.id)},
      {"Name", OrDash(s.name)},
      {"User", OrDash(job.user) + " (uid " + std::to_string(job.uid) + ", gid " +
                   std::to_string(job.gid) + ")"},
      {"Project", OrDash(s.project)},
      {"Class", OrDash(s.job_class)},
      {"State", model::JobStateName(job.state)},
      {"Reason", OrDash(job.reason)},
      {"Session", OrDash(s.session.empty() ? "" : s.session + (job.session_state.empty() ? "" : ", " + job.session_state))},
      {"Command", OrDash(FormatCommand(s.argv))},
      {"WorkDir", OrDash(s.cwd)},
      {"Image", OrDash(s.image)},
      {"Workers", std::to_string(s.workers)},
      {"GpusPerWorker", model::FormatGpuMilli(s.gpu_milli)},
      {"GpuMemory", s.gpu_memory_mib > 0 ? model::FormatSizeMiB(s.gpu_memory_mib) +
                                               (s.gpu_memory_limit_mib > s.gpu_memory_mib
                                                    ? " (limit " +
                                                          model::FormatSizeMiB(
                                                              s.gpu_memory_limit_mib) +
                                                          ")"
                                                    : "")
                                         : "-"},
      {"CpusPerWorker", std::to_string(s.cpus)},
      {"MemPerWorker", model::FormatSizeMiB(s.memory_mib)},
      {"TimeLimit", s.time_limit_s > 0 ? model::FormatDuration(s.time_limit_s) : "-"},
      {"Placement", s.spread ? "spread" : "pack"},
      {"Submitted", FormatTimestamp(job.submit_time)},
      {"Started", FormatTimestamp(job.start_time)},
      {"Ended", FormatTimestamp(job.end_time)},
      {"Time", JobTime(job, now)},
      {"ExitCode", job.exit_code >= 0 ? std::to_string(job.exit_code) : "-"},
      {"Restarts", std::to_string(job.restart_count)},
      {"Preemptions", std::to_string(job.preemptions)},
      {"GpuUtil", job.GpuUtilPct() >= 0
                      ? std::to_string(job.GpuUtilPct()) + "% (time-weighted average of its GPUs)"
                      : "-"},
  };
  if (s.array_id != 0) {
    lines.push_back({"Array", std::to_string(s.array_id) + "[" + std::to_string(s.array_index) +
                                  "]" + (s.array_limit > 0 ? " %" + std::to_string(s.array_limit)
                                                           : "")});
  }
  if (!s.sweep.empty()) lines.push_back({"Sweep", FormatSweepPoint(s.sweep)});
  if (s.stop_after_success) lines.push_back({"StopAfterFirstSuccess", "yes"});
  if (!s.gpu_types.empty()) lines.push_back({"GpuTypes", Distinct(s.gpu_types)});
  if (!s.pool.empty()) lines.push_back({"Pool", s.pool});
  if (!s.constraints.empty()) {
    std::vector<std::string> kv;
    for (const auto& [k, v] : s.constraints) kv.push_back(k + "=" + v);
    lines.push_back({"Constraints", Distinct(kv)});
  }
  if (!s.nodelist.empty()) lines.push_back({"NodeList", Distinct(s.nodelist)});
  if (!s.exclude.empty()) lines.push_back({"Exclude", Distinct(s.exclude)});
  for (const auto& dep : s.after) lines.push_back({"After", dep});
  if (s.hold) lines.push_back({"Hold", "yes: herd release " + std::to_string(job.id)});
  if (s.begin_time > 0) lines.push_back({"Begin", FormatTimestamp(s.begin_time)});
  // A job gets the submitting shell's environment (herd submit --export): dozens of variables
  // are summed up in one line.
  if (s.env.size() <= kShownEnvVariables) {
    for (const auto& [key, value] : s.env) lines.push_back({"Env", key + "=" + value});
  } else {
    lines.push_back({"Env", std::to_string(s.env.size()) +
                                " variables (herd show --json lists them)"});
  }
  // Where its output goes, as herd-noded expands the patterns (%N once the job is placed).
  if (!s.output.empty() || !s.error.empty()) {
    const model::OutputPaths paths = model::ResolveOutputPaths(s, model::OutputNamesOf(job));
    const std::string mode = s.output_append ? " (append)" : "";
    lines.push_back({"StdOut", OrDash(paths.stdout_path) + (s.output.empty() ? "" : mode)});
    lines.push_back({"StdErr", OrDash(paths.stderr_path) + mode});
  }
  if (!s.script.empty()) {
    lines.push_back({"Script", "copied at submit, " + std::to_string(s.script.size()) +
                                   " bytes (herd show --json holds its text)"});
  }
  // Measured from the job's cgroups; absent where the node could not confine it.
  const model::JobUsage& u = job.usage;
  if (u.cpu_ms >= 0) {
    char cpu[32];
    snprintf(cpu, sizeof cpu, "%.1fs", static_cast<double>(u.cpu_ms) / 1000);
    lines.push_back({"CpuTime", cpu});
  }
  if (u.memory_bytes >= 0 && !model::IsTerminal(job.state)) {
    lines.push_back({"MemUsed", FormatBytes(u.memory_bytes)});
  }
  if (u.memory_peak_bytes >= 0) lines.push_back({"MemPeak", FormatBytes(u.memory_peak_bytes)});
  for (size_t w = 0; w < job.placement.size(); ++w) {
    const model::WorkerPlacement& p = job.placement[w];
    std::string gpus = "none";
    if (!p.gpus.empty()) {
      gpus = FormatIdList(p.gpus);
      if (p.gpu_milli_each < 1000) gpus += " (" + model::FormatGpuMilli(p.gpu_milli_each) + " each)";
    }
    lines.push_back({"Worker" + std::to_string(w),
                     "node=" + p.node + " gpus=" + gpus + " cores=" + FormatIdList(p.cores) +
                         " mem=" + model::FormatSizeMiB(p.memory_mib) + " nic=" + OrDash(p.nic)});
  }
  size_t key_width = 0;
  for (const auto& [key, value] : lines) key_width = std::max(key_width, key.size());
  for (const auto& [key, value] : lines) {
    out << key << ":" << std::string(key_width - key.size() + 1, ' ') << EscapeText(value) << "\n";
  }
}

nlohmann::json JobToJson(const model::Job& job) {
  const model::JobSpec& s = job.spec;
  const model::OutputPaths paths = model::ResolveOutputPaths(s, model::OutputNamesOf(job));
  nlohmann::json nodes = nlohmann::json::array();
  nlohmann::json placement = nlohmann::json::array();
  for (const auto& p : job.placement) {
    if (std::find(nodes.begin(), nodes.end(), p.node) == nodes.end()) nodes.push_back(p.node);
    placement.push_back({{"node", p.node},
                         {"gpus", p.gpus},
                         {"gpu_milli_each", p.gpu_milli_each},
                         {"cores", p.cores},
                         {"memory_mib", p.memory_mib},
                         {"nic", p.nic}});
  }
  return {
      {"id", job.id},
      {"name", s.name},
      {"user", job.user},
      {"project", s.project},
      {"class", s.job_class},
      {"state", model::JobStateName(job.state)},
      {"reason", job.reason},
      {"reason_code", job.reason_code},
      {"session", s.session},
      {"session_state", job.session_state},
      {"gpus", GpuNumber(s.gpu_milli * s.workers)},
      {"nodes", nodes},
      {"submit_time", TimeOrNull(job.submit_time)},
      {"start_time", TimeOrNull(job.start_time)},
      {"end_time", TimeOrNull(job.end_time)},
      {"exit_code", job.exit_code >= 0 ? nlohmann::json(job.exit_code) : nlohmann::json()},
      {"restart_count", job.restart_count},
      {"workers", s.workers},
      {"gpus_per_worker", GpuNumber(s.gpu_milli)},
      {"gpu_memory_mib", s.gpu_memory_mib},
      {"cpus", s.cpus},
      {"memory_mib", s.memory_mib},
      {"time_limit_s", s.time_limit_s},
      {"command", s.argv},
      {"cwd", s.cwd},
      {"image", s.image},
      {"spread", s.spread},
      {"env", s.env},
      {"script", s.script.empty() ? nlohmann::json() : nlohmann::json(s.script)},
      {"placement", placement},
      {"after", s.after},
      {"hold", s.hold},
      {"begin_time", TimeOrNull(s.begin_time)},
      {"array_id", s.array_id != 0 ? nlohmann::json(s.array_id) : nlohmann::json()},
      {"array_index", s.array_id != 0 ? nlohmann::json(s.array_index) : nlohmann::json()},
      {"sweep", s.sweep.empty() ? nlohmann::json() : nlohmann::json(s.sweep)},
      {"stop_after_success", s.stop_after_success},
      {"gpu_types", s.gpu_types},
      {"pool", s.pool.empty() ? nlohmann::json() : nlohmann::json(s.pool)},
      {"constraints", s.constraints},
      {"nodelist", s.nodelist},
      {"exclude", s.exclude},
      {"output", paths.stdout_path.empty() ? nlohmann::json() : nlohmann::json(paths.stdout_path)},
      {"error", paths.stderr_path.empty() ? nlohmann::json() : nlohmann::json(paths.stderr_path)},
      {"output_append", s.output_append},
      {"preemptions", job.preemptions},
      {"gpu_util_pct", job.GpuUtilPct() >= 0 ? nlohmann::json(job.GpuUtilPct()) : nlohmann::json()},
      {"cpu_seconds", job.usage.cpu_ms >= 0 ? nlohmann::json(job.usage.cpu_ms / 1000.0)
                                            : nlohmann::json()},
      {"memory_bytes", model::IsTerminal(job.state) ? nlohmann::json()
                                                    : MeasuredOrNull(job.usage.memory_bytes)},
      {"memory_peak_bytes", MeasuredOrNull(job.usage.memory_peak_bytes)},
      {"gpu_memory_limit_mib", s.gpu_memory_limit_mib > 0 ? s.gpu_memory_limit_mib
                                                          : s.gpu_memory_mib},
  };
}

void PrintNodesTable(const std::vector<proto::NodeStatus>& nodes, int width, std::ostream& out) {
  // A REASON column only when some node has one (a drained node), so the usual table stays as is.
  const bool reasons = std::any_of(nodes.begin(), nodes.end(),
                                   [](const proto::NodeStatus& n) { return !n.reason.empty(); });
  // A POOL column only when some node is in a pool.
  const bool pools = std::any_of(nodes.begin(), nodes.end(),
                                 [](const proto::NodeStatus& n) { return !n.pools.empty(); });
  std::vector<std::string> headers = {"NAME", "STATE", "GPUS", "CPUS", "MEM", "TYPE"};
  if (pools) headers.push_back("POOL");
  headers.insert(headers.end(), {"GPU-MODEL", "TOPOLOGY"});
  if (reasons) headers.push_back("REASON");
  Table table(headers);
  for (const auto& n : nodes) {
    std::vector<std::string> row = {
        OrDash(NodeName(n)), OrDash(n.state),
        model::FormatGpuMilli(n.allocated.gpu_milli) + "/" +
            model::FormatGpuMilli(n.capacity.gpu_milli),
        std::to_string(n.allocated.cpus) + "/" + std::to_string(n.capacity.cpus),
        model::FormatSizeMiB(n.allocated.memory_mib) + "/" +
            model::FormatSizeMiB(n.capacity.memory_mib),
        OrDash(Distinct(n.gpu_types))};
    if (pools) row.push_back(OrDash(Distinct(n.pools)));
    row.insert(row.end(), {OrDash(GpuModels(n.topology)), Topology(n.topology)});
    if (reasons) row.push_back(OrDash(n.reason));
    table.AddRow(std::move(row));
  }
  table.Print(out, width);
}

nlohmann::json NodeToJson(const proto::NodeStatus& n) {
  nlohmann::json gpus = nlohmann::json::array();
  for (const auto& g : n.topology.gpus) {
    const size_t i = static_cast<size_t>(g.index);
    gpus.push_back({{"index", g.index},
                    {"model", g.model},
                    {"type", i < n.gpu_types.size() ? n.gpu_types[i] : ""},
                    {"memory_mib", g.memory_mib},
                    {"pci_bus_id", g.pci_bus_id},
                    {"numa", g.numa},
                    {"nic", g.nic},
                    {"used", GpuNumber(i < n.gpu_milli_used.size() ? n.gpu_milli_used[i] : 0)}});
  }
  return {
      {"name", NodeName(n)},
      {"hostname", n.topology.hostname},
      {"state", n.state},
      {"gpus", GpuNumber(n.capacity.gpu_milli)},
      {"gpus_used", GpuNumber(n.allocated.gpu_milli)},
      {"cpus", n.capacity.cpus},
      {"cpus_used", n.allocated.cpus},
      {"memory_mib", n.capacity.memory_mib},
      {"memory_mib_used", n.allocated.memory_mib},
      {"gpu_model", GpuModels(n.topology)},
      {"gpu_types", Unique(n.gpu_types)},
      {"labels", n.labels},
      {"pools", n.pools},
      {"sockets", n.topology.sockets},
      {"numa_nodes", n.topology.numa.size()},
      {"emulated", n.topology.emulated},
      {"source", n.topology.source},
      {"last_heartbeat", TimeOrNull(n.last_heartbeat)},
      {"reason", n.reason},
      {"gpu_list", gpus},
  };
}

namespace {

nlohmann::json ResourcesJson(const model::Resources& r) {
  auto or_null = [](int64_t v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v); };
  return {{"gpus", r.gpu_milli < 0 ? nlohmann::json(nullptr) : nlohmann::json(r.gpu_milli / 1000.0)},
          {"cpus", or_null(r.cpus)},
          {"memory_mib", or_null(r.memory_mib)}};
}

// A queue's per-type (or per-pool) quota and use, keyed by GPU type (or pool); GPU counts as
// ResourcesJson gives them.
nlohmann::json ByTypeJson(const std::vector<proto::ProjectTypeStatus>& by_type) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& t : by_type) {
    auto gpus = [](int64_t milli) { return ResourcesJson({milli, 0, 0})["gpus"]; };
    out[t.type] = {{"deserved", gpus(t.deserved)},
                   {"limit", gpus(t.limit)},
                   {"fair_share", gpus(t.fair_share)},
                   {"allocated", gpus(t.allocated)}};
  }
  return out;
}

}  // namespace

nlohmann::json ProjectToJson(const proto::ProjectStatus& p) {
  return {{"name", p.name},
          {"parent", p.parent},
          {"kind", p.is_project ? "project" : "department"},
          {"deserved", ResourcesJson(p.deserved)},
          {"limit", ResourcesJson(p.limit)},
          {"fair_share", ResourcesJson(p.fair_share)},
          {"allocated", ResourcesJson(p.allocated)},
          {"pending_demand", ResourcesJson(p.pending_demand)},
          {"running_jobs", p.running_jobs},
          {"pending_jobs", p.pending_jobs},
          {"usage_gpu_hours", p.usage_gpu_seconds / 3600},
          {"over_quota_weight", p.over_quota_weight},
          {"effective_weight", p.effective_weight},
          {"by_type", ByTypeJson(p.by_type)},
          {"by_pool", ByTypeJson(p.by_pool)}};
}

std::string GpuHours(int64_t gpu_milli_seconds, int decimals) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.*f", decimals, static_cast<double>(gpu_milli_seconds) / 3600000.0);
  return buf;
}

nlohmann::json UsageToJson(const proto::UsageReply& usage) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : usage.rows) {
    rows.push_back({{usage.by, r.group},
                    {"gpu_hours", static_cast<double>(r.gpu_milli_seconds) / 3600000.0},
                    {"jobs", r.jobs},
                    {"wait_p50_s", r.wait_p50_s},
                    {"wait_p90_s", r.wait_p90_s},
                    {"wait_p99_s", r.wait_p99_s},
                    {"gpu_util_pct",
                     r.gpu_util_pct >= 0 ? nlohmann::json(r.gpu_util_pct) : nlohmann::json()},
                    {"preemptions", r.preemptions}});
  }
  return {{"since", usage.since}, {"until", usage.until}, {"by", usage.by}, {"rows", rows}};
}

std::string UsageCsv(const proto::UsageReply& usage) {
  std::ostringstream out;
  out << usage.by << ",gpu_hours,jobs,wait_p50_s,wait_p90_s,wait_p99_s,gpu_util_pct,preemptions\n";
  for (const auto& r : usage.rows) {
    std::string group = r.group;
    if (group.find_first_of(",\"\n") != std::string::npos) {
      std::string quoted = "\"";
      for (char c : group) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
      group = quoted + "\"";
    }
    out << group << "," << GpuHours(r.gpu_milli_seconds, 6) << "," << r.jobs << ","
        << r.wait_p50_s << "," << r.wait_p90_s << "," << r.wait_p99_s << ","
        << (r.gpu_util_pct >= 0 ? std::to_string(r.gpu_util_pct) : "") << "," << r.preemptions
        << "\n";
  }
  return out.str();
}

nlohmann::json HistoryToJson(const proto::HistoryReply& history) {
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : history.points) {
    nlohmann::json point = {{"time", p.time}, {"samples", p.samples}};
    for (size_t i = 0; i < history.fields.size() && i < p.values.size(); ++i) {
      point[history.fields[i]] = p.values[i];
    }
    points.push_back(std::move(point));
  }
  return {{"series", history.series}, {"key", history.key},       {"from", history.from},
          {"to", history.to},         {"step_s", history.step_s}, {"points", points}};
}

std::string DumpJson(const nlohmann::json& value) {
  return value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace herd::cli
