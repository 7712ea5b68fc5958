// Connection keys (common/auth/connection_key.h) without daemons: the client and herd-ctld's
// table agree a key, and the table refuses replays, changed messages, other connections' keys,
// wrong MACs and malformed credentials; the MAC is libsodium's HMAC-SHA-256.
#include "common/auth/connection_key.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <cstring>
#include <string>
#include <vector>

#include "common/auth/hmac_sha256.h"

namespace herd::auth {
namespace {

const Identity kAlice{1000, 1000, "alice"};

// A client whose key `keys` opened for connection `peer`.
ConnectionKeyClient Opened(ConnectionKeys& keys, const std::string& peer,
                           const Identity& who = kAlice) {
  ConnectionKeyClient client;
  auto server_public = keys.Open(peer, who, client.public_key());
  EXPECT_TRUE(server_public.ok()) << server_public.status().message();
  EXPECT_TRUE(client.Accept(server_public.ok() ? *server_public : "").ok());
  return client;
}

std::string Sign(ConnectionKeyClient& client, std::string_view type, uint64_t id,
                 std::string_view body) {
  auto cred = client.Sign(type, id, body);
  EXPECT_TRUE(cred.ok()) << cred.status().message();
  return cred.ok() ? *cred : "";
}

TEST(ConnectionKeyTest, SignedRequestsVerifyAsTheUidThatOpenedTheKey) {
  ConnectionKeys keys;
  ConnectionKeyClient client = Opened(keys, "7");
  for (uint64_t id = 10; id < 13; ++id) {
    const std::string cred = Sign(client, "submit", id, "body");
    EXPECT_TRUE(IsKeyed(cred));
    auto who = keys.Verify("7", cred, "submit", id, "body");
    ASSERT_TRUE(who.ok()) << who.status().message();
    EXPECT_EQ(who->uid, 1000u);
    EXPECT_EQ(who->user, "alice");
  }
  EXPECT_FALSE(IsKeyed("MUNGE:AwQFAAB"));
  EXPECT_FALSE(IsKeyed("none:0:0"));
}

TEST(ConnectionKeyTest, ReplayedRequestIsRefusedAndTheKeyDies) {
  ConnectionKeys keys;
  ConnectionKeyClient client = Opened(keys, "7");
  const std::string cred = Sign(client, "submit", 1, "body");
  ASSERT_TRUE(keys.Verify("7", cred, "submit", 1, "body").ok());
  auto again = keys.Verify("7", cred, "submit", 1, "body");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kDenied);
  EXPECT_NE(again.status().message().find("replayed"), std::string::npos);
  // The connection's next request, correctly signed, is refused too: it is being closed.
  auto next = keys.Verify("7", Sign(client, "submit", 2, "body"), "submit", 2, "body");
  EXPECT_EQ(next.status().code(), Code::kDenied);
}

TEST(ConnectionKeyTest, OlderCounterIsRefused) {
  ConnectionKeys keys;
  ConnectionKeyClient client = Opened(keys, "7");
  const std::string first = Sign(client, "submit", 1, "a");
  const std::string second = Sign(client, "submit", 2, "b");
  ASSERT_TRUE(keys.Verify("7", second, "submit", 2, "b").ok());
  EXPECT_EQ(keys.Verify("7", first, "submit", 1, "a").status().code(), Code::kDenied);
}

TEST(ConnectionKeyTest, ChangedTypeIdBodyOrCounterIsRefused) {
  for (int change = 0; change < 4; ++change) {
    ConnectionKeys keys;
    ConnectionKeyClient client = Opened(keys, "7");
    std::string cred = Sign(client, "submit", 5, "body");
    std::string type = "submit", body = "body";
    uint64_t id = 5;
    if (change == 0) type = "cancel";
    if (change == 1) id = 6;
    if (change == 2) body = "bodY";
    if (change == 3) cred.replace(cred.find(":1:"), 3, ":2:");  // a later counter, same MAC
    auto who = keys.Verify("7", cred, type, id, body);
    ASSERT_FALSE(who.ok()) << change;
    EXPECT_EQ(who.status().code(), Code::kDenied) << change;
  }
}

TEST(ConnectionKeyTest, KeyOfOneConnectionIsRefusedOnAnother) {
  ConnectionKeys keys;
  ConnectionKeyClient a = Opened(keys, "7");
  ConnectionKeyClient b = Opened(keys, "8", Identity{1001, 1001, "bob"});
  const std::string cred = Sign(a, "submit", 1, "body");
  // On a connection without a key: refused as keyless (the client would open one).
  EXPECT_EQ(keys.Verify("9", cred, "submit", 1, "body").status().code(), Code::kNoConnectionKey);
  // On bob's connection: its MAC is checked with bob's key, and fails.
  EXPECT_EQ(keys.Verify("8", cred, "submit", 1, "body").status().code(), Code::kDenied);
  // Alice's own connection still takes it.
  EXPECT_TRUE(keys.Verify("7", cred, "submit", 1, "body").ok());
}

TEST(ConnectionKeyTest, WrongOrMalformedMacIsRefusedAndLaterRequestsToo) {
  for (const std::string& bad : std::vector<std::string>{
           "herd-key1:1:", "herd-key1::00", "herd-key1:x:00", "herd-key1:1",
           "herd-key1:99999999999999999999:" + std::string(64, '0'),
           "herd-key1:1:" + std::string(64, '0'), "herd-key1:1:" + std::string(63, '0'),
           "herd-key1:1:" + std::string(64, 'z')}) {
    ConnectionKeys keys;
    ConnectionKeyClient client = Opened(keys, "7");
    auto who = keys.Verify("7", bad, "submit", 1, "body");
    ASSERT_FALSE(who.ok()) << bad;
    EXPECT_EQ(who.status().code(), Code::kDenied) << bad;
    auto next = keys.Verify("7", Sign(client, "submit", 1, "body"), "submit", 1, "body");
    EXPECT_EQ(next.status().code(), Code::kDenied) << bad;
  }
}

TEST(ConnectionKeyTest, AnswerChangedOnTheWayOnlyMakesTheSidesDisagree) {
  ConnectionKeys keys;
  ConnectionKeyClient client;
  ASSERT_TRUE(keys.Open("7", kAlice, client.public_key()).ok());
  ConnectionKeyClient man_in_the_middle;  // answers with its own public key
  ASSERT_TRUE(client.Accept(man_in_the_middle.public_key()).ok());
  const std::string cred = Sign(client, "submit", 1, "body");
  EXPECT_EQ(keys.Verify("7", cred, "submit", 1, "body").status().code(), Code::kDenied);
}

TEST(ConnectionKeyTest, OneKeyPerConnectionUntilItCloses) {
  ConnectionKeys keys;
  ConnectionKeyClient first = Opened(keys, "7");
  ConnectionKeyClient second;
  auto again = keys.Open("7", kAlice, second.public_key());
  EXPECT_EQ(again.status().code(), Code::kInvalid);
  EXPECT_EQ(keys.Open("8", kAlice, "short").status().code(), Code::kInvalid);
  EXPECT_EQ(keys.size(), 1u);
  keys.Drop("7");
  EXPECT_EQ(keys.size(), 0u);
  EXPECT_EQ(keys.Verify("7", Sign(first, "submit", 1, "b"), "submit", 1, "b").status().code(),
            Code::kNoConnectionKey);
}

TEST(ConnectionKeyTest, ClientSignsOnlyOnceAgreed) {
  ConnectionKeyClient client;
  EXPECT_FALSE(client.Sign("submit", 1, "body").ok());
  EXPECT_FALSE(client.Accept("not a key").ok());
}

// Keyed credentials were libsodium's crypto_auth_hmacsha256 before OpenSSL computed them: the MAC
// must stay the same bytes (an older herd and a newer herd-noded still agree), for every length
// around SHA-256's 64-byte block and for input given in pieces.
TEST(HmacSha256Test, IsLibsodiumsHmacSha256) {
  ASSERT_GE(sodium_init(), 0);
  std::vector<unsigned char> data(1 << 20);
  randombytes_buf(data.data(), data.size());
  for (size_t size : {0, 1, 31, 55, 56, 63, 64, 65, 127, 128, 129, 4096, 65537, 1 << 20}) {
    unsigned char key[HmacSha256::kKeyBytes];
    randombytes_buf(key, sizeof key);
    unsigned char want[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state state;
    crypto_auth_hmacsha256_init(&state, key, sizeof key);
    crypto_auth_hmacsha256_update(&state, data.data(), size);
    crypto_auth_hmacsha256_final(&state, want);

    HmacSha256 mac(key);
    const size_t cut = size / 3;  // in two pieces
    mac.Update(data.data(), cut);
    mac.Update(data.data() + cut, size - cut);
    unsigned char got[HmacSha256::kMacBytes];
    mac.Final(got);
    EXPECT_EQ(0, std::memcmp(got, want, sizeof got)) << size << " bytes";
  }
}

}  // namespace
}  // namespace herd::auth
