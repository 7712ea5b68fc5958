#include "common/model/fleet.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace herd::model {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(GpuTypeTest, DefaultTypeIsAShortLowerCaseNameFromTheModel) {
  EXPECT_EQ(DefaultGpuType("NVIDIA A100-SXM4-40GB"), "a100");
  EXPECT_EQ(DefaultGpuType("NVIDIA A100-PCIE-40GB"), "a100");
  EXPECT_EQ(DefaultGpuType("NVIDIA H100 80GB HBM3"), "h100");
  EXPECT_EQ(DefaultGpuType("Tesla V100-SXM2-16GB"), "v100");
  EXPECT_EQ(DefaultGpuType("NVIDIA GeForce RTX 4090"), "rtx4090");
  EXPECT_EQ(DefaultGpuType("NVIDIA RTX A6000"), "rtxa6000");
  EXPECT_EQ(DefaultGpuType("NVIDIA L40S"), "l40s");
  EXPECT_EQ(DefaultGpuType("AMD Instinct MI250X"), "mi250x");
  EXPECT_EQ(DefaultGpuType(""), "gpu");
  EXPECT_EQ(DefaultGpuType("Mystery Accelerator"), "gpu");
}

TEST(GpuTypeTest, ConfiguredTypesWinExactlyThenIgnoringCase) {
  const GpuTypeRules rules = {{"a6000", {"NVIDIA RTX A6000"}}, {"big", {"NVIDIA H100 80GB HBM3"}}};
  EXPECT_EQ(GpuTypeOf("NVIDIA RTX A6000", rules), "a6000");
  EXPECT_EQ(GpuTypeOf("nvidia rtx a6000", rules), "a6000");
  EXPECT_EQ(GpuTypeOf("NVIDIA H100 80GB HBM3", rules), "big");
  EXPECT_EQ(GpuTypeOf("NVIDIA A100-SXM4-40GB", rules), "a100");
}

TEST(HostListTest, ExpandsSlurmRangesKeepingTheirPadding) {
  EXPECT_THAT(*ExpandHostList("ws[01-03,07],gpu1"), ElementsAre("ws01", "ws02", "ws03", "ws07", "gpu1"));
  EXPECT_THAT(*ExpandHostList("r[1-2]n[8-9]"), ElementsAre("r1n8", "r1n9", "r2n8", "r2n9"));
  EXPECT_THAT(*ExpandHostList("dgx*"), ElementsAre("dgx*"));
  for (const char* bad : {"ws[", "ws[3-1]", "ws[]", "ws]", "ws[a-b]", ""}) {
    EXPECT_FALSE(ExpandHostList(bad).ok()) << bad;
  }
  EXPECT_THAT(ExpandHostList("n[0-99999999]").status().message(), HasSubstr("invalid host list"));
}

TEST(NodeFilterTest, PoolConstraintsListAndExclusionsMustAllHold) {
  const std::map<std::string, std::string> r1{{"rack", "r1"}, {"pool", "train"}};
  NodeFilter f;
  EXPECT_FALSE(f.Restricts());
  EXPECT_TRUE(f.Matches("any", {}));
  f.pool = LabelPool("train");
  EXPECT_TRUE(f.Matches("dgx01", r1));
  EXPECT_FALSE(f.Matches("ws01", {{"rack", "r1"}}));
  f.constraints = {{"rack", "r1"}};
  f.nodelist = {"dgx*"};
  EXPECT_TRUE(f.Matches("dgx01", r1));
  EXPECT_FALSE(f.Matches("node1", r1));
  f.exclude = {"dgx01"};
  EXPECT_FALSE(f.Matches("dgx01", r1));
  EXPECT_TRUE(f.Matches("dgx02", r1));
}

TEST(NodeFilterTest, ConstraintsParseAsKeyValuePairs) {
  EXPECT_EQ(*ParseConstraints("rack=r1,ib=yes"),
            (std::map<std::string, std::string>{{"ib", "yes"}, {"rack", "r1"}}));
  EXPECT_FALSE(ParseConstraints("rack").ok());
  EXPECT_FALSE(ParseConstraints("=x").ok());
  EXPECT_FALSE(ParseConstraints("rack=").ok());
}

}  // namespace
}  // namespace herd::model
