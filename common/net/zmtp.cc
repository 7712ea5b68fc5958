#include "common/net/zmtp.h"

#include <algorithm>

namespace herd::net::zmtp {
namespace {

constexpr uint8_t kMore = 0x01;
constexpr uint8_t kLong = 0x02;
constexpr uint8_t kCommand = 0x04;
constexpr uint8_t kReserved = 0xf8;

void PutBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t BigEndian(std::string_view b) {
  uint64_t v = 0;
  for (char c : b) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

// Flags and size of a frame: the short form up to 255 bytes, else LONG with 8 bytes.
std::string Header(uint8_t flags, uint64_t size) {
  std::string out;
  if (size > 255) {
    out.push_back(static_cast<char>(flags | kLong));
    PutBigEndian(out, size, 8);
  } else {
    out.push_back(static_cast<char>(flags));
    out.push_back(static_cast<char>(size));
  }
  return out;
}

Status CheckGreeting(std::string_view g) {
  if (static_cast<uint8_t>(g[0]) != 0xff || (static_cast<uint8_t>(g[9]) & 0x01) == 0) {
    return Invalid("not a ZMTP 3 peer (bad signature)");
  }
  if (static_cast<uint8_t>(g[10]) < 3) {
    return Invalid("ZMTP " + std::to_string(static_cast<uint8_t>(g[10])) +
                   ".x is not supported (3.0 or later is)");
  }
  const std::string_view mechanism = g.substr(12, 20);
  if (mechanism != std::string_view("NULL\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20)) {
    return Invalid("only the NULL security mechanism is supported");
  }
  return Status::Ok();
}

}  // namespace

Status Parser::Feed(std::string_view bytes, std::vector<Event>& out) {
  while (!bytes.empty()) {
    switch (state_) {
      case State::kGreeting: {
        const size_t take = std::min(kGreetingBytes - header_.size(), bytes.size());
        header_.append(bytes.substr(0, take));
        bytes.remove_prefix(take);
        if (static_cast<uint8_t>(header_[0]) != 0xff) return Invalid("not a ZMTP 3 peer");
        if (header_.size() < kGreetingBytes) break;
        if (Status s = CheckGreeting(header_); !s.ok()) return s;
        Event e;
        e.kind = Event::Kind::kGreeting;
        e.minor_version = static_cast<uint8_t>(header_[11]);
        out.push_back(std::move(e));
        header_.clear();
        state_ = State::kFlags;
        break;
      }
      case State::kFlags: {
        flags_ = static_cast<uint8_t>(bytes[0]);
        bytes.remove_prefix(1);
        if (flags_ & kReserved) return Invalid("reserved frame flags are set");
        if ((flags_ & kCommand) && (flags_ & kMore)) return Invalid("a command marked MORE");
        size_bytes_ = (flags_ & kLong) ? 8 : 1;
        header_.clear();
        state_ = State::kSize;
        break;
      }
      case State::kSize: {
        const size_t take = std::min(size_bytes_ - header_.size(), bytes.size());
        header_.append(bytes.substr(0, take));
        bytes.remove_prefix(take);
        if (header_.size() < size_bytes_) break;
        if (Status s = StartBody(BigEndian(header_), out); !s.ok()) return s;
        break;
      }
      case State::kBody: {
        const size_t take = static_cast<size_t>(
            std::min<uint64_t>(body_size_ - frame_.size(), bytes.size()));
        if (frame_.capacity() < frame_.size() + take) {
          // Grow with the bytes that arrive, never to more than the declared size.
          frame_.reserve(static_cast<size_t>(std::min<uint64_t>(
              body_size_, std::max<uint64_t>(frame_.size() + take, 2 * frame_.capacity()))));
        }
        frame_.append(bytes.substr(0, take));
        bytes.remove_prefix(take);
        if (frame_.size() == body_size_) EndFrame(out);
        break;
      }
    }
  }
  return Status::Ok();
}

Status Parser::StartBody(uint64_t size, std::vector<Event>& out) {
  // Every comparison is against a non-negative int64 limit, so an 8-byte size cannot overflow.
  if (flags_ & kCommand) {
    if (size > static_cast<uint64_t>(limits_.max_command_bytes)) {
      return Invalid("command of " + std::to_string(size) + " bytes (at most " +
                     std::to_string(limits_.max_command_bytes) + ")");
    }
  } else {
    // A peer that has not said READY may not start a message: its bytes are refused unread.
    if (!ready_seen_) return Invalid("a message before READY");
    if (frames_.size() >= static_cast<size_t>(limits_.max_frames)) {
      return Invalid("message of more than " + std::to_string(limits_.max_frames) + " frames");
    }
    if (size > static_cast<uint64_t>(limits_.max_message_bytes - message_bytes_)) {
      return Invalid("message of more than " + std::to_string(limits_.max_message_bytes) +
                     " bytes");
    }
  }
  body_size_ = size;
  frame_.clear();
  state_ = State::kBody;
  if (size == 0) EndFrame(out);
  return Status::Ok();
}

void Parser::EndFrame(std::vector<Event>& out) {
  state_ = State::kFlags;
  if (flags_ & kCommand) {
    Event e;
    e.kind = Event::Kind::kCommand;
    const size_t name_size = frame_.empty() ? 0 : static_cast<uint8_t>(frame_[0]);
    if (!frame_.empty() && name_size + 1 <= frame_.size()) {
      e.name = frame_.substr(1, name_size);
      e.data = frame_.substr(1 + name_size);
      if (e.name == "READY") ready_seen_ = true;  // its properties are the reader's to check
    }  // else: an unnamed or truncated command, refused by whoever reads its empty name
    frame_ = std::string();
    out.push_back(std::move(e));
    return;
  }
  message_bytes_ += static_cast<int64_t>(frame_.size());
  frames_.push_back(std::move(frame_));
  frame_ = std::string();
  if (flags_ & kMore) return;
  Event e;
  e.kind = Event::Kind::kMessage;
  e.frames = std::move(frames_);
  frames_.clear();
  message_bytes_ = 0;
  out.push_back(std::move(e));
}

std::string Greeting(bool as_server) {
  std::string g(kGreetingBytes, '\0');
  g[0] = static_cast<char>(0xff);
  g[9] = 0x7f;
  g[10] = 3;
  g[11] = 1;
  g.replace(12, 4, "NULL");
  g[32] = as_server ? 1 : 0;
  return g;
}

std::string Command(std::string_view name, std::string_view data) {
  std::string out = Header(kCommand, 1 + name.size() + data.size());
  out.push_back(static_cast<char>(name.size()));
  out.append(name);
  out.append(data);
  return out;
}

std::string Ready(std::string_view socket_type, std::string_view identity) {
  std::string props;
  const auto property = [&props](std::string_view name, std::string_view value) {
    props.push_back(static_cast<char>(name.size()));
    props.append(name);
    PutBigEndian(props, value.size(), 4);
    props.append(value);
  };
  property("Socket-Type", socket_type);
  if (!identity.empty()) property("Identity", identity);
  return Command("READY", props);
}

Result<std::string> SocketTypeOfReady(std::string_view data) {
  std::string socket_type;
  while (!data.empty()) {
    const size_t name_size = static_cast<uint8_t>(data[0]);
    if (name_size == 0 || data.size() < 1 + name_size + 4) return Invalid("malformed READY");
    const std::string_view name = data.substr(1, name_size);
    const uint64_t value_size = BigEndian(data.substr(1 + name_size, 4));
    data.remove_prefix(1 + name_size + 4);
    if (value_size > data.size()) return Invalid("malformed READY");
    const std::string_view value = data.substr(0, static_cast<size_t>(value_size));
    data.remove_prefix(static_cast<size_t>(value_size));
    // Property names are case-insensitive.
    const auto same = [](char a, char b) {
      return (a >= 'A' && a <= 'Z' ? a - 'A' + 'a' : a) == b;
    };
    if (name.size() == 11 && std::equal(name.begin(), name.end(), "socket-type", same)) {
      socket_type = std::string(value);
    }
  }
  if (socket_type.empty()) return Invalid("READY without Socket-Type");
  return socket_type;
}

std::string FrameHeader(uint64_t size, bool more) { return Header(more ? kMore : 0, size); }

}  // namespace herd::net::zmtp
