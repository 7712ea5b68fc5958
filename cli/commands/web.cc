// herd web: the address of the dashboard with a login token for the caller, minted by herd-ctld for
// the MUNGE-authenticated user; --token prints a session token for the REST API instead; --revoke
// ends the caller's tokens (an admin's --user: another user's).
#include <memory>

#include "cli/commands/commands.h"
#include "cli/format.h"
#include "common/auth/web_tokens.h"

namespace herd::cli {
namespace {

struct WebOptions {
  bool token = false;
  bool revoke = false;
  std::string user;
};

int RunWeb(const WebOptions& o, Context& ctx) {
  if (!o.user.empty() && !o.revoke) return ctx.UsageError("--user goes with --revoke");
  if (o.token && o.revoke) return ctx.UsageError("--token and --revoke: choose one");
  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  const std::string action = o.revoke ? "revoke" : o.token ? "api" : "login";
  // The token comes back sealed to a key pair made for this request alone.
  auto reply = auth::CallSealed(
      proto::WebTokenRequest{action, "", o.user},
      [controller](const proto::WebTokenRequest& r) { return controller->WebToken(r); });
  if (!reply.ok()) return ctx.RequestError(reply.status());
  if (o.revoke) {
    ctx.out() << reply->revoked << " web token(s) of " << reply->user
              << " revoked: their browser sessions and API clients must log in again\n";
  } else if (o.token) {
    // Only the token on stdout, so that a script can write it to a file of its own.
    ctx.out() << reply->token << "\n";
    ctx.err() << "herd: API token for " << reply->user << ", valid until "
              << FormatTimestamp(reply->expires)
              << ": send it as 'Authorization: Bearer TOKEN' from a file only you can read "
                 "(curl -H @FILE), never on a command line; keep it secret\n";
  } else {
    ctx.out() << reply->url << "/login?token=" << reply->token << "\n";
    ctx.err() << "herd: open this address in a browser before " << FormatTimestamp(reply->expires)
              << "; it works once and logs in as " << reply->user << "\n";
  }
  return kExitOk;
}

}  // namespace

void RegisterWeb(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<WebOptions>();
  CLI::App* sub =
      app.add_subcommand("web", "Print the dashboard's address with a one-use login token");
  sub->add_flag("--token", o->token, "print a session token for the REST API instead");
  sub->add_flag("--revoke", o->revoke, "end your web tokens (browser sessions, API tokens)");
  sub->add_option("--user", o->user, "with --revoke: another user's tokens (admins)")
      ->type_name("USER");
  sub->fallthrough();
  sub->callback([o, &ctx] { ctx.exit_code = RunWeb(*o, ctx); });
}

}  // namespace herd::cli
