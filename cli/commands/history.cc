// herd history [cluster | project NAME | node NAME | job ID] [--since DATE] [--until DATE]
// [--points N] [--json]: herd-ctld's own time series of allocation and GPU utilization, as
// kept in its database ([history] in herd.toml).
#include <cstdio>
#include <memory>

#include "cli/commands/commands.h"
#include "cli/format.h"
#include "common/model/units.h"

namespace herd::cli {
namespace {

struct HistoryOptions {
  std::vector<std::string> what;  // SERIES [KEY]
  std::string since = "1d", until;
  int64_t points = 0;
  bool json = false;
};

// busy / measured as a percentage, "-" when no GPU reported any.
std::string Utilization(int64_t busy_milli, int64_t measured_milli) {
  if (measured_milli <= 0) return "-";
  return std::to_string((busy_milli * 100 + measured_milli / 2) / measured_milli) + "%";
}

int RunHistory(const HistoryOptions& o, Context& ctx) {
  proto::HistoryRequest request;
  request.series = o.what.empty() ? "cluster" : o.what[0];
  if (request.series == "cluster" ? o.what.size() > 1 : o.what.size() != 2) {
    return ctx.UsageError("expected cluster, project NAME, node NAME or job ID");
  }
  if (o.what.size() == 2) request.key = o.what[1];
  auto since = ParseWhen(o.since, ctx.Now());
  if (!since.ok()) return ctx.UsageError("--since: " + since.status().message());
  request.from = *since;
  if (!o.until.empty()) {
    auto until = ParseWhen(o.until, ctx.Now());
    if (!until.ok()) return ctx.UsageError("--until: " + until.status().message());
    request.to = *until;
  }
  if (o.points < 0) return ctx.UsageError("--points: expected a positive number of points");
  request.max_points = o.points;
  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto reply = controller->History(request);
  if (!reply.ok()) return ctx.RequestError(reply.status());
  auto field = [&](const std::string& name) -> int {
    for (size_t i = 0; i < reply->fields.size(); ++i) {
      if (reply->fields[i] == name) return static_cast<int>(i);
    }
    return -1;
  };
  const int busy = field("busy_milli"), measured = field("measured_milli");
  if (o.json) {
    ctx.out() << DumpJson(HistoryToJson(*reply)) << "\n";
    return kExitOk;
  }
  // Columns: the time, each value (GPU amounts as GPUs, counts as they are), the utilization.
  std::vector<std::string> header = {"TIME"};
  for (const std::string& f : reply->fields) {
    std::string name = f.ends_with("_milli") ? f.substr(0, f.size() - 6) : f;
    for (char& c : name) c = c == '_' ? '-' : static_cast<char>(toupper(c));
    header.push_back(name);
  }
  header.push_back("GPU-UTIL");
  Table table(header);
  for (const auto& p : reply->points) {
    std::vector<std::string> row = {FormatTimestamp(p.time)};
    for (size_t i = 0; i < reply->fields.size(); ++i) {
      const int64_t v = i < p.values.size() ? p.values[i] : 0;
      row.push_back(reply->fields[i].ends_with("_milli") ? model::FormatGpuMilli(v)
                                                         : std::to_string(v));
    }
    row.push_back(busy >= 0 && measured >= 0 ? Utilization(p.values[busy], p.values[measured])
                                             : "-");
    table.AddRow(row);
  }
  ctx.out() << "History of " << reply->series << (reply->key.empty() ? "" : " " + reply->key)
            << ", one point per " << model::FormatDuration(reply->step_s) << "\n";
  table.Print(ctx.out(), ctx.env().terminal_width);
  return kExitOk;
}

}  // namespace

void RegisterHistory(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<HistoryOptions>();
  CLI::App* sub = app.add_subcommand(
      "history", "allocation and GPU utilization over time: the cluster, a project, node or job");
  sub->add_option("series", o->what, "cluster (default), project NAME, node NAME or job ID")
      ->expected(0, 2)
      ->type_name("SERIES [KEY]");
  sub->add_option("--since", o->since,
                  "start: YYYY-MM-DD[THH:MM[:SS]] or a duration ago (default 1d)")
      ->type_name("DATE");
  sub->add_option("--until", o->until, "end (default: now)")->type_name("DATE");
  sub->add_option("--points", o->points, "at most this many points (default 500, at most 2000)");
  sub->add_flag("--json", o->json, "print a JSON object");
  sub->fallthrough();
  sub->callback([o, &ctx] { ctx.exit_code = RunHistory(*o, ctx); });
}

}  // namespace herd::cli
