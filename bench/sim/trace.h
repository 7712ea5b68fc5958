// The Alibaba GPU cluster trace v2023 (openb_*.csv) as the placement simulator reads it: the GPU
// nodes, one pod list, the per-seed arrival order (shuffle + inflate, FGD paper procedure) and the
// target workload that the fragmentation metric is measured against.
// Built by LoadNodes() / LoadPods() from the trace directory; see bench/README.md.
// Thread-safety: plain value types; the functions have no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/util/status.h"

namespace herd::sim {

// One row of openb_node_list_gpu_node.csv.
struct TraceNode {
  std::string name;
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  int gpus = 0;
  int model = -1;  // index into Trace::models
};

// One row of an openb_pod_list_*.csv (qos, phase and times are ignored).
struct TracePod {
  int64_t cpu_milli = 0;
  int64_t memory_mib = 0;
  int num_gpu = 0;
  int64_t gpu_milli = 0;     // per GPU; < 1000 is a share of one GPU
  uint32_t model_mask = 0;   // allowed models (bit i = Trace::models[i]); 0 = any
  int64_t TotalGpuMilli() const { return num_gpu * gpu_milli; }
};

struct Trace {
  std::vector<std::string> models;  // GPU models of the node list, in first-seen order
  std::vector<TraceNode> nodes;
  std::vector<TracePod> pods;
  int64_t GpuCapacityMilli() const;
};

// A pod shape of the target workload and its share of the trace's pods (shares sum to 1).
struct WorkloadShape {
  TracePod shape;  // memory_mib is 0: the metric ignores memory
  double popularity = 0;
};

// Reads openb_node_list_gpu_node.csv from `dir`; fills models and nodes.
Status LoadNodes(const std::string& dir, Trace* trace);
// Reads openb_pod_list_<list>.csv from `dir` into trace->pods. REQUIRES: LoadNodes() done.
// An unknown model in gpu_spec is an error (it could never be placed).
Status LoadPods(const std::string& dir, const std::string& list, Trace* trace);

// The arrival order for `seed`: the pods shuffled, then pods drawn uniformly with replacement
// until the total GPU request reaches `inflate` x capacity (indexes into trace.pods).
std::vector<int> ArrivalOrder(const Trace& trace, uint64_t seed, double inflate);

// The most common pod shapes (cpu, gpu milli, num_gpu, gpu_spec) covering `coverage` of the pods.
std::vector<WorkloadShape> TargetWorkload(const Trace& trace, double coverage);

}  // namespace herd::sim
