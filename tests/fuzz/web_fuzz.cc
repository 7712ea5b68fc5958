// libFuzzer target: no input may crash, hang or leak in herd-web's REST API handlers (web/api.h):
// the bytes are a job spec's JSON body, and split, a path (such as /api/v1/jobs/1/log or
// /api/v1/jobs/1/hold), a query value and a Cookie header. Build
// with clang (tests/fuzz/CMakeLists.txt); run: ./web_fuzz -max_len=8192 corpus/
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/proto/codec.h"
#include "web/api.h"

namespace {

// Answers every relayed request as herd-ctld would answer a valid one, so the fuzzer reaches the
// code after herd-ctld's reply too.
class FuzzCtldLink : public herd::web::CtldLink {
 public:
  herd::Result<herd::proto::Envelope> Relay(const std::string&,
                                            herd::proto::Envelope inner) override {
    using namespace herd::proto;
    if (inner.type == MessageName<SubmitRequest>()) return MakeEnvelope(SubmitReply{1});
    if (inner.type == MessageName<JobsRequest>()) {
      herd::model::Job j;
      j.id = 1;
      return MakeEnvelope(JobsReply{{j}, true});
    }
    if (inner.type == MessageName<JobActionRequest>()) {
      return MakeEnvelope(JobActionReply{{{1, false, "not found", 0}}});
    }
    if (inner.type == MessageName<LogsRequest>()) {
      return MakeEnvelope(LogsReply{std::string("out\n\xff\0", 6), 3, false});
    }
    if (inner.type == MessageName<WhyRequest>()) return MakeEnvelope(WhyReply{});
    return herd::NotFound("no such thing");
  }
  herd::Result<herd::proto::WebTokenReply> WebToken(const herd::proto::WebTokenRequest&) override {
    return herd::BadToken("unknown");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static FuzzCtldLink link;
  static const herd::web::Api api(&link, {});
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  (void)herd::web::ParseSubmission(bytes);

  herd::web::HttpRequest submit;
  submit.method = "POST";
  submit.path = "/api/v1/jobs";
  submit.headers["authorization"] = "Bearer t";
  submit.body = bytes;
  (void)api.Handle(submit);

  // Split at the first two newlines: a path, a query value, a Cookie header.
  const size_t a = bytes.find('\n');
  const size_t b = a == std::string::npos ? a : bytes.find('\n', a + 1);
  herd::web::HttpRequest other;
  other.method = size % 2 ? "POST" : "GET";
  other.path = bytes.substr(0, a);
  if (a != std::string::npos) {
    const std::string value = bytes.substr(a + 1, b == std::string::npos ? b : b - a - 1);
    for (const char* name :
         {"state", "limit", "after", "since", "until", "by", "format", "token", "worker", "stream",
          "bytes", "series", "key", "points", "offset", "brief"}) {
      other.params.emplace(name, value);
    }
  }
  if (b != std::string::npos) other.headers["cookie"] = bytes.substr(b + 1);
  (void)api.Handle(other);
  other.headers["authorization"] = "Bearer t";
  (void)api.Handle(other);
  return 0;
}
