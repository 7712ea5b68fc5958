// herd-ctld's messages, one family per file of ctld/rpc/: each file holds the
// handlers of its family and its routes (message type, who may send it,
// handler); ctld/rpc/table.cc gathers the families' routes into the one table
// that Controller::Handle dispatches on. A new message of a family is its body
// and Schema in common/proto (messages.h, codec.cc) and its handler and route
// line in the family's file: nothing else dispatches.
#pragma once

#include <span>
#include <string_view>

#include "common/auth/auth.h"
#include "common/net/net.h"
#include "common/util/status.h"

namespace herd::ctld {

class Controller;

namespace rpc {

// Who may send a message; Controller::Handle checks it before the handler runs.
enum class Caller {
  kUser,   // any authenticated user: the handler decides what they may see or
           // touch
  kAdmin,  // root or an admin listed in herd.toml
  kNode,   // herd-noded: root or herd-ctld's user (its replies carry herd-ctld's
           // credential)
  kWeb,    // herd-web: its configured user ([web] user) only, never root unless so
           // configured
};

// Handles request `in` of `who` (verified, and allowed by the route's Caller)
// on `ctl`: replies through it, or returns the error that is replied instead.
using Handler = Status (*)(Controller& ctl, const net::Incoming& in, const auth::Identity& who);

struct Route {
  const char* type;  // proto::MessageName of the request's body
  Caller caller;
  Handler handle;
};

// The handlers of one family: the static members of a specialization that the
// family's file declares and defines. Controller befriends them, so they work
// on its state as its own members do; nothing outside their file names them.
template <typename Family>
struct Handlers;

// Each family's routes, defined in its file.
std::span<const Route> AdminRoutes();          // admin.cc: herd admin
std::span<const Route> ConnectionKeyRoutes();  // connection_keys.cc: connection keys
std::span<const Route> HistoryRoutes();        // history.cc: herd history
std::span<const Route> JobIoRoutes();          // job_io.cc: herd logs, a job's sessions
std::span<const Route> JobVerbRoutes();        // job_verbs.cc: herd cancel, hold, ..., update
std::span<const Route> NodeRoutes();           // node.cc: herd-noded's messages
std::span<const Route> QueryRoutes();          // queries.cc: herd jobs, nodes, projects
std::span<const Route> ReportRoutes();         // report.cc: herd why, herd usage
std::span<const Route> StatsRoutes();          // stats.cc: herd-web's /metrics
std::span<const Route> SubmitRoutes();         // submit.cc: herd submit
std::span<const Route> WebRoutes();            // web.cc: web tokens, herd-web's relay

// Every family's routes (table.cc), in one table keyed by type.
std::span<const Route> AllRoutes();
// The route of message `type`, or null for a type herd-ctld does not take.
const Route* FindRoute(std::string_view type);

}  // namespace rpc
}  // namespace herd::ctld
