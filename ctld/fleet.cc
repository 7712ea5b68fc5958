// Heterogeneous fleets in herd-ctld: what a job may run on (GPU types, pool, constraints, node
// list, exclusions), checked at submit against the nodes herd knows so that a job no node could
// ever take is refused with the list of what exists instead of waiting forever.
#include <algorithm>
#include <set>
#include <tuple>

#include "common/model/fleet.h"
#include "common/model/units.h"
#include "ctld/controller.h"

namespace herd::ctld {
namespace {

// The most names a job's --nodelist or --exclude may hold; a sixteenth of it for its GPU types
// and its constraints.
constexpr size_t kMaxFleetEntries = 1024;

std::string Plural(int64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

template <typename Range>
std::string JoinWords(const Range& words, const char* separator = ", ") {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : separator) + std::string(w);
  return out.empty() ? "none" : out;
}

}  // namespace

std::string Controller::GpuTypeOf(const std::string& gpu_model) const {
  return model::GpuTypeOf(gpu_model, config_.gpu_types);
}

std::string Controller::GpuTypesText(const std::vector<const Node*>& nodes) const {
  std::map<std::string, std::pair<int64_t, int64_t>> types;  // type -> GPUs, nodes
  for (const Node* n : nodes) {
    std::set<std::string> here;
    for (const auto& g : n->topology.gpus) {
      const std::string t = GpuTypeOf(g.model);
      ++types[t].first;
      if (here.insert(t).second) ++types[t].second;
    }
  }
  std::vector<std::string> parts;
  for (const auto& [t, c] : types) {
    parts.push_back(t + " (" + Plural(c.first, "GPU", "GPUs") + " on " +
                    Plural(c.second, "node", "nodes") + ")");
  }
  return JoinWords(parts);
}

Status Controller::CheckWhereItCanRun(model::JobSpec* spec) const {
  // Every cycle matches each distinct restriction against every node: its size is bounded.
  for (const auto& [what, n, most] :
       {std::tuple{"GPU types", spec->gpu_types.size(), kMaxFleetEntries / 16},
        std::tuple{"constraints", spec->constraints.size(), kMaxFleetEntries / 16},
        std::tuple{"--nodelist names", spec->nodelist.size(), kMaxFleetEntries},
        std::tuple{"--exclude names", spec->exclude.size(), kMaxFleetEntries}}) {
    if (n > most) {
      return Invalid(std::string("at most ") + std::to_string(most) + " " + what + ", not " +
                     std::to_string(n) + " (use a pool or a host list pattern such as dgx*)");
    }
  }
  // Names first: they are compared as given.
  std::sort(spec->gpu_types.begin(), spec->gpu_types.end());
  spec->gpu_types.erase(std::unique(spec->gpu_types.begin(), spec->gpu_types.end()),
                        spec->gpu_types.end());
  for (const std::string& t : spec->gpu_types) {
    if (!model::IsGpuTypeName(t)) {
      return Invalid("invalid GPU type '" + t + "': types are lower-case names such as a100");
    }
  }
  if (!spec->gpu_types.empty() && spec->gpu_milli == 0) {
    return Invalid("asks for GPU type " + JoinWords(spec->gpu_types, " or ") +
                   " but no GPU: add -g N");
  }
  for (const auto& [k, v] : spec->constraints) {
    if (k.empty() || v.empty()) return Invalid("a constraint is KEY=VALUE on node labels");
  }
  for (const auto* list : {&spec->nodelist, &spec->exclude}) {
    for (const std::string& n : *list) {
      if (n.empty()) return Invalid("an empty node name in --nodelist or --exclude");
    }
  }
  // Pools: configured ones, and the values of node labels `pool`.
  std::set<std::string> pools;
  for (const auto& [name, p] : config_.pools) pools.insert(name);
  for (const auto& [name, n] : config_.nodes) {
    if (auto it = n.labels.find("pool"); it != n.labels.end()) pools.insert(it->second);
  }
  if (!spec->pool.empty() && !pools.count(spec->pool)) {
    return Invalid("unknown pool '" + spec->pool + "': pools are " + JoinWords(pools));
  }
  std::vector<const Node*> all;
  for (const auto& [name, n] : nodes_) all.push_back(&n);
  if (all.empty()) return Status::Ok();  // nothing known yet to check against

  // Each part of the filter alone, so that the refusal names the part no node satisfies.
  auto matching = [&](const model::NodeFilter& f) {
    std::vector<const Node*> out;
    for (const Node* n : all) {
      if (f.Matches(n->name, config_.LabelsOf(n->name))) out.push_back(n);
    }
    return out;
  };
  const model::NodeFilter filter = NodeFilterOf(*spec);
  std::vector<const Node*> nodes = matching(filter);
  if (nodes.empty()) {
    model::NodeFilter part;
    std::string why;
    if (!spec->pool.empty() && (part.pool = filter.pool, matching(part).empty())) {
      why = "pool " + spec->pool + " has no node; pools are " + JoinWords(pools);
    } else if (part = {}, part.constraints = spec->constraints;
               !spec->constraints.empty() && matching(part).empty()) {
      std::set<std::string> labels;
      for (const Node* n : all) {
        for (const auto& [k, v] : config_.LabelsOf(n->name)) labels.insert(k + "=" + v);
      }
      std::vector<std::string> asked;
      for (const auto& [k, v] : spec->constraints) asked.push_back(k + "=" + v);
      why = "no node has " + JoinWords(asked, " and ") + "; node labels are " + JoinWords(labels);
    } else if (part = {}, part.nodelist = spec->nodelist;
               !spec->nodelist.empty() && matching(part).empty()) {
      std::vector<std::string> names;
      for (const Node* n : all) names.push_back(n->name);
      why = "no node matches --nodelist " + JoinWords(spec->nodelist, ",") + "; nodes are " +
            JoinWords(names);
    } else {
      std::vector<std::string> parts;
      if (!spec->pool.empty()) parts.push_back("pool " + spec->pool);
      for (const auto& [k, v] : spec->constraints) parts.push_back(k + "=" + v);
      if (!spec->nodelist.empty()) parts.push_back("--nodelist " + JoinWords(spec->nodelist, ","));
      if (!spec->exclude.empty()) parts.push_back("--exclude " + JoinWords(spec->exclude, ","));
      why = "no node is in " + JoinWords(parts, " and ");
    }
    return Invalid(why);
  }
  const std::string where = filter.Restricts() ? " it may use" : "";
  // GPU types: every one asked must exist somewhere, and one at least on the nodes it may use.
  if (!spec->gpu_types.empty()) {
    std::set<std::string> known, here;
    for (const Node* n : all) {
      for (const auto& g : n->topology.gpus) known.insert(GpuTypeOf(g.model));
    }
    for (const Node* n : nodes) {
      for (const auto& g : n->topology.gpus) here.insert(GpuTypeOf(g.model));
    }
    for (const std::string& t : spec->gpu_types) {
      if (!known.count(t)) {
        return Invalid("unknown GPU type '" + t + "': GPU types are " + GpuTypesText(all));
      }
    }
    if (std::none_of(spec->gpu_types.begin(), spec->gpu_types.end(),
                     [&](const std::string& t) { return here.count(t) > 0; })) {
      return Invalid("no node" + where + " has GPU type " + JoinWords(spec->gpu_types, " or ") +
                     "; those nodes have " + GpuTypesText(nodes));
    }
  }
  // The largest worker any of those nodes could hold, counting GPUs of the allowed types only.
  auto allowed = [&](const model::GpuInfo& g) {
    return spec->gpu_types.empty() ||
           std::binary_search(spec->gpu_types.begin(), spec->gpu_types.end(), GpuTypeOf(g.model));
  };
  int64_t max_gpus = 0, max_cores = 0, max_mem = 0, max_gpu_mem = 0;
  for (const Node* n : nodes) {
    int64_t gpus = 0;
    for (const auto& g : n->topology.gpus) {
      if (!allowed(g)) continue;
      ++gpus;
      max_gpu_mem = std::max(max_gpu_mem, g.memory_mib);
    }
    max_gpus = std::max(max_gpus, gpus);
    max_cores = std::max<int64_t>(max_cores, n->topology.Cores());
    max_mem = std::max(max_mem, n->topology.memory_mib);
  }
  const std::string types =
      spec->gpu_types.empty() ? "" : " " + JoinWords(spec->gpu_types, " or ");
  if (spec->gpu_milli > max_gpus * 1000) {
    return Invalid("needs " + model::FormatGpuMilli(spec->gpu_milli) + types +
                   " GPUs per worker; the largest node" + where + " has " +
                   std::to_string(max_gpus) + types + " (use -N to spread over several workers)");
  }
  if (spec->gpu_milli > 0 && spec->gpu_memory_mib > max_gpu_mem) {
    return Invalid("needs " + model::FormatSizeMiB(spec->gpu_memory_mib) +
                   " GPU memory; the largest" + types + " GPU" + where + " has " +
                   model::FormatSizeMiB(max_gpu_mem) + " (GPU types: " + GpuTypesText(nodes) + ")");
  }
  if (spec->cpus > max_cores) {
    return Invalid("needs " + std::to_string(spec->cpus) + " cores per worker; the largest node" +
                   where + " has " + std::to_string(max_cores));
  }
  if (spec->memory_mib > max_mem) {
    return Invalid("needs " + model::FormatSizeMiB(spec->memory_mib) +
                   " memory per worker; the largest node" + where + " has " +
                   model::FormatSizeMiB(max_mem));
  }
  return Status::Ok();
}

}  // namespace herd::ctld
