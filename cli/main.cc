// herd: the command-line client of herd-ctld. See cli/cli.h.
#include <unistd.h>

#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/remote.h"
#include "cli/shell.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  herd::cli::Environment env = herd::cli::ProcessEnvironment();
  env.connect = herd::cli::ConnectController;
  // `herd` alone on a terminal is the interactive shell; elsewhere it prints usage (exit 1).
  if (args.empty() && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
    return herd::cli::RunShell(std::move(env));
  }
  return herd::cli::RunCli(args, std::cout, std::cerr, std::move(env));
}
