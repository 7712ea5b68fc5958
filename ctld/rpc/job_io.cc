// A job's output and sessions: the requests that reach a job's node on its owner's behalf
// (herd logs, herd attach/exec/run), checked here and answered by the node.
#include "ctld/controller.h"

namespace herd::ctld {

using model::Job;
using model::JobState;

namespace rpc {
namespace {
struct JobIoFamily;
}  // namespace

template <>
struct Handlers<JobIoFamily> {
  // herd logs: asks the job's node, which answers with LogsData.
  static Status OnLogs(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
  // herd run / attach / exec: the node endpoint of a running job's worker, for its owner.
  static Status OnSessionWhere(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
  // The node's answer to OnLogs, passed on to the client that asked.
  static Status OnLogsData(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
};
}  // namespace rpc

using JobIoRequests = rpc::Handlers<rpc::JobIoFamily>;

std::span<const rpc::Route> rpc::JobIoRoutes() {
  using proto::MessageName;
  static const Route kRoutes[] = {
      {MessageName<proto::LogsRequest>(), Caller::kUser, &JobIoRequests::OnLogs},
      {MessageName<proto::SessionWhereRequest>(), Caller::kUser, &JobIoRequests::OnSessionWhere},
      {MessageName<proto::LogsData>(), Caller::kNode, &JobIoRequests::OnLogsData},
  };
  return kRoutes;
}

Status Controller::CheckWorker(const Job& job, int worker) const {
  if (worker < 0 || worker >= static_cast<int>(job.placement.size())) {
    return Invalid("job " + std::to_string(job.id) + " has workers 0.." +
                   std::to_string(job.placement.size() - 1));
  }
  return Status::Ok();
}

Status JobIoRequests::OnLogs(Controller& ctl, const net::Incoming& in, const auth::Identity& who) {
  auto req = proto::BodyOf<proto::LogsRequest>(in.envelope);
  if (!req.ok()) return req.status();
  auto job = ctl.OwnJob(who, req->id);
  if (!job.ok()) return job.status();
  const Job& j = **job;
  if (j.placement.empty()) {
    if (j.state == JobState::kPending) {
      return NotFound("job " + std::to_string(j.id) + " has not started yet: no output");
    }
    return NotFound("job " + std::to_string(j.id) + " never ran: no output");
  }
  HERD_RETURN_IF_ERROR(ctl.CheckWorker(j, req->worker));
  const std::string& node = j.placement[req->worker].node;
  const Controller::Node* n = ctl.FindNode(node);
  if (n == nullptr || n->state == model::NodeState::kDown) {
    return Unavailable("node " + node + " holding the output of job " + std::to_string(j.id) +
                       " is down");
  }
  uint64_t token = ctl.next_token_++;
  ctl.log_waiters_[token] = {in.peer, in.envelope.id, node};
  ctl.SendToNode(node, proto::LogsFetch{token, *req, j.restart_count});
  return Status::Ok();
}

Status JobIoRequests::OnSessionWhere(Controller& ctl, const net::Incoming& in,
                                     const auth::Identity& who) {
  auto req = proto::BodyOf<proto::SessionWhereRequest>(in.envelope);
  if (!req.ok()) return req.status();
  auto job = ctl.OwnJob(who, req->id);
  if (!job.ok()) return job.status();
  const Job& j = **job;
  if (j.state != JobState::kRunning) {
    return Invalid("job " + std::to_string(j.id) + " is " + model::JobStateName(j.state) +
                   ": only a running job has sessions");
  }
  HERD_RETURN_IF_ERROR(ctl.CheckWorker(j, req->worker));
  const std::string& node = j.placement[req->worker].node;
  const Controller::Node* n = ctl.FindNode(node);
  if (n == nullptr || n->state == model::NodeState::kDown) {
    return Unavailable("node " + node + " running job " + std::to_string(j.id) + " is down");
  }
  if (n->session_endpoint.empty()) {
    return Unavailable("node " + node + " takes no sessions: its herd.toml sets [node] "
                       "session_listen = \"\"");
  }
  ctl.ReplyBody(in, proto::SessionWhereReply{node, n->session_endpoint});
  return Status::Ok();
}

Status JobIoRequests::OnLogsData(Controller& ctl, const net::Incoming& in,
                                 const auth::Identity& /*who*/) {
  auto data = proto::BodyOf<proto::LogsData>(in.envelope);
  if (!data.ok()) return data.status();
  auto it = ctl.log_waiters_.find(data->token);
  if (it == ctl.log_waiters_.end()) return Status::Ok();
  if (ctl.NodeOfPeer(it->second.node, in.peer) == nullptr) {
    return Denied("log data for a request to node " + it->second.node + " from another connection");
  }
  net::Incoming client{it->second.peer, {}};
  client.envelope.id = it->second.request_id;
  if (!data->error.empty()) {
    ctl.ReplyError(client, NotFound(data->error));
  } else {
    ctl.ReplyBody(client, data->reply);
  }
  ctl.log_waiters_.erase(it);
  return Status::Ok();
}

}  // namespace herd::ctld
