#include "cli/cli.h"

#include <algorithm>
#include <exception>

#include <CLI/CLI.hpp>

#include "cli/commands/commands.h"
#include "cli/commands/validators.h"

#ifndef HERD_VERSION
#define HERD_VERSION "unknown"
#endif

namespace herd::cli {
namespace {

constexpr const char* kFooter = R"(Global options go before the verb: herd --controller tcp://HOST:6817 jobs

Exit codes:
  0  success
  1  usage error: bad option or value, unreadable configuration
  2  request rejected by herd-ctld (cancel/suspend/resume: refused for some job)
  3  herd-ctld unreachable (no answer within --timeout)
  4  herd wait: a job ended without completing (CANCELLED, TIMEOUT, NODE_FAIL, ...)
  5  herd wait: its --timeout ran out
  6  herd-ctld's disk is full: new jobs are refused until space is freed
  130  herd submit --wait, herd run: interrupted (Ctrl-C) while waiting for the job
  herd wait exits with a FAILED job's own exit code when it has one.)";

}  // namespace

void RegisterVerbs(CLI::App& app, Context& ctx) {
  RegisterSubmit(app, ctx);
  RegisterRun(app, ctx);
  RegisterJobs(app, ctx);
  RegisterShow(app, ctx);
  RegisterJobActions(app, ctx);
  RegisterLogs(app, ctx);
  RegisterAttach(app, ctx);
  RegisterExec(app, ctx);
  RegisterPortForward(app, ctx);
  RegisterNodes(app, ctx);
  RegisterWait(app, ctx);
  RegisterProjects(app, ctx);
  RegisterAdmin(app, ctx);
  RegisterWhy(app, ctx);
  RegisterUsage(app, ctx);
  RegisterWeb(app, ctx);
  RegisterHistory(app, ctx);
}

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
           Environment env) {
  Context ctx(std::move(env), out, err);
  GlobalOptions& globals = ctx.options();

  CLI::App app("herd: run and watch jobs on a herd GPU cluster", "herd");
  std::string config;
  app.add_option("--config", config,
                 "configuration file (default: $HERD_CONFIG, else /etc/herd/herd.toml)");
  app.add_option("--controller", globals.controller,
                 "herd-ctld endpoint, e.g. tcp://head:6817 (default: from the configuration)");
  app.add_option("--timeout", globals.timeout_s,
                 "seconds to wait for each answer from herd-ctld (default 10)")
      ->transform(DurationValidator())
      ->type_name("SECONDS");
  app.set_version_flag("-V,--version", "herd " HERD_VERSION);
  app.footer(kFooter);
  app.require_subcommand(0, 1);

  RegisterVerbs(app, ctx);

  // The command of `herd submit|run|exec [options] -- CMD ARGS` is everything after the
  // first "--".
  std::vector<std::string> head = args;
  auto submit = std::find_if(args.begin(), args.end(), [](const std::string& a) {
    return a == "submit" || a == "run" || a == "exec";
  });
  auto dashdash = std::find(args.begin(), args.end(), "--");
  if (submit < dashdash && dashdash != args.end()) {
    ctx.submit_dashdash = true;
    ctx.submit_tail.assign(dashdash + 1, args.end());
    head.assign(args.begin(), dashdash);
  }
  if (submit < dashdash) ctx.submit_args.assign(submit + 1, dashdash);

  // Global options must be known before a verb's callback runs; CLI11 sets them first.
  app.parse_complete_callback([&] {
    if (config.empty()) config = ctx.env().herd_config;
    globals.config_explicit = !config.empty();
    globals.config_path = config.empty() ? "/etc/herd/herd.toml" : config;
  });

  try {
    std::vector<std::string> reversed(head.rbegin(), head.rend());  // CLI11 pops from the back
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    err << "herd: " << e.what() << "\n";
    err << "herd: see 'herd --help' or 'herd VERB --help'\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    err << "herd: internal error: " << e.what() << "\n";
    return kExitUsage;
  }
  if (app.get_subcommands().empty()) {
    err << app.help();
    return kExitUsage;
  }
  return ctx.exit_code;
}

}  // namespace herd::cli
