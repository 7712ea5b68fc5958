# herd-noded: the agent library (testable without main) and the daemon.
add_library(herd_noded STATIC agent.cc commands.cc emulated_runtime.cc sessions.cc)
target_link_libraries(herd_noded PUBLIC herd_model herd_proto herd_net herd_net_zmq herd_auth herd_runtime herd_gpu
                      spdlog::spdlog)
add_executable(herd-noded main.cc)
target_link_libraries(herd-noded PRIVATE herd_noded herd_topology herd_config herd_daemon
                      CLI11::CLI11)
install(TARGETS herd-noded DESTINATION sbin)
# Many emulated nodes in one process, for scale tests and bench/controller (not installed).
add_executable(herd-noded-emulator emulator_main.cc)
target_link_libraries(herd-noded-emulator PRIVATE herd_noded herd_topology herd_config herd_daemon
                      CLI11::CLI11)
