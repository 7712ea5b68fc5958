// MpsManager: the control binary is run with posix_spawn (no shell), its output appended to
// <state>/mps/<gpu>/control.out so a failure can be diagnosed from the message alone.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "noded/gpu/gpu.h"

extern char** environ;

namespace herd::gpu {
namespace {

constexpr char kControlName[] = "nvidia-cuda-mps-control";
constexpr auto kControlTimeout = std::chrono::seconds(10);

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// `name` itself when it contains a '/', else the first executable `name` on PATH; "" if none.
std::string FindExecutable(const std::string& name) {
  if (name.find('/') != std::string::npos) return IsExecutableFile(name) ? name : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (IsExecutableFile(candidate)) return candidate;
    start = end + 1;
  }
  return "";
}

// Runs `argv` with this process's environment overlaid by `env`, `input` on its stdin and its
// output appended to `output`; waits at most kControlTimeout. Returns the exit status or an error.
Result<int> Run(const std::vector<std::string>& argv,
                const std::vector<std::pair<std::string, std::string>>& env,
                const std::string& input, const std::string& output) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    bool overridden = false;
    for (const auto& [k, v] : env) overridden = overridden || entry.rfind(k + "=", 0) == 0;
    if (!overridden) env_strings.push_back(std::move(entry));
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);

  int out = open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) return Internal("cannot open " + output + ": " + std::strerror(errno));
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    close(out);
    return Internal(std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out, 1);
  posix_spawn_file_actions_adddup2(&actions, out, 2);
  pid_t pid = -1;
  int err = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out);
  if (err != 0) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return Unavailable("cannot run " + argv[0] + ": " + std::strerror(err));
  }
  // The read end stays open here until the input is written, so a child that exits without
  // reading cannot raise SIGPIPE in herd-noded. The input is a few bytes: it fits the pipe.
  if (!input.empty() && write(pipe_fds[1], input.data(), input.size()) < 0) err = errno;
  close(pipe_fds[1]);
  close(pipe_fds[0]);

  auto deadline = std::chrono::steady_clock::now() + kControlTimeout;
  int wstatus = 0;
  while (true) {
    pid_t r = waitpid(pid, &wstatus, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return Internal(std::string("waitpid: ") + std::strerror(errno));
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &wstatus, 0);
      return Unavailable(argv[0] + " did not finish within 10 s; see " + output);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a child with a deadline
  }
  if (err != 0) return Internal("writing to " + argv[0] + ": " + std::strerror(err));
  if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
  return 128 + WTERMSIG(wstatus);
}

}  // namespace

MpsManager::MpsManager(std::string state_dir, std::string control_binary)
    : state_dir_(std::move(state_dir)),
      control_binary_(FindExecutable(control_binary.empty() ? kControlName : control_binary)) {}

bool MpsManager::Available() const { return !control_binary_.empty(); }

std::string MpsManager::GpuDir(int gpu) const { return state_dir_ + "/mps/" + std::to_string(gpu); }

std::vector<std::pair<std::string, std::string>> MpsManager::DaemonEnv(int gpu) const {
  return {{"CUDA_VISIBLE_DEVICES", std::to_string(gpu)},
          {"CUDA_MPS_PIPE_DIRECTORY", GpuDir(gpu) + "/pipe"},
          {"CUDA_MPS_LOG_DIRECTORY", GpuDir(gpu) + "/log"}};
}

Status MpsManager::StartDaemon(int gpu) {
  std::error_code ec;
  for (const char* sub : {"/pipe", "/log"}) {
    std::filesystem::create_directories(GpuDir(gpu) + sub, ec);
    if (ec) return Internal("cannot create " + GpuDir(gpu) + sub + ": " + ec.message());
  }
  std::string output = GpuDir(gpu) + "/control.out";
  auto rc = Run({control_binary_, "-d"}, DaemonEnv(gpu), "", output);
  if (!rc.ok()) return rc.status();
  if (*rc != 0) {
    return Unavailable("MPS control daemon for GPU " + std::to_string(gpu) + " did not start (" +
                       control_binary_ + " -d exited with " + std::to_string(*rc) + "); see " +
                       output);
  }
  return Status::Ok();
}

Status MpsManager::StopDaemon(int gpu) {
  std::string output = GpuDir(gpu) + "/control.out";
  auto rc = Run({control_binary_}, DaemonEnv(gpu), "quit\n", output);
  if (!rc.ok()) return rc.status();
  if (*rc != 0) return Unavailable("MPS quit for GPU " + std::to_string(gpu) + " failed");
  return Status::Ok();
}

Result<std::vector<std::pair<std::string, std::string>>> MpsManager::Acquire(
    const std::string& job_key, int gpu, int64_t milli, int64_t mem_limit_mib) {
  if (job_key.empty() || gpu < 0 || milli <= 0 || milli > 1000 || mem_limit_mib < 0) {
    return Invalid("MPS acquire: bad arguments (job '" + job_key + "', gpu " + std::to_string(gpu) +
                   ", milli " + std::to_string(milli) + ", memory " +
                   std::to_string(mem_limit_mib) + " MiB)");
  }
  std::vector<std::pair<std::string, std::string>> env;
  std::string mem = std::to_string(mem_limit_mib) + "M";
  if (!Available()) {
    if (mem_limit_mib > 0) env.emplace_back("HERD_GPU_MEMORY_LIMIT", mem);
    env.emplace_back("HERD_GPU_LIMITS", "advisory");
    return env;
  }
  auto held = jobs_.find(job_key);
  if (held != jobs_.end() && held->second != gpu) {
    return Invalid("job " + job_key + " already holds an MPS share of GPU " +
                   std::to_string(held->second));
  }
  if (held == jobs_.end()) {
    if (users_.count(gpu) == 0) {
      HERD_RETURN_IF_ERROR(StartDaemon(gpu));
      users_[gpu] = 0;
    }
    ++users_[gpu];
    jobs_[job_key] = gpu;
  }
  env.emplace_back("CUDA_MPS_PIPE_DIRECTORY", GpuDir(gpu) + "/pipe");
  env.emplace_back("CUDA_MPS_LOG_DIRECTORY", GpuDir(gpu) + "/log");
  env.emplace_back("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE", std::to_string((milli + 9) / 10));
  // The job sees only its GPU, so the device ordinal in the limit is always 0.
  if (mem_limit_mib > 0) env.emplace_back("CUDA_MPS_PINNED_DEVICE_MEM_LIMIT", "0=" + mem);
  env.emplace_back("HERD_GPU_LIMITS", "enforced-mps");
  return env;
}

void MpsManager::Release(const std::string& job_key) {
  auto it = jobs_.find(job_key);
  if (it == jobs_.end()) return;
  int gpu = it->second;
  jobs_.erase(it);
  if (--users_[gpu] > 0) return;
  users_.erase(gpu);
  (void)StopDaemon(gpu);  // nothing useful to do on failure; the daemon is forgotten either way
}

}  // namespace herd::gpu
