// herd-web's dashboard files (web/ui.h): served with a policy that runs only
// herd-web's own scripts, never in a frame; the script never turns data (job
// names, reasons, node names) into HTML; without libjs-dygraphs the pages still
// load.
#include "web/ui.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace herd::web {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string HeaderOf(const HttpResponse &r, const std::string &name) {
  for (const auto &[n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(UiTest, PagesComeWithAPolicyThatRunsNoInlineScriptAndNoFrame) {
  const Ui ui("/nonexistent");
  for (const char *path : {"/", "/ui/app.js", "/ui/app.css", "/ui/dygraph.js"}) {
    auto r = ui.Serve(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    const std::string csp = HeaderOf(*r, "Content-Security-Policy");
    EXPECT_THAT(csp, HasSubstr("script-src 'self';")) << path;
    EXPECT_THAT(csp, HasSubstr("frame-ancestors 'none'")) << path;
    EXPECT_THAT(csp, Not(HasSubstr("unsafe"))) << path;
    EXPECT_EQ(HeaderOf(*r, "X-Content-Type-Options"), "nosniff") << path;
  }
  EXPECT_EQ(ui.Serve("/")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(ui.Serve("/ui/nope.js")->status, 404);
  EXPECT_FALSE(ui.Serve("/api/v1/jobs"));
  EXPECT_TRUE(ui.dygraphs_missing());
}

// A job named "<img src=x onerror=...><script>...</script>" shows as text: the
// script builds every element with createElement and puts data in text nodes,
// so no HTML parser ever sees it.
TEST(UiTest, TheScriptNeverTurnsDataIntoHtml) {
  const std::string js(Ui::BuiltIn("app.js"));
  ASSERT_FALSE(js.empty());
  for (const char *sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                           "eval(", "new Function", "DOMParser", "createContextualFragment"}) {
    EXPECT_THAT(js, Not(HasSubstr(sink))) << sink;
  }
  EXPECT_THAT(js, HasSubstr("document.createTextNode"));
  // The page itself has no inline script for the policy to refuse.
  const std::string html(Ui::BuiltIn("index.html"));
  size_t at = 0, scripts = 0;
  while ((at = html.find("<script", at)) != std::string::npos) {
    EXPECT_EQ(html.compare(at, 13, "<script src=\""), 0) << html.substr(at, 40);
    at += 7;
    ++scripts;
  }
  EXPECT_EQ(scripts, 2u);
}

TEST(UiTest, ServesDebiansDygraphsWhenInstalled) {
  const Ui ui(kDygraphsDir);
  if (ui.dygraphs_missing()) GTEST_SKIP() << kDygraphsDir << " is missing (libjs-dygraphs)";
  EXPECT_THAT(ui.Serve("/ui/dygraph.js")->body, HasSubstr("Dygraph"));
  EXPECT_FALSE(ui.Serve("/ui/dygraph.css")->body.empty());
}

}  // namespace
}  // namespace herd::web
