// web/docs_api.h — documents for the web chat under /ui/api/: upload into a chat or a named
// collection, background ingest with progress (rag/ingest.h), and hybrid retrieval
// (rag/search.h) that the UI puts into the prompt. See docs/api.md for the endpoints.
//
//   GET    /ui/api/collections                    named collections
//   POST   /ui/api/collections {name}             a new one
//   DELETE /ui/api/collections/{id}               with its documents
//   POST   /ui/api/documents?chat=|collection=&name=&embed_model=   body: the file's bytes
//   GET    /ui/api/documents?chat=&collection=... documents in scope, with status and progress
//   GET    /ui/api/documents/{id}
//   DELETE /ui/api/documents/{id}
//   POST   /ui/api/retrieve {query, chat?, collections?, k?, budget?, model?, mode?, rerank_model?}
// and, before the history answers it, DELETE /ui/api/chats/{id} deletes that chat's documents.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "rag/ingest.h"
#include "rag/library.h"
#include "rag/search.h"
#include "server/api.h"
#include "server/http.h"

namespace hearth::runtime {
class Scheduler;
}
namespace hearth::store {
class Store;
}

namespace hearth::web {

struct DocsHooks {
  rag::IngestHooks ingest;  // embed, extract, counter (embed_model: from the request or env)
  // A token counter by `model`'s tokenizer, for the prompt budget (null or null result: estimate).
  std::function<std::function<size_t(std::string_view)>(const std::string& model)> counter;
  // Scores of `texts` for `query` by a rerank model (null: no reranking offered).
  std::function<Result<std::vector<double>>(const std::string& model, const std::string& query,
                                            const std::vector<std::string>& texts)>
      rerank;
};

// Embedding, reranking and token counting through this server's models: the scheduler's batched
// embedding path, its rerank path, and each model's own tokenizer (cached). Extraction in a
// child process running `exe` (this binary) when `exe` is set.
DocsHooks server_hooks(store::Store& st, runtime::Scheduler* sched, const std::string& exe);

class DocsApi {
 public:
  // `db_path`: the documents' SQLite file (its folder is created, mode 0700). The library opens
  // and the worker starts on first use; a path that cannot be opened only affects these routes.
  DocsApi(std::string db_path, DocsHooks hooks, std::string path_error = "");
  ~DocsApi();
  // HEARTH_UI_DB's folder (else ~/.hearth) / documents.sqlite. HEARTH_EMBED_MODEL: the default
  // embedding model for uploads that name none. HEARTH_UI_MAX_DOCUMENT: upload limit (32 MiB).
  static std::unique_ptr<DocsApi> from_env(DocsHooks hooks);

  // Answers a request for one of the routes above and returns true; false for any other path.
  bool handle(const server::HttpRequest& req, server::ResponderP res);

  // Starts the library and the worker now (the server calls it at start so interrupted ingests
  // resume without waiting for a request).
  Status open();
  // Waits until the worker is idle (tests).
  void wait_idle();
  void set_max_document(size_t bytes) { max_document_ = bytes; }
  // Before open(): chunks per embedding call.
  void set_embed_batch(size_t n) { hooks_.ingest.batch = n; }
  // Before open(): the chunker's target size (overlap: a seventh of it).
  void set_chunk_tokens(size_t n) {
    hooks_.ingest.chunking.max_tokens = n;
    hooks_.ingest.chunking.overlap_tokens = n / 7;
  }

 private:
  Result<rag::Library*> library();
  void retrieve(const server::HttpRequest& req, const server::ResponderP& res);

  std::string path_, path_error_;
  DocsHooks hooks_;
  std::string default_embed_;
  size_t max_document_ = size_t(32) << 20;
  std::mutex mu_;
  std::unique_ptr<rag::Library> lib_;
  std::unique_ptr<rag::Ingestor> ingest_;
  std::string logged_;
};

}  // namespace hearth::web
