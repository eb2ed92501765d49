// Bad and hostile input against the real server: every case gets a clear error or a closed
// connection, and the server keeps serving everyone else with their data intact.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "tests/blackbox/server_process.h"

namespace sessionserver {
namespace {

using thrift::GetResult;
using thrift::InvalidRequest;
namespace ts = thrift;

constexpr int kMaxValue = 4096;

std::string Frame(uint32_t declared_size, const std::string& body) {
  uint32_t be = htonl(declared_size);
  return std::string(reinterpret_cast<const char*>(&be), 4) + body;
}

class MaliciousInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start({"--max_value_bytes=" + std::to_string(kMaxValue)}));
    bystander_ = std::make_unique<TestClient>(server_.port());
    ASSERT_EQ((*bystander_)->put("bystander", "precious", 20, 0, false), ts::Status::OK);
  }

  // The bystander's connection and data survive, and new connections are accepted.
  void ExpectServerHealthy() {
    GetResult r;
    (*bystander_)->get(r, "bystander");
    EXPECT_EQ(r.status, ts::Status::OK);
    EXPECT_EQ(r.data, "precious");
    TestClient fresh(server_.port());
    fresh->get(r, "bystander");
    EXPECT_EQ(r.data, "precious");
  }

  std::string InvalidMessage(const std::function<void(TestClient&)>& call) {
    TestClient c(server_.port());
    try {
      call(c);
    } catch (const InvalidRequest& e) {
      GetResult r;
      c->get(r, "bystander");  // the same connection keeps working after InvalidRequest
      EXPECT_EQ(r.data, "precious");
      return e.message;
    }
    return "(no InvalidRequest)";
  }

  ServerProcess server_;
  std::unique_ptr<TestClient> bystander_;
};

TEST_F(MaliciousInputTest, OversizeValueGetsInvalidRequest) {
  std::string msg = InvalidMessage(
      [](TestClient& c) { c->put("big", std::string(kMaxValue + 1, 'x'), 20, 0, false); });
  EXPECT_NE(msg.find("max_value_bytes"), std::string::npos) << msg;
  ExpectServerHealthy();
}

TEST_F(MaliciousInputTest, BadTimeoutsAndIdsGetInvalidRequest) {
  for (int32_t t : {0, -5, 525'601}) {
    std::string msg = InvalidMessage([t](TestClient& c) { c->put("s", "v", t, 0, false); });
    EXPECT_NE(msg.find("timeoutMinutes"), std::string::npos) << msg;
  }
  EXPECT_NE(InvalidMessage([](TestClient& c) {
              GetResult r;
              c->get(r, "");
            }).find("empty"),
            std::string::npos);
  EXPECT_NE(
      InvalidMessage([](TestClient& c) { c->remove(std::string(300, 'a'), 0); }).find("limit"),
      std::string::npos);
  EXPECT_NE(InvalidMessage([](TestClient& c) { c->resetTimeout("bad\nid"); }).find("0x0a"),
            std::string::npos);
  ExpectServerHealthy();
}

TEST_F(MaliciousInputTest, ValueFarOverTheFrameLimitClosesOnlyThatConnection) {
  TestClient c(server_.port());
  EXPECT_ANY_THROW(c->put("huge", std::string(3 * kMaxValue + (64 << 10), 'x'), 20, 0, false));
  ExpectServerHealthy();
}

TEST_F(MaliciousInputTest, FrameClaimingTwoGigabytesIsClosed) {
  EXPECT_TRUE(ServerClosesAfter(server_.port(), Frame(0x7fffffffu, "")));
  EXPECT_TRUE(ServerClosesAfter(server_.port(), Frame(0x80000000u, "x")));
  EXPECT_TRUE(ServerClosesAfter(server_.port(), Frame(0xffffffffu, "xyz")));
  ExpectServerHealthy();
}

TEST_F(MaliciousInputTest, GarbageBytesAreClosed) {
  std::mt19937 rng(42);
  for (int round = 0; round < 20; ++round) {
    std::string junk(64 + rng() % 512, '\0');
    for (char& ch : junk) ch = static_cast<char>(rng());
    // A plausible frame header with a garbage body, so the bytes reach the protocol decoder.
    EXPECT_TRUE(ServerClosesAfter(server_.port(), Frame(static_cast<uint32_t>(junk.size()), junk)))
        << "round " << round;
  }
  EXPECT_TRUE(ServerClosesAfter(server_.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ExpectServerHealthy();
}

TEST_F(MaliciousInputTest, TruncatedFrameThenHangUpLeavesServerHealthy) {
  // Declares 1000 bytes, sends 10, waits 200 ms, goes away. The frame is incomplete, not
  // malformed: the server must wait for the rest, not close the connection.
  EXPECT_FALSE(ServerClosesAfter(server_.port(), Frame(1000, "0123456789"), 200))
      << "the server gave up on a frame still arriving";
  ExpectServerHealthy();
}

TEST_F(MaliciousInputTest, StringLengthThatLiesIsRejected) {
  // A call message for get() whose string field claims 1 GB inside a small frame.
  std::string body;
  auto put32 = [&body](uint32_t v) {
    v = htonl(v);
    body.append(reinterpret_cast<const char*>(&v), 4);
  };
  put32(0x80010001u);  // strict binary protocol version, message type CALL
  put32(3);
  body += "get";
  put32(1);                                // seqid
  body += std::string("\x0b\x00\x01", 3);  // field 1, type string
  put32(1u << 30);                         // length: 1 GiB
  body += "abc";
  EXPECT_TRUE(ServerClosesAfter(server_.port(), Frame(static_cast<uint32_t>(body.size()), body)));
  ExpectServerHealthy();
}

}  // namespace
}  // namespace sessionserver
