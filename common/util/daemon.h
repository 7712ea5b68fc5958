// What herd-ctld and herd-noded share as daemons: one-line logging and signal handling.
// Thread-safety: call from main() before starting threads.
#pragma once

#include <string>

namespace herd {

// Logs one line per event with the daemon's name, to `file` ("" = stderr), at level info unless
// the environment says otherwise (SPDLOG_LEVEL=debug).
void InitDaemonLog(const std::string& name, const std::string& file);

// Blocks SIGINT, SIGTERM and SIGHUP and returns a non-blocking signalfd that receives them.
int DaemonSignalFd();

// What arrived on the signalfd: 0 nothing, else the signal number (SIGHUP, SIGTERM, ...).
int ReadSignal(int fd);

// Raises the soft limit on open files to the hard one: a controller holds one connection per
// node, herd-noded-emulator two descriptors per emulated node. Returns the soft limit now.
long RaiseFdLimit();

}  // namespace herd
