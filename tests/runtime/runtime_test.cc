// Runs real jobs through herd-shim: plain processes, cgroups (when writable), runc containers.
#include "noded/runtime/runtime.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "noded/runtime/cgroup.h"
#include "tests/support/eventually.h"

namespace herd::runtime {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::herd::testing::Eventually;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint32_t kNobody = 65534;  // nobody:nogroup, the unprivileged user of these tests

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool HasProgram(const std::string& name) {
  return std::system(("command -v " + name + " >/dev/null 2>&1").c_str()) == 0;
}

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "herd-runtime-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    tmp_ = tmpl;
    static int counter = 0;
    parent_ = "herd-test-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
    runtime_ = MakeRuntime(true);
    ASSERT_NE(runtime_, nullptr);
  }

  void TearDown() override {
    if (runtime_ != nullptr) {
      for (const JobStatus& job : runtime_->Poll()) {
        if (job.state != JobStatus::kExited) {
          if (job.state == JobStatus::kSuspended) runtime_->Resume(job.job_key).ok();
          runtime_->Kill(job.job_key, 0).ok();
          Eventually(10s, [&] { return State(job.job_key).state == JobStatus::kExited; });
        }
      }
    }
    // The parent cgroup is herd-noded's for its lifetime; the test owns it, so removes it.
    std::error_code ec;
    for (const fs::directory_entry& h : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      rmdir((h.path() / parent_).c_str());
    }
    rmdir(("/sys/fs/cgroup/" + parent_).c_str());
    fs::remove_all(tmp_, ec);
  }

  // dev_dir, max_log_bytes: RuntimeOptions' (defaults when left out); `adjust` changes the
  // others.
  std::unique_ptr<Runtime> MakeRuntime(bool use_cgroups, const std::string& dev_dir = "/dev",
                                       int64_t max_log_bytes = 0,
                                       const std::function<void(RuntimeOptions&)>& adjust = {}) {
    RuntimeOptions options;
    options.state_dir = tmp_ + "/state";
    options.shim_path = HERD_SHIM_PATH;
    options.cgroup_parent = parent_;
    options.use_cgroups = use_cgroups;
    options.allowed_volumes = {tmp_};
    options.dev_dir = dev_dir;
    options.max_log_bytes = max_log_bytes;
    if (adjust) adjust(options);
    Result<std::unique_ptr<Runtime>> rt = Runtime::Create(options);
    EXPECT_TRUE(rt.ok()) << rt.status().message();
    return rt.ok() ? std::move(rt).value() : nullptr;
  }

  LaunchSpec Sh(const std::string& key, const std::string& script) {
    LaunchSpec spec;
    spec.job_key = key;
    spec.argv = {"/bin/sh", "-c", script};
    spec.cwd = tmp_;
    spec.uid = getuid();  // a non-root herd-noded may only run jobs as itself
    spec.gid = getgid();
    return spec;
  }

  ::testing::AssertionResult Launched(const LaunchSpec& spec) {
    Status status = runtime_->Launch(spec);
    if (status.ok()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "Launch: " << status.message();
  }

  JobStatus State(const std::string& key) {
    for (const JobStatus& job : runtime_->Poll()) {
      if (job.job_key == key) return job;
    }
    return JobStatus{key, JobStatus::kExited, -2, "unknown job", {}};
  }

  JobStatus WaitExit(const std::string& key, std::chrono::milliseconds limit = 10s) {
    Eventually(limit, [&] { return State(key).state == JobStatus::kExited; });
    return State(key);
  }

  std::string Log(const std::string& key) {
    bool eof = false;
    Result<std::string> log = runtime_->ReadLog(key, "", 0, 1 << 20, &eof);
    return log.ok() ? *log : "<" + log.status().message() + ">";
  }

  bool CgroupsWritable() { return getuid() == 0 && runtime_->CgroupMode() != "none"; }

  // The v1 hierarchy directory of a controller, or the v2 one.
  std::string CgroupDir(const std::string& controller, const std::string& key) {
    if (runtime_->CgroupMode() == "v2") return "/sys/fs/cgroup/" + parent_ + "/" + key;
    return "/sys/fs/cgroup/" + controller + "/" + parent_ + "/" + key;
  }

  std::string tmp_, parent_;
  std::unique_ptr<Runtime> runtime_;
};

TEST_F(RuntimeTest, PlainJobExitsZeroAndLogsItsOutput) {
  ASSERT_TRUE(Launched(Sh("1.0", "echo hello; echo oops >&2")));
  JobStatus st = WaitExit("1.0");
  EXPECT_EQ(st.state, JobStatus::kExited);
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_EQ(st.reason, "");
  EXPECT_EQ(Log("1.0"), "hello\noops\n");
}

TEST_F(RuntimeTest, ExitCodeIsReported) {
  ASSERT_TRUE(Launched(Sh("2.0", "exit 3")));
  JobStatus st = WaitExit("2.0");
  EXPECT_EQ(st.exit_code, 3);
  EXPECT_EQ(st.reason, "exit code 3");
}

TEST_F(RuntimeTest, EnvAndCwdReachTheJob) {
  LaunchSpec spec = Sh("3.0", "echo $GREETING $PWD; test -n \"$PATH\" && echo has-path");
  spec.env = {{"GREETING", "hi"}};
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("3.0").exit_code, 0);
  EXPECT_EQ(Log("3.0"), "hi " + tmp_ + "\nhas-path\n");
}

TEST_F(RuntimeTest, MissingCommandFailsLaunchWithAClearReason) {
  LaunchSpec spec;
  spec.job_key = "4.0";
  spec.argv = {"herd-no-such-command"};
  spec.uid = getuid();
  Status status = runtime_->Launch(spec);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("cannot run 'herd-no-such-command': No such file or directory"),
            std::string::npos)
      << status.message();
  EXPECT_TRUE(runtime_->Poll().empty());
  // The key can be used again once the failed launch is gone.
  EXPECT_TRUE(Launched(Sh("4.0", "true")));
  EXPECT_EQ(WaitExit("4.0").exit_code, 0);
}

TEST_F(RuntimeTest, DuplicateKeyIsRefused) {
  ASSERT_TRUE(Launched(Sh("5.0", "true")));
  EXPECT_FALSE(runtime_->Launch(Sh("5.0", "true")).ok());
}

TEST_F(RuntimeTest, KillDeliversTermToAJobThatTrapsIt) {
  ASSERT_TRUE(Launched(Sh("6.0",
                          "trap 'echo got-term; exit 7' TERM; echo ready; "
                          "while :; do sleep 0.05; done")));
  ASSERT_TRUE(Eventually(10s, [&] { return Log("6.0").find("ready") != std::string::npos; }));
  ASSERT_TRUE(runtime_->Kill("6.0", 5000).ok());
  JobStatus st = WaitExit("6.0");
  EXPECT_EQ(st.exit_code, 7);
  EXPECT_EQ(st.reason, "exit code 7");
  EXPECT_NE(Log("6.0").find("got-term"), std::string::npos);
}

TEST_F(RuntimeTest, KillEscalatesToSigkillAfterGrace) {
  ASSERT_TRUE(Launched(Sh("7.0",
                          "trap '' TERM; echo ready; "
                          "while :; do sleep 0.05; done")));
  ASSERT_TRUE(Eventually(10s, [&] { return Log("7.0").find("ready") != std::string::npos; }));
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(runtime_->Kill("7.0", 300).ok());
  JobStatus st = WaitExit("7.0");
  EXPECT_GE(std::chrono::steady_clock::now() - start, 300ms);
  EXPECT_EQ(st.reason, "killed by signal 9");
  EXPECT_EQ(st.exit_code, 137);
}

// Suspend and resume with the cgroup freezer (param true) or SIGSTOP (false).
class SuspendTest : public RuntimeTest, public ::testing::WithParamInterface<bool> {};

TEST_P(SuspendTest, SuspendStopsProgressAndResumeLetsItFinish) {
  bool cgroups = GetParam();
  if (cgroups && !CgroupsWritable()) GTEST_SKIP() << "no writable cgroup freezer (needs root)";
  if (!cgroups) runtime_ = MakeRuntime(false);
  std::string counter = tmp_ + "/counter";
  ASSERT_TRUE(Launched(Sh("8.0",
                          "i=0; while [ $i -lt 30 ]; do i=$((i+1)); "
                          "echo $i > counter; sleep 0.02; done; echo done")));
  ASSERT_TRUE(Eventually(10s, [&] { return std::atoi(Slurp(counter).c_str()) >= 2; }));
  ASSERT_TRUE(runtime_->Suspend("8.0").ok());
  EXPECT_EQ(State("8.0").state, JobStatus::kSuspended);
  if (cgroups) {
    std::string freezer = CgroupDir("freezer", "8.0");
    if (runtime_->CgroupMode() == "v2") {
      EXPECT_EQ(Slurp(freezer + "/cgroup.freeze"), "1\n");
    } else {
      EXPECT_EQ(Slurp(freezer + "/freezer.state"), "FROZEN\n");
    }
  }
  std::string frozen_at = Slurp(counter);
  // Absence of progress can only be observed over time.
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Slurp(counter), frozen_at);
  ASSERT_TRUE(runtime_->Resume("8.0").ok());
  EXPECT_EQ(State("8.0").state, JobStatus::kRunning);
  JobStatus st = WaitExit("8.0");
  EXPECT_EQ(st.exit_code, 0);
  EXPECT_EQ(Slurp(counter), "30\n");
}

INSTANTIATE_TEST_SUITE_P(Freezer, SuspendTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Cgroup" : "Sigstop"; });

TEST_F(RuntimeTest, MemoryHogIsKilledForOutOfMemory) {
  if (!CgroupsWritable()) GTEST_SKIP() << "no writable memory cgroup (needs root)";
  // dd allocates its 300 MiB block in one go, so the kill comes at once.
  LaunchSpec spec = Sh("9.0", "dd if=/dev/zero of=/dev/null bs=300M count=1");
  spec.memory_mib = 64;
  ASSERT_TRUE(Launched(spec));
  JobStatus st = WaitExit("9.0");
  EXPECT_EQ(st.state, JobStatus::kExited);
  EXPECT_EQ(st.reason, "out of memory") << "exit code " << st.exit_code << ", log: " << Log("9.0");
}

TEST_F(RuntimeTest, CpusetPinsTheJob) {
  if (!CgroupsWritable()) GTEST_SKIP() << "no writable cpuset cgroup (needs root)";
  LaunchSpec spec = Sh("10.0", "grep Cpus_allowed_list /proc/self/status");
  spec.cpus = {0};
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("10.0").exit_code, 0);
  EXPECT_EQ(Log("10.0"), "Cpus_allowed_list:\t0\n");
}

TEST_F(RuntimeTest, UsageIsReadFromTheJobsCgroupsAndKeptAfterItEnds) {
  if (!CgroupsWritable()) GTEST_SKIP() << "no writable cgroups (needs root)";
  // Holds 20 MiB, then spins until told to stop.
  ASSERT_TRUE(Launched(Sh("15.0",
                          "x=$(head -c 20M /dev/zero | tr '\\0' a); echo up; "
                          "while [ ! -e go ]; do :; done; echo ${#x}")));
  ASSERT_TRUE(Eventually(10s, [&] { return Log("15.0") == "up\n"; }));
  CgroupUsage running;
  ASSERT_TRUE(Eventually(10s,
                         [&] {
                           running = runtime_->Usage("15.0");
                           return running.cpu_ns > 100000000;  // 0.1 s
                         }))
      << "cpu_ns " << running.cpu_ns;
  EXPECT_GE(running.memory_bytes, 20 << 20);
  std::ofstream(tmp_ + "/go") << "now";
  JobStatus st = WaitExit("15.0");
  EXPECT_EQ(st.exit_code, 0) << Log("15.0");
  EXPECT_GE(st.usage.cpu_ns, running.cpu_ns);
  EXPECT_GE(st.usage.memory_peak_bytes, 20 << 20);
  EXPECT_EQ(runtime_->Usage("15.0").cpu_ns, -1) << "the cgroup is gone once the job ended";
}

TEST_F(RuntimeTest, OciLayoutWithoutUmociFailsWithAnInstallHint) {
  const std::string layout = tmp_ + "/layout";
  fs::create_directories(layout);
  std::ofstream(layout + "/oci-layout") << R"({"imageLayoutVersion": "1.0.0"})";
  std::ofstream(layout + "/index.json") << R"({"schemaVersion": 2, "manifests": []})";
  LaunchSpec spec = Sh("16.0", "true");
  spec.image = layout + ":t";
  // herd-shim looks umoci up in the PATH it inherits from herd-noded.
  const std::string path = getenv("PATH");
  setenv("PATH", "/nonexistent", 1);
  Status status = runtime_->Launch(spec);
  setenv("PATH", path.c_str(), 1);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("is an OCI image layout, which needs umoci"), std::string::npos)
      << status.message();
  EXPECT_NE(status.message().find("apt-get install umoci"), std::string::npos);
}

TEST_F(RuntimeTest, PidsLimitIsApplied) {
  if (!CgroupsWritable()) GTEST_SKIP() << "no writable pids cgroup (needs root)";
  LaunchSpec spec = Sh("11.0", "cat /proc/self/cgroup");
  spec.pids_max = 50;
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("11.0").exit_code, 0);
  EXPECT_NE(Log("11.0").find("/" + parent_ + "/11.0"), std::string::npos) << Log("11.0");
  EXPECT_FALSE(fs::exists(CgroupDir("pids", "11.0"))) << "cgroup left behind";
}

// True while pid runs; a zombie (ended, not yet reaped by its new parent) counts as gone.
bool Running(pid_t pid) {
  std::string stat = Slurp("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] != 'Z';
}

pid_t PidIn(const std::string& path) { return static_cast<pid_t>(std::atol(Slurp(path).c_str())); }

// Fake NVIDIA device nodes (major 195: nvidia0, nvidia1, nvidiactl) in a new directory `dev`
// below `tmp`, mode 0666 where anyone can enter, so that only device confinement refuses them.
// Without a driver, opening one fails with ENXIO; confinement refuses it earlier, with EPERM.
void MakeFakeGpuNodes(const std::string& tmp, const std::string& dev) {
  ASSERT_EQ(chmod(tmp.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(dev.c_str(), 0755), 0);
  const std::vector<std::pair<std::string, int>> nodes = {
      {"nvidia0", 0}, {"nvidia1", 1}, {"nvidiactl", 255}};
  for (const auto& [name, minor] : nodes) {
    const std::string path = dev + "/" + name;
    ASSERT_EQ(mknod(path.c_str(), S_IFCHR | 0666, makedev(195, minor)), 0) << path;
    ASSERT_EQ(chmod(path.c_str(), 0666), 0);
  }
}

// Shell commands that try each fake GPU node in `dev`, then /dev/null, one line per try.
std::string OpenGpuNodesScript(const std::string& dev) {
  return "for d in nvidia0 nvidia1 nvidiactl; do true < " + dev +
         "/$d && echo \"$d opened\"; done 2>&1; "
         "true < /dev/null && true > /dev/null && echo null-ok";
}

// Checks what OpenGpuNodesScript printed for a process confined to GPU 0.
void ExpectOnlyGpu0Opened(const std::string& log) {
  std::istringstream lines(log);
  std::string line, gpu1;
  while (std::getline(lines, line)) {
    if (line.find("nvidia1") != std::string::npos) gpu1 = line;
    if (line.find("nvidia0") != std::string::npos || line.find("nvidiactl") != std::string::npos) {
      EXPECT_EQ(line.find("not permitted"), std::string::npos) << "its own GPU: " << line;
    }
  }
  EXPECT_NE(gpu1.find("Operation not permitted"), std::string::npos) << log;
  EXPECT_NE(log.find("null-ok"), std::string::npos) << log;
}

TEST_F(RuntimeTest, PlainJobOfAnotherUserCanOpenOnlyItsOwnGpuDeviceNodes) {
  if (!CgroupsWritable()) GTEST_SKIP() << "no writable cgroups (needs root)";
  if (runtime_->CgroupMode() != "v2" && !fs::exists("/sys/fs/cgroup/devices")) {
    GTEST_SKIP() << "no cgroup v1 devices controller here (cgroups: " << runtime_->CgroupMode()
                 << ")";
  }
  const std::string dev = tmp_ + "/dev";
  ASSERT_NO_FATAL_FAILURE(MakeFakeGpuNodes(tmp_, dev));
  runtime_ = MakeRuntime(true, dev);
  if (runtime_->CgroupMode() == "v2" && !runtime_->ConfinesDevices()) {
    GTEST_SKIP() << "this kernel refuses the eBPF device filter (herd-shim's log says why)";
  }
  ASSERT_TRUE(runtime_->ConfinesDevices());
  LaunchSpec spec = Sh("21.0", OpenGpuNodesScript(dev));
  spec.uid = kNobody;
  spec.gid = kNobody;
  spec.cwd = "/";
  spec.gpus = {0};
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("21.0").exit_code, 0);
  ExpectOnlyGpu0Opened(Log("21.0"));
}

// Runs `script` with /bin/sh as nobody, put in `cg` before it drops root; returns its output.
std::string RunAsNobodyIn(const JobCgroup& cg, const std::string& script) {
  const char* command = script.c_str();
  int go[2], out[2];
  if (pipe2(go, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return "<pipe failed>";
  pid_t pid = fork();
  if (pid < 0) return "<fork failed>";
  if (pid == 0) {
    char c;
    if (read(go[0], &c, 1) != 1) _exit(125);  // not in the cgroup: run nothing
    dup2(out[1], 1);
    dup2(out[1], 2);
    if (setgroups(0, nullptr) != 0 || setresgid(kNobody, kNobody, kNobody) != 0 ||
        setresuid(kNobody, kNobody, kNobody) != 0) {
      _exit(126);
    }
    execl("/bin/sh", "sh", "-c", command, static_cast<char*>(nullptr));
    _exit(127);
  }
  close(go[0]);
  close(out[1]);
  Status attached = cg.Attach(pid);
  if (attached.ok()) (void)!write(go[1], "g", 1);
  close(go[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(out[0]);
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  return attached.ok() ? text : "<" + attached.message() + ">";
}

// JobCgroup's cgroup v2 path, eBPF device filter included, on whichever v2 hierarchy this
// machine has: /sys/fs/cgroup, or the unified hierarchy of a hybrid machine. herd-shim itself
// puts jobs on a hybrid machine into the v1 controllers, so the test above cannot reach it there.
TEST_F(RuntimeTest, ProcessOfAnotherUserInAV2JobCgroupCanOpenOnlyItsOwnGpuDeviceNodes) {
  if (getuid() != 0) GTEST_SKIP() << "cgroups and mknod need root";
  std::string root = kCgroupRoot;
  if (DetectCgroupMode() == CgroupMode::kHybrid) {
    root += "/unified";
  } else if (DetectCgroupMode() != CgroupMode::kV2) {
    GTEST_SKIP() << "no cgroup v2 hierarchy here";
  }
  const std::string dev = tmp_ + "/dev";
  ASSERT_NO_FATAL_FAILURE(MakeFakeGpuNodes(tmp_, dev));
  CgroupLimits limits;
  limits.confine_devices = true;
  limits.devices = BasicDevices();
  limits.devices.push_back({'c', 195, 0});
  limits.devices.push_back({'c', 195, 255});
  Result<JobCgroup> cg = JobCgroup::Create(CgroupMode::kV2, parent_, "31.0", limits, root);
  if (!cg.ok() && cg.status().code() == Code::kUnavailable) {
    GTEST_SKIP() << "no v2 cgroup here: " << cg.status().message();
  }
  ASSERT_TRUE(cg.ok()) << cg.status().message();
  EXPECT_EQ(cg->Pids().size(), 0u);
  if (!cg->DevicesConfined() && !cg->DevicesNote().empty()) {
    cg->Remove();
    GTEST_SKIP() << "this kernel refuses the eBPF device filter: " << cg->DevicesNote();
  }
  EXPECT_TRUE(cg->DevicesConfined());
  ExpectOnlyGpu0Opened(RunAsNobodyIn(*cg, OpenGpuNodesScript(dev)));
  EXPECT_TRUE(cg->KillAll(5s).ok());
  cg->Remove();
  EXPECT_FALSE(fs::exists(root + "/" + parent_ + "/31.0")) << "cgroup left behind";
}

TEST_F(RuntimeTest, JobOfAShimKilledWithSigkillIsKilledBeforeItIsReportedEnded) {
  const std::string bg = tmp_ + "/bg";
  ASSERT_TRUE(Launched(Sh("22.0", "sleep 1000 & echo $! > " + bg + "; sleep 1000")));
  ASSERT_TRUE(Eventually(10s, [&] { return PidIn(bg) > 0; }));
  const std::string dir = tmp_ + "/state/jobs/22.0";
  const pid_t main = PidIn(dir + "/pid"), child = PidIn(bg), shim = PidIn(dir + "/shim.pid");
  ASSERT_GT(main, 0);
  ASSERT_GT(shim, 0);
  ASSERT_TRUE(Running(main) && Running(child));
  ASSERT_EQ(kill(shim, SIGKILL), 0);

  JobStatus st = WaitExit("22.0");
  ASSERT_EQ(st.state, JobStatus::kExited);
  EXPECT_NE(st.reason.find("herd-shim died"), std::string::npos) << st.reason;
  // Reported ended only once nothing of it runs.
  EXPECT_FALSE(Running(main)) << "the job's shell still runs";
  EXPECT_FALSE(Running(child)) << "the job's background child still runs";
  if (CgroupsWritable()) {
    EXPECT_EQ(Slurp(CgroupDir("memory", "22.0") + "/cgroup.procs"), "") << "cgroup not empty";
  }
}

TEST_F(RuntimeTest, LogIsCappedWhileTheJobRunsAndEndsWithATruncationNote) {
  runtime_ = MakeRuntime(true, "/dev", 1000);
  // 2 MB of output, then it keeps running: the cap must hold before the job ends.
  ASSERT_TRUE(Launched(Sh("23.0", "head -c 2000000 /dev/zero | tr '\\0' a; exec sleep 1000")));
  const std::string log_path = tmp_ + "/state/jobs/23.0/log";
  EXPECT_TRUE(Eventually(10s,
                         [&] {
                           std::error_code ec;
                           auto size = fs::file_size(log_path, ec);
                           return !ec && size > 0 && size < 2000;
                         }))
      << Slurp(log_path).size() << " bytes in the log";
  ASSERT_TRUE(runtime_->Kill("23.0", 0).ok());
  ASSERT_EQ(WaitExit("23.0").state, JobStatus::kExited);
  std::string log = Log("23.0");
  EXPECT_EQ(log.substr(0, 1000), std::string(1000, 'a'));
  EXPECT_NE(log.find("log truncated"), std::string::npos) << log.substr(1000);
  EXPECT_EQ(log.back(), '\n');
  EXPECT_LT(log.size(), 1200u);
  // The copy of stdout alone keeps half as much: a job's logs take at most twice the cap.
  const std::string out = Slurp(tmp_ + "/state/jobs/23.0/log.stdout");
  EXPECT_EQ(out.substr(0, 501), std::string(500, 'a') + "\n") << out.size() << " bytes";
  EXPECT_LT(out.size(), 700u);
}

TEST_F(RuntimeTest, NewRuntimeOverSameStateSeesRunningJobAndItsExit) {
  std::string go = tmp_ + "/go";
  ASSERT_TRUE(Launched(Sh("12.0",
                          "echo up; while [ ! -e go ]; do sleep 0.02; done; "
                          "exit 5")));
  ASSERT_TRUE(Eventually(10s, [&] { return Log("12.0") == "up\n"; }));
  runtime_.reset();  // herd-noded goes away; the shim does not
  runtime_ = MakeRuntime(true);
  ASSERT_EQ(runtime_->Poll().size(), 1u);
  EXPECT_EQ(State("12.0").state, JobStatus::kRunning);
  std::ofstream(go) << "now";
  JobStatus st = WaitExit("12.0");
  EXPECT_EQ(st.exit_code, 5);
  EXPECT_EQ(st.reason, "exit code 5");
}

TEST_F(RuntimeTest, ForgetKeepsOnlyTheLog) {
  ASSERT_TRUE(Launched(Sh("13.0", "echo kept")));
  ASSERT_EQ(WaitExit("13.0").exit_code, 0);
  ASSERT_TRUE(runtime_->Forget("13.0").ok());
  EXPECT_TRUE(runtime_->Poll().empty());
  bool eof = false;
  Result<std::string> log = runtime_->ReadLog("13.0", "", 0, 100, &eof);
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(*log, "kept\n");
  EXPECT_TRUE(eof);
}

// [controller] job_retention on the node: what Forget left (the log) goes once older than the
// retention; a job not forgotten (herd-ctld has not acknowledged its end) stays, however old.
TEST_F(RuntimeTest, PruneLogsDeletesTheLogsOfJobsForgottenLongAgoOnly) {
  for (const char* key : {"15.0", "16.0", "17.0"}) {
    ASSERT_TRUE(Launched(Sh(key, "echo out")));
    ASSERT_EQ(WaitExit(key).exit_code, 0);
  }
  ASSERT_TRUE(runtime_->Forget("15.0").ok());
  ASSERT_TRUE(runtime_->Forget("16.0").ok());
  const auto two_days_ago = fs::file_time_type::clock::now() - std::chrono::hours(48);
  fs::last_write_time(tmp_ + "/state/jobs/15.0", two_days_ago);
  fs::last_write_time(tmp_ + "/state/jobs/17.0", two_days_ago);
  auto pruned = runtime_->PruneLogs(std::chrono::hours(24));
  ASSERT_TRUE(pruned.ok()) << pruned.status().message();
  EXPECT_EQ(*pruned, 1);
  EXPECT_FALSE(fs::exists(tmp_ + "/state/jobs/15.0"));
  bool eof = false;
  EXPECT_FALSE(runtime_->ReadLog("15.0", "", 0, 100, &eof).ok());
  EXPECT_EQ(*runtime_->ReadLog("16.0", "", 0, 100, &eof), "out\n") << "forgotten just now";
  EXPECT_EQ(State("17.0").state, JobStatus::kExited) << "not forgotten: kept";
}

TEST_F(RuntimeTest, ForgetRefusesARunningJob) {
  ASSERT_TRUE(Launched(Sh("14.0", "while :; do sleep 0.05; done")));
  EXPECT_FALSE(runtime_->Forget("14.0").ok());
}

TEST_F(RuntimeTest, ReadLogHonoursOffsetsAndReportsEofAfterTheEnd) {
  ASSERT_TRUE(Launched(Sh("15.0",
                          "printf 0123456789; while [ ! -e go ]; do "
                          "sleep 0.02; done; printf abc")));
  ASSERT_TRUE(Eventually(10s, [&] { return Log("15.0").size() == 10; }));
  bool eof = true;
  Result<std::string> part = runtime_->ReadLog("15.0", "", 3, 4, &eof);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(*part, "3456");
  EXPECT_FALSE(eof);
  part = runtime_->ReadLog("15.0", "", 7, 100, &eof);
  EXPECT_EQ(*part, "789");
  EXPECT_FALSE(eof) << "the job still runs";
  std::ofstream(tmp_ + "/go") << "";
  ASSERT_EQ(WaitExit("15.0").exit_code, 0);
  part = runtime_->ReadLog("15.0", "", 10, 100, &eof);
  EXPECT_EQ(*part, "abc");
  EXPECT_TRUE(eof);
  part = runtime_->ReadLog("15.0", "", 50, 100, &eof);
  EXPECT_EQ(*part, "");
  EXPECT_TRUE(eof);
  EXPECT_FALSE(runtime_->ReadLog("nope", "", 0, 1, &eof).ok());
}

// ---- output files (herd submit -o/--error) ----

TEST_F(RuntimeTest, OutputFilesGetTheirStreamAndTheLogsKeepBothAndEachAlone) {
  LaunchSpec spec = Sh("60.0", "echo hello; echo oops >&2");
  spec.stdout_path = tmp_ + "/out.txt";
  spec.stderr_path = tmp_ + "/err.txt";
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("60.0").exit_code, 0);
  EXPECT_EQ(Slurp(tmp_ + "/out.txt"), "hello\n");
  EXPECT_EQ(Slurp(tmp_ + "/err.txt"), "oops\n");
  EXPECT_EQ(Log("60.0"), "hello\noops\n");
  bool eof = false;
  Result<std::string> out = runtime_->ReadLog("60.0", "stdout", 0, 100, &eof);
  Result<std::string> err = runtime_->ReadLog("60.0", "stderr", 0, 100, &eof);
  ASSERT_TRUE(out.ok() && err.ok());
  EXPECT_EQ(*out, "hello\n");
  EXPECT_EQ(*err, "oops\n");
  EXPECT_TRUE(eof);
  ASSERT_TRUE(runtime_->Forget("60.0").ok());
  out = runtime_->ReadLog("60.0", "stdout", 0, 100, &eof);
  ASSERT_TRUE(out.ok()) << "each stream's log stays with the log";
  EXPECT_EQ(*out, "hello\n");
}

TEST_F(RuntimeTest, OneOutputFileTakesBothStreamsAndIsTruncatedUnlessAppending) {
  const std::string path = tmp_ + "/both.txt";
  std::ofstream(path) << "from before\n";
  LaunchSpec spec = Sh("61.0", "echo one; echo two >&2; echo three");
  spec.stdout_path = spec.stderr_path = path;
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("61.0").exit_code, 0);
  std::string text = Slurp(path);
  EXPECT_EQ(text.size(), 14u) << text;
  EXPECT_THAT(text, Not(HasSubstr("from before")));
  spec.job_key = "61.1";
  spec.append_output = true;
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("61.1").exit_code, 0);
  EXPECT_EQ(Slurp(path).size(), 28u) << "appended: " << Slurp(path);
}

// The output files are opened by a process that already is the job's user: a path the user
// could not open (a root-only directory, a link to root's file, a link into a root-only
// directory) fails the job's start with the path and the reason, and root's files stay as
// they were.
TEST_F(RuntimeTest, OutputFilesAreOpenedWithTheUsersRightsAlone) {
  if (getuid() != 0) GTEST_SKIP() << "switching users needs root";
  chmod(tmp_.c_str(), 0755);
  const std::string closed = tmp_ + "/closed", pub = tmp_ + "/pub";
  fs::create_directories(closed);
  chmod(closed.c_str(), 0700);
  fs::create_directories(pub);
  ASSERT_EQ(chown(pub.c_str(), kNobody, kNobody), 0);
  const std::string rootfile = tmp_ + "/rootfile";
  std::ofstream(rootfile) << "root's\n";
  chmod(rootfile.c_str(), 0644);
  fs::create_symlink(rootfile, pub + "/to-rootfile");
  fs::create_symlink(closed + "/new", pub + "/to-closed");
  int n = 0;
  for (const auto& [out, err] : std::vector<std::pair<std::string, std::string>>{
           {closed + "/out", ""},
           {pub + "/to-rootfile", ""},
           {pub + "/ok", pub + "/to-closed"},
           {"/etc/herd-test-cron-" + std::to_string(getpid()), ""}}) {
    LaunchSpec spec = Sh("62." + std::to_string(n++), "echo owned");
    spec.uid = kNobody;
    spec.gid = kNobody;
    spec.cwd = "/";
    spec.stdout_path = out;
    spec.stderr_path = err.empty() ? out : err;
    Status status = runtime_->Launch(spec);
    const std::string refused = err.empty() ? out : err;
    ASSERT_FALSE(status.ok()) << "the job ran with " << refused;
    EXPECT_THAT(status.message(), HasSubstr("cannot open the " +
                                            std::string(err.empty() ? "output" : "error") +
                                            " file '" + refused + "': Permission denied"));
  }
  EXPECT_FALSE(fs::exists(closed + "/out"));
  EXPECT_FALSE(fs::exists(closed + "/new"));
  EXPECT_FALSE(fs::exists("/etc/herd-test-cron-" + std::to_string(getpid())));
  EXPECT_EQ(Slurp(rootfile), "root's\n");
  // What the user may write is written, and is the user's.
  LaunchSpec spec = Sh("62.9", "echo owned");
  spec.uid = kNobody;
  spec.gid = kNobody;
  spec.cwd = "/";
  spec.stdout_path = spec.stderr_path = pub + "/mine";
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("62.9").exit_code, 0);
  EXPECT_EQ(Slurp(pub + "/mine"), "owned\n");
  struct stat st;
  ASSERT_EQ(stat((pub + "/mine").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_gid, kNobody);
}

TEST_F(RuntimeTest, JobRunsAsTheRequestedUser) {
  if (getuid() != 0) GTEST_SKIP() << "switching users needs root";
  LaunchSpec spec = Sh("16.0", "id -u; id -g; echo $HOME");
  spec.uid = 65534;
  spec.gid = 65534;
  spec.cwd = "/";
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("16.0").exit_code, 0);
  std::string log = Log("16.0");
  EXPECT_EQ(log.substr(0, log.find('\n')), "65534");
  EXPECT_NE(log.find("\n65534\n"), std::string::npos) << log;
}

// --chdir is entered as the job's user: a directory only root can reach stays closed, even one
// whose own mode is open (here under a 0700 parent).
TEST_F(RuntimeTest, ChdirIsEnteredWithTheUsersRights) {
  if (getuid() != 0) GTEST_SKIP() << "switching users needs root";
  chmod(tmp_.c_str(), 0755);
  const std::string open_dir = tmp_ + "/closed/open";
  fs::create_directories(open_dir);
  chmod((tmp_ + "/closed").c_str(), 0700);
  chmod(open_dir.c_str(), 0755);
  std::ofstream(open_dir + "/secret") << "root-only";
  chmod((open_dir + "/secret").c_str(), 0644);
  LaunchSpec spec = Sh("17.0", "cat secret");
  spec.uid = kNobody;
  spec.gid = kNobody;
  spec.cwd = open_dir;
  Status status = runtime_->Launch(spec);
  ASSERT_FALSE(status.ok()) << "the job ran in " << open_dir << ": " << Log("17.0");
  EXPECT_THAT(status.message(), HasSubstr("cannot chdir to '" + open_dir + "': Permission denied"));
}

// The command is looked up as the job's user would (execvp): a program in a PATH directory only
// root can reach is passed over for the next one.
TEST_F(RuntimeTest, CommandIsLookedUpWithTheUsersRights) {
  if (getuid() != 0) GTEST_SKIP() << "switching users needs root";
  chmod(tmp_.c_str(), 0755);
  for (const std::string dir : {"closed", "open"}) {
    fs::create_directories(tmp_ + "/" + dir);
    std::ofstream(tmp_ + "/" + dir + "/prog") << "#!/bin/sh\necho " << dir << "\n";
    chmod((tmp_ + "/" + dir + "/prog").c_str(), 0755);
  }
  chmod((tmp_ + "/closed").c_str(), 0700);
  LaunchSpec spec = Sh("18.0", "");
  spec.argv = {"prog"};
  spec.env = {{"PATH", tmp_ + "/closed:" + tmp_ + "/open:/usr/bin:/bin"}};
  spec.uid = kNobody;
  spec.gid = kNobody;
  spec.cwd = "/";
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("18.0").exit_code, 0) << Log("18.0");
  EXPECT_EQ(Log("18.0"), "open\n");
}

class ContainerTest : public RuntimeTest {
 protected:
  void SetUp() override {
    RuntimeTest::SetUp();
    if (getuid() != 0) GTEST_SKIP() << "runc containers need root";
    if (!HasProgram("runc")) GTEST_SKIP() << "runc is not installed";
    rootfs_ = tmp_ + "/rootfs";
    std::string cmd = std::string(HERD_MAKE_ROOTFS) + " " + rootfs_ + " >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "make-rootfs failed (busybox-static?)";
  }

  // A job of nobody running `script` with `sh` in image.
  LaunchSpec NobodySh(const std::string& key, const std::string& script, const std::string& image) {
    LaunchSpec spec = Sh(key, script);
    spec.argv[0] = "sh";
    spec.cwd = "/";
    spec.image = image;
    spec.uid = kNobody;
    spec.gid = kNobody;
    return spec;
  }

  // What became of `spec`: "ran: " and its log once it ended, or why it was refused.
  std::string Outcome(const LaunchSpec& spec) {
    Status status = runtime_->Launch(spec);
    if (!status.ok()) return status.message();
    WaitExit(spec.job_key);
    return "ran: " + Log(spec.job_key);
  }

  std::string rootfs_;
};

TEST_F(ContainerTest, OutputAndExitCodePropagateAndHostFilesStayOutside) {
  std::ofstream(tmp_ + "/secret") << "host-only";
  LaunchSpec spec = Sh("20.0", "echo in-container; cat " + tmp_ +
                                   "/secret 2>/dev/null || "
                                   "echo no-secret; id -u; exit 4");
  spec.argv[0] = "sh";
  spec.cwd = "/";
  spec.image = rootfs_;
  ASSERT_TRUE(Launched(spec));
  JobStatus st = WaitExit("20.0");
  EXPECT_EQ(st.exit_code, 4) << Log("20.0");
  EXPECT_EQ(st.reason, "exit code 4");
  EXPECT_EQ(Log("20.0"), "in-container\nno-secret\n0\n");
  EXPECT_TRUE(fs::exists(rootfs_ + "/bin/busybox")) << "the image dir must survive cleanup";
}

TEST_F(ContainerTest, TarballImageWithBindMountAndUser) {
  chmod(tmp_.c_str(), 0755);  // the job's user opens the tarball and the volume
  std::string tarball = tmp_ + "/image.tar.gz";
  ASSERT_EQ(std::system(("tar -czf " + tarball + " -C " + rootfs_ + " .").c_str()), 0);
  fs::create_directories(tmp_ + "/data");
  std::ofstream(tmp_ + "/data/input") << "shared";
  chmod((tmp_ + "/data").c_str(), 0777);
  LaunchSpec spec = Sh("21.0", "cat /data/input; echo; echo out > /data/output; id -u");
  spec.argv[0] = "sh";
  spec.image = tarball;
  spec.cwd = "/";
  spec.uid = 65534;
  spec.gid = 65534;
  spec.mounts = {{tmp_ + "/data", "/data"}};
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("21.0").exit_code, 0) << Log("21.0");
  EXPECT_EQ(Log("21.0"), "shared\n65534\n");
  EXPECT_EQ(Slurp(tmp_ + "/data/output"), "out\n");
  EXPECT_FALSE(fs::exists(tmp_ + "/state/jobs/21.0/bundle")) << "unpacked rootfs left behind";
}

// A tarball is unpacked with its user's rights: a setuid-root shell, root-owned directories and
// device nodes in it give a job of nobody nothing.
TEST_F(ContainerTest, TarballIsUnpackedAsTheJobsUserWithoutSetuidBitsOrDevices) {
  chmod(tmp_.c_str(), 0755);
  const std::string image = tmp_ + "/evil";
  ASSERT_EQ(std::system(("cp -a " + rootfs_ + " " + image + " && mkdir " + image + "/suid " +
                         image + "/rootonly " + image + "/devs && cp " + image + "/bin/busybox " +
                         image + "/suid/sh && chmod 4755 " + image + "/suid/sh && chmod 0700 " +
                         image + "/rootonly && mknod " + image + "/devs/mem c 1 1 && tar -cf " +
                         tmp_ + "/evil.tar --owner=0 --group=0 -C " + image + " .")
                            .c_str()),
            0);
  chmod((tmp_ + "/evil.tar").c_str(), 0644);
  LaunchSpec spec = NobodySh("25.0",
                             "busybox stat -c '%u %a' /suid/sh /rootonly; "
                             "test -e /devs/mem && echo device || echo no-device; "
                             "/suid/sh -c 'id -u'; echo x > /rootonly/x && echo wrote",
                             tmp_ + "/evil.tar");
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("25.0").exit_code, 0) << Log("25.0");
  EXPECT_EQ(Log("25.0"), "65534 755\n65534 700\nno-device\n65534\nwrote\n");
}

// An image the user cannot read is refused, tarball or directory, as it would be for them.
TEST_F(ContainerTest, ImageTheUserCannotReadIsRefused) {
  chmod(tmp_.c_str(), 0755);
  const std::string tarball = tmp_ + "/private.tar";
  ASSERT_EQ(std::system(("tar -cf " + tarball + " -C " + rootfs_ + " .").c_str()), 0);
  chmod(tarball.c_str(), 0600);
  Status status = runtime_->Launch(NobodySh("26.0", "echo ran", tarball));
  ASSERT_FALSE(status.ok()) << Log("26.0");
  EXPECT_THAT(status.message(),
              HasSubstr("cannot read image '" + tarball + "': Permission denied"));

  chmod(rootfs_.c_str(), 0700);
  status = runtime_->Launch(NobodySh("26.1", "echo ran", rootfs_));
  ASSERT_FALSE(status.ok()) << Log("26.1");
  EXPECT_THAT(status.message(),
              HasSubstr("cannot read image '" + rootfs_ + "': Permission denied"));
}

// A rootfs directory is never written: runc's mount points and the job's files go elsewhere,
// and its root-owned files stay closed to a job of nobody.
TEST_F(ContainerTest, ImageDirectoryIsNeverWrittenAndItsRootFilesStayClosed) {
  chmod(tmp_.c_str(), 0755);
  fs::create_directories(tmp_ + "/data");
  LaunchSpec spec = NobodySh("27.0",
                             "touch /etc/owned 2>/dev/null && echo wrote-etc || echo refused; "
                             "ls /newmount >/dev/null && echo mounted",
                             rootfs_);
  spec.mounts = {{tmp_ + "/data", "/newmount"}};
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("27.0").exit_code, 0) << Log("27.0");
  EXPECT_EQ(Log("27.0"), "refused\nmounted\n");
  EXPECT_FALSE(fs::exists(rootfs_ + "/newmount")) << "runc made a mount point in the image";
  EXPECT_FALSE(fs::exists(rootfs_ + "/etc/owned"));
}

// A job of a plain user holds no capability and cannot gain privileges by exec.
TEST_F(ContainerTest, UserJobHasNoCapabilitiesAndNoNewPrivileges) {
  chmod(tmp_.c_str(), 0755);
  LaunchSpec spec =
      NobodySh("28.0", "grep -E '^(NoNewPrivs|CapEff|CapPrm|CapBnd):' /proc/self/status", rootfs_);
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("28.0").exit_code, 0) << Log("28.0");
  EXPECT_EQ(Log("28.0"),
            "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
            "CapBnd:\t0000000000000000\nNoNewPrivs:\t1\n");
}

// A volume is checked where it resolves, as the job's user: a symlink under an allowed prefix
// that points elsewhere is refused, and so is a path the user cannot reach.
TEST_F(ContainerTest, VolumeIsCheckedWhereItResolvesForTheUser) {
  chmod(tmp_.c_str(), 0755);
  fs::create_symlink("/root", tmp_ + "/escape");
  LaunchSpec spec = NobodySh("29.0", "ls /x", rootfs_);
  spec.mounts = {{tmp_ + "/escape", "/x"}};
  Status status = runtime_->Launch(spec);
  ASSERT_FALSE(status.ok()) << Log("29.0");
  EXPECT_THAT(status.message(), HasSubstr("volume '" + tmp_ +
                                          "/escape' resolves to '/root', "
                                          "which is not under a path the admin allows"));

  fs::create_directories(tmp_ + "/closed/open");
  chmod((tmp_ + "/closed").c_str(), 0700);
  spec.job_key = "29.1";
  spec.mounts = {{tmp_ + "/closed/open", "/x"}};
  status = runtime_->Launch(spec);
  ASSERT_FALSE(status.ok()) << Log("29.1");
  EXPECT_THAT(status.message(),
              HasSubstr("cannot use volume '" + tmp_ + "/closed/open': Permission denied"));

  // The user may open the directory itself, but not enter it: runc would, as root.
  spec.job_key = "29.2";
  spec.mounts = {{tmp_ + "/closed", "/x"}};
  status = runtime_->Launch(spec);
  ASSERT_FALSE(status.ok()) << Log("29.2");
  EXPECT_THAT(status.message(),
              HasSubstr("cannot use volume '" + tmp_ +
                        "/closed': Permission denied: it must be a directory you can enter"));
}

// An OCI layout is unpacked by umoci running as the job's user (rootless): a setuid-root file
// in the image becomes a plain file of that user.
TEST_F(ContainerTest, OciImageLayoutIsUnpackedAsTheJobsUser) {
  if (!HasProgram("umoci")) GTEST_SKIP() << "umoci is not installed (apt-get install umoci)";
  chmod(tmp_.c_str(), 0755);
  const std::string layout = tmp_ + "/oci";
  ASSERT_EQ(std::system(("cp " + rootfs_ + "/bin/busybox " + rootfs_ + "/bin/suid && chmod 4755 " +
                         rootfs_ + "/bin/suid && umoci init --layout " + layout +
                         " && umoci new --image " + layout + ":t && umoci insert --image " +
                         layout + ":t " + rootfs_ + " / >/dev/null && chmod -R a+rX " + layout)
                            .c_str()),
            0);
  LaunchSpec spec = NobodySh("30.0", "busybox stat -c '%u %a' /bin/suid", layout + ":t");
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("30.0").exit_code, 0) << Log("30.0");
  EXPECT_EQ(Log("30.0"), "65534 755\n");
}

// runc enters the cwd as root: a directory in a volume that only root can reach stays closed.
TEST_F(ContainerTest, ContainerCwdIsCheckedWithTheUsersRights) {
  chmod(tmp_.c_str(), 0755);
  fs::create_directories(tmp_ + "/data/closed/open");
  chmod((tmp_ + "/data/closed").c_str(), 0700);
  std::ofstream(tmp_ + "/data/closed/open/secret") << "root-only";
  LaunchSpec spec = NobodySh("31.0", "cat secret", rootfs_);
  spec.mounts = {{tmp_ + "/data", "/x"}};
  spec.cwd = "/x/closed/open";
  Status status = runtime_->Launch(spec);
  ASSERT_FALSE(status.ok()) << "the job ran in " << spec.cwd << ": " << Log("31.0");
  EXPECT_THAT(status.message(), HasSubstr("cannot chdir to '/x/closed/open': Permission denied"));
}

// The cwd is resolved as it will lie in the container, as the user: through the image's links
// into a volume, through `..` across a volume's mount point, never under runc's own mounts.
TEST_F(ContainerTest, ContainerCwdIsResolvedInTheContainerAsTheUser) {
  chmod(tmp_.c_str(), 0755);
  const std::string vol = tmp_ + "/vol";
  fs::create_directories(vol + "/secret/sub");
  fs::create_directories(vol + "/open");
  chmod((vol + "/secret").c_str(), 0700);
  chmod((vol + "/secret/sub").c_str(), 0755);
  std::ofstream(vol + "/secret/sub/private") << "root-only";
  const std::string image = tmp_ + "/linked";
  ASSERT_EQ(
      std::system(("cp -a " + rootfs_ + " " + image + " && rmdir " + image + "/work && ln -s " +
                   "/vol/secret " + image + "/work && ln -s vol/open " + image + "/go && " +
                   "mkdir " + image + "/vol && tar -cf " + image + ".tar -C " + image + " .")
                      .c_str()),
      0);
  chmod((image + ".tar").c_str(), 0644);
  int n = 0;
  auto launch = [&](const std::string& cwd) {
    LaunchSpec spec =
        NobodySh("32." + std::to_string(n++), "pwd; ls -R; cat sub/private", image + ".tar");
    spec.mounts = {{vol, "/vol"}};
    spec.cwd = cwd;
    return Outcome(spec);
  };
  EXPECT_THAT(launch("/work"), HasSubstr("cannot chdir to '/work': Permission denied"));
  EXPECT_THAT(launch("/vol/../vol/secret/sub"),
              HasSubstr("cannot chdir to '/vol/../vol/secret/sub': Permission denied"));
  EXPECT_THAT(launch("/work/sub"), HasSubstr("cannot chdir to '/work/sub': Permission denied"));
  EXPECT_THAT(launch("/dev"),
              HasSubstr("cannot chdir to '/dev': it lies under /dev, which runc fills itself"));
  EXPECT_THAT(launch("/go"), HasSubstr("ran: /vol/open\n"));
}

// runc makes a missing cwd or mount point as root: never in a volume, whoever owns it, nor
// under /proc, /sys or /dev.
TEST_F(ContainerTest, MissingCwdOrMountPointInAVolumeIsRefusedAndNotMade) {
  chmod(tmp_.c_str(), 0755);
  const std::string vol = tmp_ + "/vol", other = tmp_ + "/other";
  fs::create_directories(vol);
  fs::create_directories(other);
  int n = 0;
  auto launch = [&](const std::string& cwd,
                    const std::vector<std::pair<std::string, std::string>>& mounts) {
    LaunchSpec spec = NobodySh("33." + std::to_string(n++), "pwd", rootfs_);
    spec.cwd = cwd;
    spec.mounts = mounts;
    return Outcome(spec);
  };
  EXPECT_THAT(launch("/vol/newdir", {{vol, "/vol"}}),
              HasSubstr("cannot chdir to '/vol/newdir': it does not exist in the container; "
                        "create it in the image or a volume, or choose another --chdir"));
  EXPECT_FALSE(fs::exists(vol + "/newdir"));
  EXPECT_THAT(launch("/", {{vol, "/vol"}, {other, "/vol/inner"}}),
              HasSubstr("cannot mount at '/vol/inner' in the container: '/vol/inner' does not "
                        "exist in the volume mounted at '/vol'"));
  EXPECT_FALSE(fs::exists(vol + "/inner"));
  // Nor in what runc fills itself, where nothing can be checked as the user.
  EXPECT_THAT(launch("/", {{vol, "/dev/vol"}}),
              HasSubstr("cannot mount at '/dev/vol' in the container: it lies under /dev"));
  // Where the outer volume has it, the user may start in the inner one.
  fs::create_directories(vol + "/inner");
  EXPECT_EQ(launch("/vol/inner", {{vol, "/vol"}, {other, "/vol/inner"}}), "ran: /vol/inner\n");
}

// The checked cwd is entered by the job itself, as its user: swapped for a link into a directory
// the user cannot reach after herd-shim's check, it leads nowhere. runc would have entered it as
// root. A runc wrapper makes the swap, as nobody, exactly in that window: just before runc runs.
TEST_F(ContainerTest, CwdSwappedForALinkAfterTheCheckIsEnteredAsTheUser) {
  if (!HasProgram("setpriv")) GTEST_SKIP() << "setpriv is not installed (util-linux)";
  chmod(tmp_.c_str(), 0755);
  const std::string vol = tmp_ + "/vol";
  fs::create_directories(vol + "/work");
  ASSERT_EQ(chown(vol.c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(chown((vol + "/work").c_str(), kNobody, kNobody), 0);
  // In the image: /private (root's, 0700) holds an open directory with a readable file.
  fs::create_directories(rootfs_ + "/private/open");
  chmod((rootfs_ + "/private").c_str(), 0700);
  std::ofstream(rootfs_ + "/private/open/secret") << "root-only";
  chmod((rootfs_ + "/private/open/secret").c_str(), 0644);
  const std::string runc = tmp_ + "/runc-swap";
  std::ofstream(runc) << "#!/bin/sh\n"
                         "case \" $* \" in *\" create \"*)\n"
                         "  setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'rmdir " +
                             vol + "/work && ln -s /private/open " + vol + "/work' ;;\n"
                         "esac\n"
                         "exec runc \"$@\"\n";
  chmod(runc.c_str(), 0755);
  runtime_ = MakeRuntime(true, "/dev", 0, [&](RuntimeOptions& o) { o.runc_path = runc; });
  ASSERT_NE(runtime_, nullptr);
  LaunchSpec spec = NobodySh("34.0", "pwd; cat secret", rootfs_);
  spec.mounts = {{vol, "/vol"}};
  spec.cwd = "/vol/work";
  const std::string outcome = Outcome(spec);
  ASSERT_TRUE(fs::is_symlink(vol + "/work")) << "the wrapper did not swap the cwd: " << outcome;
  EXPECT_THAT(outcome, HasSubstr("cannot chdir to '/vol/work': Permission denied"));
  EXPECT_THAT(outcome, Not(HasSubstr("root-only")));
  EXPECT_THAT(Log("34.0"), Not(HasSubstr("root-only")));
}

// The job starts through herd-chdir, passed by runc as an open descriptor: neither it nor the
// pipe it reports on reaches the job, of nobody or of root.
TEST_F(ContainerTest, JobInheritsOnlyItsStandardDescriptors) {
  chmod(tmp_.c_str(), 0755);
  // Builtins only: the shell's own descriptors, not those of a command it runs.
  LaunchSpec spec = NobodySh(
      "35.0", "for fd in 3 4 5 6 7; do [ -e /proc/$$/fd/$fd ] && echo open: $fd; done; echo done",
      rootfs_);
  EXPECT_EQ(Outcome(spec), "ran: done\n");
  spec.job_key = "35.1";
  spec.uid = spec.gid = 0;
  EXPECT_EQ(Outcome(spec), "ran: done\n");
}

// A container job's output files are host paths, opened as the user before the container
// exists; herd-chdir hands them to the job as its stdout and stderr.
TEST_F(ContainerTest, OutputFilesAreHostPathsWrittenAsTheUser) {
  chmod(tmp_.c_str(), 0755);
  const std::string pub = tmp_ + "/pub";
  fs::create_directories(pub);
  ASSERT_EQ(chown(pub.c_str(), kNobody, kNobody), 0);
  LaunchSpec spec = NobodySh("36.0", "echo out; echo err >&2", rootfs_);
  spec.stdout_path = pub + "/out";
  spec.stderr_path = pub + "/err";
  EXPECT_EQ(Outcome(spec), "ran: out\nerr\n");
  EXPECT_EQ(Slurp(pub + "/out"), "out\n");
  EXPECT_EQ(Slurp(pub + "/err"), "err\n");
  struct stat st;
  ASSERT_EQ(stat((pub + "/out").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);
  spec.job_key = "36.1";
  spec.stdout_path = tmp_ + "/not-nobodys";
  EXPECT_THAT(Outcome(spec), HasSubstr("cannot open the output file '" + tmp_ +
                                       "/not-nobodys': Permission denied"));
}

TEST_F(ContainerTest, OciImageLayoutIsUnpackedWithUmoci) {
  if (!HasProgram("umoci")) GTEST_SKIP() << "umoci is not installed (apt-get install umoci)";
  const std::string layout = tmp_ + "/oci";
  const std::string build = "umoci init --layout " + layout + " && umoci new --image " + layout +
                            ":t && umoci insert --image " + layout + ":t " + rootfs_ +
                            " / >/dev/null";
  ASSERT_EQ(std::system(build.c_str()), 0) << build;
  LaunchSpec spec = Sh("24.0", "echo from-oci; ls /bin/busybox");
  spec.argv[0] = "sh";
  spec.cwd = "/";
  spec.image = layout + ":t";
  ASSERT_TRUE(Launched(spec));
  EXPECT_EQ(WaitExit("24.0").exit_code, 0) << Log("24.0");
  EXPECT_EQ(Log("24.0"), "from-oci\n/bin/busybox\n");
  EXPECT_FALSE(fs::exists(tmp_ + "/state/jobs/24.0/bundle")) << "unpacked rootfs left behind";
  spec.job_key = "24.1";
  spec.image = layout + ":no-such-tag";
  Status status = runtime_->Launch(spec);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("cannot unpack OCI image"), std::string::npos)
      << status.message();
}

// Every compression tar may meet is told from the tarball's first bytes (tar reads it from a
// descriptor, so it cannot tell by the name).
TEST_F(ContainerTest, TarballsOfEveryCompressionAreUnpacked) {
  chmod(tmp_.c_str(), 0755);
  int n = 0;
  for (const std::string kind : {"gzip", "xz", "zstd", "bzip2"}) {
    if (!HasProgram(kind)) continue;
    // A misleading name: only the content counts.
    const std::string tarball = tmp_ + "/image-" + kind + ".tar";
    ASSERT_EQ(std::system(("tar -c -C " + rootfs_ + " . | " + kind + " -c > " + tarball).c_str()),
              0);
    chmod(tarball.c_str(), 0644);
    const std::string key = "40." + std::to_string(n++);
    ASSERT_TRUE(Launched(NobodySh(key, "echo " + kind, tarball)));
    EXPECT_EQ(WaitExit(key).exit_code, 0) << Log(key);
    EXPECT_EQ(Log(key), kind + "\n");
  }
}

// [node] max_image_size: no file of an unpacked image grows past it; the job does not start.
TEST_F(ContainerTest, ImageWithAFileLargerThanMaxImageSizeDoesNotStart) {
  runtime_ = MakeRuntime(true, "/dev", 0, [](RuntimeOptions& o) { o.max_image_bytes = 1 << 20; });
  chmod(tmp_.c_str(), 0755);
  const std::string tarball = tmp_ + "/bomb.tar.gz";
  ASSERT_EQ(std::system(("head -c 8M /dev/zero > " + rootfs_ + "/big && tar -czf " + tarball +
                         " -C " + rootfs_ + " . && chmod 644 " + tarball)
                            .c_str()),
            0);
  Status status = runtime_->Launch(NobodySh("41.0", "echo ran", tarball));
  ASSERT_FALSE(status.ok()) << Log("41.0");
  EXPECT_THAT(status.message(), HasSubstr("max_image_size"));
  EXPECT_FALSE(fs::exists(tmp_ + "/state/jobs/41.0/bundle")) << "unpacked files left behind";
}

// Container jobs whose image is an OCI layout that never ends unpacking: its manifest is a FIFO
// nobody writes to, so umoci blocks on it for ever.
class NeverUnpackingTest : public ContainerTest {
 protected:
  void SetUp() override {
    ContainerTest::SetUp();
    if (IsSkipped()) return;
    if (!HasProgram("umoci")) GTEST_SKIP() << "umoci is not installed (apt-get install umoci)";
    chmod(tmp_.c_str(), 0755);
    const std::string layout = tmp_ + "/never";
    const std::string made =
        "umoci init --layout " + layout + " && umoci new --image " + layout + ":t && cd " +
        layout + "/blobs/sha256 && m=$(grep -o 'sha256:[0-9a-f]*' ../../index.json | head -1 | " +
        "cut -d: -f2) && rm $m && mkfifo -m 644 $m && chmod -R a+rX " + layout;
    ASSERT_EQ(std::system(made.c_str()), 0) << made;
    image_ = layout + ":t";
  }

  // Whether umoci is unpacking the image; its pids go to tmp_/pids.
  bool Unpacking() {
    // "[u]": the shell that runs pgrep does not match its own pattern.
    return std::system(("pgrep -f '[u]moci raw unpack.*" + tmp_ + "/never' > " + tmp_ + "/pids")
                           .c_str()) == 0;
  }

  std::string image_;
};

// A start never blocks its caller: BeginLaunch returns while the image unpacks (kStarting), the
// unpacking runs in the job's cgroup, and Kill ends the start with everything it started.
TEST_F(NeverUnpackingTest, StartThatNeverEndsIsKilledWithEverythingItStarted) {
  ASSERT_TRUE(runtime_->BeginLaunch(NobodySh("42.0", "echo ran", image_)).ok());
  EXPECT_EQ(State("42.0").state, JobStatus::kStarting);
  EXPECT_EQ(runtime_->StartFds().size(), 1u);
  ASSERT_TRUE(Eventually(10s, [&] { return Unpacking(); }));
  if (CgroupsWritable()) {
    const std::string pids = Slurp(tmp_ + "/pids");
    EXPECT_THAT(Slurp("/proc/" + pids.substr(0, pids.find('\n')) + "/cgroup"),
                HasSubstr("/" + parent_ + "/42.0"))
        << "unpacking runs outside the job's cgroup";
  }
  EXPECT_TRUE(runtime_->TakeStartOutcomes().empty());
  EXPECT_EQ(State("42.0").state, JobStatus::kStarting);

  ASSERT_TRUE(runtime_->Kill("42.0", 10000).ok());
  JobStatus st = State("42.0");
  EXPECT_EQ(st.state, JobStatus::kExited);
  EXPECT_EQ(st.reason, "killed while starting");
  EXPECT_TRUE(runtime_->StartFds().empty());
  EXPECT_TRUE(Eventually(10s, [&] { return !Unpacking(); })) << "umoci survived the kill";
  EXPECT_TRUE(runtime_->Forget("42.0").ok());
}

// A start under way when herd-noded restarts is still a start to the new Runtime: kStarting,
// and a kill ends it with everything it started.
TEST_F(NeverUnpackingTest, NewRuntimeSeesAStartUnderWayAndCanKillIt) {
  ASSERT_TRUE(runtime_->BeginLaunch(NobodySh("44.0", "echo ran", image_)).ok());
  ASSERT_TRUE(Eventually(10s, [&] { return Unpacking(); }));
  runtime_ = MakeRuntime(true);  // the old one is gone, as with a restart of herd-noded
  ASSERT_NE(runtime_, nullptr);
  EXPECT_EQ(State("44.0").state, JobStatus::kStarting);
  EXPECT_TRUE(runtime_->TakeStartOutcomes().empty());
  ASSERT_TRUE(runtime_->Kill("44.0", 10000).ok());
  EXPECT_EQ(State("44.0").reason, "killed while starting");
  EXPECT_TRUE(Eventually(10s, [&] { return !Unpacking(); })) << "umoci survived the kill";
}

// A start past start_timeout is killed and reported as not started, with that reason.
TEST_F(NeverUnpackingTest, StartPastStartTimeoutIsKilledAndReportedNotStarted) {
  runtime_ = MakeRuntime(true, "/dev", 0, [](RuntimeOptions& o) { o.start_timeout = 1s; });
  Status status = runtime_->Launch(NobodySh("43.0", "echo ran", image_));
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("did not start within start_timeout (1s)"));
  EXPECT_TRUE(Eventually(10s, [&] { return !Unpacking(); })) << "umoci survived the timeout";
}

TEST_F(ContainerTest, MissingCommandInContainerFailsLaunch) {
  LaunchSpec spec;
  spec.job_key = "22.0";
  spec.argv = {"no-such-program"};
  spec.image = rootfs_;
  Status status = runtime_->Launch(spec);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("cannot run 'no-such-program': No such file or directory"));
}

TEST_F(ContainerTest, KillSuspendAndResumeAContainer) {
  LaunchSpec spec = Sh("23.0",
                       "trap 'echo got-term; exit 9' TERM; echo ready; i=0; "
                       "while :; do i=$((i+1)); echo $i > /work/counter; sleep 0.02; done");
  spec.argv[0] = "sh";
  spec.image = rootfs_;
  spec.mounts = {{tmp_, "/work"}};
  ASSERT_TRUE(Launched(spec));
  std::string counter = tmp_ + "/counter";
  ASSERT_TRUE(Eventually(10s, [&] { return std::atoi(Slurp(counter).c_str()) >= 2; }))
      << Log("23.0");
  ASSERT_TRUE(runtime_->Suspend("23.0").ok());
  EXPECT_EQ(State("23.0").state, JobStatus::kSuspended);
  std::string frozen_at = Slurp(counter);
  // Absence of progress can only be observed over time (runc pause returned once frozen).
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Slurp(counter), frozen_at);
  ASSERT_TRUE(runtime_->Resume("23.0").ok());
  ASSERT_TRUE(Eventually(10s, [&] { return Slurp(counter) != frozen_at; }));
  ASSERT_TRUE(runtime_->Kill("23.0", 5000).ok());
  JobStatus st = WaitExit("23.0");
  EXPECT_EQ(st.exit_code, 9) << Log("23.0");
  EXPECT_NE(Log("23.0").find("got-term"), std::string::npos);
}

}  // namespace
}  // namespace herd::runtime
