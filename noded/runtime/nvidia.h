// What a container needs to use its GPUs: the /dev/nvidia* device nodes of those GPUs (and the
// shared control nodes), and the host's NVIDIA driver libraries bound in read-only.
// Built by the shim when it writes a container's config.json; reads the filesystem only.
// Thread-safety: pure apart from stat/readdir.
#pragma once

#include <string>
#include <vector>

namespace herd::runtime {

struct DeviceNode {
  std::string path;  // as inside the container (same as on the host)
  int major = 0;
  int minor = 0;
};

struct GpuPassthrough {
  std::vector<DeviceNode> devices;    // character devices to create and allow
  std::vector<std::string> libraries; // host files to bind read-only at the same path
};

// `gpus`: the job's GPU indexes (/dev/nvidiaN). dev_dir: "/dev" (tests pass another);
// lib_dirs: where the driver's libcuda/libnvidia-* live. Absent files are skipped: on a host
// without NVIDIA's driver the result is empty.
GpuPassthrough FindGpuPassthrough(const std::vector<int>& gpus, const std::string& dev_dir,
                                  const std::vector<std::string>& lib_dirs);

// The RDMA device nodes under dev_dir/infiniband (uverbsN, rdma_cm, umadN...) that NCCL and MPI
// open for InfiniBand and RoCE; empty on a host without them.
std::vector<DeviceNode> FindRdmaDevices(const std::string& dev_dir);

// The default library directories of Debian and NVIDIA's installers.
std::vector<std::string> DefaultDriverLibDirs();

}  // namespace herd::runtime
