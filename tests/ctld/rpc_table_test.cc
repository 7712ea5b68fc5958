// herd-ctld's one table of messages (ctld/rpc/): every family's routes are in it once, found by
// their type, and who may send each message is what the protocol promises.
#include <map>
#include <set>
#include <string>

#include "common/proto/codec.h"
#include "ctld/rpc/rpc.h"
#include "gtest/gtest.h"

namespace herd::ctld::rpc {
namespace {

TEST(RpcTableTest, EveryRouteIsFoundByItsTypeOnce) {
  std::set<std::string> types;
  for (const Route& r : AllRoutes()) {
    EXPECT_TRUE(types.insert(r.type).second) << r.type << " has two routes";
    const Route* found = FindRoute(r.type);
    ASSERT_NE(found, nullptr) << r.type;
    EXPECT_EQ(found->handle, r.handle) << r.type;
    EXPECT_NE(r.handle, nullptr) << r.type;
  }
  EXPECT_EQ(FindRoute("no_such_message"), nullptr);
  EXPECT_EQ(FindRoute(""), nullptr);
}

// Who may send each message: a route that widens it (a node message any user may send, an admin
// action for every user) fails here before it ships.
TEST(RpcTableTest, WhoMaySendEachMessage) {
  using proto::MessageName;
  const std::map<std::string, Caller> expected = {
      {MessageName<proto::SubmitRequest>(), Caller::kUser},
      {MessageName<proto::JobsRequest>(), Caller::kUser},
      {MessageName<proto::JobActionRequest>(), Caller::kUser},
      {MessageName<proto::UpdateJobRequest>(), Caller::kUser},
      {MessageName<proto::LogsRequest>(), Caller::kUser},
      {MessageName<proto::SessionWhereRequest>(), Caller::kUser},
      {MessageName<proto::ConnectionKeyRequest>(), Caller::kUser},
      {MessageName<proto::NodesRequest>(), Caller::kUser},
      {MessageName<proto::ProjectsRequest>(), Caller::kUser},
      {MessageName<proto::WhyRequest>(), Caller::kUser},
      {MessageName<proto::UsageRequest>(), Caller::kUser},
      {MessageName<proto::StatsRequest>(), Caller::kUser},
      {MessageName<proto::WebTokenRequest>(), Caller::kUser},
      {MessageName<proto::WebRelay>(), Caller::kWeb},
      {MessageName<proto::HistoryRequest>(), Caller::kUser},
      {MessageName<proto::AdminRequest>(), Caller::kAdmin},
      {MessageName<proto::RegisterRequest>(), Caller::kNode},
      {MessageName<proto::Heartbeat>(), Caller::kNode},
      {MessageName<proto::JobEvent>(), Caller::kNode},
      {MessageName<proto::LogsData>(), Caller::kNode},
  };
  std::map<std::string, Caller> actual;
  for (const Route& r : AllRoutes()) actual[r.type] = r.caller;
  EXPECT_EQ(actual, expected);
}

}  // namespace
}  // namespace herd::ctld::rpc
