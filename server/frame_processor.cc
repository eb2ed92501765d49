#include "server/frame_processor.h"

#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>

#include <utility>

namespace sessionserver {

using apache::thrift::transport::TBufferBase;
using apache::thrift::transport::TMemoryBuffer;
using apache::thrift::transport::TTransportException;
using apache::thrift::transport::TVirtualTransport;

// A read-only transport over one frame in the caller's buffer: no copy, no allocation per
// request. Reading past the frame's end is a truncated request.
class FrameInput : public TVirtualTransport<FrameInput, TBufferBase> {
 public:
  void Reset(const uint8_t* data, size_t size) {
    // TBufferBase only reads through this pointer; it is not const in Thrift's interface.
    setReadBuffer(const_cast<uint8_t*>(data), static_cast<uint32_t>(size));
    resetConsumedMessageSize();
  }

 protected:
  uint32_t readSlow(uint8_t*, uint32_t) override {
    throw TTransportException(TTransportException::END_OF_FILE, "request ends inside a field");
  }
  void writeSlow(const uint8_t*, uint32_t) override {
    throw TTransportException(TTransportException::NOT_OPEN, "request frames are read-only");
  }
  const uint8_t* borrowSlow(uint8_t*, uint32_t*) override { return nullptr; }
};

namespace {
constexpr uint32_t kInitialOutputBytes = 16 << 10;
constexpr uint32_t kKeptOutputBytes = 256 << 10;  // a larger reply buffer is not kept
constexpr int32_t kContainerLimit = 1024;
}  // namespace

FrameProcessor::FrameProcessor(std::shared_ptr<thrift::SessionServiceIf> handler,
                               size_t frame_limit)
    : input_(std::make_shared<FrameInput>()),
      output_(std::make_shared<TMemoryBuffer>(kInitialOutputBytes)),
      processor_(std::move(handler)) {
  using apache::thrift::protocol::TBinaryProtocolT;
  const auto limit = static_cast<int32_t>(frame_limit);
  in_protocol_ = std::make_shared<TBinaryProtocolT<FrameInput>>(input_, limit, kContainerLimit,
                                                                /*strict_read=*/true,
                                                                /*strict_write=*/true);
  out_protocol_ = std::make_shared<TBinaryProtocolT<TMemoryBuffer>>(
      output_, limit, kContainerLimit, /*strict_read=*/true, /*strict_write=*/true);
}

FrameProcessor::~FrameProcessor() = default;

FrameProcessor::Result FrameProcessor::Run(const uint8_t* frame, size_t size, std::string* out,
                                           Parked* parked, std::string* error) {
  input_->Reset(frame, size);
  output_->resetBuffer();
  if (output_->available_write() > kKeptOutputBytes) {
    output_->resetBuffer(kInitialOutputBytes);  // a large reply grew it: let that memory go
  }
  const uint8_t no_length[4] = {0, 0, 0, 0};
  output_->write(no_length, sizeof(no_length));  // the frame's length, filled in below
  try {
    processor_.process(in_protocol_, out_protocol_, nullptr);
  } catch (const WouldBlock&) {
    return Result::kWouldBlock;
  } catch (Parked& p) {
    *parked = std::move(p);
    return Result::kParked;
  } catch (const std::exception& e) {
    *error = e.what();
    return Result::kBadRequest;
  }
  uint8_t* reply = nullptr;
  uint32_t reply_size = 0;
  output_->getBuffer(&reply, &reply_size);
  if (reply_size <= sizeof(no_length)) {
    *error = "the request produced no reply";
    return Result::kBadRequest;
  }
  const uint32_t body = reply_size - sizeof(no_length);
  reply[0] = static_cast<uint8_t>(body >> 24);
  reply[1] = static_cast<uint8_t>(body >> 16);
  reply[2] = static_cast<uint8_t>(body >> 8);
  reply[3] = static_cast<uint8_t>(body);
  out->append(reinterpret_cast<const char*>(reply), reply_size);
  return Result::kReplied;
}

}  // namespace sessionserver
