#include "common/net/net_zmq.h"

#include <chrono>
#include <iterator>
#include <zmq.hpp>
#include <zmq_addon.hpp>

namespace herd::net {
namespace {

using Clock = std::chrono::steady_clock;

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits until `socket` is readable or timeout_ms passes (negative: forever). EINTR counts as a
// timeout so that a signal reaches the caller's loop.
bool WaitReadable(zmq::socket_t& socket, int timeout_ms) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  try {
    return zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) > 0;
  } catch (const zmq::error_t&) {
    return false;
  }
}

// Receives one whole multipart message if one is queued, never blocking.
bool TryReceive(zmq::socket_t& socket, std::vector<zmq::message_t>& frames) {
  frames.clear();
  try {
    return zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait)
        .has_value();
  } catch (const zmq::error_t&) {
    return false;
  }
}

class ZmqContext : public Context {
 public:
  explicit ZmqContext(int max_sockets) { context.set(zmq::ctxopt::max_sockets, max_sockets); }
  zmq::context_t context{1};
};

class ZmqDealer : public Dealer {
 public:
  ZmqDealer(std::string endpoint, std::shared_ptr<Context> context)
      : endpoint_(std::move(endpoint)),
        context_(context ? std::move(context) : std::make_shared<ZmqContext>(1023)),
        socket_(static_cast<ZmqContext&>(*context_).context, zmq::socket_type::dealer) {}

  Status Connect(const std::string& identity, int64_t max_message_bytes) {
    try {
      if (!identity.empty()) socket_.set(zmq::sockopt::routing_id, identity);
      socket_.set(zmq::sockopt::linger, 0);
      socket_.set(zmq::sockopt::maxmsgsize, max_message_bytes);
      socket_.set(zmq::sockopt::reconnect_ivl, 100);
      fd_ = socket_.get(zmq::sockopt::fd);
      socket_.connect(endpoint_);
    } catch (const zmq::error_t& e) {
      return Invalid("cannot connect to " + endpoint_ + ": " + e.what());
    }
    return Status::Ok();
  }

  Status Send(const proto::Envelope& e) override {
    try {
      if (socket_.send(zmq::buffer(proto::EncodeEnvelope(e)), zmq::send_flags::dontwait)) {
        return Status::Ok();
      }
      return Unavailable("cannot send to " + endpoint_ + ": its queue is full");
    } catch (const zmq::error_t& err) {
      return Unavailable("cannot send to " + endpoint_ + ": " + err.what());
    }
  }

  std::optional<proto::Envelope> Receive(int timeout_ms) override {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    std::vector<zmq::message_t> frames;
    do {
      while (TryReceive(socket_, frames)) {
        if (frames.size() != 1) continue;
        if (auto envelope = DecodeFromController(frames[0].to_string_view())) return envelope;
      }
    } while (WaitReadable(socket_, RemainingMs(deadline)) || RemainingMs(deadline) > 0);
    return std::nullopt;
  }

  int Fd() const override { return fd_; }

  // ZMQ_FD only signals that ZMQ_EVENTS may have changed: the events are read before each wait and
  // after it, so that a message already queued is never waited for.
  bool PrepareWait(pollfd& p, int& /*timeout_ms*/) override {
    p = {fd_, POLLIN, 0};
    return Readable();
  }
  bool AfterWait(short /*revents*/) override { return Readable(); }

 private:
  bool Readable() {
    try {
      return (socket_.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0;
    } catch (const zmq::error_t&) {
      return false;
    }
  }

  std::string endpoint_;
  std::shared_ptr<Context> context_;  // outlives socket_
  zmq::socket_t socket_;
  int fd_ = -1;
};

}  // namespace

std::shared_ptr<Context> Context::Create(int max_sockets) {
  return std::make_shared<ZmqContext>(max_sockets);
}

Result<std::unique_ptr<Dealer>> ConnectZmq(const std::string& endpoint, const std::string& identity,
                                           std::shared_ptr<Context> context,
                                           int64_t max_message_bytes) {
  try {
    auto dealer = std::make_unique<ZmqDealer>(endpoint, std::move(context));
    HERD_RETURN_IF_ERROR(dealer->Connect(identity, max_message_bytes));
    return std::unique_ptr<Dealer>(std::move(dealer));
  } catch (const zmq::error_t& e) {  // EMFILE: the context's max_sockets is reached
    return Unavailable("cannot open a socket to " + endpoint + ": " + e.what());
  }
}

}  // namespace herd::net
