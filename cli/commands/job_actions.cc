// herd cancel JOB...   herd suspend JOB...   herd resume JOB...   herd release JOB...
// An array id given to cancel or release stands for its unfinished members.
#include <memory>

#include "cli/commands/commands.h"

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
    {"release", "released", "Release held jobs (submitted with --hold)"},
};

int RunAction(const Verb& verb, const std::vector<std::string>& texts, Context& ctx) {
  auto ids = ParseJobIds(texts);
  if (!ids.ok()) return ctx.UsageError(ids.status().message());
  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto reply = controller->JobAction(proto::JobActionRequest{verb.name, *ids});
  if (!reply.ok()) return ctx.RequestError(reply.status());
  int exit = kExitOk;
  for (const auto& r : reply->results) {
    if (r.ok && r.array_jobs > 0) {
      ctx.out() << verb.done << " array " << r.id << " (" << r.array_jobs
                << (std::string(verb.name) == "cancel" ? " unfinished" : "") << " job"
                << (r.array_jobs == 1 ? "" : "s") << ")\n";
    } else if (r.ok) {
      ctx.out() << verb.done << " job " << r.id << "\n";
    } else {
      ctx.err() << "herd: job " << r.id << ": " << r.message << "\n";
      exit = kExitRejected;
    }
  }
  return exit;
}

}  // namespace

void RegisterJobActions(CLI::App& app, Context& ctx) {
  for (const Verb& verb : kVerbs) {
    auto ids = std::make_shared<std::vector<std::string>>();
    CLI::App* sub = app.add_subcommand(verb.name, verb.help);
    sub->add_option("JOB", *ids, "job ids")->required();
    sub->fallthrough();
    sub->callback([&verb, ids, &ctx] { ctx.exit_code = RunAction(verb, *ids, ctx); });
  }
}

}  // namespace herd::cli
