// The state one `herd` invocation shares between its commands: global options, the output
// streams, the process environment, and a lazily made connection to herd-ctld.
// Built by RunCli (cli/cli.h) for each invocation; tests build it with a fake Controller.
// Thread-safety: single-threaded, like the CLI.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "common/auth/auth.h"
#include "common/model/job.h"
#include "common/proto/messages.h"
#include "common/util/status.h"

namespace herd::cli {

// Exit codes of `herd`; listed in the footer of `herd --help`.
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,        // bad flag or value, unreadable config
  kExitRejected = 2,     // herd-ctld refused the request (or some of the jobs)
  kExitUnreachable = 3,  // no answer from herd-ctld
  kExitJobFailed = 4,    // `herd wait`: a job ended CANCELLED, TIMEOUT, NODE_FAIL, ...
  kExitWaitTimeout = 5,  // `herd wait --timeout` ran out
  kExitNoSpace = 6,      // herd-ctld's disk is full: new work is refused until space is freed
  kExitInterrupted = 130,  // Ctrl-C while waiting for a submitted job (cli/interrupt.h)
};

// The exit code for a failed request to herd-ctld: kUnavailable -> 3, anything else -> 2.
int ExitCodeFor(const Status& status);

// Options given before the verb (`herd --controller X jobs`).
struct GlobalOptions {
  std::string config_path;  // resolved: --config, else $HERD_CONFIG, else /etc/herd/herd.toml
  bool config_explicit = false;  // given by --config or $HERD_CONFIG: it must exist
  std::string controller;   // --controller endpoint; empty: the config's first listen endpoint
  int timeout_s = 10;       // per request
  std::ostream* diagnostics = nullptr;  // where connecting warns (a herd.toml read around an error)
};

// The requests herd sends to herd-ctld, one method per message type.
// ConnectController (cli/remote.cc) sends them over ZeroMQ; tests use a recording fake.
class Controller {
 public:
  virtual ~Controller() = default;
  virtual Result<proto::SubmitReply> Submit(const proto::SubmitRequest& request) = 0;
  // Every matching job, in id order: the real one asks herd-ctld page after page.
  virtual Result<proto::JobsReply> Jobs(const proto::JobsRequest& request) = 0;
  virtual Result<proto::JobActionReply> JobAction(const proto::JobActionRequest& request) = 0;
  virtual Result<proto::LogsReply> Logs(const proto::LogsRequest& request) = 0;
  virtual Result<proto::NodesReply> Nodes(const proto::NodesRequest& request) = 0;
  virtual Result<proto::ProjectsReply> Projects(const proto::ProjectsRequest&) {
    return Internal("this controller connection cannot list projects");
  }
  virtual Result<proto::JobActionReply> UpdateJob(const proto::UpdateJobRequest&) {
    return Internal("this controller connection cannot update jobs");
  }
  virtual Result<proto::AdminReply> Admin(const proto::AdminRequest&) {
    return Internal("this controller connection cannot run admin commands");
  }
  virtual Result<proto::WhyReply> Why(const proto::WhyRequest&) {
    return Internal("this controller connection cannot explain jobs");
  }
  virtual Result<proto::UsageReply> Usage(const proto::UsageRequest&) {
    return Internal("this controller connection cannot report usage");
  }
  virtual Result<proto::WebTokenReply> WebToken(const proto::WebTokenRequest&) {
    return Internal("this controller connection cannot mint web tokens");
  }
  virtual Result<proto::HistoryReply> History(const proto::HistoryRequest&) {
    return Internal("this controller connection cannot read history");
  }
  virtual Result<proto::SessionWhereReply> SessionWhere(const proto::SessionWhereRequest&) {
    return Internal("this controller connection cannot find sessions");
  }
  // Signs messages to a node's session endpoint as this user (herd run, attach, exec).
  virtual Result<std::unique_ptr<auth::Authenticator>> SessionAuthenticator() {
    return Internal("this controller connection cannot open sessions");
  }
};

using ControllerFactory =
    std::function<Result<std::unique_ptr<Controller>>(const GlobalOptions& options)>;

// What the CLI takes from its process; ProcessEnvironment() fills it, tests set it by hand.
struct Environment {
  std::string herd_config;  // $HERD_CONFIG
  std::string cwd;          // default --chdir, base of relative --image paths
  std::string user;         // login name, for `jobs --me`
  std::map<std::string, std::string> vars;  // the process environment, for submit's --export
  int terminal_width = 0;   // 0: stdout is not a terminal, tables are never truncated
  int wait_poll_ms = 300;   // `herd wait` polling period
  int logs_poll_ms = 500;   // `herd logs --follow` polling period
  std::function<int64_t()> now;  // seconds since the epoch
  ControllerFactory connect;     // REQUIRES: set before a command needs herd-ctld
};

// The environment of this process: $HERD_CONFIG, getcwd, the login name, the terminal width.
// Leaves `connect` empty.
Environment ProcessEnvironment();

// Jobs named on the command line, resolved to ids as the requests take them.
struct NamedJobs {
  std::vector<model::JobId> ids;      // jobs, or arrays as a whole
  std::vector<model::JobId> members;  // array members named as ID_INDEX
  std::map<model::JobId, std::string> texts;  // how each member was named ("12_3")
};

class Context {
 public:
  Context(Environment env, std::ostream& out, std::ostream& err);

  GlobalOptions& options() { return options_; }
  const Environment& env() const { return env_; }
  std::ostream& out() { return out_; }
  std::ostream& err() { return err_; }
  int64_t Now() const;

  // The connection to herd-ctld, made on first use (so --help never reads the config).
  // On failure prints "herd: ..." and sets *exit_code (1 for a config error, 3 unreachable).
  Controller* controller(int* exit_code);

  // The job `text` names ("42", "12_3"): a bad id is a usage error; an ID_INDEX is resolved
  // with herd-ctld. On failure prints why, sets *exit_code and returns nullopt.
  std::optional<model::JobId> JobIdOf(const std::string& text, int* exit_code);
  // The jobs `texts` name, as JobIdOf for each.
  std::optional<NamedJobs> JobsOf(const std::vector<std::string>& texts, int* exit_code);

  // Prints "herd: <message>" to err and returns kExitUsage.
  int UsageError(const std::string& message);
  // Prints a failed request ("herd: rejected: ...", or the unreachable message) and returns
  // ExitCodeFor(status).
  int RequestError(const Status& status);

  // Exit code set by the command that ran.
  int exit_code = kExitOk;
  // `herd submit ... -- CMD`: what followed the first "--" (CLI11 does not pass a "--" through
  // a prefix-command subcommand, so RunCli splits it off before parsing).
  bool submit_dashdash = false;
  std::vector<std::string> submit_tail;
  // What followed "submit" (up to a "--"): `herd submit SCRIPT` parses it again after the
  // script's directives, so that the command line wins over them.
  std::vector<std::string> submit_args;

 private:
  Environment env_;
  std::ostream& out_;
  std::ostream& err_;
  GlobalOptions options_;
  std::unique_ptr<Controller> controller_;
};

// "42" -> 42. Rejects anything but a positive integer: "invalid job id 'x': ...".
Result<model::JobId> ParseJobId(const std::string& text);
Result<std::vector<model::JobId>> ParseJobIds(const std::vector<std::string>& texts);

// A job named on the command line: "42" (a job, or an array as a whole when 42 is an array's
// id), or "12_3" (Slurm's ID_INDEX: the member of array 12 with index 3, alone).
struct JobRef {
  model::JobId id = 0;
  int64_t index = -1;  // >= 0: ID_INDEX
  bool member() const { return index >= 0; }
};
Result<JobRef> ParseJobRef(const std::string& text);
Result<std::vector<JobRef>> ParseJobRefs(const std::vector<std::string>& texts);
// The id of member `ref` of its array, asked of herd-ctld (NotFound when it has none); ref.id
// when `ref` is no ID_INDEX.
Result<model::JobId> ResolveJobRef(Controller& controller, const JobRef& ref);


// The endpoint herd connects to: `override` if set, else the first of `listen`, with a wildcard
// host (tcp://0.0.0.0:P, tcp://*:P) turned into tcp://127.0.0.1:P.
Result<std::string> ChooseEndpoint(const std::vector<std::string>& listen,
                                   const std::string& override);

}  // namespace herd::cli
