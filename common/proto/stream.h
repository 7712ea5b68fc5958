// The byte stream of an interactive session (herd run, attach, exec): a sequence of frames that
// `herd` and the job's session relay (noded/runtime/relay.h, which runs as the job's user)
// exchange. herd-noded carries these bytes between its ZeroMQ messages and the relay's socket
// without reading them, so that no root process parses what a job or a user writes here.
// Frame: [type: 1 byte][payload length: 4 bytes, big-endian][payload], payload <= kMaxFramePayload.
// Thread-safety: plain value types and free functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace herd::proto::stream {

inline constexpr size_t kHeaderBytes = 5;
inline constexpr size_t kMaxFramePayload = 64 << 10;

// herd -> relay
inline constexpr char kInput = 'I';     // bytes for the job's stdin (or its terminal)
inline constexpr char kInputEnd = 'E';  // stdin ended (a terminal gets its EOF character)
inline constexpr char kWindow = 'W';    // terminal size: rows, columns (2 bytes each)
inline constexpr char kExec = 'C';      // herd exec: what to run (ExecRequest), the first frame
// relay -> herd
inline constexpr char kOutput = 'O';    // the job's stdout (its terminal's output)
inline constexpr char kError = 'R';     // the job's stderr (without a terminal)
inline constexpr char kSkipped = 'S';   // output lost to a slow reader: its byte count (8 bytes)
inline constexpr char kExit = 'X';      // the command ended: its exit code (4 bytes, signed)
inline constexpr char kNote = 'N';      // a line from the relay for the user ("detached: ...")

struct Frame {
  char type = 0;
  std::string payload;
};
// A frame whose payload lies in a FrameReader's buffer (see
// FrameReader::NextView).
struct FrameView {
  char type = 0;
  std::string_view payload;
};

// What herd exec asks a relay to run.
struct ExecRequest {
  bool pty = false;
  uint16_t rows = 0, cols = 0;
  std::vector<std::string> argv;
};

inline void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>((v >> shift) & 0xff));
}
inline uint32_t GetU32(std::string_view s) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

// Appends one frame to *out. REQUIRES: payload.size() <= kMaxFramePayload.
inline void AppendFrame(std::string* out, char type, std::string_view payload) {
  out->push_back(type);
  PutU32(out, static_cast<uint32_t>(payload.size()));
  out->append(payload);
}
inline std::string EncodeFrame(char type, std::string_view payload) {
  std::string out;
  AppendFrame(&out, type, payload);
  return out;
}
inline std::string WindowPayload(uint16_t rows, uint16_t cols) {
  return {static_cast<char>(rows >> 8), static_cast<char>(rows & 0xff), static_cast<char>(cols >> 8),
          static_cast<char>(cols & 0xff)};
}
inline bool ParseWindow(std::string_view p, uint16_t* rows, uint16_t* cols) {
  if (p.size() != 4) return false;
  *rows = static_cast<uint16_t>((static_cast<unsigned char>(p[0]) << 8) | static_cast<unsigned char>(p[1]));
  *cols = static_cast<uint16_t>((static_cast<unsigned char>(p[2]) << 8) | static_cast<unsigned char>(p[3]));
  return true;
}
inline std::string ExitPayload(int32_t code) {
  std::string out;
  PutU32(&out, static_cast<uint32_t>(code));
  return out;
}

// ExecRequest <-> payload: [pty][rows u16][cols u16] then each argument followed by a NUL.
inline std::string EncodeExec(const ExecRequest& r) {
  std::string out(1, r.pty ? '\1' : '\0');
  out += WindowPayload(r.rows, r.cols);
  for (const std::string& a : r.argv) {
    out += a;
    out.push_back('\0');
  }
  return out;
}
inline std::optional<ExecRequest> DecodeExec(std::string_view p) {
  if (p.size() < 5) return std::nullopt;
  ExecRequest r;
  r.pty = p[0] != 0;
  ParseWindow(p.substr(1, 4), &r.rows, &r.cols);
  p.remove_prefix(5);
  while (!p.empty()) {
    const size_t nul = p.find('\0');
    if (nul == std::string_view::npos) return std::nullopt;
    r.argv.emplace_back(p.substr(0, nul));
    p.remove_prefix(nul + 1);
  }
  if (r.argv.empty()) return std::nullopt;
  return r;
}

// Splits a byte stream into frames. Holds at most one frame's bytes beyond what it returned.
class FrameReader {
 public:
  // Appends received bytes. REQUIRES: !failed().
  void Append(std::string_view bytes) {
    if (pos_ == buffer_.size()) {  // all taken: start over rather than move the rest
      buffer_.clear();
      pos_ = 0;
    }
    buffer_.append(bytes);
  }
  // The next whole frame, or nullopt when more bytes are needed or the stream is bad (failed()).
  std::optional<Frame> Next() {
    auto f = NextView();
    if (!f) return std::nullopt;
    return Frame{f->type, std::string(f->payload)};
  }
  // The same without copying the payload: it stays valid until the next call of any method.
  std::optional<FrameView> NextView() {
    if (failed_ || buffer_.size() - pos_ < kHeaderBytes) return Compact();
    const uint32_t length = GetU32(std::string_view(buffer_).substr(pos_ + 1, 4));
    if (length > kMaxFramePayload) {
      failed_ = true;
      return std::nullopt;
    }
    if (buffer_.size() - pos_ < kHeaderBytes + length) return Compact();
    FrameView f{buffer_[pos_], std::string_view(buffer_).substr(pos_ + kHeaderBytes, length)};
    pos_ += kHeaderBytes + length;
    return f;
  }
  // A frame declared a payload over kMaxFramePayload: the peer is not following the protocol.
  bool failed() const { return failed_; }
  // Bytes held that form no whole frame yet.
  size_t pending() const { return buffer_.size() - pos_; }

 private:
  std::nullopt_t Compact() {
    buffer_.erase(0, pos_);
    pos_ = 0;
    return std::nullopt;
  }
  std::string buffer_;
  size_t pos_ = 0;
  bool failed_ = false;
};

// Bytes waiting to be written to a socket or pipe that takes them a part at a time: appended at
// the back, written from the front. The written ones are dropped from the front only once they
// are at least half of what is held, so each byte is moved at most once, not once per partial
// write. Used by the relay, herd-noded's session hub and herd port-forward.
// Thread-safety: a plain value type.
class PendingBytes {
 public:
  // Appends bytes to write after those held.
  void Append(std::string_view bytes) { buffer_.append(bytes); }
  // The same; when nothing is held, takes `bytes` over without copying them.
  void Append(std::string&& bytes) {
    if (empty()) {
      buffer_ = std::move(bytes);
      pos_ = 0;
    } else {
      buffer_.append(bytes);
    }
  }
  // The bytes not written yet, valid until the next call of a non-const method.
  std::string_view Unwritten() const { return std::string_view(buffer_).substr(pos_); }
  // The first n unwritten bytes were written. REQUIRES: n <= size().
  void Consume(size_t n) {
    pos_ += n;
    if (pos_ == buffer_.size()) {
      Clear();
    } else if (pos_ >= buffer_.size() / 2) {
      buffer_.erase(0, pos_);
      pos_ = 0;
    }
  }
  // Drops every byte held (the writer went away).
  void Clear() {
    buffer_.clear();
    pos_ = 0;
  }
  bool empty() const { return pos_ == buffer_.size(); }
  size_t size() const { return buffer_.size() - pos_; }

 private:
  std::string buffer_;
  size_t pos_ = 0;  // buffer_[0, pos_) is written; 0 when buffer_ is empty
};

// Appends one frame to *out. REQUIRES: payload.size() <= kMaxFramePayload.
inline void AppendFrame(PendingBytes* out, char type, std::string_view payload) {
  std::string header(1, type);
  PutU32(&header, static_cast<uint32_t>(payload.size()));
  out->Append(std::string_view(header));
  out->Append(payload);
}

}  // namespace herd::proto::stream
