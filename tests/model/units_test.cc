#include "common/model/units.h"

#include "common/model/job.h"
#include "gtest/gtest.h"

namespace herd::model {
namespace {

TEST(UnitsTest, DurationsInEveryFormUsersType) {
  EXPECT_EQ(*ParseDurationSeconds("90"), 90);
  EXPECT_EQ(*ParseDurationSeconds("90s"), 90);
  EXPECT_EQ(*ParseDurationSeconds("15m"), 900);
  EXPECT_EQ(*ParseDurationSeconds("2h"), 7200);
  EXPECT_EQ(*ParseDurationSeconds("1d"), 86400);
  EXPECT_EQ(*ParseDurationSeconds("1h30m"), 5400);
  EXPECT_EQ(*ParseDurationSeconds("1-02:00:00"), 93600);
  EXPECT_EQ(*ParseDurationSeconds("02:30:00"), 9000);
  EXPECT_EQ(*ParseDurationSeconds("30:00"), 1800);
  EXPECT_EQ(FormatDuration(5400), "1h30m");
  EXPECT_EQ(FormatDuration(0), "0s");
}

TEST(UnitsTest, BadDurationsSayWhatIsExpected) {
  for (const char* bad : {"", "x", "1h30", "-5m", "0", "1:60", "1:2:3:4", "5y"}) {
    auto r = ParseDurationSeconds(bad);
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_NE(ParseDurationSeconds("abc").status().message().find("90s, 15m"), std::string::npos);
}

TEST(UnitsTest, HugeNumbersAreRefusedNotOverflowed) {
  EXPECT_FALSE(ParseDurationSeconds("99999999999w").ok());
  EXPECT_FALSE(ParseDurationSeconds("1099511627775w1099511627775w").ok());
  EXPECT_FALSE(ParseDurationSeconds("99999999999999-00:00:00").ok());
  EXPECT_FALSE(ParseSizeMiB("9999999999999T").ok());
}

TEST(UnitsTest, Sizes) {
  EXPECT_EQ(*ParseSizeMiB("512M"), 512);
  EXPECT_EQ(*ParseSizeMiB("10G"), 10240);
  EXPECT_EQ(*ParseSizeMiB("1.5G"), 1536);
  EXPECT_EQ(*ParseSizeMiB("1T"), 1048576);
  EXPECT_EQ(*ParseSizeMiB("1024"), 1024);
  EXPECT_EQ(*ParseSizeMiB("10GiB"), 10240);
  EXPECT_FALSE(ParseSizeMiB("ten").ok());
  EXPECT_FALSE(ParseSizeMiB("-1G").ok());
  EXPECT_EQ(FormatSizeMiB(10240), "10G");
  EXPECT_EQ(FormatSizeMiB(1536), "1.5G");
  EXPECT_EQ(FormatSizeMiB(512), "512M");
}

TEST(UnitsTest, GpuCountsAreWholeOrAShareOfOne) {
  EXPECT_EQ(*ParseGpuMilli("2"), 2000);
  EXPECT_EQ(*ParseGpuMilli("0.25"), 250);
  EXPECT_EQ(*ParseGpuMilli(".5"), 500);
  EXPECT_FALSE(ParseGpuMilli("-1").ok());
  EXPECT_FALSE(ParseGpuMilli("0.0001").ok());
  auto r = ParseGpuMilli("1.5");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("ask for 1 or 2"), std::string::npos);
  EXPECT_EQ(FormatGpuMilli(250), "0.25");
  EXPECT_EQ(FormatGpuMilli(2000), "2");
}

TEST(JobStateTest, NamesRoundTripAndTerminalStatesAreFinal) {
  for (int i = 0; i <= static_cast<int>(JobState::kNodeFail); ++i) {
    auto s = static_cast<JobState>(i);
    EXPECT_EQ(ParseJobState(JobStateName(s)), s);
  }
  EXPECT_EQ(ParseJobState("running"), JobState::kRunning);
  EXPECT_FALSE(ParseJobState("nope").has_value());
  EXPECT_TRUE(IsTerminal(JobState::kCompleted));
  EXPECT_FALSE(IsTerminal(JobState::kPending));
  EXPECT_TRUE(HoldsResources(JobState::kSuspended));
}

}  // namespace
}  // namespace herd::model
