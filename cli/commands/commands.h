// One Register function per verb: each adds its subcommand to the `herd` app, with a callback
// that runs the verb and stores its exit code in Context::exit_code.
// Called by RunCli (cli/cli.cc) once per invocation.
// Thread-safety: single-threaded.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/context.h"

namespace herd::cli {

void RegisterSubmit(CLI::App& app, Context& ctx);
void RegisterJobs(CLI::App& app, Context& ctx);
void RegisterShow(CLI::App& app, Context& ctx);
// cancel, suspend and resume: one JobActionRequest each.
void RegisterJobActions(CLI::App& app, Context& ctx);
void RegisterLogs(CLI::App& app, Context& ctx);
void RegisterNodes(CLI::App& app, Context& ctx);
void RegisterWait(CLI::App& app, Context& ctx);
void RegisterProjects(CLI::App& app, Context& ctx);
// herd admin check-config FILE | reconfigure | drain NODE | undrain NODE
void RegisterAdmin(CLI::App& app, Context& ctx);

}  // namespace herd::cli
