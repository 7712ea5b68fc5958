// NVML through dlopen: the few NVML types and prototypes herd uses are declared here, so neither
// the build nor herd-noded needs the NVIDIA driver or its headers.
#include <dlfcn.h>

#include <algorithm>
#include <cctype>

#include "noded/gpu/gpu.h"

namespace herd::gpu {
namespace {

// Declared after NVML's public header (nvml.h); only the parts herd reads.
using nvmlReturn_t = int;
using nvmlDevice_t = struct nvmlDevice_st*;
constexpr nvmlReturn_t kNvmlSuccess = 0;
struct nvmlUtilization_t {
  unsigned int gpu;
  unsigned int memory;
};
struct nvmlMemory_t {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
struct nvmlPciInfo_t {
  char busIdLegacy[16];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[32];
};
constexpr unsigned int kNvmlStringSize = 96;  // NVML_DEVICE_UUID_V2_BUFFER_SIZE, NAME_V2

struct NvmlApi {
  nvmlReturn_t (*init)();
  nvmlReturn_t (*shutdown)();
  nvmlReturn_t (*get_count)(unsigned int*);
  nvmlReturn_t (*get_handle)(unsigned int, nvmlDevice_t*);
  nvmlReturn_t (*get_pci)(nvmlDevice_t, nvmlPciInfo_t*);
  nvmlReturn_t (*get_uuid)(nvmlDevice_t, char*, unsigned int);
  nvmlReturn_t (*get_name)(nvmlDevice_t, char*, unsigned int);
  nvmlReturn_t (*get_utilization)(nvmlDevice_t, nvmlUtilization_t*);
  nvmlReturn_t (*get_memory)(nvmlDevice_t, nvmlMemory_t*);
  const char* (*error_string)(nvmlReturn_t);  // optional
};

constexpr int64_t kMib = 1024 * 1024;

class NvmlSource : public MetricsSource {
 public:
  NvmlSource(void* lib, NvmlApi api) : lib_(lib), api_(api) {}
  ~NvmlSource() override {
    api_.shutdown();
    dlclose(lib_);
  }
  std::string Name() const override { return "nvml"; }

  Result<std::vector<GpuSample>> Sample() override {
    unsigned int count = 0;
    if (nvmlReturn_t r = api_.get_count(&count); r != kNvmlSuccess) {
      return Unavailable("nvmlDeviceGetCount_v2: " + Error(r));
    }
    std::vector<GpuSample> samples;
    for (unsigned int i = 0; i < count; ++i) {
      nvmlDevice_t dev = nullptr;
      if (nvmlReturn_t r = api_.get_handle(i, &dev); r != kNvmlSuccess) {
        return Unavailable("nvmlDeviceGetHandleByIndex_v2(" + std::to_string(i) + "): " + Error(r));
      }
      GpuSample s;
      nvmlPciInfo_t pci{};
      if (nvmlReturn_t r = api_.get_pci(dev, &pci); r != kNvmlSuccess) {
        return Unavailable("nvmlDeviceGetPciInfo_v3(" + std::to_string(i) + "): " + Error(r));
      }
      pci.busId[sizeof(pci.busId) - 1] = '\0';
      s.pci_bus_id = NormalizePciBusId(pci.busId);
      char text[kNvmlStringSize] = {};
      if (api_.get_uuid(dev, text, sizeof(text)) == kNvmlSuccess) s.uuid = text;
      text[0] = '\0';
      if (api_.get_name(dev, text, sizeof(text)) == kNvmlSuccess) s.model = text;
      // Utilization is unsupported on some GPUs (and under MIG): it stays unknown (-1).
      nvmlUtilization_t util{};
      if (api_.get_utilization(dev, &util) == kNvmlSuccess) s.utilization_pct = util.gpu;
      nvmlMemory_t mem{};
      if (api_.get_memory(dev, &mem) == kNvmlSuccess) {
        s.memory_used_mib = static_cast<int64_t>(mem.used / kMib);
        s.memory_total_mib = static_cast<int64_t>(mem.total / kMib);
      }
      samples.push_back(std::move(s));
    }
    // NVML's own order may differ from CUDA's; PCI bus order is what CUDA_DEVICE_ORDER=PCI_BUS_ID
    // and hwloc use, and the normalized ids sort in that order.
    std::sort(samples.begin(), samples.end(),
              [](const GpuSample& a, const GpuSample& b) { return a.pci_bus_id < b.pci_bus_id; });
    for (size_t i = 0; i < samples.size(); ++i) samples[i].index = static_cast<int>(i);
    return samples;
  }

 private:
  std::string Error(nvmlReturn_t r) const {
    if (api_.error_string != nullptr) return api_.error_string(r);
    return "NVML error " + std::to_string(r);
  }

  void* lib_;
  NvmlApi api_;
};

template <typename F>
bool Bind(void* lib, const char* name, F* fn, std::string* missing) {
  *fn = reinterpret_cast<F>(dlsym(lib, name));
  if (*fn == nullptr && missing->empty()) *missing = name;
  return *fn != nullptr;
}

}  // namespace

std::string NormalizePciBusId(const std::string& bus_id) {
  std::string id;
  for (char c : bus_id) id += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  // "00000000:07:00.0" -> "0000:07:00.0"; a missing domain means domain 0.
  size_t colons = std::count(id.begin(), id.end(), ':');
  if (colons == 1) return "0000:" + id;
  size_t first = id.find(':');
  if (colons == 2 && first > 4) {
    std::string domain = id.substr(0, first);
    size_t nonzero = domain.find_first_not_of('0');
    std::string digits = nonzero == std::string::npos ? "0" : domain.substr(nonzero);
    if (digits.size() < 4) digits.insert(0, 4 - digits.size(), '0');
    return digits + id.substr(first);
  }
  return id;
}

Result<std::unique_ptr<MetricsSource>> OpenNvml() {
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) return NotFound("libnvidia-ml.so.1 not found: no GPU metrics");
  NvmlApi api{};
  std::string missing;
  Bind(lib, "nvmlInit_v2", &api.init, &missing);
  Bind(lib, "nvmlShutdown", &api.shutdown, &missing);
  Bind(lib, "nvmlDeviceGetCount_v2", &api.get_count, &missing);
  Bind(lib, "nvmlDeviceGetHandleByIndex_v2", &api.get_handle, &missing);
  Bind(lib, "nvmlDeviceGetPciInfo_v3", &api.get_pci, &missing);
  Bind(lib, "nvmlDeviceGetUUID", &api.get_uuid, &missing);
  Bind(lib, "nvmlDeviceGetName", &api.get_name, &missing);
  Bind(lib, "nvmlDeviceGetUtilizationRates", &api.get_utilization, &missing);
  Bind(lib, "nvmlDeviceGetMemoryInfo", &api.get_memory, &missing);
  std::string unused;
  Bind(lib, "nvmlErrorString", &api.error_string, &unused);
  if (!missing.empty()) {
    dlclose(lib);
    return Unavailable("libnvidia-ml.so.1 lacks " + missing + " (driver too old?): no GPU metrics");
  }
  if (nvmlReturn_t r = api.init(); r != kNvmlSuccess) {
    std::string why =
        api.error_string != nullptr ? api.error_string(r) : "NVML error " + std::to_string(r);
    dlclose(lib);
    return Unavailable("nvmlInit_v2 failed: " + why + ": no GPU metrics");
  }
  return std::unique_ptr<MetricsSource>(std::make_unique<NvmlSource>(lib, api));
}

void EnrichTopology(model::NodeTopology* topo, const std::vector<GpuSample>& samples) {
  for (auto& g : topo->gpus) {
    std::string id = NormalizePciBusId(g.pci_bus_id);
    for (const auto& s : samples) {
      if (s.pci_bus_id.empty() || NormalizePciBusId(s.pci_bus_id) != id) continue;
      if (s.memory_total_mib >= 0) g.memory_mib = s.memory_total_mib;
      if (!s.uuid.empty()) g.uuid = s.uuid;
      if (!s.model.empty()) g.model = s.model;
      break;
    }
  }
}

}  // namespace herd::gpu
