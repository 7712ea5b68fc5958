#include "noded/runtime/job_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace herd::runtime {

using nlohmann::json;

std::string SpecToJson(const ShimSpec& s) {
  const LaunchSpec& l = s.launch;
  json j = {{"job_key", l.job_key},
            {"argv", l.argv},
            {"script", l.script},
            {"session", l.session},
            {"env", l.env},
            {"cwd", l.cwd},
            {"image", l.image},
            {"uid", l.uid},
            {"gid", l.gid},
            {"cpus", l.cpus},
            {"gpus", l.gpus},
            {"memory_mib", l.memory_mib},
            {"pids_max", l.pids_max},
            {"mounts", l.mounts},
            {"stdout_path", l.stdout_path},
            {"stderr_path", l.stderr_path},
            {"append_output", l.append_output},
            {"runc_path", s.runc_path},
            {"runc_root", s.runc_root},
            {"cgroup_parent", s.cgroup_parent},
            {"use_cgroups", s.use_cgroups},
            {"allowed_volumes", s.allowed_volumes},
            {"dev_dir", s.dev_dir},
            {"max_log_bytes", s.max_log_bytes},
            {"max_image_bytes", s.max_image_bytes},
            {"min_free_bytes", s.min_free_bytes}};
  return j.dump(2) + "\n";
}

Result<ShimSpec> SpecFromJson(const std::string& text) {
  // nlohmann throws on malformed input; the exception stays inside this function.
  try {
    json j = json::parse(text);
    ShimSpec s;
    LaunchSpec& l = s.launch;
    j.at("job_key").get_to(l.job_key);
    j.at("argv").get_to(l.argv);
    l.script = j.value("script", std::string());
    l.session = j.value("session", std::string());
    j.at("env").get_to(l.env);
    j.at("cwd").get_to(l.cwd);
    j.at("image").get_to(l.image);
    j.at("uid").get_to(l.uid);
    j.at("gid").get_to(l.gid);
    j.at("cpus").get_to(l.cpus);
    if (j.contains("gpus")) j.at("gpus").get_to(l.gpus);
    j.at("memory_mib").get_to(l.memory_mib);
    j.at("pids_max").get_to(l.pids_max);
    j.at("mounts").get_to(l.mounts);
    l.stdout_path = j.value("stdout_path", std::string());
    l.stderr_path = j.value("stderr_path", std::string());
    l.append_output = j.value("append_output", false);
    j.at("runc_path").get_to(s.runc_path);
    j.at("runc_root").get_to(s.runc_root);
    j.at("cgroup_parent").get_to(s.cgroup_parent);
    j.at("use_cgroups").get_to(s.use_cgroups);
    if (j.contains("allowed_volumes")) j.at("allowed_volumes").get_to(s.allowed_volumes);
    // Absent from the specs of jobs started by an older herd-noded.
    s.dev_dir = j.value("dev_dir", std::string("/dev"));
    s.max_log_bytes = j.value("max_log_bytes", int64_t{0});
    s.max_image_bytes = j.value("max_image_bytes", int64_t{0});
    s.min_free_bytes = j.value("min_free_bytes", int64_t{0});
    return s;
  } catch (const json::exception& e) {
    return Invalid(std::string("bad job spec: ") + e.what());
  }
}

std::string ExitToJson(const ExitRecord& r) {
  json j = {{"exit_code", r.exit_code},
            {"reason", r.reason},
            {"start_failed", r.start_failed},
            {"cpu_ns", r.usage.cpu_ns},
            {"memory_bytes", r.usage.memory_bytes},
            {"memory_peak_bytes", r.usage.memory_peak_bytes}};
  return j.dump() + "\n";
}

Result<ExitRecord> ExitFromJson(const std::string& text) {
  try {
    json j = json::parse(text);
    ExitRecord r;
    j.at("exit_code").get_to(r.exit_code);
    j.at("reason").get_to(r.reason);
    j.at("start_failed").get_to(r.start_failed);
    // Records written before usage was kept lack these keys.
    r.usage.cpu_ns = j.value("cpu_ns", int64_t{-1});
    r.usage.memory_bytes = j.value("memory_bytes", int64_t{-1});
    r.usage.memory_peak_bytes = j.value("memory_peak_bytes", int64_t{-1});
    return r;
  } catch (const json::exception& e) {
    return Invalid(std::string("bad exit record: ") + e.what());
  }
}

std::string ErrnoText(int err) { return std::strerror(err); }

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    int err = errno;
    if (err == ENOENT) return NotFound(path + ": " + ErrnoText(err));
    return Internal("cannot read " + path + ": " + ErrnoText(err));
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Status WriteFile(const std::string& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot open " + path + ": " + ErrnoText(errno));
  ssize_t n = write(fd, data.data(), data.size());
  int err = errno;
  close(fd);
  if (n != static_cast<ssize_t>(data.size())) {
    return Internal("cannot write '" + data + "' to " + path + ": " + ErrnoText(err));
  }
  return Status::Ok();
}

Status WriteFileAtomic(const std::string& path, const std::string& data) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Internal("cannot create " + tmp + ": " + ErrnoText(errno));
  // No fsync: the rename makes the file whole or absent for a reader after a herd-noded or
  // herd-shim crash, and no job outlives a crash of the machine (readers treat an empty file,
  // which is what such a crash may leave, as missing). Each fsync cost a job ~6 ms of start-up.
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  int err = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    unlink(tmp.c_str());
    return Internal("cannot write " + path + ": " + ErrnoText(err));
  }
  return Status::Ok();
}

void AppendLine(const std::string& path, const std::string& line) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  std::string text = line + "\n";
  (void)!write(fd, text.data(), text.size());
  close(fd);
}

bool ProcessAlive(pid_t pid, const std::string& needle) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  // A zombie or a recycled pid has an empty or different command line.
  Result<std::string> cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  return cmdline.ok() && cmdline->find(needle) != std::string::npos;
}

}  // namespace herd::runtime
