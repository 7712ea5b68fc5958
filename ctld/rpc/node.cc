// herd-noded's messages: its registration, heartbeats and job events, from which herd-ctld
// learns what runs where (the transitions that follow are in ctld/lifecycle.cc).
#include <vector>

#include "ctld/controller.h"
#include "spdlog/spdlog.h"

namespace herd::ctld {

using model::Job;

namespace rpc {
namespace {
struct NodeFamily;
}  // namespace

template <>
struct Handlers<NodeFamily> {
  // herd-noded's registration: the node's topology and every job it runs.
  static Status OnRegister(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
  // herd-noded's heartbeat: its jobs' reports and GPU metrics.
  static Status OnHeartbeat(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
  // A worker's start or end, acknowledged once handled.
  static Status OnJobEvent(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
};
}  // namespace rpc

using NodeMessages = rpc::Handlers<rpc::NodeFamily>;

std::span<const rpc::Route> rpc::NodeRoutes() {
  using proto::MessageName;
  static const Route kRoutes[] = {
      {MessageName<proto::RegisterRequest>(), Caller::kNode, &NodeMessages::OnRegister},
      {MessageName<proto::Heartbeat>(), Caller::kNode, &NodeMessages::OnHeartbeat},
      {MessageName<proto::JobEvent>(), Caller::kNode, &NodeMessages::OnJobEvent},
  };
  return kRoutes;
}

Status NodeMessages::OnRegister(Controller& ctl, const net::Incoming& in,
                                const auth::Identity& /*who*/) {
  auto req = proto::BodyOf<proto::RegisterRequest>(in.envelope);
  if (!req.ok()) return req.status();
  if (req->node.empty()) return Invalid("a Register must name its node");
  // Handle() verified the credential as root or herd-ctld's user: this connection now speaks
  // for the node, whatever connection did before.
  Controller::Node& n = ctl.nodes_[req->node];
  const bool was_up = n.state == model::NodeState::kUp && n.registered;
  // herd-noded resends its Register until it is answered. A copy that arrives after herd-ctld
  // accepted the first one (during a long cycle) reports the jobs of that moment: reconciled
  // as a restart, it would write off every job launched on the node since.
  const bool resent = n.registered && req->instance != 0 && req->instance == n.instance;
  // The same process on a new connection: what was sent to the old one may be lost with it.
  const bool moved = resent && n.route != in.peer;
  if (n.registered && !resent && !n.route.empty() && n.route != in.peer) {
    spdlog::warn("node {}: a new herd-noded (instance {:x}) replaces the one registered before",
                 req->node, req->instance);
  }
  n.instance = req->instance;
  n.route = in.peer;
  n.name = req->node;
  n.topology = req->topology;
  n.session_endpoint = req->session_endpoint;
  n.state = model::NodeState::kUp;
  n.registered = true;
  n.last_seen_ms = ctl.clock_->MonotonicMillis();
  n.last_seen = ctl.Now();
  ctl.SaveNode(n);
  if (moved) {
    spdlog::info("node {} registered again on a new connection", n.name);
    ctl.Reconcile(n, req->jobs, /*complete=*/true, /*starting_only=*/true);
    ctl.ResendStops(n);
  } else if (resent) {
    spdlog::info("node {} resent its registration: already registered", n.name);
  } else {
    spdlog::info("node {} registered ({} GPUs, {} cores{}){}", n.name, n.topology.gpus.size(),
                 n.topology.Cores(), n.topology.emulated ? ", emulated" : "",
                 was_up ? " again" : "");
    ctl.Reconcile(n, req->jobs, /*complete=*/true);
    ctl.ResendStops(n);
  }
  proto::RegisterReply reply;
  reply.heartbeat_interval_ms = static_cast<int32_t>(ctl.config_.scheduler.heartbeat_interval_ms);
  ctl.ReplyBody(in, reply);
  ctl.schedule_soon_ = true;
  return Status::Ok();
}

Status NodeMessages::OnHeartbeat(Controller& ctl, const net::Incoming& in,
                                 const auth::Identity& /*who*/) {
  auto hb = proto::BodyOf<proto::Heartbeat>(in.envelope);
  if (!hb.ok()) return hb.status();
  Controller::Node* n = ctl.NodeOfPeer(hb->node, in.peer);
  if (n == nullptr) {
    // The node re-registers when it gets this error (e.g. after a controller restart).
    return NotRegistered("node " + hb->node +
                         " is not registered with this herd-ctld on this connection: "
                         "register first");
  }
  const int64_t since_last_ms = ctl.clock_->MonotonicMillis() - n->last_seen_ms;
  n->last_seen_ms = ctl.clock_->MonotonicMillis();
  n->last_seen = ctl.Now();
  if (n->state == model::NodeState::kDown) {
    n->state = model::NodeState::kUp;
    ctl.SaveNode(*n);
    spdlog::info("node {} is back", n->name);
    ctl.schedule_soon_ = true;
  }
  if (hb->unavailable != n->unavailable) {
    if (hb->unavailable.empty()) {
      spdlog::info("node {} takes new jobs again", n->name);
    } else {
      spdlog::warn("node {} takes no new job: {}", n->name, hb->unavailable);
    }
    n->unavailable = hb->unavailable;
    ctl.schedule_soon_ = true;
  }
  ctl.Reconcile(*n, hb->jobs, /*complete=*/false);
  for (const proto::JobReport& r : hb->jobs) {
    auto job = ctl.jobs_.find(r.id);
    if (r.session.empty() || r.worker != 0 || job == ctl.jobs_.end()) continue;
    if (job->second.restart_count != r.run) continue;
    job->second.session_state = r.session;
    ctl.CheckInputIdle(job->second, r.input_idle_ms);
  }
  n->gpu_metrics.clear();
  for (const auto& g : hb->gpus) n->gpu_metrics[g.index] = g;
  if (!n->gpu_metrics.empty()) {
    const std::vector<Job*> running = ctl.RunningJobsReported(hb->jobs);
    ctl.UpdateIdle(*n, running);
    ctl.AccountGpuUse(*n, running, since_last_ms);
  }
  return Status::Ok();
}

Status NodeMessages::OnJobEvent(Controller& ctl, const net::Incoming& in,
                                const auth::Identity& /*who*/) {
  auto ev = proto::BodyOf<proto::JobEvent>(in.envelope);
  if (!ev.ok()) return ev.status();
  if (ctl.NodeOfPeer(ev->node, in.peer) == nullptr) {
    // Refused, not acknowledged: the node registers again and resends it.
    return NotRegistered("node " + ev->node +
                         " is not registered with this herd-ctld on this connection: "
                         "register first");
  }
  ctl.OnWorkerReport(ev->node, ev->report);
  if (ev->report.state == "ENDED") {
    ctl.SendToNode(ev->node, proto::EventAck{ev->report.id, ev->report.worker, ev->report.run});
  }
  return Status::Ok();
}

}  // namespace herd::ctld
