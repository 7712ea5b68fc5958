// herd admin: reconfigure, drain and undrain a node, snapshot a scheduling cycle.
#include <string>

#include "ctld/controller.h"
#include "spdlog/spdlog.h"

namespace herd::ctld {

namespace rpc {
namespace {
struct AdminFamily;
}  // namespace

template <>
struct Handlers<AdminFamily> {
  // herd admin reconfigure, drain, undrain, snapshot.
  static Status OnAdmin(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
};
}  // namespace rpc

using AdminRequests = rpc::Handlers<rpc::AdminFamily>;

std::span<const rpc::Route> rpc::AdminRoutes() {
  using proto::MessageName;
  static const Route kRoutes[] = {
      {MessageName<proto::AdminRequest>(), Caller::kAdmin, &AdminRequests::OnAdmin},
  };
  return kRoutes;
}

Status AdminRequests::OnAdmin(Controller& ctl, const net::Incoming& in, const auth::Identity& who) {
  auto req = proto::BodyOf<proto::AdminRequest>(in.envelope);
  if (!req.ok()) return req.status();
  proto::AdminReply reply;
  if (req->action == "reconfigure") {
    HERD_RETURN_IF_ERROR(ctl.ReloadConfig());
    reply.message = "configuration reloaded from " + ctl.config_path_;
  } else if (req->action == "drain" || req->action == "undrain") {
    // drain NODE [REASON]: the reason is kept with the node and shown by herd nodes.
    const bool drain = req->action == "drain";
    if (req->args.empty() || req->args.size() > (drain ? 2u : 1u)) {
      return Invalid("usage: herd admin " + req->action +
                     (drain ? " NODE [--reason TEXT]" : " NODE"));
    }
    Controller::Node* n = ctl.FindNode(req->args[0]);
    if (n == nullptr) return NotFound("no node named " + req->args[0]);
    const std::string reason = drain && req->args.size() == 2 ? req->args[1] : "";
    if (static_cast<int64_t>(reason.size()) > ctl.config_.controller.max_name_bytes) {
      return Invalid("the drain reason has " + std::to_string(reason.size()) +
                     " bytes; at most " + std::to_string(ctl.config_.controller.max_name_bytes));
    }
    n->drain = drain;
    n->drain_reason = reason;
    ctl.SaveNode(*n);
    int running = 0;
    for (const auto& [id, j] : ctl.jobs_) {
      if (!model::HoldsResources(j.state)) continue;
      for (const auto& w : j.placement) running += w.node == n->name;
    }
    reply.message = n->drain ? "node " + n->name + " drained: " + std::to_string(running) +
                                   " running jobs continue, no new job starts there"
                             : "node " + n->name + " takes new jobs again";
    spdlog::info("{} by {}", reply.message, who.user);
    ctl.schedule_soon_ = true;
  } else if (req->action == "snapshot") {
    // A scheduling cycle run now, its snapshot and decisions written for herd-sim replay.
    if (!req->args.empty()) return Invalid("usage: herd admin snapshot > FILE.scenario");
    std::string text;
    ctl.Schedule(&text);
    if (text.empty()) return Invalid("no node has registered yet: there is no cluster to snapshot");
    const int64_t limit = (ctl.config_.controller.max_message_mib << 20) - 4096;
    if (static_cast<int64_t>(text.size()) > limit) {
      return Invalid("the snapshot has " + std::to_string(text.size() >> 20) +
                     " MiB, more than a reply may carry ([controller] max_message_mib = " +
                     std::to_string(ctl.config_.controller.max_message_mib) +
                     "): raise it to take one");
    }
    reply.message = "# herd admin snapshot: herd-ctld's scheduling cycle at " +
                    std::to_string(ctl.Now()) + " (" + std::to_string(ctl.nodes_.size()) +
                    " nodes), with the decisions it made.\n# Replay: herd-sim replay FILE\n" + text;
    spdlog::info("snapshot of a scheduling cycle taken by {}", who.user);
  } else {
    return Invalid("unknown admin action '" + req->action +
                   "': use reconfigure, drain NODE, undrain NODE or snapshot");
  }
  ctl.ReplyBody(in, reply);
  return Status::Ok();
}

}  // namespace herd::ctld
