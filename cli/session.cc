#include "cli/session.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>

#include "cli/session_signer.h"
#include "common/net/net.h"
#include "common/proto/codec.h"
#include "common/proto/stream.h"
#include "common/util/heap.h"

namespace herd::cli {
namespace {

namespace stream = proto::stream;
using Clock = std::chrono::steady_clock;

constexpr size_t kReadChunk = 16 << 10;
// How often an idle session tells herd-noded it is still there (it drops silent ones).
constexpr auto kKeepalive = std::chrono::seconds(5);
// What herd took of the node's window is acknowledged each time this much more
// arrived: a fraction small enough that herd-noded rarely finds its window full
// while acknowledgements are on their way.
constexpr int64_t kAckStep = proto::kSessionWindow / 8;

// Raw mode for the session; the terminal's settings come back when this goes, on every path
// out of RunSession (signals that would end herd are read from a signalfd, never delivered).
class RawTerminal {
 public:
  explicit RawTerminal(bool enable) {
    if (!enable || tcgetattr(0, &saved_) != 0) return;
    struct termios raw = saved_;
    cfmakeraw(&raw);
    active_ = tcsetattr(0, TCSADRAIN, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) tcsetattr(0, TCSADRAIN, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  struct termios saved_ = {};
  bool active_ = false;
};

// Blocks the signals the session reads from a signalfd, and unblocks them when it ends.
class SignalReader {
 public:
  SignalReader() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGWINCH, SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGPIPE}) sigaddset(&set, sig);
    sigprocmask(SIG_BLOCK, &set, &old_);
    fd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  }
  ~SignalReader() {
    if (fd_ >= 0) close(fd_);
    sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  SignalReader(const SignalReader&) = delete;
  SignalReader& operator=(const SignalReader&) = delete;
  int fd() const { return fd_; }
  // The next pending signal, or 0.
  int Next() {
    struct signalfd_siginfo info;
    return read(fd_, &info, sizeof info) == sizeof info ? static_cast<int>(info.ssi_signo) : 0;
  }

 private:
  int fd_ = -1;
  sigset_t old_;
};

bool WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

class Session {
 public:
  Session(const SessionRequest& r, auth::Authenticator& auth, std::ostream& err)
      : r_(r), signer_(auth), err_(err) {}

  Result<SessionEnd> Run() {
    KeepHeapForStreams();
    auto dealer = net::Dealer::Connect(r_.endpoint, "");
    if (!dealer.ok()) return dealer.status();
    dealer_ = std::move(*dealer);
    HERD_RETURN_IF_ERROR(Open());
    SignalReader signals;
    RawTerminal terminal(r_.raw);
    if (r_.exec) {
      stream::ExecRequest exec{r_.pty, 0, 0, r_.argv};
      WindowSize(&exec.rows, &exec.cols);
      HERD_RETURN_IF_ERROR(SendInput(stream::EncodeFrame(stream::kExec, stream::EncodeExec(exec))));
    } else if (r_.raw) {
      HERD_RETURN_IF_ERROR(SendWindow());
    }
    last_heard_ = last_sent_ = Clock::now();
    while (true) {
      if (end_) return *end_;
      std::vector<int> fds = {signals.fd()};
      const bool may_read_stdin = stdin_open_ && sent_input_ - taken_ < proto::kSessionWindow;
      if (may_read_stdin) fds.push_back(0);
      const std::vector<size_t> ready = net::WaitAny({dealer_.get()}, 1000, fds);
      if (!ready.empty()) {
        for (auto e = dealer_->Receive(0); e && !end_; e = dealer_->Receive(0)) OnMessage(*e);
        if (end_) continue;
      }
      for (int sig = signals.Next(); sig != 0; sig = signals.Next()) {
        if (sig == SIGWINCH) {
          if (r_.raw || (r_.exec && r_.pty)) HERD_RETURN_IF_ERROR(SendWindow());
        } else if (sig != SIGPIPE) {
          Detach(sig);
        }
      }
      if (end_) continue;
      if (may_read_stdin && Readable(0)) HERD_RETURN_IF_ERROR(ReadStdin());
      const auto now = Clock::now();
      if (now - last_sent_ >= kKeepalive) HERD_RETURN_IF_ERROR(SendInput(""));
      if (now - last_heard_ >= std::chrono::milliseconds(3 * r_.timeout_ms)) {
        end_ = SessionEnd{SessionEnd::kLost, -1, 0, "no answer from " + r_.endpoint};
      }
    }
  }

 private:
  static bool Readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
  }

  static void WindowSize(uint16_t* rows, uint16_t* cols) {
    struct winsize ws = {};
    if (ioctl(0, TIOCGWINSZ, &ws) != 0 && ioctl(1, TIOCGWINSZ, &ws) != 0) return;
    *rows = ws.ws_row;
    *cols = ws.ws_col;
  }

  Status Send(proto::Envelope e) {
    last_sent_ = Clock::now();
    return signer_.Send(*dealer_, std::move(e), sent_input_);
  }

  Status Open() {
    const uint64_t id = signer_.next_id();
    HERD_RETURN_IF_ERROR(Send(proto::MakeEnvelope(
        proto::SessionOpen{r_.id, r_.worker, r_.exec, r_.node, 0, signer_.OfferKey()})));
    const auto deadline = Clock::now() + std::chrono::milliseconds(r_.timeout_ms);
    while (Clock::now() < deadline) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      auto reply = dealer_->Receive(static_cast<int>(std::max<int64_t>(left.count(), 1)));
      if (!reply || reply->id != id) continue;
      HERD_RETURN_IF_ERROR(net::ReplyStatus(*reply));
      auto opened = proto::BodyOf<proto::SessionOpened>(*reply);
      if (!opened.ok()) return opened.status();
      session_ = opened->session;
      signer_.Accept(opened->server_public);
      return Status::Ok();
    }
    return Unavailable("no answer from the job's node at " + r_.endpoint + " within " +
                       std::to_string(r_.timeout_ms / 1000) + "s");
  }

  Status SendInput(std::string data, bool close = false) {
    sent_input_ += static_cast<int64_t>(data.size());
    acked_ = received_;
    return Send(proto::MakeEnvelope(proto::SessionInput{session_, std::move(data), received_, close}));
  }

  Status SendWindow() {
    uint16_t rows = 0, cols = 0;
    WindowSize(&rows, &cols);
    if (rows == 0 || cols == 0) return Status::Ok();
    return SendInput(stream::EncodeFrame(stream::kWindow, stream::WindowPayload(rows, cols)));
  }

  void Detach(int sig) {
    (void)SendInput("", /*close=*/true);
    end_ = SessionEnd{SessionEnd::kDetached, -1, sig, ""};
  }

  // The escape "~." at the start of a line detaches; "~~" sends one "~" (as ssh does).
  Status ReadStdin() {
    char buf[kReadChunk];
    const ssize_t n = read(0, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return Status::Ok();
    if (n <= 0) {
      stdin_open_ = false;
      return SendInput(stream::EncodeFrame(stream::kInputEnd, ""));
    }
    std::string out;
    for (ssize_t i = 0; i < n; ++i) {
      const char c = buf[i];
      if (!r_.raw) {
        out.push_back(c);
        continue;
      }
      if (tilde_) {
        tilde_ = false;
        if (c == '.') {
          if (!out.empty()) HERD_RETURN_IF_ERROR(SendData(out));
          Detach(0);
          return Status::Ok();
        }
        if (c != '~') out.push_back('~');
        out.push_back(c);
      } else if (line_start_ && c == '~') {
        tilde_ = true;
        continue;
      } else {
        out.push_back(c);
      }
      line_start_ = c == '\r' || c == '\n';
    }
    return out.empty() ? Status::Ok() : SendData(out);
  }

  Status SendData(std::string_view data) {
    std::string frames;
    while (!data.empty()) {
      const size_t n = std::min(data.size(), stream::kMaxFramePayload);
      stream::AppendFrame(&frames, stream::kInput, data.substr(0, n));
      data.remove_prefix(n);
    }
    return SendInput(std::move(frames));
  }

  void Note(const std::string& line) {
    // In raw mode the terminal does not turn "\n" into "\r\n".
    err_ << "\r\nherd: " << line << (r_.raw ? "\r\n" : "\n") << std::flush;
  }

  void OnMessage(const proto::Envelope& e) {
    last_heard_ = Clock::now();
    if (e.type == proto::MessageName<proto::ErrorReply>()) {
      Status again;
      if (signer_.Recovered(*dealer_, e, &again)) {
        // Sent again on the new connection; what it acknowledged may have been lost.
        if (again.ok()) again = SendInput("");
        if (!again.ok()) end_ = SessionEnd{SessionEnd::kLost, -1, 0, again.message()};
        return;
      }
      Status s = net::ReplyStatus(e);
      end_ = SessionEnd{SessionEnd::kLost, -1, 0, s.message()};
      return;
    }
    auto out = proto::BodyOf<proto::SessionOutput>(e);
    if (!out.ok() || out->session != session_) return;
    taken_ = std::max(taken_, out->taken);
    signer_.Taken(taken_);
    received_ += static_cast<int64_t>(out->data.size());
    reader_.Append(out->data);
    // The message's stdout goes out in one write (a job's frames may be small:
    // one per read of its pipe), before anything else is written and before
    // herd acknowledges it.
    bool going_on = true;
    while (going_on) {
      auto f = reader_.NextView();
      if (!f) break;
      if (f->type == stream::kOutput) {
        stdout_.append(f->payload);
        continue;
      }
      FlushStdout();
      going_on = OnFrame(*f);
    }
    FlushStdout();
    if (!going_on) return;
    if (reader_.failed()) {
      end_ = SessionEnd{SessionEnd::kLost, -1, 0, "malformed session stream"};
      return;
    }
    if (out->closed) {
      end_ = SessionEnd{SessionEnd::kClosed, -1, 0,
                        out->error.empty() ? "the session ended" : out->error};
      return;
    }
    if (received_ - acked_ >= kAckStep) (void)SendInput("");
  }

  void FlushStdout() {
    WriteAll(1, stdout_);
    stdout_.clear();
  }

  // False once the session is over.
  bool OnFrame(const stream::FrameView& f) {
    switch (f.type) {
      case stream::kOutput:
        WriteAll(1, f.payload);
        break;
      case stream::kError:
        WriteAll(2, f.payload);
        break;
      case stream::kSkipped: {
        uint64_t n = 0;
        if (f.payload.size() == 8) {
          n = (static_cast<uint64_t>(stream::GetU32(f.payload)) << 32) |
              stream::GetU32(f.payload.substr(4));
        }
        Note("[" + std::to_string(n) + " bytes of output skipped: this terminal fell behind]");
        break;
      }
      case stream::kNote:
        Note(std::string(f.payload));
        if (f.payload.starts_with("detached")) {
          end_ = SessionEnd{SessionEnd::kDetached, -1, 0, std::string(f.payload)};
          return false;
        }
        break;
      case stream::kExit:
        if (f.payload.size() == 4) {
          end_ = SessionEnd{SessionEnd::kExited, static_cast<int32_t>(stream::GetU32(f.payload)), 0,
                            ""};
        } else {
          end_ = SessionEnd{SessionEnd::kClosed, -1, 0, "the session ended"};
        }
        return false;
      default:
        break;
    }
    return true;
  }

  const SessionRequest& r_;
  SessionSigner signer_;
  std::ostream& err_;
  std::unique_ptr<net::Dealer> dealer_;
  uint64_t session_ = 0;
  stream::FrameReader reader_;
  std::string stdout_;  // the job's output of the message being handled, not yet written
  int64_t received_ = 0, acked_ = 0, sent_input_ = 0, taken_ = 0;
  bool stdin_open_ = true;
  bool line_start_ = true, tilde_ = false;
  Clock::time_point last_heard_, last_sent_;
  std::optional<SessionEnd> end_;
};

}  // namespace

Result<SessionEnd> RunSession(const SessionRequest& request, auth::Authenticator& auth,
                              std::ostream& err) {
  return Session(request, auth, err).Run();
}

}  // namespace herd::cli
