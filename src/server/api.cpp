#include "server/api.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/json_depth.h"
#include "base/version.h"
#include "server/api_util.h"
#include "store/create.h"
#include "web/assets.h"

namespace hearth::server {

// Keeps a margin so a full upload or pull cannot starve the system.
uint64_t disk_room(const std::string& dir) {
  constexpr uint64_t kDiskMargin = uint64_t(256) << 20;
  struct statvfs v {};
  if (::statvfs(dir.c_str(), &v) != 0) return UINT64_MAX;  // unknown: the writes will tell
  const uint64_t avail = uint64_t(v.f_bavail) * v.f_frsize;
  return avail > kDiskMargin ? avail - kDiskMargin : 0;
}

HttpResponse json_ok(const json& j) {
  HttpResponse r;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

// Parses the JSON object body; answers 400 the way Ollama does and returns nullopt on failure.
std::optional<json> body_json(const HttpRequest& req, Responder& res) {
  if (req.body.empty()) {
    res.send(json_error(400, "missing request body"));
    return std::nullopt;
  }
  bool too_deep = false;
  json j = parse_json_bounded<json>(req.body, &too_deep);
  if (too_deep) {
    res.send(json_error(400, "JSON in request body is nested deeper than " +
                                 std::to_string(kMaxJsonDepth) + " levels"));
    return std::nullopt;
  }
  if (j.is_discarded()) {
    res.send(json_error(400, "invalid JSON in request body"));
    return std::nullopt;
  }
  if (!j.is_object()) {
    res.send(json_error(400, "request body must be a JSON object"));
    return std::nullopt;
  }
  return j;
}

std::string query_value(const std::string& q, const std::string& key) {
  size_t i = 0;
  while (i <= q.size()) {
    size_t e = q.find('&', i);
    if (e == std::string::npos) e = q.size();
    const std::string kv = q.substr(i, e - i);
    i = e + 1;
    if (kv.rfind(key + "=", 0) != 0) continue;
    std::string v = kv.substr(key.size() + 1), out;
    for (size_t k = 0; k < v.size(); ++k) {
      if (v[k] == '%' && k + 2 < v.size()) {
        out += char(std::strtol(v.substr(k + 1, 2).c_str(), nullptr, 16));
        k += 2;
      } else {
        out += v[k] == '+' ? ' ' : v[k];
      }
    }
    return out;
  }
  return "";
}

// A string field (or its deprecated alias); a present non-string is a type error.
std::optional<std::string> str_field(const json& j, const char* key, const char* alias,
                                     Responder& res, bool* type_error) {
  *type_error = false;
  for (const char* k : {key, alias}) {
    if (!k || !j.contains(k) || j[k].is_null()) continue;
    if (!j[k].is_string()) {
      *type_error = true;
      res.send(json_error(400, std::string("field '") + k + "' must be a string"));
      return std::nullopt;
    }
    return j[k].get<std::string>();
  }
  return std::nullopt;
}

std::string rfc3339(int64_t s, int64_t nanos) {
  const time_t t = time_t(s);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)nanos);
  return buf;
}

// One of the web UI's embedded files (src/web/assets.h) as an answer to GET or HEAD. `at_root`:
// the page at "/", which is the UI or the probe text depending on Accept.
static HttpResponse ui_file(const HttpRequest& req, const web::EmbeddedFile& f,
                            bool at_root = false) {
  web::Reply w = web::answer(f, req.header("if-none-match"), req.header("accept-encoding"));
  HttpResponse r;
  r.status = w.status;
  r.content_type = std::string(w.content_type);
  r.body = std::string(w.body);
  r.headers = std::move(w.headers);
  if (at_root) {
    auto vary = std::find_if(r.headers.begin(), r.headers.end(),
                             [](const auto& h) { return h.first == "Vary"; });
    if (vary == r.headers.end())
      r.headers.emplace_back("Vary", "Accept");
    else
      vary->second = "Accept, " + vary->second;
  }
  return r;
}

void Api::handle(const HttpRequest& req, ResponderP res) {
  const std::string& p = req.path;
  const std::string& m = req.method;
  auto only = [&](std::initializer_list<const char*> methods) {
    for (const char* x : methods)
      if (m == x) return true;
    res->send(json_error(405, "method " + m + " not allowed for " + p));
    return false;
  };
  if (p == "/") {
    if (!only({"GET", "HEAD"})) return;
    // Browsers get the UI; API clients probe for this exact text.
    if (web::wants_html(req.header("accept")))
      return res->send(ui_file(req, web::index_html(), true));
    HttpResponse r;
    r.content_type = "text/plain; charset=utf-8";
    r.body = "Ollama is running";
    r.headers.emplace_back("Vary", "Accept");
    return res->send(r);
  }
  if (p.rfind("/ui/assets/", 0) == 0) {
    if (!only({"GET", "HEAD"})) return;
    const web::EmbeddedFile* f = web::find(std::string_view(p).substr(11));
    if (!f) return res->send(json_error(404, "404 page not found"));
    return res->send(ui_file(req, *f));
  }
  if (p == "/api/version") {
    if (!only({"GET", "HEAD"})) return;
    return res->send(json_ok({{"version", kVersion}}));
  }
  if (p == "/api/tags") {
    if (!only({"GET", "HEAD"})) return;
    return tags(res);
  }
  if (p == "/api/copy") {
    if (!only({"POST"})) return;
    return copy(req, res);
  }
  if (p == "/api/delete") {
    if (!only({"DELETE"})) return;
    return remove(req, res);
  }
  if (p.rfind("/api/blobs/", 0) == 0) {
    if (!only({"HEAD", "POST"})) return;
    return blob(req, res);
  }
  if (p == "/api/pull") {
    if (!only({"POST"})) return;
    return pull(req, res);
  }
  if (p == "/api/finetune") {
    if (!only({"POST"})) return;
    return finetune(req, res);
  }
  if (p == "/api/push") {
    if (!only({"POST"})) return;
    return push(req, res);
  }
  if (p == "/v2" || p.rfind("/v2/", 0) == 0) return registry(req, res);
  if (p == "/api/show") {
    if (!only({"POST"})) return;
    return show(req, res);
  }
  if (p == "/api/create") {
    if (!only({"POST"})) return;
    return create(req, res);
  }
  if (p == "/v1/models" || p.rfind("/v1/models/", 0) == 0) {
    if (!only({"GET"})) return;
    return v1_models(req, res);
  }
  if (p == "/api/generate") {
    if (!only({"POST"})) return;
    return generate(req, res);
  }
  if (p == "/api/chat") {
    if (!only({"POST"})) return;
    return chat(req, res);
  }
  if (p == "/api/fit") {
    if (!only({"GET"})) return;
    return fit(req, res);
  }
  if (p == "/lora-adapters") {
    if (!only({"GET", "POST"})) return;
    return lora_adapters(req, res);
  }
  if (p == "/api/ps") {
    if (!only({"GET"})) return;
    return ps(res);
  }
  if (p == "/api/embed" || p == "/api/embeddings" || p == "/v1/embeddings") {
    if (!only({"POST"})) return;
    return embed(req, res);
  }
  // Reranking: Ollama-style and OpenAI-style paths, and llama-server's aliases.
  if (p == "/api/rerank" || p == "/v1/rerank" || p == "/rerank" || p == "/reranking" ||
      p == "/v1/reranking") {
    if (!only({"POST"})) return;
    return rerank(req, res);
  }
  if (p == "/v1/chat/completions") {
    if (!only({"POST"})) return;
    return v1_chat(req, res);
  }
  if (p == "/v1/completions") {
    if (!only({"POST"})) return;
    return v1_completions(req, res);
  }
  if (p == "/v1/responses") {
    if (!only({"POST"})) return;
    return v1_responses(req, res);
  }
  for (const auto& r : routes_)
    if (r(req, res)) return;
  res->send(json_error(404, "404 page not found"));
}

json details_json(const store::StoredDetails& d) {
  return {{"parent_model", ""},
          {"format", d.format},
          {"family", d.family},
          {"families", d.families},
          {"parameter_size", d.parameter_size},
          {"quantization_level", d.quantization_level}};
}

void Api::tags(ResponderP res) {
  auto list = store_.list();
  if (!list) return res->send(error_response(list.status()));
  std::sort(list->begin(), list->end(),
            [](const auto& a, const auto& b) { return a.modified_unix > b.modified_unix; });
  json models = json::array();
  for (const auto& e : *list) {
    // A manifest that no longer reads (removed meanwhile, corrupt) lists with empty details.
    store::StoredDetails det;
    if (auto m = store_.read_manifest(e.name); m.is_ok())
      det = store::stored_model_details(store_, *m);
    models.push_back({{"name", e.name.display()},
                      {"model", e.name.display()},
                      {"modified_at", rfc3339(e.modified_unix)},
                      {"size", e.size},
                      {"digest", e.digest},
                      {"details", details_json(det)}});
  }
  res->send(json_ok({{"models", models}}));
}

void Api::copy(const HttpRequest& req, ResponderP res) {
  auto j = body_json(req, *res);
  if (!j) return;
  bool te;
  auto src = str_field(*j, "source", nullptr, *res, &te);
  if (te) return;
  auto dst = str_field(*j, "destination", nullptr, *res, &te);
  if (te) return;
  auto s = store::ModelName::parse(src.value_or(""));
  if (!s) return res->send(json_error(400, "source \"" + src.value_or("") + "\" is invalid"));
  auto d = store::ModelName::parse(dst.value_or(""));
  if (!d) return res->send(json_error(400, "destination \"" + dst.value_or("") + "\" is invalid"));
  if (!store_.exists(*s)) return res->send(json_error(404, "model \"" + *src + "\" not found"));
  if (auto st = store_.copy(*s, *d); !st) return res->send(error_response(st));
  HttpResponse r;
  r.body.clear();
  res->send(r);
}

void Api::remove(const HttpRequest& req, ResponderP res) {
  auto j = body_json(req, *res);
  if (!j) return;
  bool te;
  auto name = str_field(*j, "model", "name", *res, &te);
  if (te) return;
  if (!name || name->empty()) return res->send(json_error(400, "model is required"));
  auto n = store::ModelName::parse(*name);
  if (!n) return res->send(json_error(400, n.status().message()));
  if (!store_.exists(*n)) return res->send(json_error(404, "model '" + *name + "' not found"));
  if (auto st = store_.remove(*n); !st) return res->send(error_response(st));
  HttpResponse r;
  r.body.clear();
  res->send(r);
}

namespace {

// An upload on its way into the store.
class BlobUpload final : public UploadSink {
 public:
  explicit BlobUpload(std::unique_ptr<store::BlobWriter> w) : w_(std::move(w)) {}
  Status write(const char* data, size_t n) override { return w_->write(data, n); }
  store::BlobWriter& writer() { return *w_; }

 private:
  std::unique_ptr<store::BlobWriter> w_;
};

}  // namespace

UploadDecision Api::start_upload(const HttpRequest& head) {
  if (head.path.rfind("/v2/", 0) == 0) return start_registry_upload(head);
  UploadDecision d;
  const std::string prefix = "/api/blobs/";
  if (head.method != "POST" || head.path.rfind(prefix, 0) != 0) return d;
  auto answer = [&](int status, const std::string& msg) {
    d.answer = status < 300 ? HttpResponse{status, "application/json; charset=utf-8", "", {}}
                            : json_error(status, msg);
    return d;
  };
  const std::string digest = head.path.substr(prefix.size());
  if (!store::digest_hex(digest).is_ok()) return answer(400, "invalid digest format");
  if (store_.has_blob(digest)) return answer(200, "");  // nothing to send: Ollama answers 200
  const uint64_t room = disk_room(store_.root() + "/blobs");
  const std::string len = head.header("content-length");
  if (!len.empty()) {
    char* end = nullptr;
    const unsigned long long n = std::strtoull(len.c_str(), &end, 10);
    if (max_upload_ && n > max_upload_)
      return answer(413, "blob is larger than the upload limit of " + std::to_string(max_upload_) +
                             " bytes (HEARTH_MAX_UPLOAD)");
    if (n > room)
      return answer(507, "not enough disk space for a blob of " + std::to_string(n) + " bytes");
  } else if (room == 0) {
    return answer(507, "not enough disk space for an upload");
  }
  // Whichever limit is smaller stops a body without a (truthful) length: the setting (413) or
  // the disk (507).
  auto w = max_upload_ && max_upload_ <= room
               ? store_.begin_blob(digest, max_upload_, StatusCode::kTooLarge)
               : store_.begin_blob(digest, room, StatusCode::kNoSpace);
  if (!w) {
    d.answer = error_response(w.status());
    return d;
  }
  d.sink = std::make_shared<BlobUpload>(std::move(*w));
  return d;
}

void Api::blob(const HttpRequest& req, ResponderP res) {
  const std::string digest = req.path.substr(std::string("/api/blobs/").size());
  // Exactly sha256:<64 lowercase hex> (or the sha256- spelling).
  if (!store::digest_hex(digest).is_ok())
    return res->send(json_error(400, "invalid digest format"));
  if (req.method == "HEAD") {
    HttpResponse r;
    r.status = store_.has_blob(digest) ? 200 : 404;
    r.body.clear();
    return res->send(r);
  }
  Result<std::string> d = std::string();
  if (auto* up = dynamic_cast<BlobUpload*>(req.upload.get())) {
    d = up->writer().commit();  // verifies the digest hashed on the way in; fsync; rename
  } else {
    if (store_.has_blob(digest)) {
      HttpResponse r;
      r.body.clear();
      return res->send(r);
    }
    d = store_.add_blob(req.body, digest);
  }
  if (!d) return res->send(error_response(d.status()));
  HttpResponse r;
  r.status = 201;
  r.body.clear();
  res->send(r);
}

}  // namespace hearth::server
