// Resources: an amount of GPU, CPU and memory, the unit of requests, capacity and quotas.
// GPUs are counted in thousandths (milli-GPUs) so fractional requests stay integers.
// Thread-safety: plain value type.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace herd::model {

struct Resources {
  int64_t gpu_milli = 0;   // 1000 = one whole GPU
  int64_t cpus = 0;        // cores
  int64_t memory_mib = 0;  // MiB

  Resources& operator+=(const Resources& o) {
    gpu_milli += o.gpu_milli;
    cpus += o.cpus;
    memory_mib += o.memory_mib;
    return *this;
  }
  Resources& operator-=(const Resources& o) {
    gpu_milli -= o.gpu_milli;
    cpus -= o.cpus;
    memory_mib -= o.memory_mib;
    return *this;
  }
  friend Resources operator+(Resources a, const Resources& b) { return a += b; }
  friend Resources operator-(Resources a, const Resources& b) { return a -= b; }
  friend Resources operator*(Resources a, int64_t n) {
    a.gpu_milli *= n;
    a.cpus *= n;
    a.memory_mib *= n;
    return a;
  }
  bool operator==(const Resources&) const = default;

  // True when every component of `r` is at most this one's.
  bool Covers(const Resources& r) const {
    return gpu_milli >= r.gpu_milli && cpus >= r.cpus && memory_mib >= r.memory_mib;
  }
  bool IsZero() const { return gpu_milli == 0 && cpus == 0 && memory_mib == 0; }
  // Components by index, for rules that treat them alike: 0 GPU milli, 1 cores, 2 memory MiB.
  static constexpr int kComponents = 3;
  int64_t Component(int c) const { return c == 0 ? gpu_milli : (c == 1 ? cpus : memory_mib); }
};

// A queue's quota on the GPUs of one type (herd.toml's "gpu.TYPE" keys; the type as
// common/model/fleet.h derives it) or of the nodes of one pool ("pool.NAME" keys): it counts only
// those GPUs, in thousandths. The queue's `gpu` quota still counts every GPU.
struct GpuTypeQuota {
  int64_t deserved_milli = 0;
  int64_t limit_milli = -1;       // -1: no limit of its own
  double over_quota_weight = -1;  // < 0: the queue's over_quota_weight
  bool operator==(const GpuTypeQuota&) const = default;
};
using GpuTypeQuotas = std::map<std::string, GpuTypeQuota>;  // by GPU type (or by pool)

// One component's amount for messages: "8 GPUs", "0.5 GPUs", "16 cores", "64G memory".
std::string AmountText(int component, int64_t value);

// "2 GPUs, 16 cores, 64G" style text for messages and tables.
std::string FormatResources(const Resources& r);

}  // namespace herd::model
