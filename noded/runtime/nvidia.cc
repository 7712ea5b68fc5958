#include "noded/runtime/nvidia.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>

namespace herd::runtime {
namespace {

void AddDevice(const std::string& dev_dir, const std::string& name, GpuPassthrough* out) {
  struct stat st;
  const std::string host = dev_dir + "/" + name;
  if (stat(host.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) return;
  out->devices.push_back({"/dev/" + name, static_cast<int>(major(st.st_rdev)),
                          static_cast<int>(minor(st.st_rdev))});
}

// The user-space half of the driver a CUDA program loads.
bool IsDriverLibrary(const std::string& name) {
  static const char* kPrefixes[] = {"libcuda.so", "libnvidia-ml.so", "libnvidia-ptxjitcompiler.so",
                                    "libnvidia-nvvm.so", "libnvidia-gpucomp.so",
                                    "libcudadebugger.so"};
  return std::any_of(std::begin(kPrefixes), std::end(kPrefixes),
                     [&](const char* p) { return name.rfind(p, 0) == 0; });
}

}  // namespace

GpuPassthrough FindGpuPassthrough(const std::vector<int>& gpus, const std::string& dev_dir,
                                  const std::vector<std::string>& lib_dirs) {
  GpuPassthrough out;
  if (gpus.empty()) return out;
  for (int g : gpus) AddDevice(dev_dir, "nvidia" + std::to_string(g), &out);
  if (out.devices.empty()) return out;  // no driver on this host: nothing to pass
  for (const char* shared : {"nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"}) {
    AddDevice(dev_dir, shared, &out);
  }
  for (const auto& dir : lib_dirs) {
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) continue;
    while (dirent* e = readdir(d)) {
      if (IsDriverLibrary(e->d_name)) out.libraries.push_back(dir + "/" + e->d_name);
    }
    closedir(d);
  }
  std::sort(out.libraries.begin(), out.libraries.end());
  return out;
}

std::vector<DeviceNode> FindRdmaDevices(const std::string& dev_dir) {
  GpuPassthrough found;
  DIR* d = opendir((dev_dir + "/infiniband").c_str());
  if (d == nullptr) return {};
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') AddDevice(dev_dir, std::string("infiniband/") + e->d_name, &found);
  }
  closedir(d);
  return found.devices;
}

std::vector<std::string> DefaultDriverLibDirs() {
  return {"/usr/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu/nvidia/current", "/usr/lib64",
          "/usr/local/nvidia/lib64"};
}

}  // namespace herd::runtime
