// herd jobs [-a] [-u USER | --me] [-p PROJECT] [--state S,...] [--json] [JOB...]
#include <algorithm>
#include <memory>
#include <set>

#include "cli/commands/commands.h"
#include "cli/format.h"

namespace herd::cli {
namespace {

struct JobsOptions {
  bool all = false;
  std::string user;
  std::string project;
  bool me = false;
  std::vector<std::string> states;
  bool json = false;
  bool expand = false;
  std::vector<std::string> ids;
};

int RunJobs(const JobsOptions& o, Context& ctx) {
  proto::JobsRequest request;
  auto ids = ParseJobIds(o.ids);
  if (!ids.ok()) return ctx.UsageError(ids.status().message());
  request.ids = *ids;
  for (const auto& s : o.states) {
    auto state = model::ParseJobState(s);
    if (!state) {
      return ctx.UsageError("--state: invalid state '" + s +
                            "': use PENDING, STARTING, RUNNING, SUSPENDED, PREEMPTED, COMPLETED, "
                            "FAILED, CANCELLED, TIMEOUT or NODE_FAIL");
    }
    request.states.push_back(model::JobStateName(*state));
  }
  request.user = o.me ? ctx.env().user : o.user;
  // Naming jobs or states asks for them even when they have finished.
  request.all = o.all || !request.ids.empty() || !request.states.empty();
  request.brief = !o.json;  // the table needs none of the spec's heavy parts

  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto reply = controller->Jobs(request);
  if (!reply.ok()) return ctx.RequestError(reply.status());
  // Naming an array id lists its members.
  std::set<model::JobId> named_arrays;
  for (const auto& j : reply->jobs) {
    if (!request.ids.empty() && j.spec.array_id == j.id) named_arrays.insert(j.id);
  }
  if (!named_arrays.empty()) {
    proto::JobsRequest members = request;
    members.ids.clear();
    auto more = controller->Jobs(members);
    if (!more.ok()) return ctx.RequestError(more.status());
    std::set<model::JobId> have;
    for (const auto& j : reply->jobs) have.insert(j.id);
    for (auto& j : more->jobs) {
      if (named_arrays.count(j.spec.array_id) && !have.count(j.id)) reply->jobs.push_back(j);
    }
    std::sort(reply->jobs.begin(), reply->jobs.end(),
              [](const model::Job& a, const model::Job& b) { return a.id < b.id; });
  }
  if (!o.project.empty()) {
    std::erase_if(reply->jobs, [&](const model::Job& j) { return j.spec.project != o.project; });
  }
  if (o.json) {
    // One job at a time, the same text DumpJson prints for the whole array: a long queue is
    // never held twice more as JSON values and one string.
    std::ostream& out = ctx.out();
    out << (reply->jobs.empty() ? "[]\n" : "[\n");
    for (size_t i = 0; i < reply->jobs.size(); ++i) {
      std::string text = DumpJson(JobToJson(reply->jobs[i]));
      for (size_t at = text.find('\n'); at != std::string::npos; at = text.find('\n', at + 3)) {
        text.replace(at, 1, "\n  ");
      }
      out << "  " << text << (i + 1 < reply->jobs.size() ? ",\n" : "\n]\n");
    }
  } else {
    PrintJobsTable(reply->jobs, ctx.Now(), ctx.env().terminal_width, ctx.out(),
                   /*group_arrays=*/!o.expand && request.ids.empty());
  }
  return kExitOk;
}

}  // namespace

void RegisterJobs(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<JobsOptions>();
  CLI::App* sub = app.add_subcommand("jobs", "List jobs (default: unfinished jobs of everyone)");
  sub->add_flag("-a,--all", o->all, "include finished jobs");
  auto* user = sub->add_option("-u,--user", o->user, "only jobs of USER");
  sub->add_flag("--me", o->me, "only my jobs")->excludes(user);
  sub->add_option("-p,--project", o->project, "only jobs of PROJECT");
  sub->add_option("--state", o->states, "only jobs in these states (comma-separated)")
      ->delimiter(',')
      ->allow_extra_args(false);
  sub->add_flag("--json", o->json, "print a JSON array");
  sub->add_flag("--expand", o->expand, "one line per array member (naming an array expands it)");
  sub->add_option("JOB", o->ids, "job ids");
  sub->fallthrough();
  sub->callback([o, &ctx] { ctx.exit_code = RunJobs(*o, ctx); });
}

}  // namespace herd::cli
