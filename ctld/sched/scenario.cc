// The scenario format: ParseScenario and DumpDecisions (the format is in scenario.h; CheckScenario,
// which runs a scenario cycle by cycle, is in scenario_run.cc).
#include "ctld/sched/scenario.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "common/model/fleet.h"
#include "common/model/units.h"
#include "ctld/sched/estimate.h"
#include "ctld/sched/evictions.h"
#include "ctld/sched/internal.h"
#include "ctld/sched/scenario_lines.h"
#include "ctld/sched/snapshot_builder.h"

namespace herd::sched {
namespace scenario_lines {

using sched::EvictedFor;
using sched::RoomFor;

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// Tokens split on blanks; a "quoted string" stays one token (without its quotes).
std::vector<std::string> Tokens(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false, any = false;
  for (char c : line) {
    if (c == '"') {
      quoted = !quoted;
      any = true;
    } else if (!quoted && (c == ' ' || c == '\t')) {
      if (any) out.push_back(cur);
      cur.clear();
      any = false;
    } else {
      cur += c;
      any = true;
    }
  }
  if (any) out.push_back(cur);
  return out;
}

// A name as WriteScenario writes it: "%XX" stands for the byte XX (hex).
std::string Dec(const std::string& s) {
  if (s.find('%') == std::string::npos) return s;
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> DecList(const std::string& s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  for (const std::string& x : Split(s, ',')) out.push_back(Dec(x));
  return out;
}

// "0-3,8" -> {0, 1, 2, 3, 8}; "" -> {}.
std::vector<int> Ids(const std::string& s) {
  std::vector<int> out;
  if (s.empty()) return out;
  for (const std::string& r : Split(s, ',')) {
    size_t dash = r.find('-', 1);
    int lo = std::stoi(r.substr(0, dash));
    int hi = dash == std::string::npos ? lo : std::stoi(r.substr(dash + 1));
    for (int i = lo; i <= hi; ++i) out.push_back(i);
  }
  return out;
}

Line ParseLine(const std::vector<std::string>& tokens, size_t from) {
  Line l;
  for (size_t i = from; i < tokens.size(); ++i) {
    size_t eq = tokens[i].find('=');
    if (eq == std::string::npos) {
      l.words.push_back(tokens[i]);
    } else {
      l.opts[tokens[i].substr(0, eq)] = tokens[i].substr(eq + 1);
    }
  }
  return l;
}

int64_t Num(const Line& l, const std::string& key, int64_t def) {
  auto it = l.opts.find(key);
  return it == l.opts.end() ? def : std::stoll(it->second);
}
int64_t Size(const Line& l, const std::string& key, int64_t def) {
  auto it = l.opts.find(key);
  if (it == l.opts.end()) return def;
  auto r = model::ParseSizeMiB(it->second);
  if (!r.ok()) throw std::runtime_error("bad size " + it->second);
  return r.value();
}
int64_t Gpu(const std::string& text) {
  if (!text.empty() && text.back() == 'm') return std::stoll(text.substr(0, text.size() - 1));
  auto r = model::ParseGpuMilli(text);
  if (!r.ok()) throw std::runtime_error("bad GPU count " + text);
  return r.value();
}

// "gpu:8,cpu:64,mem:1T" over `base`; with `typed`, also "gpu.TYPE:4" (GPUs of one type) into it
// and with `pooled`, "pool.NAME:4" into that.
model::Resources ParseResources(const std::string& text, model::Resources base,
                                std::map<std::string, int64_t>* typed,
                                std::map<std::string, int64_t>* pooled) {
  for (const std::string& part : Split(text, ',')) {
    auto kv = Split(part, ':');
    if (kv.size() != 2) throw std::runtime_error("bad resources " + text);
    if (typed != nullptr && kv[0].starts_with("gpu.")) {
      (*typed)[Dec(kv[0].substr(4))] = kv[1] == "-1" ? -1 : Gpu(kv[1]);
    } else if (pooled != nullptr && kv[0].starts_with("pool.")) {
      (*pooled)[Dec(kv[0].substr(5))] = kv[1] == "-1" ? -1 : Gpu(kv[1]);
    } else if (kv[0] == "gpu") {
      base.gpu_milli = kv[1] == "-1" ? -1 : Gpu(kv[1]);
    } else if (kv[0] == "cpu") {
      base.cpus = std::stoll(kv[1]);
    } else if (kv[0] == "mem") {
      base.memory_mib = kv[1] == "-1" ? -1 : model::ParseSizeMiB(kv[1]).value();
    } else {
      throw std::runtime_error("unknown resource " + kv[0]);
    }
  }
  return base;
}

// "n1[0,1]+n2[4-7]" -> (node, gpu indexes) per worker; "n1" -> node with no GPU list (nullopt).
std::vector<std::pair<std::string, std::optional<std::vector<int>>>> ParseWhere(const std::string& s) {
  std::vector<std::pair<std::string, std::optional<std::vector<int>>>> out;
  for (const std::string& w : Split(s, '+')) {
    size_t b = w.find('[');
    if (b == std::string::npos) {
      out.push_back({Dec(w), std::nullopt});
      continue;
    }
    out.push_back({Dec(w.substr(0, b)), Ids(w.substr(b + 1, w.size() - b - 2))});
  }
  return out;
}

model::JobSpec SpecOf(const Line& l) {
  model::JobSpec spec;
  spec.project = l.opts.count("queue") ? Dec(l.opts.at("queue")) : "";
  spec.job_class = l.opts.count("class") ? Dec(l.opts.at("class")) : "train";
  spec.gpu_milli = l.opts.count("gpu") ? Gpu(l.opts.at("gpu")) : 0;
  spec.gpu_memory_mib = Size(l, "gpu_memory", 0);
  spec.cpus = Num(l, "cpus", 1);
  spec.memory_mib = Size(l, "mem", 1024);
  spec.workers = static_cast<int32_t>(Num(l, "workers", 1));
  spec.spread = std::count(l.words.begin(), l.words.end(), "spread") > 0;
  spec.time_limit_s = Num(l, "time", 0);
  return spec;
}

NodeView* FindNode(Snapshot& s, const std::string& name) {
  for (NodeView& n : s.nodes) {
    if (n.name == name) return &n;
  }
  throw std::runtime_error("unknown node " + name);
}

GpuSlot& FindGpu(NodeView& n, int index) {
  for (GpuSlot& g : n.gpus) {
    if (g.index == index) return g;
  }
  throw std::runtime_error(n.name + " has no GPU " + std::to_string(index));
}

// Picks cores for a running worker written without `cores=`: the lowest free ones on its GPUs'
// NUMA nodes first.
void PickCores(NodeView& n, const Request& request, model::WorkerPlacement& w) {
  std::vector<int> numas;
  for (int g : w.gpus) numas.push_back(FindGpu(n, g).numa);
  for (const auto& [id, cores] : n.free_cores_by_numa) numas.push_back(id);
  for (int numa : numas) {
    auto it = n.free_cores_by_numa.find(numa);
    if (it == n.free_cores_by_numa.end()) continue;
    for (int c : it->second) {
      if (static_cast<int64_t>(w.cores.size()) >= request.cpus) break;
      if (std::find(w.cores.begin(), w.cores.end(), c) == w.cores.end()) w.cores.push_back(c);
    }
  }
  if (static_cast<int64_t>(w.cores.size()) < request.cpus) throw std::runtime_error("not enough cores on " + n.name);
}

// The placements of `<prefix>on=n1[0,1]+n2[4-7]`, worker by worker, with what `<prefix>cores=`,
// `<prefix>wmem=`, `<prefix>milli=` and `<prefix>nic=` (each '+'-separated per worker) say, or else
// the request's memory, GPU share and no NIC. Cores are empty when `<prefix>cores=` is absent.
std::vector<model::WorkerPlacement> PlacementsOf(const Line& l, const std::string& prefix, const Request& request) {
  std::vector<model::WorkerPlacement> out;
  auto per_worker = [&](const char* key) -> std::optional<std::vector<std::string>> {
    auto it = l.opts.find(prefix + key);
    if (it == l.opts.end()) return std::nullopt;
    return Split(it->second, '+');
  };
  const auto cores = per_worker("cores"), mem = per_worker("wmem"), milli = per_worker("milli"),
             nic = per_worker("nic");
  const auto where = ParseWhere(l.opts.at(prefix + "on"));
  for (size_t k = 0; k < where.size(); ++k) {
    auto at = [&](const std::optional<std::vector<std::string>>& v) -> const std::string* {
      if (!v) return nullptr;
      if (v->size() != where.size()) throw std::runtime_error(prefix + "on= and its per-worker lists differ in length");
      return &(*v)[k];
    };
    model::WorkerPlacement w;
    w.node = where[k].first;
    w.gpus = where[k].second.value_or(std::vector<int>{});
    w.gpu_milli_each = at(milli) ? std::stoll(*at(milli))
                       : w.gpus.empty() ? 0
                                        : std::min<int64_t>(request.gpu_milli, 1000);
    w.memory_mib = at(mem) ? std::stoll(*at(mem)) : request.memory_mib;
    if (at(cores)) w.cores = Ids(*at(cores));
    if (at(nic)) w.nic = Dec(*at(nic));
    out.push_back(std::move(w));
  }
  return out;
}

// The JobFacts of a `pending`, `held` or `running` line.
JobFacts JobOf(const Line& l, int64_t default_submit) {
  const model::JobSpec spec = SpecOf(l);
  JobFacts job{std::stoll(l.words.at(0)), spec.project, spec.job_class, Request::Of(spec),
               Num(l, "submit", default_submit)};
  if (l.opts.count("model")) job.gpu_models = DecList(l.opts.at("model"));
  if (l.opts.count("nodes")) job.nodes = DecList(l.opts.at("nodes"));
  job.reclaims = static_cast<int32_t>(Num(l, "reclaims", 0));
  return job;
}

PendingJob PendingOf(const Line& l, int64_t now) {
  PendingJob p = sched::PendingOf(JobOf(l, std::stoll(l.words.at(0))), Num(l, "since", now));
  p.victims_stopping = static_cast<int32_t>(Num(l, "victims_stopping", 0));
  p.room_made = std::count(l.words.begin(), l.words.end(), "room_made") > 0;
  if (l.opts.count("room_on")) p.room_on = PlacementsOf(l, "room_", p.request);
  return p;
}

// A `running` line: the job, with its resources taken from the snapshot's nodes.
RunningJob RunningOf(const Line& l, Snapshot& s) {
  const int64_t start = Num(l, "start", s.now - 3600);
  const JobFacts job = JobOf(l, start);
  RunningJob r = sched::RunningOf(job, PlacementsOf(l, "", job.request), start);
  r.end_by = Num(l, "end_by", r.end_by);
  r.suspended = std::count(l.words.begin(), l.words.end(), "suspended") > 0;
  r.evicted_for = Num(l, "evicted_for", 0);
  const bool pick = !l.opts.count("cores");
  for (model::WorkerPlacement& w : r.placement) {
    NodeView& n = *FindNode(s, w.node);
    for (int g : w.gpus) FindGpu(n, g);
    if (pick) PickCores(n, r.request, w);
    TakeFromNode(n, w, r.request.gpu_memory_mib);
  }
  return r;
}

}  // namespace scenario_lines

using namespace scenario_lines;

Scenario ParseScenario(const std::string& text) {
  Scenario sc;
  Snapshot& s = sc.snapshot;
  s.now = 100000;
  s.classes = BuiltinClasses();
  std::vector<std::pair<int, Line>> running;
  std::vector<std::pair<size_t, Line>> filtered;  // pending jobs whose nodes are resolved at the end
  std::set<std::string> defined_classes, departments;
  bool builtin_classes = true;
  std::istringstream in(text);
  std::string raw;
  int number = 0;
  while (std::getline(in, raw)) {
    ++number;
    std::string line = raw.substr(0, raw.find('#'));
    auto tokens = Tokens(line);
    if (tokens.empty()) continue;
    try {
      const std::string& kind = tokens[0];
      Line l = ParseLine(tokens, 1);
      if (kind == "cycle") {
        sc.later.emplace_back();
      } else if (!sc.later.empty()) {
        (kind == "expect" ? sc.later.back().expects : sc.later.back().statements)
            .push_back({number, kind == "expect" ? line.substr(line.find("expect") + 7) : line});
      } else if (kind == "expect") {
        sc.expects.push_back({number, line.substr(line.find("expect") + 7)});
      } else if (kind == "now") {
        s.now = std::stoll(l.words.at(0));
      } else if (kind == "policy") {
        if (l.opts.count("placement") && !ParsePlacement(l.opts["placement"], &sc.policy.placement)) {
          throw std::runtime_error("unknown placement " + l.opts["placement"]);
        }
        const Policy defaults;  // what a key left out means
        sc.policy.reserve_after_s = Num(l, "reserve_after", sc.policy.reserve_after_s);
        sc.policy.reclaim_backoff_s = Num(l, "reclaim_backoff", sc.policy.reclaim_backoff_s);
        sc.policy.seed = static_cast<uint64_t>(Num(l, "seed", static_cast<int64_t>(defaults.seed)));
        sc.policy.max_preemptions_per_cycle =
            static_cast<int>(Num(l, "max_preemptions", defaults.max_preemptions_per_cycle));
        builtin_classes = !l.opts.count("builtin_classes") || l.opts["builtin_classes"] != "no";
      } else if (kind == "class") {
        ClassView c{Dec(l.words.at(0)), static_cast<int>(Num(l, "priority", 50)), !l.opts.count("nonpreemptible") && !std::count(l.words.begin(), l.words.end(), "nonpreemptible"), false, Num(l, "min_runtime", 0)};
        c.within_quota_only = std::count(l.words.begin(), l.words.end(), "within_quota") > 0;
        s.classes[c.name] = c;
        defined_classes.insert(c.name);
      } else if (kind == "queue") {
        QueueView q;
        q.name = Dec(l.words.at(0));
        q.parent = l.opts.count("parent") ? Dec(l.opts["parent"]) : "";
        if (std::count(l.words.begin(), l.words.end(), "department")) departments.insert(q.name);
        std::map<std::string, int64_t> deserved, limit, pool_deserved, pool_limit;
        if (l.opts.count("deserved")) {
          q.deserved = ParseResources(l.opts["deserved"], {}, &deserved, &pool_deserved);
        }
        if (l.opts.count("limit")) {
          q.limit = ParseResources(l.opts["limit"], {-1, -1, -1}, &limit, &pool_limit);
        }
        for (const auto& [type, milli] : deserved) q.by_type[type].deserved_milli = milli;
        for (const auto& [type, milli] : limit) q.by_type[type].limit_milli = milli;
        for (const auto& [pool, milli] : pool_deserved) q.by_pool[pool].deserved_milli = milli;
        for (const auto& [pool, milli] : pool_limit) q.by_pool[pool].limit_milli = milli;
        // weight=2, or per GPU type or pool: weight=gpu:2,gpu.h100:4,pool.train:3
        for (const std::string& part : l.opts.count("weight") ? Split(l.opts["weight"], ',')
                                                               : std::vector<std::string>{}) {
          auto kv = Split(part, ':');
          if (kv.size() == 1 || (kv.size() == 2 && kv[0] == "gpu")) {
            q.over_quota_weight = std::stod(kv.back());
          } else if (kv.size() == 2 && kv[0].starts_with("gpu.")) {
            q.by_type[Dec(kv[0].substr(4))].over_quota_weight = std::stod(kv[1]);
          } else if (kv.size() == 2 && kv[0].starts_with("pool.")) {
            q.by_pool[Dec(kv[0].substr(5))].over_quota_weight = std::stod(kv[1]);
          } else {
            throw std::runtime_error("bad weight " + part +
                                     "; use weight=2 or weight=gpu:2,gpu.TYPE:4,pool.NAME:4");
          }
        }
        if (l.opts.count("usage")) q.usage = std::stod(l.opts["usage"]);
        q.min_runtime_s = Num(l, "min_runtime", -1);
        s.queues.push_back(q);
      } else if (kind == "node") {
        NodeFacts n;
        n.name = Dec(l.words.at(0));
        const int gpus = static_cast<int>(Num(l, "gpus", 0));
        const int numa = static_cast<int>(Num(l, "numa", 1));
        const int per_switch = static_cast<int>(Num(l, "per_switch", 0));
        const int64_t gpu_memory = Size(l, "gpu_memory", 81920);
        const bool nic_per_switch = l.opts.count("nics") && l.opts["nics"] == "switch";
        n.total_cores = static_cast<int>(Num(l, "cores", 32));
        n.memory_mib = Size(l, "memory", 256 * 1024);
        for (int g = 0; g < gpus; ++g) {
          GpuFacts& gpu = n.gpus.emplace_back();
          gpu = {g, gpu_memory, g * numa / std::max(gpus, 1), per_switch > 0 ? g / per_switch : -1,
                 l.opts.count("model") ? l.opts["model"] : "A100"};
          // nics=switch: one NIC per PCIe switch, serving only its switch's GPUs.
          if (nic_per_switch && gpu.pcie_switch >= 0) {
            n.nic_by_switch[gpu.pcie_switch] = "mlx5_" + std::to_string(gpu.pcie_switch);
          }
        }
        if (l.opts.count("numa_cores")) {  // "0:0-7,16-23/1:8-15,24-31": NUMA id: its cores
          for (const std::string& part : l.opts["numa_cores"].empty() ? std::vector<std::string>{}
                                                                        : Split(l.opts["numa_cores"], '/')) {
            const size_t colon = part.find(':');
            const int id = std::stoi(part.substr(0, colon));
            auto& cores = n.cores_by_numa[id];
            cores = Ids(colon == std::string::npos ? "" : part.substr(colon + 1));
            for (int c : cores) sc.core_numa[n.name][c] = id;
          }
        } else {
          for (int c = 0; c < n.total_cores; ++c) {
            n.cores_by_numa[c * numa / n.total_cores].push_back(c);
            sc.core_numa[n.name][c] = c * numa / n.total_cores;
          }
        }
        if (l.opts.count("nics") && l.opts["nics"] == "numa") {
          for (int k = 0; k < numa; ++k) n.nic_by_numa[k] = "mlx5_" + std::to_string(k);
        }
        for (const auto& [key, map] : {std::pair{"nic_switch", &n.nic_by_switch}, std::pair{"nic_numa", &n.nic_by_numa}}) {
          if (!l.opts.count(key)) continue;
          for (const std::string& kv : Split(l.opts[key], ',')) {  // "0:mlx5_0,1:mlx5_1"
            auto p = Split(kv, ':');
            (*map)[std::stoi(p.at(0))] = Dec(p.at(1));
          }
        }
        if (l.opts.count("labels")) {
          for (const std::string& kv : Split(l.opts["labels"], ',')) {
            auto p = Split(kv, ':');
            n.labels[Dec(p.at(0))] = Dec(p.at(1));
          }
        }
        if (l.opts.count("quota_pool")) n.quota_pool = Dec(l.opts["quota_pool"]);
        n.schedulable = !std::count(l.words.begin(), l.words.end(), "down");
        s.nodes.push_back(FreeNode(n));
      } else if (kind == "gpu") {  // gpu NODE INDEX [numa=N] [switch=S] [memory=SIZE] [model=M]
        NodeView& n = *FindNode(s, Dec(l.words.at(0)));
        n.gpus.push_back(
            FreeGpu({static_cast<int>(std::stoll(l.words.at(1))), Size(l, "memory", 81920),
                     static_cast<int>(Num(l, "numa", -1)), static_cast<int>(Num(l, "switch", -1)),
                     l.opts.count("model") ? Dec(l.opts["model"]) : ""}));
      } else if (kind == "running") {
        running.push_back({number, l});
      } else if (kind == "pending") {
        s.pending.push_back(PendingOf(l, s.now));
        filtered.push_back({s.pending.size() - 1, l});
      } else if (kind == "held") {
        s.held_out.push_back(PendingOf(l, s.now));
      } else if (kind == "shape") {
        WorkloadShape w;
        w.gpu_milli = l.opts.count("gpu") ? Gpu(l.opts["gpu"]) : 0;
        w.cpus = Num(l, "cpus", 0);
        w.memory_mib = Size(l, "mem", 0);
        if (l.opts.count("model")) w.gpu_models = DecList(l.opts["model"]);
        w.weight = l.opts.count("weight") ? std::stod(l.opts["weight"]) : 0;
        s.workload.push_back(std::move(w));
      } else {
        throw std::runtime_error("unknown statement " + kind);
      }
    } catch (const std::exception& e) {
      sc.errors.push_back("line " + std::to_string(number) + ": " + e.what());
    }
  }
  for (QueueView& q : s.queues) {
    q.is_leaf = !departments.count(q.name) &&
                std::none_of(s.queues.begin(), s.queues.end(),
                             [&](const QueueView& o) { return o.parent == q.name; });
  }
  if (!builtin_classes) {
    std::erase_if(s.classes, [&](const auto& c) { return !defined_classes.count(c.first); });
  }
  // The nodes each pending job may use, resolved once every node is known.
  for (auto& [k, l] : filtered) {
    model::NodeFilter f;
    auto list = [&](const char* key) -> std::vector<std::string> {
      if (!l.opts.count(key)) return {};
      auto names = model::ExpandHostList(l.opts.at(key));
      if (!names.ok()) throw std::runtime_error(names.status().message());
      return *names;
    };
    try {
      if (l.opts.count("pool")) f.pool = model::LabelPool(l.opts.at("pool"));
      if (l.opts.count("constraint")) {
        for (const std::string& kv : Split(l.opts.at("constraint"), ',')) {
          auto p = Split(kv, ':');
          f.constraints[p.at(0)] = p.at(1);
        }
      }
      f.nodelist = list("nodelist");
      f.exclude = list("exclude");
    } catch (const std::exception& e) {
      sc.errors.push_back(std::string("pending ") + std::to_string(s.pending[k].id) + ": " + e.what());
      continue;
    }
    if (!f.Restricts()) continue;
    std::vector<std::string> nodes;
    for (const NodeView& n : s.nodes) {
      if (f.Matches(n.name, n.labels)) nodes.push_back(n.name);
    }
    s.pending[k].nodes = std::move(nodes);
  }
  for (auto& [line_no, l] : running) {
    try {
      s.running.push_back(RunningOf(l, s));
    } catch (const std::exception& e) {
      sc.errors.push_back("line " + std::to_string(line_no) + ": " + e.what());
    }
  }
  return sc;
}

std::string DumpDecisions(const Decisions& d) {
  std::ostringstream o;
  for (const auto& st : d.starts) {
    o << "start " << st.id;
    for (const auto& w : st.placement) {
      o << " " << w.node << "[";
      for (int g : w.gpus) o << g << ",";
      o << "]x" << w.gpu_milli_each << " cores=";
      for (int c : w.cores) o << c << ",";
      o << " mem=" << w.memory_mib << " nic=" << w.nic;
    }
    o << "\n";
  }
  for (const auto& p : d.preemptions)
    o << "preempt " << p.id << " for " << p.for_job << " " << EvictionKindName(p.kind) << " "
      << EvictionText(p) << "\n";
  for (const auto& r : d.reservations) {
    o << "reserve " << r.id;
    for (const auto& n : r.nodes) o << " " << n;
    o << "\n";
  }
  for (const auto& [id, why] : d.pending_reasons)
    o << "reason " << id << ": " << model::ReasonText(why) << "\n";
  for (const auto& q : d.shares) {
    o << "share " << q.name << " fair=" << model::FormatResources(q.fair_share)
      << " allocated=" << model::FormatResources(q.allocated)
      << " demand=" << model::FormatResources(q.pending_demand) << "\n";
  }
  return o.str();
}

}  // namespace herd::sched
