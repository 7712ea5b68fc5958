// Pending reasons: one name per code, one sentence per code made from its parameters.
#include "common/model/pending_reason.h"

#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>

#include "gtest/gtest.h"

namespace herd::model {
namespace {

TEST(PendingReasonTest, EveryCodeHasOneNameThatParsesBackAndASentence) {
  std::set<std::string> names;
  for (int i = 0; i <= static_cast<int>(kLastReasonCode); ++i) {
    const auto code = static_cast<ReasonCode>(i);
    const std::string name = ReasonCodeName(code);
    EXPECT_EQ(ParseReasonCode(name), code) << name;
    EXPECT_TRUE(names.insert(name).second) << name;
    EXPECT_FALSE(ReasonText({.code = code}).empty()) << name;
    EXPECT_NE(WaitsForOf(code), WaitsFor::kNothing) << name;
  }
  EXPECT_FALSE(ParseReasonCode("waiting").has_value());
}

// herd-why(1) lists every code's name under the waits_for it belongs to, and nothing else: the
// names are what `herd jobs --json` and `herd why --json` print as reason_code.
TEST(PendingReasonTest, HerdWhyPageListsEveryCodeUnderItsWaitsFor) {
  std::ifstream in(std::string(HERD_SOURCE_DIR) + "/man/herd-why.1");
  const std::string page((std::istreambuf_iterator<char>(in)), {});
  const size_t from = page.find("\n.B reason_code\nnames");
  ASSERT_NE(from, std::string::npos) << "herd-why(1) does not describe reason_code";
  const size_t start = page.find("\n.RS\n", from), end = page.find("\n.RE\n", from);
  ASSERT_TRUE(start != std::string::npos && end != std::string::npos && start < end);
  // .TP, then the waits_for (.B NAME or .B "NAME"), then its codes, comma-separated.
  std::map<std::string, std::string> listed;  // code -> waits_for
  std::istringstream lines(page.substr(start + 5, end - start - 5));
  std::string line, waits_for;
  bool tag = false;
  while (std::getline(lines, line)) {
    if (line == ".TP") {
      tag = true;
    } else if (tag) {
      waits_for = line.substr(line.find(' ') + 1);
      if (waits_for.front() == '"') waits_for = waits_for.substr(1, waits_for.size() - 2);
      tag = false;
    } else {
      std::istringstream codes(line);
      for (std::string code; std::getline(codes >> std::ws, code, ',');) {
        EXPECT_TRUE(listed.emplace(code, waits_for).second) << code << " is listed twice";
      }
    }
  }
  for (int i = 0; i <= static_cast<int>(kLastReasonCode); ++i) {
    const auto code = static_cast<ReasonCode>(i);
    auto it = listed.find(ReasonCodeName(code));
    if (it == listed.end()) {
      ADD_FAILURE() << "herd-why(1) does not list " << ReasonCodeName(code);
      continue;
    }
    EXPECT_EQ(it->second, WaitsForName(WaitsForOf(code))) << it->first;
    listed.erase(it);
  }
  for (const auto& [code, w] : listed) ADD_FAILURE() << "herd-why(1) lists " << code << ", no code";
}

TEST(PendingReasonTest, SentencesQuoteTheirParameters) {
  PendingReason limit{.code = ReasonCode::kLimit, .queue = "vision", .component = 0};
  limit.amount = 4000, limit.used = 3000, limit.need = 2000;
  EXPECT_EQ(ReasonText(limit),
            "project vision is at its limit of 4 GPUs (3 "
            "GPUs in use, job needs 2 GPUs)");
  EXPECT_EQ(WaitsForOf(limit.code), WaitsFor::kQuota);
  limit.department = true;
  EXPECT_EQ(ReasonText(limit).substr(0, 18), "department vision ");

  PendingReason block{.code = ReasonCode::kGpuBlock,
                      .gpu_types = "H100",
                      .need = 4000,
                      .most_free = 3,
                      .workers = 2};
  block.holding = "n1,n2";
  EXPECT_EQ(ReasonText(block),
            "needs 4 GPUs of type H100 on one node per "
            "worker; largest free block is 3 (holding "
            "n1,n2 for it)");
  EXPECT_EQ(WaitsForOf(block.code), WaitsFor::kResources);

  EXPECT_EQ(ReasonText({.code = ReasonCode::kPreemptedJobs, .count = 1}),
            "waiting for 1 preempted job to release resources");
  EXPECT_EQ(ReasonText({.code = ReasonCode::kAfterOk, .target = "array 5"}),
            "waiting for array 5 to complete");
  EXPECT_EQ(WaitsForOf(ReasonCode::kReserved), WaitsFor::kReservation);
}

}  // namespace
}  // namespace herd::model
