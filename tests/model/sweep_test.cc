#include "common/model/sweep.h"

#include <gtest/gtest.h>

namespace herd::model {
namespace {

using Point = std::map<std::string, std::string>;

TEST(SweepTest, ProductVariesTheFirstParameterSlowest) {
  auto params = ParseSweep("  lr=1e-3,1e-4\tbs=32,64 ");
  ASSERT_TRUE(params.ok()) << params.status().message();
  EXPECT_EQ(*params, (std::vector<SweepParam>{{"lr", {"1e-3", "1e-4"}}, {"bs", {"32", "64"}}}));
  EXPECT_EQ(SweepPoints(*params),
            (std::vector<Point>{{{"lr", "1e-3"}, {"bs", "32"}},
                                {{"lr", "1e-3"}, {"bs", "64"}},
                                {{"lr", "1e-4"}, {"bs", "32"}},
                                {{"lr", "1e-4"}, {"bs", "64"}}}));
}

TEST(SweepTest, BadSpecsAreRefusedWithAHint) {
  for (const char* text : {"", "lr", "=1", "lr=", "lr=1,,2", "lr=1,", "1x=2", "a-b=1",
                           "lr=1 lr=2", "lr=1 LR=2"}) {
    auto params = ParseSweep(text);
    EXPECT_FALSE(params.ok()) << text;
  }
  EXPECT_EQ(ParseSweep("lr=1 LR=2").status().message(),
            "--sweep: parameter 'LR' is given twice (names are compared without case: each "
            "becomes HERD_SWEEP_LR)");
  std::string big;
  for (char name = 'a'; name <= 'e'; ++name) big += std::string(1, name) + "=1,2,3,4,5,6,7 ";
  EXPECT_NE(ParseSweep(big).status().message().find("over 10000 jobs"), std::string::npos);
}

TEST(SweepTest, SubstitutesPlaceholdersButNotShellVariables) {
  auto argv = SubstituteSweep({"train", "--lr={lr}", "{bs}{bs}", "${lr}", "{not a name}", "{"},
                              {{"lr", "0.1"}, {"bs", "8"}});
  ASSERT_TRUE(argv.ok()) << argv.status().message();
  EXPECT_EQ(*argv, (std::vector<std::string>{"train", "--lr=0.1", "88", "${lr}", "{not a name}",
                                             "{"}));
  auto undefined = SubstituteSweep({"echo", "{epochs}"}, {{"lr", "0.1"}});
  ASSERT_FALSE(undefined.ok());
  EXPECT_NE(undefined.status().message().find("uses {epochs} but the sweep defines only lr"),
            std::string::npos);
  EXPECT_EQ(SweepEnvName("lr_max"), "HERD_SWEEP_LR_MAX");
}

}  // namespace
}  // namespace herd::model
