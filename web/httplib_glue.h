// herd-web's requests and answers (web/api.h) to and from cpp-httplib's, for
// herd-web's main.cc and bench/web, which serve the same Api and Ui over HTTP.
#pragma once

#include <cctype>
#include <string>

#include "httplib.h"
#include "web/api.h"

namespace herd::web {

// `req` as the Api reads it (header names in lower case).
inline HttpRequest FromHttplib(const httplib::Request &req) {
  HttpRequest r;
  r.method = req.method;
  r.path = req.path;
  r.params = req.params;
  for (const auto &[name, value] : req.headers) {
    std::string lower = name;
    for (char &c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers.emplace(std::move(lower), value);
  }
  r.body = req.body;
  return r;
}

// Writes `out` into cpp-httplib's answer.
inline void ToHttplib(const HttpResponse &out, httplib::Response &res) {
  res.status = out.status;
  for (const auto &[name, value] : out.headers) res.headers.emplace(name, value);
  res.set_content(out.body, out.content_type);
}

}  // namespace herd::web
