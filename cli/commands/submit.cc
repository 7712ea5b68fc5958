// herd submit [options] -- COMMAND [ARGS...]
#include <cctype>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "cli/commands/commands.h"
#include "cli/commands/validators.h"
#include "cli/format.h"

namespace herd::cli {
namespace {

struct SubmitOptions {
  model::JobSpec spec;
  std::vector<std::string> env;
  std::string job_class;
  bool interactive = false;
  bool train = false;
  bool quiet = false;
  bool json = false;
};

// KEY=VALUE with a shell-style name and a UTF-8 value.
CLI::Validator EnvValidator() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        const auto eq = v.find('=');
        const std::string key = v.substr(0, eq);
        const bool key_ok = !key.empty() && !std::isdigit(static_cast<unsigned char>(key[0])) &&
                            key.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
                                                  "TUVWXYZ0123456789_") == std::string::npos;
        if (eq == std::string::npos || !key_ok) {
          return "invalid '" + v + "': use KEY=VALUE, KEY made of letters, digits and _";
        }
        if (!IsValidUtf8(v.substr(eq + 1))) {
          return "the value of " + key + " is not valid UTF-8";
        }
        return {};
      },
      "KEY=VAL");
}

std::string Absolute(const std::string& path, const std::string& cwd) {
  std::filesystem::path p(path);
  if (p.is_relative() && !cwd.empty()) p = std::filesystem::path(cwd) / p;
  return p.lexically_normal().string();
}

int RunSubmit(SubmitOptions& o, CLI::App& sub, Context& ctx) {
  model::JobSpec& spec = o.spec;
  // With prefix_command, the first word CLI11 does not know starts the command.
  std::vector<std::string> command = sub.remaining();
  if (!command.empty() && command.front().size() > 1 && command.front()[0] == '-') {
    return ctx.UsageError("submit: unknown option '" + command.front() +
                          "' (global options such as --config go before 'submit'; put the "
                          "command after --)");
  }
  if (ctx.submit_dashdash) {
    if (!command.empty()) command.push_back("--");  // the "--" belonged to the command
    command.insert(command.end(), ctx.submit_tail.begin(), ctx.submit_tail.end());
  }
  if (command.empty()) {
    return ctx.UsageError("missing command: herd submit [options] -- COMMAND [ARGS...]");
  }
  spec.argv = std::move(command);
  // `herd submit train.sh`: a script file that is not executable runs with /bin/sh.
  if (const std::string script = Absolute(spec.argv[0], ctx.env().cwd);
      spec.argv[0].find('/') != std::string::npos || access(spec.argv[0].c_str(), F_OK) == 0) {
    struct stat st;
    if (stat(script.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(script.c_str(), X_OK) != 0) {
      spec.argv[0] = script;
      spec.argv.insert(spec.argv.begin(), "/bin/sh");
    }
  }

  const int class_flags = !o.job_class.empty() + o.interactive + o.train;
  if (class_flags > 1) return ctx.UsageError("choose one of --class, --interactive, --train");
  if (o.interactive) spec.job_class = "interactive";
  if (o.train) spec.job_class = "train";
  if (!o.job_class.empty()) spec.job_class = o.job_class;
  if (!IsValidUtf8(spec.name)) return ctx.UsageError("--name: not valid UTF-8");
  for (const auto& kv : o.env) {
    const auto eq = kv.find('=');
    spec.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  spec.cwd = Absolute(spec.cwd.empty() ? ctx.env().cwd : spec.cwd, ctx.env().cwd);
  if (!spec.image.empty()) spec.image = Absolute(spec.image, ctx.env().cwd);
  for (auto& v : spec.volumes) {
    const auto colon = v.find(':');
    v = Absolute(v.substr(0, colon), ctx.env().cwd) +
        (colon == std::string::npos ? "" : v.substr(colon));
  }

  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto reply = controller->Submit(proto::SubmitRequest{spec});
  if (!reply.ok()) return ctx.RequestError(reply.status());
  if (o.json) {
    ctx.out() << DumpJson({{"id", reply->id}}) << "\n";
  } else if (o.quiet) {
    ctx.out() << reply->id << "\n";
  } else {
    ctx.out() << "submitted job " << reply->id << "\n";
  }
  return kExitOk;
}

}  // namespace

void RegisterSubmit(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<SubmitOptions>();
  model::JobSpec& s = o->spec;
  CLI::App* sub = app.add_subcommand("submit", "Submit a job: herd submit [options] -- CMD ARGS");
  sub->add_option("-g,--gpus", s.gpu_milli, "GPUs per worker: a whole number or a share (0.5)")
      ->transform(GpuValidator())
      ->type_name("GPUS");
  sub->add_option("--gpu-memory", s.gpu_memory_mib, "GPU memory per worker (fractional jobs)")
      ->transform(SizeValidator(false))
      ->type_name("SIZE");
  sub->add_option("-c,--cpus", s.cpus, "cores per worker (default 1)")
      ->transform(CountValidator("CPU count"))
      ->type_name("N");
  sub->add_option("-m,--mem", s.memory_mib, "memory per worker, e.g. 16G (default 1G)")
      ->transform(SizeValidator(true))
      ->type_name("SIZE");
  sub->add_option("-N,--workers", s.workers, "workers started together (gang; default 1)")
      ->transform(CountValidator("worker count"))
      ->type_name("N");
  sub->add_option("-t,--time", s.time_limit_s, "time limit: 90m, 2h, 1-00:00:00")
      ->transform(DurationValidator())
      ->type_name("DURATION");
  sub->add_option("-p,--project", s.project, "project charged (default: chosen by herd-ctld)");
  sub->add_option("--class", o->job_class, "priority class: interactive, train, inference, ...");
  sub->add_flag("--interactive", o->interactive, "same as --class interactive");
  sub->add_flag("--train", o->train, "same as --class train (the default)");
  sub->add_option("-n,-J,--name", s.name, "job name");
  sub->add_option("-i,--image", s.image, "rootfs directory or tarball: run in a container");
  sub->add_option("-v,--volume", s.volumes,
                  "bind HOST[:CONTAINER] into the container (paths the admin allows)");
  sub->add_flag("--spread", s.spread, "place away from other jobs instead of packing");
  sub->add_option("-e,--env", o->env, "environment variable KEY=VAL (repeatable)")
      ->allow_extra_args(false)
      ->transform(EnvValidator());
  sub->add_option("--chdir", s.cwd, "working directory (default: the current one)");
  sub->add_flag("-q,--quiet", o->quiet, "print only the job id");
  sub->add_flag("--json", o->json, "print {\"id\": N}");
  sub->prefix_command();
  sub->callback([o, sub, &ctx] { ctx.exit_code = RunSubmit(*o, *sub, ctx); });
}

}  // namespace herd::cli
