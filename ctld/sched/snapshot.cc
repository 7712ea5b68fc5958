#include "ctld/sched/snapshot.h"

#include <algorithm>

#include "ctld/sched/internal.h"

namespace herd::sched {

void TakeFromNode(NodeView& node, const model::WorkerPlacement& w, int64_t gpu_memory_mib) {
  for (int g : w.gpus) {
    for (GpuSlot& slot : node.gpus) {
      if (slot.index != g) continue;
      slot.free_milli -= w.gpu_milli_each;
      slot.free_memory_mib -= internal::GpuMemoryTaken(slot, w.gpu_milli_each, gpu_memory_mib);
    }
  }
  for (auto& [numa, cores] : node.free_cores_by_numa) {
    std::erase_if(cores, [&](int c) { return std::find(w.cores.begin(), w.cores.end(), c) != w.cores.end(); });
  }
  node.free_memory_mib -= w.memory_mib;
}

}  // namespace herd::sched
