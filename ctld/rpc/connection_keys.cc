// Connection keys on herd-ctld's side (common/auth/connection_key.h): who sent a request, and
// the request that opens a key for its connection.
#include "ctld/controller.h"

namespace herd::ctld {

namespace rpc {
namespace {
struct ConnectionKeyFamily;
}  // namespace

template <>
struct Handlers<ConnectionKeyFamily> {
  // A connection key for the sender's connection, opened on its MUNGE credential.
  static Status OnConnectionKey(Controller& ctl, const net::Incoming& in,
                                const auth::Identity& who);
};
}  // namespace rpc

using ConnectionKeyRequests = rpc::Handlers<rpc::ConnectionKeyFamily>;

std::span<const rpc::Route> rpc::ConnectionKeyRoutes() {
  using proto::MessageName;
  static const Route kRoutes[] = {
      {MessageName<proto::ConnectionKeyRequest>(), Caller::kUser,
       &ConnectionKeyRequests::OnConnectionKey},
  };
  return kRoutes;
}

Result<auth::Identity> Controller::Verify(const net::Incoming& in) {
  const proto::Envelope& e = in.envelope;
  if (!auth::IsKeyed(e.cred))
    return auth_->Verify(e.cred, auth::MessageBinding(e.type, e.id, e.body));
  auto who = keys_.Verify(in.peer, e.cred, e.type, e.id, e.body);
  // A bad signature ends the connection (after its error reply): its key is gone, and an honest
  // client never sends one. A connection without a key is only told so (it may be new).
  if (!who.ok() && who.status().code() == Code::kDenied) disconnect_.push_back(in.peer);
  return who;
}

Status ConnectionKeyRequests::OnConnectionKey(Controller& ctl, const net::Incoming& in,
                                              const auth::Identity& who) {
  auto req = proto::BodyOf<proto::ConnectionKeyRequest>(in.envelope);
  if (!req.ok()) return req.status();
  // Opened on MUNGE's word only: a key cannot vouch for the next one.
  if (auth::IsKeyed(in.envelope.cred)) return Invalid("a connection key is opened with MUNGE");
  if (std::string_view(ctl.auth_->Name()) != "munge") {
    return Invalid("connection keys need [auth] method = \"munge\"");
  }
  auto server_public = ctl.keys_.Open(in.peer, who, req->client_public);
  if (!server_public.ok()) return server_public.status();
  ctl.server_->Watch(in.peer);  // the key goes with the connection
  ctl.ReplyBody(in, proto::ConnectionKeyReply{std::move(*server_public)});
  return Status::Ok();
}

}  // namespace herd::ctld
