// herd admin check-config FILE | reconfigure | drain NODE [--reason TEXT] | undrain NODE | snapshot
#include <memory>

#include "cli/commands/commands.h"
#include "common/config/config.h"

namespace herd::cli {
namespace {

// Validates a herd.toml without applying it: nothing is sent to herd-ctld.
int CheckConfig(const std::string& path, Context& ctx) {
  auto config = config::LoadConfig(path);
  if (!config.ok()) {
    ctx.err() << "herd: " << config.status().message() << "\n";
    return kExitUsage;
  }
  for (const auto& w : config->warnings) ctx.err() << "herd: warning: " << w << "\n";
  ctx.out() << path << ": OK\n";
  return kExitOk;
}

int RunAdmin(const std::string& action, const std::vector<std::string>& args, Context& ctx) {
  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto reply = controller->Admin(proto::AdminRequest{action, args});
  if (!reply.ok()) return ctx.RequestError(reply.status());
  ctx.out() << reply->message << "\n";
  return kExitOk;
}

}  // namespace

void RegisterAdmin(CLI::App& app, Context& ctx) {
  CLI::App* admin = app.add_subcommand("admin", "Administer the cluster (root and admins)");
  admin->require_subcommand(1);
  admin->fallthrough();

  auto file = std::make_shared<std::string>();
  CLI::App* check = admin->add_subcommand("check-config", "Validate a herd.toml without applying it");
  check->add_option("FILE", *file, "configuration file")->required();
  check->callback([file, &ctx] { ctx.exit_code = CheckConfig(*file, ctx); });

  CLI::App* reconf =
      admin->add_subcommand("reconfigure", "Make herd-ctld reload its herd.toml (like SIGHUP)");
  reconf->callback([&ctx] { ctx.exit_code = RunAdmin("reconfigure", {}, ctx); });

  CLI::App* snapshot = admin->add_subcommand(
      "snapshot", "Run a scheduling cycle now and print its snapshot and decisions, for herd-sim replay");
  snapshot->callback([&ctx] { ctx.exit_code = RunAdmin("snapshot", {}, ctx); });

  for (const char* verb : {"drain", "undrain"}) {
    const bool drain = std::string(verb) == "drain";
    auto node = std::make_shared<std::string>();
    auto reason = std::make_shared<std::string>();
    CLI::App* sub = admin->add_subcommand(
        verb, drain ? "Let NODE's running jobs finish and start no new ones there"
                    : "Let NODE take new jobs again (clears its drain reason)");
    sub->add_option("NODE", *node, "node name")->required();
    if (drain) {
      sub->add_option("--reason", *reason, "why (kept, shown by herd nodes)")->type_name("TEXT");
    }
    sub->callback([verb, node, reason, &ctx] {
      std::vector<std::string> args = {*node};
      if (!reason->empty()) args.push_back(*reason);
      ctx.exit_code = RunAdmin(verb, args, ctx);
    });
  }
}

}  // namespace herd::cli
