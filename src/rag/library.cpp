#include "rag/library.h"

#include <openssl/sha.h>
#include <sqlite3.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

namespace hearth::rag {

using db::Query;
using db::Tx;

namespace {

// Version 1. Chunks have an INTEGER PRIMARY KEY because FTS5's external content refers to rows
// by rowid. A chunk's text never changes, so only inserts and deletes are mirrored into the index.
const char* const kSchemaV1 = R"sql(
CREATE TABLE collections (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  chat_id TEXT UNIQUE,
  created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX collections_by_name ON collections(name) WHERE chat_id IS NULL;
CREATE TABLE documents (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  collection_id TEXT NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  bytes INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  status TEXT NOT NULL
    CHECK (status IN ('queued', 'extracting', 'embedding', 'ready', 'error')),
  error TEXT NOT NULL DEFAULT '',
  chunks INTEGER NOT NULL DEFAULT 0,
  embedded INTEGER NOT NULL DEFAULT 0,
  tokens INTEGER NOT NULL DEFAULT 0,
  embed_model TEXT NOT NULL DEFAULT '',
  dim INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX documents_by_collection ON documents(collection_id, seq);
CREATE TABLE uploads (
  doc_id TEXT PRIMARY KEY REFERENCES documents(id) ON DELETE CASCADE,
  data BLOB NOT NULL
);
CREATE TABLE chunks (
  id INTEGER PRIMARY KEY,
  doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  headings TEXT NOT NULL,
  text TEXT NOT NULL,
  begin_at INTEGER NOT NULL,
  end_at INTEGER NOT NULL,
  tokens INTEGER NOT NULL,
  vec BLOB
);
CREATE INDEX chunks_by_doc ON chunks(doc_id, seq);
CREATE VIRTUAL TABLE chunks_fts USING fts5(text, content='chunks', content_rowid='id',
  tokenize='porter unicode61 remove_diacritics 2');
CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
  INSERT INTO chunks_fts(rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
  INSERT INTO chunks_fts(chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
)sql";

const char* const kMigrations[] = {kSchemaV1};

const char* const kDocCols =
    "id, collection_id, name, kind, bytes, sha256, status, error, chunks, embedded, tokens, "
    "embed_model, dim, created_at, updated_at";

DocumentInfo doc_row(const Query& q) {
  DocumentInfo d;
  d.id = q.text(0);
  d.collection_id = q.text(1);
  d.name = q.text(2);
  d.kind = q.text(3);
  d.bytes = q.i64(4);
  d.sha256 = q.text(5);
  d.status = q.text(6);
  d.error = q.text(7);
  d.chunks = int(q.i64(8));
  d.embedded = int(q.i64(9));
  d.tokens = q.i64(10);
  d.embed_model = q.text(11);
  d.dim = int(q.i64(12));
  d.created_at = q.i64(13);
  d.updated_at = q.i64(14);
  return d;
}

std::string sha256_hex(std::string_view b) {
  unsigned char h[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), h);
  static const char hex[] = "0123456789abcdef";
  std::string s;
  for (unsigned char c : h) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

std::string json_ids(std::span<const std::string> ids) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& i : ids) a.push_back(i);
  return a.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

#define HEARTH_SQL_OK(q, what)                                               \
  do {                                                                       \
    const int _rc = (q).step();                                              \
    if (_rc != SQLITE_DONE && _rc != SQLITE_ROW) return db_->err(_rc, what); \
  } while (0)

}  // namespace

namespace {

// English function words: left out of keyword queries unless nothing else is left. BM25 already
// gives them little weight, but each still pulls every chunk containing it into the keyword
// ranking, which then crowds the fused list with passages that share nothing but "the".
bool stop_word(std::string_view w) {
  static const char* const kStop[] = {
      "a",    "about", "after", "all",  "am",    "an",    "and",   "any",    "are",   "as",
      "at",   "be",    "been",  "but",  "by",    "can",   "could", "did",    "do",    "does",
      "for",  "from",  "had",   "has",  "have",  "he",    "her",   "here",   "him",   "his",
      "how",  "i",     "if",    "in",   "into",  "is",    "it",    "its",    "me",    "my",
      "no",   "not",   "of",    "on",   "or",    "our",   "she",   "should", "so",    "than",
      "that", "the",   "their", "them", "then",  "there", "these", "they",   "this",  "those",
      "to",   "us",    "was",   "we",   "were",  "what",  "when",  "where",  "which", "who",
      "whom", "why",   "will",  "with", "would", "you",   "your"};
  if (w.size() > 6) return false;
  char low[8];
  for (size_t i = 0; i < w.size(); ++i)
    low[i] = char(std::tolower(static_cast<unsigned char>(w[i])));
  const std::string_view l(low, w.size());
  for (const char* s : kStop)
    if (l == s) return true;
  return false;
}

bool word_byte(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80;
}

}  // namespace

std::string fts_any(std::string_view text) {
  std::vector<std::string_view> words, kept;
  for (size_t i = 0; i < text.size();) {
    while (i < text.size() && !word_byte(text[i])) ++i;
    const size_t b = i;
    while (i < text.size() && word_byte(text[i])) ++i;
    if (i > b) words.push_back(text.substr(b, i - b));
  }
  for (auto w : words)
    if (!stop_word(w)) kept.push_back(w);
  if (kept.empty()) kept = words;  // a query of function words only still searches them
  std::string out;
  for (size_t n = 0; n < kept.size() && n < 64; ++n) {
    if (!out.empty()) out += " OR ";
    out += '"';
    out += kept[n];  // no quotes inside: they are not word bytes
    out += '"';
  }
  return out;
}

Library::Library(std::unique_ptr<db::Database> d) : db_(std::move(d)) {}
Library::~Library() = default;

Result<std::unique_ptr<Library>> Library::open(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(auto d, db::Database::open(path, "documents", kMigrations));
  return std::unique_ptr<Library>(new Library(std::move(d)));
}

Result<CollectionInfo> Library::read_collection(const std::string& id) {
  Query q(
      db_->stmt("SELECT c.id, c.name, c.chat_id, c.created_at, "
                "(SELECT count(*) FROM documents d WHERE d.collection_id = c.id) "
                "FROM collections c WHERE c.id = ?1"));
  q.bind(1, id);
  const int rc = q.step();
  if (rc == SQLITE_DONE) return not_found("collection '" + id + "' not found");
  if (rc != SQLITE_ROW) return db_->err(rc, "reading a collection");
  return CollectionInfo{q.text(0), q.text(1), q.opt_text(2), q.i64(3), int(q.i64(4))};
}

Result<CollectionInfo> Library::chat_collection(const std::string& chat_id) {
  if (chat_id.empty() || chat_id.size() > kMaxNameBytes) return invalid_argument("invalid chat id");
  std::lock_guard<std::mutex> lk(mu_);
  {
    Query q(db_->stmt("SELECT id FROM collections WHERE chat_id = ?1"));
    q.bind(1, chat_id);
    const int rc = q.step();
    if (rc == SQLITE_ROW) {
      const std::string id = q.text(0);
      return read_collection(id);
    }
    if (rc != SQLITE_DONE) return db_->err(rc, "reading a collection");
  }
  const std::string id = db::random_uuid(rng_);
  Query q(
      db_->stmt("INSERT INTO collections (id, name, chat_id, created_at) VALUES (?1, '', ?2, ?3)"));
  q.bind(1, id).bind(2, chat_id).bind(3, db::system_ms());
  HEARTH_SQL_OK(q, "creating a collection");
  return read_collection(id);
}

Result<std::optional<std::string>> Library::find_chat_collection(const std::string& chat_id) {
  std::lock_guard<std::mutex> lk(mu_);
  Query q(db_->stmt("SELECT id FROM collections WHERE chat_id = ?1"));
  q.bind(1, chat_id);
  const int rc = q.step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(q.text(0));
  if (rc != SQLITE_DONE) return db_->err(rc, "reading a collection");
  return std::optional<std::string>();
}

Result<CollectionInfo> Library::create_collection(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameBytes)
    return invalid_argument("a collection name must have 1 to " + std::to_string(kMaxNameBytes) +
                            " bytes");
  std::lock_guard<std::mutex> lk(mu_);
  const std::string id = db::random_uuid(rng_);
  Query q(db_->stmt("INSERT INTO collections (id, name, created_at) VALUES (?1, ?2, ?3)"));
  q.bind(1, id).bind(2, name).bind(3, db::system_ms());
  const int rc = q.step();
  if ((rc & 0xFF) == SQLITE_CONSTRAINT)
    return invalid_argument("a collection named '" + name + "' exists");
  if (rc != SQLITE_DONE) return db_->err(rc, "creating a collection");
  return read_collection(id);
}

Result<CollectionInfo> Library::collection(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  return read_collection(id);
}

Result<std::vector<CollectionInfo>> Library::named_collections() {
  std::lock_guard<std::mutex> lk(mu_);
  Query q(
      db_->stmt("SELECT c.id, c.name, c.chat_id, c.created_at, "
                "(SELECT count(*) FROM documents d WHERE d.collection_id = c.id) "
                "FROM collections c WHERE c.chat_id IS NULL ORDER BY c.name"));
  std::vector<CollectionInfo> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW)
    out.push_back({q.text(0), q.text(1), q.opt_text(2), q.i64(3), int(q.i64(4))});
  if (rc != SQLITE_DONE) return db_->err(rc, "listing collections");
  return out;
}

Status Library::delete_collection(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  Query q(db_->stmt("DELETE FROM collections WHERE id = ?1"));
  q.bind(1, id);
  HEARTH_SQL_OK(q, "deleting a collection");
  if (db_->changes() == 0) return not_found("collection '" + id + "' not found");
  return Status::ok();
}

Result<DocumentInfo> Library::add_document(const std::string& collection_id,
                                           const std::string& name, const std::string& kind,
                                           std::string_view bytes, const std::string& embed_model) {
  if (name.empty() || name.size() > kMaxNameBytes)
    return invalid_argument("a document name must have 1 to " + std::to_string(kMaxNameBytes) +
                            " bytes");
  std::lock_guard<std::mutex> lk(mu_);
  HEARTH_RETURN_IF_ERROR(read_collection(collection_id).status());
  const std::string id = db::random_uuid(rng_);
  const int64_t now = db::system_ms();
  Tx tx(db_->raw());
  if (tx.begin_rc() != SQLITE_OK) return db_->err(tx.begin_rc(), "adding a document");
  {
    Query q(db_->stmt(
        "INSERT INTO documents (id, collection_id, name, kind, bytes, sha256, status, "
        "embed_model, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?8, ?7, "
        "?7)"));
    q.bind(1, id).bind(2, collection_id).bind(3, name).bind(4, kind);
    q.bind(5, int64_t(bytes.size())).bind(6, sha256_hex(bytes)).bind(7, now).bind(8, embed_model);
    HEARTH_SQL_OK(q, "adding a document");
  }
  {
    Query q(db_->stmt("INSERT INTO uploads (doc_id, data) VALUES (?1, ?2)"));
    q.bind(1, id).bind_blob(2, bytes.data(), bytes.size());
    HEARTH_SQL_OK(q, "storing an upload");
  }
  if (int rc = tx.commit(); rc != SQLITE_OK) return db_->err(rc, "adding a document");
  return read_document(id);
}

Result<DocumentInfo> Library::read_document(const std::string& id) {
  Query q(db_->stmt(std::string("SELECT ") + kDocCols + " FROM documents WHERE id = ?1"));
  q.bind(1, id);
  const int rc = q.step();
  if (rc == SQLITE_DONE) return not_found("document '" + id + "' not found");
  if (rc != SQLITE_ROW) return db_->err(rc, "reading a document");
  return doc_row(q);
}

Result<DocumentInfo> Library::document(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  return read_document(id);
}

Result<std::vector<DocumentInfo>> Library::documents(std::span<const std::string> collection_ids) {
  std::lock_guard<std::mutex> lk(mu_);
  Query q(db_->stmt(std::string("SELECT ") + kDocCols +
                    " FROM documents WHERE collection_id IN (SELECT value FROM json_each(?1)) "
                    "ORDER BY seq"));
  q.bind(1, json_ids(collection_ids));
  std::vector<DocumentInfo> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back(doc_row(q));
  if (rc != SQLITE_DONE) return db_->err(rc, "listing documents");
  return out;
}

Status Library::delete_document(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  Query q(db_->stmt("DELETE FROM documents WHERE id = ?1"));
  q.bind(1, id);
  HEARTH_SQL_OK(q, "deleting a document");
  if (db_->changes() == 0) return not_found("document '" + id + "' not found");
  return Status::ok();
}

Result<std::vector<std::string>> Library::unfinished() {
  std::lock_guard<std::mutex> lk(mu_);
  Query q(
      db_->stmt("SELECT id FROM documents WHERE status IN ('queued', 'extracting', 'embedding') "
                "ORDER BY seq"));
  std::vector<std::string> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back(q.text(0));
  if (rc != SQLITE_DONE) return db_->err(rc, "listing documents");
  return out;
}

Status Library::touch(const std::string& doc_id, const std::string& status) {
  Query q(db_->stmt("UPDATE documents SET status = ?2, updated_at = ?3 WHERE id = ?1"));
  q.bind(1, doc_id).bind(2, status).bind(3, db::system_ms());
  HEARTH_SQL_OK(q, "updating a document");
  if (db_->changes() == 0) return not_found("document '" + doc_id + "' not found");
  return Status::ok();
}

Result<std::string> Library::take_upload(const std::string& doc_id) {
  std::lock_guard<std::mutex> lk(mu_);
  std::string data;
  {
    Query q(db_->stmt("SELECT data FROM uploads WHERE doc_id = ?1"));
    q.bind(1, doc_id);
    const int rc = q.step();
    if (rc == SQLITE_DONE) return not_found("document '" + doc_id + "' has no upload left");
    if (rc != SQLITE_ROW) return db_->err(rc, "reading an upload");
    const auto b = q.blob(0);
    data.assign(reinterpret_cast<const char*>(b.data()), b.size());
  }
  HEARTH_RETURN_IF_ERROR(touch(doc_id, "extracting"));
  return data;
}

Status Library::set_chunks(const std::string& doc_id, const std::vector<Chunk>& chunks,
                           const std::string& embed_model) {
  std::lock_guard<std::mutex> lk(mu_);
  Tx tx(db_->raw());
  if (tx.begin_rc() != SQLITE_OK) return db_->err(tx.begin_rc(), "storing chunks");
  HEARTH_RETURN_IF_ERROR(read_document(doc_id).status());
  {
    // A resumed run may have stored some before it stopped.
    Query q(db_->stmt("DELETE FROM chunks WHERE doc_id = ?1"));
    q.bind(1, doc_id);
    HEARTH_SQL_OK(q, "storing chunks");
  }
  int64_t tokens = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const Chunk& c = chunks[i];
    Query q(
        db_->stmt("INSERT INTO chunks (doc_id, seq, headings, text, begin_at, end_at, tokens) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    q.bind(1, doc_id).bind(2, int64_t(i)).bind(3, c.headings).bind(4, c.text);
    q.bind(5, int64_t(c.begin)).bind(6, int64_t(c.end)).bind(7, int64_t(c.tokens));
    HEARTH_SQL_OK(q, "storing chunks");
    tokens += int64_t(c.tokens);
  }
  {
    Query q(db_->stmt("DELETE FROM uploads WHERE doc_id = ?1"));
    q.bind(1, doc_id);
    HEARTH_SQL_OK(q, "storing chunks");
  }
  {
    const bool ready = embed_model.empty() || chunks.empty();
    Query q(
        db_->stmt("UPDATE documents SET status = ?2, chunks = ?3, embedded = 0, tokens = ?4, "
                  "embed_model = ?5, dim = 0, error = '', updated_at = ?6 WHERE id = ?1"));
    q.bind(1, doc_id).bind(2, ready ? "ready" : "embedding").bind(3, int64_t(chunks.size()));
    q.bind(4, tokens).bind(5, embed_model).bind(6, db::system_ms());
    HEARTH_SQL_OK(q, "storing chunks");
  }
  if (int rc = tx.commit(); rc != SQLITE_OK) return db_->err(rc, "storing chunks");
  return Status::ok();
}

Result<std::vector<std::pair<int64_t, std::string>>> Library::unembedded(const std::string& doc_id,
                                                                         int limit) {
  std::lock_guard<std::mutex> lk(mu_);
  Query q(db_->stmt(
      "SELECT id, text FROM chunks WHERE doc_id = ?1 AND vec IS NULL ORDER BY seq LIMIT ?2"));
  q.bind(1, doc_id).bind(2, limit);
  std::vector<std::pair<int64_t, std::string>> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.emplace_back(q.i64(0), q.text(1));
  if (rc != SQLITE_DONE) return db_->err(rc, "reading chunks");
  return out;
}

Status Library::set_vectors(const std::string& doc_id, std::span<const int64_t> ids,
                            const std::vector<std::vector<float>>& vectors) {
  if (ids.size() != vectors.size()) return invalid_argument("one vector per chunk is needed");
  if (vectors.empty()) return Status::ok();
  const size_t dim = vectors[0].size();
  if (dim == 0) return invalid_argument("empty embedding");
  std::lock_guard<std::mutex> lk(mu_);
  Tx tx(db_->raw());
  if (tx.begin_rc() != SQLITE_OK) return db_->err(tx.begin_rc(), "storing embeddings");
  HEARTH_ASSIGN_OR_RETURN(DocumentInfo d, read_document(doc_id));
  if (d.dim != 0 && size_t(d.dim) != dim)
    return invalid_argument("embedding size changed within a document");
  int64_t stored = 0;
  std::vector<float> v;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (vectors[i].size() != dim) return invalid_argument("embeddings of different sizes");
    v = vectors[i];
    double n = 0;
    for (float x : v) n += double(x) * x;
    if (!(n > 0) || !std::isfinite(n))
      return invalid_argument("an embedding is zero or not finite");
    const float inv = float(1.0 / std::sqrt(n));
    for (float& x : v) x *= inv;
    Query q(db_->stmt("UPDATE chunks SET vec = ?3 WHERE id = ?2 AND doc_id = ?1 AND vec IS NULL"));
    q.bind(1, doc_id).bind(2, ids[i]).bind_blob(3, v.data(), v.size() * sizeof(float));
    HEARTH_SQL_OK(q, "storing embeddings");
    stored += db_->changes();
  }
  {
    Query q(db_->stmt(
        "UPDATE documents SET embedded = embedded + ?2, dim = ?3, updated_at = ?4, "
        "status = CASE WHEN embedded + ?2 >= chunks THEN 'ready' ELSE status END WHERE id = ?1"));
    q.bind(1, doc_id).bind(2, stored).bind(3, int64_t(dim)).bind(4, db::system_ms());
    HEARTH_SQL_OK(q, "storing embeddings");
  }
  if (int rc = tx.commit(); rc != SQLITE_OK) return db_->err(rc, "storing embeddings");
  return Status::ok();
}

Status Library::fail(const std::string& doc_id, const std::string& why) {
  std::lock_guard<std::mutex> lk(mu_);
  Query q(db_->stmt(
      "UPDATE documents SET status = 'error', error = ?2, updated_at = ?3 WHERE id = ?1"));
  q.bind(1, doc_id).bind(2, why.substr(0, 2000)).bind(3, db::system_ms());
  HEARTH_SQL_OK(q, "updating a document");
  // The upload is kept no longer: it did not extract, and a retry is a new upload.
  Query u(db_->stmt("DELETE FROM uploads WHERE doc_id = ?1"));
  u.bind(1, doc_id);
  HEARTH_SQL_OK(u, "updating a document");
  return Status::ok();
}

Result<std::vector<Hit>> Library::keyword(const std::string& query,
                                          std::span<const std::string> doc_ids, int limit) {
  const std::string match = fts_any(query);
  if (match.empty() || doc_ids.empty()) return std::vector<Hit>{};
  std::lock_guard<std::mutex> lk(mu_);
  Query q(db_->stmt(
      "SELECT f.rowid, bm25(chunks_fts) FROM chunks_fts f JOIN chunks c ON c.id = f.rowid "
      "JOIN documents d ON d.id = c.doc_id "
      "WHERE chunks_fts MATCH ?1 AND d.status = 'ready' "
      "AND c.doc_id IN (SELECT value FROM json_each(?2)) "
      "ORDER BY bm25(chunks_fts), f.rowid LIMIT ?3"));
  q.bind(1, match).bind(2, json_ids(doc_ids)).bind(3, limit);
  std::vector<Hit> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back({q.i64(0), -q.f64(1)});
  if (rc != SQLITE_DONE) return db_->err(rc, "searching documents");
  return out;
}

Result<std::vector<Hit>> Library::similar(const std::string& model,
                                          std::span<const float> query_vec,
                                          std::span<const std::string> doc_ids, int limit) {
  if (doc_ids.empty() || query_vec.empty()) return std::vector<Hit>{};
  std::vector<int64_t> ids;
  std::vector<float> vecs;
  {
    std::lock_guard<std::mutex> lk(mu_);
    Query q(db_->stmt(
        "SELECT c.id, c.vec FROM chunks c JOIN documents d ON d.id = c.doc_id "
        "WHERE d.status = 'ready' AND d.embed_model = ?1 AND d.dim = ?2 AND c.vec IS NOT NULL "
        "AND c.doc_id IN (SELECT value FROM json_each(?3))"));
    q.bind(1, model).bind(2, int64_t(query_vec.size())).bind(3, json_ids(doc_ids));
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      const auto b = q.blob(1);
      if (b.size() != query_vec.size() * sizeof(float)) continue;
      ids.push_back(q.i64(0));
      const size_t at = vecs.size();
      vecs.resize(at + query_vec.size());
      std::memcpy(vecs.data() + at, b.data(), b.size());
    }
    if (rc != SQLITE_DONE) return db_->err(rc, "reading embeddings");
  }
  return top_k_cosine(query_vec, vecs, ids, query_vec.size(), size_t(limit));
}

Result<std::vector<Passage>> Library::passages(std::span<const int64_t> chunk_ids) {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<Passage> out;
  for (int64_t id : chunk_ids) {
    Query q(
        db_->stmt("SELECT c.id, c.doc_id, d.name, c.headings, c.text, c.tokens FROM chunks c "
                  "JOIN documents d ON d.id = c.doc_id WHERE c.id = ?1"));
    q.bind(1, id);
    const int rc = q.step();
    if (rc == SQLITE_DONE) continue;  // deleted meanwhile
    if (rc != SQLITE_ROW) return db_->err(rc, "reading passages");
    out.push_back({q.i64(0), q.text(1), q.text(2), q.text(3), q.text(4), int(q.i64(5)), 0.0});
  }
  return out;
}

}  // namespace hearth::rag
