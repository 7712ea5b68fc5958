// herd-noded's messages: its registration, heartbeats and job events, from which herd-ctld
// learns what runs where (the transitions that follow are in ctld/lifecycle.cc).
#include <vector>

#include "ctld/controller.h"
#include "spdlog/spdlog.h"

namespace herd::ctld {

using model::Job;

Status Controller::OnRegister(const net::Incoming& in, const auth::Identity& /*who*/) {
  auto req = proto::BodyOf<proto::RegisterRequest>(in.envelope);
  if (!req.ok()) return req.status();
  if (req->node.empty()) return Invalid("a Register must name its node");
  // Handle() verified the credential as root or herd-ctld's user: this connection now speaks
  // for the node, whatever connection did before.
  Node& n = nodes_[req->node];
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
  n.last_seen_ms = clock_->MonotonicMillis();
  n.last_seen = Now();
  SaveNode(n);
  if (moved) {
    spdlog::info("node {} registered again on a new connection", n.name);
    Reconcile(n, req->jobs, /*complete=*/true, /*starting_only=*/true);
    ResendStops(n);
  } else if (resent) {
    spdlog::info("node {} resent its registration: already registered", n.name);
  } else {
    spdlog::info("node {} registered ({} GPUs, {} cores{}){}", n.name, n.topology.gpus.size(),
                 n.topology.Cores(), n.topology.emulated ? ", emulated" : "",
                 was_up ? " again" : "");
    Reconcile(n, req->jobs, /*complete=*/true);
    ResendStops(n);
  }
  proto::RegisterReply reply;
  reply.heartbeat_interval_ms = static_cast<int32_t>(config_.scheduler.heartbeat_interval_ms);
  ReplyBody(in, reply);
  schedule_soon_ = true;
  return Status::Ok();
}

Status Controller::OnHeartbeat(const net::Incoming& in, const auth::Identity& /*who*/) {
  auto hb = proto::BodyOf<proto::Heartbeat>(in.envelope);
  if (!hb.ok()) return hb.status();
  Node* n = NodeOfPeer(hb->node, in.peer);
  if (n == nullptr) {
    // The node re-registers when it gets this error (e.g. after a controller restart).
    return NotRegistered("node " + hb->node +
                         " is not registered with this herd-ctld on this connection: "
                         "register first");
  }
  const int64_t since_last_ms = clock_->MonotonicMillis() - n->last_seen_ms;
  n->last_seen_ms = clock_->MonotonicMillis();
  n->last_seen = Now();
  if (n->state == model::NodeState::kDown) {
    n->state = model::NodeState::kUp;
    SaveNode(*n);
    spdlog::info("node {} is back", n->name);
    schedule_soon_ = true;
  }
  if (hb->unavailable != n->unavailable) {
    if (hb->unavailable.empty()) {
      spdlog::info("node {} takes new jobs again", n->name);
    } else {
      spdlog::warn("node {} takes no new job: {}", n->name, hb->unavailable);
    }
    n->unavailable = hb->unavailable;
    schedule_soon_ = true;
  }
  Reconcile(*n, hb->jobs, /*complete=*/false);
  for (const proto::JobReport& r : hb->jobs) {
    auto job = jobs_.find(r.id);
    if (r.session.empty() || r.worker != 0 || job == jobs_.end()) continue;
    if (job->second.restart_count != r.run) continue;
    job->second.session_state = r.session;
    CheckInputIdle(job->second, r.input_idle_ms);
  }
  n->gpu_metrics.clear();
  for (const auto& g : hb->gpus) n->gpu_metrics[g.index] = g;
  if (!n->gpu_metrics.empty()) {
    const std::vector<Job*> running = RunningJobsReported(hb->jobs);
    UpdateIdle(*n, running);
    AccountGpuUse(*n, running, since_last_ms);
  }
  return Status::Ok();
}

Status Controller::OnJobEvent(const net::Incoming& in, const auth::Identity& /*who*/) {
  auto ev = proto::BodyOf<proto::JobEvent>(in.envelope);
  if (!ev.ok()) return ev.status();
  if (NodeOfPeer(ev->node, in.peer) == nullptr) {
    // Refused, not acknowledged: the node registers again and resends it.
    return NotRegistered("node " + ev->node +
                         " is not registered with this herd-ctld on this connection: "
                         "register first");
  }
  OnWorkerReport(ev->node, ev->report);
  if (ev->report.state == "ENDED") {
    SendToNode(ev->node, proto::EventAck{ev->report.id, ev->report.worker, ev->report.run});
  }
  return Status::Ok();
}

}  // namespace herd::ctld
