// herd-web's dashboard: the pages of web/ui/ (built in) and Debian's dygraphs
// (read from /usr/share/javascript/dygraphs when herd-web starts), served with
// a strict Content-Security- Policy. The pages hold no data: their script
// fetches the REST API with the session cookie, so without a valid session they
// show nothing but how to log in. Thread-safety: Ui is immutable after
// construction.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "web/api.h"

namespace herd::web {

// Where Debian's libjs-dygraphs puts the charting library.
inline constexpr char kDygraphsDir[] = "/usr/share/javascript/dygraphs";

// The policy of every dashboard answer: scripts and styles from herd-web only
// (no inline script, no eval), data from herd-web only, never in a frame.
inline constexpr char kDashboardPolicy[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' "
    "data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors "
    "'none'";

class Ui {
 public:
  // Reads dygraph.min.js and dygraph.min.css from `dygraphs_dir`; without them
  // the pages say that charts need libjs-dygraphs (dygraphs_missing() is true).
  explicit Ui(const std::string &dygraphs_dir);

  // The answer to GET `path` when it is a dashboard path ("/", "/ui/..."), else
  // nullopt.
  std::optional<HttpResponse> Serve(std::string_view path) const;
  bool dygraphs_missing() const { return dygraph_js_.empty(); }

  // The built-in file web/ui/`name` ("app.js"), "" when there is none.
  static std::string_view BuiltIn(std::string_view name);

 private:
  std::string dygraph_js_;
  std::string dygraph_css_;
};

}  // namespace herd::web
