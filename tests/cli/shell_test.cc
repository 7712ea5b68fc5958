// SplitLine: the interactive shell's word splitter (cli/shell.h).
#include "cli/shell.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herd::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Split(std::string_view line) {
  auto words = SplitLine(line);
  EXPECT_TRUE(words.ok()) << words.status().message();
  return words.ok() ? *words : std::vector<std::string>{};
}

TEST(ShellSplitLineTest, SplitsOnBlanks) {
  EXPECT_THAT(Split("  jobs   --me\t-a "), ElementsAre("jobs", "--me", "-a"));
  EXPECT_THAT(Split(""), IsEmpty());
  EXPECT_THAT(Split("   "), IsEmpty());
}

TEST(ShellSplitLineTest, QuotesKeepBlanksAndJoinAdjacentParts) {
  EXPECT_THAT(Split("submit -n 'my job' -- sh -c \"echo $HOME\""),
              ElementsAre("submit", "-n", "my job", "--", "sh", "-c", "echo $HOME"));
  EXPECT_THAT(Split("a'b c'\"d\"e"), ElementsAre("ab cde"));
  EXPECT_THAT(Split("'' \"\""), ElementsAre("", ""));
}

TEST(ShellSplitLineTest, BackslashEscapes) {
  EXPECT_THAT(Split(R"(a\ b "q\"x\\y" 'no\escape' "keep\n")"),
              ElementsAre("a b", "q\"x\\y", "no\\escape", "keep\\n"));
}

TEST(ShellSplitLineTest, UnterminatedQuoteIsAnError) {
  EXPECT_FALSE(SplitLine("echo 'oops").ok());
  EXPECT_FALSE(SplitLine("echo \"oops").ok());
  EXPECT_FALSE(SplitLine("echo oops\\").ok());
}

}  // namespace
}  // namespace herd::cli
