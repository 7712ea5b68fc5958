// Writes the starting corpus of proto_fuzz: a few real envelopes and bare bodies, so the
// fuzzer starts from valid msgpack instead of finding the format byte by byte.
// Usage: proto_seeds DIR (DIR must exist; files are overwritten). Run by run-fuzzer.sh.
#include <cstdio>
#include <fstream>
#include <string>

#include "common/proto/codec.h"

namespace {

bool Write(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

// Writes `body` both bare and wrapped in an envelope.
template <typename T>
bool Seed(const std::string& dir, const T& body) {
  using namespace herd::proto;
  const std::string name = MessageName<T>();
  return Write(dir, name + ".body", EncodeBody(body)) &&
         Write(dir, name + ".envelope", EncodeEnvelope(MakeEnvelope(body, 7, "cred")));
}

}  // namespace

int main(int argc, char** argv) {
  using namespace herd::proto;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];

  SubmitRequest submit;
  submit.spec.name = "train-resnet";
  submit.spec.argv = {"python3", "train.py", "--epochs", "3"};
  submit.spec.env = {{"SEED", "1"}};
  submit.spec.project = "vision";
  submit.spec.workers = 2;
  submit.spec.gpu_milli = 4000;

  LaunchCommand launch;
  launch.job.spec = submit.spec;
  launch.job.id = 42;
  launch.worker = 1;
  launch.env = {{"HERD_JOB_ID", "42"}, {"HERD_WORKER", "1"}};

  Heartbeat heartbeat;
  heartbeat.node = "gpu-01";
  heartbeat.jobs = {JobReport{42, 1, "RUNNING", -1, "", {}, false},
                    JobReport{43, 0, "ENDED", 137, "oom", {}, false}};

  JobsRequest jobs;
  jobs.ids = {1, 2, 3};
  jobs.states = {"PENDING", "RUNNING"};
  jobs.limit = 10;

  const bool ok = Seed(dir, submit) && Seed(dir, launch) && Seed(dir, heartbeat) &&
                  Seed(dir, jobs) && Seed(dir, ErrorReply{3, "no such job"}) &&
                  Seed(dir, SignalCommand{42, "kill", 5000, "cancelled"}) &&
                  Seed(dir, RegisterReply{}) && Seed(dir, NodesRequest{});
  if (!ok) {
    std::fprintf(stderr, "proto_seeds: cannot write into %s\n", dir.c_str());
    return 1;
  }
  return 0;
}
