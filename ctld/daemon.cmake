# herd-ctld: the controller library (testable without main) and the daemon.
add_library(herd_ctld STATIC controller.cc fleet.cc history.cc job_io.cc job_table.cc job_verbs.cc lifecycle.cc limits.cc
            schedule.cc report.cc stats.cc submit.cc workflow.cc connection_keys.cc)
target_link_libraries(herd_ctld PUBLIC herd_model herd_proto herd_net herd_auth herd_config
                      herd_store herd_sched spdlog::spdlog)
add_executable(herd-ctld main.cc)
target_link_libraries(herd-ctld PRIVATE herd_ctld herd_daemon CLI11::CLI11)
install(TARGETS herd-ctld DESTINATION sbin)
