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

// Scanning for {name} is linear: megabytes of '{' with no '}' (or of names never closed) take
// no longer than copying them, and a command's size is known before it is built.
TEST(SweepTest, SubstitutionIsLinearAndItsSizeIsKnownBeforehand) {
  const Point point = {{"a", std::string(1 << 20, 'v')}};
  for (const std::string& arg : {std::string(8 << 20, '{'), [] {
                                   std::string s;
                                   while (s.size() < (8u << 20)) s += "{aaaaaaa";
                                   return s;
                                 }()}) {
    auto argv = SubstituteSweep({arg}, point);
    ASSERT_TRUE(argv.ok()) << argv.status().message();
    EXPECT_EQ(argv->front(), arg);
    EXPECT_EQ(SweepCommandBytes({arg}, point).value(), arg.size());
  }
  const std::vector<std::string> many(1'000'000, "{a}");
  EXPECT_EQ(SweepCommandBytes(many, point).value(), size_t{1'000'000} << 20);
  EXPECT_EQ(SweepCommandBytes({"x{a}${a}{b}"}, point).status().ok(), false);
  EXPECT_EQ(SweepCommandBytes({"x{a}${a}"}, point).value(), 1 + (1u << 20) + 4);
}

}  // namespace
}  // namespace herd::model
