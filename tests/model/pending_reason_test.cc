// Pending reasons: one name per code, one sentence per code made from its parameters.
#include "common/model/pending_reason.h"

#include <set>

#include "gtest/gtest.h"

namespace herd::model {
namespace {

TEST(PendingReasonTest, EveryCodeHasOneNameThatParsesBackAndASentence) {
  std::set<std::string> names;
  for (int i = 0; i <= static_cast<int>(ReasonCode::kRoomBeingMade); ++i) {
    const auto code = static_cast<ReasonCode>(i);
    const std::string name = ReasonCodeName(code);
    EXPECT_EQ(ParseReasonCode(name), code) << name;
    EXPECT_TRUE(names.insert(name).second) << name;
    EXPECT_FALSE(ReasonText({.code = code}).empty()) << name;
    EXPECT_NE(WaitsForOf(code), WaitsFor::kNothing) << name;
  }
  EXPECT_FALSE(ParseReasonCode("waiting").has_value());
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
