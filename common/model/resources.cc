#include "common/model/resources.h"

#include "common/model/units.h"

namespace herd::model {

std::string AmountText(int component, int64_t v) {
  if (component == 0) return FormatGpuMilli(v) + (v == 1000 ? " GPU" : " GPUs");
  if (component == 1) return std::to_string(v) + (v == 1 ? " core" : " cores");
  return FormatSizeMiB(v) + " memory";
}

std::string FormatResources(const Resources& r) {
  std::string out = FormatGpuMilli(r.gpu_milli) + (r.gpu_milli == 1000 ? " GPU" : " GPUs");
  out += ", " + std::to_string(r.cpus) + (r.cpus == 1 ? " core" : " cores");
  out += ", " + FormatSizeMiB(r.memory_mib);
  return out;
}

}  // namespace herd::model
