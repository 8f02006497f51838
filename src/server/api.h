// server/api.h — the Ollama and OpenAI HTTP APIs on top of the store and the scheduler.
// Routing and the store endpoints live in api.cpp; model management (create, show, /v1/models)
// in api_models.cpp; inference (generate, chat, ps, /v1 completions) in api_inference.cpp,
// embeddings in api_embed.cpp, reranking in api_rerank.cpp.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/fit.h"
#include "server/http.h"
#include "store/store.h"

namespace hearth::runtime {
class Scheduler;
}

namespace hearth::server {

using ResponderP = std::shared_ptr<Responder>;

class Api {
 public:
  // `sched` may be null (store-only server, e.g. in tests): inference endpoints then answer 503.
  Api(store::Store& store, runtime::Scheduler* sched) : store_(store), sched_(sched) {}
  // Routes one request; always answers (JSON errors shaped as Ollama's).
  void handle(const HttpRequest& req, ResponderP res);
  // The HTTP layer's upload hook: POST /api/blobs/<digest> streams into a blob writer (hashed
  // as it arrives); a bad digest, a blob already present or too little disk space is answered
  // before any of the body is read.
  UploadDecision start_upload(const HttpRequest& head);
  // Largest accepted upload in bytes (0: only the free disk space limits it).
  void set_max_upload(uint64_t bytes) { max_upload_ = bytes; }
  // Whether other machines may push into this store through the registry API (off by default:
  // HEARTH_REGISTRY_UPLOADS=1).
  void set_registry_uploads(bool on);
  struct RegistryUploads;  // upload sessions (api_registry.cpp)
  // Routes served by a layer above this one (the web UI's /ui/api, src/web/ui_api.h), tried
  // before the final 404: a handler answers and returns true, or returns false for a path it
  // does not own.
  using Routes = std::function<bool(const HttpRequest&, ResponderP)>;
  void add_routes(Routes r) { routes_.push_back(std::move(r)); }

 private:
  // api.cpp
  void tags(ResponderP res);
  void copy(const HttpRequest& req, ResponderP res);
  void remove(const HttpRequest& req, ResponderP res);
  void blob(const HttpRequest& req, ResponderP res);
  // api_models.cpp
  void show(const HttpRequest& req, ResponderP res);
  void create(const HttpRequest& req, ResponderP res);
  void v1_models(const HttpRequest& req, ResponderP res);  // GET /v1/models and /v1/models/{id}
  // api_inference.cpp
  void generate(const HttpRequest& req, ResponderP res);
  void chat(const HttpRequest& req, ResponderP res);
  void ps(ResponderP res);
  void fit(const HttpRequest& req, ResponderP res);  // GET /api/fit (api_fit.cpp)
  // GET/POST /lora-adapters: a model's adapters and their default scales (api_lora.cpp).
  void lora_adapters(const HttpRequest& req, ResponderP res);
  // What the fit advisor assumes: this server's default context and batch.
  runtime::FitParams fit_params() const;
  void embed(const HttpRequest& req, ResponderP res);
  void rerank(const HttpRequest& req, ResponderP res);  // api_rerank.cpp
  void v1_chat(const HttpRequest& req, ResponderP res);
  void v1_completions(const HttpRequest& req, ResponderP res);
  void v1_responses(const HttpRequest& req, ResponderP res);
  // api_finetune.cpp: POST /api/finetune, a LoRA adapter trained on a stored model
  void finetune(const HttpRequest& req, ResponderP res);
  // api_registry.cpp
  void pull(const HttpRequest& req, ResponderP res);
  void push(const HttpRequest& req, ResponderP res);
  void transfer(const HttpRequest& req, ResponderP res, bool is_push);
  void registry(const HttpRequest& req, ResponderP res);  // GET/HEAD /v2/...
  Result<std::string> find_manifest(const std::string& ns, const std::string& model,
                                    const std::string& tag);
  // The registry's upload hook (PATCH/PUT of /v2/.../blobs/uploads/<id>).
  UploadDecision start_registry_upload(const HttpRequest& head);
  void registry_write(const HttpRequest& req, ResponderP res);  // POST/PATCH/PUT /v2/...

  store::Store& store_;
  runtime::Scheduler* sched_;
  uint64_t max_upload_ = 0;
  bool registry_uploads_ = false;
  std::shared_ptr<RegistryUploads> uploads_;
  std::vector<Routes> routes_;
};

// RFC 3339 with nanoseconds in UTC ("2025-10-26T17:15:24.097767000Z").
std::string rfc3339(int64_t unix_seconds, int64_t nanos = 0);

}  // namespace hearth::server
