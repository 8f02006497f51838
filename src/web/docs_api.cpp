#include "web/docs_api.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <thread>

#include "base/json_depth.h"
#include "db/sqlite.h"
#include "gguf/gguf.h"
#include "rag/isolate.h"
#include "runtime/scheduler.h"
#include "server/api_util.h"
#include "server/errors.h"
#include "store/model.h"
#include "store/store.h"
#include "tokenizer/tokenizer.h"

namespace hearth::web {

using json = nlohmann::ordered_json;
using server::HttpRequest;
using server::HttpResponse;
using server::ResponderP;

namespace {

HttpResponse no_store(HttpResponse r) {
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}
HttpResponse ok(const json& j, int status = 200) {
  HttpResponse r = server::json_ok(j);
  r.status = status;
  return no_store(std::move(r));
}
HttpResponse error(int status, const std::string& msg) {
  return no_store(server::json_error(status, msg));
}
HttpResponse error(const Status& s) {
  return no_store(server::error_response(s));
}

json doc_json(const rag::DocumentInfo& d) {
  return {{"id", d.id},
          {"collection_id", d.collection_id},
          {"name", d.name},
          {"kind", d.kind},
          {"bytes", d.bytes},
          {"sha256", d.sha256},
          {"status", d.status},
          {"error", d.error},
          {"chunks", d.chunks},
          {"embedded", d.embedded},
          {"tokens", d.tokens},
          {"embed_model", d.embed_model},
          {"created_at", d.created_at},
          {"updated_at", d.updated_at}};
}

json collection_json(const rag::CollectionInfo& c) {
  json j = {
      {"id", c.id}, {"name", c.name}, {"created_at", c.created_at}, {"documents", c.documents}};
  if (c.chat_id) j["chat_id"] = *c.chat_id;
  return j;
}

// Every value of `key` in a query string (?collection=a&collection=b).
std::vector<std::string> query_values(const std::string& query, const std::string& key) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= query.size()) {
    size_t j = query.find('&', i);
    if (j == std::string::npos) j = query.size();
    const std::string part = query.substr(i, j - i);
    if (part.rfind(key + "=", 0) == 0) out.push_back(server::query_value(part, key));
    i = j + 1;
  }
  return out;
}

// Waits for one scheduler job's vectors (or scores).
class WaitSink final : public runtime::Sink {
 public:
  bool on_text(const std::string&) override { return true; }
  void on_done(const runtime::Stats&) override { finish(std::vector<std::vector<float>>{}); }
  void on_embeddings(std::vector<std::vector<float>> v, const runtime::Stats&) override {
    finish(std::move(v));
  }
  void on_error(const Status& e) override { finish(e); }
  bool cancelled() const override { return false; }
  Result<std::vector<std::vector<float>>> get() { return fut_.get(); }

 private:
  void finish(Result<std::vector<std::vector<float>>> r) {
    if (!done_.exchange(true)) p_.set_value(std::move(r));
  }
  std::promise<Result<std::vector<std::vector<float>>>> p_;
  std::future<Result<std::vector<std::vector<float>>>> fut_ = p_.get_future();
  std::atomic<bool> done_{false};
};

Result<std::vector<std::vector<float>>> run_job(store::Store& st, runtime::Scheduler* sched,
                                                const std::string& model, runtime::PromptSpec p) {
  if (!sched) return Status(StatusCode::kUnavailable, "this server has no scheduler");
  auto n = store::ModelName::parse(model);
  if (!n) return invalid_argument("invalid model name '" + model + "'");
  HEARTH_ASSIGN_OR_RETURN(auto rec, store::resolve_model(st, *n));
  auto o = runtime::merge_options(rec.params, json::object());
  if (!o) return o.status();
  auto sink = std::make_shared<WaitSink>();
  runtime::Job job;
  job.model = std::move(rec);
  job.opt = std::move(*o);
  job.prompt = std::move(p);
  job.sink = sink;
  HEARTH_RETURN_IF_ERROR(sched->submit(std::move(job)));
  return sink->get();
}

}  // namespace

DocsHooks server_hooks(store::Store& st, runtime::Scheduler* sched, const std::string& exe) {
  DocsHooks h;
  h.ingest.embed = [&st, sched](const std::string& model, const std::vector<std::string>& texts)
      -> Result<std::vector<std::vector<float>>> {
    runtime::PromptSpec p;
    p.kind = runtime::PromptSpec::Kind::kEmbed;
    p.inputs = texts;
    HEARTH_ASSIGN_OR_RETURN(auto v, run_job(st, sched, model, std::move(p)));
    if (v.size() != texts.size())
      return internal_error("the embedding model returned " + std::to_string(v.size()) +
                            " vectors for " + std::to_string(texts.size()) + " texts");
    for (auto& e : v) {
      double n = 0;
      for (float x : e) n += double(x) * x;
      if (!(n > 0) || !std::isfinite(n)) return internal_error("the model produced a bad vector");
      for (float& x : e) x = float(x / std::sqrt(n));
    }
    return v;
  };
  // Tokenizers by model digest; a model's tokenizer is read from its GGUF once.
  struct Tokenizers {
    std::mutex mu;
    std::map<std::string, std::shared_ptr<const tokenizer::Tokenizer>> by_digest;
  };
  auto cache = std::make_shared<Tokenizers>();
  h.counter = [&st, cache](const std::string& model) -> std::function<size_t(std::string_view)> {
    auto n = store::ModelName::parse(model);
    if (!n) return nullptr;
    auto rec = store::resolve_model(st, *n);
    if (!rec) return nullptr;
    std::shared_ptr<const tokenizer::Tokenizer> tk;
    {
      std::lock_guard<std::mutex> lk(cache->mu);
      auto it = cache->by_digest.find(rec->digest);
      if (it != cache->by_digest.end()) tk = it->second;
    }
    if (!tk) {
      auto g = gguf::GgufFile::open(rec->model_path);
      if (!g) return nullptr;
      auto t = tokenizer::Tokenizer::from_gguf(**g);
      if (!t) return nullptr;
      tk = *t;
      std::lock_guard<std::mutex> lk(cache->mu);
      if (cache->by_digest.size() >= 8) cache->by_digest.clear();
      cache->by_digest[rec->digest] = tk;
    }
    return [tk](std::string_view s) { return tk->encode(s, false, false).size(); };
  };
  h.ingest.counter = h.counter;
  h.rerank = [&st, sched](const std::string& model, const std::string& query,
                          const std::vector<std::string>& texts) -> Result<std::vector<double>> {
    runtime::PromptSpec p;
    p.kind = runtime::PromptSpec::Kind::kRerank;
    p.query = query;
    p.inputs = texts;
    HEARTH_ASSIGN_OR_RETURN(auto v, run_job(st, sched, model, std::move(p)));
    if (v.size() != texts.size()) return internal_error("rerank returned a wrong number of scores");
    std::vector<double> s;
    for (const auto& x : v) s.push_back(x.empty() ? 0.0 : double(x[0]));
    return s;
  };
  if (!exe.empty())
    h.ingest.extract = [exe](rag::DocKind k, std::string_view bytes, std::string_view lang) {
      return rag::extract_in_child(exe, k, bytes, lang);
    };
  return h;
}

DocsApi::DocsApi(std::string db_path, DocsHooks hooks, std::string path_error)
    : path_(std::move(db_path)), path_error_(std::move(path_error)), hooks_(std::move(hooks)) {
  if (const char* m = std::getenv("HEARTH_EMBED_MODEL"); m && *m) default_embed_ = m;
  const std::string def = default_embed_;
  hooks_.ingest.embed_model = [def] { return def; };
}

DocsApi::~DocsApi() {
  ingest_.reset();  // the worker stops before the library closes
}

std::unique_ptr<DocsApi> DocsApi::from_env(DocsHooks hooks) {
  std::string dir;
  if (const char* p = std::getenv("HEARTH_UI_DB"); p && *p) {
    dir = p;
    const size_t slash = dir.rfind('/');
    dir = slash == std::string::npos ? "." : dir.substr(0, slash);
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    dir = std::string(home) + "/.hearth";
  } else {
    return std::make_unique<DocsApi>(
        "", std::move(hooks), "no HOME to keep documents in; set HEARTH_UI_DB to a file path");
  }
  auto api = std::make_unique<DocsApi>(dir + "/documents.sqlite", std::move(hooks));
  // Chunk size in tokens (HEARTH_UI_CHUNK_TOKENS, default 400), overlap about a seventh of it.
  if (const char* c = std::getenv("HEARTH_UI_CHUNK_TOKENS"); c && *c) {
    const long long v = std::atoll(c);
    if (v >= 32 && v <= 8192) api->set_chunk_tokens(size_t(v));
  }
  // Chunks per embedding call (HEARTH_UI_EMBED_BATCH, default 32; 1 embeds one at a time).
  if (const char* b = std::getenv("HEARTH_UI_EMBED_BATCH"); b && *b) {
    const long long v = std::atoll(b);
    if (v >= 1 && v <= 1024) api->set_embed_batch(size_t(v));
  }
  if (const char* m = std::getenv("HEARTH_UI_MAX_DOCUMENT"); m && *m) {
    const long long v = std::atoll(m);
    if (v > 0) api->set_max_document(std::min<size_t>(size_t(v), rag::kMaxDocumentBytes));
  }
  return api;
}

Status DocsApi::open() {
  return library().status();
}

void DocsApi::wait_idle() {
  rag::Ingestor* i = nullptr;
  {
    std::lock_guard<std::mutex> lk(mu_);
    i = ingest_.get();
  }
  if (i) i->wait_idle();
}

Result<rag::Library*> DocsApi::library() {
  std::lock_guard<std::mutex> lk(mu_);
  if (lib_) return lib_.get();
  Status s;
  if (!path_error_.empty()) {
    s = Status(StatusCode::kUnavailable, path_error_);
  } else {
    const size_t slash = path_.rfind('/');
    if (slash != std::string::npos && slash > 0) s = db::make_private_dirs(path_.substr(0, slash));
    if (s) {
      auto l = rag::Library::open(path_);
      if (l) {
        lib_ = std::move(*l);
        ingest_ = std::make_unique<rag::Ingestor>(*lib_, hooks_.ingest);
        if (Status st = ingest_->start(); !st)
          std::fprintf(stderr, "hearth: documents: %s\n", st.message().c_str());
        logged_.clear();
        return lib_.get();
      }
      s = l.status();
    }
  }
  std::string msg = s.message();
  if (msg.rfind("documents", 0) != 0) msg = "documents: " + msg;
  if (msg != logged_) {
    std::fprintf(stderr, "hearth: %s\n", msg.c_str());
    logged_ = msg;
  }
  return Status(StatusCode::kUnavailable, msg);
}

bool DocsApi::handle(const HttpRequest& req, ResponderP res) {
  const std::string& p = req.path;
  const std::string& m = req.method;
  const bool collections = p == "/ui/api/collections" || p.rfind("/ui/api/collections/", 0) == 0;
  const bool documents = p == "/ui/api/documents" || p.rfind("/ui/api/documents/", 0) == 0;
  // A chat deleted from the history takes its own documents along (the history then answers).
  if (m == "DELETE" && p.rfind("/ui/api/chats/", 0) == 0 &&
      p.find('/', std::strlen("/ui/api/chats/")) == std::string::npos) {
    if (auto lib = library(); lib) {
      auto c = (*lib)->find_chat_collection(p.substr(std::strlen("/ui/api/chats/")));
      if (c && *c) {
        if (Status s = (*lib)->delete_collection(**c); !s)
          std::fprintf(stderr, "hearth: documents: %s\n", s.message().c_str());
      }
    }
    return false;
  }
  if (!collections && !documents && p != "/ui/api/retrieve") return false;
  auto method_not_allowed = [&](const char* allow) {
    HttpResponse r = error(405, "method " + m + " not allowed for " + p);
    r.headers.emplace_back("Allow", allow);
    res->send(std::move(r));
    return true;
  };
  auto lib = library();
  if (!lib) {
    res->send(error(lib.status()));
    return true;
  }
  rag::Library& L = **lib;
  auto fail = [&](const Status& s) {
    res->send(error(s));
    return true;
  };
  auto body = [&]() -> std::optional<json> {
    if (req.body.size() > (1 << 20)) {
      res->send(error(413, "request body is larger than 1 MiB"));
      return std::nullopt;
    }
    json j = parse_json_bounded<json>(req.body, nullptr);
    if (req.body.empty() || j.is_discarded() || !j.is_object()) {
      res->send(error(400, "request body must be a JSON object"));
      return std::nullopt;
    }
    return j;
  };

  if (p == "/ui/api/retrieve") {
    if (m != "POST") return method_not_allowed("POST");
    retrieve(req, res);
    return true;
  }
  if (p == "/ui/api/collections") {
    if (m == "GET") {
      auto cs = L.named_collections();
      if (!cs) return fail(cs.status());
      json list = json::array();
      for (const auto& c : *cs) list.push_back(collection_json(c));
      res->send(ok({{"collections", list}}));
      return true;
    }
    if (m != "POST") return method_not_allowed("GET, POST");
    auto j = body();
    if (!j) return true;
    if (!j->contains("name") || !(*j)["name"].is_string())
      return res->send(error(400, "field 'name' (a string) is required")), true;
    auto c = L.create_collection((*j)["name"].get<std::string>());
    if (!c) return fail(c.status());
    res->send(ok(collection_json(*c), 201));
    return true;
  }
  if (collections) {
    const std::string id = p.substr(std::strlen("/ui/api/collections/"));
    if (id.empty() || id.find('/') != std::string::npos)
      return fail(not_found("404 page not found"));
    if (m != "DELETE") return method_not_allowed("DELETE");
    if (Status s = L.delete_collection(id); !s) return fail(s);
    HttpResponse r;
    r.status = 204;
    res->send(no_store(std::move(r)));
    return true;
  }
  if (p == "/ui/api/documents") {
    if (m == "GET") {
      std::vector<std::string> scope = query_values(req.query, "collection");
      for (const auto& chat : query_values(req.query, "chat")) {
        auto c = L.find_chat_collection(chat);
        if (!c) return fail(c.status());
        if (*c) scope.push_back(**c);
      }
      auto ds = L.documents(scope);
      if (!ds) return fail(ds.status());
      json list = json::array();
      for (const auto& d : *ds) list.push_back(doc_json(d));
      res->send(ok({{"documents", list}}));
      return true;
    }
    if (m != "POST") return method_not_allowed("GET, POST");
    const std::string chat = server::query_value(req.query, "chat");
    const std::string coll = server::query_value(req.query, "collection");
    const std::string name = server::query_value(req.query, "name");
    std::string embed = server::query_value(req.query, "embed_model");
    if (embed.empty()) embed = default_embed_;
    if (chat.empty() == coll.empty())
      return res->send(error(400, "give exactly one of chat= or collection=")), true;
    if (name.empty()) return res->send(error(400, "name= (the file's name) is required")), true;
    if (req.body.size() > max_document_)
      return res->send(error(413, "the document is larger than " +
                                      std::to_string(max_document_ >> 20) +
                                      " MiB (HEARTH_UI_MAX_DOCUMENT)")),
             true;
    if (req.body.empty()) return res->send(error(400, "the document is empty")), true;
    std::string collection_id = coll;
    if (!chat.empty()) {
      auto c = L.chat_collection(chat);
      if (!c) return fail(c.status());
      collection_id = c->id;
    }
    std::string lang;
    const auto kind = rag::kind_of(name, req.header("content-type"), &lang);
    auto d = L.add_document(collection_id, name, rag::kind_name(kind, lang), req.body, embed);
    if (!d) return fail(d.status());
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (ingest_) ingest_->enqueue(d->id);
    }
    res->send(ok(doc_json(*d), 202));
    return true;
  }
  const std::string id = p.substr(std::strlen("/ui/api/documents/"));
  if (id.empty() || id.find('/') != std::string::npos) return fail(not_found("404 page not found"));
  if (m == "GET") {
    auto d = L.document(id);
    if (!d) return fail(d.status());
    res->send(ok(doc_json(*d)));
    return true;
  }
  if (m != "DELETE") return method_not_allowed("GET, DELETE");
  if (Status s = L.delete_document(id); !s) return fail(s);
  HttpResponse r;
  r.status = 204;
  res->send(no_store(std::move(r)));
  return true;
}

void DocsApi::retrieve(const HttpRequest& req, const ResponderP& res) {
  json j = parse_json_bounded<json>(req.body, nullptr);
  if (req.body.empty() || req.body.size() > (1 << 20) || j.is_discarded() || !j.is_object())
    return res->send(error(400, "request body must be a JSON object"));
  auto str = [&](const char* k) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
  };
  const std::string query = str("query");
  if (query.empty()) return res->send(error(400, "field 'query' (a string) is required"));
  if (query.size() > 64 * 1024) return res->send(error(400, "query is longer than 64 KiB"));
  rag::SearchOptions o;
  if (j.contains("k")) {
    if (!j["k"].is_number_integer() || j["k"].get<int64_t>() < 1 || j["k"].get<int64_t>() > 50)
      return res->send(error(400, "k must be an integer from 1 to 50"));
    o.k = int(j["k"].get<int64_t>());
  }
  if (j.contains("budget")) {
    if (!j["budget"].is_number_integer() || j["budget"].get<int64_t>() < 0)
      return res->send(error(400, "budget must be a non-negative integer (tokens)"));
    o.budget_tokens = size_t(j["budget"].get<int64_t>());
  }
  if (j.contains("mode")) o.mode = str("mode");
  std::vector<std::string> colls;
  if (j.contains("collections")) {
    if (!j["collections"].is_array()) return res->send(error(400, "collections must be an array"));
    for (const auto& c : j["collections"]) {
      if (!c.is_string()) return res->send(error(400, "collections must hold ids"));
      colls.push_back(c.get<std::string>());
    }
  }
  const std::string chat = str("chat"), model = str("model"), rerank_model = str("rerank_model");
  auto lib = library();
  if (!lib) return res->send(error(lib.status()));
  rag::Library* L = *lib;
  // Embedding the query and reranking wait on the scheduler: off the HTTP thread.
  std::thread([this, res, L, query, o, colls, chat, model, rerank_model]() mutable {
    if (!chat.empty()) {
      auto c = L->find_chat_collection(chat);
      if (!c) return res->send(error(c.status()));
      if (*c) colls.push_back(**c);
    }
    auto ds = L->documents(colls);
    if (!ds) return res->send(error(ds.status()));
    std::vector<std::string> ids;
    for (const auto& d : *ds) ids.push_back(d.id);
    rag::SearchHooks sh;
    sh.embed = hooks_.ingest.embed;
    if (!model.empty() && hooks_.counter) sh.count = hooks_.counter(model);
    if (!rerank_model.empty() && hooks_.rerank) {
      auto rr = hooks_.rerank;
      sh.rerank = [rr, rerank_model](const std::string& q, const std::vector<std::string>& t) {
        return rr(rerank_model, q, t);
      };
    }
    auto r = rag::search(*L, query, ids, o, sh);
    if (!r) return res->send(error(r.status()));
    json ps = json::array();
    int n = 0;
    for (const auto& p : r->passages)
      ps.push_back({{"n", ++n},
                    {"chunk_id", p.chunk_id},
                    {"document_id", p.doc_id},
                    {"document", p.doc_name},
                    {"headings", p.headings},
                    {"text", p.text},
                    {"tokens", p.tokens},
                    {"score", p.score}});
    res->send(ok({{"passages", ps}, {"mode", r->mode}, {"pending", r->pending}}));
  }).detach();
}

}  // namespace hearth::web
