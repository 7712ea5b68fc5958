// Container jobs: their own rootfs, and host paths only where the admin allows.
#include <stdlib.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace herd::testing {
namespace {

using ::testing::HasSubstr;

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
  RunShell(std::string("rm -rf ") + data);
}

}  // namespace
}  // namespace herd::testing
