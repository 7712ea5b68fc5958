#include "noded/runtime/cgroup.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <thread>

#include "noded/runtime/job_dir.h"

namespace herd::runtime {
namespace {

constexpr long kCgroup2Magic = 0x63677270;
constexpr long kCgroup1Magic = 0x27e0eb;

bool IsFs(const std::string& path, long magic) {
  struct statfs st;
  return statfs(path.c_str(), &st) == 0 && static_cast<long>(st.f_type) == magic;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string CpuList(const std::vector<int>& cpus) {
  std::string out;
  for (int c : cpus) out += (out.empty() ? "" : ",") + std::to_string(c);
  return out;
}

// Reads "key value" lines (memory.events, memory.oom_control) and returns key's value.
int64_t KeyedValue(const std::string& path, const std::string& key) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) return 0;
  std::istringstream in(*text);
  std::string k;
  int64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

// mkdir that reports "cannot use cgroups here" as kUnavailable.
Status MakeDir(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) return Status::Ok();
  int err = errno;
  if (err == EACCES || err == EPERM || err == EROFS || err == ENOENT) {
    return Unavailable("cannot create cgroup " + dir + ": " + ErrnoText(err));
  }
  return Internal("cannot create cgroup " + dir + ": " + ErrnoText(err));
}

// A new v1 cpuset has no cpus or mems and accepts no task until it inherits them.
Status InheritCpuset(const std::string& dir) {
  std::string parent = std::filesystem::path(dir).parent_path();
  for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
    Result<std::string> mine = ReadFile(dir + "/" + file);
    if (mine.ok() && !Trim(*mine).empty()) continue;
    Result<std::string> theirs = ReadFile(parent + "/" + file);
    if (!theirs.ok()) return theirs.status();
    HERD_RETURN_IF_ERROR(WriteFile(dir + "/" + file, Trim(*theirs)));
  }
  return Status::Ok();
}

// Enables for the children of v2 cgroup `dir` those of the controllers jobs use that `dir` has.
// A missing one fails only the job that sets its limit (the unified hierarchy of a hybrid machine
// has none of them).
Status EnableJobControllers(const std::string& dir) {
  Result<std::string> offered = ReadFile(dir + "/cgroup.controllers");
  if (!offered.ok()) return Unavailable(offered.status().message());
  std::istringstream in(*offered);
  std::string enable, name;
  while (in >> name) {
    if (name == "cpuset" || name == "memory" || name == "pids") enable += " +" + name;
  }
  if (enable.empty()) return Status::Ok();
  Status s = WriteFile(dir + "/cgroup.subtree_control", enable.substr(1));
  return s.ok() ? s : Unavailable(s.message());
}

// Creates each level of `parent` (which may be "a/b") below the hierarchy mounted at `mount`;
// v1 cpuset levels inherit cpus and mems, v2 levels get the job controllers enabled below them.
Status MakeParents(const std::string& mount, const std::string& parent, bool v2) {
  std::string dir = mount;
  for (const auto& part : std::filesystem::path(parent)) {
    if (part.empty() || part == "/") continue;
    if (v2) HERD_RETURN_IF_ERROR(EnableJobControllers(dir));
    dir += "/" + part.string();
    HERD_RETURN_IF_ERROR(MakeDir(dir));
    if (!v2 && mount.ends_with("/cpuset")) HERD_RETURN_IF_ERROR(InheritCpuset(dir));
  }
  if (v2) HERD_RETURN_IF_ERROR(EnableJobControllers(dir));
  return Status::Ok();
}

// Writes a limit into v2 cgroup `dir`; kUnavailable when its controller is not enabled there.
Status WriteV2Limit(const std::string& dir, const std::string& file, const std::string& value) {
  if (access((dir + "/" + file).c_str(), F_OK) != 0) {
    return Unavailable("no " + file + " in " + dir + ": its controller is not enabled there");
  }
  return WriteFile(dir + "/" + file, value);
}

// Attaches the eBPF device filter to v2 cgroup `dir` (new, so without processes).
Status AttachV2DeviceFilter(const std::string& dir, const std::vector<DeviceAllow>& devices) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Internal("cannot open cgroup " + dir + ": " + ErrnoText(errno));
  Status s = AttachDeviceFilter(fd, devices);
  close(fd);
  return s;
}

std::string DeviceRule(const DeviceAllow& d) {
  return std::string(1, d.type) + " " + std::to_string(d.major) + ":" +
         (d.minor < 0 ? "*" : std::to_string(d.minor)) + " rwm";
}

// Confines the v1 devices cgroup `dir` (new, so without children) to `devices`.
Status ConfineDevices(const std::string& dir, const std::vector<DeviceAllow>& devices) {
  HERD_RETURN_IF_ERROR(WriteFile(dir + "/devices.deny", "a"));
  for (const DeviceAllow& d : devices) {
    HERD_RETURN_IF_ERROR(WriteFile(dir + "/devices.allow", DeviceRule(d)));
  }
  return Status::Ok();
}

}  // namespace

std::vector<DeviceAllow> BasicDevices() {
  return {{'c', 1, 3},  {'c', 1, 5},  {'c', 1, 7},  {'c', 1, 8},  {'c', 1, 9},
          {'c', 5, 0},  {'c', 5, 1},  {'c', 5, 2},  {'c', 136, -1}};
}

CgroupMode DetectCgroupMode() {
  if (IsFs(kCgroupRoot, kCgroup2Magic)) return CgroupMode::kV2;
  bool v1 = IsFs(std::string(kCgroupRoot) + "/memory", kCgroup1Magic) ||
            IsFs(std::string(kCgroupRoot) + "/freezer", kCgroup1Magic);
  if (!v1) return CgroupMode::kNone;
  return IsFs(std::string(kCgroupRoot) + "/unified", kCgroup2Magic) ? CgroupMode::kHybrid
                                                              : CgroupMode::kV1;
}

std::string CgroupModeName(CgroupMode mode) {
  switch (mode) {
    case CgroupMode::kV1:
      return "v1";
    case CgroupMode::kHybrid:
      return "hybrid";
    case CgroupMode::kV2:
      return "v2";
    case CgroupMode::kNone:
      break;
  }
  return "none";
}

CgroupMode CgroupModeFromName(const std::string& name) {
  if (name == "v1") return CgroupMode::kV1;
  if (name == "hybrid") return CgroupMode::kHybrid;
  if (name == "v2") return CgroupMode::kV2;
  return CgroupMode::kNone;
}

JobCgroup JobCgroup::Open(CgroupMode mode, const std::string& parent, const std::string& key,
                          const std::string& root) {
  JobCgroup cg;
  cg.mode_ = mode;
  std::string rel = "/" + parent + "/" + key;
  if (mode == CgroupMode::kV2) {
    std::string dir = root + rel;
    cg.dirs_ = {dir};
    cg.memory_dir_ = cg.freezer_dir_ = cg.procs_dir_ = cg.cpuacct_dir_ = dir;
  } else if (mode != CgroupMode::kNone) {
    // Hybrid machines keep their controllers on v1, so both use the v1 hierarchies.
    for (const char* ctrl : {"memory", "cpuset", "pids", "freezer", "cpuacct", "devices"}) {
      std::string mount = root + "/" + ctrl;
      if (!IsFs(mount, kCgroup1Magic)) continue;
      std::string dir = mount + rel;
      cg.dirs_.push_back(dir);
      if (std::string(ctrl) == "memory") cg.memory_dir_ = dir;
      if (std::string(ctrl) == "freezer") cg.freezer_dir_ = dir;
      if (std::string(ctrl) == "cpuacct") cg.cpuacct_dir_ = dir;
      if (std::string(ctrl) == "devices") cg.devices_dir_ = dir;
    }
    if (!cg.dirs_.empty()) cg.procs_dir_ = cg.dirs_.front();
  }
  return cg;
}

Result<JobCgroup> JobCgroup::Create(CgroupMode mode, const std::string& parent,
                                    const std::string& key, const CgroupLimits& limits,
                                    const std::string& root) {
  if (mode == CgroupMode::kNone) return Unavailable("no cgroup hierarchy is mounted");
  if (geteuid() != 0) return Unavailable("cgroups need root");
  JobCgroup cg = Open(mode, parent, key, root);
  if (cg.dirs_.empty()) return Unavailable("no usable cgroup v1 controller");
  Status status;
  if (mode == CgroupMode::kV2) {
    // Controllers must be enabled on every level above the job's cgroup.
    status = MakeParents(root, parent, /*v2=*/true);
    if (status.ok()) status = MakeDir(cg.dirs_[0]);
    if (!status.ok()) return Unavailable(status.message());
    const std::string& d = cg.dirs_[0];
    if (limits.memory_mib > 0) {
      status = WriteV2Limit(d, "memory.max", std::to_string(limits.memory_mib << 20));
      if (status.ok() && access((d + "/memory.swap.max").c_str(), F_OK) == 0) {
        status = WriteFile(d + "/memory.swap.max", "0");
      }
    }
    if (status.ok() && limits.pids_max > 0) {
      status = WriteV2Limit(d, "pids.max", std::to_string(limits.pids_max));
    }
    if (status.ok() && !limits.cpus.empty()) {
      status = WriteV2Limit(d, "cpuset.cpus", CpuList(limits.cpus));
    }
    if (status.ok() && limits.confine_devices) {
      Status filter = AttachV2DeviceFilter(d, limits.devices);
      cg.devices_confined_ = filter.ok();
      // Without the filter the job still gets its other limits, as on v1 without devices.
      if (filter.code() == Code::kUnavailable) {
        cg.devices_note_ = filter.message();
      } else {
        status = filter;
      }
    }
  } else {
    for (const std::string& d : cg.dirs_) {
      std::string mount = d.substr(0, d.size() - parent.size() - key.size() - 2);
      status = MakeParents(mount, parent, /*v2=*/false);
      if (status.ok()) status = MakeDir(d);
      if (!status.ok()) break;
      if (d.find("/cpuset/") != std::string::npos) {
        status = InheritCpuset(d);
        if (status.ok() && !limits.cpus.empty()) {
          status = WriteFile(d + "/cpuset.cpus", CpuList(limits.cpus));
        }
      } else if (d == cg.memory_dir_ && limits.memory_mib > 0) {
        std::string bytes = std::to_string(limits.memory_mib << 20);
        status = WriteFile(d + "/memory.limit_in_bytes", bytes);
        // Without a memsw limit the job would swap instead of being killed.
        if (status.ok() && access((d + "/memory.memsw.limit_in_bytes").c_str(), F_OK) == 0) {
          (void)WriteFile(d + "/memory.memsw.limit_in_bytes", bytes);
        }
      } else if (d.find("/pids/") != std::string::npos && limits.pids_max > 0) {
        status = WriteFile(d + "/pids.max", std::to_string(limits.pids_max));
      } else if (d == cg.devices_dir_ && limits.confine_devices) {
        status = ConfineDevices(d, limits.devices);
        cg.devices_confined_ = status.ok();
      }
      if (!status.ok()) break;
    }
    if (status.ok() && limits.confine_devices && cg.devices_dir_.empty()) {
      cg.devices_note_ = "no cgroup v1 devices controller";
    }
  }
  if (!status.ok()) {
    cg.Remove();
    return status;
  }
  return cg;
}

Status JobCgroup::Attach(pid_t pid) const {
  for (const std::string& d : dirs_) {
    HERD_RETURN_IF_ERROR(WriteFile(d + "/cgroup.procs", std::to_string(pid)));
  }
  return Status::Ok();
}

std::string JobCgroup::FreezeStateFile() const {
  if (freezer_dir_.empty()) return "";
  return freezer_dir_ + (mode_ == CgroupMode::kV2 ? "/cgroup.freeze" : "/freezer.state");
}

Status JobCgroup::Freeze(bool frozen) const {
  if (freezer_dir_.empty()) return Unavailable("the job has no freezer cgroup");
  std::string file, want, done_file;
  if (mode_ == CgroupMode::kV2) {
    HERD_RETURN_IF_ERROR(WriteFile(freezer_dir_ + "/cgroup.freeze", frozen ? "1" : "0"));
    done_file = freezer_dir_ + "/cgroup.events";
    want = frozen ? "1" : "0";
  } else {
    HERD_RETURN_IF_ERROR(WriteFile(freezer_dir_ + "/freezer.state", frozen ? "FROZEN" : "THAWED"));
    done_file = freezer_dir_ + "/freezer.state";
    want = frozen ? "FROZEN" : "THAWED";
  }
  // Freezing is asynchronous: v1 passes through FREEZING, v2 reports "frozen 1" when done.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < deadline) {
    Result<std::string> state = ReadFile(done_file);
    if (!state.ok()) return state.status();
    bool reached = mode_ == CgroupMode::kV2
                       ? std::to_string(KeyedValue(done_file, "frozen")) == want
                       : Trim(*state) == want;
    if (reached) return Status::Ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return Unavailable("the job did not reach freezer state " + want + " within 2 s");
}

int64_t JobCgroup::OomKills() const {
  if (memory_dir_.empty()) return 0;
  if (mode_ == CgroupMode::kV2) return KeyedValue(memory_dir_ + "/memory.events", "oom_kill");
  return KeyedValue(memory_dir_ + "/memory.oom_control", "oom_kill");
}

CgroupUsage JobCgroup::Usage() const {
  auto number = [](const std::string& path) -> int64_t {
    Result<std::string> text = ReadFile(path);
    if (!text.ok()) return -1;
    char* end = nullptr;
    long long v = std::strtoll(text->c_str(), &end, 10);
    return end == text->c_str() ? -1 : v;
  };
  CgroupUsage u;
  if (mode_ == CgroupMode::kV2) {
    if (access((cpuacct_dir_ + "/cpu.stat").c_str(), F_OK) == 0) {
      u.cpu_ns = KeyedValue(cpuacct_dir_ + "/cpu.stat", "usage_usec") * 1000;
    }
    u.memory_bytes = number(memory_dir_ + "/memory.current");
    u.memory_peak_bytes = number(memory_dir_ + "/memory.peak");  // kernels from 5.19
  } else {
    if (!cpuacct_dir_.empty()) u.cpu_ns = number(cpuacct_dir_ + "/cpuacct.usage");
    if (!memory_dir_.empty()) {
      u.memory_bytes = number(memory_dir_ + "/memory.usage_in_bytes");
      u.memory_peak_bytes = number(memory_dir_ + "/memory.max_usage_in_bytes");
    }
  }
  return u;
}

std::vector<pid_t> JobCgroup::Pids() const {
  std::vector<pid_t> pids;
  if (procs_dir_.empty()) return pids;
  Result<std::string> text = ReadFile(procs_dir_ + "/cgroup.procs");
  if (!text.ok()) return pids;
  std::istringstream in(*text);
  pid_t pid;
  while (in >> pid) pids.push_back(pid);
  return pids;
}

Status JobCgroup::KillAll(std::chrono::milliseconds timeout) const {
  if (Pids().empty()) return Status::Ok();
  // Frozen, the job cannot fork a process the kills below would miss.
  const bool froze = CanFreeze() && Freeze(true).ok();
  for (pid_t p : Pids()) kill(p, SIGKILL);
  // A frozen process acts on SIGKILL only once thawed.
  if (froze) (void)Freeze(false);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::vector<pid_t> left = Pids();
    if (left.empty()) return Status::Ok();
    if (std::chrono::steady_clock::now() >= deadline) {
      return Unavailable(std::to_string(left.size()) + " processes of the job survived SIGKILL");
    }
    for (pid_t p : left) kill(p, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void JobCgroup::Remove() const {
  // The parent stays: removing it could race with another job's Create (runc's included).
  for (const std::string& d : dirs_) rmdir(d.c_str());
}

}  // namespace herd::runtime
