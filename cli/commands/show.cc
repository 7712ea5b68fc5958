// herd show JOB [--json]
#include <memory>

#include "cli/commands/commands.h"
#include "cli/format.h"

namespace herd::cli {
namespace {

struct ShowOptions {
  std::string id;
  bool json = false;
};

int RunShow(const ShowOptions& o, Context& ctx) {
  auto id = ParseJobId(o.id);
  if (!id.ok()) return ctx.UsageError(id.status().message());
  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  proto::JobsRequest request;
  request.ids = {*id};
  request.all = true;
  auto reply = controller->Jobs(request);
  if (!reply.ok()) return ctx.RequestError(reply.status());
  for (const auto& job : reply->jobs) {
    if (job.id != *id) continue;
    if (o.json) {
      ctx.out() << DumpJson(JobToJson(job)) << "\n";
    } else {
      PrintJobDetails(job, ctx.Now(), ctx.out());
    }
    return kExitOk;
  }
  ctx.err() << "herd: job " << *id << ": not found\n";
  return kExitRejected;
}

}  // namespace

void RegisterShow(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ShowOptions>();
  CLI::App* sub = app.add_subcommand("show", "Show every field of one job");
  sub->add_option("JOB", o->id, "job id")->required();
  sub->add_flag("--json", o->json, "print a JSON object");
  sub->fallthrough();
  sub->callback([o, &ctx] { ctx.exit_code = RunShow(*o, ctx); });
}

}  // namespace herd::cli
