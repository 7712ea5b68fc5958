// GPU metrics and GPU sharing for herd-noded.
// MetricsSource samples per-GPU utilization and memory: from NVML (libnvidia-ml.so.1 loaded with
// dlopen, so herd-noded builds and runs on hosts without the NVIDIA driver), from a small text file
// (tests and the demo only), or from nothing. EnrichTopology fills what hwloc cannot see (memory,
// UUID, model) into a discovered topology. MpsManager runs one NVIDIA MPS control daemon per
// shared GPU and gives fractional-GPU jobs their environment.
// Built by herd-noded (one of each per daemon). Thread-safety: none; use from one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/model/node.h"
#include "common/util/status.h"

namespace herd::gpu {

// One GPU at one instant. -1 and "" mean unknown.
struct GpuSample {
  int index = 0;             // CUDA index (position in PCI bus order)
  std::string uuid;          // "GPU-8f6c..."
  std::string pci_bus_id;    // "0000:07:00.0": 4-digit domain, lowercase, as hwloc writes it
  int utilization_pct = -1;  // SM activity over the driver's last sample period
  int64_t memory_used_mib = -1;
  int64_t memory_total_mib = -1;
  std::string model;  // "NVIDIA A100-SXM4-40GB"
  bool operator==(const GpuSample&) const = default;
};

// Where GPU samples come from. One per herd-noded; not thread-safe.
class MetricsSource {
 public:
  virtual ~MetricsSource() = default;
  // "nvml", "fed:PATH" or "none".
  virtual std::string Name() const = 0;
  // One sample per GPU, sorted by CUDA index (PCI bus order). Empty when no GPU is known.
  virtual Result<std::vector<GpuSample>> Sample() = 0;
};

// Loads libnvidia-ml.so.1 and initializes NVML; samples are sorted by PCI bus id so indexes match
// CUDA_DEVICE_ORDER=PCI_BUS_ID. kNotFound "libnvidia-ml.so.1 not found: no GPU metrics" when the
// library is absent; kUnavailable when it lacks a symbol or nvmlInit_v2 fails (no driver loaded).
Result<std::unique_ptr<MetricsSource>> OpenNvml();

// FOR TESTS AND THE DEMO ONLY. Reads `path` at every Sample(): one line per GPU,
// "INDEX UTIL_PCT MEM_USED_MIB [MEM_TOTAL_MIB]"; blank lines and lines starting with '#' are
// skipped. A missing file gives no samples. A malformed line makes Sample() fail with kInvalid
// naming the file and line (a feed that is half understood would mislead more than an error;
// writers should replace the file atomically with rename). Name() is "fed:PATH".
std::unique_ptr<MetricsSource> OpenFedSource(const std::string& path);

// A source with no GPUs: Name() "none", Sample() always empty.
std::unique_ptr<MetricsSource> NoMetrics();

// Picks a source from a spec: "nvml" (also ""), "fed:PATH" or "none". Never fails: when NVML
// cannot be opened, or the spec is unknown, returns NoMetrics() and sets *note (if non-null) to a
// one-line message worth logging; *note is cleared otherwise.
std::unique_ptr<MetricsSource> OpenMetricsSource(const std::string& spec, std::string* note);

// Copies memory_total_mib, uuid and model of each sample into the GPU of `topo` with the same
// PCI bus id (domain width and case ignored). Unknown sample fields and unmatched GPUs are left
// as they are.
void EnrichTopology(model::NodeTopology* topo, const std::vector<GpuSample>& samples);

// Normalizes a PCI bus id to hwloc's form "dddd:bb:dd.f" (NVML writes an 8-digit domain).
std::string NormalizePciBusId(const std::string& bus_id);

// Runs NVIDIA MPS for fractional GPUs: one control daemon per shared GPU, started on its first
// job with CUDA_VISIBLE_DEVICES=<gpu> and pipe/log directories under <state_dir>/mps/<gpu>/,
// stopped ("quit" on the control binary's stdin) when its last job is released. Without the
// control binary, limits are advisory: jobs only get HERD_GPU_MEMORY_LIMIT and HERD_GPU_LIMITS.
// Daemons are not stopped by the destructor: jobs outlive a herd-noded restart.
// Built by herd-noded. Thread-safety: none.
class MpsManager {
 public:
  // `control_binary` "" searches PATH for nvidia-cuda-mps-control.
  MpsManager(std::string state_dir, std::string control_binary);

  // Whether the control binary was found (and is executable).
  bool Available() const;

  // Environment for job `job_key` using `milli` thousandths of GPU `gpu` with at most
  // `mem_limit_mib` MiB of its memory (0 = no limit); starts the GPU's daemon when needed.
  // With MPS: CUDA_MPS_PIPE_DIRECTORY, CUDA_MPS_LOG_DIRECTORY, CUDA_MPS_ACTIVE_THREAD_PERCENTAGE
  // (ceil(milli/10)), CUDA_MPS_PINNED_DEVICE_MEM_LIMIT ("0=<N>M", if a limit), and
  // HERD_GPU_LIMITS=enforced-mps. Without: HERD_GPU_MEMORY_LIMIT=<N>M (if a limit) and
  // HERD_GPU_LIMITS=advisory. Acquiring the same key for the same GPU again is a no-op that
  // returns the same environment. kInvalid for bad arguments or a key held on another GPU;
  // kUnavailable when the daemon does not start.
  Result<std::vector<std::pair<std::string, std::string>>> Acquire(const std::string& job_key,
                                                                   int gpu, int64_t milli,
                                                                   int64_t mem_limit_mib);

  // Forgets `job_key` (unknown keys are ignored); stops the GPU's daemon when no job uses it.
  // A failure to stop is ignored: the daemon is forgotten either way.
  void Release(const std::string& job_key);

 private:
  std::string GpuDir(int gpu) const;
  std::vector<std::pair<std::string, std::string>> DaemonEnv(int gpu) const;
  Status StartDaemon(int gpu);
  Status StopDaemon(int gpu);

  std::string state_dir_;
  std::string control_binary_;       // resolved path; empty when unavailable
  std::map<std::string, int> jobs_;  // job key -> GPU
  std::map<int, int> users_;         // GPU with a running daemon -> number of jobs on it
};

}  // namespace herd::gpu
