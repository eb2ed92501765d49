// Black-box tests of the serving edge (server/thrift_server.h, server/event_loop.h): pipelined
// requests, requests handed to workers, and lock waits on the server (getWaiting).
#include <gtest/gtest.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TSocket.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "tests/blackbox/server_process.h"

namespace sessionserver {
namespace {

using apache::thrift::protocol::TBinaryProtocol;
using apache::thrift::transport::TFramedTransport;
using apache::thrift::transport::TMemoryBuffer;
using apache::thrift::transport::TSocket;
using thrift::GetResult;
namespace ts = thrift;

// The number of requests parked on locks now.
int64_t Parked(int port) { return ServerCounter(port, "requests_parked"); }

// A client whose requests are written into one buffer and sent with one write, so that the
// server receives them together; the replies are read back in order.
class PipelineClient {
 public:
  explicit PipelineClient(int port)
      : socket_(std::make_shared<TSocket>("127.0.0.1", port)),
        buffer_(std::make_shared<TMemoryBuffer>()),
        writer_(std::make_shared<TBinaryProtocol>(std::make_shared<TFramedTransport>(buffer_))),
        reader_(std::make_shared<TBinaryProtocol>(std::make_shared<TFramedTransport>(socket_))) {
    socket_->setRecvTimeout(5000);
    socket_->open();
  }
  ts::SessionServiceClient& requests() { return writer_; }
  ts::SessionServiceClient& replies() { return reader_; }
  void Send() {
    const std::string bytes = buffer_->getBufferAsString();
    socket_->write(reinterpret_cast<const uint8_t*>(bytes.data()),
                   static_cast<uint32_t>(bytes.size()));
    buffer_->resetBuffer();
  }

 private:
  std::shared_ptr<TSocket> socket_;
  std::shared_ptr<TMemoryBuffer> buffer_;
  ts::SessionServiceClient writer_, reader_;
};

// Stores `data` under `id` and takes its lock through `c`.
void Hold(TestClient& c, const std::string& id, const std::string& data, GetResult* held) {
  ASSERT_EQ(c->put(id, data, 20, 0, false), ts::Status::OK);
  c->getExclusive(*held, id);
  ASSERT_EQ(held->status, ts::Status::OK);
}

class EdgeTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start()); }
  ServerProcess server_;
};

TEST_F(EdgeTest, PipelinedRequestsAreAnsweredInOrder) {
  PipelineClient p(server_.port());
  // info runs on a worker thread; the others on the event loop. The replies keep the order.
  p.requests().send_put("pipe-1", "one", 20, 0, false);
  p.requests().send_info();
  p.requests().send_put("pipe-2", "two", 20, 0, false);
  p.requests().send_get("pipe-1");
  p.requests().send_getExclusive("pipe-2");
  p.requests().send_get("pipe-2");
  p.Send();

  EXPECT_EQ(p.replies().recv_put(), ts::Status::OK);
  ts::ServerInfo info;
  p.replies().recv_info(info);
  EXPECT_EQ(info.state, "active");
  EXPECT_EQ(p.replies().recv_put(), ts::Status::OK);
  GetResult r;
  p.replies().recv_get(r);
  ASSERT_EQ(r.status, ts::Status::OK);
  EXPECT_EQ(r.data, "one");
  p.replies().recv_getExclusive(r);
  ASSERT_EQ(r.status, ts::Status::OK);
  EXPECT_EQ(r.data, "two");
  p.replies().recv_get(r);
  EXPECT_EQ(r.status, ts::Status::LOCKED);  // the getExclusive before it took the lock
}

TEST_F(EdgeTest, ManyPipelinedRequestsOnManyConnections) {
  constexpr int kConnections = 8, kRounds = 50;
  std::vector<std::unique_ptr<PipelineClient>> clients;
  for (int i = 0; i < kConnections; ++i) {
    clients.push_back(std::make_unique<PipelineClient>(server_.port()));
  }
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kConnections; ++i) {
      const std::string id = "many-" + std::to_string(i);
      clients[i]->requests().send_put(id, std::to_string(round), 20, 0, false);
      clients[i]->requests().send_get(id);
      clients[i]->Send();
    }
    for (int i = 0; i < kConnections; ++i) {
      ASSERT_EQ(clients[i]->replies().recv_put(), ts::Status::OK);
      GetResult r;
      clients[i]->replies().recv_get(r);
      ASSERT_EQ(r.status, ts::Status::OK);
      EXPECT_EQ(r.data, std::to_string(round));
    }
  }
}

TEST_F(EdgeTest, GetWaitingIsAnsweredWhenTheLockIsReleased) {
  TestClient holder(server_.port());
  GetResult held;
  ASSERT_NO_FATAL_FAILURE(Hold(holder, "wait-1", "before", &held));

  constexpr int kWaitMs = 20'000;  // far longer than the test: it must be woken, not time out
  auto waiter = std::async(std::launch::async, [port = server_.port()] {
    TestClient c(port, /*timeout_ms=*/30'000);
    GetResult r;
    const auto start = std::chrono::steady_clock::now();
    c->getWaiting(r, "wait-1", /*exclusive=*/true, kWaitMs);
    return std::make_pair(r, std::chrono::steady_clock::now() - start);
  });
  ASSERT_TRUE(Eventually([&] { return Parked(server_.port()) == 1; }));

  ASSERT_EQ(holder->put("wait-1", "after", 20, held.lockCookie, false), ts::Status::OK);
  const auto [r, waited] = waiter.get();
  ASSERT_EQ(r.status, ts::Status::OK);
  EXPECT_TRUE(r.waited);
  EXPECT_EQ(r.data, "after");
  EXPECT_GT(r.lockCookie, held.lockCookie);  // it holds the lock now
  EXPECT_LT(waited, std::chrono::milliseconds(kWaitMs));
  EXPECT_EQ(Parked(server_.port()), 0);
}

TEST_F(EdgeTest, GetWaitingAnswersLockedWhenItsWaitEnds) {
  TestClient c(server_.port());
  GetResult held;
  ASSERT_NO_FATAL_FAILURE(Hold(c, "wait-2", "x", &held));
  GetResult r;
  c->getWaiting(r, "wait-2", /*exclusive=*/false, /*waitMs=*/50);
  EXPECT_EQ(r.status, ts::Status::LOCKED);
  EXPECT_EQ(r.lockCookie, held.lockCookie);
  EXPECT_EQ(Parked(server_.port()), 0);
  // Not locked: answered at once, whatever the wait.
  EXPECT_EQ(c->releaseExclusive("wait-2", held.lockCookie), ts::Status::OK);
  c->getWaiting(r, "wait-2", /*exclusive=*/false, /*waitMs=*/60'000);
  ASSERT_EQ(r.status, ts::Status::OK);
  EXPECT_EQ(r.data, "x");
  EXPECT_FALSE(r.waited);
  c->getWaiting(r, "wait-missing", /*exclusive=*/true, /*waitMs=*/60'000);
  EXPECT_EQ(r.status, ts::Status::NOT_FOUND);
}

TEST_F(EdgeTest, GetWaitingRefusesAnOutOfRangeWait) {
  TestClient c(server_.port());
  GetResult r;
  EXPECT_THROW(c->getWaiting(r, "wait-3", true, -1), ts::InvalidRequest);
  EXPECT_THROW(c->getWaiting(r, "wait-3", true, 60'001), ts::InvalidRequest);
  EXPECT_THROW(c->getWaiting(r, "bad id", true, 10), ts::InvalidRequest);
  c->get(r, "wait-3");  // the connection is still usable
  EXPECT_EQ(r.status, ts::Status::NOT_FOUND);
}

TEST_F(EdgeTest, AWaiterThatHangsUpIsForgotten) {
  TestClient holder(server_.port());
  GetResult held;
  ASSERT_NO_FATAL_FAILURE(Hold(holder, "wait-4", "x", &held));
  {
    PipelineClient gone(server_.port());
    gone.requests().send_getWaiting("wait-4", true, 60'000);
    gone.Send();
    ASSERT_TRUE(Eventually([&] { return Parked(server_.port()) == 1; }));
  }  // closes its connection while parked
  EXPECT_TRUE(Eventually([&] { return Parked(server_.port()) == 0; }));
  EXPECT_EQ(holder->releaseExclusive("wait-4", held.lockCookie), ts::Status::OK);
  GetResult r;
  holder->getExclusive(r, "wait-4");
  EXPECT_EQ(r.status, ts::Status::OK);  // the hung-up waiter did not take the lock
}

TEST_F(EdgeTest, EveryWaiterIsWokenAndExactlyOneGetsTheLock) {
  TestClient holder(server_.port());
  GetResult held;
  ASSERT_NO_FATAL_FAILURE(Hold(holder, "wait-5", "x", &held));
  constexpr int kWaiters = 4;
  std::vector<std::future<GetResult>> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.push_back(std::async(std::launch::async, [port = server_.port()] {
      TestClient c(port, 30'000);
      GetResult r;
      c->getWaiting(r, "wait-5", true, 2'000);
      return r;
    }));
  }
  ASSERT_TRUE(Eventually([&] { return Parked(server_.port()) == kWaiters; }));
  EXPECT_EQ(holder->releaseExclusive("wait-5", held.lockCookie), ts::Status::OK);
  int ok = 0, locked = 0;
  for (auto& w : waiters) {
    const GetResult r = w.get();
    ok += r.status == ts::Status::OK;
    locked += r.status == ts::Status::LOCKED;
  }
  EXPECT_EQ(ok, 1);  // the others are parked again and answered LOCKED at the end of their wait
  EXPECT_EQ(locked, kWaiters - 1);
}

}  // namespace
}  // namespace sessionserver
