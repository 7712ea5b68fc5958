// The scenario format's line readers, shared by ParseScenario (scenario.cc) and CheckScenario's
// statements between cycles (scenario_run.cc). Each throws std::runtime_error on a bad line.
// Internal to ctld/sched.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ctld/sched/snapshot.h"

namespace herd::sched::scenario_lines {

struct Line {
  std::vector<std::string> words;           // positional
  std::map<std::string, std::string> opts;  // key=value, and bare flags as key=""
};

std::vector<std::string> Split(const std::string& s, char sep);
// Words split on blanks; a "quoted string" stays one word (without its quotes).
std::vector<std::string> Tokens(const std::string& line);
// A comma-separated list of %XX-escaped names.
std::vector<std::string> DecList(const std::string& s);
// tokens[from...] as positional words and key=value options.
Line ParseLine(const std::vector<std::string>& tokens, size_t from);
// "gpu:8,cpu:64,mem:1T" over `base`; with `typed`, also "gpu.TYPE:4" (GPUs of one type) into it
// and with `pooled`, "pool.NAME:4" (GPUs of one quota pool's nodes) into that.
model::Resources ParseResources(const std::string& text, model::Resources base,
                                std::map<std::string, int64_t>* typed = nullptr,
                                std::map<std::string, int64_t>* pooled = nullptr);
// "n1[0,1]+n2[4-7]" -> (node, gpu indexes) per worker; "n1" -> node with no GPU list (nullopt).
std::vector<std::pair<std::string, std::optional<std::vector<int>>>> ParseWhere(
    const std::string& s);
NodeView* FindNode(Snapshot& s, const std::string& name);
GpuSlot& FindGpu(NodeView& n, int index);
// A `pending` line's job.
PendingJob PendingOf(const Line& l, int64_t now);
// A `running` line: the job, with its resources taken from the snapshot's nodes.
RunningJob RunningOf(const Line& l, Snapshot& s);

}  // namespace herd::sched::scenario_lines
