// herd nodes [--json]
#include <memory>

#include "cli/commands/commands.h"
#include "cli/format.h"

namespace herd::cli {
namespace {

int RunNodes(bool json, Context& ctx) {
  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto reply = controller->Nodes(proto::NodesRequest{});
  if (!reply.ok()) return ctx.RequestError(reply.status());
  if (json) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const auto& n : reply->nodes) nodes.push_back(NodeToJson(n));
    ctx.out() << DumpJson(nodes) << "\n";
  } else {
    PrintNodesTable(reply->nodes, ctx.env().terminal_width, ctx.out());
  }
  return kExitOk;
}

}  // namespace

void RegisterNodes(CLI::App& app, Context& ctx) {
  auto json = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand("nodes", "List nodes: state, GPUs, CPUs and memory in use");
  sub->add_flag("--json", *json, "print a JSON array");
  sub->fallthrough();
  sub->callback([json, &ctx] { ctx.exit_code = RunNodes(*json, ctx); });
}

}  // namespace herd::cli
