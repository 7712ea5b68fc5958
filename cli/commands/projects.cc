// herd projects [--type TYPE | --pool POOL] [--json]: the queue tree with quotas, fair shares and
// use (of one GPU type with --type, of one node pool's GPUs with --pool).
#include <cstdio>
#include <memory>
#include <set>
#include <string>

#include "cli/commands/commands.h"
#include "cli/format.h"
#include "common/model/units.h"

namespace herd::cli {
namespace {

std::string Gpus(int64_t milli) { return milli < 0 ? "-" : model::FormatGpuMilli(milli); }

// Three significant digits at most: "2", "0.287", "1.5".
std::string Weight(double w) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", w);
  return buf;
}

// Decayed GPU-seconds as GPU-hours with one decimal.
std::string Hours(double gpu_seconds) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f", gpu_seconds / 3600);
  return buf;
}

// The tree's quota and use of GPU type `type` alone (of the GPUs of pool `type`'s nodes when
// `pool`), as herd.toml(5)'s "gpu.TYPE" ("pool.NAME") keys set them.
int PrintType(const proto::ProjectsReply& reply, const std::string& type, bool pool, Context& ctx) {
  auto sets =
      [pool](const proto::ProjectStatus& p) -> const std::vector<proto::ProjectTypeStatus>& {
    return pool ? p.by_pool : p.by_type;
  };
  std::set<std::string> named;
  for (const auto& p : reply.projects) {
    for (const auto& t : sets(p)) named.insert(t.type);
  }
  const std::string what = pool ? "pool" : "GPU type";
  if (named.count(type) == 0) {
    std::string known;
    for (const std::string& t : named) known += (known.empty() ? "" : ", ") + t;
    ctx.err() << "herd: projects: no project has a quota of " << what << " '" << type << "' ("
              << (known.empty()
                      ? "no quota names a " + what
                      : (pool ? "pools" : "GPU types") + std::string(" with quotas: ") + known)
              << "); herd.toml(5) sets them as \"" << (pool ? "pool." : "gpu.") << type
              << "\" keys of deserved or limit\n";
    return kExitUsage;
  }
  Table table({"NAME", "PARENT", "KIND", "DESERVED", "LIMIT", "FAIR-SHARE", "ALLOCATED"});
  for (const auto& p : reply.projects) {
    proto::ProjectTypeStatus t;
    for (const auto& of : sets(p)) {
      if (of.type == type) t = of;
    }
    table.AddRow({p.name, p.parent.empty() ? "-" : p.parent, p.is_project ? "project" : "department",
                  Gpus(t.deserved), Gpus(t.limit), Gpus(t.fair_share), Gpus(t.allocated)});
  }
  table.Print(ctx.out(), ctx.env().terminal_width);
  if (pool) {
    ctx.out() << "(GPUs of pool " << type << "'s nodes only; fair share = deserved quota in pool "
              << type << " plus a weighted share of its idle GPUs)\n";
  } else {
    ctx.out() << "(" << type << " GPUs only; fair share = deserved quota of " << type
              << " plus a weighted share of idle " << type << " GPUs)\n";
  }
  return kExitOk;
}

int RunProjects(const std::string& type, const std::string& pool, bool json, Context& ctx) {
  if (!type.empty() && !pool.empty()) {
    ctx.err() << "herd: projects: give --type or --pool, not both\n";
    return kExitUsage;
  }
  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto reply = controller->Projects(proto::ProjectsRequest{});
  if (!reply.ok()) return ctx.RequestError(reply.status());
  if (!type.empty() && !json) return PrintType(*reply, type, false, ctx);
  if (!pool.empty() && !json) return PrintType(*reply, pool, true, ctx);
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : reply->projects) out.push_back(ProjectToJson(p));
    ctx.out() << DumpJson(out) << "\n";
    return kExitOk;
  }
  // GPUs are what people queue for; --json has cores and memory too.
  Table table({"NAME", "PARENT", "KIND", "DESERVED", "LIMIT", "FAIR-SHARE", "ALLOCATED", "PENDING",
               "JOBS(R/P)", "USAGE", "WEIGHT"});
  for (const auto& p : reply->projects) {
    table.AddRow({p.name, p.parent.empty() ? "-" : p.parent, p.is_project ? "project" : "department",
                  Gpus(p.deserved.gpu_milli), Gpus(p.limit.gpu_milli), Gpus(p.fair_share.gpu_milli),
                  Gpus(p.allocated.gpu_milli), Gpus(p.pending_demand.gpu_milli),
                  std::to_string(p.running_jobs) + "/" + std::to_string(p.pending_jobs),
                  Hours(p.usage_gpu_seconds),
                  Weight(p.effective_weight)});
  }
  table.Print(ctx.out(), ctx.env().terminal_width);
  ctx.out() << "(GPU counts; fair share = deserved quota plus a share of idle GPUs by WEIGHT, the "
               "over-quota weight lowered by recent USAGE in decayed GPU-hours)\n";
  return kExitOk;
}

}  // namespace

void RegisterProjects(CLI::App& app, Context& ctx) {
  auto json = std::make_shared<bool>(false);
  auto type = std::make_shared<std::string>();
  auto pool = std::make_shared<std::string>();
  CLI::App* sub = app.add_subcommand(
      "projects", "List projects and departments: deserved quota, limit, fair share, use");
  sub->add_option("--type", *type, "quota and use of one GPU type (herd nodes shows types)")
      ->type_name("TYPE");
  sub->add_option("--pool", *pool, "quota and use of the GPUs of one node pool's nodes")
      ->type_name("POOL");
  sub->add_flag("--json", *json,
                "print a JSON array (every type's quota and use under by_type, every pool's under "
                "by_pool)");
  sub->fallthrough();
  sub->callback(
      [json, type, pool, &ctx] { ctx.exit_code = RunProjects(*type, *pool, *json, ctx); });
}

}  // namespace herd::cli
