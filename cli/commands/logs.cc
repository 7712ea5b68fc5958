// herd logs JOB [-w N] [-f] [--stdout | --stderr]
#include <chrono>
#include <memory>
#include <thread>

#include "cli/commands/commands.h"

namespace herd::cli {
namespace {

struct LogsOptions {
  std::string id;
  int32_t worker = 0;
  bool follow = false;
  bool stdout_only = false;
  bool stderr_only = false;
};

int RunLogs(const LogsOptions& o, Context& ctx) {
  int code = kExitOk;
  auto id = ctx.JobIdOf(o.id, &code);
  if (!id) return code;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  proto::LogsRequest request;
  request.id = *id;
  request.worker = o.worker;
  if (o.stdout_only && o.stderr_only) {
    return ctx.UsageError("logs: choose one of --stdout and --stderr (neither shows both)");
  }
  if (o.stdout_only) request.stream = "stdout";
  if (o.stderr_only) request.stream = "stderr";
  while (true) {
    auto reply = controller->Logs(request);
    if (!reply.ok()) return ctx.RequestError(reply.status());
    ctx.out() << reply->data << std::flush;
    request.offset = reply->next_offset;
    if (reply->eof) return kExitOk;
    if (reply->data.empty()) {
      // Without --follow, stop once everything written so far has been shown.
      if (!o.follow) return kExitOk;
      std::this_thread::sleep_for(std::chrono::milliseconds(ctx.env().logs_poll_ms));
    }
  }
}

}  // namespace

void RegisterLogs(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<LogsOptions>();
  CLI::App* sub = app.add_subcommand("logs", "Print the output of a job");
  sub->add_option("JOB", o->id, "job id")->required();
  sub->add_option("-w,--worker", o->worker, "worker of a gang job (default 0)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("-f,--follow", o->follow, "keep printing new output until the job ends");
  sub->add_flag("--stdout", o->stdout_only, "only what the job wrote to its stdout");
  sub->add_flag("--stderr", o->stderr_only, "only what the job wrote to its stderr");
  sub->fallthrough();
  sub->callback([o, &ctx] { ctx.exit_code = RunLogs(*o, ctx); });
}

}  // namespace herd::cli
