// What herd-ctld spends decoding one request: a submit as `herd submit` sends it (the spec of a
// training job with its command, environment and resources), encoded once and decoded N times.
//   build/bin/codec_bench --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include "common/proto/codec.h"
#include "common/proto/messages.h"

namespace herd::proto {
namespace {

SubmitRequest TypicalSubmit() {
  SubmitRequest r;
  r.spec.name = "train-resnet";
  r.spec.argv = {"python", "train.py", "--lr", "0.1"};
  r.spec.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/home/alice"}};
  r.spec.cwd = "/home/alice/exp";
  r.spec.project = "vision";
  r.spec.job_class = "train";
  r.spec.gpu_milli = 1000;
  r.spec.cpus = 4;
  r.spec.memory_mib = 16384;
  return r;
}

void BM_DecodeSubmit(benchmark::State& state) {
  const std::string bytes = EncodeBody(TypicalSubmit());
  for (auto _ : state) {
    auto r = DecodeBody<SubmitRequest>(bytes);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes.size()));
}
BENCHMARK(BM_DecodeSubmit);

}  // namespace
}  // namespace herd::proto
