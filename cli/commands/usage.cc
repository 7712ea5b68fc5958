// herd usage [--since DATE] [--until DATE] [--by user|project|department|type] [--json|--csv]:
// GPU-hours, jobs, waiting times (start - submit), average GPU utilization (weighted by
// GPU-hours) and preemptions per group, computed by herd-ctld.
#include <time.h>

#include <cstdio>
#include <memory>

#include "cli/commands/commands.h"
#include "cli/format.h"
#include "common/model/units.h"

namespace herd::cli {
namespace {


struct UsageOptions {
  std::string since, until, by = "user";
  bool json = false, csv = false;
};

int RunUsage(const UsageOptions& o, Context& ctx) {
  proto::UsageRequest request;
  request.by = o.by;
  if (!o.since.empty()) {
    auto t = ParseWhen(o.since, ctx.Now());
    if (!t.ok()) return ctx.UsageError("--since: " + t.status().message());
    request.since = *t;
  }
  if (!o.until.empty()) {
    auto t = ParseWhen(o.until, ctx.Now());
    if (!t.ok()) return ctx.UsageError("--until: " + t.status().message());
    request.until = *t;
  }
  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto reply = controller->Usage(request);
  if (!reply.ok()) return ctx.RequestError(reply.status());
  if (o.json) {
    ctx.out() << DumpJson(UsageToJson(*reply)) << "\n";
    return kExitOk;
  }
  if (o.csv) {
    ctx.out() << UsageCsv(*reply);
    return kExitOk;
  }
  std::string by = reply->by;
  for (char& c : by) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  Table table({by, "GPU-HOURS", "JOBS", "WAIT-P50", "WAIT-P90", "WAIT-P99", "GPU-UTIL",
               "PREEMPTED"});
  for (const auto& r : reply->rows) {
    table.AddRow({r.group, GpuHours(r.gpu_milli_seconds), std::to_string(r.jobs),
                  model::FormatDuration(r.wait_p50_s), model::FormatDuration(r.wait_p90_s),
                  model::FormatDuration(r.wait_p99_s),
                  r.gpu_util_pct >= 0 ? std::to_string(r.gpu_util_pct) + "%" : "-",
                  std::to_string(r.preemptions)});
  }
  ctx.out() << "Usage from "
            << (reply->since > 0 ? FormatTimestamp(reply->since) : "the beginning") << " to "
            << FormatTimestamp(reply->until) << "\n";
  table.Print(ctx.out(), ctx.env().terminal_width);
  return kExitOk;
}

}  // namespace

void RegisterUsage(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<UsageOptions>();
  CLI::App* sub = app.add_subcommand(
      "usage", "GPU-hours, jobs and waiting times per user, project or department");
  sub->add_option("--since", o->since,
                  "start of the period: YYYY-MM-DD[THH:MM[:SS]] or a duration ago (default: "
                  "the beginning)")
      ->type_name("DATE");
  sub->add_option("--until", o->until, "end of the period (default: now)")->type_name("DATE");
  sub->add_option("--by", o->by, "group by user, project, department or GPU type (default user)")
      ->check(CLI::IsMember({"user", "project", "department", "type"}));
  auto* json = sub->add_flag("--json", o->json, "print a JSON object");
  sub->add_flag("--csv", o->csv, "print CSV with a header line")->excludes(json);
  sub->fallthrough();
  sub->callback([o, &ctx] { ctx.exit_code = RunUsage(*o, ctx); });
}

}  // namespace herd::cli
