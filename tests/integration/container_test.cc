// Container jobs: their own rootfs, host paths only where the admin allows, and images that
// cannot be turned against the node (one that never ends unpacking, one swapped after the check).
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/support/eventually.h"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint32_t kNobody = 65534;
constexpr char kNode[] = "ws01";

std::string WorkstationNode() {
  return std::string(kNode) + "=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml";
}

// Why a test of container images cannot run here, "" when it can.
std::string SkipUnlessImagesCanBeUnpackedAsNobody() {
  if (geteuid() != 0) return "container jobs need root for runc here";
  if (RunShell("command -v runc").exit_code != 0) return "runc is not installed";
  if (RunShell("command -v umoci").exit_code != 0) return "umoci is not installed";
  if (RunShell("command -v setpriv").exit_code != 0) return "setpriv is not installed";
  return "";
}

// Pids of the processes whose command line mentions `needle` (this process aside).
std::vector<pid_t> ProcessesMentioning(const std::string& needle) {
  std::vector<pid_t> found;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return found;
  while (struct dirent* e = readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
    if (pid <= 0 || pid == getpid()) continue;
    std::string cmdline = ReadText("/proc/" + std::string(e->d_name) + "/cmdline");
    for (char& ch : cmdline) {
      if (ch == '\0') ch = ' ';
    }
    if (cmdline.find(needle) != std::string::npos && Alive(pid)) found.push_back(pid);
  }
  closedir(proc);
  return found;
}

// An OCI image layout at `layout` (tag "tiny") whose manifest is a FIFO nobody writes to: umoci
// blocks on it for ever, as it would on a file of a hung network file system. The layout is
// open to every user, so a job of nobody may name it. *fifo: the manifest's path.
Status MakeLayoutThatNeverUnpacks(const std::string& layout, std::string* fifo) {
  CommandResult made = RunShell("umoci init --layout " + layout + " && umoci new --image " +
                                layout + ":tiny && chmod -R a+rX " + layout);
  if (made.exit_code != 0) return Internal("umoci: " + made.out + made.err);
  auto index = nlohmann::json::parse(ReadText(layout + "/index.json"), nullptr, false);
  if (!index.is_object() || index["manifests"].empty()) return Internal("no manifest in index");
  const std::string digest = index["manifests"][0].value("digest", "");
  *fifo = layout + "/blobs/sha256/" + digest.substr(digest.find(':') + 1);
  if (unlink(fifo->c_str()) != 0 || mkfifo(fifo->c_str(), 0644) != 0) {
    return Internal("cannot make " + *fifo + " a FIFO");
  }
  return Status::Ok();
}

// On destruction, lets whoever waits on the FIFO go (it reads end of file), so that no test,
// passed or failed, leaves a process blocked on it.
class FifoReleaser {
 public:
  explicit FifoReleaser(std::string fifo) : fifo_(std::move(fifo)) {}
  ~FifoReleaser() {
    int fd = open(fifo_.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) close(fd);
  }

 private:
  std::string fifo_;
};

TEST(ContainerIntegrationTest, AllowedVolumeIsMountedAndOthersAreRefused) {
  char data[] = "/tmp/herd-vol.XXXXXX";
  ASSERT_NE(mkdtemp(data), nullptr);
  std::ofstream(std::string(data) + "/dataset.txt") << "shared dataset\n";
  auto started = LocalCluster::Start(
      {std::string("[containers]\nallowed_volumes = [\"") + data + "\"]\n",
       {"ws01=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  std::string why;
  std::string rootfs = MakeRootfs(c.dir(), &why);
  if (rootfs.empty()) {
    RunShell(std::string("rm -rf ") + data);
    GTEST_SKIP() << why;
  }
  auto id = c.Submit("--image " + rootfs + " -v " + data + ":/data -- cat /data/dataset.txt");
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(c.WaitForEnd(*id), "COMPLETED") << c.log_tail();
  EXPECT_THAT(c.Herd("logs " + std::to_string(*id)).out, HasSubstr("shared dataset"));

  CommandResult r = c.Herd("submit --image " + rootfs + " -v /etc:/host-etc -- true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("not under a path the admin allows"));
  r = c.Herd("submit -v " + std::string(data) + " -- true");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("needs --image"));

  // A symlink under the allowed path that leads out of it passes herd-ctld's check of the
  // text, but the node resolves it as the job's user and refuses what it resolves to.
  if (RunShell("command -v setpriv").exit_code == 0) {
    chmod(data, 0755);
    ASSERT_EQ(symlink("/root", (std::string(data) + "/escape").c_str()), 0);
    r = c.HerdAs(65534, 65534,
                 "submit -q --image " + rootfs + " -v " + data + "/escape:/x -- ls /x");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const long escape = std::stol(r.out);
    EXPECT_EQ(c.WaitForEnd(escape), "FAILED") << c.log_tail();
    EXPECT_THAT((*c.Show(escape))["reason"].get<std::string>(),
                HasSubstr("resolves to '/root', which is not under a path the admin allows"));
  }
  RunShell(std::string("rm -rf ") + data);
}

// A --chdir is resolved in the container as the job's user: a link in the user's image that
// leads below a volume's closed directory fails the job with the reason, before anything runs.
TEST(ContainerIntegrationTest, ChdirThroughAnImageLinkIntoAVolumeFailsTheJob) {
  if (getuid() != 0 || RunShell("command -v setpriv").exit_code != 0) {
    GTEST_SKIP() << "running a job as nobody needs root and setpriv";
  }
  char data[] = "/tmp/herd-vol.XXXXXX";
  ASSERT_NE(mkdtemp(data), nullptr);
  const std::string vol = std::string(data) + "/vol";
  auto started =
      LocalCluster::Start({std::string("[containers]\nallowed_volumes = [\"") + data + "\"]\n",
                           {"ws01=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  std::string why;
  const std::string rootfs = MakeRootfs(c.dir(), &why);
  if (rootfs.empty()) {
    RunShell(std::string("rm -rf ") + data);
    GTEST_SKIP() << why;
  }
  const std::string image = std::string(data) + "/image.tar";
  CommandResult made =
      RunShell("chmod 755 " + std::string(data) + " && mkdir -p " + vol + "/secret/open && " +
               "echo root-only > " + vol + "/secret/open/private && chmod 700 " + vol +
               "/secret && rmdir " + rootfs + "/work && ln -s /vol/secret/open " + rootfs +
               "/work && tar -cf " + image + " -C " + rootfs + " . && chmod 644 " + image);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  CommandResult r = c.HerdAs(65534, 65534,
                             "submit -q --image " + image + " -v " + vol +
                                 ":/vol --chdir /work -- sh -c 'ls; cat private'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const long id = std::stol(r.out);
  EXPECT_EQ(c.WaitForEnd(id), "FAILED") << c.log_tail();
  EXPECT_THAT((*c.Show(id))["reason"].get<std::string>(),
              HasSubstr("cannot chdir to '/work': Permission denied"));
  const std::string logs = c.Herd("logs " + std::to_string(id)).out;
  EXPECT_THAT(logs, Not(HasSubstr("private")));
  EXPECT_THAT(logs, Not(HasSubstr("root-only")));
  RunShell(std::string("rm -rf ") + data);
}

// An OCI image layout (DIR:TAG), as built by umoci or exported by other tools, runs like a rootfs.
TEST(ContainerIntegrationTest, OciImageLayoutRunsInAContainer) {
  if (RunShell("command -v umoci").exit_code != 0) {
    GTEST_SKIP() << "umoci is not installed (apt-get install umoci, or scripts/install-deps)";
  }
  auto started =
      LocalCluster::Start({"", {"ws01=" + SourceDir() + "/etc/topologies/workstation-4gpu.xml"}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  std::string why;
  const std::string rootfs = MakeRootfs(c.dir(), &why);
  if (rootfs.empty()) GTEST_SKIP() << why;
  // A one-layer image holding the busybox rootfs.
  const std::string layout = c.dir() + "/oci";
  CommandResult built = RunShell("umoci init --layout " + layout + " && umoci new --image " +
                                 layout + ":tiny && umoci insert --image " + layout + ":tiny " +
                                 rootfs + " /");
  ASSERT_EQ(built.exit_code, 0) << built.out << built.err;

  auto id = c.Submit("--image " + layout + ":tiny -- sh -c 'echo hello from $(uname -n)'");
  ASSERT_TRUE(id.ok()) << id.status().message();
  EXPECT_EQ(c.WaitForEnd(*id), "COMPLETED") << c.log_tail();
  EXPECT_THAT(c.Herd("logs " + std::to_string(*id)).out, HasSubstr("hello from"));

  auto bad = c.Submit("--image " + layout + ":missing -- true");
  ASSERT_TRUE(bad.ok()) << bad.status().message();
  EXPECT_EQ(c.WaitForEnd(*bad), "FAILED");
  EXPECT_THAT((*c.Show(*bad))["reason"].get<std::string>(), HasSubstr("cannot unpack OCI image"));
}

// A one-node cluster (extra_toml merged over its herd.toml) and a job of nobody whose image
// never ends unpacking (see MakeLayoutThatNeverUnpacks).
class HungImageTest : public ::testing::Test {
 protected:
  void StartWithHungJob(const std::string& extra_toml) {
    if (std::string why = SkipUnlessImagesCanBeUnpackedAsNobody(); !why.empty()) {
      GTEST_SKIP() << why;
    }
    auto started = LocalCluster::Start({extra_toml, {WorkstationNode()}});
    ASSERT_TRUE(started.ok()) << started.status().message();
    cluster_ = std::move(*started);
    layout_ = cluster_->dir() + "/never";
    std::string fifo;
    ASSERT_TRUE(MakeLayoutThatNeverUnpacks(layout_, &fifo).ok());
    release_ = std::make_unique<FifoReleaser>(fifo);
    CommandResult r =
        cluster_->HerdAs(kNobody, kNobody, "submit -q --image " + layout_ + ":tiny -- true");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    hung_ = std::stol(r.out);
  }
  // Whether no process of the hung job is left (umoci names the layout).
  bool NothingLeft() const { return ProcessesMentioning(layout_).empty(); }

  std::unique_ptr<LocalCluster> cluster_;
  std::string layout_;
  std::unique_ptr<FifoReleaser> release_;  // before cluster_ goes: declared after it
  long hung_ = 0;
};

// A user's image that never ends unpacking holds up only its own job: herd-noded keeps sending
// heartbeats (the node stays UP past node_timeout), starts and ends other jobs meanwhile, and a
// cancel ends the job still starting with nothing of it left running.
TEST_F(HungImageTest, ImageThatNeverEndsUnpackingHoldsUpOnlyItsOwnJob) {
  ASSERT_NO_FATAL_FAILURE(StartWithHungJob("[scheduler]\nnode_timeout = \"3s\"\n"));
  if (IsSkipped()) return;
  const LocalCluster& c = *cluster_;
  // umoci, run by the job's shim, is now blocked on the FIFO.
  ASSERT_TRUE(Eventually(std::chrono::seconds(30), [&] { return !NothingLeft(); })) << c.log_tail();
  const pid_t shim =
      static_cast<pid_t>(std::atol(ReadText(c.JobDir(kNode, hung_) + "/shim.pid").c_str()));
  EXPECT_GT(shim, 0);

  auto other = c.Submit("-- echo other job ran");
  ASSERT_TRUE(other.ok()) << other.status().message();
  EXPECT_EQ(c.WaitForEnd(*other, std::chrono::seconds(20)), "COMPLETED") << c.log_tail();
  EXPECT_THAT(c.Herd("logs " + std::to_string(*other)).out, HasSubstr("other job ran"));

  // Twice node_timeout with the start still hung: the node never goes DOWN. The interval is the
  // test (an absence over time), so this loop waits it out and stops early only on a failure.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(6);
  std::string node_state = "UP";
  while (node_state == "UP" && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    node_state = NodeState(c, kNode);
  }
  EXPECT_EQ(node_state, "UP") << c.log_tail();
  auto shown = c.Show(hung_);
  ASSERT_TRUE(shown.ok());
  EXPECT_EQ((*shown)["state"], "STARTING");

  CommandResult r = c.HerdAs(kNobody, kNobody, "cancel " + std::to_string(hung_));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(c.WaitForEnd(hung_, std::chrono::seconds(20)), "CANCELLED") << c.log_tail();
  EXPECT_TRUE(Eventually(std::chrono::seconds(10), [&] { return NothingLeft() && !Alive(shim); }))
      << "the hung start left processes behind";
}

// [node] start_timeout: a start that takes longer is killed, everything it started with it,
// and the job fails with that reason.
TEST_F(HungImageTest, StartPastStartTimeoutIsKilledAndReportedFailed) {
  ASSERT_NO_FATAL_FAILURE(StartWithHungJob("[node]\nstart_timeout = \"2s\"\n"));
  if (IsSkipped()) return;
  const LocalCluster& c = *cluster_;
  EXPECT_EQ(c.WaitForEnd(hung_, std::chrono::seconds(30)), "FAILED") << c.log_tail();
  EXPECT_THAT((*c.Show(hung_))["reason"].get<std::string>(),
              HasSubstr("did not start within start_timeout (2s)"));
  EXPECT_TRUE(Eventually(std::chrono::seconds(10), [&] { return NothingLeft(); }))
      << "the timed-out start left processes behind";
}

// The tarball herd-shim checked (a regular file the user can read) is the one tar unpacks: one
// put in its place after the check, here the moment the shim opens it, is never read.
TEST(ContainerIntegrationTest, TarballSwappedAfterTheCheckIsNotTheOneUnpacked) {
  if (std::string why = SkipUnlessImagesCanBeUnpackedAsNobody(); !why.empty()) GTEST_SKIP() << why;
  auto started = LocalCluster::Start({"", {WorkstationNode()}});
  ASSERT_TRUE(started.ok()) << started.status().message();
  const LocalCluster& c = **started;
  std::string why;
  const std::string rootfs = MakeRootfs(c.dir(), &why);
  if (rootfs.empty()) GTEST_SKIP() << why;
  const std::string images = c.dir() + "/images";
  CommandResult made = RunShell(
      "mkdir -p " + images + " && echo checked > " + rootfs + "/marker && tar -czf " + images +
      "/image.tar.gz -C " + rootfs + " . && echo swapped > " + rootfs + "/marker && tar -czf " +
      images + "/other.tar.gz -C " + rootfs + " . && chmod -R a+rX " + images);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const std::string image = images + "/image.tar.gz";

  int watch = inotify_init1(IN_CLOEXEC);
  ASSERT_GE(watch, 0);
  ASSERT_GE(inotify_add_watch(watch, image.c_str(), IN_OPEN), 0);
  CommandResult r =
      c.HerdAs(kNobody, kNobody, "submit -q --image " + image + " -- cat /marker");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const long id = std::stol(r.out);
  // Nothing but the job's shim opens the image: at its first open, the swap.
  struct pollfd pfd = {watch, POLLIN, 0};
  ASSERT_EQ(poll(&pfd, 1, 30000), 1) << "the image was never opened\n" << c.log_tail();
  ASSERT_EQ(rename((images + "/other.tar.gz").c_str(), image.c_str()), 0);
  close(watch);

  EXPECT_EQ(c.WaitForEnd(id), "COMPLETED") << c.log_tail();
  const std::string out = c.Herd("logs " + std::to_string(id)).out;
  EXPECT_THAT(out, HasSubstr("checked"));
  EXPECT_THAT(out, Not(HasSubstr("swapped")));
}

}  // namespace
}  // namespace herd::testing
