#include "cli/shell.h"

#include <readline/history.h>
#include <readline/readline.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>

#include "cli/cli.h"
#include "cli/commands/commands.h"

namespace herd::cli {

Result<std::vector<std::string>> SplitLine(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else if (c == '\'') {
      size_t end = line.find('\'', i + 1);
      if (end == std::string_view::npos) return Invalid("unterminated ' quote");
      word.append(line.substr(i + 1, end - i - 1));
      in_word = true;
      i = end;
    } else if (c == '"') {
      in_word = true;
      for (++i;; ++i) {
        if (i >= line.size()) return Invalid("unterminated \" quote");
        if (line[i] == '"') break;
        if (line[i] == '\\' && i + 1 < line.size() && strchr("\"\\$`", line[i + 1]) != nullptr) ++i;
        word += line[i];
      }
    } else if (c == '\\') {
      if (i + 1 >= line.size()) return Invalid("trailing backslash");
      word += line[++i];
      in_word = true;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

namespace {

// Global options that take a value (they come before the verb).
const std::set<std::string> kGlobalValueOptions = {"--config", "--controller", "--timeout"};
const std::vector<std::string> kGlobalOptions = {"--config", "--controller", "--timeout",
                                                 "--help", "--version"};

// What completion needs: the verb tree (CLI11), and names from herd-ctld fetched lazily.
class Completer {
 public:
  explicit Completer(Environment env) : env_(std::move(env)), ctx_(env_, sink_, sink_) {
    RegisterVerbs(app_, ctx_);
  }

  // Candidates for the word being typed (`text`), given the words before it.
  std::vector<std::string> Complete(const std::vector<std::string>& before,
                                    const std::string& text) {
    CLI::App* app = &app_;
    bool have_verb = false;
    std::string previous;
    for (size_t i = 0; i < before.size(); ++i) {
      const std::string& w = before[i];
      previous = w;
      if (!have_verb && kGlobalValueOptions.count(w)) {
        ++i;  // skip its value
        previous.clear();
        continue;
      }
      if (!w.empty() && w[0] == '-') continue;
      if (i > 0 && TakesValue(app, before[i - 1])) continue;
      if (CLI::App* sub = FindSub(app, w)) {
        app = sub;
        have_verb = true;
      }
    }
    std::vector<std::string> out;
    if (!text.empty() && text[0] == '-') {
      if (!have_verb) return kGlobalOptions;
      for (const CLI::Option* o : app->get_options()) {
        for (const auto& n : o->get_lnames()) out.push_back("--" + n);
        for (const auto& n : o->get_snames()) out.push_back("-" + n);
      }
      return out;
    }
    if (previous == "-p" || previous == "--project") return Names("projects");
    if (TakesValue(app, previous)) return {};
    for (const CLI::App* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
      out.push_back(sub->get_name());
    }
    if (!out.empty()) {
      if (!have_verb) out.insert(out.end(), {"exit", "quit"});
      return out;
    }
    for (const CLI::Option* o : app->get_options()) {
      if (!o->get_positional()) continue;
      if (o->get_name() == "JOB") return Names("jobs");
      if (o->get_name() == "NODE") return Names("nodes");
    }
    return {};
  }

 private:
  static CLI::App* FindSub(CLI::App* app, const std::string& name) {
    for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) {
      if (sub->get_name() == name) return sub;
    }
    return nullptr;
  }
  static bool TakesValue(CLI::App* app, const std::string& flag) {
    if (flag.empty() || flag[0] != '-') return false;
    if (kGlobalValueOptions.count(flag)) return true;
    for (const CLI::Option* o : app->get_options()) {
      if (o->get_positional()) continue;
      if (o->check_name(flag)) return o->get_type_size_min() > 0;
    }
    return false;
  }

  // Job ids, node names or project names from herd-ctld; cached for a few seconds; best effort.
  std::vector<std::string> Names(const std::string& kind) {
    auto now = std::chrono::steady_clock::now();
    auto& [when, names] = cache_[kind];
    if (!names.empty() && now - when < std::chrono::seconds(5)) return names;
    names.clear();
    when = now;
    if (!controller_ && env_.connect) {
      GlobalOptions options;
      options.config_explicit = !env_.herd_config.empty();
      options.config_path = options.config_explicit ? env_.herd_config : "/etc/herd/herd.toml";
      options.timeout_s = 2;
      auto c = env_.connect(options);
      if (c.ok()) controller_ = std::move(c).value();
    }
    if (!controller_) return names;
    if (kind == "jobs") {
      proto::JobsRequest request;
      request.brief = true;  // ids only
      if (auto r = controller_->Jobs(request); r.ok()) {
        for (const auto& j : r->jobs) names.push_back(std::to_string(j.id));
      }
    } else if (kind == "nodes") {
      if (auto r = controller_->Nodes(proto::NodesRequest{}); r.ok()) {
        for (const auto& n : r->nodes) names.push_back(n.name);
      }
    } else if (auto r = controller_->Projects(proto::ProjectsRequest{}); r.ok()) {
      for (const auto& p : r->projects) {
        if (p.is_project) names.push_back(p.name);
      }
    }
    return names;
  }

  Environment env_;
  std::ostringstream sink_;
  Context ctx_;
  CLI::App app_;
  std::unique_ptr<Controller> controller_;
  std::map<std::string, std::pair<std::chrono::steady_clock::time_point, std::vector<std::string>>>
      cache_;
};

Completer* g_completer = nullptr;
std::vector<std::string> g_matches;

char* NextMatch(const char* text, int state) {
  static size_t index;
  if (state == 0) index = 0;
  const size_t len = strlen(text);
  while (index < g_matches.size()) {
    const std::string& m = g_matches[index++];
    if (m.compare(0, len, text) == 0) return strdup(m.c_str());
  }
  return nullptr;
}

char** CompleteLine(const char* text, int start, int /*end*/) {
  rl_attempted_completion_over = 1;  // no file names unless asked for below
  auto before = SplitLine(std::string_view(rl_line_buffer, static_cast<size_t>(start)));
  if (!before.ok() || g_completer == nullptr) return nullptr;
  g_matches = g_completer->Complete(*before, text);
  if (g_matches.empty()) {
    rl_attempted_completion_over = 0;  // a value of some option: offer file names
    return nullptr;
  }
  return rl_completion_matches(text, NextMatch);
}

// ~/.local/state/herd/history, created; "" without $HOME or when it cannot be made.
std::string HistoryPath() {
  const char* home = getenv("HOME");
  if (home == nullptr || *home == '\0') return "";
  std::filesystem::path dir = std::filesystem::path(home) / ".local" / "state" / "herd";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return "";
  return (dir / "history").string();
}

}  // namespace

int RunShell(Environment env) {
  Completer completer(env);
  g_completer = &completer;
  rl_readline_name = "herd";
  rl_attempted_completion_function = CompleteLine;
  const std::string history = HistoryPath();
  constexpr int kHistoryLines = 1000;
  if (!history.empty()) read_history(history.c_str());
  while (true) {
    std::unique_ptr<char, decltype(&free)> line(readline("herd> "), &free);
    if (!line) {
      std::cout << "\n";
      break;
    }
    auto words = SplitLine(line.get());
    if (!words.ok()) {
      std::cerr << "herd: " << words.status().message() << "\n";
      continue;
    }
    if (words->empty()) continue;
    add_history(line.get());
    if (!history.empty() && append_history(1, history.c_str()) != 0) {
      write_history(history.c_str());  // the file did not exist yet
    }
    if ((*words)[0] == "exit" || (*words)[0] == "quit") break;
    if ((*words)[0] == "herd") words->erase(words->begin());
    RunCli(*words, std::cout, std::cerr, env);
    std::cout.flush();
    std::cerr.flush();
  }
  if (!history.empty()) history_truncate_file(history.c_str(), kHistoryLines);
  g_completer = nullptr;
  return kExitOk;
}

}  // namespace herd::cli
