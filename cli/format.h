// Output formatting of the CLI: aligned tables for people, JSON for programs, and the text of
// jobs and nodes (states, GPU counts "0.5", durations "1h30m", sizes "10G").
// Used by cli/commands; pure functions of their arguments (the time is passed in).
// Thread-safety: pure functions; a Table is used by one thread.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/model/job.h"
#include "common/proto/messages.h"
#include "common/util/status.h"

namespace herd::cli {

// Columns separated by two spaces, left-aligned, no trailing blanks.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  // REQUIRES: cells.size() == number of headers. Cells are printed escaped (EscapeText).
  void AddRow(std::vector<std::string> cells);
  // width > 0 (a terminal): the widest columns are cut (ending in "…") until a line fits in
  // `width`; width == 0: nothing is cut.
  void Print(std::ostream& out, int width) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// `text` safe to print on a terminal: control characters written as escapes (\n, \t, \r, \e,
// else \xHH), C1 controls as \u0080..\u009f, bidirectional and invisible format characters
// (U+200B..U+200F, U+2028..U+202E, U+2066..U+2069, U+FEFF) as \uXXXX and bytes that are not
// UTF-8 as \xHH, so a user's job name or reason can neither move the cursor, nor reorder or
// hide text, nor fake a line of a listing. Text output only: --json keeps values exact.
std::string EscapeText(std::string_view text);

// Terminal columns of UTF-8 `text`: East Asian wide characters and emoji take two, combining
// marks and zero-width characters none, anything else (a byte that is not UTF-8 too) one.
size_t DisplayWidth(std::string_view text);
bool IsValidUtf8(std::string_view text);

// Total GPUs of a job (per worker times workers): "0.5", "8".
std::string JobGpus(const model::Job& job);
// Distinct nodes the job holds, comma-separated, or "-".
std::string JobNodes(const model::Job& job);
// Elapsed time when running, waiting time when pending, run time when finished.
std::string JobTime(const model::Job& job, int64_t now);
// "2024-05-01T13:45:10" in local time; "-" for 0.
std::string FormatTimestamp(int64_t epoch_seconds);
// "2026-05-01", "2026-05-01T13:00[:00]" (local time), "now", or a duration ago ("7d", "12h")
// as epoch seconds; Invalid with the forms expected otherwise.
Result<int64_t> ParseWhen(const std::string& text, int64_t now);
// The command line, with arguments quoted where a shell would need it.
std::string FormatCommand(const std::vector<std::string>& argv);

// A sweep member's parameters: "bs=32 lr=1e-3" (names in order).
std::string FormatSweepPoint(const std::map<std::string, std::string>& point);

// `herd jobs`: ID NAME USER PROJECT CLASS STATE GPUS NODES TIME REASON. With group_arrays,
// the members of an array are one row "40[1-100]" with a count per state.
void PrintJobsTable(const std::vector<model::Job>& jobs, int64_t now, int width,
                    std::ostream& out, bool group_arrays = false);
// `herd show`: every field of one job, one "Key: value" per line.
void PrintJobDetails(const model::Job& job, int64_t now, std::ostream& out);
// A job as JSON. Stable keys: id, name, user, project, class, state, reason, gpus (total, a
// number), nodes (array of names), submit_time, start_time, end_time (epoch seconds, null when
// not yet), exit_code (null until it ends), restart_count; plus workers, gpus_per_worker, cpus,
// memory_mib, gpu_memory_mib, time_limit_s, command, cwd, image, spread, env, placement,
// after, hold, begin_time (null: none), array_id and array_index (null outside an array);
// gpu_memory_limit_mib; cpu_seconds, memory_bytes (running jobs) and memory_peak_bytes from the
// job's cgroups (null: not measured); sweep (object of parameter values, null outside a sweep),
// stop_after_success, preemptions, gpu_util_pct (time-weighted average utilization of its
// GPUs, null when never measured).
nlohmann::json JobToJson(const model::Job& job);

// `herd nodes`: NAME STATE GPUS CPUS MEM GPU-MODEL TOPOLOGY; GPUS/CPUS/MEM are used/total.
void PrintNodesTable(const std::vector<proto::NodeStatus>& nodes, int width, std::ostream& out);
nlohmann::json NodeToJson(const proto::NodeStatus& node);

// `herd projects --json`: one queue with its quotas, share and use (unlimited: null).
nlohmann::json ProjectToJson(const proto::ProjectStatus& project);
// `herd usage --json` and `--csv` (a header line, then one line per group).
nlohmann::json UsageToJson(const proto::UsageReply& usage);
std::string UsageCsv(const proto::UsageReply& usage);
// GPU-hours with `decimals` decimals (CSV keeps short jobs visible: 6).
std::string GpuHours(int64_t gpu_milli_seconds, int decimals = 2);

// `herd history --json` and herd-web's /api/v1/history: the series with one object per point
// ({"time", "samples", and each field by name}).
nlohmann::json HistoryToJson(const proto::HistoryReply& history);
// Serializes for --json output (invalid UTF-8 from a peer is replaced, never thrown on).
std::string DumpJson(const nlohmann::json& value);

}  // namespace herd::cli
