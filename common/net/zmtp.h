// ZMTP 3.0/3.1 (the ZeroMQ wire protocol), NULL mechanism: an incremental parser that holds at
// most one partial message per peer within fixed bounds, and the encoders for what either side
// sends (greeting, READY, PONG/PING, message frames). net::Server (a ROUTER) and the DEALER of
// common/net/dealer.cc are built on it.
// Thread-safety: a Parser is used by one thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/util/status.h"

namespace herd::net::zmtp {

constexpr size_t kGreetingBytes = 64;

// What any one peer may make the parser hold, checked as each header arrives (before the body).
struct Limits {
  int64_t max_message_bytes = 16 << 20;  // sum of the frames of one message
  int max_frames = 4;                    // frames of one message
  int64_t max_command_bytes = 4096;      // one command frame (READY, PING, ...)
};

struct Event {
  enum class Kind { kGreeting, kCommand, kMessage };
  Kind kind = Kind::kMessage;
  int minor_version = 0;             // kGreeting: the peer's ZMTP minor version (0 or 1+)
  std::string name;                  // kCommand: "READY", "PING", ...
  std::string data;                  // kCommand: what follows the name
  std::vector<std::string> frames;   // kMessage: every frame, in order
};

// Consumes the bytes a peer sends, in chunks cut anywhere. The first 64 bytes must be a ZMTP 3.x
// greeting with the NULL mechanism; then frames. Commands may come between the frames of a
// message. A violation (bad greeting, reserved flag bits, a command marked MORE, a frame beyond
// the limits, a message frame before a command named READY) is an error after which the
// connection must be closed; each is found at the frame's header, before its body is held.
class Parser {
 public:
  explicit Parser(const Limits& limits) : limits_(limits) {}
  // Parses all of `bytes`, appending each completed event to `out`.
  Status Feed(std::string_view bytes, std::vector<Event>& out);
  // Bytes held for the message, frame or command under way.
  int64_t buffered() const { return message_bytes_ + static_cast<int64_t>(frame_.size()); }
  // True while a message, frame, command or the greeting is under way (has a deadline).
  bool partial() const {
    return state_ != State::kFlags || !frames_.empty();
  }

 private:
  enum class State { kGreeting, kFlags, kSize, kBody };
  Status StartBody(uint64_t size, std::vector<Event>& out);
  void EndFrame(std::vector<Event>& out);

  Limits limits_;
  State state_ = State::kGreeting;
  bool ready_seen_ = false;  // a command named READY completed: message frames may follow
  std::string header_;     // greeting or size bytes read so far
  uint8_t flags_ = 0;
  size_t size_bytes_ = 0;  // 1 or 8
  uint64_t body_size_ = 0;
  std::string frame_;      // body of the frame or command under way
  std::vector<std::string> frames_;  // completed frames of the message under way
  int64_t message_bytes_ = 0;        // sum of frames_
};

// Our greeting: ZMTP 3.1, NULL; as-server on the side that accepted the connection.
std::string Greeting(bool as_server);
// A command frame: name and data.
std::string Command(std::string_view name, std::string_view data);
// READY with the Socket-Type property ("ROUTER", "DEALER") and, when not empty, Identity (a
// routing id of at most 255 bytes).
std::string Ready(std::string_view socket_type, std::string_view identity = {});
// Parses the properties of a READY; Ok with the value of Socket-Type, or an error.
Result<std::string> SocketTypeOfReady(std::string_view data);
// The header of a message frame of `size` bytes (`more`: another frame follows).
std::string FrameHeader(uint64_t size, bool more);

}  // namespace herd::net::zmtp
