// The session relay: the process that holds an interactive job's terminal (or its stdin, stdout
// and stderr pipes) and relays it to one `herd` at a time, through a unix socket that only
// herd-noded can reach. It runs as the job's user (herd-shim forks it and drops to that user
// before it reads a byte), so no root process reads what the job writes or what the user types:
// herd-noded only moves the stream's bytes (common/proto/stream.h) between the socket and its
// ZeroMQ peers.
//
// The relay keeps the latest output in a ring of ring_bytes, replayed to each `herd` that
// attaches to a terminal. With a terminal the job never waits for a reader: output a slow or
// absent reader misses drops out of the ring and the reader is told how much it missed. Without
// one (pipes), nothing is dropped: the relay stops reading the job's output while a full ring is
// unread, so the job waits, as it would on a full pipe.
// Thread-safety: RunRelay owns the process it runs in.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/proto/stream.h"
#include "common/util/status.h"

namespace herd::runtime {

inline constexpr size_t kDefaultRingBytes = 256 << 10;
// After the command (or a forward's connection on the job's side) ended, how
// long the attached `herd` has to take more of the rest: the time restarts
// whenever it takes bytes, so a slow herd gets everything and only one that
// stopped taking is cut off.
inline constexpr std::chrono::milliseconds kDrainTime{5000};

// The two ends of a session's I/O: what the command gets as its descriptors 0, 1 and 2, and what
// the relay keeps. All close-on-exec.
struct SessionIo {
  bool pty = false;
  // The relay's ends: with a pty, out_fd and in_fd are both the master.
  int out_fd = -1, err_fd = -1, in_fd = -1;
  // The command's ends: with a pty, all three are the slave.
  int child_in = -1, child_out = -1, child_err = -1;
};
// A new pty (opened with the caller's rights, so its slave belongs to the caller's user), of
// rows x cols when both are > 0, or three pipes.
Result<SessionIo> OpenSessionIo(bool pty, uint16_t rows = 0, uint16_t cols = 0);
// In the command's process after fork: starts a new session (setsid), makes the pty its
// controlling terminal and its ends descriptors 0, 1 and 2. Only system calls (async-signal-safe).
// Returns false (errno set) on failure.
bool TakeSessionIo(const SessionIo& io);
// Closes the command's ends (the relay side, after fork), or the relay's ends (closing == false).
void CloseCommandEnds(SessionIo* io);
void CloseRelayEnds(SessionIo* io);

// Sets every signal's disposition to the default (in a child before exec: ignored signals
// survive exec). Only system calls (async-signal-safe).
void ResetSignalDispositions();

struct RelayOptions {
  SessionIo io;             // the relay's ends; the command's ends must be closed already
  int listen_fd = -1;       // a job's session: accept herd-noded's connections here
  int client_fd = -1;       // herd exec: this one connection; the command ends when it closes
  int exit_fd = -1;         // readable once the job ended: its exit code (4 bytes; EOF: unknown)
  pid_t child = -1;         // or: the command, the relay's own child (herd exec)
  int log_fd = -1;          // a copy of all output goes here (the job's log); -1: none
  size_t ring_bytes = kDefaultRingBytes;
  uid_t peer_uid = 0;       // besides root, the uid whose connections listen_fd accepts
  std::chrono::milliseconds drain_time = kDrainTime;
};

// Relays until the command ended and its last output went to the attached `herd` (or a few
// seconds passed), then returns the command's exit code (-1: unknown).
int RunRelay(RelayOptions options);

// herd exec's relay: reads the request (proto::stream::kExec) from client_fd, starts it in a
// new session with `env` in `cwd` (else "/"), and relays it (RunRelay with client_fd).
// REQUIRES: the caller already is the job's user, in the job's cgroups and namespaces.
int RunExecRelay(int client_fd, const std::vector<std::string>& env, const std::string& cwd);

// A TCP connection to 127.0.0.1:port, made with the caller's rights in the caller's network
// namespace (non-blocking, close-on-exec, no Nagle delay). Error: why not ("Connection refused").
Result<int> ConnectLoopback(uint16_t port);

// herd port-forward's relay of one connection: kInput frames from client_fd go to tcp_fd,
// kInputEnd shuts its writing half; what tcp_fd sends goes back as kOutput frames, and its end
// as kExit 0, after which the relay returns (once herd took the rest, or took nothing for
// drain_time). Each direction holds at most a few frames, so a side that does not read stops the
// other from being read. Closes both descriptors.
int RunForwardRelay(int client_fd, int tcp_fd, std::chrono::milliseconds drain_time = kDrainTime);

}  // namespace herd::runtime
