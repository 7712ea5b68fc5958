// One Register function per verb: each adds its subcommand to the `herd` app, with a callback
// that runs the verb and stores its exit code in Context::exit_code.
// Called by RunCli (cli/cli.cc) once per invocation.
// Thread-safety: single-threaded.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/context.h"

namespace herd::cli {

class InterruptWatch;  // cli/interrupt.h

// Every verb below, in `herd --help` order (cli/cli.cc); the shell completes from it too.
void RegisterVerbs(CLI::App& app, Context& ctx);
void RegisterSubmit(CLI::App& app, Context& ctx);
void RegisterJobs(CLI::App& app, Context& ctx);
void RegisterShow(CLI::App& app, Context& ctx);
// cancel, suspend, resume and release: one JobActionRequest each.
void RegisterJobActions(CLI::App& app, Context& ctx);
void RegisterLogs(CLI::App& app, Context& ctx);
void RegisterNodes(CLI::App& app, Context& ctx);
void RegisterWait(CLI::App& app, Context& ctx);
// herd wait's loop (also `herd submit --wait`): polls until every job has ended, printing one
// line per job, and returns herd wait's exit code (0, a FAILED job's own, 4, 5; 2/3 on errors).
// With `interrupt` (herd submit --wait), Ctrl-C asks whether to cancel the jobs still unfinished
// (InterruptWatch::Answer) and returns what that returns.
int WaitForJobs(const std::vector<model::JobId>& ids, int64_t timeout_s, Context& ctx,
                InterruptWatch* interrupt = nullptr);
void RegisterProjects(CLI::App& app, Context& ctx);
// herd admin check-config FILE | reconfigure | drain NODE | undrain NODE
void RegisterAdmin(CLI::App& app, Context& ctx);
// herd why JOB: why a job waits, its place in its project's queue.
void RegisterWhy(CLI::App& app, Context& ctx);
// herd usage: GPU-hours and waiting times per user, project or department.
void RegisterUsage(CLI::App& app, Context& ctx);
// herd web [--token] [--revoke [--user USER]]: the dashboard's address with a login token.
void RegisterWeb(CLI::App& app, Context& ctx);
// herd history: herd-ctld's time series of allocation and GPU utilization.
void RegisterHistory(CLI::App& app, Context& ctx);
// herd run [submit options] -- CMD: submits with a session, waits for it, attaches (submit.cc).
void RegisterRun(CLI::App& app, Context& ctx);
// herd attach JOB and herd exec JOB -- CMD (session.cc is the terminal side).
void RegisterAttach(CLI::App& app, Context& ctx);
void RegisterExec(CLI::App& app, Context& ctx);
void RegisterPortForward(CLI::App& app, Context& ctx);
// herd run after its submit: shows why job `id` waits until it runs, then attaches to its
// session (a terminal when `terminal`); returns the job's exit code, or herd's own on errors.
// `ports` ([LOCAL:]REMOTE, checked already) are forwarded while the session runs (herd run --port).
int RunAttached(model::JobId id, bool terminal, const std::vector<std::string>& ports,
                Context& ctx);

}  // namespace herd::cli
