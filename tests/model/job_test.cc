// Job states and what a pending job waits for: each code has one name that parses back.
#include "common/model/job.h"

#include "gtest/gtest.h"

namespace herd::model {
namespace {

TEST(WaitsForTest, EveryCodeHasOneNameThatParsesBack) {
  for (int i = 0; i <= static_cast<int>(WaitsFor::kNode); ++i) {
    const auto code = static_cast<WaitsFor>(i);
    const std::string name = WaitsForName(code);
    EXPECT_EQ(ParseWaitsFor(name), code) << name;
    EXPECT_EQ(name.empty(), code == WaitsFor::kNothing) << i;
  }
  EXPECT_STREQ(WaitsForName(WaitsFor::kBeginTime), "begin time");
  EXPECT_FALSE(ParseWaitsFor("quota exceeded").has_value());
}

}  // namespace
}  // namespace herd::model
