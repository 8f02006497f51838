#include "web/ui_api.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/json_depth.h"
#include "db/sqlite.h"
#include "server/api_util.h"
#include "server/errors.h"

namespace hearth::web {

using server::HttpRequest;
using server::HttpResponse;
using server::json_error;
using server::ResponderP;

namespace {

std::vector<std::string> split_path(const std::string& s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (true) {
    const size_t j = s.find('/', i);
    out.push_back(s.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) return out;
    i = j + 1;
  }
}

HttpResponse with_no_store(HttpResponse r) {
  // Chats are private: no browser or proxy keeps a copy.
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

HttpResponse ok(const json& j, int status = 200) {
  HttpResponse r = server::json_ok(j);
  r.status = status;
  return with_no_store(std::move(r));
}

HttpResponse no_content() {
  HttpResponse r;
  r.status = 204;
  r.body.clear();
  return with_no_store(std::move(r));
}

HttpResponse error(int status, const std::string& msg) {
  return with_no_store(json_error(status, msg));
}

HttpResponse error(const Status& s) {
  return with_no_store(server::error_response(s));
}

// Request fields, type-checked: each answers 400 naming the field and returns false on a
// wrong type. Absent and null leave `out` untouched unless said otherwise.
class Fields {
 public:
  Fields(const json& j, server::Responder& res) : j_(j), res_(res) {}
  bool string(const char* key, std::optional<std::string>& out) {
    if (!present(key)) return true;
    if (!j_[key].is_string()) return fail(std::string("field '") + key + "' must be a string");
    out = j_[key].get<std::string>();
    return true;
  }
  // An object (want_array false) or array, kept as its JSON text; null gives `null_value`.
  bool json_text(const char* key, bool want_array, std::optional<std::string>& out,
                 const std::optional<std::string>& null_value = std::nullopt) {
    if (!j_.contains(key)) return true;
    const json& v = j_[key];
    if (v.is_null()) {
      out = null_value;
      return true;
    }
    if (want_array ? !v.is_array() : !v.is_object())
      return fail(std::string("field '") + key + "' must be " +
                  (want_array ? "an array" : "an object") + " or null");
    out = v.dump(-1, ' ', false, json::error_handler_t::replace);
    return true;
  }
  // A message id, or null: `out` set to nullopt inside.
  bool id_or_null(const char* key, std::optional<std::optional<std::string>>& out) {
    if (!j_.contains(key)) return true;
    if (j_[key].is_null()) {
      out = std::optional<std::string>();
      return true;
    }
    if (!j_[key].is_string())
      return fail(std::string("field '") + key + "' must be a message id or null");
    out = j_[key].get<std::string>();
    return true;
  }

 private:
  bool present(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }
  bool fail(const std::string& msg) {
    res_.send(error(400, msg));
    return false;
  }
  const json& j_;
  server::Responder& res_;
};

json summary_json(const ChatSummary& s) {
  json j = {{"id", s.id},
            {"title", s.title},
            {"model", s.model},
            {"created_at", s.created_at},
            {"updated_at", s.updated_at}};
  if (s.snippet) j["snippet"] = *s.snippet;
  return j;
}

}  // namespace

UiApi::UiApi(std::string db_path, std::string path_error)
    : path_(std::move(db_path)), path_error_(std::move(path_error)) {}

std::unique_ptr<UiApi> UiApi::from_env() {
  if (const char* p = std::getenv("HEARTH_UI_DB"); p && *p) return std::make_unique<UiApi>(p);
  const char* home = std::getenv("HOME");
  if (!home || !*home)
    return std::make_unique<UiApi>(
        "", "no HOME to keep the chat history in; set HEARTH_UI_DB to a file path");
  return std::make_unique<UiApi>(std::string(home) + "/.hearth/ui.sqlite");
}

Result<History*> UiApi::history() {
  std::lock_guard<std::mutex> lk(mu_);
  if (h_) return h_.get();
  Status s;
  if (!path_error_.empty()) {
    s = Status(StatusCode::kUnavailable, path_error_);
  } else {
    const size_t slash = path_.rfind('/');
    if (slash != std::string::npos && slash > 0) s = db::make_private_dirs(path_.substr(0, slash));
    if (s) {
      auto h = History::open(path_);
      if (h) {
        h_ = std::move(*h);
        logged_.clear();
        return h_.get();
      }
      s = h.status();
    }
  }
  // Once in the log per distinct failure, not once per request.
  std::string msg = s.message();
  if (msg.rfind("chat history", 0) != 0) msg = "chat history: " + msg;
  if (msg != logged_) {
    std::fprintf(stderr, "hearth: %s\n", msg.c_str());
    logged_ = msg;
  }
  return Status(StatusCode::kUnavailable, msg + " (HEARTH_UI_DB sets where it is kept)");
}

bool UiApi::handle(const HttpRequest& req, ResponderP res) {
  const std::string& p = req.path;
  if (p != "/ui/api" && p.rfind("/ui/api/", 0) != 0) return false;
  route(req, res, split_path(p.size() > 8 ? p.substr(8) : ""));
  return true;
}

void UiApi::route(const HttpRequest& req, const ResponderP& res,
                  const std::vector<std::string>& seg) {
  const std::string& p = req.path;
  const std::string& m = req.method;
  auto allow = [&](std::initializer_list<const char*> methods) {
    std::string list;
    for (const char* x : methods) {
      if (m == x) return true;
      list += (list.empty() ? "" : ", ") + std::string(x);
    }
    HttpResponse r = error(405, "method " + m + " not allowed for " + p);
    r.headers.emplace_back("Allow", list);
    res->send(std::move(r));
    return false;
  };
  // The body of a POST or PATCH: an object; none counts as {} where every field is optional.
  auto body = [&](bool empty_ok) -> std::optional<json> {
    if (req.body.empty() && empty_ok) return json::object();
    if (req.body.size() > kMaxBody && !(seg.size() == 1 && seg[0] == "import")) {
      res->send(error(413, "request body is larger than " + std::to_string(kMaxBody) + " bytes"));
      return std::nullopt;
    }
    bool too_deep = false;
    json j = parse_json_bounded<json>(req.body, &too_deep);
    std::string why;
    if (too_deep)
      why =
          "JSON in request body is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
    else if (req.body.empty())
      why = "missing request body";
    else if (j.is_discarded())
      why = "invalid JSON in request body";
    else if (!j.is_object())
      why = "request body must be a JSON object";
    if (!why.empty()) {
      res->send(error(400, why));
      return std::nullopt;
    }
    return j;
  };
  auto db = [&]() -> History* {
    auto h = history();
    if (!h) {
      res->send(error(h.status()));
      return nullptr;
    }
    return *h;
  };
  auto fail = [&](const Status& s) { res->send(error(s)); };

  const bool chats = !seg.empty() && seg[0] == "chats";
  if (chats && seg.size() == 1) {
    if (!allow({"GET", "POST"})) return;
    if (m == "GET") {
      const std::string lim = server::query_value(req.query, "limit");
      int limit = kDefaultPage;
      if (!lim.empty()) {
        if (lim.size() > 9 || lim.find_first_not_of("0123456789") != std::string::npos ||
            std::atoi(lim.c_str()) < 1) {
          res->send(error(
              400, "limit must be a positive integer (at most " + std::to_string(kMaxPage) + ")"));
          return;
        }
        limit = std::min(std::atoi(lim.c_str()), kMaxPage);
      }
      const std::string q = server::query_value(req.query, "q");
      if (q.size() > kMaxSearchBytes) {
        res->send(error(400, "q is longer than " + std::to_string(kMaxSearchBytes) + " bytes"));
        return;
      }
      History* h = db();
      if (!h) return;
      auto page = h->list(limit, server::query_value(req.query, "cursor"), q);
      if (!page) return fail(page.status());
      json list = json::array();
      for (const auto& c : page->chats) list.push_back(summary_json(c));
      res->send(ok(
          {{"chats", std::move(list)}, {"next", page->next ? json(*page->next) : json(nullptr)}}));
      return;
    }
    auto j = body(true);
    if (!j) return;
    Fields f(*j, *res);
    std::optional<std::string> title, model, system, options;
    if (!f.string("title", title) || !f.string("model", model) || !f.string("system", system) ||
        !f.json_text("options", false, options))
      return;
    NewChat nc{title.value_or(""), model.value_or(""), system.value_or(""), options.value_or("{}")};
    History* h = db();
    if (!h) return;
    auto c = h->create_chat(nc);
    if (!c) return fail(c.status());
    res->send(ok(chat_json(*c), 201));
    return;
  }
  if (chats && seg.size() == 2 && !seg[1].empty()) {
    const std::string& id = seg[1];
    if (!allow({"GET", "PATCH", "DELETE"})) return;
    if (m == "GET") {
      History* h = db();
      if (!h) return;
      auto c = h->get_chat(id);
      if (!c) return fail(c.status());
      auto msgs = h->messages(id);
      if (!msgs) return fail(msgs.status());
      json list = json::array();
      for (const auto& x : *msgs) list.push_back(message_json(x));
      res->send(ok({{"chat", chat_json(*c)}, {"messages", std::move(list)}}));
      return;
    }
    if (m == "DELETE") {
      History* h = db();
      if (!h) return;
      if (Status s = h->delete_chat(id); !s) return fail(s);
      res->send(no_content());
      return;
    }
    auto j = body(false);
    if (!j) return;
    Fields f(*j, *res);
    ChatPatch patch;
    if (!f.string("title", patch.title) || !f.string("model", patch.model) ||
        !f.string("system", patch.system) || !f.json_text("options", false, patch.options, "{}") ||
        !f.id_or_null("current_leaf", patch.current_leaf))
      return;
    History* h = db();
    if (!h) return;
    auto c = h->update_chat(id, patch);
    if (!c) return fail(c.status());
    res->send(ok(chat_json(*c)));
    return;
  }
  if (chats && seg.size() == 3 && !seg[1].empty() && seg[2] == "messages") {
    if (!allow({"POST"})) return;
    auto j = body(false);
    if (!j) return;
    Fields f(*j, *res);
    NewMessage nm;
    std::optional<std::string> role, content, thinking, model;
    if (!f.id_or_null("parent_id", nm.parent_id) || !f.string("role", role) ||
        !f.string("content", content) || !f.string("thinking", thinking) ||
        !f.string("model", model) || !f.json_text("tool_calls", true, nm.tool_calls) ||
        !f.json_text("extra", false, nm.extra))
      return;
    if (!role) {
      res->send(error(400, "field 'role' is required (user, assistant, system or tool)"));
      return;
    }
    nm.role = *role;
    nm.content = content.value_or("");
    nm.thinking = thinking.value_or("");
    nm.model = model.value_or("");
    History* h = db();
    if (!h) return;
    auto msg = h->add_message(seg[1], nm);
    if (!msg) return fail(msg.status());
    res->send(ok(message_json(*msg), 201));
    return;
  }
  if (chats && seg.size() == 4 && !seg[1].empty() && seg[2] == "messages" && !seg[3].empty()) {
    if (!allow({"DELETE"})) return;
    History* h = db();
    if (!h) return;
    if (Status s = h->delete_message(seg[1], seg[3]); !s) return fail(s);
    res->send(no_content());
    return;
  }
  if (seg.size() == 1 && seg[0] == "export") {
    if (!allow({"GET"})) return;
    History* h = db();
    if (!h) return;
    auto doc = h->export_all();
    if (!doc) return fail(doc.status());
    HttpResponse r = ok(*doc);
    r.headers.emplace_back("Content-Disposition", "attachment; filename=\"hearth-chats.json\"");
    res->send(std::move(r));
    return;
  }
  if (seg.size() == 1 && seg[0] == "import") {
    if (!allow({"POST"})) return;
    auto j = body(false);
    if (!j) return;
    History* h = db();
    if (!h) return;
    auto n = h->import_all(*j);
    if (!n) return fail(n.status());
    res->send(ok({{"imported", *n}}));
    return;
  }
  res->send(error(404, "404 page not found"));
}

}  // namespace hearth::web
