// WebTokens (common/auth/web_tokens.h): login tokens work once, every token expires, revocation
// ends them, and a token of one kind never passes for the other.
#include "common/auth/web_tokens.h"

#include "gtest/gtest.h"

namespace herd::auth {
namespace {

const Identity kAlice{1001, 1001, "alice"};
const Identity kBob{1002, 1002, "bob"};
constexpr int64_t kNow = 1'700'000'000;

TEST(WebTokensTest, LoginTokenIsSwappedOnceForASessionOfItsUser) {
  WebTokens t;
  auto login = t.Mint(WebTokens::Kind::kLogin, kAlice, kNow, 600);
  ASSERT_TRUE(login.ok());
  EXPECT_EQ(login->token.size(), WebTokens::kTokenHexChars);
  EXPECT_EQ(login->expires, kNow + 600);
  // A login token is no session token.
  EXPECT_EQ(t.Resolve(login->token, kNow).status().code(), Code::kBadToken);
  auto session = t.Exchange(login->token, kNow + 10, 3600);
  ASSERT_TRUE(session.ok()) << session.status().message();
  EXPECT_EQ(session->second.uid, kAlice.uid);
  EXPECT_EQ(session->first.expires, kNow + 10 + 3600);
  auto who = t.Resolve(session->first.token, kNow + 20);
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(who->user, "alice");
  // Used up.
  EXPECT_EQ(t.Exchange(login->token, kNow + 11, 3600).status().code(), Code::kBadToken);
  // A session token cannot be swapped for another (no endless renewal).
  EXPECT_EQ(t.Exchange(session->first.token, kNow + 12, 3600).status().code(), Code::kBadToken);
}

TEST(WebTokensTest, TokensExpire) {
  WebTokens t;
  auto login = t.Mint(WebTokens::Kind::kLogin, kAlice, kNow, 600);
  auto api = t.Mint(WebTokens::Kind::kSession, kAlice, kNow, 3600);
  ASSERT_TRUE(login.ok() && api.ok());
  EXPECT_TRUE(t.Resolve(api->token, kNow + 3599).ok());
  EXPECT_EQ(t.Resolve(api->token, kNow + 3600).status().code(), Code::kBadToken);
  EXPECT_EQ(t.Exchange(login->token, kNow + 600, 3600).status().code(), Code::kBadToken);
  EXPECT_EQ(t.size(), 0u);
}

TEST(WebTokensTest, RevokedTokensEndAndOthersStay) {
  WebTokens t;
  auto a1 = t.Mint(WebTokens::Kind::kSession, kAlice, kNow, 3600);
  auto a2 = t.Mint(WebTokens::Kind::kSession, kAlice, kNow, 3600);
  auto b = t.Mint(WebTokens::Kind::kSession, kBob, kNow, 3600);
  ASSERT_TRUE(a1.ok() && a2.ok() && b.ok());
  EXPECT_EQ(t.Revoke(a1->token), 1);
  EXPECT_EQ(t.Resolve(a1->token, kNow).status().code(), Code::kBadToken);
  EXPECT_TRUE(t.Resolve(a2->token, kNow).ok());
  EXPECT_EQ(t.RevokeUser(kAlice.uid), 1);
  EXPECT_FALSE(t.Resolve(a2->token, kNow).ok());
  EXPECT_TRUE(t.Resolve(b->token, kNow).ok());
}

TEST(WebTokensTest, WrongAndMalformedTokensAreRefused) {
  WebTokens t;
  auto a = t.Mint(WebTokens::Kind::kSession, kAlice, kNow, 3600);
  ASSERT_TRUE(a.ok());
  std::string wrong = a->token;
  wrong[0] = wrong[0] == '0' ? '1' : '0';
  for (const std::string& bad : {wrong, std::string(), a->token + "0", a->token.substr(1),
                                 std::string(64, 'Z'), std::string(64, '\0')}) {
    EXPECT_EQ(t.Resolve(bad, kNow).status().code(), Code::kBadToken) << bad;
  }
  EXPECT_EQ(t.Revoke(std::string(64, 'Z')), 0);
}

TEST(WebTokensTest, EachUserHoldsAtMostKMaxPerUserTokens) {
  WebTokens t;
  auto first = t.Mint(WebTokens::Kind::kSession, kAlice, kNow, 3600);
  ASSERT_TRUE(first.ok());
  for (size_t i = 0; i < WebTokens::kMaxPerUser; ++i) {
    ASSERT_TRUE(t.Mint(WebTokens::Kind::kSession, kAlice, kNow, 3600).ok());
  }
  EXPECT_EQ(t.size(), WebTokens::kMaxPerUser);
  // The oldest made room.
  EXPECT_FALSE(t.Resolve(first->token, kNow).ok());
  ASSERT_TRUE(t.Mint(WebTokens::Kind::kSession, kBob, kNow, 3600).ok());
  EXPECT_EQ(t.size(), WebTokens::kMaxPerUser + 1);
}

// A token leaves herd-ctld sealed to the asker's key: only that key opens it,
// the sealed bytes do not hold the token, and a request without a key of the
// right size is refused.
TEST(WebTokensTest, TokensAreSealedToTheAskersKeyOnly) {
  const std::string token(WebTokens::kTokenHexChars, 'd');
  auto key = SealKey::Make();
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ(key->public_key().size(), SealKey::kPublicKeyBytes);
  auto sealed = SealToken(token, key->public_key());
  ASSERT_TRUE(sealed.ok()) << sealed.status().message();
  EXPECT_EQ(sealed->find(token), std::string::npos);
  auto opened = key->Open(*sealed);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  EXPECT_EQ(*opened, token);

  auto other = SealKey::Make();
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->Open(*sealed).ok());
  std::string altered = *sealed;
  altered.back() ^= 1;
  EXPECT_FALSE(key->Open(altered).ok());
  EXPECT_FALSE(key->Open(token).ok());  // a token in the clear is not taken either

  for (const std::string& bad : {std::string(), std::string(31, 'k'), std::string(33, 'k')}) {
    auto refused = SealToken(token, bad);
    EXPECT_EQ(refused.status().code(), Code::kInvalid);
    EXPECT_NE(refused.status().message().find("public key"), std::string::npos)
        << refused.status().message();
  }
}

}  // namespace
}  // namespace herd::auth
