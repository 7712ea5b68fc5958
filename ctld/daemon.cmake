# herd-ctld: the controller library (testable without main) and the daemon.
add_library(herd_ctld STATIC controller.cc fleet.cc history.cc job_table.cc lifecycle.cc limits.cc
            recent_usage.cc retention.cc schedule.cc report.cc stats.cc workflow.cc
            rpc/admin.cc rpc/connection_keys.cc rpc/history.cc rpc/job_io.cc rpc/job_verbs.cc
            rpc/node.cc rpc/queries.cc rpc/report.cc rpc/stats.cc rpc/submit.cc rpc/table.cc rpc/web.cc)
target_link_libraries(herd_ctld PUBLIC herd_model herd_proto herd_net herd_auth herd_config
                      herd_store herd_sched herd_scenario spdlog::spdlog)
add_executable(herd-ctld main.cc)
target_link_libraries(herd-ctld PRIVATE herd_ctld herd_daemon CLI11::CLI11)
install(TARGETS herd-ctld DESTINATION sbin)
# herd-sim: the scheduler core offline, on a scenario file (herd admin snapshot).
add_executable(herd-sim herd_sim.cc)
target_link_libraries(herd-sim PRIVATE herd_scenario)
install(TARGETS herd-sim DESTINATION bin)
