// herd why JOB [--json]: why a pending job waits, its place in its project's queue and the
// project's share; a one-line summary for a job that runs or ended.
#include <memory>

#include "cli/commands/commands.h"
#include "cli/format.h"
#include "common/model/units.h"

namespace herd::cli {
namespace {

std::string Gpus(int64_t milli) { return milli < 0 ? "-" : model::FormatGpuMilli(milli); }

// "RUNNING on dgx01 for 5m (2 GPUs, project vision, waited 3s)" and the like.
std::string Summary(const model::Job& job, int64_t now) {
  std::string s = "job " + std::to_string(job.id) + " is " + model::JobStateName(job.state);
  const std::string nodes = JobNodes(job);
  if (nodes != "-") s += " on " + nodes;
  if (model::IsTerminal(job.state)) {
    if (job.exit_code >= 0) s += " with exit code " + std::to_string(job.exit_code);
    if (job.start_time > 0) {
      s += " after running " + model::FormatDuration(std::max<int64_t>(0, job.end_time - job.start_time));
    }
  } else if (job.start_time > 0) {
    s += " for " + model::FormatDuration(std::max<int64_t>(0, now - job.start_time));
  }
  s += " (" + JobGpus(job) + " GPUs, project " + job.spec.project;
  if (job.start_time > 0) {
    s += ", waited " + model::FormatDuration(std::max<int64_t>(0, job.start_time - job.submit_time));
  }
  s += ")";
  if (!job.reason.empty()) s += ": " + job.reason;
  return s;
}

int RunWhy(const std::string& id_text, bool json, Context& ctx) {
  int code = kExitOk;
  auto id = ctx.JobIdOf(id_text, &code);
  if (!id) return code;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto reply = controller->Why(proto::WhyRequest{*id});
  if (!reply.ok()) return ctx.RequestError(reply.status());
  const model::Job& job = reply->job;
  const proto::ProjectStatus& p = reply->project;
  const bool pending = job.state == model::JobState::kPending;
  if (json) {
    auto gpus = [](int64_t milli) {
      return milli < 0 ? nlohmann::json(nullptr) : nlohmann::json(milli / 1000.0);
    };
    nlohmann::json out = {{"id", job.id},
                          {"state", model::JobStateName(job.state)},
                          {"reason", job.reason},
                          {"reason_code", job.reason_code},
                          {"summary", Summary(job, ctx.Now())}};
    if (pending) {
      out["waits_for"] = reply->waits_for;
      out["position"] = reply->position;
      out["queue_length"] = reply->queue_length;
      out["estimated_start"] =
          reply->estimated_start > 0 ? nlohmann::json(reply->estimated_start) : nlohmann::json();
      out["estimate_note"] = reply->estimate_note;
    }
    out["project"] = {{"name", p.name},
                      {"deserved_gpus", gpus(p.deserved.gpu_milli)},
                      {"limit_gpus", gpus(p.limit.gpu_milli)},
                      {"fair_share_gpus", gpus(p.fair_share.gpu_milli)},
                      {"allocated_gpus", gpus(p.allocated.gpu_milli)},
                      {"running_jobs", p.running_jobs},
                      {"pending_jobs", p.pending_jobs}};
    ctx.out() << DumpJson(out) << "\n";
    return kExitOk;
  }
  if (!pending) {
    ctx.out() << EscapeText(Summary(job, ctx.Now())) << "\n";
    return kExitOk;
  }
  std::ostream& out = ctx.out();
  out << "Job " << job.id << " is PENDING";
  if (job.submit_time > 0) {
    out << " for " << model::FormatDuration(std::max<int64_t>(0, ctx.Now() - job.submit_time));
  }
  out << ": "
      << (job.reason.empty() ? "not yet considered by the scheduler" : EscapeText(job.reason))
      << "\n";
  out << "Waits for:  " << reply->waits_for << "\n";
  out << "Position:   " << reply->position << " pending job" << (reply->position == 1 ? "" : "s")
      << " of project " << p.name << " ahead of it (" << reply->queue_length
      << " pending in all; order: class priority, then submit time)\n";
  out << "Estimate:   ";
  if (reply->estimated_start <= 0) {
    out << reply->estimate_note << "\n";
  } else if (reply->estimated_start <= ctx.Now()) {
    out << "resources for it are free now (unless jobs ahead of it take them)\n";
  } else {
    out << "could start at " << FormatTimestamp(reply->estimated_start) << " (in "
        << model::FormatDuration(reply->estimated_start - ctx.Now())
        << "), when running jobs reach their time limits\n";
  }
  out << "Project:    " << p.name << ": deserved " << Gpus(p.deserved.gpu_milli)
      << ", fair share " << Gpus(p.fair_share.gpu_milli) << ", allocated "
      << Gpus(p.allocated.gpu_milli) << " GPUs";
  if (p.limit.gpu_milli >= 0) out << ", limit " << Gpus(p.limit.gpu_milli);
  out << " (last scheduling cycle)\n";
  return kExitOk;
}

}  // namespace

void RegisterWhy(CLI::App& app, Context& ctx) {
  auto id = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  CLI::App* sub = app.add_subcommand("why", "Explain why a job waits, or summarize its run");
  sub->add_option("JOB", *id, "job id")->required();
  sub->add_flag("--json", *json, "print a JSON object");
  sub->fallthrough();
  sub->callback([id, json, &ctx] { ctx.exit_code = RunWhy(*id, *json, ctx); });
}

}  // namespace herd::cli
