// Connection keys against a real herd-ctld and munged: an unprivileged user
// (nobody) who opened a key with its own MUNGE credential cannot make herd-ctld
// take a request twice, a request changed after signing, or a request on a
// connection other than the key's; a wrong MAC closes the connection. And
// herd's own client keeps working across a restart of herd-ctld, each request
// applied once.
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <string>

#include "common/auth/auth.h"
#include "common/net/net.h"
#include "common/proto/messages.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace herd::testing {
namespace {

constexpr uint32_t kNobody = 65534;

class ConnectionKeyTest : public SharedClusterTest<ConnectionKeyTest> {
 public:
  static LocalCluster::Options ClusterOptions() {
    LocalCluster::Options o;
    o.nodes = {"none"};
    return o;
  }

 protected:
  // key_attacker MODE against this cluster's herd-ctld, as nobody.
  CommandResult AttackAsNobody(const std::string &mode) {
    const std::string copy = c().dir() + "/key-attacker";
    if (access(copy.c_str(), X_OK) != 0) {
      RunShell("install -m 0755 " + BinDir() + "/key_attacker " + copy);
    }
    c().HerdAs(kNobody, kNobody,
               "nodes");  // opens the cluster directory (and munged) to nobody
    return RunShell("cd / && setpriv --reuid=" + std::to_string(kNobody) +
                    " --regid=" + std::to_string(kNobody) + " --clear-groups " + copy + " " + mode +
                    " " + c().ControllerEndpoint() + " " + c().dir() + "/munge/munge.sock");
  }

  // Jobs of nobody that herd-ctld holds.
  int NobodysJobs() {
    CommandResult r = c().Herd("jobs --all --user nobody --json");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto jobs = nlohmann::json::parse(r.out, nullptr, false);
    return jobs.is_array() ? static_cast<int>(jobs.size()) : -1;
  }

  // Runs the attack `mode` as nobody: herd-ctld must refuse what key_attacker
  // says it must, and nobody must end up with `made` more jobs (the requests it
  // was allowed to make).
  void ExpectRefused(const std::string &mode, int made) {
    const int before = NobodysJobs();
    CommandResult r = AttackAsNobody(mode);
    std::cout << r.out;
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err << c().log_tail();
    EXPECT_EQ(NobodysJobs(), before + made) << "herd-ctld made a job it must have refused";
  }

  void SetUp() override {
    SharedClusterTest::SetUp();
    if (geteuid() != 0 || RunShell("command -v setpriv").exit_code != 0) {
      GTEST_SKIP() << "needs root and setpriv (the attacker runs as nobody)";
    }
  }
};

TEST_F(ConnectionKeyTest, ReplayedKeyedRequestIsRefused) { ExpectRefused("replay", 1); }

TEST_F(ConnectionKeyTest, BodyChangedAfterSigningIsRefused) { ExpectRefused("tamper", 0); }

TEST_F(ConnectionKeyTest, KeyOfOneConnectionIsRefusedOnAnother) { ExpectRefused("cross", 0); }

TEST_F(ConnectionKeyTest, WrongMacIsRefusedAndClosesTheConnection) { ExpectRefused("badmac", 0); }

// herd's client with a key, across a herd-ctld restart: the DEALER reconnects,
// the first keyed request is refused as keyless, sent again after a new key,
// and applied exactly once.
TEST_F(ConnectionKeyTest, ClientOpensANewKeyAfterHerdCtldRestartsAndAppliesEachRequestOnce) {
  auto auth = auth::MakeAuthenticator("munge", c().dir() + "/munge/munge.sock");
  ASSERT_TRUE(auth.ok()) << auth.status().message();
  net::Client client(c().ControllerEndpoint(), std::move(*auth), 10'000);
  client.UseConnectionKeys();
  proto::SubmitRequest req;
  req.spec.argv = {"/bin/true"};
  req.spec.cwd = "/";
  req.spec.hold = true;
  std::vector<model::JobId> ids;
  for (int i = 0; i < 3; ++i) {  // the first with MUNGE (the key is on its way), then keyed
    auto reply = client.Call<proto::SubmitRequest, proto::SubmitReply>(req);
    ASSERT_TRUE(reply.ok()) << reply.status().message();
    ids.push_back(reply->id);
  }
  ASSERT_TRUE(c().RestartController().ok()) << c().log_tail();
  for (int i = 0; i < 3; ++i) {
    auto reply = client.Call<proto::SubmitRequest, proto::SubmitReply>(req);
    ASSERT_TRUE(reply.ok()) << reply.status().message() << c().log_tail();
    ids.push_back(reply->id);
  }
  for (size_t i = 1; i < ids.size(); ++i)
    EXPECT_EQ(ids[i], ids[i - 1] + 1) << "a submit was applied twice or lost";
  const std::string log = ReadText(c().dir() + "/ctld.log");
  EXPECT_NE(log.find("holds no connection key"), std::string::npos)
      << "the request after the restart was not refused for want of a key: the "
         "test did not "
         "test the resend";
}

}  // namespace
}  // namespace herd::testing
