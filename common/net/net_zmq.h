// libzmq's DEALER for herd-noded and herd-noded-emulator, whose thousands of emulated nodes share
// one ZeroMQ I/O thread (a Context). The CLI uses herd's own DEALER (net::Dealer::Connect) and does
// not link libzmq. cppzmq exceptions never leave this module.
#pragma once

#include <memory>
#include <string>

#include "common/net/net.h"

namespace herd::net {

// A ZeroMQ context (one I/O thread) that many Dealers of one process share; a Dealer without one
// owns its own.
class Context {
 public:
  // max_sockets: how many sockets it may hold at once (ZeroMQ's default is 1023).
  static std::shared_ptr<Context> Create(int max_sockets);
  virtual ~Context() = default;
};

// A libzmq DEALER connected to the controller (reconnecting every 100 ms). identity: routing id (""
// = random). max_message_bytes: a longer message from the controller drops the connection.
Result<std::unique_ptr<Dealer>> ConnectZmq(const std::string& endpoint, const std::string& identity,
                                           std::shared_ptr<Context> context = nullptr,
                                           int64_t max_message_bytes = proto::kMaxMessageBytes);

}  // namespace herd::net
