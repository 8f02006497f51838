// rag/library.h — the documents a chat can draw on: collections of uploaded documents, their
// chunks, keyword index and embeddings, in one SQLite file (db/sqlite.h).
//
// A collection is either a chat's own (made on the chat's first upload) or a named one that any
// chat can attach. A document moves through queued (its bytes kept in `uploads` until read) →
// extracting → embedding → ready, or error; the ingest worker (rag/ingest.h) drives it and a
// server restart resumes where it stopped, since every step is committed. Chunks are indexed by
// FTS5 (BM25, Porter-stemmed) as they are stored, and each gets its embedding (float32 BLOB,
// L2-normalized) when its batch is done. Retrieval reads only ready documents.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "db/sqlite.h"
#include "rag/chunker.h"
#include "rag/retrieve.h"

namespace hearth::rag {

// Largest upload the library takes (the server's limit may be lower); names in bytes.
inline constexpr size_t kMaxNameBytes = 255;

struct CollectionInfo {
  std::string id, name;
  std::optional<std::string> chat_id;  // set: the chat's own documents
  int64_t created_at = 0;
  int documents = 0;
};

struct DocumentInfo {
  std::string id, collection_id, name;
  std::string kind;  // "text", "markdown", "html", "pdf", "code:<lang>"
  int64_t bytes = 0;
  std::string sha256;
  std::string status;  // queued, extracting, embedding, ready, error
  std::string error;
  int chunks = 0, embedded = 0;
  int64_t tokens = 0;       // over all chunks, by the embedding model's tokenizer (or estimated)
  std::string embed_model;  // "" : keyword search only
  int dim = 0;
  int64_t created_at = 0, updated_at = 0;
};

struct Passage {
  int64_t chunk_id = 0;
  std::string doc_id, doc_name, headings, text;
  int tokens = 0;
  double score = 0;  // the ranking's (fused) score
};

class Library {
 public:
  static Result<std::unique_ptr<Library>> open(const std::string& path);
  ~Library();

  // The chat's own collection, made on first use.
  Result<CollectionInfo> chat_collection(const std::string& chat_id);
  // The chat's own collection's id if it has one (reads never make one).
  Result<std::optional<std::string>> find_chat_collection(const std::string& chat_id);
  // A named collection (names are unique among named ones; InvalidArgument otherwise).
  Result<CollectionInfo> create_collection(const std::string& name);
  Result<CollectionInfo> collection(const std::string& id);
  Result<std::vector<CollectionInfo>> named_collections();
  // Deletes the collection with its documents.
  Status delete_collection(const std::string& id);

  // A new document in `collection_id`, queued with its bytes, to be embedded with `embed_model`
  // ("": the worker's default).
  Result<DocumentInfo> add_document(const std::string& collection_id, const std::string& name,
                                    const std::string& kind, std::string_view bytes,
                                    const std::string& embed_model = "");
  Result<DocumentInfo> document(const std::string& id);
  Result<std::vector<DocumentInfo>> documents(std::span<const std::string> collection_ids);
  Status delete_document(const std::string& id);
  // Documents the worker has not finished (queued, extracting, embedding), oldest first.
  Result<std::vector<std::string>> unfinished();

  // ---- The ingest worker's steps.
  // The uploaded bytes (NotFound once extracted or deleted); marks the document extracting.
  Result<std::string> take_upload(const std::string& doc_id);
  // Stores the chunks (indexed for keywords at once) and drops the upload; the document is then
  // `embedding` with `embed_model`, or ready when that is empty.
  Status set_chunks(const std::string& doc_id, const std::vector<Chunk>& chunks,
                    const std::string& embed_model);
  // Up to `limit` chunks still without a vector: (chunk id, text).
  Result<std::vector<std::pair<int64_t, std::string>>> unembedded(const std::string& doc_id,
                                                                  int limit);
  // Stores the vectors of `ids` (each `dim` floats, normalized here); the document is ready
  // once every chunk has one.
  Status set_vectors(const std::string& doc_id, std::span<const int64_t> ids,
                     const std::vector<std::vector<float>>& vectors);
  Status fail(const std::string& doc_id, const std::string& why);

  // ---- Retrieval over ready documents among `doc_ids`.
  // Chunks matching any word of `query`, best BM25 first (score = -bm25, higher is better).
  Result<std::vector<Hit>> keyword(const std::string& query, std::span<const std::string> doc_ids,
                                   int limit);
  // Chunks embedded with `model` most similar to `query_vec` (normalized), best first.
  Result<std::vector<Hit>> similar(const std::string& model, std::span<const float> query_vec,
                                   std::span<const std::string> doc_ids, int limit);
  Result<std::vector<Passage>> passages(std::span<const int64_t> chunk_ids);

 private:
  explicit Library(std::unique_ptr<db::Database> d);
  Result<DocumentInfo> read_document(const std::string& id);
  Result<CollectionInfo> read_collection(const std::string& id);
  Status touch(const std::string& doc_id, const std::string& status);

  std::unique_ptr<db::Database> db_;
  std::mutex mu_;
  std::random_device rng_;
};

// FTS5 query text for retrieval: each word of `text` quoted, OR-ed (a question's words need not
// all appear), English function words left out unless there is nothing else; at most 64 words;
// empty if none is left.
std::string fts_any(std::string_view text);

}  // namespace hearth::rag
