// Session ids and sealed routing cookies: round trips, key rotation, and 10,000 tampered cookies
// of which none opens.
#include "session_client/cookie.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

#include "session_client/attributes.h"
#include "session_client/base64url.h"
#include "session_client/session_id.h"

namespace sessionserver::client {
namespace {

TEST(SessionIdTest, FreshIdsAreWellFormedAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 10'000; ++i) {
    const std::string id = NewSessionId();
    ASSERT_TRUE(IsWellFormedSessionId(id)) << id;
    ASSERT_TRUE(seen.insert(id).second) << "repeated id " << id;
  }
  EXPECT_FALSE(IsWellFormedSessionId(""));
  EXPECT_FALSE(IsWellFormedSessionId("AAAAAAAAAAAAAAAAAAAAA"));   // 21 chars
  EXPECT_FALSE(IsWellFormedSessionId("AAAAAAAAAAAAAAAAAAAAA+"));  // not base64url
  EXPECT_FALSE(IsWellFormedSessionId("AAAAAAAAAAAAAAAAAAAAAB"));  // non-zero trailing bits
}

TEST(Base64UrlTest, RoundTripsAndRejectsNonCanonicalText) {
  std::mt19937 rng(7);
  for (int len = 0; len < 64; ++len) {
    std::string bytes;
    for (int i = 0; i < len; ++i) bytes.push_back(static_cast<char>(rng()));
    std::string back;
    ASSERT_TRUE(Base64UrlDecode(Base64UrlEncode(bytes), &back));
    EXPECT_EQ(back, bytes);
  }
  std::string out;
  EXPECT_FALSE(Base64UrlDecode("A", &out));
  EXPECT_FALSE(Base64UrlDecode("AB", &out)) << "trailing bits must be zero";
  EXPECT_TRUE(Base64UrlDecode("AA", &out));
}

TEST(AttributesTest, RoundTripAndStrictDecoding) {
  Attributes attrs{{"user", "ada"},
                   {"cart", std::string(300, 'x')},
                   {"", ""},
                   {"bin", std::string("\0\xff", 2)}};
  Attributes back;
  ASSERT_TRUE(DecodeAttributes(EncodeAttributes(attrs), &back));
  EXPECT_EQ(back, attrs);
  EXPECT_EQ(EncodeAttributes({}), "");
  ASSERT_TRUE(DecodeAttributes("", &back));
  EXPECT_TRUE(back.empty());
  const std::string good = EncodeAttributes({{"a", "b"}});
  for (size_t n = 2; n < good.size(); ++n) {  // "\x01" alone is a valid empty set
    EXPECT_FALSE(DecodeAttributes(good.substr(0, n), &back)) << "truncated to " << n;
  }
  EXPECT_FALSE(DecodeAttributes("\x02", &back)) << "unknown format";
  EXPECT_FALSE(DecodeAttributes(good + good.substr(1), &back)) << "duplicate name";
  const std::string b_then_a =
      "\x01\x01"
      "b\x00\x01"
      "a\x00";
  EXPECT_FALSE(DecodeAttributes(std::string(b_then_a.data(), 7), &back)) << "unsorted";
  EXPECT_FALSE(DecodeAttributes(std::string("\x01\x81\x00", 3) + "a" + std::string(1, '\0'), &back))
      << "over-long varint";
}

class CookieTest : public ::testing::Test {
 protected:
  CookieKeySet keys_ = CookieKeySet::Generate();
};

TEST_F(CookieTest, SealedContentsOpenAndAreNotReadable) {
  CookieSealer sealer(keys_);
  const std::string id = NewSessionId();
  const std::string cookie = sealer.Seal({id, "10.1.2.3:7500"});
  EXPECT_EQ(cookie.find("10.1.2.3"), std::string::npos);
  EXPECT_EQ(cookie.find(id), std::string::npos);
  CookieContents c;
  ASSERT_TRUE(sealer.Open(cookie, &c).ok());
  EXPECT_EQ(c.session_id, id);
  EXPECT_EQ(c.server_id, "10.1.2.3:7500");
  EXPECT_NE(sealer.Seal({id, "10.1.2.3:7500"}), cookie) << "a fresh nonce every time";
}

// docs/COOKIE.md: the server field is padded to 64 bytes, so every cookie of a 22-character
// session id is "v1." plus 160 characters, whichever server it names.
TEST_F(CookieTest, TheServerFieldIsPaddedSoTheLengthNamesNoServer) {
  CookieSealer sealer(keys_);
  const std::string id = NewSessionId();
  for (const std::string& server : {std::string(), std::string("a:1"), std::string(64, 's')}) {
    const std::string cookie = sealer.Seal({id, server});
    EXPECT_EQ(cookie.size(), 3u + 160u) << "server \"" << server << "\"";
    CookieContents c;
    ASSERT_TRUE(sealer.Open(cookie, &c).ok());
    EXPECT_EQ(c.server_id, server);
  }
}

TEST_F(CookieTest, RotationKeepsPreviousKeysUntilRetired) {
  const std::string old_cookie = CookieSealer(keys_).Seal({"sid", "a:1"});
  bool current = false;
  CookieContents c;
  ASSERT_TRUE(CookieSealer(keys_).Open(old_cookie, &c, &current).ok());
  EXPECT_TRUE(current);
  keys_.Rotate(/*keep_previous=*/1);
  EXPECT_TRUE(CookieSealer(keys_).Open(old_cookie, &c, &current).ok()) << "previous key opens";
  EXPECT_FALSE(current) << "sealed with a previous key: the client seals it again";
  keys_.Rotate(/*keep_previous=*/1);  // the first key is retired now
  const Status s = CookieSealer(keys_).Open(old_cookie, &c);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("retired"), std::string::npos) << s.ToString();
  CookieKeySet parsed;
  ASSERT_TRUE(CookieKeySet::Parse(keys_.Serialize(), &parsed).ok());
  EXPECT_EQ(parsed.current.id, keys_.current.id);
  EXPECT_EQ(parsed.current.bytes, keys_.current.bytes);
  ASSERT_EQ(parsed.previous.size(), 1u);
  EXPECT_FALSE(CookieKeySet::Parse("1 abc\n", &parsed).ok());
  EXPECT_FALSE(CookieKeySet::Parse("", &parsed).ok());
}

TEST_F(CookieTest, TenThousandTamperedCookiesNeverOpen) {
  CookieSealer sealer(keys_);
  CookieSealer stranger(CookieKeySet::Generate());  // same format, another site's key
  std::mt19937_64 rng(2026);
  const std::string genuine = sealer.Seal({NewSessionId(), "127.0.0.1:7500"});
  std::vector<std::string> tampered;
  for (int i = 0; i < 4000; ++i) {  // bit flips anywhere in the encoded value
    std::string c = genuine;
    const size_t pos = 3 + rng() % (c.size() - 3);
    std::string raw;
    ASSERT_TRUE(Base64UrlDecode(c.substr(3), &raw));
    raw[rng() % raw.size()] ^= static_cast<char>(1u << (rng() % 8));
    tampered.push_back("v1." + Base64UrlEncode(raw));
    c[pos] = c[pos] == 'A' ? 'B' : 'A';
    if (c != genuine) tampered.push_back(c);
  }
  for (size_t n = 0; n < genuine.size(); ++n) tampered.push_back(genuine.substr(0, n));
  for (int i = 0; i < 500; ++i) {
    tampered.push_back(genuine + std::string(1 + rng() % 8, 'A'));
    tampered.push_back(stranger.Seal({NewSessionId(), "127.0.0.1:7500"}));
  }
  const char* plain[] = {
      "127.0.0.1:7500", "10.0.0.1:80", "evil.example.com:7500", "localhost", "v1.", "v1.AAAA", "",
      "server-1",       "[::1]:7500"};
  for (const char* p : plain) {
    tampered.push_back(p);
    tampered.push_back(std::string("v1.") + Base64UrlEncode(p));
  }
  while (tampered.size() < 10'000) {  // random strings in the cookie alphabet
    std::string c = "v1.";
    const size_t len = rng() % 120;
    for (size_t i = 0; i < len; ++i) c.push_back("ABCabc019-_"[rng() % 11]);
    tampered.push_back(c);
  }
  tampered.push_back(std::string(5000, 'A'));
  int opened = 0;
  for (const std::string& c : tampered) {
    CookieContents out;
    if (sealer.Open(c, &out).ok()) ++opened;
  }
  EXPECT_GE(tampered.size(), 10'000u);
  EXPECT_EQ(opened, 0);
  CookieContents out;
  EXPECT_TRUE(sealer.Open(genuine, &out).ok()) << "the untouched cookie still opens";
}

}  // namespace
}  // namespace sessionserver::client
