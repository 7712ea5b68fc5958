#include "noded/runtime/nvidia.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fstream>

#include "gtest/gtest.h"

namespace herd::runtime {
namespace {

TEST(GpuPassthroughTest, HostWithoutTheDriverPassesNothing) {
  GpuPassthrough p = FindGpuPassthrough({0, 1}, "/nonexistent-dev", {"/nonexistent-lib"});
  EXPECT_TRUE(p.devices.empty());
  EXPECT_TRUE(p.libraries.empty());
}

TEST(GpuPassthroughTest, OnlyTheJobsGpusAndTheDriverFilesArePassed) {
  if (getuid() != 0) GTEST_SKIP() << "mknod of test device nodes needs root";
  char tmpl[] = "/tmp/herd-nvidia.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, dev = dir + "/dev", lib = dir + "/lib";
  mkdir(dev.c_str(), 0755);
  mkdir(lib.c_str(), 0755);
  // Device numbers as NVIDIA's driver uses them: 195:N per GPU, 195:255 for nvidiactl.
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(mknod((dev + "/nvidia" + std::to_string(i)).c_str(), S_IFCHR | 0666, makedev(195, i)), 0);
  }
  ASSERT_EQ(mknod((dev + "/nvidiactl").c_str(), S_IFCHR | 0666, makedev(195, 255)), 0);
  for (const char* f : {"libcuda.so.535.104.05", "libnvidia-ml.so.1", "libz.so.1"}) {
    std::ofstream(lib + "/" + f) << "";
  }
  GpuPassthrough p = FindGpuPassthrough({1, 3}, dev, {lib});
  ASSERT_EQ(p.devices.size(), 3u);
  EXPECT_EQ(p.devices[0].path, "/dev/nvidia1");
  EXPECT_EQ(p.devices[0].minor, 1);
  EXPECT_EQ(p.devices[1].path, "/dev/nvidia3");
  EXPECT_EQ(p.devices[2].path, "/dev/nvidiactl");
  EXPECT_EQ(p.devices[2].major, 195);
  ASSERT_EQ(p.libraries.size(), 2u) << "only the driver's libraries";
  EXPECT_EQ(p.libraries[0], lib + "/libcuda.so.535.104.05");
  EXPECT_EQ(p.libraries[1], lib + "/libnvidia-ml.so.1");
  EXPECT_TRUE(FindGpuPassthrough({}, dev, {lib}).devices.empty()) << "a CPU job gets no GPU";
  system(("rm -rf " + dir).c_str());
}

TEST(RdmaDevicesTest, EveryCharDeviceUnderInfinibandIsFound) {
  if (getuid() != 0) GTEST_SKIP() << "mknod of test device nodes needs root";
  EXPECT_TRUE(FindRdmaDevices("/nonexistent-dev").empty());
  char tmpl[] = "/tmp/herd-rdma.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  mkdir((dir + "/infiniband").c_str(), 0755);
  ASSERT_EQ(mknod((dir + "/infiniband/uverbs0").c_str(), S_IFCHR | 0666, makedev(231, 192)), 0);
  std::ofstream(dir + "/infiniband/not-a-device") << "";
  std::vector<DeviceNode> found = FindRdmaDevices(dir);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].path, "/dev/infiniband/uverbs0");
  EXPECT_EQ(found[0].major, 231);
  EXPECT_EQ(found[0].minor, 192);
  system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace herd::runtime
