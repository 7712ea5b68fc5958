// The fed source (tests and the demo), the empty source, and the spec parser that picks one.
#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>

#include "noded/gpu/gpu.h"

namespace herd::gpu {
namespace {

class FedSource : public MetricsSource {
 public:
  explicit FedSource(std::string path) : path_(std::move(path)) {}
  std::string Name() const override { return "fed:" + path_; }

  Result<std::vector<GpuSample>> Sample() override {
    std::vector<GpuSample> samples;
    errno = 0;
    std::ifstream in(path_);
    if (!in) {
      if (errno == ENOENT) return samples;
      return Unavailable("cannot read GPU feed " + path_);
    }
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      std::istringstream fields(line);
      std::string first;
      if (!(fields >> first) || first[0] == '#') continue;
      fields.str(line);
      fields.clear();
      GpuSample s;
      std::string rest;
      bool ok = static_cast<bool>(fields >> s.index >> s.utilization_pct >> s.memory_used_mib);
      if (ok && (fields >> s.memory_total_mib)) {
        ok = s.memory_total_mib >= 0;
      } else if (ok) {
        ok = fields.eof();  // the optional total is absent, not garbled
        s.memory_total_mib = -1;
        fields.clear();
      }
      ok = ok && !(fields >> rest) && s.index >= 0 && s.utilization_pct >= 0 &&
           s.utilization_pct <= 100 && s.memory_used_mib >= 0;
      if (!ok) {
        return Invalid(path_ + ":" + std::to_string(n) +
                       ": expected 'INDEX UTIL_PCT MEM_USED_MIB [MEM_TOTAL_MIB]', got '" + line +
                       "'");
      }
      s.model = "fed";
      samples.push_back(std::move(s));
    }
    std::sort(samples.begin(), samples.end(),
              [](const GpuSample& a, const GpuSample& b) { return a.index < b.index; });
    return samples;
  }

 private:
  std::string path_;
};

class NoSource : public MetricsSource {
 public:
  std::string Name() const override { return "none"; }
  Result<std::vector<GpuSample>> Sample() override { return std::vector<GpuSample>{}; }
};

}  // namespace

std::unique_ptr<MetricsSource> OpenFedSource(const std::string& path) {
  return std::make_unique<FedSource>(path);
}

std::unique_ptr<MetricsSource> NoMetrics() { return std::make_unique<NoSource>(); }

std::unique_ptr<MetricsSource> OpenMetricsSource(const std::string& spec, std::string* note) {
  if (note != nullptr) note->clear();
  if (spec == "none") return NoMetrics();
  if (spec.rfind("fed:", 0) == 0 && spec.size() > 4) return OpenFedSource(spec.substr(4));
  if (spec == "nvml" || spec.empty()) {
    auto nvml = OpenNvml();
    if (nvml.ok()) return std::move(nvml).value();
    if (note != nullptr) *note = nvml.status().message();
    return NoMetrics();
  }
  if (note != nullptr) {
    *note =
        "unknown GPU metrics source '" + spec + "' (want nvml, fed:PATH or none): no GPU metrics";
  }
  return NoMetrics();
}

}  // namespace herd::gpu
