// db/sqlite.h — what every SQLite-backed store here shares (the chat history, the document
// library): opening a private database file with the same settings, versioned migrations,
// prepared statements kept for the connection's life, errors as Status, transactions.
//
// A Database is one connection; callers serialize its use (each store holds a mutex).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace hearth::db {

// A prepared statement in use: bindings and the cursor are reset when it goes out of scope, so
// the cached statement is ready for its next use.
class Query {
 public:
  // A statement that failed to prepare (null) fails its first step; the connection's error
  // message still describes the failure then.
  explicit Query(sqlite3_stmt* s);
  ~Query();
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  Query& bind(int i, std::string_view v);
  Query& bind(int i, const char* v) { return bind(i, std::string_view(v)); }
  Query& bind(int i, const std::string& v) { return bind(i, std::string_view(v)); }
  Query& bind(int i, const std::optional<std::string>& v);
  Query& bind(int i, int64_t v);
  Query& bind(int i, int v) { return bind(i, int64_t(v)); }
  Query& bind(int i, double v);
  Query& bind_blob(int i, const void* p, size_t n);
  Query& bind_null(int i);
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int step();
  int rc() const { return rc_; }
  std::string text(int col) const;
  std::optional<std::string> opt_text(int col) const;
  int64_t i64(int col) const;
  double f64(int col) const;
  bool is_null(int col) const;
  // A BLOB column's bytes, valid until the next step.
  std::span<const uint8_t> blob(int col) const;

 private:
  sqlite3_stmt* s_;
  int rc_;
};

// BEGIN IMMEDIATE: the write lock is taken up front, so a read-then-write transaction cannot
// fail half way on another process's write. Rolled back unless committed.
class Tx {
 public:
  explicit Tx(sqlite3* db);
  ~Tx();
  int begin_rc() const { return rc_; }
  int commit();

 private:
  sqlite3* db_;
  int rc_;
  bool done_ = false;
};

class Database {
 public:
  // Opens (creating it with mode 0600 if needed) the database at `path` and brings its schema
  // to migrations.size() (PRAGMA user_version; migrations[v - 1] turns version v - 1 into v).
  // `what` names the store in every error message ("chat history"). A database with a newer
  // version is refused (Unsupported), as is an SQLite file holding something else (Corrupt).
  static Result<std::unique_ptr<Database>> open(const std::string& path, std::string what,
                                                std::span<const char* const> migrations);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }
  // The statement for `sql`, prepared once and kept; null if it does not prepare.
  sqlite3_stmt* stmt(const std::string& sql);
  Status exec(const char* sql);
  // A failed SQLite call as a Status: busy/locked → Unavailable, full → NoSpace, corrupt →
  // Corrupt, too big → TooLarge, constraint → InvalidArgument, else Io.
  Status err(int rc, const std::string& doing) const;
  // Rows changed by the last statement.
  int64_t changes() const;
  int64_t last_rowid() const;

 private:
  Database(sqlite3* db, std::string path, std::string what);
  Status migrate(std::span<const char* const> migrations);
  struct Stmt;
  sqlite3* db_;
  std::string path_, what_;
  std::unordered_map<std::string, std::unique_ptr<Stmt>> stmts_;
};

// Creates the missing folders of `dir` with mode 0700 (stores hold personal data); folders that
// exist keep their mode.
Status make_private_dirs(const std::string& dir);

// A random (version 4) UUID, lower-case hex with dashes.
std::string random_uuid(std::random_device& rng);
// Milliseconds since the epoch, by the system clock.
int64_t system_ms();

}  // namespace hearth::db
