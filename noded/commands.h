// herd-noded's messages from herd-ctld, in one table of message types and their handlers
// (noded/commands.cc). A new message is its body and Schema in common/proto (messages.h,
// codec.cc) and its handler and route line in noded/commands.cc: nothing else dispatches.
#pragma once

#include <string_view>

#include "common/proto/codec.h"

namespace herd::noded {

class Agent;

// Acts on message `e` from herd-ctld, whose credential Agent::Handle checked.
using CommandHandler = void (*)(Agent& agent, const proto::Envelope& e);

struct CommandRoute {
  const char* type;  // proto::MessageName of the message's body
  CommandHandler handle;
};

// The route of message `type`, or null for one herd-noded does not take.
const CommandRoute* FindCommandRoute(std::string_view type);

// The handlers (noded/commands.cc), which Agent befriends: they work on its state as its own
// members do.
struct Commands;

}  // namespace herd::noded
