// herd attach JOB [-w N]  |  herd exec JOB [-w N] [-t|-T] -- CMD ARGS  |  the attach of herd run
// herd port-forward JOB [-w N] [LOCAL:]REMOTE...  |  the forwards of herd run --port
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include "cli/commands/commands.h"
#include "cli/format.h"
#include "cli/forward.h"
#include "cli/interrupt.h"
#include "cli/session.h"

namespace herd::cli {
namespace {

// The job, as herd-ctld lists it, or an error already printed (its exit code in *code).
std::optional<model::Job> FetchJob(model::JobId id, Controller& controller, Context& ctx,
                                   int* code) {
  proto::JobsRequest request;
  request.ids = {id};
  request.all = true;
  request.brief = true;
  auto reply = controller.Jobs(request);
  if (!reply.ok()) {
    *code = ctx.RequestError(reply.status());
    return std::nullopt;
  }
  for (const model::Job& job : reply->jobs) {
    if (job.id == id) return job;
  }
  ctx.err() << "herd: job " << id << ": not found\n";
  *code = kExitRejected;
  return std::nullopt;
}

// herd's exit code for a job that ended: its own exit code, else 4 (as herd wait).
int ExitCodeOfEnded(const model::Job& job) {
  if (job.state == model::JobState::kCompleted) return kExitOk;
  if (job.exit_code > 0 && job.exit_code < 256) return job.exit_code;
  return kExitJobFailed;
}

// Waits until job `id` has ended (its session closed without an exit code) and returns its code.
int WaitForEnd(model::JobId id, Controller& controller, Context& ctx) {
  while (true) {
    int code = kExitOk;
    auto job = FetchJob(id, controller, ctx, &code);
    if (!job) return code;
    if (model::IsTerminal(job->state)) {
      if (job->state != model::JobState::kCompleted) {
        ctx.err() << "herd: job " << id << " " << model::JobStateName(job->state)
                  << (job->reason.empty() ? "" : ": " + EscapeText(job->reason)) << "\n";
      }
      return ExitCodeOfEnded(*job);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(ctx.env().wait_poll_ms));
  }
}

// Opens a session of job `id` (its own, or a new command with exec) and relays it.
int Connect(model::JobId id, int32_t worker, bool exec, bool pty, bool raw,
            const std::vector<std::string>& argv, Context& ctx) {
  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto where = controller->SessionWhere({id, worker});
  if (!where.ok()) return ctx.RequestError(where.status());
  auto auth = controller->SessionAuthenticator();
  if (!auth.ok()) return ctx.RequestError(auth.status());
  SessionRequest request{where->endpoint, where->node, id, worker, exec, pty, argv, raw,
                         ctx.options().timeout_s * 1000};
  auto end = RunSession(request, **auth, ctx.err());
  if (!end.ok()) return ctx.RequestError(end.status());
  const std::string job = "job " + std::to_string(id);
  switch (end->how) {
    case SessionEnd::kExited:
      return end->exit_code >= 0 && end->exit_code < 256 ? end->exit_code : kExitJobFailed;
    case SessionEnd::kDetached:
      if (!exec) {
        ctx.err() << "herd: detached from " << job << "; it runs on: herd attach " << id << "\n";
      }
      return end->signal > 0 ? 128 + end->signal : kExitOk;
    case SessionEnd::kLost:
      ctx.err() << "herd: lost the session of " << job << " (" << end->message << ")"
                << (exec ? "" : "; it runs on: herd attach " + std::to_string(id)) << "\n";
      return kExitUnreachable;
    case SessionEnd::kClosed:
      break;
  }
  if (exec) {
    ctx.err() << "herd: the command ended without an exit code (" << end->message << ")\n";
    return kExitJobFailed;
  }
  return WaitForEnd(id, *controller, ctx);
}

// herd attach: the job's own session, raw when both it and this side have a terminal.
int RunAttach(const std::string& id_text, int32_t worker, Context& ctx) {
  int code = kExitOk;
  auto id = ctx.JobIdOf(id_text, &code);
  if (!id) return code;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto job = FetchJob(*id, *controller, ctx, &code);
  if (!job) return code;
  if (job->spec.session.empty()) {
    ctx.err() << "herd: job " << *id << " has no session (start one with herd run or submit "
              << "--pty); herd exec " << *id << " -- CMD runs a command in it\n";
    return kExitRejected;
  }
  const bool raw = job->spec.session == "pty" && isatty(0);
  return Connect(*id, worker, /*exec=*/false, job->spec.session == "pty", raw, {}, ctx);
}

struct ExecOptions {
  std::string id;
  int32_t worker = 0;
  bool tty = false, no_tty = false;
};

int RunExec(const ExecOptions& o, CLI::App& sub, Context& ctx) {
  if (auto ref = ParseJobRef(o.id); !ref.ok()) return ctx.UsageError(ref.status().message());
  std::vector<std::string> command = sub.remaining();
  if (ctx.submit_dashdash) command.insert(command.end(), ctx.submit_tail.begin(), ctx.submit_tail.end());
  if (command.empty()) return ctx.UsageError("missing command: herd exec JOB -- COMMAND [ARGS...]");
  if (o.tty && o.no_tty) return ctx.UsageError("choose one of -t and -T");
  const bool pty = o.tty || (!o.no_tty && isatty(0) && isatty(1));
  int code = kExitOk;
  auto id = ctx.JobIdOf(o.id, &code);
  if (!id) return code;
  return Connect(*id, o.worker, /*exec=*/true, pty, pty && isatty(0), command, ctx);
}

// Listens for each of `ports` ([LOCAL:]REMOTE) and says where; nullptr with the error printed
// (its exit code in *code).
std::unique_ptr<Forwarder> StartForwarding(model::JobId id, int32_t worker,
                                           const std::vector<std::string>& ports,
                                           int max_connections, Controller& controller,
                                           Context& ctx, int* code) {
  std::vector<PortForward> forwards;
  for (const std::string& text : ports) {
    auto pf = ParsePortForward(text);
    if (!pf.ok()) {
      *code = ctx.UsageError(pf.status().message());
      return nullptr;
    }
    forwards.push_back(*pf);
  }
  auto where = controller.SessionWhere({id, worker});
  if (!where.ok()) {
    *code = ctx.RequestError(where.status());
    return nullptr;
  }
  auto auth = controller.SessionAuthenticator();
  if (!auth.ok()) {
    *code = ctx.RequestError(auth.status());
    return nullptr;
  }
  ForwardTarget target{where->endpoint, where->node, id, worker, ctx.options().timeout_s * 1000};
  auto forwarder = Forwarder::Listen(std::move(target), std::move(forwards), std::move(*auth),
                                     max_connections, ctx.err());
  if (!forwarder.ok()) {
    *code = ctx.RequestError(forwarder.status());
    return nullptr;
  }
  for (const PortForward& pf : (*forwarder)->forwards()) {
    ctx.err() << "herd: http://127.0.0.1:" << pf.local << "/ forwards to port " << pf.remote
              << " of job " << id << "\n"
              << std::flush;
  }
  return std::move(*forwarder);
}

// Runs a Forwarder on a thread of its own until it goes (herd run --port: the session has the
// main thread). Signals stay with the main thread, which reads them.
class ForwardThread {
 public:
  explicit ForwardThread(std::unique_ptr<Forwarder> forwarder)
      : forwarder_(std::move(forwarder)), wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    thread_ = std::thread([this] {
      while (!stop_) forwarder_->Step(1000, wake_);
    });
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  ~ForwardThread() {
    stop_ = true;
    const uint64_t one = 1;
    (void)!write(wake_, &one, sizeof one);
    thread_.join();
    close(wake_);
  }
  ForwardThread(const ForwardThread&) = delete;
  ForwardThread& operator=(const ForwardThread&) = delete;

 private:
  std::unique_ptr<Forwarder> forwarder_;
  int wake_;
  std::atomic<bool> stop_ = false;
  std::thread thread_;
};

struct PortForwardOptions {
  std::string id;
  int32_t worker = 0;
  std::vector<std::string> ports;
  int max_connections = Forwarder::kDefaultMaxConnections;
};

// herd port-forward: relays until the job ends (or herd is stopped).
int RunPortForward(const PortForwardOptions& o, Context& ctx) {
  if (o.max_connections < 1 || o.max_connections > 1024) {
    return ctx.UsageError("--max-connections " + std::to_string(o.max_connections) +
                          ": expected 1 to 1024");
  }
  for (const std::string& text : o.ports) {
    if (auto pf = ParsePortForward(text); !pf.ok()) return ctx.UsageError(pf.status().message());
  }
  int code = kExitOk;
  auto id = ctx.JobIdOf(o.id, &code);
  if (!id) return code;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  auto job = FetchJob(*id, *controller, ctx, &code);
  if (!job) return code;
  if (job->state != model::JobState::kRunning) {
    ctx.err() << "herd: job " << *id << " is " << model::JobStateName(job->state)
              << ": its ports can be forwarded while it runs\n";
    return kExitRejected;
  }
  auto forwarder =
      StartForwarding(*id, o.worker, o.ports, o.max_connections, *controller, ctx, &code);
  if (!forwarder) return code;
  auto checked = std::chrono::steady_clock::now();
  while (true) {
    forwarder->Step(500);
    if (std::chrono::steady_clock::now() - checked < std::chrono::seconds(2)) continue;
    checked = std::chrono::steady_clock::now();
    job = FetchJob(*id, *controller, ctx, &code);
    if (!job) return code;
    if (job->state == model::JobState::kRunning || job->state == model::JobState::kSuspended) {
      continue;
    }
    ctx.err() << "herd: job " << *id << " is " << model::JobStateName(job->state)
              << ": stopped forwarding its ports\n";
    return model::IsTerminal(job->state) ? kExitOk : kExitJobFailed;
  }
}

}  // namespace

int RunAttached(model::JobId id, bool terminal, const std::vector<std::string>& ports,
                Context& ctx) {
  int code = kExitOk;
  Controller* controller = ctx.controller(&code);
  if (!controller) return code;
  // One line that changes on a terminal, a line per change otherwise.
  const bool status_line = isatty(2);
  std::string shown;
  // Ctrl-C while the job waits to start asks whether to cancel it; once it runs, the session
  // takes every key (raw) or detaches on SIGINT (pipes).
  std::optional<InterruptWatch> interrupt(std::in_place);
  auto show = [&](const std::string& line) {
    if (line == shown) return;
    if (status_line) {
      ctx.err() << "\r\033[K" << line << std::flush;
    } else if (!line.empty()) {
      ctx.err() << line << "\n" << std::flush;
    }
    shown = line;
  };
  while (true) {
    auto job = FetchJob(id, *controller, ctx, &code);
    if (!job) {
      show("");
      return code;
    }
    if (model::IsTerminal(job->state)) {
      show("");
      interrupt.reset();
      // It ended before herd attached: what it printed is in its log.
      proto::LogsRequest logs;
      logs.id = id;
      for (int i = 0; i < 64; ++i) {
        auto reply = controller->Logs(logs);
        if (!reply.ok()) break;
        ctx.out() << reply->data << std::flush;
        logs.offset = reply->next_offset;
        if (reply->eof || reply->data.empty()) break;
      }
      return WaitForEnd(id, *controller, ctx);
    }
    if (job->state == model::JobState::kRunning) break;
    std::string line = "herd: job " + std::to_string(id) + " " +
                       model::JobStateName(job->state) +
                       (job->reason.empty() ? "" : ": " + EscapeText(job->reason));
    show(line);
    if (interrupt->Sleep(ctx.env().wait_poll_ms)) {
      show("");
      return interrupt->Answer({id}, ctx);
    }
  }
  show("");
  interrupt.reset();
  std::optional<ForwardThread> forwarding;
  if (!ports.empty()) {
    auto forwarder =
        StartForwarding(id, 0, ports, Forwarder::kDefaultMaxConnections, *controller, ctx, &code);
    if (!forwarder) return code;
    forwarding.emplace(std::move(forwarder));
  }
  return Connect(id, 0, /*exec=*/false, terminal, terminal, {}, ctx);
}

void RegisterAttach(CLI::App& app, Context& ctx) {
  auto id = std::make_shared<std::string>();
  auto worker = std::make_shared<int32_t>(0);
  CLI::App* sub = app.add_subcommand(
      "attach", "Attach this terminal to a job's session again (~. detaches)");
  sub->add_option("JOB", *id, "job id")->required();
  sub->add_option("-w,--worker", *worker, "worker of a gang job (default 0)")
      ->check(CLI::NonNegativeNumber);
  sub->callback([id, worker, &ctx] { ctx.exit_code = RunAttach(*id, *worker, ctx); });
}

void RegisterExec(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<ExecOptions>();
  CLI::App* sub = app.add_subcommand(
      "exec", "Run a command inside a running job, as its user: herd exec JOB -- CMD ARGS");
  sub->add_option("JOB", o->id, "job id")->required();
  sub->add_option("-w,--worker", o->worker, "worker of a gang job (default 0)")
      ->check(CLI::NonNegativeNumber);
  sub->add_flag("-t,--tty", o->tty, "run it under a terminal (default when herd has one)");
  sub->add_flag("-T,--no-tty", o->no_tty, "run it without a terminal");
  sub->prefix_command();
  sub->callback([o, sub, &ctx] { ctx.exit_code = RunExec(*o, *sub, ctx); });
}

void RegisterPortForward(CLI::App& app, Context& ctx) {
  auto o = std::make_shared<PortForwardOptions>();
  CLI::App* sub = app.add_subcommand(
      "port-forward",
      "Forward a local port to a port of a running job: herd port-forward JOB [LOCAL:]REMOTE");
  sub->add_option("JOB", o->id, "job id")->required();
  sub->add_option("PORTS", o->ports,
                  "[LOCAL:]REMOTE: 127.0.0.1:LOCAL here to 127.0.0.1:REMOTE in the job "
                  "(LOCAL 0 or left out: a free port)")
      ->required();
  sub->add_option("-w,--worker", o->worker, "worker of a gang job (default 0)")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--max-connections", o->max_connections,
                  "connections relayed at once (default " +
                      std::to_string(Forwarder::kDefaultMaxConnections) + ", at most 1024)")
      ->type_name("N");
  sub->callback([o, &ctx] { ctx.exit_code = RunPortForward(*o, ctx); });
}

}  // namespace herd::cli
