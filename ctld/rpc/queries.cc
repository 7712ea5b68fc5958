// herd jobs, herd nodes and herd projects: listings of the jobs, nodes and projects herd-ctld
// knows, each read from memory (and, for finished jobs that left it, from the store).
#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "ctld/controller.h"
#include "ctld/limits.h"

namespace herd::ctld {

using model::Job;
using model::JobState;

namespace rpc {
namespace {
struct QueryFamily;
}  // namespace

template <>
struct Handlers<QueryFamily> {
  // herd jobs: one page of jobs, others' without what is private to them.
  static Status OnJobs(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
  // herd nodes.
  static Status OnNodes(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
  // herd projects.
  static Status OnProjects(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
};
}  // namespace rpc

using QueryRequests = rpc::Handlers<rpc::QueryFamily>;

std::span<const rpc::Route> rpc::QueryRoutes() {
  using proto::MessageName;
  static const Route kRoutes[] = {
      {MessageName<proto::JobsRequest>(), Caller::kUser, &QueryRequests::OnJobs},
      {MessageName<proto::NodesRequest>(), Caller::kUser, &QueryRequests::OnNodes},
      {MessageName<proto::ProjectsRequest>(), Caller::kUser, &QueryRequests::OnProjects},
  };
  return kRoutes;
}

namespace {

// A page listing more than this is followed by a trim of the heap (Controller::trim_heap_).
constexpr size_t kTrimAfterBytes = 1 << 20;

model::Resources Capacity(const model::NodeTopology& t) {
  return {static_cast<int64_t>(t.gpus.size()) * 1000, t.Cores(), t.memory_mib};
}

}  // namespace

Status QueryRequests::OnJobs(Controller& ctl, const net::Incoming& in, const auth::Identity& who) {
  auto req = proto::BodyOf<proto::JobsRequest>(in.envelope);
  if (!req.ok()) return req.status();
  std::set<JobState> states;
  for (const auto& name : req->states) {
    auto s = model::ParseJobState(name);
    if (!s) return Invalid("unknown job state '" + name + "'");
    states.insert(*s);
  }
  auto want = [&](const Job& j) {
    if (!req->user.empty() && j.user != req->user) return false;
    if (req->array != 0 && j.spec.array_id != req->array) return false;
    if (!states.empty()) return states.count(j.state) > 0;
    return req->all || !req->ids.empty() || !model::IsTerminal(j.state);
  };
  // One page at most, whatever the client asks: a huge reply would stall every other client
  // of this single thread; the client asks again with after_id (cli/remote.cc). A page ends at
  // jobs_page_size jobs or kJobsPageBytes, so huge jobs never make a reply over the message limit.
  const int64_t cap = ctl.config_.controller.jobs_page_size;
  const size_t page = static_cast<size_t>(req->limit > 0 ? std::min(req->limit, cap) : cap);
  std::vector<const Job*> jobs;
  size_t bytes = 0;
  auto full = [&](const Job& j) {
    bytes += ListedBytes(j, req->brief);
    return jobs.size() == page || (!jobs.empty() && bytes > kJobsPageBytes);
  };
  bool more = false;
  std::deque<Job> stored;  // finished jobs read from the store, not yet looked at
  // Those of them in the reply, and copies of jobs in memory completed with their environment
  // and script (a deque: their addresses stay put).
  std::deque<Job> listed;
  // A full listing shows the asker's own jobs with their environment and script, which memory
  // does not keep (JobTable::Add): read from the store before the job counts towards the page.
  auto complete = [&](const Job* j) -> Result<const Job*> {
    if (req->brief || !ctl.MayActOn(who, *j) || !ctl.jobs_.count(j->id)) return j;
    Job& copy = listed.emplace_back(*j);
    HERD_RETURN_IF_ERROR(ctl.LoadEnvironment(&copy));
    return &copy;
  };
  if (!req->ids.empty()) {
    std::vector<model::JobId> ids = req->ids;
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::vector<const Job*> named;
    for (auto id : ids) {
      const Job* j = ctl.FindJob(id);
      if (j == nullptr) return NotFound("job " + std::to_string(id) + " not found");
      named.push_back(j);
    }
    for (const Job* j : named) {
      if (j->id <= req->after_id || !want(*j)) continue;
      auto shown = complete(j);
      if (!shown.ok()) return shown.status();
      if (full(**shown)) {
        more = true;
        break;
      }
      jobs.push_back(*shown);
    }
  } else {
    jobs.reserve(std::min(page, ctl.jobs_.size()));
    // An array's members have consecutive ids from the array's.
    const model::JobId from = std::max(req->after_id, req->array > 0 ? req->array - 1 : 0);
    // Finished jobs that left memory come from the store, merged in id order with memory's.
    bool finished_wanted = req->all;
    for (JobState s : states) finished_wanted |= model::IsTerminal(s);
    model::JobId stored_after = from;
    bool stored_left = finished_wanted;
    auto mem = ctl.jobs_.upper_bound(from);
    while (true) {
      if (stored.empty() && stored_left) {
        auto batch =
            ctl.store_->FinishedJobsAfter(stored_after, req->user, static_cast<int64_t>(page) + 1);
        if (!batch.ok()) return batch.status();
        stored_left = batch->size() == page + 1;
        if (!batch->empty()) stored_after = batch->back().id;
        for (Job& j : *batch) {
          if (!ctl.jobs_.count(j.id)) stored.push_back(std::move(j));
        }
        if (stored.empty() && stored_left) continue;
      }
      const bool from_memory =
          mem != ctl.jobs_.end() && (stored.empty() || mem->first < stored.front().id);
      if (!from_memory && stored.empty()) break;
      const Job& j = from_memory ? mem->second : stored.front();
      if (req->array != 0 && j.spec.array_id != req->array) break;
      if (want(j)) {
        auto shown = from_memory ? complete(&j) : Result<const Job*>(&j);
        if (!shown.ok()) return shown.status();
        if (full(**shown)) {
          more = true;
          break;
        }
        jobs.push_back(from_memory ? *shown : &listed.emplace_back(std::move(stored.front())));
      }
      if (from_memory) {
        ++mem;
      } else {
        stored.pop_front();
      }
    }
  }
  // Others' jobs are listed without what is private to their owner (a brief listing carries
  // none of it, but for the name and reason that private_commands hides).
  std::deque<Job> redacted;
  if (!req->brief || ctl.config_.controller.private_commands) {
    for (const Job*& j : jobs) {
      if (!ctl.MayActOn(who, *j)) j = &redacted.emplace_back(ctl.Redacted(*j));
    }
  }
  if (bytes > kTrimAfterBytes) ctl.trim_heap_ = true;
  proto::Envelope e;
  e.type = proto::MessageName<proto::JobsReply>();
  e.id = in.envelope.id;
  e.body = proto::EncodeJobsReply(jobs, more, req->brief);
  ctl.Reply(in, std::move(e));
  return Status::Ok();
}

Status QueryRequests::OnNodes(Controller& ctl, const net::Incoming& in,
                              const auth::Identity& /*who*/) {
  proto::NodesReply reply;
  std::map<std::string, proto::NodeStatus> by_name;
  for (const auto& [name, n] : ctl.nodes_) {
    proto::NodeStatus st;
    st.name = name;
    st.topology = n.topology;
    st.state = ctl.ShownNodeState(n);
    if (!n.unavailable.empty()) {
      st.reason = n.unavailable;
    } else if (n.drain) {
      st.reason = n.drain_reason.empty() ? "drained by an admin" : n.drain_reason;
    }
    st.capacity = Capacity(n.topology);
    st.gpu_milli_used.assign(n.topology.gpus.size(), 0);
    st.last_heartbeat = n.last_seen;
    for (const auto& g : n.topology.gpus) st.gpu_types.push_back(ctl.GpuTypeOf(g.model));
    st.labels = ctl.config_.LabelsOf(name);
    st.pools = ctl.config_.PoolsOf(name);
    by_name[name] = std::move(st);
  }
  for (const auto& [id, j] : ctl.jobs_) {
    if (!model::HoldsResources(j.state)) continue;
    for (const auto& w : j.placement) {
      auto it = by_name.find(w.node);
      if (it == by_name.end()) continue;
      auto& st = it->second;
      st.allocated += {static_cast<int64_t>(w.gpus.size()) * w.gpu_milli_each,
                       static_cast<int64_t>(w.cores.size()), w.memory_mib};
      for (int g : w.gpus) {
        if (g >= 0 && g < static_cast<int>(st.gpu_milli_used.size())) {
          st.gpu_milli_used[g] += w.gpu_milli_each;
        }
      }
    }
  }
  for (auto& [name, st] : by_name) reply.nodes.push_back(std::move(st));
  ctl.ReplyBody(in, reply);
  return Status::Ok();
}

Status QueryRequests::OnProjects(Controller& ctl, const net::Incoming& in,
                                 const auth::Identity& /*who*/) {
  proto::ProjectsReply reply;
  std::map<std::string, const sched::QueueShare*> shares;
  for (const auto& s : ctl.shares_) shares[s.name] = &s;
  // Jobs belong to projects; a department counts those of every project below it.
  std::map<std::string, std::string> parent;
  for (const auto& q : ctl.config_.queues) parent[q.name] = q.parent;
  std::map<std::string, std::pair<int64_t, int64_t>> counts;  // queue -> pending, running
  for (const auto& [id, j] : ctl.jobs_) {
    const bool pending = j.state == JobState::kPending, running = model::HoldsResources(j.state);
    if (!pending && !running) continue;
    std::string q = j.spec.project;
    for (size_t up = 0; !q.empty() && up <= parent.size(); ++up) {  // bounded: no cycle loops
      counts[q].first += pending;
      counts[q].second += running;
      auto it = parent.find(q);
      q = it == parent.end() ? "" : it->second;
    }
  }
  for (const auto& q : ctl.config_.queues) {
    proto::ProjectStatus p;
    p.name = q.name;
    p.parent = q.parent;
    p.is_project = q.is_project;
    p.deserved = q.deserved;
    if (q.limit) p.limit = *q.limit;
    p.usage_gpu_seconds = ctl.UsageOf(q.name);
    p.over_quota_weight = p.effective_weight = q.over_quota_weight;
    if (auto it = shares.find(q.name); it != shares.end()) {
      p.fair_share = it->second->fair_share;
      p.allocated = it->second->allocated;
      p.pending_demand = it->second->pending_demand;
      p.effective_weight = it->second->weight;
      for (const auto& [type, t] : it->second->by_type) {
        p.by_type.push_back({type, t.deserved, t.limit, t.fair_share, t.allocated});
      }
      for (const auto& [pool, t] : it->second->by_pool) {
        p.by_pool.push_back({pool, t.deserved, t.limit, t.fair_share, t.allocated});
      }
    }
    std::tie(p.pending_jobs, p.running_jobs) = counts[q.name];
    reply.projects.push_back(std::move(p));
  }
  ctl.ReplyBody(in, reply);
  return Status::Ok();
}

}  // namespace herd::ctld
