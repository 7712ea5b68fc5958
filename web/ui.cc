#include "web/ui.h"

#include <fstream>
#include <sstream>

namespace herd::web {
namespace {

std::string ReadFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

HttpResponse Page(std::string_view body, const char *content_type) {
  HttpResponse r;
  r.content_type = content_type;
  r.body = std::string(body);
  r.headers.emplace_back("Content-Security-Policy", kDashboardPolicy);
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  // The files change with herd-web's version only, but a browser asks again
  // after an upgrade.
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

}  // namespace

Ui::Ui(const std::string &dygraphs_dir)
    : dygraph_js_(ReadFile(dygraphs_dir + "/dygraph.min.js")),
      dygraph_css_(ReadFile(dygraphs_dir + "/dygraph.min.css")) {}

std::optional<HttpResponse> Ui::Serve(std::string_view path) const {
  if (path == "/" || path == "/ui/" || path == "/ui/index.html") {
    return Page(BuiltIn("index.html"), "text/html; charset=utf-8");
  }
  if (path == "/ui/app.js") return Page(BuiltIn("app.js"), "text/javascript; charset=utf-8");
  if (path == "/ui/app.css") return Page(BuiltIn("app.css"), "text/css; charset=utf-8");
  // An empty script when the package is missing: the pages then say what to
  // install.
  if (path == "/ui/dygraph.js") return Page(dygraph_js_, "text/javascript; charset=utf-8");
  if (path == "/ui/dygraph.css") return Page(dygraph_css_, "text/css; charset=utf-8");
  if (path.starts_with("/ui/")) {
    HttpResponse r = Page("no such dashboard file\n", "text/plain; charset=utf-8");
    r.status = 404;
    return r;
  }
  return std::nullopt;
}

}  // namespace herd::web
