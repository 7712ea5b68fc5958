// herd history and herd-web's charts: one series of herd-ctld's history (ctld/history.h).
#include "ctld/controller.h"
#include "ctld/history.h"

namespace herd::ctld {

namespace rpc {
namespace {
struct HistoryFamily;
}  // namespace

template <>
struct Handlers<HistoryFamily> {
  // herd history and herd-web's charts: any user, as every series is public.
  static Status OnHistory(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
};
}  // namespace rpc

using HistoryRequests = rpc::Handlers<rpc::HistoryFamily>;

std::span<const rpc::Route> rpc::HistoryRoutes() {
  using proto::MessageName;
  static const Route kRoutes[] = {
      {MessageName<proto::HistoryRequest>(), Caller::kUser, &HistoryRequests::OnHistory},
  };
  return kRoutes;
}

Status HistoryRequests::OnHistory(Controller& ctl, const net::Incoming& in,
                                  const auth::Identity& /*who*/) {
  auto req = proto::BodyOf<proto::HistoryRequest>(in.envelope);
  if (!req.ok()) return req.status();
  const auto kind = ParseSeriesKind(req->series);
  if (!kind) {
    return Invalid("unknown history series '" + req->series +
                   "': use cluster, project NAME, node NAME or job ID");
  }
  switch (*kind) {
    case SeriesKind::kCluster:
      if (!req->key.empty()) return Invalid("the cluster's history takes no name");
      break;
    case SeriesKind::kProject:
      if (ctl.config_.FindQueue(req->key) == nullptr) {
        return NotFound("no project or department named '" + req->key +
                        "' (herd projects lists them)");
      }
      break;
    case SeriesKind::kNode:
      if (ctl.nodes_.count(req->key) == 0) {
        return NotFound("no node named '" + req->key + "' (herd nodes lists them)");
      }
      break;
    case SeriesKind::kJob: {
      auto id = ParseJobKey(req->key);
      if (!id) return Invalid("a job's history needs its id, got '" + req->key + "'");
      if (ctl.jobs_.count(*id) == 0) return NotFound("job " + req->key + " not found");
      break;
    }
  }
  if (ctl.config_.history.interval_s == 0) {
    return NotFound("herd-ctld keeps no history: [history] interval is 0 in herd.toml");
  }
  auto reply = ctl.history_.Read(*ctl.store_, *req, ctl.Now());
  if (!reply.ok()) return reply.status();
  ctl.ReplyBody(in, *reply);
  return Status::Ok();
}

}  // namespace herd::ctld
