// herd cancel|suspend|resume|release|hold|requeue JOB...   herd cancel -u USER|--state S|...
// herd update JOB... --time|--name|--project|--hold
// An array's id stands for its members the verb applies to; ARRAY_INDEX (12_3) for one member.
#include <memory>

#include "cli/commands/commands.h"
#include "cli/commands/validators.h"

namespace herd::cli {
namespace {

struct Verb {
  const char* name;   // the subcommand and the request's action
  const char* done;   // past tense for "cancelled job 42"
  const char* help;
};

constexpr Verb kVerbs[] = {
    {"cancel", "cancelled", "Cancel jobs (pending ones never start, running ones are killed)"},
    {"suspend", "suspended", "Freeze running jobs in place; they keep their resources"},
    {"resume", "resumed", "Resume suspended or stopped jobs"},
    {"hold", "held", "Keep pending jobs from starting until herd release"},
    {"release", "released", "Release held jobs (herd hold, submit --hold)"},
    {"requeue", "requeued", "Stop running jobs and put them back in the queue (same id)"},
};

// herd cancel's filters: with no job named, every unfinished job matching all of them.
struct CancelFilters {
  std::string user;
  std::vector<std::string> states;
  std::string name;
  std::string project;
  bool any() const { return !user.empty() || !states.empty() || !name.empty() || !project.empty(); }
};

// Prints one line per result (the job as it was named); returns 0, or 2 if any was refused.
int PrintResults(const char* done, bool cancel, const proto::JobActionReply& reply,
                 const NamedJobs& named, Context& ctx) {
  int exit = kExitOk;
  for (const auto& r : reply.results) {
    auto text = named.texts.find(r.id);
    const std::string job = text != named.texts.end() ? text->second : std::to_string(r.id);
    if (r.ok && r.array_jobs > 0) {
      ctx.out() << done << " array " << r.id << " (" << r.array_jobs
                << (cancel ? " unfinished" : "") << " job" << (r.array_jobs == 1 ? "" : "s")
                << ")\n";
    } else if (r.ok) {
      ctx.out() << done << " job " << job << "\n";
    } else {
      ctx.err() << "herd: job " << job << ": " << r.message << "\n";
      exit = kExitRejected;
    }
  }
  return exit;
}

int RunAction(const Verb& verb, const std::vector<std::string>& texts, const CancelFilters& f,
              Context& ctx) {
  const bool cancel = std::string(verb.name) == "cancel";
  if (texts.empty() && !f.any()) {
    return ctx.UsageError(std::string("herd ") + verb.name + ": name the jobs" +
                          (cancel ? " (or filter them: -u USER, --state S, --name N, --project P)"
                                  : ""));
  }
  if (!texts.empty() && f.any()) {
    return ctx.UsageError("herd cancel: name jobs or filter them, not both");
  }
  proto::JobActionRequest request{verb.name, {}, {}, f.user, {}, f.name, f.project};
  for (const auto& s : f.states) {
    auto state = model::ParseJobState(s);
    if (!state) return ctx.UsageError("--state: invalid state '" + s + "'");
    request.states.push_back(model::JobStateName(*state));
  }
  int code = kExitOk;
  auto named = ctx.JobsOf(texts, &code);
  if (!named) return code;
  request.ids = named->ids;
  request.members = named->members;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto reply = controller->JobAction(request);
  if (!reply.ok()) return ctx.RequestError(reply.status());
  if (!f.any()) return PrintResults(verb.done, cancel, *reply, *named, ctx);
  int cancelled = 0;
  for (const auto& r : reply->results) cancelled += r.ok;
  int exit = kExitOk;
  for (const auto& r : reply->results) {
    if (r.ok) continue;
    ctx.err() << "herd: job " << r.id << ": " << r.message << "\n";
    exit = kExitRejected;
  }
  ctx.out() << "cancelled " << cancelled << " job" << (cancelled == 1 ? "" : "s") << "\n";
  return exit;
}

struct UpdateOptions {
  std::vector<std::string> ids;
  int64_t time_limit_s = -1;
  std::string name;
  std::string project;
  bool hold = false;
};

int RunUpdate(const UpdateOptions& o, Context& ctx) {
  if (o.time_limit_s < 0 && o.name.empty() && o.project.empty() && !o.hold) {
    return ctx.UsageError("herd update: nothing to change: give --time, --name, --project or --hold");
  }
  if (o.time_limit_s == 0) return ctx.UsageError("--time: must be more than zero");
  int code = kExitOk;
  auto named = ctx.JobsOf(o.ids, &code);
  if (!named) return code;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  proto::UpdateJobRequest request{named->ids, named->members, o.time_limit_s, o.name, o.project,
                                  o.hold};
  auto reply = controller->UpdateJob(request);
  if (!reply.ok()) return ctx.RequestError(reply.status());
  return PrintResults("updated", false, *reply, *named, ctx);
}

}  // namespace

void RegisterJobActions(CLI::App& app, Context& ctx) {
  for (const Verb& verb : kVerbs) {
    auto ids = std::make_shared<std::vector<std::string>>();
    auto filters = std::make_shared<CancelFilters>();
    CLI::App* sub = app.add_subcommand(verb.name, verb.help);
    sub->add_option("JOB", *ids, "job ids (an array's id: all of it; ARRAY_INDEX: one member)");
    if (std::string(verb.name) == "cancel") {
      sub->add_option("-u,--user", filters->user, "every unfinished job of USER (yours by default)")
          ->type_name("USER");
      sub->add_option("--state", filters->states, "only jobs in these states (comma-separated)")
          ->type_name("STATE")
          ->delimiter(',')
          ->allow_extra_args(false);
      sub->add_option("--name", filters->name, "only jobs named NAME")->type_name("NAME");
      sub->add_option("-p,--project", filters->project, "only jobs of PROJECT")
          ->type_name("PROJECT");
    }
    sub->fallthrough();
    sub->callback([&verb, ids, filters, &ctx] {
      ctx.exit_code = RunAction(verb, *ids, *filters, ctx);
    });
  }

  auto o = std::make_shared<UpdateOptions>();
  CLI::App* update = app.add_subcommand(
      "update", "Change a pending job's time limit, name or project, or hold it");
  update->add_option("JOB", o->ids, "job ids (an array's id: its pending members)")->required();
  update->add_option("-t,--time", o->time_limit_s,
                     "new time limit (admins: running jobs too), within its class's max_time")
      ->transform(DurationValidator())
      ->type_name("DURATION");
  update->add_option("-J,--name", o->name, "new name")->type_name("NAME");
  update->add_option("-p,--project", o->project, "charge it to PROJECT (you must be a member)")
      ->type_name("PROJECT");
  update->add_flag("--hold", o->hold, "hold it (herd release lets it go)");
  update->fallthrough();
  update->callback([o, &ctx] { ctx.exit_code = RunUpdate(*o, ctx); });
}

}  // namespace herd::cli
