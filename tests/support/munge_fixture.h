// A private munged for tests: its own key, socket and logs in a fresh temp directory.
// Built by net_test and the integration tests; a test skips when Start() says munge is absent.
// Thread-safety: one owner; the socket may be used from any thread.
#pragma once

#include <memory>
#include <string>

#include "common/util/status.h"

namespace herd::testing {

class MungeDaemon {
 public:
  // Creates a key and starts munged, returning once its socket accepts requests.
  // kNotFound when munged or mungekey is not installed (callers GTEST_SKIP with the message);
  // kInternal with munged's log when it does not start.
  static Result<std::unique_ptr<MungeDaemon>> Start();
  // Stops munged (munged --stop) and removes the directory.
  ~MungeDaemon();

  MungeDaemon(const MungeDaemon&) = delete;
  MungeDaemon& operator=(const MungeDaemon&) = delete;

  // The socket to pass to auth::MakeAuthenticator("munge", socket).
  const std::string& socket() const { return socket_; }

 private:
  MungeDaemon(std::string dir, std::string munged);
  std::string dir_;
  std::string munged_;
  std::string socket_;
};

}  // namespace herd::testing
