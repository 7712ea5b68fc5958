// herd wait JOB... [--timeout DURATION]
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "cli/commands/commands.h"
#include "cli/commands/validators.h"
#include "cli/format.h"
#include "cli/interrupt.h"
#include "common/model/units.h"

namespace herd::cli {
namespace {

struct WaitOptions {
  std::vector<std::string> ids;
  int64_t timeout_s = 0;  // 0: wait forever
};

// 0 when every job COMPLETED; else the exit code of the first FAILED job (in the order given)
// that has one in 1..255; else kExitJobFailed.
int ExitCodeOfJobs(const std::vector<model::JobId>& ids,
                   const std::map<model::JobId, model::Job>& jobs) {
  bool all_completed = true;
  for (model::JobId id : ids) {
    const model::Job& job = jobs.at(id);
    if (job.state == model::JobState::kCompleted) continue;
    all_completed = false;
    if (job.state == model::JobState::kFailed && job.exit_code > 0 && job.exit_code < 256) {
      return job.exit_code;
    }
  }
  return all_completed ? kExitOk : kExitJobFailed;
}

// An array's id stands for every member; ARRAY_INDEX for one.
int RunWait(const WaitOptions& o, Context& ctx) {
  int code = kExitOk;
  auto named = ctx.JobsOf(o.ids, &code);
  if (!named) return code;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  std::vector<model::JobId> ids;
  if (!named->ids.empty()) {
    proto::JobsRequest request;
    request.ids = named->ids;
    request.all = true;
    request.brief = true;
    auto reply = controller->Jobs(request);
    if (!reply.ok()) return ctx.RequestError(reply.status());
    std::set<model::JobId> arrays;
    for (const auto& j : reply->jobs) {
      if (j.spec.array_id == j.id) arrays.insert(j.id);
    }
    for (model::JobId id : named->ids) {
      if (!arrays.count(id)) {
        ids.push_back(id);
        continue;
      }
      proto::JobsRequest members;
      members.array = id;
      members.all = true;
      members.brief = true;
      auto m = controller->Jobs(members);
      if (!m.ok()) return ctx.RequestError(m.status());
      for (const auto& j : m->jobs) ids.push_back(j.id);
    }
  }
  ids.insert(ids.end(), named->members.begin(), named->members.end());
  std::set<model::JobId> seen;
  std::erase_if(ids, [&](model::JobId id) { return !seen.insert(id).second; });
  return WaitForJobs(ids, o.timeout_s, ctx);
}

}  // namespace

int WaitForJobs(const std::vector<model::JobId>& ids, int64_t timeout_s, Context& ctx,
                InterruptWatch* interrupt) {
  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;

  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  std::map<model::JobId, model::Job> finished;
  while (true) {
    proto::JobsRequest request;
    for (model::JobId id : ids) {
      if (!finished.count(id)) request.ids.push_back(id);
    }
    request.all = true;
    request.brief = true;  // states and exit codes only
    auto reply = controller->Jobs(request);
    if (!reply.ok()) return ctx.RequestError(reply.status());
    std::set<model::JobId> seen;
    for (const auto& job : reply->jobs) {
      const bool asked =
          std::find(request.ids.begin(), request.ids.end(), job.id) != request.ids.end();
      if (!asked) continue;
      seen.insert(job.id);
      if (!model::IsTerminal(job.state)) continue;
      finished[job.id] = job;
      ctx.out() << "job " << model::JobRefText(job) << ": " << model::JobStateName(job.state);
      const std::string exit_code =
          job.exit_code >= 0 ? "exit code " + std::to_string(job.exit_code) : "";
      if (!exit_code.empty()) ctx.out() << ", " << exit_code;
      // A failed job's reason is often just its exit code, said once.
      if (!job.reason.empty() && job.reason != exit_code) {
        ctx.out() << " (" << EscapeText(job.reason) << ")";
      }
      ctx.out() << std::endl;
    }
    for (model::JobId id : request.ids) {
      if (!seen.count(id)) {
        ctx.err() << "herd: job " << id << ": not found\n";
        return kExitRejected;
      }
    }
    if (finished.size() == ids.size()) return ExitCodeOfJobs(ids, finished);
    auto left = deadline - Clock::now();
    if (timeout_s > 0 && left <= Clock::duration::zero()) {
      ctx.err() << "herd: timed out after " << model::FormatDuration(timeout_s) << ": "
                << ids.size() - finished.size() << " job(s) still running or pending\n";
      return kExitWaitTimeout;
    }
    auto pause = std::chrono::duration_cast<Clock::duration>(
        std::chrono::milliseconds(ctx.env().wait_poll_ms));
    if (timeout_s > 0) pause = std::min(pause, left);
    if (interrupt == nullptr) {
      std::this_thread::sleep_for(pause);
    } else if (interrupt->Sleep(static_cast<int>(
                   std::chrono::ceil<std::chrono::milliseconds>(pause).count()))) {
      std::vector<model::JobId> unfinished;
      for (model::JobId id : ids) {
        if (!finished.count(id)) unfinished.push_back(id);
      }
      return interrupt->Answer(unfinished, ctx);
    }
  }
}

void RegisterWait(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<WaitOptions>();
  CLI::App* sub = app.add_subcommand(
      "wait", "Wait until jobs end; exit 0 if all completed (see exit codes below)");
  sub->add_option("JOB", o->ids, "job ids (an array's id: all of it; ARRAY_INDEX: one member)")
      ->required();
  sub->add_option("--timeout", o->timeout_s, "give up (exit 5) after DURATION")
      ->transform(DurationValidator())
      ->type_name("DURATION");
  sub->fallthrough();
  sub->callback([o, &ctx] { ctx.exit_code = RunWait(*o, ctx); });
}

}  // namespace herd::cli
