// herd: the command-line client of herd-ctld. See cli/cli.h.
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/remote.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  herd::cli::Environment env = herd::cli::ProcessEnvironment();
  env.connect = herd::cli::ConnectController;
  return herd::cli::RunCli(args, std::cout, std::cerr, std::move(env));
}
