// Who may speak for a node, and what any peer can make herd-ctld hold: raw transport peers that
// claim a node's name, forge or lack credentials, or declare huge and slow messages; and a node
// that comes back after its job was requeued, whose old run must never be taken for the new one.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/auth/auth.h"
#include "common/proto/codec.h"
#include "common/proto/messages.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/support/eventually.h"
#include "zmq.hpp"
#include "zmq_addon.hpp"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr uint32_t kNobody = 65534;

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

std::string Topology(const std::string& name) {
  return name + "=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml";
}

// A raw ZeroMQ DEALER, speaking the node side of the protocol by hand.
class RawPeer {
 public:
  RawPeer(zmq::context_t& ctx, const std::string& endpoint, const std::string& routing_id)
      : socket_(ctx, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 0);
    if (!routing_id.empty()) socket_.set(zmq::sockopt::routing_id, routing_id);
    socket_.connect(endpoint);
  }
  // The MessageBinding of `body` as the next Send sends it, for its credential.
  template <typename T>
  std::string BindingOfNext(const T& body) const {
    const proto::Envelope e = proto::MakeEnvelope(body, id_ + 1);
    return auth::MessageBinding(e.type, e.id, e.body);
  }
  template <typename T>
  void Send(const T& body, const std::string& cred) {
    socket_.send(zmq::buffer(proto::EncodeEnvelope(proto::MakeEnvelope(body, ++id_, cred))),
                 zmq::send_flags::none);
  }
  // Every message that arrives within `ms`, decoded; their types are kept in seen().
  std::vector<proto::Envelope> Drain(int ms) {
    std::vector<proto::Envelope> out;
    const auto deadline = Clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (left.count() <= 0 || zmq::poll(&item, 1, left) <= 0) break;
      zmq::message_t msg;
      if (!socket_.recv(msg, zmq::recv_flags::dontwait)) continue;
      auto e = proto::DecodeEnvelope(msg.to_string_view());
      if (!e.ok()) continue;
      seen_.insert(e->type);
      out.push_back(std::move(*e));
    }
    return out;
  }
  // The first error reply within `ms`, its message; "" when none came.
  std::string NextError(int ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(ms);
    while (Clock::now() < deadline) {
      for (const auto& e : Drain(100)) {
        if (e.type != "error") continue;
        auto err = proto::BodyOf<proto::ErrorReply>(e);
        return err.ok() ? err->message : "malformed error";
      }
    }
    return "";
  }
  const std::set<std::string>& seen() const { return seen_; }

 private:
  zmq::socket_t socket_;
  uint64_t id_ = 0;
  std::set<std::string> seen_;
};

proto::RegisterRequest FakeRegister(const std::string& node) {
  proto::RegisterRequest reg;
  reg.node = node;
  reg.topology.hostname = node;
  reg.topology.sockets = 1;
  reg.topology.numa = {{0, {0, 1, 2, 3}, 8192}};
  reg.topology.memory_mib = 8192;
  reg.topology.emulated = true;
  reg.topology.source = "node_trust_test";
  reg.instance = 0x5eed;
  return reg;
}

// A peer that names itself after a node (ZeroMQ routing id "ws01"), peers that register ws01
// without a credential, with a forged one or as a user who is not root, and a peer that reports
// the end of ws01's job: none gets a launch, the node stays UP and its jobs run, once each.
TEST(NodeTrustTest, PeersClaimingANodeGetNoLaunchAndCannotTouchIt) {
  LocalCluster::Options options;
  options.nodes = {Topology("ws01")};
  options.extra_toml = "[scheduler]\nnode_timeout = \"3s\"\n";
  auto started = LocalCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  auto first = c.Submit("-- sleep 300");
  ASSERT_TRUE(first.ok()) << first.status().message();
  ASSERT_TRUE(c.WaitForState(*first, "RUNNING")) << c.log_tail();

  zmq::context_t ctx;
  const std::string endpoint = c.ControllerEndpoint();
  RawPeer named(ctx, endpoint, "ws01");  // sends nothing at first
  RawPeer anonymous(ctx, endpoint, "");
  anonymous.Send(FakeRegister("ws01"), "");
  EXPECT_THAT(anonymous.NextError(5000), HasSubstr("authentication")) << c.log_tail();
  anonymous.Send(FakeRegister("ws01"), "MUNGE:forged-credential:");
  EXPECT_THAT(anonymous.NextError(5000), HasSubstr("authentication")) << c.log_tail();

  std::optional<RawPeer> other_user;
  if (geteuid() == 0 && RunShell("command -v setpriv && command -v munge").exit_code == 0) {
    c.HerdAs(kNobody, kNobody, "nodes");  // opens the cluster directory (and munged) to nobody
    other_user.emplace(ctx, endpoint, "");
    CommandResult cred = RunShell("setpriv --reuid=" + std::to_string(kNobody) + " --regid=" +
                                  std::to_string(kNobody) + " --clear-groups munge -S " +
                                  c.dir() + "/munge/munge.sock -s " +
                                  other_user->BindingOfNext(FakeRegister("ws01")));
    ASSERT_EQ(cred.exit_code, 0) << cred.err;
    while (!cred.out.empty() && cred.out.back() == '\n') cred.out.pop_back();
    other_user->Send(FakeRegister("ws01"), cred.out);
    EXPECT_THAT(other_user->NextError(5000), HasSubstr("permission denied")) << c.log_tail();
  } else {
    std::cout << "not tried: a Register as another user (needs root, setpriv and munge)\n";
  }

  auto second = c.Submit("-- sleep 300");
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_TRUE(c.WaitForState(*second, "RUNNING")) << c.log_tail();

  // With a credential herd-ctld accepts for a node, but on a connection no Register bound to
  // ws01: the end of ws01's job is refused.
  auto auth = auth::MakeAuthenticator("munge", c.dir() + "/munge/munge.sock");
  ASSERT_TRUE(auth.ok()) << auth.status().message();
  proto::JobEvent forged_end{"ws01", {*first, 0, "ENDED", 1, "forged", {}, 0}};
  auto root_cred = (*auth)->Credential(named.BindingOfNext(forged_end));
  ASSERT_TRUE(root_cred.ok()) << root_cred.status().message();
  named.Send(forged_end, *root_cred);
  EXPECT_THAT(named.NextError(5000), HasSubstr("not registered")) << c.log_tail();

  // Longer than node_timeout: a node pushed off its connection would be declared DOWN.
  bool stayed_up = true;
  const auto until = Clock::now() + std::chrono::seconds(4);
  while (Clock::now() < until) {
    stayed_up = stayed_up && NodeState(c, "ws01") == "UP";
    for (RawPeer* p : {&named, &anonymous}) p->Drain(100);
    if (other_user) other_user->Drain(100);
  }
  EXPECT_TRUE(stayed_up) << c.Herd("nodes").out << c.log_tail();
  for (RawPeer* p : {&named, &anonymous}) EXPECT_EQ(p->seen().count("launch"), 0u);
  if (other_user) {
    EXPECT_EQ(other_user->seen().count("launch"), 0u);
  }
  for (long id : {*first, *second}) {
    auto job = c.Show(id);
    ASSERT_TRUE(job.ok());
    EXPECT_EQ(job->value("state", ""), "RUNNING") << job->dump() << c.log_tail();
    EXPECT_EQ(job->value("restart_count", -1), 0) << "job " << id << " was started again";
    EXPECT_FALSE(Exists(c.JobDir("ws01", id, 0, 1))) << "a second run of job " << id;
  }
}

// A controller that is not herd-ctld, as any local user can start while herd-ctld is down: it
// binds herd-ctld's address, gets ws01's Register and answers it. A launch it sends without a
// credential, with a credential of `nobody`, or as root for a root job while herd.toml does not
// allow root jobs runs nothing; the same launch with a credential of herd-ctld's user runs.
TEST(NodeTrustTest, NodeRunsOnlyLaunchesSignedByHerdCtldsUser) {
  if (geteuid() != 0 || RunShell("command -v setpriv && command -v munge").exit_code != 0) {
    GTEST_SKIP() << "needs root (jobs run as nobody), setpriv and munge";
  }
  LocalCluster::Options options;
  options.nodes = {Topology("ws01")};
  options.extra_toml = "[controller]\nallow_root_jobs = false\n";
  auto started = LocalCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  const std::string endpoint = c.ControllerEndpoint();
  const std::string socket = c.dir() + "/munge/munge.sock";
  c.HerdAs(kNobody, kNobody, "nodes");  // opens the cluster directory (and munged) to nobody
  const std::string marks = c.dir() + "/marks";
  ASSERT_EQ(RunShell("mkdir -m 1777 " + marks).exit_code, 0);
  auto auth = auth::MakeAuthenticator("munge", socket);
  ASSERT_TRUE(auth.ok()) << auth.status().message();
  ASSERT_TRUE(c.KillController().ok()) << c.log_tail();

  zmq::context_t ctx;
  zmq::socket_t fake(ctx, zmq::socket_type::router);
  fake.set(zmq::sockopt::linger, 0);
  fake.bind(endpoint);
  // The next message from ws01 of type `type` (or any type: "") within `ms`; keeps its route.
  std::string route;
  auto next = [&](const std::string& type, int ms) -> std::optional<proto::Envelope> {
    const auto deadline = Clock::now() + std::chrono::milliseconds(ms);
    while (Clock::now() < deadline) {
      zmq::pollitem_t item{fake.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) <= 0) continue;
      std::vector<zmq::message_t> frames;
      if (!zmq::recv_multipart(fake, std::back_inserter(frames))) continue;
      if (frames.size() != 2) continue;
      auto e = proto::DecodeEnvelope(frames[1].to_string_view());
      if (!e.ok() || (!type.empty() && e->type != type)) continue;
      route = frames[0].to_string();
      return *e;
    }
    return std::nullopt;
  };
  auto send = [&](proto::Envelope e) {
    fake.send(zmq::buffer(route), zmq::send_flags::sndmore);
    fake.send(zmq::buffer(proto::EncodeEnvelope(e)), zmq::send_flags::none);
  };
  auto root_signed = [&](proto::Envelope e) {
    auto cred = (*auth)->Credential(auth::MessageBinding(e.type, e.id, e.body));
    EXPECT_TRUE(cred.ok()) << cred.status().message();
    e.cred = cred.ok() ? *cred : "";
    return e;
  };
  auto nobody_signed = [&](proto::Envelope e) {
    CommandResult cred = RunShell("setpriv --reuid=" + std::to_string(kNobody) + " --regid=" +
                                  std::to_string(kNobody) + " --clear-groups munge -S " +
                                  socket + " -s " + auth::MessageBinding(e.type, e.id, e.body));
    EXPECT_EQ(cred.exit_code, 0) << cred.err;
    while (!cred.out.empty() && cred.out.back() == '\n') cred.out.pop_back();
    e.cred = cred.out;
    return e;
  };
  auto launch = [&](long id, uint32_t uid, const std::string& mark) {
    proto::LaunchCommand cmd;
    cmd.job.id = id;
    cmd.job.uid = uid;
    cmd.job.gid = uid;
    cmd.job.spec.argv = {"/bin/sh", "-c", "touch " + marks + "/" + mark};
    cmd.job.spec.cwd = "/";
    model::WorkerPlacement worker;
    worker.node = "ws01";
    worker.memory_mib = 64;
    cmd.job.placement = {worker};
    return proto::MakeEnvelope(cmd, static_cast<uint64_t>(id));
  };
  const std::string node_log = c.dir() + "/ws01.log";
  auto logged = [&](const std::string& text) {
    return Eventually(std::chrono::seconds(10),
                      [&] { return ReadText(node_log).find(text) != std::string::npos; });
  };

  // ws01 goes on heartbeating (or registers again) to whatever now listens at the address.
  ASSERT_TRUE(next("", 10000)) << "ws01 never reached the fake controller\n" << c.log_tail();
  send(root_signed(proto::MakeEnvelope(proto::RegisterReply{200})));
  send(launch(901, kNobody, "unsigned"));
  EXPECT_TRUE(logged("dropped 'launch'")) << c.log_tail();
  send(nobody_signed(launch(902, kNobody, "nobody")));
  EXPECT_TRUE(logged("sent as uid " + std::to_string(kNobody))) << c.log_tail();
  send(root_signed(launch(903, 0, "root")));
  bool refused = false;
  for (auto e = next("job_event", 10000); e && !refused; e = next("job_event", 10000)) {
    auto ev = proto::BodyOf<proto::JobEvent>(*e);
    refused = ev.ok() && ev->report.id == 903 && ev->report.state == "ENDED" &&
              ev->report.reason.find("root") != std::string::npos;
  }
  EXPECT_TRUE(refused) << "no refusal of a root job reported\n" << c.log_tail();
  // Commands are handled in order: once this one ran, the three before were handled too.
  send(root_signed(launch(904, kNobody, "signed")));
  EXPECT_TRUE(Eventually(std::chrono::seconds(15), [&] { return Exists(marks + "/signed"); }))
      << c.log_tail();
  for (const char* mark : {"unsigned", "nobody", "root"}) {
    EXPECT_FALSE(Exists(marks + "/" + mark)) << "the launch marked '" << mark << "' ran";
  }
}

// herd-ctld with `[controller] user = "nobody"`, started by root as an admin's systemd would:
// it hands its state to nobody and runs as nobody, and the node (root) runs the jobs it sends,
// which it signs as nobody.
TEST(NodeTrustTest, HerdCtldRunsAsItsConfiguredUserAndNodesObeyIt) {
  if (geteuid() != 0 || RunShell("command -v munge").exit_code != 0) {
    GTEST_SKIP() << "needs root (herd-ctld drops from root to its user) and munge";
  }
  LocalCluster::Options options;
  options.nodes = {Topology("ws01")};
  options.extra_toml = "[controller]\nuser = \"nobody\"\n";
  auto started = LocalCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  const std::string pid = ReadText(c.dir() + "/ctld.pid");
  std::string uids;
  std::istringstream status(ReadText("/proc/" + pid.substr(0, pid.find('\n')) + "/status"));
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("Uid:", 0) == 0) uids = line;
  }
  EXPECT_EQ(uids, "Uid:\t65534\t65534\t65534\t65534") << "herd-ctld kept root";
  for (const std::string& path : {c.dir() + "/ctld", c.dir() + "/ctld/herd.db", c.dir() + "/ctld.log"}) {
    struct stat st {};
    ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_uid, kNobody) << path;
    EXPECT_EQ(st.st_mode & 077, 0u) << path << " is open to others";
  }
  auto id = c.Submit("-- /bin/sh -c 'exit 0'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(c.WaitForEnd(*id), "COMPLETED") << c.log_tail();
}

// The node comes back (SIGCONT) after herd-ctld declared it DOWN and requeued its job; the job
// starts again on that same node as a new run: the old run is killed, and its late end report
// never touches the new run.
TEST(NodeRunTest, NodeBackAfterItsJobWasRequeuedRunsTheNewRunAndKillsTheOld) {
  LocalCluster::Options options;
  options.nodes = {Topology("ws01")};
  options.extra_toml = "[scheduler]\nnode_timeout = \"3s\"\n";
  auto started = LocalCluster::Start(options);
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;

  auto id = c.Submit("-- sh -c 'echo run $HERD_RESTART_COUNT; exec sleep 300'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  ASSERT_TRUE(c.WaitForState(*id, "RUNNING")) << c.log_tail();
  // The run's directory on the node, found by the job's id alone.
  std::string old_dir;
  ASSERT_TRUE(Eventually(std::chrono::seconds(10), [&] {
    old_dir = RunShell("ls -d " + c.dir() + "/nodes/ws01/jobs/" + std::to_string(*id) +
                       ".* 2>/dev/null | head -n 1").out;
    while (!old_dir.empty() && old_dir.back() == '\n') old_dir.pop_back();
    return !old_dir.empty() && std::atol(ReadText(old_dir + "/pid").c_str()) > 0;
  }));
  const pid_t old_pid = static_cast<pid_t>(std::atol(ReadText(old_dir + "/pid").c_str()));

  const pid_t noded = c.NodeDaemonPid("ws01");
  ASSERT_GT(noded, 0);
  ASSERT_EQ(kill(noded, SIGSTOP), 0);
  struct Thaw {
    pid_t pid;
    ~Thaw() { kill(pid, SIGCONT); }
  } thaw{noded};
  ASSERT_TRUE(Eventually(std::chrono::seconds(20),
                         [&] {
                           auto j = c.Show(*id);
                           return j.ok() && j->value("state", "") == "PENDING" &&
                                  j->value("restart_count", -1) == 1;
                         }))
      << c.Show(*id)->dump() << c.log_tail();
  ASSERT_EQ(kill(noded, SIGCONT), 0);

  // The new run starts on the returning node and the old one is killed there.
  nlohmann::json job;
  EXPECT_TRUE(Eventually(std::chrono::seconds(20),
                         [&] {
                           auto j = c.Show(*id);
                           if (j.ok()) job = *j;
                           return j.ok() && job.value("state", "") == "RUNNING" && !Alive(old_pid);
                         }))
      << job.dump() << c.log_tail();
  // The old run's end was reported and acknowledged (the node forgot it) ...
  EXPECT_TRUE(Eventually(std::chrono::seconds(10), [&] { return !Exists(old_dir + "/spec.json"); }))
      << c.log_tail();
  // ... and the job is still the new run, running.
  auto after = c.Show(*id);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->value("state", ""), "RUNNING") << after->dump() << c.log_tail();
  EXPECT_EQ(after->value("restart_count", -1), 1) << after->dump();
  EXPECT_TRUE(Eventually(std::chrono::seconds(10), [&] {
    return c.Herd("logs " + std::to_string(*id)).out.find("run 1") != std::string::npos;
  })) << c.Herd("logs " + std::to_string(*id)).out;
}

// ---- the transport: sizes and deadlines any peer controls ----

// A TCP connection speaking ZMTP 3.1 by hand as a DEALER, up to the point of sending frames.
class ZmtpPeer {
 public:
  explicit ZmtpPeer(const std::string& endpoint) {
    // endpoint: tcp://127.0.0.1:PORT
    const size_t colon = endpoint.rfind(':');
    const int port = std::atoi(endpoint.substr(colon + 1).c_str());
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    std::string greeting(64, '\0');
    greeting[0] = '\xff';
    greeting[9] = '\x7f';
    greeting[10] = 3;  // ZMTP 3.1
    greeting[11] = 1;
    greeting.replace(12, 4, "NULL");
    std::string ready = std::string("\x05READY") + "\x0bSocket-Type" +
                        std::string("\0\0\0\x06", 4) + "DEALER";
    std::string command = std::string("\x04") + static_cast<char>(ready.size()) + ready;
    connected_ = connected_ && SendAll(greeting + command);
  }
  ~ZmtpPeer() {
    if (fd_ >= 0) close(fd_);
  }
  bool connected() const { return connected_; }
  // Declares one frame of `size` bytes (the last of its message).
  bool DeclareFrame(uint64_t size) {
    std::string header(9, '\0');
    header[0] = 0x02;  // long frame, no more frames
    for (int i = 0; i < 8; ++i) header[1 + i] = static_cast<char>(size >> (56 - 8 * i));
    return SendAll(header);
  }
  // Sends up to `n` bytes of frame body; returns how many the kernel took before an error.
  size_t SendBody(size_t n) {
    const std::string chunk(1 << 20, 'x');
    size_t sent = 0;
    while (sent < n) {
      ssize_t k = send(fd_, chunk.data(), std::min(chunk.size(), n - sent), MSG_NOSIGNAL);
      if (k <= 0) break;
      sent += static_cast<size_t>(k);
    }
    return sent;
  }
  // True once the other side closed the connection (reads what it sent until then).
  bool ClosedWithin(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    char buf[4096];
    while (Clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      ssize_t k = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR)) return true;
    }
    return false;
  }

 private:
  bool SendAll(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t k = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (k <= 0) return false;
      off += static_cast<size_t>(k);
    }
    return true;
  }
  int fd_ = -1;
  bool connected_ = false;
};

int64_t VmRssKiB(pid_t pid) {
  std::istringstream in(ReadText("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return -1;
}

// A peer that declares a 1 GiB message and starts sending it is dropped at the header, before
// herd-ctld holds its bytes; herd-ctld keeps serving.
TEST(TransportLimitTest, FrameOverTheMessageLimitIsDroppedBeforeItsBytesAreHeld) {
  auto started = LocalCluster::Start({"", {"none"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  const pid_t ctld = static_cast<pid_t>(std::atol(ReadText(c.dir() + "/ctld.pid").c_str()));
  ASSERT_GT(ctld, 0);
  const int64_t rss_before = VmRssKiB(ctld);
  ASSERT_GT(rss_before, 0);

  ZmtpPeer peer(c.ControllerEndpoint());
  ASSERT_TRUE(peer.connected());
  ASSERT_TRUE(peer.DeclareFrame(uint64_t{1} << 30));
  peer.SendBody(64 << 20);
  EXPECT_TRUE(peer.ClosedWithin(std::chrono::seconds(5)))
      << "herd-ctld still holds the connection of a peer sending a 1 GiB message";
  const int64_t grown_kib = VmRssKiB(ctld) - rss_before;
  EXPECT_LT(grown_kib, 24 << 10) << "herd-ctld's memory grew by " << grown_kib << " KiB";
  CommandResult jobs = c.Herd("jobs");
  EXPECT_EQ(jobs.exit_code, 0) << jobs.err << c.log_tail();
}

// A peer that starts a message within the limit and stops sending is dropped, with its partial
// message, once message_timeout passes.
TEST(TransportLimitTest, PartialMessageIsDroppedAfterTheMessageTimeout) {
  auto started = LocalCluster::Start({"[controller]\nmessage_timeout = \"1s\"\n", {"none"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  ZmtpPeer peer(c.ControllerEndpoint());
  ASSERT_TRUE(peer.connected());
  ASSERT_TRUE(peer.DeclareFrame(4 << 20));
  ASSERT_EQ(peer.SendBody(1 << 20), size_t{1} << 20);
  EXPECT_TRUE(peer.ClosedWithin(std::chrono::seconds(6)))
      << "herd-ctld still holds a partial message after 6 s";
  // Idle clients that stay connected answer the transport's pings and are not dropped.
  CommandResult jobs = c.Herd("jobs");
  EXPECT_EQ(jobs.exit_code, 0) << jobs.err << c.log_tail();
}

// ---- an unprivileged attacker against the bounds of herd-ctld's transport ----

// The shell command that runs zmtp_attacker ARGS against `c`'s herd-ctld as nobody (from a copy
// in the cluster directory: the build tree may be closed to nobody), or as this user when that
// needs root or setpriv that are missing (said on stdout).
std::string AttackerCommand(const LocalCluster& c, const std::string& args) {
  const std::string copy = c.dir() + "/zmtp-attacker";
  if (access(copy.c_str(), X_OK) != 0) {
    RunShell("install -m 0755 " + BinDir() + "/zmtp_attacker " + copy);
  }
  std::string as;
  if (geteuid() == 0 && RunShell("command -v setpriv").exit_code == 0) {
    chmod(c.dir().c_str(), 0755);
    as = "setpriv --reuid=" + std::to_string(kNobody) + " --regid=" + std::to_string(kNobody) +
         " --clear-groups ";
  } else {
    std::cout << "the attacker runs as this user, not nobody (that needs root and setpriv)\n";
  }
  const std::string endpoint = c.ControllerEndpoint();  // tcp://127.0.0.1:PORT
  const std::string port = endpoint.substr(endpoint.rfind(':') + 1);
  const size_t space = args.find(' ');
  return "cd / && " + as + copy + " " + args.substr(0, space) + " 127.0.0.1 " + port +
         (space == std::string::npos ? "" : args.substr(space));
}

pid_t ControllerPid(const LocalCluster& c) {
  return static_cast<pid_t>(std::atol(ReadText(c.dir() + "/ctld.pid").c_str()));
}

// Runs `command` while sampling herd-ctld's VmRSS; returns its result and the peak growth (KiB).
// The sampling interval only spaces samples: the attacker's exit is what is waited for.
std::pair<CommandResult, int64_t> RunWatchingRss(pid_t ctld, const std::string& command) {
  const int64_t before = VmRssKiB(ctld);
  std::atomic<bool> done{false};
  CommandResult result;
  std::thread attacker([&] {
    result = RunShell(command);
    done = true;
  });
  int64_t peak = before;
  while (!done) {
    peak = std::max(peak, VmRssKiB(ctld));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  attacker.join();
  return {result, std::max(peak, VmRssKiB(ctld)) - before};
}

// A peer that never ends its message: frames marked MORE, without authenticating. herd-ctld holds
// at most one max_message_size (all frames together) and kMaxFramesPerMessage frames of it, then
// disconnects the peer, and serves everyone else as before.
void ExpectFramesMarkedMoreAreCutOff(long count, long size) {
  auto started = LocalCluster::Start({"", {"none"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  const pid_t ctld = ControllerPid(c);
  ASSERT_GT(ctld, 0);
  ASSERT_GT(VmRssKiB(ctld), 0);
  auto [attack, grown_kib] = RunWatchingRss(
      ctld, AttackerCommand(c, "frames " + std::to_string(count) + " " + std::to_string(size)));
  std::cout << "attacker: " << attack.out;
  EXPECT_EQ(attack.exit_code, 0) << "herd-ctld did not disconnect the peer: " << attack.out
                                 << attack.err << c.log_tail();
  EXPECT_LT(grown_kib, 48 << 10) << "herd-ctld's memory grew by " << grown_kib << " KiB";
  auto id = c.Submit("-- true");
  EXPECT_TRUE(id.ok()) << id.status().message() << c.log_tail();
}

TEST(TransportLimitTest, UnprivilegedPeerSending4MiBFramesMarkedMoreIsCutOff) {
  ExpectFramesMarkedMoreAreCutOff(100, 4 << 20);
}

TEST(TransportLimitTest, UnprivilegedPeerSendingAMillionEmptyFramesMarkedMoreIsCutOff) {
  ExpectFramesMarkedMoreAreCutOff(1'000'000, 0);
}

// Connections that each send half a greeting and hold it: herd-ctld keeps at most
// max_connections, gives the oldest unfinished handshake's place to each new connection, and a
// client still gets in while the attacker holds them.
TEST(TransportLimitTest, HalfGreetingsOfAnUnprivilegedPeerCannotTakeEveryConnection) {
  constexpr int kMaxConnections = 32;
  constexpr int kAttempts = 300;
  auto started = LocalCluster::Start(
      {"[controller]\nmax_connections = " + std::to_string(kMaxConnections) + "\n", {"none"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  const pid_t ctld = ControllerPid(c);
  ASSERT_GT(ctld, 0);
  const std::string fifo = c.dir() + "/attacker.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0666), 0) << std::strerror(errno);
  chmod(fifo.c_str(), 0666);
  const std::string command =
      AttackerCommand(c, "halfgreet " + std::to_string(kAttempts) + " " +
                             std::to_string(kMaxConnections) + " " + fifo);
  FILE* attacker = popen(command.c_str(), "r");
  ASSERT_NE(attacker, nullptr);
  char line[256] = {};
  // The attacker reports once herd-ctld has closed all but kMaxConnections (or 10 s passed), and
  // then holds what is left until the FIFO is opened.
  const bool reported = fgets(line, sizeof line, attacker) != nullptr;
  std::cout << "attacker: " << line;
  int sockets = 0;
  const std::string fds = "/proc/" + std::to_string(ctld) + "/fd";
  for (const auto& fd : std::filesystem::directory_iterator(fds)) {
    std::error_code ec;
    if (std::filesystem::read_symlink(fd.path(), ec).string().starts_with("socket:")) ++sockets;
  }
  auto id = c.Submit("-- true");  // while the attacker's connections are held
  const int release = open(fifo.c_str(), O_WRONLY);
  if (release >= 0) close(release);
  const int status = pclose(attacker);
  EXPECT_TRUE(reported);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "herd-ctld kept more than " << kMaxConnections << " half-open handshakes: " << line;
  // Its own sockets beside the peers': listeners, munged, logging.
  EXPECT_LE(sockets, kMaxConnections + 8) << "herd-ctld holds " << sockets << " sockets";
  EXPECT_TRUE(id.ok()) << id.status().message() << c.log_tail();
}

// Unprivileged peers that each hold a partial message of 15 MiB, 300 MiB together: more than
// herd-ctld's budget for all partial messages (256 MiB). herd-ctld drops the largest holders
// rather than stop reading everyone, so `herd submit` and herd-noded go on working meanwhile.
TEST(TransportLimitTest, PartialMessagesOfUnprivilegedPeersOverTheBudgetDoNotStopClients) {
  constexpr int kHolders = 20;
  auto started = LocalCluster::Start({});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  const std::string fifo = c.dir() + "/holder.fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0666), 0) << std::strerror(errno);
  chmod(fifo.c_str(), 0666);
  FILE* attacker = popen(AttackerCommand(c, "hold " + std::to_string(kHolders) + " " +
                                                std::to_string(15 << 20) + " " + fifo)
                             .c_str(),
                         "r");
  ASSERT_NE(attacker, nullptr);
  char line[256] = {};
  const bool reported = fgets(line, sizeof line, attacker) != nullptr;
  std::cout << "attacker: " << line;
  // While the attacker holds what herd-ctld left open.
  const auto start = std::chrono::steady_clock::now();
  auto id = c.Submit("-- true");
  const std::string state = id.ok() ? c.WaitForEnd(*id, std::chrono::seconds(30)) : "";
  const auto took = std::chrono::steady_clock::now() - start;
  const int release = open(fifo.c_str(), O_WRONLY);
  if (release >= 0) close(release);
  pclose(attacker);
  EXPECT_TRUE(reported);
  ASSERT_TRUE(id.ok()) << id.status().message() << c.log_tail();
  EXPECT_EQ(state, "COMPLETED") << c.log_tail();
  EXPECT_LT(took, std::chrono::seconds(20)) << "the job took "
      << std::chrono::duration_cast<std::chrono::seconds>(took).count() << " s";
}

}  // namespace
}  // namespace herd::testing
