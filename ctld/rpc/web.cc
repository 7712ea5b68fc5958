// herd web on herd-ctld's side: minting and ending web tokens (WebTokenRequest), and the requests
// herd-web relays for a token's user (WebRelay). herd-web holds no credential of its users: each
// relayed request names a session token, and herd-ctld answers it as that user, so a compromised
// herd-web can do no more than the tokens it was given allow, until they expire.
#include <pwd.h>

#include <algorithm>
#include <array>
#include <string_view>

#include "common/auth/web_tokens.h"
#include "ctld/controller.h"
#include "spdlog/spdlog.h"

namespace herd::ctld {

namespace rpc {
namespace {
struct WebFamily;
}  // namespace

template <>
struct Handlers<WebFamily> {
  // herd web's tokens: login, api, exchange, logout, revoke.
  static Status OnWebToken(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
  // A request herd-web relays for a web token's user, answered as that user.
  static Status OnWebRelay(Controller& ctl, const net::Incoming& in, const auth::Identity& who);
};
}  // namespace rpc

using WebRequests = rpc::Handlers<rpc::WebFamily>;

std::span<const rpc::Route> rpc::WebRoutes() {
  using proto::MessageName;
  static const Route kRoutes[] = {
      {MessageName<proto::WebTokenRequest>(), Caller::kUser, &WebRequests::OnWebToken},
      {MessageName<proto::WebRelay>(), Caller::kWeb, &WebRequests::OnWebRelay},
  };
  return kRoutes;
}

Status CheckRelayable(const std::string& type, const std::string& body) {
  using proto::MessageName;
  static const std::array<std::string_view, 10> kTypes = {
      MessageName<proto::SubmitRequest>(),    MessageName<proto::JobsRequest>(),
      MessageName<proto::WhyRequest>(),       MessageName<proto::NodesRequest>(),
      MessageName<proto::ProjectsRequest>(),  MessageName<proto::UsageRequest>(),
      MessageName<proto::JobActionRequest>(), MessageName<proto::HistoryRequest>(),
      MessageName<proto::StatsRequest>(),     MessageName<proto::LogsRequest>()};
  if (std::find(kTypes.begin(), kTypes.end(), type) == kTypes.end()) {
    return Invalid("herd-web may not relay '" + type.substr(0, 64) + "' for a web token");
  }
  if (type == MessageName<proto::JobActionRequest>()) {
    // The job page's buttons: one action on jobs named by id, never by filter or array member.
    auto action = proto::DecodeBody<proto::JobActionRequest>(body);
    if (!action.ok()) return action.status();
    const bool allowed =
        action->action == "cancel" || action->action == "hold" || action->action == "release";
    if (!allowed || action->ids.empty() || !action->members.empty()) {
      return Invalid("herd-web may relay only the cancel, hold or release of named jobs (asked: '" +
                     action->action.substr(0, 32) + "' of " + std::to_string(action->ids.size()) +
                     " named jobs)");
    }
  }
  if (type == MessageName<proto::LogsRequest>()) {
    // The job page's log tail: one job's output, as herd logs asks for it.
    auto logs = proto::DecodeBody<proto::LogsRequest>(body);
    if (!logs.ok()) return logs.status();
    if (logs->id <= 0) return Invalid("herd-web may relay the output of a named job only");
  }
  return Status::Ok();
}

Status CheckWebUser(const config::Config& config, uint32_t self) {
  const std::string& name = config.web.user;
  if (name.empty()) return Status::Ok();
  const struct passwd* pw = getpwnam(name.c_str());
  if (pw == nullptr) return Status::Ok();
  const uid_t uid = pw->pw_uid;
  const std::string fix =
      ": herd-web must run as a user of its own with no other rights (such as "
      "herd-web), set in [web] user";
  if (uid == 0) return Invalid("[web] user '" + name + "' is root (uid 0)" + fix);
  if (uid == self) {
    return Invalid("[web] user '" + name + "' is herd-ctld's own user (uid " + std::to_string(uid) +
                   "), whose credential speaks for herd-ctld" + fix);
  }
  for (const std::string& admin : config.admins) {
    const struct passwd* a = admin == name ? pw : getpwnam(admin.c_str());
    if (admin == name || (a != nullptr && a->pw_uid == uid)) {
      return Invalid("[web] user '" + name + "' is an admin (admins has '" + admin +
                     "'), so every request herd-web makes would have admin rights" + fix);
    }
  }
  return Status::Ok();
}

bool Controller::IsWebUser(const auth::Identity& who) const {
  return web_uid_ >= 0 && static_cast<int64_t>(who.uid) == web_uid_;
}

Status WebRequests::OnWebToken(Controller& ctl, const net::Incoming& in,
                               const auth::Identity& who) {
  auto req = proto::BodyOf<proto::WebTokenRequest>(in.envelope);
  if (!req.ok()) return req.status();
  const config::WebConfig& web = ctl.config_.web;
  proto::WebTokenReply reply;
  const bool mints = req->action == "login" || req->action == "api" || req->action == "exchange";
  if (mints && req->public_key.size() != auth::SealKey::kPublicKeyBytes) {
    // Checked before anything is minted or a login token used up.
    return auth::SealToken("", req->public_key).status();
  }
  if (req->action == "login" || req->action == "api") {
    const bool login = req->action == "login";
    auto minted = ctl.web_tokens_.Mint(
        login ? auth::WebTokens::Kind::kLogin : auth::WebTokens::Kind::kSession, who, ctl.Now(),
        login ? web.login_token_s : web.session_s);
    if (!minted.ok()) return minted.status();
    auto sealed = auth::SealToken(minted->token, req->public_key);
    if (!sealed.ok()) return sealed.status();
    reply.token = std::move(sealed).value();
    reply.expires = minted->expires;
    reply.user = who.user;
    reply.url = web.BaseUrl();
    spdlog::info("web token ({}) for {} until {}", req->action, who.user, reply.expires);
  } else if (req->action == "exchange") {
    if (!ctl.IsWebUser(who)) {
      return Denied("permission denied: only herd-web's user ([web] user) swaps login tokens");
    }
    auto session = ctl.web_tokens_.Exchange(req->token, ctl.Now(), web.session_s);
    if (!session.ok()) {
      spdlog::warn("web login refused: {}", session.status().message());
      return session.status();
    }
    auto sealed = auth::SealToken(session->first.token, req->public_key);
    if (!sealed.ok()) return sealed.status();
    reply.token = std::move(sealed).value();
    reply.expires = session->first.expires;
    reply.user = session->second.user;
    spdlog::info("web session for {} until {}", reply.user, reply.expires);
  } else if (req->action == "logout") {
    reply.revoked = ctl.web_tokens_.Revoke(req->token);
  } else if (req->action == "revoke") {
    uint32_t uid = who.uid;
    reply.user = who.user;
    if (!req->user.empty() && req->user != who.user) {
      if (!ctl.IsAdmin(who)) {
        return Denied("permission denied: only root and admins revoke another user's tokens");
      }
      const struct passwd* pw = getpwnam(req->user.c_str());
      if (pw == nullptr) return NotFound("no user named " + req->user + " on herd-ctld's host");
      uid = pw->pw_uid;
      reply.user = req->user;
    }
    reply.revoked = ctl.web_tokens_.RevokeUser(uid);
    spdlog::info("{} web tokens of {} revoked by {}", reply.revoked, reply.user, who.user);
  } else {
    return Invalid("unknown web token action '" + req->action +
                   "': use login, api, revoke, exchange or logout");
  }
  ctl.ReplyBody(in, reply);
  return Status::Ok();
}

Status WebRequests::OnWebRelay(Controller& ctl, const net::Incoming& in,
                               const auth::Identity& /*herd_web*/) {
  auto req = proto::BodyOf<proto::WebRelay>(in.envelope);
  if (!req.ok()) return req.status();
  auto user = ctl.web_tokens_.Resolve(req->token, ctl.Now());
  if (!user.ok()) return user.status();
  const Route* route = FindRoute(req->type);
  if (route == nullptr || route->caller != Caller::kUser) {
    return Invalid("herd-web may not relay '" + req->type.substr(0, 64) + "' for a web token");
  }
  HERD_RETURN_IF_ERROR(CheckRelayable(req->type, req->body));
  // The inner request, answered as its user would be: the reply keeps the relay's id.
  net::Incoming inner{in.peer, proto::Envelope{proto::kProtocolVersion, std::move(req->type),
                                               in.envelope.id, "", std::move(req->body)}};
  return route->handle(ctl, inner, *user);
}

}  // namespace herd::ctld
