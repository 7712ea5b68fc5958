#include "noded/runtime/relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>

namespace herd::runtime {
namespace stream = proto::stream;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kReadChunk = stream::kMaxFramePayload;
// Bytes handed to the socket in one write, at most (several frames).
constexpr size_t kSendBatch = 256 << 10;
// herd exec: after its `herd` went away, how long the command has after SIGHUP before SIGKILL.
constexpr auto kHangupGrace = std::chrono::seconds(2);

void SetNonBlocking(int fd) {
  if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

class Relay {
 public:
  explicit Relay(RelayOptions o) : o_(std::move(o)) {
    out_open_ = o_.io.out_fd >= 0;
    err_open_ = o_.io.err_fd >= 0;
    for (int fd : {o_.io.out_fd, o_.io.err_fd, o_.io.in_fd, o_.listen_fd}) SetNonBlocking(fd);
    if (o_.child > 0) pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, o_.child, 0));
    if (o_.client_fd >= 0) Attach(o_.client_fd);
  }

  int Run() {
    while (!Done()) {
      std::vector<pollfd> fds;
      auto add = [&](int fd, short events) -> int {
        if (fd < 0 || events == 0) return -1;
        fds.push_back({fd, events, 0});
        return static_cast<int>(fds.size()) - 1;
      };
      const bool may_read = MayReadOutput();
      const int i_listen = add(o_.listen_fd, POLLIN);
      const int i_out = add(out_open_ && may_read ? o_.io.out_fd : -1, POLLIN);
      const int i_err = add(err_open_ && may_read ? o_.io.err_fd : -1, POLLIN);
      const int i_exit = add(exit_code_ ? -1 : (pidfd_ >= 0 ? pidfd_ : o_.exit_fd), POLLIN);
      const int i_in = add(in_pending_.empty() ? -1 : o_.io.in_fd, POLLOUT);
      int i_client = -1;
      if (client_) {
        short ev = 0;
        if (in_pending_.empty()) ev |= POLLIN;
        if (HasOutputFor()) ev |= POLLOUT;
        i_client = add(client_->fd, ev);
      }
      int timeout = -1;
      if (deadline_) {
        timeout = static_cast<int>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(*deadline_ - Clock::now())
                   .count()));
      }
      // herd exec without its herd: only the command's end (or the grace) is awaited.
      if (fds.empty() && timeout < 0) timeout = 100;
      const int n = poll(fds.data(), fds.size(), timeout);
      if (n < 0 && errno != EINTR) break;
      if (n <= 0) {
        OnTimeout();
        continue;
      }
      auto ready = [&](int i) { return i >= 0 && fds[i].revents != 0; };
      if (ready(i_out)) ReadOutput(o_.io.out_fd, stream::kOutput, &out_open_);
      if (ready(i_err)) ReadOutput(o_.io.err_fd, stream::kError, &err_open_);
      if (ready(i_exit)) OnExit();
      if (ready(i_in)) WriteInput();
      if (ready(i_client) && client_) {
        if (fds[i_client].revents & POLLOUT) SendToClient();
        if (client_ && (fds[i_client].revents & (POLLIN | POLLHUP | POLLERR))) ReadClient();
      }
      if (ready(i_listen)) Accept();
    }
    if (!exit_code_) return -1;
    return *exit_code_;
  }

 private:
  struct Client {
    int fd = -1;
    stream::FrameReader reader;
    uint64_t cursor = 0;     // stream offset of the next ring frame to send (frame-aligned)
    uint64_t shown = 0;      // output bytes (payloads) up to `cursor`
    uint64_t out_start = 0;  // stream offset of the first frame in `out`
    uint64_t out_start_shown = 0;
    std::string out;         // bytes being written to the socket
    size_t out_pos = 0;
  };

  // The stream offset where ring frame i starts.
  uint64_t FrameStart(size_t i) const { return i == 0 ? start_offset_ : ring_[i - 1].end; }
  uint64_t EndOffset() const { return ring_.empty() ? start_offset_ : ring_.back().end; }
  uint64_t EndPayload() const { return ring_.empty() ? start_payload_ : ring_.back().payload_end; }

  // Where the next reader starts: the attached one's position, else where the last one stopped.
  uint64_t ReaderOffset() const {
    if (!client_) return resume_offset_;
    return client_->out.size() > client_->out_pos ? client_->out_start : client_->cursor;
  }

  bool MayReadOutput() const {
    if (o_.io.pty) return true;
    // Without a terminal nothing is lost: read only while the unread part fits the ring.
    const uint64_t reader = std::max(ReaderOffset(), start_offset_);
    return EndOffset() - reader < o_.ring_bytes;
  }

  void Push(char type, std::string_view payload) {
    std::string frame = stream::EncodeFrame(type, payload);
    ring_size_ += frame.size();
    const uint64_t end = EndOffset() + frame.size(), payload_end = EndPayload() + payload.size();
    ring_.push_back({end, payload_end, std::move(frame)});
    // A terminal's oldest output goes first; without one only what was read (see MayReadOutput).
    const uint64_t keep_from = o_.io.pty ? EndOffset() : std::max(ReaderOffset(), start_offset_);
    while (ring_size_ > o_.ring_bytes && ring_.size() > 1 && ring_.front().end <= keep_from) {
      ring_size_ -= ring_.front().frame.size();
      start_offset_ = ring_.front().end;
      start_payload_ = ring_.front().payload_end;
      ring_.pop_front();
    }
  }

  void ReadOutput(int fd, char type, bool* open) {
    char buf[kReadChunk];
    while (true) {
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n > 0) {
        if (o_.log_fd >= 0) (void)!write(o_.log_fd, buf, n);
        Push(type, std::string_view(buf, n));
        if (!MayReadOutput()) return;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      *open = false;  // EOF, or EIO: the terminal's last other holder closed it
      return;
    }
  }

  void OnExit() {
    int code = -1;
    if (pidfd_ >= 0) {
      int status = 0;
      if (waitpid(o_.child, &status, WNOHANG) <= 0) return;
      code = ExitCodeOf(status);
      CloseFd(&pidfd_);
    } else {
      char b[4];
      size_t got = 0;
      while (got < 4) {
        const ssize_t n = read(o_.exit_fd, b + got, 4 - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += static_cast<size_t>(n);
      }
      if (got == 4) code = static_cast<int32_t>(stream::GetU32(std::string_view(b, 4)));
      CloseFd(&o_.exit_fd);
    }
    // What the command wrote before it ended is waiting in the terminal or the pipes.
    for (int round = 0; round < 64 && (out_open_ || err_open_); ++round) {
      const uint64_t before = EndOffset();
      if (out_open_) ReadOutput(o_.io.out_fd, stream::kOutput, &out_open_);
      if (err_open_) ReadOutput(o_.io.err_fd, stream::kError, &err_open_);
      if (EndOffset() == before) break;
    }
    exit_code_ = code;
    Push(stream::kExit, stream::ExitPayload(code));
    deadline_ = Clock::now() + o_.drain_time;
  }

  bool Done() const {
    if (!exit_code_) return false;
    if (!client_) return true;
    if (deadline_ && Clock::now() >= *deadline_) return true;
    return !HasOutputFor();
  }

  void OnTimeout() {
    if (hangup_at_ && Clock::now() >= *hangup_at_ && !exit_code_) {
      kill(-o_.child, SIGKILL);
      hangup_at_.reset();
    }
  }

  bool HasOutputFor() const {
    return client_ && (client_->out_pos < client_->out.size() || client_->cursor < EndOffset() ||
                       !note_.empty());
  }

  // Fills the client's outgoing bytes from the ring: a note of what it missed, then frames.
  void SendToClient() {
    Client& c = *client_;
    if (c.out_pos >= c.out.size()) {
      c.out.clear();
      c.out_pos = 0;
      if (!note_.empty()) {
        c.out = std::move(note_);
        note_.clear();
      }
      if (c.cursor < start_offset_) {
        const uint64_t missed = start_payload_ - c.shown;
        std::string count;
        stream::PutU32(&count, static_cast<uint32_t>(missed >> 32));
        stream::PutU32(&count, static_cast<uint32_t>(missed));
        stream::AppendFrame(&c.out, stream::kSkipped, count);
        c.cursor = start_offset_;
        c.shown = start_payload_;
      }
      c.out_start = c.cursor;
      c.out_start_shown = c.shown;
      // The first frame at or after the cursor (frames are whole; the ring is in order).
      size_t lo = 0, hi = ring_.size();
      while (lo < hi) {
        const size_t mid = (lo + hi) / 2;
        if (FrameStart(mid) < c.cursor) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      for (size_t i = lo; i < ring_.size() && c.out.size() < kSendBatch; ++i) {
        c.out += ring_[i].frame;
        c.cursor = ring_[i].end;
        c.shown = ring_[i].payload_end;
      }
    }
    while (c.out_pos < c.out.size()) {
      const ssize_t n = send(c.fd, c.out.data() + c.out_pos, c.out.size() - c.out_pos,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        c.out_pos += static_cast<size_t>(n);
        // After the command's end, the drain time is for a herd that stopped taking the rest,
        // not for a slow one.
        if (exit_code_) deadline_ = Clock::now() + o_.drain_time;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      Detach();
      return;
    }
  }

  void ReadClient() {
    char buf[kReadChunk];
    const ssize_t n = recv(client_->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
      Detach();
      return;
    }
    client_->reader.Append(std::string_view(buf, n));
    while (auto f = client_->reader.Next()) OnFrame(*f);
    if (client_ && client_->reader.failed()) Detach();
  }

  void OnFrame(const stream::Frame& f) {
    switch (f.type) {
      case stream::kInput:
        if (!input_closed_) in_pending_ += f.payload;
        break;
      case stream::kInputEnd:
        if (o_.io.pty) {
          // The terminal's EOF character, as a keyboard would send it (VEOF, normally ^D).
          struct termios t;
          const char eof = tcgetattr(o_.io.in_fd, &t) == 0 ? static_cast<char>(t.c_cc[VEOF]) : 4;
          if (!input_closed_) in_pending_.push_back(eof);
        } else {
          close_input_ = true;
          if (in_pending_.empty()) CloseInput();
        }
        break;
      case stream::kWindow: {
        uint16_t rows = 0, cols = 0;
        if (o_.io.pty && stream::ParseWindow(f.payload, &rows, &cols)) {
          struct winsize ws = {rows, cols, 0, 0};
          ioctl(o_.io.in_fd, TIOCSWINSZ, &ws);  // the kernel signals SIGWINCH to the job
        }
        break;
      }
      default:
        break;  // unknown frames are skipped, so a newer herd may send more
    }
  }

  void WriteInput() {
    while (!in_pending_.empty()) {
      const ssize_t n = write(o_.io.in_fd, in_pending_.data(), in_pending_.size());
      if (n > 0) {
        in_pending_.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      // The job closed its stdin (EPIPE): what it will not read is dropped.
      in_pending_.clear();
      CloseInput();
      return;
    }
    if (close_input_) CloseInput();
  }

  void CloseInput() {
    input_closed_ = true;
    in_pending_.clear();
    if (!o_.io.pty) CloseFd(&o_.io.in_fd);
  }

  void Accept() {
    while (true) {
      const int fd = accept4(o_.listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;
      struct ucred cred;
      socklen_t len = sizeof cred;
      if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
          (cred.uid != 0 && cred.uid != o_.peer_uid)) {
        close(fd);
        continue;
      }
      if (client_) {
        const std::string bye =
            stream::EncodeFrame(stream::kNote, "detached: another herd attached to this session");
        (void)!send(client_->fd, bye.data(), bye.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        Detach();
      }
      Attach(fd);
    }
  }

  void Attach(int fd) {
    client_.emplace();
    client_->fd = fd;
    SetNonBlocking(fd);
    // A terminal's screen is drawn again from the ring; a stream goes on where it stopped.
    if (o_.io.pty || resume_offset_ < start_offset_) {
      client_->cursor = start_offset_;
      client_->shown = start_payload_;
    } else {
      client_->cursor = resume_offset_;
      client_->shown = resume_shown_;
    }
  }

  void Detach() {
    if (!client_) return;
    resume_offset_ = ReaderOffset();
    const bool partly_sent = client_->out.size() > client_->out_pos;
    resume_shown_ = partly_sent ? client_->out_start_shown : client_->shown;
    close(client_->fd);
    client_.reset();
    in_pending_.clear();  // typed for a session that is gone
    if (o_.client_fd >= 0 && o_.child > 0 && !exit_code_) {
      // herd exec lives as long as its herd: its command is hung up on, as by a closed terminal.
      kill(-o_.child, SIGHUP);
      kill(-o_.child, SIGCONT);
      hangup_at_ = Clock::now() + kHangupGrace;
      deadline_ = hangup_at_;
    }
  }

  RelayOptions o_;
  int pidfd_ = -1;
  bool out_open_ = false, err_open_ = false;
  // The ring of output frames, oldest first: each with the stream offset just past it and the
  // count of output bytes (payloads) up to its end.
  struct RingFrame {
    uint64_t end = 0;
    uint64_t payload_end = 0;
    std::string frame;
  };
  std::deque<RingFrame> ring_;
  uint64_t start_offset_ = 0;   // stream offset of ring_.front()
  uint64_t start_payload_ = 0;  // output bytes before ring_.front()
  size_t ring_size_ = 0;
  uint64_t resume_offset_ = 0, resume_shown_ = 0;
  std::optional<Client> client_;
  std::string note_;
  std::string in_pending_;  // taken from herd, not yet written to the job (one frame at most)
  bool close_input_ = false, input_closed_ = false;
  std::optional<int> exit_code_;
  std::optional<Clock::time_point> deadline_, hangup_at_;
};

// Reads exactly one frame from the socket within `timeout`, and not a byte more: what follows
// is the relay's.
std::optional<stream::Frame> ReadFirstFrame(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string bytes;
  size_t want = stream::kHeaderBytes;
  while (bytes.size() < want) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    std::string chunk(want - bytes.size(), '\0');
    const ssize_t n = recv(fd, chunk.data(), chunk.size(), MSG_DONTWAIT);
    if (n == 0) return std::nullopt;
    if (n < 0) continue;
    bytes.append(chunk, 0, static_cast<size_t>(n));
    if (want == stream::kHeaderBytes && bytes.size() == want) {
      const uint32_t length = stream::GetU32(std::string_view(bytes).substr(1, 4));
      if (length > stream::kMaxFramePayload) return std::nullopt;
      want += length;
    }
  }
  return stream::Frame{bytes[0], bytes.substr(stream::kHeaderBytes)};
}

}  // namespace

Result<SessionIo> OpenSessionIo(bool pty, uint16_t rows, uint16_t cols) {
  SessionIo io;
  io.pty = pty;
  if (pty) {
    const int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (master < 0) return Internal(std::string("cannot open a pty: ") + std::strerror(errno));
    char name[128];
    if (grantpt(master) != 0 || unlockpt(master) != 0 || ptsname_r(master, name, sizeof name) != 0) {
      const int err = errno;
      close(master);
      return Internal(std::string("cannot set up a pty: ") + std::strerror(err));
    }
    const int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) {
      const int err = errno;
      close(master);
      return Internal(std::string("cannot open ") + name + ": " + std::strerror(err));
    }
    if (rows > 0 && cols > 0) {
      struct winsize ws = {rows, cols, 0, 0};
      ioctl(master, TIOCSWINSZ, &ws);
    }
    io.out_fd = io.in_fd = master;
    io.child_in = io.child_out = io.child_err = slave;
    return io;
  }
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return Internal(std::string("pipe: ") + std::strerror(errno));
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    const int e = errno;
    for (int fd : {in[0], in[1]}) close(fd);
    return Internal(std::string("pipe: ") + std::strerror(e));
  }
  io.child_in = in[0];
  io.in_fd = in[1];
  io.out_fd = out[0];
  io.child_out = out[1];
  io.err_fd = err[0];
  io.child_err = err[1];
  return io;
}

void ResetSignalDispositions() {
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);  // KILL, STOP: refused
}

bool TakeSessionIo(const SessionIo& io) {
  if (setsid() < 0) return false;
  if (io.pty && ioctl(io.child_in, TIOCSCTTY, 0) != 0) return false;
  // dup2 clears close-on-exec on the copies.
  return dup2(io.child_in, 0) == 0 && dup2(io.child_out, 1) == 1 && dup2(io.child_err, 2) == 2;
}

void CloseCommandEnds(SessionIo* io) {
  for (int* fd : {&io->child_in, &io->child_out, &io->child_err}) {
    if (*fd >= 0 && (fd == &io->child_in || *fd != io->child_in)) close(*fd);
  }
  io->child_in = io->child_out = io->child_err = -1;
}

void CloseRelayEnds(SessionIo* io) {
  if (io->out_fd >= 0) close(io->out_fd);
  if (io->err_fd >= 0) close(io->err_fd);
  if (io->in_fd >= 0 && io->in_fd != io->out_fd) close(io->in_fd);
  io->out_fd = io->err_fd = io->in_fd = -1;
}

int RunRelay(RelayOptions options) { return Relay(std::move(options)).Run(); }

Result<int> ConnectLoopback(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
  struct sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    const int err = errno;
    close(fd);
    return Unavailable(std::string(std::strerror(err)) +
                       (err == ECONNREFUSED ? " (is anything listening on it?)" : ""));
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  SetNonBlocking(fd);
  return fd;
}

int RunForwardRelay(int client_fd, int tcp_fd, std::chrono::milliseconds drain_time) {
  // What may wait to be written, each way, before the other side is read again.
  constexpr size_t kMaxPending = 256 << 10;
  SetNonBlocking(client_fd);
  SetNonBlocking(tcp_fd);
  stream::FrameReader reader;
  // Bytes to write each way.
  stream::PendingBytes to_tcp, to_client;
  bool tcp_open = true, input_ended = false, shut = false;
  std::optional<Clock::time_point> deadline;
  std::string buf(stream::kMaxFramePayload, '\0');
  while (true) {
    if (!tcp_open && to_client.empty()) break;
    if (deadline && Clock::now() >= *deadline) break;
    if (input_ended && to_tcp.empty() && !shut) {
      shutdown(tcp_fd, SHUT_WR);
      shut = true;
    }
    struct pollfd fds[2] = {{client_fd, 0, 0}, {tcp_fd, 0, 0}};
    if (to_tcp.size() < kMaxPending && !input_ended) fds[0].events |= POLLIN;
    if (!to_client.empty()) fds[0].events |= POLLOUT;
    if (tcp_open && to_client.size() < kMaxPending) fds[1].events |= POLLIN;
    if (!to_tcp.empty()) fds[1].events |= POLLOUT;
    const int n = poll(fds, 2, deadline ? 100 : -1);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (tcp_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      const ssize_t got = read(tcp_fd, buf.data(), buf.size());
      if (got > 0) {
        stream::AppendFrame(&to_client, stream::kOutput, std::string_view(buf.data(), got));
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        // The job's side closed (or reset) the connection: so does herd's, once told.
        tcp_open = false;
        stream::AppendFrame(&to_client, stream::kExit, stream::ExitPayload(0));
        deadline = Clock::now() + drain_time;
      }
    }
    if (fds[1].revents & POLLOUT) {
      const std::string_view out = to_tcp.Unwritten();
      const ssize_t put = send(tcp_fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (put > 0) to_tcp.Consume(static_cast<size_t>(put));
      if (put < 0 && errno != EAGAIN && errno != EINTR) to_tcp.Clear();
    }
    if (fds[0].revents & POLLOUT) {
      const std::string_view out = to_client.Unwritten();
      const ssize_t put = send(client_fd, out.data(), out.size(), MSG_NOSIGNAL);
      if (put > 0) to_client.Consume(static_cast<size_t>(put));
      // The drain time is for a herd that stopped taking the rest, not for a slow one.
      if (put > 0 && deadline) deadline = Clock::now() + drain_time;
      if (put < 0 && errno != EAGAIN && errno != EINTR) break;
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t got = recv(client_fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) break;  // herd went away
      if (got > 0) reader.Append(std::string_view(buf.data(), got));
      while (auto f = reader.NextView()) {
        if (f->type == stream::kInput) to_tcp.Append(f->payload);
        if (f->type == stream::kInputEnd) input_ended = true;
      }
      if (reader.failed()) break;
    }
  }
  close(tcp_fd);
  close(client_fd);
  return 0;
}

int RunExecRelay(int client_fd, const std::vector<std::string>& env, const std::string& cwd) {
  auto send_error = [&](const std::string& message) {
    std::string out = stream::EncodeFrame(stream::kError, "herd exec: " + message + "\n");
    stream::AppendFrame(&out, stream::kExit, stream::ExitPayload(127));
    (void)!send(client_fd, out.data(), out.size(), MSG_NOSIGNAL);
    return 127;
  };
  auto first = ReadFirstFrame(client_fd, std::chrono::seconds(10));
  if (!first || first->type != stream::kExec) return send_error("no command was sent");
  auto request = stream::DecodeExec(first->payload);
  if (!request) return send_error("malformed command");
  Result<SessionIo> io = OpenSessionIo(request->pty, request->rows, request->cols);
  if (!io.ok()) return send_error(io.status().message());
  std::vector<std::string> args = request->argv, envs = env;
  std::vector<char*> argv, envp;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (std::string& e : envs) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string dir = cwd.empty() ? "/" : cwd;
  const pid_t child = fork();
  if (child < 0) return send_error(std::string("fork: ") + std::strerror(errno));
  if (child == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ResetSignalDispositions();
    if (!TakeSessionIo(*io)) _exit(127);
    if (chdir(dir.c_str()) != 0 && chdir("/") != 0) _exit(127);
    environ = envp.data();
    execvp(argv[0], argv.data());
    const std::string why =
        "herd exec: cannot run '" + args[0] + "': " + std::strerror(errno) + "\n";
    (void)!write(2, why.data(), why.size());
    _exit(127);
  }
  CloseCommandEnds(&*io);
  RelayOptions o;
  o.io = *io;
  o.client_fd = client_fd;
  o.child = child;
  return RunRelay(std::move(o));
}

}  // namespace herd::runtime
