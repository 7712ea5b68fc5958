// herd-web's /metrics: live counts made at each request from the jobs and nodes in memory, and
// the histograms and counters CtldStats accumulates from the loop (ctld/stats.h).
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "ctld/controller.h"
#include "ctld/stats.h"

namespace herd::ctld {

using model::JobState;

namespace rpc {
namespace {
struct StatsFamily;
}  // namespace

template <>
struct Handlers<StatsFamily> {
  // herd-web's /metrics: aggregates only, so any user may ask.
  static Status OnStats(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
};
}  // namespace rpc

using StatsRequests = rpc::Handlers<rpc::StatsFamily>;

std::span<const rpc::Route> rpc::StatsRoutes() {
  using proto::MessageName;
  static const Route kRoutes[] = {
      {MessageName<proto::StatsRequest>(), Caller::kUser, &StatsRequests::OnStats},
  };
  return kRoutes;
}

namespace {

// herd-ctld's resident set size from /proc/self/statm (pages), 0 when unreadable.
int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * sysconf(_SC_PAGESIZE);
}

}  // namespace

Status StatsRequests::OnStats(Controller& ctl, const net::Incoming& in,
                              const auth::Identity& /*who*/) {
  proto::StatsReply reply;
  reply.start_time = ctl.stats_.start_time;
  reply.rss_bytes = ResidentBytes();

  std::map<std::tuple<JobState, std::string, std::string>, int64_t> jobs;
  for (const auto& [id, j] : ctl.jobs_) ++jobs[{j.state, j.spec.project, j.spec.job_class}];
  for (const auto& [key, n] : jobs) {
    const auto& [state, project, job_class] = key;
    reply.jobs.push_back({model::JobStateName(state), project, job_class, n});
  }

  // GPUs by (node, type, project); project "" is every GPU of the type on the node.
  std::map<std::tuple<std::string, std::string, std::string>, proto::GpuUse> gpus;
  auto row = [&](const std::string& node, const std::string& type,
                 const std::string& project) -> proto::GpuUse& {
    proto::GpuUse& r = gpus[{node, type, project}];
    if (r.node.empty()) r.node = node, r.gpu_type = type, r.project = project;
    return r;
  };
  // A GPU's latest utilization in percent, 0 when it reports none.
  auto busy_pct = [](const Controller::Node& n, int gpu) {
    auto m = n.gpu_metrics.find(gpu);
    return m == n.gpu_metrics.end() ? 0 : std::clamp(m->second.utilization_pct, 0, 100);
  };
  std::map<std::string, std::vector<std::string>> types;  // node -> type of each GPU
  for (const auto& [name, n] : ctl.nodes_) {
    std::vector<std::string>& of = types[name];
    for (size_t g = 0; g < n.topology.gpus.size(); ++g) {
      of.push_back(ctl.GpuTypeOf(n.topology.gpus[g].model));
      proto::GpuUse& r = row(name, of.back(), "");
      ++r.gpus;
      r.busy_milli += busy_pct(n, static_cast<int>(g)) * 10;
    }
    reply.nodes.push_back({name, ctl.ShownNodeState(n)});
  }
  for (const auto& [id, j] : ctl.jobs_) {
    if (!model::HoldsResources(j.state)) continue;
    for (const auto& w : j.placement) {
      auto n = ctl.nodes_.find(w.node);
      if (n == ctl.nodes_.end()) continue;
      const std::vector<std::string>& of = types[w.node];
      for (int g : w.gpus) {
        if (g < 0 || g >= static_cast<int>(of.size())) continue;
        row(w.node, of[g], "").allocated_milli += w.gpu_milli_each;
        proto::GpuUse& r = row(w.node, of[g], j.spec.project);
        r.allocated_milli += w.gpu_milli_each;
        r.busy_milli += busy_pct(n->second, g) * w.gpu_milli_each / 100;
      }
    }
  }
  for (auto& [key, r] : gpus) reply.gpus.push_back(std::move(r));

  reply.wait_bounds_s.assign(std::begin(kWaitBoundsS), std::end(kWaitBoundsS));
  for (const auto& [key, h] : ctl.stats_.waits)
    reply.waits.push_back({key.first, key.second, h.data()});
  reply.cycle_bounds_us.assign(std::begin(kCycleBoundsUs), std::end(kCycleBoundsUs));
  reply.cycles = ctl.stats_.cycles.data();
  reply.lag_bounds_us.assign(std::begin(kLagBoundsUs), std::end(kLagBoundsUs));
  reply.loop_lag = ctl.stats_.loop_lag.data();
  for (auto kind : {sched::EvictionKind::kReclaim, sched::EvictionKind::kPreempt,
                    sched::EvictionKind::kConsolidate}) {
    proto::EvictionCount e = ctl.stats_.evictions[kind];
    e.kind = sched::EvictionKindName(kind);
    reply.evictions.push_back(std::move(e));
  }
  reply.submitted_jobs = ctl.stats_.submitted_jobs;
  ctl.ReplyBody(in, reply);
  return Status::Ok();
}

}  // namespace herd::ctld
