// herd-shim JOB_DIR [READY_FD]: supervises one job; started by herd-noded (Runtime::Launch).
// herd-shim --exec JOB_DIR FD: runs a command of `herd exec` in that job (Runtime::StartExec).
// herd-shim --forward JOB_DIR FD PORT: one connection of `herd port-forward` (StartForward).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "noded/runtime/shim.h"

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--exec") {
    return herd::runtime::RunExec(argv[2], std::atoi(argv[3]));
  }
  if (argc == 5 && std::string(argv[1]) == "--forward") {
    return herd::runtime::RunForward(argv[2], std::atoi(argv[3]), std::atoi(argv[4]));
  }
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr,
                 "usage: herd-shim JOB_DIR [READY_FD]\n       herd-shim --exec JOB_DIR FD\n"
                 "       herd-shim --forward JOB_DIR FD PORT\n");
    return 2;
  }
  int ready_fd = argc == 3 ? std::atoi(argv[2]) : -1;
  return herd::runtime::RunShim(argv[1], ready_fd);
}
