// Heterogeneous fleets: GPU types derived from model names, Slurm host lists, and the node
// selectors that pools, constraints, node lists and exclusions are made of.
// Used by the config (pools, [gpu_types]), the CLI (herd submit) and herd-ctld (which nodes a job
// may use); pure functions.
// Thread-safety: plain value types and pure functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/util/status.h"

namespace herd::model {

// GPU type -> the model names of that type ([gpu_types] in herd.toml).
using GpuTypeRules = std::map<std::string, std::vector<std::string>>;

// The default type of a GPU model: the words of the model name without the vendor and brand
// words (NVIDIA, AMD, Tesla, GeForce, Quadro, Radeon, Instinct), up to and including the first
// word with a digit, joined, cut at the first '-' and lower-cased:
// "NVIDIA A100-SXM4-40GB" -> a100, "NVIDIA H100 80GB HBM3" -> h100, "Tesla V100-SXM2-16GB" ->
// v100, "NVIDIA GeForce RTX 4090" -> rtx4090, "AMD Instinct MI250X" -> mi250x. "gpu" when the
// model is empty or has no such word.
std::string DefaultGpuType(std::string_view model);

// The type of `model`: the type whose [gpu_types] list names it (exactly, or case-insensitively),
// else DefaultGpuType(model).
std::string GpuTypeOf(std::string_view model, const GpuTypeRules& rules);

// A valid GPU type name: 1 to 64 of a-z 0-9 . _ - starting with a letter or digit.
bool IsGpuTypeName(std::string_view name);

// Expands Slurm host-list syntax into names: "ws[01-03,07],gpu1" -> ws01 ws02 ws03 ws07 gpu1.
// Ranges keep their zero padding; a name may hold several bracket groups. At most 65536 names.
Result<std::vector<std::string>> ExpandHostList(std::string_view list);

// Shell-style match of a node name: * any run, ? one character, [abc] one of a set; a pattern
// without these matches itself only.
bool NameMatches(std::string_view pattern, std::string_view name);

// Which nodes something selects: by name (patterns as NameMatches reads them) and by labels.
struct NodeSelector {
  std::vector<std::string> names;             // any of these; empty: any name
  std::map<std::string, std::string> labels;  // every one must be the node's; empty: any
  bool Matches(std::string_view name, const std::map<std::string, std::string>& node_labels) const;
  bool operator==(const NodeSelector&) const = default;
};

// Where one job may run: every part must hold (its pool, its constraints, its node list) and no
// exclusion may match. herd-ctld builds one per job from its spec and herd.toml's pools; the
// scheduling scenarios build the same from their `pending` lines.
struct NodeFilter {
  std::optional<NodeSelector> pool;              // nullopt: any pool
  std::map<std::string, std::string> constraints;  // node labels, every one
  std::vector<std::string> nodelist;             // names or patterns; empty: any
  std::vector<std::string> exclude;              // names or patterns
  // False when the filter lets every node through.
  bool Restricts() const { return pool || !constraints.empty() || !nodelist.empty() || !exclude.empty(); }
  bool Matches(std::string_view name, const std::map<std::string, std::string>& node_labels) const;
};

// The selector of a pool that herd.toml does not configure: the nodes labelled pool = NAME.
NodeSelector LabelPool(const std::string& name);

// "key=val,key2=val2" -> {key: val, key2: val2}; keys and values non-empty.
Result<std::map<std::string, std::string>> ParseConstraints(std::string_view text);

}  // namespace herd::model
