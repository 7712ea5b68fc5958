// Interactive sessions end to end: `herd run`, `herd attach` and `herd exec` driven through a
// real pseudo-terminal (forkpty) against a local cluster, as a user at a terminal would.
// Every wait is for an output pattern (or a state) with a deadline.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <zmq.hpp>

#include "common/auth/auth.h"
#include "common/auth/connection_key.h"
#include "common/net/net.h"
#include "common/proto/codec.h"
#include "common/proto/stream.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/support/eventually.h"
#include "tests/support/pty_process.h"

namespace herd::testing {
namespace {

using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kNobody = 65534;

// The default cluster, whose one project is guaranteed GPUs: interactive jobs run only within
// their project's deserved quota.
class SessionTest : public SharedClusterTest<SessionTest> {
 public:
  static LocalCluster::Options ClusterOptions() {
    LocalCluster::Options options;
    options.extra_toml = "[projects.default]\ndeserved = { gpu = 8 }\nmembers = [\"*\"]\n";
    return options;
  }

 protected:
  // The shell line that runs `herd ARGS` against the cluster, with `env` (VAR=value ...) first.
  std::string HerdLine(const std::string& args, const std::string& env = "") {
    return "exec env " + env + " " + HerdEnv() + "herd " + args;
  }
  std::string HerdEnv() {
    const std::string config = c().dir() + "/herd.toml";
    return "HERD_CONFIG=" + config + " PATH=" + BinDir() + ":/usr/bin:/bin ";
  }
  // `herd jobs` lists job `id` with `text` in its line, within the deadline.
  bool JobsLineHas(long id, const std::string& text) {
    return Eventually(std::chrono::seconds(30), [&] {
      CommandResult r = c().Herd("jobs");
      std::regex line("(^|\\n)" + std::to_string(id) + " [^\\n]*" + text);
      return std::regex_search(r.out, line);
    });
  }
  // The node job `id` runs on and that node's session endpoint, from its log ("sessions at
  // tcp://...").
  void SessionEndpoint(long id, std::string* node, std::string* endpoint) {
    auto show = c().Show(id);
    ASSERT_TRUE(show.ok());
    *node = (*show)["nodes"][0].get<std::string>();
    std::smatch m;
    const std::string log = ReadText(c().dir() + "/" + *node + ".log");
    ASSERT_TRUE(std::regex_search(log, m, std::regex("sessions at (tcp://[0-9.]+:[0-9]+)"))) << log;
    *endpoint = m[1];
  }
  // A running job of nobody with a session (--pty): its id, node and the node's endpoint.
  void StartNobodysSessionJob(long* id, std::string* node, std::string* endpoint) {
    CommandResult sub = c().HerdAs(kNobody, kNobody, "submit -q --pty -- sleep 300");
    ASSERT_EQ(sub.exit_code, 0) << sub.err;
    *id = std::stol(sub.out);
    ASSERT_TRUE(c().WaitForState(*id, "RUNNING")) << c().log_tail();
    ASSERT_NO_FATAL_FAILURE(SessionEndpoint(*id, node, endpoint));
  }
};

// herd run gives a shell on a GPU: a prompt, CUDA_VISIBLE_DEVICES, ^C to the foreground job,
// the window's size; the session outlives its terminal (kill -9 of herd) and herd attach gets
// it back with its recent output; ~. detaches; the shell's exit code becomes herd's.
TEST_F(SessionTest, ShellOnAGpuSurvivesItsTerminal) {
  PtyProcess run(HerdLine("run -g 1 -- bash --norc --noprofile", "PS1='herd-shell$ '"));
  ASSERT_TRUE(run.started());
  ASSERT_TRUE(run.Expect("herd-shell\\$ ", seconds(60))) << run.seen() << c().log_tail();

  run.Send("echo CVD=[$CUDA_VISIBLE_DEVICES] JOB=[$HERD_JOB_ID] TTY=[$(tty)]\r");
  ASSERT_TRUE(run.Expect("CVD=\\[[0-9]+\\] JOB=\\[[0-9]+\\] TTY=\\[/dev/pts/[0-9]+\\]"))
      << run.seen();
  const std::string line = run.last_match();
  const long id = std::stol(line.substr(line.find("JOB=[") + 5));
  ASSERT_TRUE(run.Expect("herd-shell\\$ "));

  // ^C is a byte through the raw terminal; the job's terminal turns it into SIGINT for its
  // foreground process group. READY is printed by the very process that then becomes sleep.
  // (bash drops the rest of a line whose command ^C killed: $? is asked on the next line.)
  run.Send("sh -c 'echo READY; exec sleep 100'\r");
  ASSERT_TRUE(run.Expect("\nREADY")) << run.seen();
  run.Send("\x03");
  ASSERT_TRUE(run.Expect("herd-shell\\$ ", seconds(10))) << run.seen();
  run.Send("echo RC=$?\r");
  ASSERT_TRUE(run.Expect("RC=130")) << run.seen();

  // The window grows: herd passes its new size on, and the job's terminal has it. (Typed keys
  // may overtake the resize, so the question is asked again until it is answered.)
  run.Resize(50, 132);
  bool resized = false;
  for (int i = 0; i < 20 && !resized; ++i) {
    run.Send("stty size\r");
    ASSERT_TRUE(run.Expect("\n[0-9]+ [0-9]+\r")) << run.seen();
    resized = run.last_match().find("50 132") != std::string::npos;
  }
  EXPECT_TRUE(resized);

  JobsLineHas(id, "session attached");
  run.Send("echo MARK-$((6*7))-BEFORE\r");
  ASSERT_TRUE(run.Expect("MARK-42-BEFORE"));
  run.KillHard();

  // The job runs on; herd attach draws its recent output again and takes the keyboard.
  PtyProcess attach(HerdLine("attach " + std::to_string(id)));
  ASSERT_TRUE(attach.Expect("MARK-42-BEFORE", seconds(30))) << attach.seen() << c().log_tail();
  attach.Send("echo BACK-$((1+1))\r");
  ASSERT_TRUE(attach.Expect("BACK-2")) << attach.seen();
  EXPECT_TRUE(JobsLineHas(id, "session attached"));

  // ~. after a newline detaches on purpose; the job is untouched.
  attach.Send("\r~.");
  ASSERT_TRUE(attach.Expect("detached from job " + std::to_string(id))) << attach.seen();
  EXPECT_EQ(attach.Wait(), 0);
  EXPECT_TRUE(JobsLineHas(id, "session detached"));

  PtyProcess again(HerdLine("attach " + std::to_string(id)));
  ASSERT_TRUE(again.Expect("BACK-2", seconds(30))) << again.seen();
  again.Send("exit 3\r");
  EXPECT_EQ(again.Wait(), 3) << again.seen();
  EXPECT_EQ(c().WaitForEnd(id), "FAILED");
}

// Without a terminal herd run streams stdin to the job and its stdout and stderr back, apart,
// and still exits with the job's code.
TEST_F(SessionTest, RunWithoutATerminalStreams) {
  const std::string dir = c().dir() + "/stream";
  RunShell("mkdir -p " + dir + " && seq 1 20000 > " + dir + "/in");
  CommandResult r = RunShell(
      "cd " + dir + " && " + HerdEnv() +
      "herd run -- sh -c 'wc -l; echo to-stderr >&2; exit 7' < in > out 2> err; echo $? > rc");
  EXPECT_EQ(ReadText(dir + "/rc"), "7\n") << ReadText(dir + "/err") << c().log_tail();
  EXPECT_EQ(ReadText(dir + "/out"), "20000\n");
  EXPECT_NE(ReadText(dir + "/err").find("to-stderr"), std::string::npos);
}

// herd exec runs a command inside a running job, as the job's user, with its GPUs; herd exec
// to a job without a session works too.
TEST_F(SessionTest, ExecRunsAsTheJobsUserWithItsGpus) {
  // Owned by `daemon` (uid 1), so that running as the job's user is not running as root.
  CommandResult sub = c().HerdAs(1, 1, "submit -q -g 2 -- sh -c 'echo CVD=$CUDA_VISIBLE_DEVICES; sleep 300'");
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const long id = std::stol(sub.out);
  ASSERT_TRUE(c().WaitForState(id, "RUNNING"));
  CommandResult exec = c().HerdAs(1, 1, "exec " + std::to_string(id) +
                                            " -- sh -c 'echo uid=$(id -u) CVD=$CUDA_VISIBLE_DEVICES; exit 5'");
  EXPECT_EQ(exec.exit_code, 5) << exec.err;
  EXPECT_NE(exec.out.find("uid=1 "), std::string::npos) << exec.out;
  CommandResult logs = c().Herd("logs " + std::to_string(id));
  const size_t at = logs.out.find("CVD=");
  ASSERT_NE(at, std::string::npos) << logs.out;
  const std::string cvd = logs.out.substr(at, logs.out.find('\n', at) - at);
  EXPECT_NE(exec.out.find(cvd + "\n"), std::string::npos) << exec.out << " vs " << cvd;
  // Root (an admin) may exec too; it still runs as the job's user.
  CommandResult as_root = c().Herd("exec " + std::to_string(id) + " -- id -u");
  EXPECT_EQ(as_root.out, "1\n") << as_root.err;
  c().Herd("cancel " + std::to_string(id));
}

// herd exec into a container job enters the container: its file system (a file the job wrote
// there), its pid namespace (the job's command is pid 1).
TEST_F(SessionTest, ExecEntersTheJobsContainer) {
  if (RunShell("command -v runc").exit_code != 0) GTEST_SKIP() << "runc is not installed";
  std::string why;
  const std::string rootfs = MakeRootfs(c().dir(), &why);
  if (rootfs.empty()) GTEST_SKIP() << why;
  auto id = c().Submit("--image " + rootfs +
                       " -- sh -c 'echo inside > /written-by-the-job; echo started; sleep 300'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(c().WaitForState(*id, "RUNNING")) << c().log_tail();
  ASSERT_TRUE(Eventually(std::chrono::seconds(10), [&] {
    return c().Herd("logs " + std::to_string(*id)).out.find("started") != std::string::npos;
  }));
  CommandResult exec = c().Herd("exec " + std::to_string(*id) +
                                " -- sh -c 'cat /written-by-the-job; cat /proc/1/cmdline'");
  EXPECT_EQ(exec.exit_code, 0) << exec.err;
  EXPECT_NE(exec.out.find("inside\n"), std::string::npos) << exec.out << exec.err;
  EXPECT_NE(exec.out.find("sleep"), std::string::npos) << exec.out;
  EXPECT_EQ(ReadText("/written-by-the-job"), "");
  c().Herd("cancel " + std::to_string(*id));
}

// A job's user owns its container's files, /etc/nsswitch.conf and the libraries it names included:
// herd exec must take the user's name and groups from the host before it enters the container,
// or glibc loads the user's module into root's process (a root shell for the user).
TEST_F(SessionTest, ExecNeverLoadsTheImagesNameServiceAsRoot) {
  std::string why;
  ASSERT_EQ(RunShell("mkdir -p " + c().dir() + "/nss").exit_code, 0);
  const std::string rootfs = MakeRootfs(c().dir() + "/nss", &why);
  if (rootfs.empty()) GTEST_SKIP() << why;
  CommandResult setup = RunShell(
      "set -e; r=" + rootfs + "; mkdir -p $r/etc $r/lib/x86_64-linux-gnu $r/usr/lib; "
      "printf 'passwd: herdtest\\ngroup: herdtest\\n' > $r/etc/nsswitch.conf; "
      "for d in lib lib/x86_64-linux-gnu usr/lib; do cp " HERD_NSS_MARKER " $r/$d/; done; "
      "chmod -R a+rX $r");
  ASSERT_EQ(setup.exit_code, 0) << setup.err;
  // The job of `daemon` (uid 1) runs in a container from that root file system.
  CommandResult sub = c().HerdAs(1, 1, "submit -q --image " + rootfs +
                                           " -- sh -c 'echo started; sleep 300'");
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const long id = std::stol(sub.out);
  ASSERT_TRUE(c().WaitForState(id, "RUNNING")) << c().log_tail();
  ASSERT_TRUE(Eventually(std::chrono::seconds(10), [&] {
    return c().Herd("logs " + std::to_string(id)).out.find("started") != std::string::npos;
  }));
  CommandResult exec = c().HerdAs(1, 1, "exec " + std::to_string(id) + " -- id -u");
  EXPECT_EQ(exec.exit_code, 0) << exec.err;
  EXPECT_EQ(exec.out, "1\n") << exec.err;
  // The module marks the container's own root file system (a copy of the image's).
  CommandResult look = c().HerdAs(
      1, 1, "exec " + std::to_string(id) + " -- sh -c 'ls /nss-loaded-as-root 2>/dev/null || echo clean'");
  EXPECT_EQ(look.out, "clean\n") << "herd exec loaded the image's name-service module as root: "
                                  << look.out << look.err;
  c().Herd("cancel " + std::to_string(id));
}

// herd exec enters a container only through its init as long as that process is the job's: if
// the number in the job's pid file named another process (one that took the number after the
// job's init ended), the exec is refused instead of entering that process's namespaces. Here
// another user's process, in namespaces of its own, stands in for the recycled number.
TEST_F(SessionTest, ExecNeverEntersAProcessThatIsNotTheJobs) {
  if (RunShell("command -v runc").exit_code != 0) GTEST_SKIP() << "runc is not installed";
  if (RunShell("command -v unshare").exit_code != 0) GTEST_SKIP() << "unshare is not installed";
  std::string why;
  ASSERT_EQ(RunShell("mkdir -p " + c().dir() + "/recycled").exit_code, 0);
  const std::string rootfs = MakeRootfs(c().dir() + "/recycled", &why);
  if (rootfs.empty()) GTEST_SKIP() << why;
  CommandResult sub = c().HerdAs(kNobody, kNobody, "submit -q --image " + rootfs +
                                                       " -- sh -c 'echo started; sleep 300'");
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const long id = std::stol(sub.out);
  ASSERT_TRUE(c().WaitForState(id, "RUNNING")) << c().log_tail();
  ASSERT_TRUE(Eventually(std::chrono::seconds(10), [&] {
    return c().Herd("logs " + std::to_string(id)).out.find("started") != std::string::npos;
  }));
  // The stranger: a process in a uts namespace of its own, named "stranger".
  const std::string fifo = c().dir() + "/recycled/stranger";
  CommandResult stranger = RunShell(
      "mkfifo " + fifo + " && { unshare --uts --fork sh -c 'hostname stranger; echo $$ > " + fifo +
      "; exec sleep 300' >/dev/null 2>&1 & } && read p < " + fifo + " && echo $p");
  ASSERT_EQ(stranger.exit_code, 0) << stranger.err;
  const std::string pid = stranger.out.substr(0, stranger.out.find('\n'));
  CommandResult pidfile = RunShell("ls " + c().dir() + "/nodes/*/jobs/" + std::to_string(id) + ".*/pid");
  ASSERT_EQ(pidfile.exit_code, 0) << pidfile.err;
  const std::string path = pidfile.out.substr(0, pidfile.out.find('\n'));
  const std::string job_pid = ReadText(path);
  ASSERT_EQ(RunShell("echo " + pid + " > " + path).exit_code, 0);
  CommandResult exec = c().HerdAs(kNobody, kNobody, "exec " + std::to_string(id) + " -- hostname");
  EXPECT_EQ(exec.out.find("stranger"), std::string::npos) << "herd exec entered another process's namespaces";
  EXPECT_NE(exec.err.find("the job's container has ended"), std::string::npos) << exec.out << exec.err;
  RunShell("kill " + pid);
  ASSERT_EQ(RunShell("printf %s '" + job_pid + "' > " + path).exit_code, 0);
  c().Herd("cancel " + std::to_string(id));
}

// Runs `probe` in a child process that became `uid` (groups, gid, uid) and returns what it
// returned, or why the child could not become that user.
std::string AsUser(uint32_t uid, const std::function<std::string()>& probe) {
  int out[2];
  if (pipe(out) != 0) return "pipe failed";
  const pid_t child = fork();
  if (child == 0) {
    close(out[0]);
    std::string result = "cannot become uid " + std::to_string(uid);
    if (setgroups(0, nullptr) == 0 && setgid(uid) == 0 && setuid(uid) == 0) result = probe();
    (void)!write(out[1], result.data(), result.size());
    _exit(0);
  }
  close(out[1]);
  std::string result;
  char buf[512];
  for (ssize_t n; (n = read(out[0], buf, sizeof buf)) > 0;) result.append(buf, n);
  close(out[0]);
  waitpid(child, nullptr, 0);
  return result;
}

// Sends SessionOpen for job `id` on `node` straight to herd-noded at `endpoint` (not asking
// herd-ctld) with a MUNGE credential of `uid`, from a child process that became that user;
// returns the reply's error message, or "opened".
std::string OpenAs(uint32_t uid, const std::string& munge_socket, const std::string& endpoint,
                   const std::string& node, long id, bool exec, int port = 0) {
  return AsUser(uid, [&]() -> std::string {
    auto auth = auth::MakeAuthenticator("munge", munge_socket);
    auto dealer = net::Dealer::Connect(endpoint, "");
    if (!auth.ok() || !dealer.ok()) return "cannot connect";
    proto::Envelope e = proto::MakeEnvelope(proto::SessionOpen{id, 0, exec, node, port, ""}, 1);
    auto cred = (*auth)->Credential(auth::MessageBinding(e.type, e.id, e.body));
    if (cred.ok()) e.cred = *cred;
    (void)(*dealer)->Send(e);
    auto reply = (*dealer)->Receive(10000);
    if (!reply) return "no answer";
    Status s = net::ReplyStatus(*reply);
    return s.ok() ? "opened" : s.message();
  });
}

// As `uid`: opens an exec session in job `id` with MUNGE and a connection key, runs `id -u` with
// a message signed by that key, then sends the same keyed message again on another connection
// and on its own. Says what happened: "ran: OUTPUT; elsewhere: ERROR; again: ERROR".
std::string KeyedAs(uint32_t uid, const std::string& munge_socket, const std::string& endpoint,
                    const std::string& node, long id) {
  return AsUser(uid, [&]() -> std::string {
    auto auth = auth::MakeAuthenticator("munge", munge_socket);
    auto first = net::Dealer::Connect(endpoint, ""), second = net::Dealer::Connect(endpoint, "");
    if (!auth.ok() || !first.ok() || !second.ok()) return "cannot connect";
    auth::ConnectionKeyClient key;
    proto::Envelope open = proto::MakeEnvelope(
        proto::SessionOpen{id, 0, true, node, 0, key.public_key()}, 1);
    auto cred = (*auth)->Credential(auth::MessageBinding(open.type, open.id, open.body));
    if (!cred.ok()) return "no credential: " + cred.status().message();
    open.cred = *cred;
    (void)(*first)->Send(open);
    auto reply = (*first)->Receive(10000);
    if (!reply) return "no answer to the open";
    auto opened = proto::BodyOf<proto::SessionOpened>(*reply);
    if (!opened.ok()) return "open: " + net::ReplyStatus(*reply).message();
    if (opened->server_public.empty() || !key.Accept(opened->server_public).ok()) {
      return "opened without a connection key";
    }
    namespace stream = proto::stream;
    const std::string command =
        stream::EncodeFrame(stream::kExec, stream::EncodeExec({false, 0, 0, {"id", "-u"}}));
    proto::Envelope input =
        proto::MakeEnvelope(proto::SessionInput{opened->session, command, 0, false}, 2);
    auto keyed = key.Sign(input.type, input.id, input.body);
    if (!keyed.ok()) return "cannot sign";
    input.cred = *keyed;
    (void)(*first)->Send(input);
    std::string out;
    stream::FrameReader reader;
    bool exited = false;
    for (const auto deadline = Clock::now() + seconds(20); !exited && Clock::now() < deadline;) {
      auto m = (*first)->Receive(1000);
      if (!m) continue;
      if (m->type == proto::MessageName<proto::ErrorReply>()) {
        return "refused: " + net::ReplyStatus(*m).message();
      }
      auto o = proto::BodyOf<proto::SessionOutput>(*m);
      if (!o.ok()) continue;
      reader.Append(o->data);
      while (auto f = reader.Next()) {
        if (f->type == stream::kOutput) out += f->payload;
        exited = exited || f->type == stream::kExit;
      }
      exited = exited || o->closed;
    }
    // The first ErrorReply to `input` on `dealer`.
    auto refusal = [&](net::Dealer& dealer) -> std::string {
      (void)dealer.Send(input);
      for (const auto deadline = Clock::now() + seconds(10); Clock::now() < deadline;) {
        auto m = dealer.Receive(1000);
        if (m && m->id == input.id && m->type == proto::MessageName<proto::ErrorReply>()) {
          return net::ReplyStatus(*m).message();
        }
      }
      return "no refusal";
    };
    std::string result = "ran: " + out;
    result += "; elsewhere: " + refusal(**second);
    result += "; again: " + refusal(**first);
    return result;
  });
}

// With MUNGE, a session's messages after its SessionOpen are signed with a connection key that
// the open (MUNGE) made, not with a MUNGE credential each; such a message runs as the uid that
// opened the key (an unprivileged one here), is good only on its own connection (another one
// holds no key) and only once (its counter is taken).
TEST_F(SessionTest, KeyedSessionMessagesAreGoodOnceAndOnTheirConnectionOnly) {
  long id = 0;
  std::string node, endpoint;
  ASSERT_NO_FATAL_FAILURE(StartNobodysSessionJob(&id, &node, &endpoint));
  const std::string munge = c().dir() + "/munge/munge.sock";
  const std::string result = KeyedAs(kNobody, munge, endpoint, node, id);
  EXPECT_EQ(result.rfind("ran: 65534\n; elsewhere: ", 0), 0) << result;
  EXPECT_NE(result.find("; elsewhere: this connection holds no connection key"), std::string::npos) << result;
  EXPECT_NE(result.find("; again: authentication failed"), std::string::npos) << result;
  c().Herd("cancel " + std::to_string(id));
}

// Another user (nobody) can neither attach to nor exec in someone else's job: herd-ctld will
// not say where it runs, and herd-noded itself refuses a session to anyone but the job's owner,
// root and admins, whoever asks it directly.
TEST_F(SessionTest, AnotherUserIsRefused) {
  auto id = c().Submit("--pty -- sleep 300");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(c().WaitForState(*id, "RUNNING"));
  const std::string job = std::to_string(*id);

  // herd-ctld refuses first, without saying where the job runs (it names the owner; herd-noded
  // would say "another user").
  CommandResult attach = c().HerdAs(kNobody, kNobody, "attach " + job);
  EXPECT_EQ(attach.exit_code, 2) << attach.out << attach.err;
  EXPECT_NE(attach.err.find("permission denied: job " + job + " belongs to root"),
            std::string::npos)
      << attach.err;
  CommandResult exec = c().HerdAs(kNobody, kNobody, "exec " + job + " -- id");
  EXPECT_EQ(exec.exit_code, 2) << exec.out << exec.err;
  EXPECT_NE(exec.err.find("permission denied"), std::string::npos) << exec.err;
  EXPECT_EQ(exec.out, "");

  // Straight to the node: its endpoint is in its log ("sessions at tcp://...").
  std::string node, endpoint;
  ASSERT_NO_FATAL_FAILURE(SessionEndpoint(*id, &node, &endpoint));
  const std::string munge = c().dir() + "/munge/munge.sock";
  // The probe itself works: root (the job's owner here) is let in.
  EXPECT_EQ(OpenAs(0, munge, endpoint, node, *id, false), "opened");
  for (bool exec_too : {false, true}) {
    const std::string refused = OpenAs(kNobody, munge, endpoint, node, *id, exec_too);
    EXPECT_NE(refused.find("permission denied"), std::string::npos)
        << (exec_too ? "exec: " : "attach: ") << refused;
  }
  // A forwarded connection likewise: herd-ctld will not say where, herd-noded refuses.
  CommandResult forward = c().HerdAs(kNobody, kNobody, "port-forward " + job + " 0:8000");
  EXPECT_EQ(forward.exit_code, 2) << forward.out << forward.err;
  EXPECT_NE(forward.err.find("permission denied: job " + job + " belongs to root"),
            std::string::npos)
      << forward.err;
  EXPECT_EQ(forward.err.find("http://127.0.0.1:"), std::string::npos) << forward.err;
  const std::string refused = OpenAs(kNobody, munge, endpoint, node, *id, false, 8000);
  EXPECT_NE(refused.find("permission denied"), std::string::npos) << "forward: " << refused;
  c().Herd("cancel " + job);
}

// Sends a session request with a forged credential to herd-noded at `endpoint` as `uid`, from a
// child that became that user, over a connection whose events a monitor reports: the reply's
// error and whether herd-noded then closed the connection ("... closed"), or what went wrong.
std::string ForgedAs(uint32_t uid, const std::string& endpoint, const std::string& node, long id) {
  return AsUser(uid, [&]() -> std::string {
    zmq::context_t context;
    zmq::socket_t dealer(context, zmq::socket_type::dealer), monitor(context, zmq::socket_type::pair);
    zmq_socket_monitor(dealer.handle(), "inproc://monitor", ZMQ_EVENT_DISCONNECTED);
    monitor.connect("inproc://monitor");
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(endpoint);
    proto::Envelope e = proto::MakeEnvelope(proto::SessionOpen{id, 0, true, node, 0, ""}, 1);
    e.cred = "MUNGE:forged";
    const std::string bytes = proto::EncodeEnvelope(e);
    (void)dealer.send(zmq::buffer(bytes), zmq::send_flags::none);
    (void)dealer.send(zmq::buffer(bytes), zmq::send_flags::none);  // never looked at
    zmq::pollitem_t item{dealer.handle(), 0, ZMQ_POLLIN, 0};
    zmq::message_t m;
    if (zmq::poll(&item, 1, std::chrono::seconds(10)) <= 0 || !dealer.recv(m)) return "no answer";
    auto reply = proto::DecodeEnvelope(m.to_string_view());
    std::string result = reply.ok() ? net::ReplyStatus(*reply).message() : "undecodable reply";
    zmq::pollitem_t event{monitor.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&event, 1, std::chrono::seconds(10)) > 0) result += "; closed";
    if (zmq::poll(&item, 1, std::chrono::milliseconds(0)) > 0) result += "; answered twice";
    return result;
  });
}

// A connection that sends a credential herd-noded cannot verify is answered once and closed:
// what else it sent is never verified (each check costs herd-noded a round trip to munged).
TEST_F(SessionTest, AForgedCredentialClosesTheConnection) {
  long id = 0;
  std::string node, endpoint;
  ASSERT_NO_FATAL_FAILURE(StartNobodysSessionJob(&id, &node, &endpoint));
  const std::string result = ForgedAs(kNobody, endpoint, node, id);
  EXPECT_NE(result.find("; closed"), std::string::npos) << result;
  EXPECT_EQ(result.find("answered twice"), std::string::npos) << result;
  c().Herd("cancel " + std::to_string(id));
}

// A session request is good only on the node it names: one seen on the network cannot be
// replayed to another node (whose munged has not seen the credential) where the same job and
// worker run later. The job's owner here is an unprivileged user.
TEST_F(SessionTest, ASessionRequestForAnotherNodeIsRefused) {
  long id = 0;
  std::string node, endpoint;
  ASSERT_NO_FATAL_FAILURE(StartNobodysSessionJob(&id, &node, &endpoint));
  const std::string munge = c().dir() + "/munge/munge.sock";
  for (bool exec : {false, true}) {
    const std::string refused = OpenAs(kNobody, munge, endpoint, "elsewhere", id, exec);
    EXPECT_NE(refused.find("made for node 'elsewhere'"), std::string::npos)
        << (exec ? "exec: " : "attach: ") << refused;
  }
  EXPECT_EQ(OpenAs(kNobody, munge, endpoint, node, id, false), "opened");
  c().Herd("cancel " + std::to_string(id));
}

// A free TCP port of this host's loopback (free when asked; nothing holds it after).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

// A listening socket of this process on 127.0.0.1 (a free port, in *port), or -1.
int ListenOnLoopback(int backlog, int* port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, backlog) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

// A connection to 127.0.0.1:port, or -1.
int ConnectTo(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Everything `fd` sends until it closes (or 30 s pass).
std::string ReadToEnd(int fd) {
  std::string got;
  char buf[4096];
  const auto deadline = Clock::now() + seconds(30);
  while (Clock::now() < deadline) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 1000) <= 0) continue;
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// GET `path` from 127.0.0.1:port with HTTP/1.0: the whole answer, or "" when nothing listens.
std::string HttpGet(int port, const std::string& path) {
  const int fd = ConnectTo(port);
  if (fd < 0) return "";
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  (void)!write(fd, request.data(), request.size());
  std::string got = ReadToEnd(fd);
  close(fd);
  return got;
}

// The uid that owns the TCP socket of this host whose local end is 127.0.0.1:local_port and
// whose other end is port remote_port, from /proc/net/tcp (the kernel records there the owner
// of each socket: the user of the process that made it); -1 when there is none.
long TcpSocketOwner(int local_port, int remote_port) {
  std::istringstream table(ReadText("/proc/net/tcp"));
  std::string line;
  std::getline(table, line);  // the header
  char want_local[16], want_remote[16];
  std::snprintf(want_local, sizeof want_local, "0100007F:%04X", local_port);
  std::snprintf(want_remote, sizeof want_remote, "0100007F:%04X", remote_port);
  while (std::getline(table, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits;
    long uid = -1;
    fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid;
    if (local == want_local && remote == want_remote) return uid;
  }
  return -1;
}

// The command line of `herd ARGS` as user `uid` (as LocalCluster::HerdAs runs it), for a
// PtyProcess.
std::string HerdLineAs(const LocalCluster& c, uint32_t uid, const std::string& args) {
  c.HerdAs(uid, uid, "--version");  // installs the copy of herd other users can run
  const std::string id = std::to_string(uid);
  return "cd / && exec setpriv --reuid=" + id + " --regid=" + id +
         " --clear-groups env HERD_CONFIG=" + c.dir() + "/herd.toml " + c.dir() +
         "/herd-for-other-users " + args;
}

// herd port-forward relays a local port to a web server inside a job of an unprivileged user
// (run by the job's user, listening on the node's loopback only): the page comes back whole;
// one herd relays at most --max-connections at once and says so when it refuses one; the
// forward ends, saying so, when the job ends.
TEST_F(SessionTest, PortForwardFetchesAPageFromTheJob) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3 for the job";
  const int port = FreePort();
  ASSERT_GT(port, 0);
  CommandResult sub = c().HerdAs(
      kNobody, kNobody,
      "submit -q -- sh -c 'd=$(mktemp -d) && cd $d && echo forwarded-$((6*7)) > page.txt && "
      "exec /usr/bin/python3 -m http.server " +
          std::to_string(port) + " --bind 127.0.0.1'");
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const long id = std::stol(sub.out);
  ASSERT_TRUE(c().WaitForState(id, "RUNNING")) << c().log_tail();
  ASSERT_TRUE(Eventually(seconds(30), [&] {
    const int fd = ConnectTo(port);
    if (fd >= 0) close(fd);
    return fd >= 0;
  })) << c().Herd("logs " + std::to_string(id)).out;

  PtyProcess forward(HerdLineAs(
      c(), kNobody,
      "port-forward --max-connections 2 " + std::to_string(id) + " " + std::to_string(port)));
  ASSERT_TRUE(forward.Expect("http://127.0.0.1:[0-9]+/ forwards to port " + std::to_string(port),
                             seconds(30)))
      << forward.seen() << c().log_tail();
  const int local = std::stoi(forward.last_match().substr(strlen("http://127.0.0.1:")));
  ASSERT_NE(local, port);

  const std::string page = HttpGet(local, "/page.txt");
  EXPECT_NE(page.find("200 OK"), std::string::npos) << page << forward.seen();
  EXPECT_NE(page.find("\r\n\r\nforwarded-42\n"), std::string::npos) << page;

  // Two connections held open (the server waits for their requests); a third is refused (herd
  // takes connections in the order they came).
  const int first = ConnectTo(local), second = ConnectTo(local);
  ASSERT_GE(first, 0);
  ASSERT_GE(second, 0);
  const int third = ConnectTo(local);
  ASSERT_GE(third, 0);
  EXPECT_EQ(ReadToEnd(third), "");
  close(third);
  EXPECT_TRUE(forward.Expect("refused a connection to 127.0.0.1:" + std::to_string(local) +
                             ": 2 connections are being relayed"))
      << forward.seen();
  close(first);
  close(second);
  // Once herd has seen them end, a new connection is relayed again.
  EXPECT_TRUE(Eventually(seconds(30), [&] {
    return HttpGet(local, "/page.txt").find("forwarded-42") != std::string::npos;
  }));

  c().Herd("cancel " + std::to_string(id));
  EXPECT_TRUE(forward.Expect("job " + std::to_string(id) + " is CANCELLED: stopped forwarding",
                             seconds(30)))
      << forward.seen();
  EXPECT_EQ(forward.Wait(), 0);
}

// herd run --port LOCAL:REMOTE forwards LOCAL to the job's REMOTE while the session runs, and
// prints the URL to open: the page of a web server in the job (of an unprivileged user) comes
// back through exactly the printed URL, and not through the job's port itself (the server is
// bound to the node's loopback, which is this host's here, so the test reaches it only through
// the local port that herd printed).
TEST_F(SessionTest, RunWithAPortPrintsTheUrlThatReachesTheJob) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3 for the job";
  const int port = FreePort(), local = FreePort();
  ASSERT_GT(port, 0);
  ASSERT_GT(local, 0);
  ASSERT_NE(local, port);
  PtyProcess run(HerdLineAs(
      c(), kNobody,
      "run --port " + std::to_string(local) + ":" + std::to_string(port) +
          " -- sh -c 'echo JOB=[$HERD_JOB_ID]; d=$(mktemp -d) && cd $d && "
          "echo run-port-$((6*7)) > page.txt && exec /usr/bin/python3 -m http.server " +
          std::to_string(port) + " --bind 127.0.0.1'"));
  ASSERT_TRUE(run.started());
  ASSERT_TRUE(run.Expect("http://127.0.0.1:[0-9]+/ forwards to port " + std::to_string(port) +
                             " of job [0-9]+",
                         seconds(60)))
      << run.seen() << c().log_tail();
  const std::string url_line = run.last_match();
  EXPECT_EQ(url_line.rfind("http://127.0.0.1:" + std::to_string(local) + "/ ", 0), 0) << url_line;
  const int printed = std::stoi(url_line.substr(strlen("http://127.0.0.1:")));
  ASSERT_TRUE(run.Expect("JOB=\\[[0-9]+\\]")) << run.seen();
  const long id = std::stol(run.last_match().substr(strlen("JOB=[")));
  EXPECT_NE(url_line.find("of job " + std::to_string(id)), std::string::npos) << url_line;

  // The server may still be starting: the page comes within the deadline, through the URL.
  std::string page;
  EXPECT_TRUE(Eventually(seconds(30),
                         [&] {
                           page = HttpGet(printed, "/page.txt");
                           return page.find("run-port-42") != std::string::npos;
                         }))
      << page << run.seen() << c().log_tail();
  EXPECT_NE(page.find("200 OK"), std::string::npos) << page;

  c().Herd("cancel " + std::to_string(id));
  EXPECT_EQ(c().WaitForEnd(id), "CANCELLED");
  run.Wait();
}

// A forwarded connection is made by a process of the job's user, never by root: a port only
// root listens on sees the job's uid at the other end (the kernel's record of the connecting
// socket's owner), so a forward reaches only what the job's user could.
TEST_F(SessionTest, PortForwardConnectsAsTheJobsUser) {
  long id = 0;
  std::string node, endpoint;
  ASSERT_NO_FATAL_FAILURE(StartNobodysSessionJob(&id, &node, &endpoint));
  int root_port = 0;
  const int listener = ListenOnLoopback(4, &root_port);  // root's, in this test
  ASSERT_GE(listener, 0);

  // root is an admin: it may forward a port of nobody's job, which still connects as nobody.
  PtyProcess forward(
      HerdLine("port-forward " + std::to_string(id) + " 0:" + std::to_string(root_port)));
  ASSERT_TRUE(forward.Expect("http://127.0.0.1:[0-9]+/", seconds(30))) << forward.seen();
  const int local = std::stoi(forward.last_match().substr(strlen("http://127.0.0.1:")));
  const int client = ConnectTo(local);
  ASSERT_GE(client, 0);
  struct pollfd p = {listener, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 30000), 1) << forward.seen() << c().log_tail();
  struct sockaddr_in peer = {};
  socklen_t len = sizeof peer;
  const int accepted = accept(listener, reinterpret_cast<sockaddr*>(&peer), &len);
  ASSERT_GE(accepted, 0);
  EXPECT_EQ(TcpSocketOwner(ntohs(peer.sin_port), root_port), static_cast<long>(kNobody))
      << "the forwarded connection was not made by the job's user";
  // And the bytes flow both ways.
  ASSERT_EQ(write(client, "ping", 4), 4);
  char buf[4] = {};
  ASSERT_EQ(read(accepted, buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "ping");
  ASSERT_EQ(write(accepted, "pong", 4), 4);
  ASSERT_EQ(read(client, buf, 4), 4);
  EXPECT_EQ(std::string(buf, 4), "pong");
  close(accepted);
  EXPECT_EQ(ReadToEnd(client), "");
  close(client);
  close(listener);
  c().Herd("cancel " + std::to_string(id));
  EXPECT_EQ(forward.Wait(), 0) << forward.seen();
}

// A download through a forward arrives whole when its reader is slower than the job's side:
// herd-noded ends the session once the job's side has closed and all was sent to herd, and
// answers an acknowledgement herd sends after that with an error ("session closed"), which must
// not end the forward while herd still holds bytes for the local side.
TEST_F(SessionTest, ASlowlyReadDownloadArrivesWhole) {
  long id = 0;
  std::string node, endpoint;
  ASSERT_NO_FATAL_FAILURE(StartNobodysSessionJob(&id, &node, &endpoint));
  int job_port = 0;
  const int listener = ListenOnLoopback(4, &job_port);  // the job's server, in this test
  ASSERT_GE(listener, 0);
  PtyProcess forward(
      HerdLine("port-forward " + std::to_string(id) + " 0:" + std::to_string(job_port)));
  ASSERT_TRUE(forward.Expect("http://127.0.0.1:[0-9]+/", seconds(30))) << forward.seen();
  const int local = std::stoi(forward.last_match().substr(strlen("http://127.0.0.1:")));
  std::string sent(4 << 20, '\0');
  for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i % 251);
  // When the end arrives while herd still holds bytes depends on timing: three downloads.
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("download " + std::to_string(round + 1));
    // A small receive buffer keeps more of what is on its way in herd, not in the kernel.
    const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(client, 0);
    const int small = 16 << 10;
    setsockopt(client, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(local));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    struct pollfd p = {listener, POLLIN, 0};
    ASSERT_EQ(poll(&p, 1, 30000), 1) << forward.seen() << c().log_tail();
    const int accepted = accept(listener, nullptr, nullptr);
    ASSERT_GE(accepted, 0);
    std::thread job_side([&] {  // sends it all and closes, as a web server does
      size_t off = 0;
      while (off < sent.size()) {
        const ssize_t n = write(accepted, sent.data() + off, sent.size() - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      close(accepted);
    });
    std::string got;
    char buf[16 << 10];
    const auto deadline = Clock::now() + seconds(60);
    while (Clock::now() < deadline) {
      struct pollfd r = {client, POLLIN, 0};
      if (poll(&r, 1, 1000) <= 0) continue;
      const ssize_t n = read(client, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
      // The slow reader itself (not a wait for an event): about 16 MB/s.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    job_side.join();
    close(client);
    EXPECT_EQ(got.size(), sent.size()) << forward.seen();
    EXPECT_TRUE(got == sent) << "the bytes that arrived differ from those sent";
  }
  close(listener);
  c().Herd("cancel " + std::to_string(id));
  EXPECT_EQ(forward.Wait(), 0) << forward.seen();
}

// herd-noded relays at most 32 forwarded connections of one user at once, whoever asks: the
// next is refused with a message (each is a process of the job's user on the node).
TEST_F(SessionTest, ForwardedConnectionsOfAUserAreBounded) {
  long id = 0;
  std::string node, endpoint;
  ASSERT_NO_FATAL_FAILURE(StartNobodysSessionJob(&id, &node, &endpoint));
  const std::string munge = c().dir() + "/munge/munge.sock";
  // The connections' other end: root's listener here, which never accepts (the kernel completes
  // each connection into its backlog), so each stays open.
  int port = 0;
  const int listener = ListenOnLoopback(64, &port);
  ASSERT_GE(listener, 0);
  const std::string result = AsUser(kNobody, [&]() -> std::string {
    auto auth = auth::MakeAuthenticator("munge", munge);
    auto dealer = net::Dealer::Connect(endpoint, "");
    if (!auth.ok() || !dealer.ok()) return "cannot connect";
    uint64_t next_id = 1;
    auto send = [&](proto::Envelope e) {
      e.id = next_id++;
      auto cred = (*auth)->Credential(auth::MessageBinding(e.type, e.id, e.body));
      if (cred.ok()) e.cred = *cred;
      (void)(*dealer)->Send(e);
      return e.id;
    };
    std::vector<uint64_t> opened;
    std::string last;
    for (int n = 1; n <= 33; ++n) {
      const uint64_t asked =
          send(proto::MakeEnvelope(proto::SessionOpen{id, 0, false, node, port, ""}));
      while (true) {
        auto reply = (*dealer)->Receive(10000);
        if (!reply) return "no answer to open " + std::to_string(n);
        if (reply->id != asked) continue;  // output of an earlier one
        Status s = net::ReplyStatus(*reply);
        auto body = proto::BodyOf<proto::SessionOpened>(*reply);
        if (s.ok() && body.ok()) opened.push_back(body->session);
        last = s.ok() ? "opened" : s.message();
        break;
      }
    }
    for (uint64_t session : opened) {
      send(proto::MakeEnvelope(proto::SessionInput{session, "", 0, true}));
    }
    return std::to_string(opened.size()) + " opened; then: " + last;
  });
  EXPECT_NE(result.find("32 opened; then: too many forwarded connections"), std::string::npos)
      << result;
  close(listener);
  c().Herd("cancel " + std::to_string(id));
}

}  // namespace
}  // namespace herd::testing

namespace herd::testing {
namespace {

// On a node with this machine's own topology, jobs are pinned to their cores: herd exec runs
// in the job's cgroups, so it sees the job's cpuset, not the machine's.
TEST(SessionHostTest, ExecSeesTheJobsCpuset) {
  LocalCluster::Options options;
  options.nodes = {"host1=host"};
  auto cluster = LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status().message();
  LocalCluster& c = **cluster;
  if (c.CgroupMode("host1") == "none") GTEST_SKIP() << "no cgroups here: jobs are not confined";
  const std::string cpus = ReadText("/proc/self/status");
  auto id = c.Submit("-c 1 -- sh -c 'grep -E \"Cpus_allowed_list|^0::\" /proc/self/status "
                     "/proc/self/cgroup; sleep 300'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(c.WaitForState(*id, "RUNNING")) << c.log_tail();
  CommandResult job;
  ASSERT_TRUE(Eventually(std::chrono::seconds(10), [&] {
    job = c.Herd("logs " + std::to_string(*id));
    return job.out.find("Cpus_allowed_list") != std::string::npos;
  }));
  std::smatch mine, theirs;
  const std::regex allowed("Cpus_allowed_list:\\s*(\\S+)");
  ASSERT_TRUE(std::regex_search(job.out, theirs, allowed)) << job.out;
  ASSERT_TRUE(std::regex_search(cpus, mine, allowed));
  if (theirs[1] == mine[1]) GTEST_SKIP() << "this machine has one core: every cpuset is it";
  CommandResult exec = c.Herd("exec " + std::to_string(*id) +
                              " -- grep Cpus_allowed_list /proc/self/status");
  EXPECT_EQ(exec.exit_code, 0) << exec.err;
  std::smatch seen;
  ASSERT_TRUE(std::regex_search(exec.out, seen, allowed)) << exec.out;
  EXPECT_EQ(seen[1], theirs[1]) << "the job's cores are " << theirs[1] << ", the machine's "
                                << mine[1];
  c.Herd("cancel " + std::to_string(*id));
}

// A CPU-only session whose terminal gets no input for its class's idle_input_timeout is stopped,
// with the reason; one that is typed into runs on.
TEST(SessionIdleTest, ASessionWithoutInputIsStoppedAndOneTypedIntoIsNot) {
  LocalCluster::Options options;
  options.extra_toml =
      "[projects.default]\ndeserved = { gpu = 8 }\nmembers = [\"*\"]\n"
      "[classes.interactive]\nidle_input_timeout = \"3s\"\n";
  auto cluster = LocalCluster::Start(options);
  ASSERT_TRUE(cluster.ok()) << cluster.status().message();
  LocalCluster& c = **cluster;
  auto idle = c.Submit("--interactive --pty -- sleep 300");
  auto typed = c.Submit("--interactive --pty -- cat");
  ASSERT_TRUE(idle.ok() && typed.ok());
  ASSERT_TRUE(c.WaitForState(*typed, "RUNNING")) << c.log_tail();
  PtyProcess attach("exec env HERD_CONFIG=" + c.dir() + "/herd.toml PATH=" + BinDir() +
                    ":/usr/bin:/bin herd attach " + std::to_string(*typed));
  std::string state;
  for (int i = 0; i < 120 && state != "CANCELLED"; ++i) {
    attach.Send("key\r");  // input twice a second
    attach.Expect("key", seconds(5));
    // The typing pace is the test: input arrives while the idle job's timeout runs out.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto show = c.Show(*idle);
    if (show.ok()) state = (*show)["state"].get<std::string>();
  }
  ASSERT_EQ(state, "CANCELLED") << c.log_tail();
  auto show = c.Show(*idle);
  ASSERT_TRUE(show.ok());
  const std::string reason = (*show)["reason"].get<std::string>();
  EXPECT_TRUE(std::regex_search(reason, std::regex("stopped: its terminal got no input for [3-9]s "
                                                   "\\(idle_input_timeout of class interactive "
                                                   "is 3s\\)")))
      << reason;
  show = c.Show(*typed);
  ASSERT_TRUE(show.ok());
  EXPECT_EQ((*show)["state"].get<std::string>(), "RUNNING") << (*show)["reason"];
  c.Herd("cancel " + std::to_string(*typed));
}

}  // namespace
}  // namespace herd::testing
