// FrameProcessor: runs one framed binary Thrift request through the generated SessionService
// processor and appends the framed reply to a buffer. The serving edge's event loops and
// workers each use their own (it reuses its transports and protocols between requests).
//
// Limits: the caller has checked the frame's length against FrameLimit (storage/limits.h);
// strings and binaries inside are bounded by the same limit and containers by 1,024 elements.
//
// Not thread-safe: one per thread.
#ifndef SESSIONSERVER_SERVER_FRAME_PROCESSOR_H_
#define SESSIONSERVER_SERVER_FRAME_PROCESSOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "SessionService.h"
#include "server/request_signals.h"

namespace apache::thrift::transport {
class TMemoryBuffer;
}

namespace sessionserver {

class FrameInput;

class FrameProcessor {
 public:
  enum class Result {
    kReplied,     // the reply (length prefix included) was appended to *out
    kWouldBlock,  // nothing done: run it again where it may block (request_signals.h)
    kParked,      // nothing done: *parked says which lock it waits for and how long
    kBadRequest,  // the bytes did not decode: *error says why; close the connection
  };

  FrameProcessor(std::shared_ptr<thrift::SessionServiceIf> handler, size_t frame_limit);
  ~FrameProcessor();
  FrameProcessor(const FrameProcessor&) = delete;
  FrameProcessor& operator=(const FrameProcessor&) = delete;

  // Runs the message `frame` (its length prefix stripped). The thread's BlockingScope and
  // ParkScope decide whether WouldBlock and Parked can happen.
  Result Run(const uint8_t* frame, size_t size, std::string* out, Parked* parked,
             std::string* error);

 private:
  std::shared_ptr<FrameInput> input_;
  std::shared_ptr<apache::thrift::transport::TMemoryBuffer> output_;
  std::shared_ptr<apache::thrift::protocol::TProtocol> in_protocol_, out_protocol_;
  thrift::SessionServiceProcessor processor_;
};

}  // namespace sessionserver

#endif  // SESSIONSERVER_SERVER_FRAME_PROCESSOR_H_
