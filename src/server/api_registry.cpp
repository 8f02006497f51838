// The registry side of the store and /api/pull.
//
// `hearth serve` answers the read half of the Docker registry v2 API that Ollama's clients use
// (manifests, blobs with HEAD and ranged GET) from its own store, so another machine on the LAN
// pulls with `hearth pull --insecure thishost:11434/library/model:tag`.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "registry/client.h"
#include "registry/pull.h"
#include "registry/push.h"
#include "runtime/fit.h"
#include "runtime/scheduler.h"
#include "server/api.h"
#include "server/api_util.h"

namespace hearth::server {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

// Registry errors are shaped as the Docker registry API shapes them.
HttpResponse registry_error(int status, const std::string& code, const std::string& message) {
  HttpResponse r;
  r.status = status;
  r.body = json{{"errors", json::array({{{"code", code}, {"message", message}}})}}.dump();
  return r;
}

// "bytes=a-b" / "bytes=a-" / "bytes=-n" against a blob of `size` bytes: [first, last], or false
// if unsatisfiable or not one range.
bool parse_range(const std::string& h, uint64_t size, uint64_t& first, uint64_t& last) {
  if (h.rfind("bytes=", 0) != 0 || size == 0) return false;
  const std::string spec = h.substr(6);
  if (spec.find(',') != std::string::npos) return false;
  const size_t dash = spec.find('-');
  if (dash == std::string::npos) return false;
  const std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  auto num = [](const std::string& s, uint64_t& v) {
    if (s.empty() || s.size() > 19) return false;
    for (char c : s)
      if (c < '0' || c > '9') return false;
    v = std::strtoull(s.c_str(), nullptr, 10);
    return true;
  };
  if (a.empty()) {  // the last n bytes
    uint64_t n = 0;
    if (!num(b, n) || n == 0) return false;
    first = n >= size ? 0 : size - n;
    last = size - 1;
    return true;
  }
  if (!num(a, first) || first >= size) return false;
  if (b.empty()) {
    last = size - 1;
  } else {
    if (!num(b, last) || last < first) return false;
    last = std::min(last, size - 1);
  }
  return true;
}

}  // namespace

// The manifest a registry name stands for: the default host's first, then any host's (a model
// pulled from elsewhere is served under its namespace and name too).
Result<std::string> Api::find_manifest(const std::string& ns, const std::string& model,
                                       const std::string& tag) {
  auto n = store::ModelName::parse(ns + "/" + model + ":" + tag);
  if (!n) return n.status();
  std::vector<std::string> paths = {store_.manifest_path(*n)};
  std::error_code ec;
  for (const auto& host : fs::directory_iterator(store_.root() + "/manifests", ec)) {
    const fs::path p = host.path() / ns / model / tag;
    if (p.string() != paths[0]) paths.push_back(p.string());
  }
  for (const auto& p : paths) {
    std::ifstream in(p, std::ios::binary);
    if (!in) continue;
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  return Status(StatusCode::kNotFound, "manifest unknown");
}

void Api::registry(const HttpRequest& req, ResponderP res) {
  // /v2/ (the API version check), /v2/<ns>/<model>/manifests/<tag>, /v2/<ns>/<model>/blobs/<d>
  if (req.path == "/v2/" || req.path == "/v2") {
    HttpResponse r = json_ok(json::object());
    r.headers.push_back({"Docker-Distribution-API-Version", "registry/2.0"});
    return res->send(r);
  }
  if (req.method != "GET" && req.method != "HEAD") return registry_write(req, res);
  const auto parts = split(req.path.substr(4), '/');
  if (parts.size() != 4 || parts[0].empty() || parts[1].empty() || parts[3].empty())
    return res->send(registry_error(404, "NAME_UNKNOWN", "repository name not known"));
  const std::string &ns = parts[0], &model = parts[1], &kind = parts[2], &ref = parts[3];
  if (kind == "manifests") {
    auto m = find_manifest(ns, model, ref);
    if (!m) return res->send(registry_error(404, "MANIFEST_UNKNOWN", "manifest unknown"));
    HttpResponse r;
    r.content_type = store::kMediaManifest;
    r.body = std::move(*m);
    store::Sha256 h;
    h.update(r.body.data(), r.body.size());
    r.headers.push_back({"Docker-Content-Digest", "sha256:" + h.hex()});
    return res->send(r);
  }
  if (kind != "blobs")
    return res->send(registry_error(404, "NAME_UNKNOWN", "unknown registry path"));
  auto hex = store::digest_hex(ref);
  if (!hex) return res->send(registry_error(400, "DIGEST_INVALID", "invalid digest " + ref));
  const std::string path = store_.blob_path(*hex);
  auto body = std::make_shared<FileBody>();
  body->fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat s {};
  if (body->fd < 0 || ::fstat(body->fd, &s) != 0 || !S_ISREG(s.st_mode))
    return res->send(registry_error(404, "BLOB_UNKNOWN", "blob unknown to registry"));
  const uint64_t size = uint64_t(s.st_size);
  HttpResponse r;
  r.content_type = "application/octet-stream";
  r.headers.push_back({"Accept-Ranges", "bytes"});
  r.headers.push_back({"Docker-Content-Digest", "sha256:" + *hex});
  const std::string range = req.header("range");
  if (!range.empty()) {
    uint64_t first = 0, last = 0;
    if (!parse_range(range, size, first, last)) {
      HttpResponse e = registry_error(416, "RANGE_INVALID", "range not satisfiable: " + range);
      e.headers.push_back({"Content-Range", "bytes */" + std::to_string(size)});
      return res->send(e);
    }
    r.status = 206;
    r.headers.push_back({"Content-Range", "bytes " + std::to_string(first) + "-" +
                                              std::to_string(last) + "/" + std::to_string(size)});
    body->offset = first;
    body->length = last - first + 1;
  } else {
    // Ollama's client takes the direct URL of a blob from the Location of this answer and then
    // reads ranges from it: here that is this same URL.
    r.headers.push_back({"Location", req.path});
    body->length = size;
  }
  r.file = std::move(body);
  res->send(std::move(r));
}

// ---- uploads (pushes from other machines), when enabled

struct Api::RegistryUploads {
  struct Session {
    std::string ns, model, path;
    int fd = -1;
    std::unique_ptr<store::Sha256> hash;
    uint64_t size = 0;
    std::chrono::steady_clock::time_point touched;
    bool writing = false;  // a PATCH is streaming into it
    ~Session() {
      if (fd >= 0) ::close(fd);
      if (!path.empty()) ::unlink(path.c_str());
    }
  };
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Session>> sessions;
};

namespace {

// Appends a PATCH's body to its upload, hashing as it goes.
class SessionSink final : public UploadSink {
 public:
  SessionSink(std::shared_ptr<Api::RegistryUploads::Session> s, uint64_t room)
      : s_(std::move(s)), room_(room) {}
  ~SessionSink() override { s_->writing = false; }
  Status write(const char* data, size_t n) override {
    if (n > room_) return Status(StatusCode::kNoSpace, "not enough disk space for this upload");
    room_ -= n;
    size_t off = 0;
    while (off < n) {
      const ssize_t w = ::pwrite(s_->fd, data + off, n - off, off_t(s_->size + off));
      if (w < 0) {
        if (errno == EINTR) continue;
        return store::io_error("cannot write", s_->path, errno);
      }
      off += size_t(w);
    }
    s_->hash->update(data, n);
    s_->size += n;
    s_->touched = std::chrono::steady_clock::now();
    return Status::ok();
  }

 private:
  std::shared_ptr<Api::RegistryUploads::Session> s_;
  uint64_t room_;
};

std::string random_id() {
  std::random_device rd;
  char b[33];
  for (int i = 0; i < 16; ++i) std::snprintf(b + 2 * i, 3, "%02x", unsigned(rd() & 0xFF));
  return b;
}

}  // namespace

void Api::set_registry_uploads(bool on) {
  registry_uploads_ = on;
  if (on && !uploads_) uploads_ = std::make_shared<RegistryUploads>();
}

UploadDecision Api::start_registry_upload(const HttpRequest& head) {
  UploadDecision d;
  const auto parts = split(head.path.substr(4), '/');
  // ns / model / blobs / uploads / id
  if (!registry_uploads_ || parts.size() != 5 || parts[2] != "blobs" || parts[3] != "uploads" ||
      (head.method != "PATCH" && head.method != "PUT"))
    return d;  // answered (or refused) by the handler with the body read as usual
  std::shared_ptr<RegistryUploads::Session> s;
  if (uploads_) {
    std::lock_guard<std::mutex> l(uploads_->mu);
    auto it = uploads_->sessions.find(parts[4]);
    if (it != uploads_->sessions.end()) s = it->second;
  }
  if (!s) {
    d.answer = registry_error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry");
    return d;
  }
  if (head.method == "PUT" && head.header("content-length") == "0") return d;
  if (s->writing) {
    d.answer = registry_error(409, "BLOB_UPLOAD_INVALID", "a part of this upload is in flight");
    return d;
  }
  // Parts come in order: "<start>-<end>" (Ollama) or "bytes <start>-<end>".
  std::string range = head.header("content-range");
  if (range.rfind("bytes ", 0) == 0) range = range.substr(6);
  if (!range.empty() && std::strtoull(range.c_str(), nullptr, 10) != s->size) {
    d.answer = registry_error(416, "BLOB_UPLOAD_INVALID",
                              "upload continues at byte " + std::to_string(s->size));
    d.answer->headers.push_back({"Range", "0-" + std::to_string(s->size ? s->size - 1 : 0)});
    return d;
  }
  s->writing = true;
  d.sink = std::make_shared<SessionSink>(s, disk_room(store_.downloads_dir()));
  return d;
}

void Api::registry_write(const HttpRequest& req, ResponderP res) {
  if (!registry_uploads_)
    return res->send(registry_error(
        405, "UNSUPPORTED",
        "pushing to this server is off; HEARTH_REGISTRY_UPLOADS=1 on the server turns it on"));
  const auto parts = split(req.path.substr(4), '/');
  if (parts.size() < 3 || parts[0].empty() || parts[1].empty())
    return res->send(registry_error(404, "NAME_UNKNOWN", "repository name not known"));
  const std::string &ns = parts[0], &model = parts[1];
  const std::string repo = "/v2/" + ns + "/" + model;
  auto& U = *uploads_;
  if (req.method == "PUT" && parts.size() == 4 && parts[2] == "manifests") {
    auto n = store::ModelName::parse(ns + "/" + model + ":" + parts[3]);
    if (!n) return res->send(registry_error(400, "NAME_INVALID", n.status().message()));
    if (Status st = store_.write_manifest_bytes(*n, req.body); !st.is_ok())
      return res->send(registry_error(
          400,
          st.message().find("missing") != std::string::npos ? "BLOB_UNKNOWN" : "MANIFEST_INVALID",
          st.message()));
    HttpResponse r;
    r.status = 201;
    r.headers.push_back({"Location", req.path});
    return res->send(r);
  }
  if (parts.size() < 4 || parts[2] != "blobs" || parts[3] != "uploads")
    return res->send(registry_error(404, "NAME_UNKNOWN", "unknown registry path"));
  if (req.method == "POST" && (parts.size() == 4 || (parts.size() == 5 && parts[4].empty()))) {
    const std::string mount = query_value(req.query, "mount");
    if (!mount.empty() && store_.has_blob(mount)) {  // a blob this store has: no bytes needed
      HttpResponse r;
      r.status = 201;
      r.headers.push_back({"Location", repo + "/blobs/" + mount});
      r.headers.push_back({"Docker-Content-Digest", mount});
      return res->send(r);
    }
    auto s = std::make_shared<RegistryUploads::Session>();
    s->ns = ns;
    s->model = model;
    std::error_code ec;
    fs::create_directories(store_.downloads_dir(), ec);
    const std::string id = random_id();
    s->path = store_.downloads_dir() + "/upload-" + id;
    s->fd = ::open(s->path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (s->fd < 0) {
      s->path.clear();
      return res->send(
          error_response(store::io_error("cannot create", store_.downloads_dir(), errno)));
    }
    s->hash = std::make_unique<store::Sha256>();
    s->touched = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> l(U.mu);
      // Uploads abandoned for an hour go.
      for (auto it = U.sessions.begin(); it != U.sessions.end();)
        it = !it->second->writing && s->touched - it->second->touched > std::chrono::hours(1)
                 ? U.sessions.erase(it)
                 : std::next(it);
      U.sessions[id] = s;
    }
    HttpResponse r;
    r.status = 202;
    r.headers.push_back({"Location", repo + "/blobs/uploads/" + id});
    r.headers.push_back({"Docker-Upload-UUID", id});
    r.headers.push_back({"Range", "0-0"});
    return res->send(r);
  }
  if (parts.size() != 5)
    return res->send(registry_error(404, "NAME_UNKNOWN", "unknown registry path"));
  std::shared_ptr<RegistryUploads::Session> s;
  {
    std::lock_guard<std::mutex> l(U.mu);
    auto it = U.sessions.find(parts[4]);
    if (it != U.sessions.end()) s = it->second;
  }
  if (!s) return res->send(registry_error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown"));
  if (req.method == "PATCH") {
    HttpResponse r;
    r.status = 202;
    r.headers.push_back({"Location", req.path});
    r.headers.push_back({"Docker-Upload-UUID", parts[4]});
    r.headers.push_back({"Range", "0-" + std::to_string(s->size ? s->size - 1 : 0)});
    return res->send(r);
  }
  if (req.method == "PUT") {
    const std::string digest = query_value(req.query, "digest");
    auto hex = store::digest_hex(digest);
    {
      std::lock_guard<std::mutex> l(U.mu);
      U.sessions.erase(parts[4]);  // done either way; the file goes with the last reference
    }
    if (!hex) return res->send(registry_error(400, "DIGEST_INVALID", "invalid digest " + digest));
    const std::string got = s->hash->hex();
    if (got != *hex)
      return res->send(
          registry_error(400, "DIGEST_INVALID", "content is sha256:" + got + ", not " + digest));
    if (!store_.has_blob(digest)) {
      if (Status st = store_.install_blob(s->path, *hex); !st.is_ok())
        return res->send(error_response(st));
      s->path.clear();
    }
    HttpResponse r;
    r.status = 201;
    r.headers.push_back({"Location", repo + "/blobs/" + digest});
    r.headers.push_back({"Docker-Content-Digest", digest});
    return res->send(r);
  }
  res->send(registry_error(405, "UNSUPPORTED", "method " + req.method + " not supported here"));
}

void Api::pull(const HttpRequest& req, ResponderP res) {
  transfer(req, res, false);
}

void Api::push(const HttpRequest& req, ResponderP res) {
  transfer(req, res, true);
}

// /api/pull and /api/push: the same request fields and the same progress stream.
void Api::transfer(const HttpRequest& req, ResponderP res, bool is_push) {
  auto j = body_json(req, *res);
  if (!j) return;
  bool te;
  auto name = str_field(*j, "model", "name", *res, &te);
  if (te) return;
  if (!name || name->empty()) return res->send(json_error(400, "model is required"));
  bool stream = true, insecure = false;
  for (auto [key, dst] : {std::pair{"stream", &stream}, std::pair{"insecure", &insecure}}) {
    if (!j->contains(key) || (*j)[key].is_null()) continue;
    if (!(*j)[key].is_boolean())
      return res->send(json_error(400, std::string("field '") + key + "' must be a boolean"));
    *dst = (*j)[key].get<bool>();
  }
  auto ep = hearth::registry::Endpoint::parse(*name, insecure);
  if (!ep) return res->send(json_error(400, ep.status().message()));
  // A name differing only in case from a stored model is that model (Ollama's canonical
  // spelling): pushed under, and pulled into, the name as stored.
  if (const store::ModelName c = store_.canonical(ep->name); !(c == ep->name)) {
    const size_t scheme = name->find("://");
    *name = (scheme == std::string::npos ? "" : name->substr(0, scheme + 3)) + c.host + "/" + c.ns +
            "/" + c.model + ":" + c.tag;
  }
  if (!stream) res->watch_disconnect();
  if (is_push)
    if (auto ep = hearth::registry::Endpoint::parse(*name, insecure); !store_.exists(ep->name))
      return res->send(json_error(404, "model \"" + *name + "\" not found"));
  // A transfer takes minutes: its own thread, as create has.
  std::thread([this, res, name = *name, stream, insecure, is_push] {
    std::shared_ptr<Stream> out;
    auto progress = [&](const hearth::registry::Progress& p) {
      if (!stream) return !res->closed();
      if (!out) out = res->stream(200, "application/x-ndjson");
      if (!out || out->closed()) return false;  // the client left: stop (partials are kept)
      json line = {{"status", p.status}};
      if (!p.digest.empty()) {
        line["digest"] = p.digest;
        line["total"] = p.total;
        if (p.completed > 0) line["completed"] = p.completed;
      }
      return out->write(line.dump() + "\n");
    };
    Status st;
    try {
      if (is_push) {
        hearth::registry::PushOptions o;
        o.insecure = insecure;
        st = hearth::registry::push(store_, name, o, progress);
      } else {
        hearth::registry::PullOptions o;
        o.insecure = insecure;
        // Refused before any byte is downloaded when this machine can never hold the model.
        o.check = [this](int64_t size, const hearth::registry::PullOptions::HeaderFn& header) {
          const runtime::FitParams p = fit_params();
          const auto m = runtime::machine_info(sched_ ? sched_->options().memory_limit : 0);
          // Far below what the machine holds: no need to read the header (KV cache, scratch and
          // vocabulary at the default context are well under half the weights plus 1 GiB).
          if (size + size / 2 + (int64_t(1) << 30) < m.mem_total - runtime::kSystemReserve)
            return Status::ok();
          auto h = header();
          if (!h) return Status::ok();  // not a GGUF we can size: the pull decides
          auto r = runtime::fit(**h, p, m, 0, false);
          if (r && r->verdict == runtime::Verdict::kTooLarge)
            return Status(StatusCode::kResourceExhausted,
                          "this model " + r->reason + " (`hearth fit` shows what fits)");
          return Status::ok();
        };
        st = hearth::registry::pull(store_, name, o, progress);
      }
    } catch (const std::exception& e) {
      st = internal_error(std::string(is_push ? "push" : "pull") + " failed: " + e.what());
    }
    if (!st.is_ok() && st.code() != StatusCode::kCancelled)
      std::fprintf(stderr, "hearth: %s %s: %s\n", is_push ? "push" : "pull", name.c_str(),
                   st.message().c_str());
    if (out) {
      if (!st.is_ok()) out->write(json{{"error", st.message()}}.dump() + "\n");
      out->end();
    } else if (st.is_ok()) {
      res->send(json_ok({{"status", "success"}}));
    } else {
      res->send(error_response(st));
    }
  }).detach();
}

}  // namespace hearth::server
