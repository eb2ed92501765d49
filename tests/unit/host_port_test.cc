// ParseHostPort: the one parser of "host:port" (util/host_port.h). Every bad input gets a clear
// InvalidArgument and leaves the output untouched; good input round-trips through ToString.
#include "util/host_port.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sessionserver {
namespace {

TEST(HostPortTest, AcceptsHostNamesIpv4AndBracketedIpv6) {
  const struct {
    const char* text;
    const char* host;
    int port;
  } good[] = {
      {"127.0.0.1:6379", "127.0.0.1", 6379},
      {"localhost:1", "localhost", 1},
      {"redis-1.example.com:65535", "redis-1.example.com", 65535},
      {"my_host:7500", "my_host", 7500},
      {"[::1]:7500", "::1", 7500},
      {"[2001:db8::1]:80", "2001:db8::1", 80},
      {"[::ffff:127.0.0.1]:8080", "::ffff:127.0.0.1", 8080},
  };
  for (const auto& g : good) {
    HostPort hp;
    ASSERT_TRUE(ParseHostPort(g.text, &hp).ok()) << g.text;
    EXPECT_EQ(hp.host, g.host);
    EXPECT_EQ(hp.port, g.port);
    EXPECT_EQ(hp.ToString(), g.text) << "parse and format round-trip";
  }
}

TEST(HostPortTest, RejectsEverythingElseWithAMessageNamingTheProblem) {
  const struct {
    std::string text;
    const char* why;
  } bad[] = {
      {"", "empty"},
      {"localhost", "no ':' before the port"},
      {"localhost:", "no port after ':'"},
      {":6379", "empty host"},
      {"h:0", "outside 1..65535"},
      {"h:65536", "outside 1..65535"},
      {"h:99999999999999999999", "outside 1..65535"},
      {"h:12ab", "not a decimal number"},
      {"h:+80", "not a decimal number"},
      {"h:-80", "not a decimal number"},
      {"h: 80", "not a decimal number"},
      {"h:80 ", "not a decimal number"},
      {"h:0x50", "not a decimal number"},
      {"h:080", "leading zero"},
      {" h:80", "only letters, digits"},
      {"h h:80", "only letters, digits"},
      {"h,i:80", "only letters, digits"},
      {std::string("h\0:80", 4), "only letters, digits"},
      {std::string(256, 'a') + ":80", "longer than 255"},
      {"::1:7500", "more than one ':'"},
      {"h:80:90", "more than one ':'"},
      {"[::1:7500", "no ']'"},
      {"[]:80", "empty host"},
      {"[::1]", "no ':' before the port"},
      {"[::1]7500", "no ':' before the port"},
      {"[::1]:", "no port after ':'"},
      {"[127.0.0.1]:80", "not an IPv6 address"},
      {"[fe80::1%eth0]:80", "not an IPv6 address"},
      {"[" + std::string(44, '1') + "::]:80", "not an IPv6 address"},
      {"[::1]:80]", "not a decimal number"},
  };
  for (const auto& b : bad) {
    HostPort hp{"untouched", 1};
    const Status s = ParseHostPort(b.text, &hp);
    EXPECT_TRUE(s.IsInvalidArgument()) << "\"" << b.text << "\" was accepted";
    EXPECT_NE(s.message().find(b.why), std::string::npos)
        << "\"" << b.text << "\": " << s.message();
    EXPECT_NE(s.message().find("expected host:port"), std::string::npos) << s.message();
    EXPECT_EQ(hp.host, "untouched");
    EXPECT_EQ(hp.port, 1);
  }
}

TEST(HostPortTest, ListsAreCommaSeparatedWithOptionalSpaces) {
  std::vector<HostPort> list;
  ASSERT_TRUE(ParseHostPortList("a:1", &list).ok());
  EXPECT_EQ(list, (std::vector<HostPort>{{"a", 1}}));
  ASSERT_TRUE(ParseHostPortList("a:1, b:2 ,[::1]:3", &list).ok());
  EXPECT_EQ(list, (std::vector<HostPort>{{"a", 1}, {"b", 2}, {"::1", 3}}));

  for (const char* text : {"", " ", ",", "a:1,", ",a:1", "a:1,,b:2", "a:1,b", "a:1;b:2"}) {
    std::vector<HostPort> kept{{"kept", 9}};
    EXPECT_TRUE(ParseHostPortList(text, &kept).IsInvalidArgument()) << "\"" << text << "\"";
    EXPECT_EQ(kept, (std::vector<HostPort>{{"kept", 9}})) << "unchanged on error";
  }
}

}  // namespace
}  // namespace sessionserver
