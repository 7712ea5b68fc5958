// libFuzzer target: no input may crash, hang or leak in the protocol decoder.
// Build with clang (tests/fuzz/CMakeLists.txt); run: ./proto_fuzz -max_len=4096 corpus/
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/proto/codec.h"

namespace {

template <typename... T>
void DecodeAll(std::string_view bytes) {
  ((void)herd::proto::DecodeBody<T>(bytes), ...);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace herd::proto;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto envelope = DecodeEnvelope(bytes);
  if (envelope.ok()) (void)DecodeBody<LaunchCommand>(envelope->body);
  DecodeAll<ErrorReply, SubmitRequest, SubmitReply, JobsRequest, JobsReply, JobActionRequest,
            JobActionResult, JobActionReply, LogsRequest, LogsReply, NodesRequest, NodeStatus,
            NodesReply, JobReport, RegisterRequest, RegisterReply, Heartbeat, JobEvent, EventAck,
            LaunchCommand, SignalCommand, LogsFetch, LogsData, WebTokenRequest, WebRelay,
            HistoryRequest, HistoryReply>(bytes);
  return 0;
}
