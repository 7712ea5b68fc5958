// Interactive sessions end to end: `herd run`, `herd attach` and `herd exec` driven through a
// real pseudo-terminal (forkpty) against a local cluster, as a user at a terminal would.
// Every wait is for an output pattern (or a state) with a deadline.
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <regex>
#include <string>
#include <zmq.hpp>

#include "common/auth/auth.h"
#include "common/net/net.h"
#include "common/proto/codec.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
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
    return PollUntil(std::chrono::seconds(30), [&] {
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
  ASSERT_TRUE(PollUntil(std::chrono::seconds(10), [&] {
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
  ASSERT_TRUE(PollUntil(std::chrono::seconds(10), [&] {
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
  ASSERT_TRUE(PollUntil(std::chrono::seconds(10), [&] {
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
                   const std::string& node, long id, bool exec) {
  return AsUser(uid, [&]() -> std::string {
    auto auth = auth::MakeAuthenticator("munge", munge_socket);
    auto dealer = net::Dealer::Connect(endpoint, "");
    if (!auth.ok() || !dealer.ok()) return "cannot connect";
    proto::Envelope e = proto::MakeEnvelope(proto::SessionOpen{id, 0, exec, node}, 1);
    auto cred = (*auth)->Credential(auth::MessageBinding(e.type, e.id, e.body));
    if (cred.ok()) e.cred = *cred;
    (void)(*dealer)->Send(e);
    auto reply = (*dealer)->Receive(10000);
    if (!reply) return "no answer";
    Status s = net::ReplyStatus(*reply);
    return s.ok() ? "opened" : s.message();
  });
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
    proto::Envelope e = proto::MakeEnvelope(proto::SessionOpen{id, 0, true, node}, 1);
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
  ASSERT_TRUE(PollUntil(std::chrono::seconds(10), [&] {
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

}  // namespace
}  // namespace herd::testing
