// The devices a confined job may open, and the eBPF device filter that enforces them on the
// cgroup v2 hierarchy, which has no devices controller: a BPF_PROG_TYPE_CGROUP_DEVICE program
// attached to the job's cgroup, which the kernel asks before each open or mknod of a device
// node by a process in that cgroup (or below it).
// Built by JobCgroup::Create. Thread-safety: stateless functions.
#pragma once

#include <vector>

#include "common/util/status.h"

namespace herd::runtime {

// A device a confined job may open: type 'c' or 'b', major:minor, minor -1 = every minor.
struct DeviceAllow {
  char type = 'c';
  int major = 0;
  int minor = -1;
  bool operator==(const DeviceAllow&) const = default;
};

// Loads the filter for `devices` and attaches it to the cgroup v2 directory open at cgroup_fd
// (further programs may be attached beside it; a device must pass all of them). The kernel keeps
// it until the cgroup is removed. kUnavailable when this kernel or process cannot (no
// CONFIG_CGROUP_BPF, no bpf(2), no CAP_BPF/CAP_SYS_ADMIN, a parent's program forbids another);
// kInvalid for a type other than 'c' or 'b' or more devices than one program can hold;
// kInternal with the verifier's log when the kernel rejects the program.
// REQUIRES: no process in the cgroup yet, or it may open other devices before this returns.
Status AttachDeviceFilter(int cgroup_fd, const std::vector<DeviceAllow>& devices);

}  // namespace herd::runtime
