// CheckWebUser (ctld/controller.h): herd-ctld refuses a [web] user with rights
// beyond its own, since every request a compromised herd-web makes for itself
// would carry them.
#include <pwd.h>

#include "common/proto/codec.h"
#include "ctld/controller.h"
#include "gtest/gtest.h"

namespace herd::ctld {
namespace {

constexpr uint32_t kCtldUid = 4242;  // herd-ctld's own uid in these cases

config::Config WebUser(const std::string& user, std::vector<std::string> admins = {}) {
  config::Config c;
  c.web.user = user;
  c.admins = std::move(admins);
  return c;
}

TEST(CheckWebUserTest, RootHerdCtldsOwnUserAndAdminsAreRefused) {
  const struct passwd* daemon = getpwnam("daemon");
  if (daemon == nullptr) GTEST_SKIP() << "no user named daemon on this host";
  const uint32_t daemon_uid = daemon->pw_uid;

  EXPECT_TRUE(CheckWebUser(WebUser(""), kCtldUid).ok());
  EXPECT_TRUE(CheckWebUser(WebUser("daemon"), kCtldUid).ok());
  EXPECT_TRUE(CheckWebUser(WebUser("daemon", {"root", "nobody"}), kCtldUid).ok());

  Status root = CheckWebUser(WebUser("root"), kCtldUid);
  EXPECT_EQ(root.code(), Code::kInvalid);
  EXPECT_NE(root.message().find("is root (uid 0)"), std::string::npos) << root.message();
  EXPECT_NE(root.message().find("[web] user"), std::string::npos) << root.message();

  Status self = CheckWebUser(WebUser("daemon"), daemon_uid);
  EXPECT_EQ(self.code(), Code::kInvalid);
  EXPECT_NE(self.message().find("herd-ctld's own user"), std::string::npos) << self.message();

  Status admin = CheckWebUser(WebUser("daemon", {"nobody", "daemon"}), kCtldUid);
  EXPECT_EQ(admin.code(), Code::kInvalid);
  EXPECT_NE(admin.message().find("is an admin"), std::string::npos) << admin.message();
}

// herd-web relays exactly what its REST API sends: nothing else passes, even
// with a valid token.
TEST(CheckRelayableTest, OnlyTheRequestsTheRestApiSendsPass) {
  using proto::EncodeBody;
  using proto::MessageName;
  EXPECT_TRUE(CheckRelayable(MessageName<proto::JobsRequest>(), "").ok());
  EXPECT_TRUE(CheckRelayable(MessageName<proto::SubmitRequest>(), "").ok());
  EXPECT_TRUE(CheckRelayable(MessageName<proto::UsageRequest>(), "").ok());
  // The dashboard's charts and node colours: public facts, as `herd history` and /metrics give.
  EXPECT_TRUE(CheckRelayable(MessageName<proto::HistoryRequest>(), "").ok());
  EXPECT_TRUE(CheckRelayable(MessageName<proto::StatsRequest>(), "").ok());
  // The job page's buttons and log tail, each on a named job.
  for (const char* action : {"cancel", "hold", "release"}) {
    proto::JobActionRequest named{action, {7}};
    EXPECT_TRUE(CheckRelayable(MessageName<proto::JobActionRequest>(), EncodeBody(named)).ok())
        << action;
  }
  proto::LogsRequest logs{7, 0, 0, 65536, "stdout", true};
  EXPECT_TRUE(CheckRelayable(MessageName<proto::LogsRequest>(), EncodeBody(logs)).ok());
  Status unnamed =
      CheckRelayable(MessageName<proto::LogsRequest>(), EncodeBody(proto::LogsRequest{}));
  EXPECT_EQ(unnamed.code(), Code::kInvalid);
  EXPECT_NE(unnamed.message().find("named job"), std::string::npos) << unnamed.message();
  EXPECT_FALSE(CheckRelayable(MessageName<proto::LogsRequest>(), "\xc1").ok());
  for (std::string_view type :
       {MessageName<proto::UpdateJobRequest>(), MessageName<proto::WebTokenRequest>(),
        MessageName<proto::WebRelay>(), MessageName<proto::AdminRequest>(),
        MessageName<proto::ConnectionKeyRequest>(), MessageName<proto::SessionWhereRequest>()}) {
    Status s = CheckRelayable(std::string(type), "");
    EXPECT_EQ(s.code(), Code::kInvalid) << type;
    EXPECT_NE(s.message().find("may not relay"), std::string::npos) << s.message();
  }
  for (const proto::JobActionRequest& other :
       {proto::JobActionRequest{"suspend", {7}}, proto::JobActionRequest{"requeue", {7}},
        proto::JobActionRequest{"resume", {7}}, proto::JobActionRequest{"cancel", {}, {}, "alice"},
        proto::JobActionRequest{"hold", {}, {7}}}) {
    Status s = CheckRelayable(MessageName<proto::JobActionRequest>(), EncodeBody(other));
    EXPECT_EQ(s.code(), Code::kInvalid) << other.action;
    EXPECT_NE(s.message().find("only the cancel, hold or release of named jobs"), std::string::npos)
        << s.message();
  }
  EXPECT_FALSE(CheckRelayable(MessageName<proto::JobActionRequest>(), "\xc1").ok());
}

}  // namespace
}  // namespace herd::ctld
