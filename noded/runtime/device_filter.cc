#include "noded/runtime/device_filter.h"

#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "noded/runtime/job_dir.h"

namespace herd::runtime {
namespace {

// Registers: r1 holds the context (struct bpf_cgroup_dev_ctx) on entry, r0 the verdict on exit.
constexpr uint8_t kCtx = 1, kType = 2, kMajor = 3, kMinor = 4, kVerdict = 0;

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn insn;
  std::memset(&insn, 0, sizeof insn);
  insn.code = code;
  insn.dst_reg = dst & 0xf;
  insn.src_reg = src & 0xf;
  insn.off = off;
  insn.imm = imm;
  return insn;
}

// dst = the 32-bit context field at `offset`.
bpf_insn LoadField(uint8_t dst, size_t offset) {
  return Insn(BPF_LDX | BPF_MEM | BPF_W, dst, kCtx, static_cast<int16_t>(offset), 0);
}

// Skips `skip` instructions unless reg == value.
bpf_insn SkipUnlessEqual(uint8_t reg, int32_t value, int skip) {
  return Insn(BPF_JMP | BPF_JNE | BPF_K, reg, 0, static_cast<int16_t>(skip), value);
}

void Return(std::vector<bpf_insn>* prog, int32_t verdict) {
  prog->push_back(Insn(BPF_ALU64 | BPF_MOV | BPF_K, kVerdict, 0, 0, verdict));
  prog->push_back(Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0));
}

// One test per allowed device, in order; the first that matches allows the access, whatever it
// is (read, write or mknod, as the v1 rule "rwm"). Nothing matched: denied.
Result<std::vector<bpf_insn>> Program(const std::vector<DeviceAllow>& devices) {
  std::vector<bpf_insn> prog = {
      LoadField(kType, offsetof(bpf_cgroup_dev_ctx, access_type)),
      // The device type is the low 16 bits, the access the high 16.
      Insn(BPF_ALU | BPF_AND | BPF_K, kType, 0, 0, 0xffff),
      LoadField(kMajor, offsetof(bpf_cgroup_dev_ctx, major)),
      LoadField(kMinor, offsetof(bpf_cgroup_dev_ctx, minor)),
  };
  for (const DeviceAllow& d : devices) {
    if ((d.type != 'c' && d.type != 'b') || d.major < 0) {
      return Invalid(std::string("bad device rule '") + d.type + " " + std::to_string(d.major) +
                     ":" + std::to_string(d.minor) + "'");
    }
    const int32_t type = d.type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK;
    // Each test skips to the next device's: past the other tests and the two "allow" insns.
    const int tests = d.minor < 0 ? 2 : 3;
    prog.push_back(SkipUnlessEqual(kType, type, tests - 1 + 2));
    prog.push_back(SkipUnlessEqual(kMajor, d.major, tests - 2 + 2));
    if (d.minor >= 0) prog.push_back(SkipUnlessEqual(kMinor, d.minor, 2));
    Return(&prog, 1);
  }
  Return(&prog, 0);
  if (prog.size() > BPF_MAXINSNS) {
    return Invalid(std::to_string(devices.size()) + " device rules are more than one eBPF " +
                   "device filter holds");
  }
  return prog;
}

int Bpf(int cmd, bpf_attr* attr) {
  return static_cast<int>(syscall(SYS_bpf, cmd, attr, sizeof *attr));
}

// The verifier's log on one line, its end (where the reason is) kept when it is long.
std::string OneLine(const std::string& log) {
  std::string out;
  for (char c : log) {
    if (c == '\0') break;
    out += c == '\n' ? std::string(" | ") : std::string(1, c);
  }
  while (out.ends_with(" | ")) out.resize(out.size() - 3);
  constexpr size_t kKeep = 2000;
  return out.size() > kKeep ? "..." + out.substr(out.size() - kKeep) : out;
}

// Why bpf(2) refused to load or attach the program: what this kernel or process lacks.
std::string Hint(int err, bool attach) {
  switch (err) {
    case EPERM:
    case EACCES:
      return attach ? " (needs CAP_SYS_ADMIN, and a parent cgroup's device program attached "
                      "without BPF_F_ALLOW_MULTI forbids one below it)"
                    : " (needs root with CAP_BPF or CAP_SYS_ADMIN)";
    case ENOSYS:
      return " (kernel without bpf(2): CONFIG_BPF_SYSCALL)";
    case EINVAL:
      return " (kernel without cgroup eBPF: CONFIG_CGROUP_BPF)";
    default:
      return "";
  }
}

// Loads the program; the returned fd is the caller's to close.
Result<int> Load(const std::vector<bpf_insn>& prog) {
  static const char kLicense[] = "GPL";
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = reinterpret_cast<uintptr_t>(prog.data());
  attr.insn_cnt = static_cast<uint32_t>(prog.size());
  attr.license = reinterpret_cast<uintptr_t>(kLicense);
  int fd = Bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return fd;
  int err = errno;
  // Loaded again with the verifier's log only when it failed: the log costs nothing then.
  std::string log(64 * 1024, '\0');
  attr.log_level = 1;
  attr.log_buf = reinterpret_cast<uintptr_t>(log.data());
  attr.log_size = static_cast<uint32_t>(log.size());
  fd = Bpf(BPF_PROG_LOAD, &attr);
  if (fd >= 0) return fd;
  std::string why = OneLine(log);
  if (!why.empty()) {
    return Internal("the kernel rejected herd's eBPF device filter: " + ErrnoText(errno) +
                    "; verifier: " + why);
  }
  return Unavailable("cannot load an eBPF device filter: " + ErrnoText(err) + Hint(err, false));
}

}  // namespace

Status AttachDeviceFilter(int cgroup_fd, const std::vector<DeviceAllow>& devices) {
  Result<std::vector<bpf_insn>> prog = Program(devices);
  if (!prog.ok()) return prog.status();
  Result<int> prog_fd = Load(*prog);
  if (!prog_fd.ok()) return prog_fd.status();
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.target_fd = static_cast<uint32_t>(cgroup_fd);
  attr.attach_bpf_fd = static_cast<uint32_t>(*prog_fd);
  attr.attach_type = BPF_CGROUP_DEVICE;
  // A job's cgroup is new, so has no program of its own; those of its parents run as well.
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  int rc = Bpf(BPF_PROG_ATTACH, &attr);
  int err = errno;
  // The cgroup holds its own reference to an attached program.
  close(*prog_fd);
  if (rc == 0) return Status::Ok();
  std::string message = "cannot attach the eBPF device filter: " + ErrnoText(err) + Hint(err, true);
  if (err == EPERM || err == EACCES || err == EINVAL || err == EOPNOTSUPP) {
    return Unavailable(message);
  }
  return Internal(message);
}

}  // namespace herd::runtime
