// A headless Chromium driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: JSON messages separated by NUL bytes on file
// descriptors 3 and 4), for the dashboard's browser test and bench/web. One
// page (target) per Chromium; every wait has a deadline. Thread-safety: one
// thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/util/status.h"
#include "nlohmann/json.hpp"

namespace herd::testing {

class Chromium {
 public:
  // Where Debian's chromium package puts the browser.
  static constexpr char kPath[] = "/usr/bin/chromium";

  // Starts `kPath` headless with a fresh profile in `profile_dir` (made if
  // absent) and opens one blank page; Unavailable (with why) when there is no
  // Chromium or it does not answer.
  static Result<std::unique_ptr<Chromium>> Start(const std::string &profile_dir);
  ~Chromium();  // kills the browser

  // Sends DevTools command `method` to the page (or to the browser when
  // `to_browser`) and returns its result, or the error it answered.
  Result<nlohmann::json> Call(const std::string &method, const nlohmann::json &params = {},
                              bool to_browser = false);
  // Opens `url` in the page; returns once the document has loaded.
  Status Navigate(const std::string &url);
  // The value of JavaScript `expression` in the page (a promise is awaited).
  Result<nlohmann::json> Evaluate(const std::string &expression);
  // Evaluates `expression` until it is true or `timeout` passes: true when it
  // became true.
  bool WaitFor(const std::string &expression, std::chrono::milliseconds timeout);
  // Writes a PNG of the page (its whole length) to `path`.
  Status Screenshot(const std::string &path);

 private:
  Chromium() = default;
  Result<nlohmann::json> Send(const std::string &method, const nlohmann::json &params,
                              const std::string &session);

  pid_t pid_ = 0;
  int to_browser_ = -1;    // its fd 3
  int from_browser_ = -1;  // its fd 4
  int next_id_ = 1;
  std::string buffer_;   // read but not yet taken
  std::string session_;  // the page's DevTools session
};

}  // namespace herd::testing
