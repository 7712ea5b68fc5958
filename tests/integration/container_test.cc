// Container jobs: their own rootfs, and host paths only where the admin allows.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

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

}  // namespace
}  // namespace herd::testing
