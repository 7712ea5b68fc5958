// herd-shim: the supervisor of one job. Started detached by Runtime::Launch with the job
// directory; it confines and starts the job (process group or runc container), forwards kill
// requests, waits for the end, records it in the exit file and cleans up. See job_dir.h.
// Thread-safety: RunShim owns the process it runs in.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/util/status.h"

namespace herd::runtime {

// Supervises the job in job_dir until it ends. ready_fd receives "ok\n" once the job runs or
// "error: <why>\n" when it could not start, then is closed. Returns the shim's exit code.
int RunShim(const std::string& job_dir, int ready_fd);

// herd-shim --exec: runs what `herd exec` asks (read from client_fd, a socket from herd-noded)
// inside the running job of job_dir: in its cgroups, in its container's namespaces when it has
// one, as its user, with its environment; relays it over client_fd until it ends. Returns the
// command's exit code.
int RunExec(const std::string& job_dir, int client_fd);

// herd-shim --forward: connects to 127.0.0.1:port in the running job of job_dir (in its
// network view: its container's network namespace, else the host's) as the job's user, and
// relays that connection over client_fd (RunForwardRelay) until it ends. Returns 0, or 1 when
// the connection could not be made (herd is told why on client_fd).
int RunForward(const std::string& job_dir, int client_fd, int port);

// An OCI image layout (a directory holding oci-layout and index.json) and one of its tags.
struct OciImageRef {
  std::string layout;
  std::string tag;
};
// The layout a job's image names: "DIR" (tag "latest") or "DIR:TAG" where DIR is a layout;
// nullopt for anything else (a rootfs directory, a tarball, a missing path).
std::optional<OciImageRef> ParseOciImage(const std::string& image);

// Runs argv to completion with stdin from /dev/null. Output goes to out_fd, or when
// out_fd < 0 it is captured and quoted in the error. pass_fds (at most 4) become its
// descriptors 3, 4... Error when it fails or exits non-zero.
Status RunCommand(const std::vector<std::string>& argv, int out_fd,
                  const std::vector<int>& pass_fds = {});

}  // namespace herd::runtime
