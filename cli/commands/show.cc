// herd show JOB [--json]. For an array or sweep id, also its members (with a sweep's parameters).
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
  int code = kExitOk;
  auto id = ctx.JobIdOf(o.id, &code);
  if (!id) return code;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  proto::JobsRequest request;
  request.ids = {*id};
  request.all = true;
  auto reply = controller->Jobs(request);
  if (!reply.ok()) return ctx.RequestError(reply.status());
  for (const auto& job : reply->jobs) {
    if (job.id != *id) continue;
    std::vector<model::Job> members;
    if (job.spec.array_id == job.id && o.id.find('_') == std::string::npos) {
      proto::JobsRequest all;
      all.all = true;
      all.array = job.id;
      auto more = controller->Jobs(all);
      if (!more.ok()) return ctx.RequestError(more.status());
      for (auto& m : more->jobs) {
        if (m.spec.array_id == job.id) members.push_back(std::move(m));
      }
    }
    if (o.json) {
      nlohmann::json j = JobToJson(job);
      if (!members.empty()) {
        j["members"] = nlohmann::json::array();
        for (const auto& m : members) {
          j["members"].push_back(
              {{"id", m.id},
               {"array_index", m.spec.array_index},
               {"state", model::JobStateName(m.state)},
               {"exit_code", m.exit_code >= 0 ? nlohmann::json(m.exit_code) : nlohmann::json()},
               {"sweep", m.spec.sweep.empty() ? nlohmann::json() : nlohmann::json(m.spec.sweep)}});
        }
      }
      ctx.out() << DumpJson(j) << "\n";
    } else {
      PrintJobDetails(job, ctx.Now(), ctx.out());
      if (!members.empty()) {
        const bool sweep = !job.spec.sweep.empty();
        ctx.out() << "\n" << (sweep ? "Sweep " : "Array ") << job.id << ": " << members.size()
                  << " jobs\n";
        Table table({"ID", "INDEX", "STATE", "EXIT", sweep ? "PARAMETERS" : "REASON"});
        for (const auto& m : members) {
          table.AddRow({std::to_string(m.id), std::to_string(m.spec.array_index),
                        model::JobStateName(m.state),
                        m.exit_code >= 0 ? std::to_string(m.exit_code) : "-",
                        sweep ? FormatSweepPoint(m.spec.sweep)
                              : (m.reason.empty() ? "-" : m.reason)});
        }
        table.Print(ctx.out(), ctx.env().terminal_width);
      }
    }
    return kExitOk;
  }
  ctx.err() << "herd: job " << *id << ": not found\n";
  return kExitRejected;
}

}  // namespace

void RegisterShow(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ShowOptions>();
  CLI::App* sub = app.add_subcommand(
      "show", "Show every field of one job (and the members of an array or sweep)");
  sub->add_option("JOB", o->id, "job id")->required();
  sub->add_flag("--json", o->json, "print a JSON object");
  sub->fallthrough();
  sub->callback([o, &ctx] { ctx.exit_code = RunShow(*o, ctx); });
}

}  // namespace herd::cli
