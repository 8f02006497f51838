// cli/client/client_commands.cpp — the verbs that talk to `hearth serve`, as Ollama's CLI does:
// list, ps, show, cp, rm, stop, create, run (one-shot or the interactive chat).
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "cli/client/format.h"
#include "cli/client/http_client.h"
#include "cli/client/repl.h"
#include "cli/commands.h"
#include "gguf/gguf.h"
#include "store/modelfile.h"
#include "store/store.h"

// libedit's readline-compatible interface (BSD licensed).
#include <editline/readline.h>

namespace hearth::cli {
namespace {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;

const char* kEnvHelp =
    "\nEnvironment:\n  HEARTH_HOST (or OLLAMA_HOST)  the server address (default "
    "127.0.0.1:11434)\n";

json parse_or_fail(const HttpResult& r) {
  if (r.status >= 400) fail(error_message(r));
  auto j = json::parse(r.body, nullptr, false);
  if (j.is_discarded()) fail("the server sent invalid JSON");
  return j;
}

int64_t now_unix() {
  return int64_t(std::time(nullptr));
}

// ---- list / ps

void cmd_list(const std::string& prefix) {
  Client c = connect_or_exit();
  auto r = c.request("GET", "/api/tags");
  if (!r) fail(r.status().message());
  json j = parse_or_fail(*r);
  std::vector<std::vector<std::string>> rows = {{"NAME", "ID", "SIZE", "MODIFIED"}};
  for (const auto& m : j["models"]) {
    const std::string name = m.value("name", "");
    std::string lname = name, lp = prefix;
    for (auto& ch : lname) ch = char(std::tolower(uint8_t(ch)));
    for (auto& ch : lp) ch = char(std::tolower(uint8_t(ch)));
    if (!lp.empty() && lname.rfind(lp, 0) != 0) continue;
    rows.push_back({name, m.value("digest", "").substr(0, 12), human_bytes(m.value("size", 0LL)),
                    human_since(parse_rfc3339(m.value("modified_at", "")), now_unix())});
  }
  std::fputs(table(rows).c_str(), stdout);
}

void cmd_ps() {
  Client c = connect_or_exit();
  auto r = c.request("GET", "/api/ps");
  if (!r) fail(r.status().message());
  json j = parse_or_fail(*r);
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"}};
  for (const auto& m : j["models"]) {
    const int64_t until = parse_rfc3339(m.value("expires_at", ""));
    std::string u = human_since(until, now_unix());
    if (until - now_unix() > int64_t(86400) * 365 * 50) u = "Forever";
    rows.push_back({m.value("name", ""), m.value("digest", "").substr(0, 12),
                    human_bytes(m.value("size", 0LL)), "100% CPU",
                    std::to_string(m.value("context_length", 0)), u});
  }
  std::fputs(table(rows).c_str(), stdout);
}

// ---- show

json show_json(const Client& c, const std::string& model) {
  auto r = c.request("POST", "/api/show", json{{"model", model}}.dump());
  if (!r) fail(r.status().message());
  return parse_or_fail(*r);
}

std::string show_info_text(const json& s) {
  std::string out;
  auto section = [&](const std::string& title, const std::vector<std::vector<std::string>>& rows) {
    if (rows.empty()) return;
    out += "  " + title + "\n";
    std::string t = table(rows);
    std::istringstream is(t);
    std::string line;
    while (std::getline(is, line)) out += "    " + line + "\n";
    out += "\n";
  };
  const json& mi = s.contains("model_info") ? s["model_info"] : json::object();
  const json& d = s.contains("details") ? s["details"] : json::object();
  const std::string arch = mi.value("general.architecture", d.value("family", ""));
  std::vector<std::vector<std::string>> model = {{"architecture", arch},
                                                 {"parameters", d.value("parameter_size", "")}};
  for (const char* k : {"context_length", "embedding_length"}) {
    const std::string key = arch + "." + k;
    if (mi.contains(key) && mi[key].is_number())
      model.push_back({std::string(k) == "context_length" ? "context length" : "embedding length",
                       std::to_string(mi[key].get<int64_t>())});
  }
  model.push_back({"quantization", d.value("quantization_level", "")});
  section("Model", model);
  std::vector<std::vector<std::string>> caps;
  if (s.contains("capabilities"))
    for (const auto& x : s["capabilities"]) caps.push_back({x.get<std::string>()});
  section("Capabilities", caps);
  std::vector<std::vector<std::string>> params;
  std::istringstream ps(s.value("parameters", ""));
  std::string line;
  while (std::getline(ps, line)) {
    const size_t sp = line.find(' ');
    if (sp == std::string::npos) continue;
    params.push_back({line.substr(0, sp), line.substr(line.find_first_not_of(' ', sp))});
  }
  section("Parameters", params);
  auto first_lines = [](const std::string& t) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream is(t);
    std::string l;
    while (rows.size() < 2 && std::getline(is, l)) rows.push_back({l});
    return rows;
  };
  if (s.contains("system")) section("System", first_lines(s["system"].get<std::string>()));
  if (s.contains("license")) section("License", first_lines(s["license"].get<std::string>()));
  return out;
}

void cmd_show(const std::string& model, const std::string& what, bool verbose) {
  Client c = connect_or_exit();
  auto r = c.request("POST", "/api/show", json{{"model", model}, {"verbose", verbose}}.dump());
  if (!r) fail(r.status().message());
  json s = parse_or_fail(*r);
  if (what == "modelfile") {
    std::printf("%s\n", s.value("modelfile", "").c_str());
  } else if (what == "parameters") {
    std::printf("%s\n", s.value("parameters", "").c_str());
  } else if (what == "template") {
    std::printf("%s\n", s.value("template", "").c_str());
  } else if (what == "system") {
    std::printf("%s\n", s.value("system", "").c_str());
  } else if (what == "license") {
    std::printf("%s\n", s.value("license", "").c_str());
  } else {
    std::fputs(show_info_text(s).c_str(), stdout);
    if (verbose && s.contains("model_info")) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& [k, v] : s["model_info"].items())
        rows.push_back({k, v.is_string() ? v.get<std::string>() : v.dump()});
      std::printf("  Metadata\n");
      std::istringstream is(table(rows));
      std::string line;
      while (std::getline(is, line)) std::printf("    %s\n", line.c_str());
    }
  }
}

// ---- cp / rm / stop

void cmd_cp(const std::string& src, const std::string& dst) {
  Client c = connect_or_exit();
  auto r = c.request("POST", "/api/copy", json{{"source", src}, {"destination", dst}}.dump());
  if (!r) fail(r.status().message());
  if (r->status >= 400) fail(error_message(*r));
  std::printf("copied '%s' to '%s'\n", src.c_str(), dst.c_str());
}

bool stop_model(const Client& c, const std::string& model) {
  auto r = c.request("POST", "/api/generate",
                     json{{"model", model}, {"prompt", ""}, {"keep_alive", 0}}.dump());
  return r.is_ok() && r->status == 200;
}

void cmd_rm(const std::vector<std::string>& models) {
  Client c = connect_or_exit();
  for (const auto& m : models) {
    stop_model(c, m);
    auto r = c.request("DELETE", "/api/delete", json{{"model", m}}.dump());
    if (!r) fail(r.status().message());
    if (r->status >= 400) fail(error_message(*r));
    std::printf("deleted '%s'\n", m.c_str());
  }
}

void cmd_stop(const std::string& model) {
  Client c = connect_or_exit();
  auto r = c.request("GET", "/api/ps");
  if (!r) fail(r.status().message());
  json ps = parse_or_fail(*r);
  auto n = store::ModelName::parse(model);
  bool found = false;  // names compare case-insensitively, as the server's do
  for (const auto& m : ps["models"]) {
    auto have = store::ModelName::parse(m.value("name", ""));
    found |= n.is_ok() && have.is_ok() ? n->equal_fold(*have) : m.value("name", "") == model;
  }
  if (!found) fail("couldn't find model \"" + model + "\" to stop");
  if (!stop_model(c, model)) fail("couldn't stop model \"" + model + "\"");
}

// ---- create

std::string expand_path(const std::string& p, const fs::path& base) {
  if (p.rfind("~/", 0) == 0) {
    const char* home = std::getenv("HOME");
    return std::string(home ? home : "") + p.substr(1);
  }
  fs::path x(p);
  return x.is_absolute() ? x.string() : (base / x).string();
}

std::string sha256_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot read " + path);
  store::Sha256 h;
  std::vector<char> buf(size_t(1) << 20);
  while (f) {
    f.read(buf.data(), std::streamsize(buf.size()));
    if (f.gcount() > 0) h.update(buf.data(), size_t(f.gcount()));
  }
  return "sha256:" + h.hex();
}

// Builds the /api/create request of a Modelfile, uploading a local GGUF first.
json create_request(const Client& c, const std::string& model, const store::Modelfile& mf,
                    const fs::path& dir, const std::string& quantize) {
  json req = {{"model", model}, {"stream", true}};
  const std::string path = expand_path(mf.from, dir);
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    // A split model's first part (<prefix>-00001-of-0000N.gguf): every part goes up.
    std::vector<std::string> files = gguf::GgufFile::split_paths_by_name(path);
    if (files.empty()) files = {path};
    req["files"] = json::object();
    for (const std::string& file : files) {
      if (!fs::is_regular_file(file, ec)) fail("split model part " + file + " is missing");
      const std::string digest = sha256_file(file);
      auto head = c.request("HEAD", "/api/blobs/" + digest);
      if (!head) fail(head.status().message());
      if (head->status != 200) {
        const std::string label = "copying file " + digest.substr(0, 19);
        const bool tty = isatty(2);
        auto up = c.upload("/api/blobs/" + digest, file, [&](int64_t done, int64_t total) {
          if (tty && total > 0)
            std::fprintf(stderr, "\r%s", progress_bar(label, done, total).c_str());
        });
        if (tty) std::fprintf(stderr, "\n");
        if (!up) fail(up.status().message());
        if (up->status >= 400) fail(error_message(*up));
      }
      req["files"][fs::path(file).filename().string()] = digest;
    }
  } else {
    req["from"] = mf.from;
  }
  if (mf.draft) {  // DRAFT: a local GGUF, uploaded like FROM's
    const std::string dpath = expand_path(*mf.draft, dir);
    if (!fs::is_regular_file(dpath, ec)) fail("DRAFT file " + dpath + " not found");
    const std::string digest = sha256_file(dpath);
    auto head = c.request("HEAD", "/api/blobs/" + digest);
    if (!head) fail(head.status().message());
    if (head->status != 200) {
      auto up = c.upload("/api/blobs/" + digest, dpath, [](int64_t, int64_t) {});
      if (!up) fail(up.status().message());
      if (up->status >= 400) fail(error_message(*up));
    }
    req["draft_files"] = {{fs::path(dpath).filename().string(), digest}};
  }
  // ADAPTER lines: local GGUFs, uploaded like FROM's; in order, each with its scale.
  if (!mf.adapters.empty()) {
    req["adapters"] = json::object();
    for (const auto& a : mf.adapters) {
      const std::string apath = expand_path(a.path, dir);
      if (!fs::is_regular_file(apath, ec)) fail("ADAPTER file " + apath + " not found");
      const std::string digest = sha256_file(apath);
      auto head = c.request("HEAD", "/api/blobs/" + digest);
      if (!head) fail(head.status().message());
      if (head->status != 200) {
        auto up = c.upload("/api/blobs/" + digest, apath, [](int64_t, int64_t) {});
        if (!up) fail(up.status().message());
        if (up->status >= 400) fail(error_message(*up));
      }
      std::string key = fs::path(apath).filename().string();
      while (req["adapters"].contains(key)) key = "_" + key;  // the same file twice
      if (a.scale == 1)
        req["adapters"][key] = digest;
      else
        req["adapters"][key] = {{"digest", digest}, {"scale", a.scale}};
    }
  }
  if (mf.template_text) req["template"] = *mf.template_text;
  if (mf.system) req["system"] = *mf.system;
  if (mf.parser) req["parser"] = *mf.parser;
  if (mf.renderer) req["renderer"] = *mf.renderer;
  if (!mf.params.empty()) req["parameters"] = mf.params;
  if (!mf.messages.empty()) req["messages"] = mf.messages;
  if (!mf.licenses.empty()) req["license"] = mf.licenses;
  if (!quantize.empty()) req["quantize"] = quantize;
  return req;
}

void run_create(const Client& c, const json& req) {
  std::string last;
  bool ok = false;
  auto code = c.stream("/api/create", req.dump(), [&](const json& j) {
    if (j.contains("error"))
      fail(j["error"].is_string() ? j["error"].get<std::string>() : j.dump());
    const std::string st = j.value("status", "");
    if (isatty(2))
      std::fprintf(stderr, "\r\033[K%s", st.c_str());
    else
      std::fprintf(stderr, "%s\n", st.c_str());
    ok = st == "success";
    last = st;
    return true;
  });
  if (isatty(2)) std::fprintf(stderr, "\n");
  if (!code) fail(code.status().message());
  if (*code >= 400 && !ok)
    fail(last.empty() ? "create failed (" + std::to_string(*code) + ")" : last);
  if (!ok) fail("create did not finish");
}

void cmd_create(const std::string& model, const std::string& file, const std::string& quantize) {
  std::ifstream f(file);
  if (!f) fail("no Modelfile found at " + file);
  std::stringstream ss;
  ss << f.rdbuf();
  auto mf = store::Modelfile::parse(ss.str());
  if (!mf) fail(mf.status().message());
  if (!store::ModelName::parse(model).is_ok()) fail("invalid model name: " + model);
  Client c = connect_or_exit();
  for (const auto& w : mf->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  run_create(c, create_request(c, model, *mf, fs::path(file).parent_path(), quantize));
}

// ---- pull

// Progress of a pull as Ollama's CLI draws it: one line per status, one bar per blob with its
// size, speed and time left; on a terminal the bars are redrawn in place.
class PullView {
 public:
  explicit PullView(bool tty) : tty_(tty) {}
  void update(const json& j) {
    const std::string st = j.value("status", "");
    const std::string digest = j.value("digest", "");
    const auto now = std::chrono::steady_clock::now();
    if (!digest.empty()) {
      Line* l = find(digest);
      if (!l) {
        lines_.push_back({st, digest, 0, 0, 0.0, now, 0, true});
        l = &lines_.back();
      }
      l->status = st;
      l->total = j.value("total", int64_t(0));
      const int64_t done = j.value("completed", int64_t(0));
      const double dt = std::chrono::duration<double>(now - l->t_last).count();
      if (dt >= 0.5) {  // speed over the last half second or more, smoothed
        const double inst = double(done - l->done_last) / dt;
        l->rate = l->rate == 0 ? inst : 0.7 * l->rate + 0.3 * inst;
        l->t_last = now;
        l->done_last = done;
      }
      l->completed = done;
    } else {
      lines_.push_back({st, "", 0, 0, 0.0, now, 0, false});
    }
    draw(false);
  }
  void finish() { draw(true); }

 private:
  struct Line {
    std::string status, digest;
    int64_t total, completed;
    double rate;
    std::chrono::steady_clock::time_point t_last;
    int64_t done_last;
    bool bar;
  };
  Line* find(const std::string& d) {
    for (auto& l : lines_)
      if (l.digest == d) return &l;
    return nullptr;
  }
  static std::string duration(double s) {
    char b[32];
    if (s >= 3600)
      std::snprintf(b, sizeof b, "%dh%02dm", int(s / 3600), int(s / 60) % 60);
    else if (s >= 60)
      std::snprintf(b, sizeof b, "%dm%02ds", int(s / 60), int(s) % 60);
    else
      std::snprintf(b, sizeof b, "%ds", int(s));
    return b;
  }
  std::string render(const Line& l) const {
    if (!l.bar) return l.status;
    const double frac = l.total > 0 ? double(l.completed) / double(l.total) : 1.0;
    std::string s = l.status + " " + std::to_string(int(frac * 100)) + "% ";
    const int width = 24;
    const int fill = int(frac * width);
    s += "▕";
    for (int i = 0; i < width; ++i) s += i < fill ? "█" : " ";
    s += "▏ " + human_bytes(l.completed) + "/" + human_bytes(l.total);
    if (l.completed < l.total && l.rate > 0) {
      s += "  " + human_bytes(int64_t(l.rate)) + "/s  " +
           duration(double(l.total - l.completed) / l.rate);
    }
    return s;
  }
  void draw(bool final) {
    const auto now = std::chrono::steady_clock::now();
    if (tty_) {
      if (!final && now - drawn_at_ < std::chrono::milliseconds(100) && lines_.size() == shown_)
        return;
      drawn_at_ = now;
      if (shown_ > 0) std::fprintf(stderr, "\033[%zuA", shown_);
      for (const auto& l : lines_) std::fprintf(stderr, "\r\033[K%s\n", render(l).c_str());
      shown_ = lines_.size();
      std::fflush(stderr);
      return;
    }
    // Not a terminal: each status once, and a blob's line when it completes.
    for (; printed_ < lines_.size(); ++printed_)
      if (!lines_[printed_].bar) std::fprintf(stderr, "%s\n", lines_[printed_].status.c_str());
    for (auto& l : lines_)
      if (l.bar && l.completed >= l.total && !done_.count(l.digest)) {
        done_.insert(l.digest);
        std::fprintf(stderr, "%s %s\n", l.status.c_str(), human_bytes(l.total).c_str());
      }
  }
  bool tty_;
  std::vector<Line> lines_;
  size_t shown_ = 0, printed_ = 0;
  std::set<std::string> done_;
  std::chrono::steady_clock::time_point drawn_at_{};
};

std::atomic<bool> g_pull_interrupt{false};
extern "C" void on_pull_sigint(int) {
  g_pull_interrupt = true;
}

// Pulls through the server (as Ollama's CLI does); Ctrl-C stops it and keeps what arrived.
void run_transfer(const Client& c, const std::string& path, const std::string& model,
                  bool insecure) {
  struct sigaction sa {
  }, old{};
  sa.sa_handler = on_pull_sigint;
  sigaction(SIGINT, &sa, &old);
  g_pull_interrupt = false;
  PullView view(isatty(2));
  bool ok = false;
  std::string error;
  json req = {{"model", model}, {"stream", true}};
  if (insecure) req["insecure"] = true;
  auto code = c.stream(
      path, req.dump(),
      [&](const json& j) {
        if (j.contains("error")) {
          error = j["error"].is_string() ? j["error"].get<std::string>() : j.dump();
          return false;
        }
        view.update(j);
        ok = j.value("status", "") == "success";
        return true;
      },
      &g_pull_interrupt);
  view.finish();
  sigaction(SIGINT, &old, nullptr);
  const std::string what = path == "/api/push" ? "push" : "pull";
  if (g_pull_interrupt) fail(what + " interrupted; run it again to resume");
  if (!error.empty()) fail(error);
  if (!code) fail(code.status().message());
  if (!ok) fail(what + " did not finish (" + std::to_string(*code) + ")");
}

void run_pull(const Client& c, const std::string& model, bool insecure) {
  run_transfer(c, "/api/pull", model, insecure);
}

void cmd_push(const std::string& model, bool insecure) {
  Client c = connect_or_exit();
  run_transfer(c, "/api/push", model, insecure);
}

void cmd_pull(const std::string& model, bool insecure) {
  Client c = connect_or_exit();
  run_pull(c, model, insecure);
}

// ---- run

std::atomic<bool> g_interrupt{false};
extern "C" void on_sigint(int) {
  g_interrupt = true;
}

struct RunOptions {
  std::string format, keepalive;
  std::string think;  // "" (the model's default), "true", "false", or a level
  bool verbose = false, nowordwrap = false, hidethinking = false;
  bool insecure = false;  // pulling a missing model over plain HTTP
};

// Columns of the terminal on stdout; 0 when it is not one (then nothing is wrapped).
int terminal_width() {
  if (!isatty(1)) return 0;
  struct winsize ws {};
  if (ioctl(1, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return 80;
  return ws.ws_col;
}

json think_value(const std::string& t) {
  if (t == "true") return true;
  if (t == "false") return false;
  return t;
}

void print_stats(const json& last) {
  auto dur = [](int64_t ns) {
    char b[32];
    if (ns >= 1000000000)
      std::snprintf(b, sizeof b, "%.3fs", double(ns) / 1e9);
    else
      std::snprintf(b, sizeof b, "%.3fms", double(ns) / 1e6);
    return std::string(b);
  };
  auto rate = [](int64_t n, int64_t ns) {
    char b[48];
    std::snprintf(b, sizeof b, "%.2f tokens/s", ns > 0 ? double(n) / (double(ns) / 1e9) : 0.0);
    return std::string(b);
  };
  const int64_t pc = last.value("prompt_eval_count", 0LL),
                pd = last.value("prompt_eval_duration", 0LL);
  const int64_t ec = last.value("eval_count", 0LL), ed = last.value("eval_duration", 0LL);
  std::fprintf(stderr,
               "total duration:       %s\nload duration:        %s\n"
               "prompt eval count:    %lld token(s)\nprompt eval duration: %s\n"
               "prompt eval rate:     %s\neval count:           %lld token(s)\n"
               "eval duration:        %s\neval rate:            %s\n",
               dur(last.value("total_duration", 0LL)).c_str(),
               dur(last.value("load_duration", 0LL)).c_str(), (long long)pc, dur(pd).c_str(),
               rate(pc, pd).c_str(), (long long)ec, dur(ed).c_str(), rate(ec, ed).c_str());
}

// One chat turn: streams the answer to stdout; returns the assistant text ("" if interrupted).
std::optional<std::string> chat_turn(const Client& c, ReplSession& s, const RunOptions& o) {
  json msgs = json::array();
  if (s.system) msgs.push_back({{"role", "system"}, {"content", *s.system}});
  for (const auto& m : s.messages) msgs.push_back(m);
  json req = {{"model", s.model}, {"messages", msgs}, {"stream", true}};
  if (!s.params.empty()) req["options"] = s.params;
  if (!s.format.empty()) req["format"] = s.format;
  if (!o.keepalive.empty()) req["keep_alive"] = o.keepalive;
  if (s.think) req["think"] = think_value(*s.think);
  std::string text, error;
  json last;
  g_interrupt = false;
  // Thinking is shown dimmed between "Thinking..." and "...done thinking." (Ollama's CLI), on a
  // terminal; --hidethinking leaves it out. The answer is wrapped at the terminal's width.
  const bool tty = isatty(1);
  WordWrapper wrap(o.nowordwrap ? 0 : terminal_width());
  bool in_thought = false;
  auto out = [](const std::string& x) {
    std::fputs(x.c_str(), stdout);
    std::fflush(stdout);
  };
  auto end_thought = [&] {
    if (!in_thought) return;
    out(wrap.flush() + (tty ? "\x1b[0m" : "") + "\n...done thinking.\n\n");
    in_thought = false;
  };
  auto code = c.stream(
      "/api/chat", req.dump(),
      [&](const json& j) {
        if (j.contains("error")) {
          error = j["error"].is_string() ? j["error"].get<std::string>() : j.dump();
          return false;
        }
        if (j.contains("message")) {
          const json& m = j["message"];
          const std::string thought = m.value("thinking", "");
          if (!thought.empty() && !o.hidethinking) {
            if (!in_thought) {
              out(std::string("Thinking...\n") + (tty ? "\x1b[2m" : ""));
              in_thought = true;
            }
            out(wrap.feed(thought));
          }
          const std::string piece = m.value("content", "");
          if (!piece.empty()) {
            end_thought();
            text += piece;
            out(wrap.feed(piece));
          }
          if (m.contains("tool_calls") && m["tool_calls"].is_array())
            for (const auto& tc : m["tool_calls"]) {
              end_thought();
              const json& f = tc.value("function", json::object());
              out(wrap.flush() + "\nTool call: " + f.value("name", "?") + "(" +
                  f.value("arguments", json::object()).dump() + ")\n");
            }
        }
        if (j.value("done", false)) last = j;
        return true;
      },
      &g_interrupt);
  end_thought();
  out(wrap.flush());
  if (!code) fail(code.status().message());
  if (!error.empty()) {
    std::printf("\n");
    std::fprintf(stderr, "Error: %s\n", error.c_str());
    return std::nullopt;
  }
  if (g_interrupt) {
    std::printf("\n");
    return std::nullopt;
  }
  std::printf("\n");
  if (o.verbose || s.verbose) print_stats(last);
  return text;
}

void handle_show(const Client& c, const ReplSession& s, const std::string& what) {
  json j = show_json(c, s.model);
  if (what == "info") {
    std::fputs(show_info_text(j).c_str(), stdout);
  } else if (what == "parameters") {
    std::printf("Model defined parameters:\n%s\n", j.value("parameters", "").c_str());
    if (!s.params.empty()) {
      std::printf("\nUser defined parameters:\n");
      for (const auto& [k, v] : s.params.items())
        std::printf("%-30s %s\n", k.c_str(), v.dump().c_str());
    }
  } else if (what == "system") {
    std::printf("%s\n",
                s.system
                    ? s.system->c_str()
                    : j.value("system", "No system message was specified for this model.").c_str());
  } else {
    std::printf("%s\n", j.value(what, "").c_str());
  }
}

void repl(const Client& c, ReplSession& s, const RunOptions& o) {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: Ctrl-C interrupts a read at the prompt
  sigaction(SIGINT, &sa, nullptr);
  ReplInput in;
  const bool tty = isatty(0);
  for (;;) {
    g_interrupt = false;
    std::string line;
    if (tty) {
      char* l = readline(in.continuing() ? "... " : ">>> ");
      if (!l) {
        if (g_interrupt) {
          std::printf("\nUse Ctrl + d or /bye to exit.\n");
          continue;
        }
        std::printf("\n");
        return;
      }
      line = l;
      if (*l) add_history(l);
      std::free(l);
    } else if (!std::getline(std::cin, line)) {
      return;
    }
    ReplAction a = in.feed(line);
    switch (a.kind) {
      case ReplAction::Kind::kNone:
        break;
      case ReplAction::Kind::kBye:
        return;
      case ReplAction::Kind::kHelp:
        std::fputs(repl_help().c_str(), stdout);
        break;
      case ReplAction::Kind::kError:
        std::printf("%s\n", a.text.c_str());
        break;
      case ReplAction::Kind::kClear:
        s.messages = json::array();
        std::printf("Cleared session context\n");
        break;
      case ReplAction::Kind::kSetParam:
        std::printf("%s\n", s.set_parameter(a.name, a.text).c_str());
        break;
      case ReplAction::Kind::kSetSystem:
        s.system = a.text;
        std::printf("Set system message.\n");
        break;
      case ReplAction::Kind::kSetFormat:
        s.format = a.text;
        std::printf(a.text.empty() ? "Disabled format.\n" : "Set format to 'json' mode.\n");
        break;
      case ReplAction::Kind::kSetThink:
        s.think = a.text;
        std::printf(a.text == "false"  ? "Set 'nothink' mode.\n"
                    : a.text == "true" ? "Set 'think' mode.\n"
                                       : "Set 'think' mode to '%s'.\n",
                    a.text.c_str());
        break;
      case ReplAction::Kind::kSetVerbose:
        s.verbose = a.flag;
        std::printf(a.flag ? "Set 'verbose' mode.\n" : "Set 'quiet' mode.\n");
        break;
      case ReplAction::Kind::kShow:
        handle_show(c, s, a.text);
        break;
      case ReplAction::Kind::kLoad: {
        auto r = c.request("POST", "/api/show", json{{"model", a.text}}.dump());
        if (!r || r->status != 200) {
          std::printf("error: %s\n", r ? error_message(*r).c_str() : r.status().message().c_str());
          break;
        }
        s.model = a.text;
        s.messages = json::array();
        std::printf("Loading model '%s'\n", a.text.c_str());
        break;
      }
      case ReplAction::Kind::kSave: {
        json req = {{"model", a.text}, {"from", s.model}, {"stream", true}};
        if (s.system) req["system"] = *s.system;
        if (!s.params.empty()) req["parameters"] = s.params;
        if (!s.messages.empty()) req["messages"] = s.messages;
        run_create(c, req);
        std::printf("Created new model '%s'\n", a.text.c_str());
        break;
      }
      case ReplAction::Kind::kMessage: {
        s.messages.push_back({{"role", "user"}, {"content", a.text}});
        auto answer = chat_turn(c, s, o);
        if (answer)
          s.messages.push_back({{"role", "assistant"}, {"content", *answer}});
        else
          s.messages.erase(s.messages.size() - 1);  // an interrupted turn is not kept
        break;
      }
    }
  }
}

void cmd_run(const std::string& model, const std::vector<std::string>& prompt_args,
             const RunOptions& o) {
  Client c = connect_or_exit();
  auto r = c.request("POST", "/api/show", json{{"model", model}}.dump());
  if (!r) fail(r.status().message());
  if (r->status == 404) {  // as `ollama run`: pull it first
    run_pull(c, model, o.insecure);
    r = c.request("POST", "/api/show", json{{"model", model}}.dump());
    if (!r) fail(r.status().message());
  }
  if (r->status >= 400) fail(error_message(*r));
  ReplSession s;
  s.model = model;
  s.format = o.format;
  if (!o.think.empty()) s.think = o.think;
  std::string prompt;
  for (const auto& a : prompt_args) prompt += (prompt.empty() ? "" : " ") + a;
  if (!isatty(0)) {  // piped input is the prompt (before any arguments)
    std::stringstream ss;
    ss << std::cin.rdbuf();
    std::string in = ss.str();
    if (!in.empty()) prompt = prompt.empty() ? in : in + " " + prompt;
  }
  if (!prompt.empty()) {
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, nullptr);
    s.messages.push_back({{"role", "user"}, {"content", prompt}});
    if (!chat_turn(c, s, o)) std::exit(1);
    return;
  }
  // Load the model before the first prompt, as Ollama does (a failure shows on the first turn).
  auto loaded =
      c.request("POST", "/api/chat", json{{"model", model}, {"messages", json::array()}}.dump());
  if (loaded.is_ok() && loaded->status >= 400) fail(error_message(*loaded));
  repl(c, s, o);
}

}  // namespace

void add_client_commands(CLI::App& app) {
  {
    static std::string model;
    static bool insecure = false;
    auto* c = app.add_subcommand("pull", std::string("pull a model from a registry") + kEnvHelp);
    c->add_option("model", model, "[host[:port]/][namespace/]model[:tag]")->required();
    c->add_flag("--insecure", insecure, "use an insecure registry (plain HTTP)");
    c->callback([] { cmd_pull(model, insecure); });
  }
  {
    static std::string model;
    static bool insecure = false;
    auto* c = app.add_subcommand("push", std::string("push a model to a registry") + kEnvHelp);
    c->add_option("model", model, "[host[:port]/][namespace/]model[:tag]")->required();
    c->add_flag("--insecure", insecure, "use an insecure registry (plain HTTP)");
    c->callback([] { cmd_push(model, insecure); });
  }
  {
    static std::string prefix;
    auto* c = app.add_subcommand("list", std::string("list models") + kEnvHelp);
    c->alias("ls");
    c->add_option("prefix", prefix, "only names starting with this");
    c->callback([] { cmd_list(prefix); });
  }
  {
    auto* c = app.add_subcommand("ps", std::string("list running models") + kEnvHelp);
    c->callback([] { cmd_ps(); });
  }
  {
    static std::string model;
    static bool mf = false, params = false, tmpl = false, sys = false, lic = false, verbose = false;
    auto* c = app.add_subcommand("show", std::string("show information for a model") + kEnvHelp);
    c->add_option("model", model, "model name")->required();
    c->add_flag("--modelfile", mf, "show the Modelfile of the model");
    c->add_flag("--parameters", params, "show the parameters of the model");
    c->add_flag("--template", tmpl, "show the template of the model");
    c->add_flag("--system", sys, "show the system message of the model");
    c->add_flag("--license", lic, "show the license of the model");
    c->add_flag("-v,--verbose", verbose, "show detailed model information");
    c->callback([] {
      if (int(mf) + int(params) + int(tmpl) + int(sys) + int(lic) > 1)
        fail(
            "only one of '--license', '--modelfile', '--parameters', '--system', or "
            "'--template' can be specified");
      cmd_show(model,
               mf       ? "modelfile"
               : params ? "parameters"
               : tmpl   ? "template"
               : sys    ? "system"
               : lic    ? "license"
                        : "",
               verbose);
    });
  }
  {
    static std::string src, dst;
    auto* c = app.add_subcommand("cp", std::string("copy a model") + kEnvHelp);
    c->add_option("source", src, "model to copy")->required();
    c->add_option("destination", dst, "new name")->required();
    c->callback([] { cmd_cp(src, dst); });
  }
  {
    static std::vector<std::string> models;
    auto* c = app.add_subcommand("rm", std::string("remove models") + kEnvHelp);
    c->add_option("model", models, "models to remove")->required();
    c->callback([] { cmd_rm(models); });
  }
  {
    static std::string model;
    auto* c = app.add_subcommand("stop", std::string("stop a running model") + kEnvHelp);
    c->add_option("model", model, "model name")->required();
    c->callback([] { cmd_stop(model); });
  }
  {
    static std::string model, file = "Modelfile", quantize;
    auto* c =
        app.add_subcommand("create", std::string("create a model from a Modelfile") + kEnvHelp);
    c->add_option("model", model, "name of the new model")->required();
    c->add_option("-f,--file", file, "the Modelfile (default: ./Modelfile)");
    c->add_option("-q,--quantize", quantize, "quantize the model to this type (e.g. q4_K_M)");
    c->callback([] { cmd_create(model, file, quantize); });
  }
  {
    static std::string model;
    static std::vector<std::string> prompt;
    static RunOptions o;
    auto* c = app.add_subcommand(
        "run", std::string("chat with a model (interactive without a prompt; stdin may be piped)") +
                   kEnvHelp);
    c->add_option("model", model, "model name")->required();
    c->add_option("prompt", prompt, "answer this prompt and exit");
    c->add_option("--format", o.format, "response format (json)");
    c->add_option("--keepalive", o.keepalive, "how long the model stays loaded (e.g. 5m)");
    c->add_flag("--verbose", o.verbose, "show timings for the response");
    c->add_flag("--nowordwrap", o.nowordwrap, "do not wrap words to the terminal's width");
    c->add_flag("--think{true}", o.think,
                "let a thinking model think (--think=false turns it off; levels: low, medium, "
                "high)");
    c->add_flag("--hidethinking", o.hidethinking, "do not show the model's thinking");
    c->add_flag("--insecure", o.insecure, "pull a missing model from a plain-HTTP registry");
    c->callback([] { cmd_run(model, prompt, o); });
  }
}

}  // namespace hearth::cli
