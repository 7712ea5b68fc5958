// WriteScenario: a Snapshot, its Policy and the decisions made on it, in the scenario format
// (scenario.h), exact enough that ParseScenario reads back an equal Snapshot.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <sstream>

#include "common/model/units.h"
#include "ctld/sched/scenario.h"

namespace herd::sched {
namespace {

// A name with every byte outside [A-Za-z0-9._-] as %XX, so that no name can end a token, open a
// comment or split a list.
std::string Enc(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

std::string EncList(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& x : v) out += (out.empty() ? "" : ",") + Enc(x);
  return out;
}

// "0-3,8": ascending runs as ranges, other orders as they come.
std::string IdList(const std::vector<int>& ids) {
  std::string out;
  for (size_t i = 0; i < ids.size();) {
    size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(ids[i]);
    if (j > i) out += "-" + std::to_string(ids[j]);
    i = j + 1;
  }
  return out;
}

// A GPU count the parser reads back exactly: "2", "0.25", or thousandths ("1500m").
std::string Gpu(int64_t milli) {
  if (milli < 0) return std::to_string(milli);
  auto back = model::ParseGpuMilli(model::FormatGpuMilli(milli));
  return back.ok() && *back == milli ? model::FormatGpuMilli(milli) : std::to_string(milli) + "m";
}

std::string Number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

std::string ResourcesText(const model::Resources& r) {
  return "gpu:" + Gpu(r.gpu_milli) + ",cpu:" + std::to_string(r.cpus) +
         ",mem:" + std::to_string(r.memory_mib);
}

std::string RequestText(const std::string& queue, const std::string& job_class, const Request& r) {
  std::string out = " queue=" + Enc(queue) + " class=" + Enc(job_class) + " gpu=" + Gpu(r.gpu_milli) +
                    " gpu_memory=" + std::to_string(r.gpu_memory_mib) + " cpus=" + std::to_string(r.cpus) +
                    " mem=" + std::to_string(r.memory_mib) + " workers=" + std::to_string(r.workers);
  if (r.spread) out += " spread";
  if (r.time_limit_s != 0) out += " time=" + std::to_string(r.time_limit_s);
  return out;
}

// on=, cores=, wmem=, milli=, nic= with `prefix`, worker by worker.
std::string PlacementText(const std::string& prefix, const std::vector<model::WorkerPlacement>& p) {
  std::string on, cores, mem, milli, nic;
  for (const auto& w : p) {
    const std::string sep = on.empty() ? "" : "+";
    on += sep + Enc(w.node) + "[" + IdList(w.gpus) + "]";
    cores += sep + IdList(w.cores);
    mem += sep + std::to_string(w.memory_mib);
    milli += sep + std::to_string(w.gpu_milli_each);
    nic += sep + Enc(w.nic);
  }
  return " " + prefix + "on=" + on + " " + prefix + "cores=" + cores + " " + prefix + "wmem=" + mem +
         " " + prefix + "milli=" + milli + " " + prefix + "nic=" + nic;
}

std::string PendingText(const char* kind, const PendingJob& p) {
  std::string out = kind + (" " + std::to_string(p.id)) + RequestText(p.queue, p.job_class, p.request) +
                    " submit=" + std::to_string(p.submit_time) + " since=" + std::to_string(p.pending_since);
  if (!p.gpu_models.empty()) out += " model=" + EncList(p.gpu_models);
  if (p.nodes) out += " nodes=" + EncList(*p.nodes);
  if (p.victims_stopping != 0) out += " victims_stopping=" + std::to_string(p.victims_stopping);
  if (p.room_made) out += " room_made";
  if (p.reclaims != 0) out += " reclaims=" + std::to_string(p.reclaims);
  if (!p.room_on.empty()) out += PlacementText("room_", p.room_on);
  return out + "\n";
}

// A pending reason the format can quote: no quote, comment sign, '=' or line end in it.
bool Quotable(const std::string& text) {
  return !text.empty() && text.find_first_of("\"#=\n") == std::string::npos;
}

}  // namespace

std::string WriteScenario(const Snapshot& s, const Policy& policy, const Decisions* decided) {
  std::ostringstream o;
  o << "policy placement=" << PlacementName(policy.placement)
    << " reserve_after=" << policy.reserve_after_s
    << " reclaim_backoff=" << policy.reclaim_backoff_s << " seed=" << policy.seed
    << " max_preemptions=" << policy.max_preemptions_per_cycle << " builtin_classes=no\n";
  o << "now " << s.now << "\n";
  for (const auto& [name, c] : s.classes) {
    o << "class " << Enc(name) << " priority=" << c.priority
      << (c.preemptible ? " preemptible" : " nonpreemptible") << (c.within_quota_only ? " within_quota" : "")
      << " min_runtime=" << c.min_runtime_s << "\n";
  }
  for (const QueueView& q : s.queues) {
    o << "queue " << Enc(q.name);
    if (!q.parent.empty()) o << " parent=" << Enc(q.parent);
    std::string deserved, limit, weight;  // per GPU type
    for (const auto& [type, t] : q.by_type) {
      deserved += ",gpu." + Enc(type) + ":" + Gpu(t.deserved_milli);
      limit += ",gpu." + Enc(type) + ":" + (t.limit_milli < 0 ? "-1" : Gpu(t.limit_milli));
      if (t.over_quota_weight >= 0) weight += ",gpu." + Enc(type) + ":" + Number(t.over_quota_weight);
    }
    for (const auto& [pool, t] : q.by_pool) {  // and per quota pool
      deserved += ",pool." + Enc(pool) + ":" + Gpu(t.deserved_milli);
      limit += ",pool." + Enc(pool) + ":" + (t.limit_milli < 0 ? "-1" : Gpu(t.limit_milli));
      if (t.over_quota_weight >= 0)
        weight += ",pool." + Enc(pool) + ":" + Number(t.over_quota_weight);
    }
    o << " deserved=" << ResourcesText(q.deserved) << deserved << " limit=" << ResourcesText(q.limit)
      << limit << " weight=" << Number(q.over_quota_weight) << weight << " min_runtime=" << q.min_runtime_s;
    if (q.usage != 0) o << " usage=" << Number(q.usage);
    o << (q.is_leaf ? "" : " department") << "\n";
  }
  for (const NodeView& n : s.nodes) {
    // Totals: what is free plus what the running jobs hold (ParseScenario takes theirs off again).
    o << "node " << Enc(n.name) << " gpus=0 cores=" << n.total_cores << " memory=" << n.memory_mib;
    std::string numa_cores;
    std::map<int, std::vector<int>> all = n.free_cores_by_numa;
    for (const RunningJob& r : s.running) {
      for (const auto& w : r.placement) {
        if (w.node != n.name) continue;
        // A held core's NUMA node is not in the snapshot; herd-ctld's nodes list every core
        // under one, so it is the NUMA node of the GPUs it sits beside, or the first one.
        for (int c : w.cores) {
          int numa = all.empty() ? 0 : all.begin()->first;
          for (const GpuSlot& g : n.gpus) {
            if (!w.gpus.empty() && g.index == w.gpus.front() && g.numa >= 0) numa = g.numa;
          }
          all[numa].push_back(c);
        }
      }
    }
    for (auto& [id, cores] : all) {
      std::sort(cores.begin(), cores.end());
      numa_cores += (numa_cores.empty() ? "" : "/") + std::to_string(id) + ":" + IdList(cores);
    }
    o << " numa_cores=" << numa_cores;
    for (const auto& [key, map] : {std::pair{"nic_switch", &n.nic_by_switch}, std::pair{"nic_numa", &n.nic_by_numa}}) {
      if (map->empty()) continue;
      std::string text;
      for (const auto& [k, v] : *map) text += (text.empty() ? "" : ",") + std::to_string(k) + ":" + Enc(v);
      o << " " << key << "=" << text;
    }
    if (!n.labels.empty()) {
      std::string text;
      for (const auto& [k, v] : n.labels) text += (text.empty() ? "" : ",") + Enc(k) + ":" + Enc(v);
      o << " labels=" << text;
    }
    if (!n.quota_pool.empty()) o << " quota_pool=" << Enc(n.quota_pool);
    o << (n.schedulable ? "" : " down") << "\n";
    for (const GpuSlot& g : n.gpus) {
      o << "gpu " << Enc(n.name) << " " << g.index << " numa=" << g.numa << " switch=" << g.pcie_switch
        << " memory=" << g.memory_mib << " model=" << Enc(g.model) << "\n";
    }
  }
  for (const RunningJob& r : s.running) {
    o << "running " << r.id << RequestText(r.queue, r.job_class, r.request) << PlacementText("", r.placement)
      << " start=" << r.start_time << " submit=" << r.submit_time << " end_by=" << r.end_by
      << (r.suspended ? " suspended" : "");
    if (r.evicted_for != 0) o << " evicted_for=" << r.evicted_for;
    if (!r.gpu_models.empty()) o << " model=" << EncList(r.gpu_models);
    if (r.nodes) o << " nodes=" << EncList(*r.nodes);
    if (r.reclaims != 0) o << " reclaims=" << r.reclaims;
    o << "\n";
  }
  for (const PendingJob& p : s.pending) o << PendingText("pending", p);
  for (const PendingJob& p : s.held_out) o << PendingText("held", p);
  for (const WorkloadShape& w : s.workload) {
    o << "shape gpu=" << Gpu(w.gpu_milli) << " cpus=" << w.cpus << " mem=" << w.memory_mib;
    if (!w.gpu_models.empty()) o << " model=" << EncList(w.gpu_models);
    o << " weight=" << Number(w.weight) << "\n";
  }
  if (decided == nullptr) return o.str();
  const Decisions& d = *decided;
  o << "# the decisions made on it\n";
  o << "expect starts " << d.starts.size() << "\n";
  o << "expect preemptions " << d.preemptions.size() << "\n";
  for (const StartDecision& st : d.starts) {
    std::string where;
    for (const auto& w : st.placement) where += (where.empty() ? "" : "+") + Enc(w.node) + "[" + IdList(w.gpus) + "]";
    o << "expect start " << st.id << " on " << where << "\n";
  }
  for (const PreemptDecision& p : d.preemptions) {
    o << "expect preempt " << p.id << " for=" << p.for_job << " kind=" << EvictionKindName(p.kind) << "\n";
  }
  for (const ReserveDecision& r : d.reservations) {
    o << "expect reserve " << r.id << (r.nodes.empty() ? "" : " on " + EncList(r.nodes)) << "\n";
  }
  for (const auto& [id, why] : d.pending_reasons) {
    const std::string text = model::ReasonText(why);
    if (Quotable(text)) o << "expect reason " << id << " contains \"" << text << "\"\n";
  }
  return o.str();
}

}  // namespace herd::sched
