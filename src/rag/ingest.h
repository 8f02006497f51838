// rag/ingest.h — the background worker that turns uploads into searchable chunks.
//
// One thread takes documents in upload order: extract the text (rag/extract.h, optionally in a
// separate process so a hostile PDF cannot take the server down), chunk it (rag/chunker.h),
// store and keyword-index the chunks, then embed them in batches through the embedding model
// (the server passes its batched /api/embed path in as `embed`), committing each batch so
// progress is visible and survives a restart. What the worker needs from the rest of the server
// comes in as functions, so it is tested without a model.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.h"
#include "rag/extract.h"
#include "rag/library.h"

namespace hearth::rag {

struct IngestHooks {
  // L2-normalized vectors of `texts` by `model`, one per text.
  std::function<Result<std::vector<std::vector<float>>>(const std::string& model,
                                                        const std::vector<std::string>& texts)>
      embed;
  // The embedding model for a document whose upload named none; "" when there is none (keyword
  // search only).
  std::function<std::string()> embed_model;
  // A token counter for chunking with `model` (null or returning null: an estimate).
  std::function<std::function<size_t(std::string_view)>(const std::string& model)> counter;
  // The text of an upload; null: rag::extract_text in this process.
  std::function<Result<std::string>(DocKind, std::string_view bytes, std::string_view lang)>
      extract;
  size_t batch = 32;  // chunks per embedding call
  ChunkOptions chunking;
};

// "text", "markdown", "html", "pdf", "code:<lang>" — as documents are stored.
std::string kind_name(DocKind k, std::string_view lang);
// The reverse; false for an unknown name.
bool parse_kind(std::string_view name, DocKind* k, std::string* lang);

class Ingestor {
 public:
  Ingestor(Library& lib, IngestHooks hooks);
  ~Ingestor();  // finishes the current batch, then stops
  Ingestor(const Ingestor&) = delete;
  Ingestor& operator=(const Ingestor&) = delete;

  // Starts the worker and queues every unfinished document (a restart resumes them).
  Status start();
  void enqueue(const std::string& doc_id);
  // Blocks until the queue is empty and the worker idle (tests, benchmarks).
  void wait_idle();

 private:
  void run();
  void process(const std::string& doc_id);

  Library& lib_;
  IngestHooks hooks_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::string> queue_;
  bool stop_ = false, busy_ = false;
  std::thread worker_;
};

}  // namespace hearth::rag
