#include "db/sqlite.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace hearth::db {

// ---- Query

Query::Query(sqlite3_stmt* s) : s_(s), rc_(s ? SQLITE_OK : SQLITE_ERROR) {}

Query::~Query() {
  if (s_) {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
}

Query& Query::bind(int i, std::string_view v) {
  if (s_) sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Query& Query::bind(int i, const std::optional<std::string>& v) {
  if (!v) return bind_null(i);
  return bind(i, std::string_view(*v));
}

Query& Query::bind(int i, int64_t v) {
  if (s_) sqlite3_bind_int64(s_, i, v);
  return *this;
}

Query& Query::bind(int i, double v) {
  if (s_) sqlite3_bind_double(s_, i, v);
  return *this;
}

Query& Query::bind_blob(int i, const void* p, size_t n) {
  if (s_) sqlite3_bind_blob64(s_, i, n ? p : "", n, SQLITE_TRANSIENT);
  return *this;
}

Query& Query::bind_null(int i) {
  if (s_) sqlite3_bind_null(s_, i);
  return *this;
}

int Query::step() {
  if (!s_) return rc_;
  rc_ = sqlite3_step(s_);
  return rc_;
}

std::string Query::text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
  return p ? std::string(p, size_t(sqlite3_column_bytes(s_, col))) : std::string();
}

std::optional<std::string> Query::opt_text(int col) const {
  if (sqlite3_column_type(s_, col) == SQLITE_NULL) return std::nullopt;
  return text(col);
}

int64_t Query::i64(int col) const {
  return sqlite3_column_int64(s_, col);
}
double Query::f64(int col) const {
  return sqlite3_column_double(s_, col);
}
bool Query::is_null(int col) const {
  return sqlite3_column_type(s_, col) == SQLITE_NULL;
}

std::span<const uint8_t> Query::blob(int col) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s_, col));
  return {p, p ? size_t(sqlite3_column_bytes(s_, col)) : 0};
}

// ---- Tx

Tx::Tx(sqlite3* db) : db_(db) {
  rc_ = sqlite3_exec(db_, "BEGIN IMMEDIATE", 0, 0, 0);
}

Tx::~Tx() {
  if (rc_ == SQLITE_OK && !done_) sqlite3_exec(db_, "ROLLBACK", 0, 0, 0);
}

int Tx::commit() {
  done_ = true;
  const int rc = sqlite3_exec(db_, "COMMIT", 0, 0, 0);
  if (rc != SQLITE_OK) sqlite3_exec(db_, "ROLLBACK", 0, 0, 0);
  return rc;
}

// ---- Database

struct Database::Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

Database::Database(sqlite3* db, std::string path, std::string what)
    : db_(db), path_(std::move(path)), what_(std::move(what)) {}

Database::~Database() {
  stmts_.clear();  // finalized before the connection closes
  sqlite3_close(db_);
}

Result<std::unique_ptr<Database>> Database::open(const std::string& path, std::string what,
                                                 std::span<const char* const> migrations) {
  if (path.empty()) return invalid_argument(what + ": no database path");
  // Created here so it is private from the start: SQLite gives its -wal and -shm files the
  // database file's mode.
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return Status(StatusCode::kIo, what + ": cannot open " + path + ": " + std::strerror(errno));
  ::close(fd);
  sqlite3* raw = nullptr;
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close(raw);
    return Status(StatusCode::kIo, what + ": cannot open " + path + ": " + msg);
  }
  std::unique_ptr<Database> d(new Database(raw, path, std::move(what)));
  sqlite3_extended_result_codes(raw, 1);
  // Another server on the same file holds the write lock for milliseconds at a time.
  sqlite3_busy_timeout(raw, 5000);
  HEARTH_RETURN_IF_ERROR(d->exec("PRAGMA foreign_keys = ON"));
  // WAL: readers never wait for the writer. NORMAL sync is durable against a crashed process;
  // a power cut may lose the last commits, never corrupt the file.
  HEARTH_RETURN_IF_ERROR(d->exec("PRAGMA journal_mode = WAL"));
  HEARTH_RETURN_IF_ERROR(d->exec("PRAGMA synchronous = NORMAL"));
  HEARTH_RETURN_IF_ERROR(d->migrate(migrations));
  return d;
}

Status Database::exec(const char* sql) {
  char* msg = nullptr;
  const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &msg);
  sqlite3_free(msg);
  if (rc != SQLITE_OK) return err(rc, "opening " + path_);
  return Status::ok();
}

Status Database::err(int rc, const std::string& doing) const {
  const std::string msg = what_ + ": " + doing + ": " + sqlite3_errmsg(db_);
  switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status(StatusCode::kUnavailable, msg + " (another process holds the database)");
    case SQLITE_FULL:
      return Status(StatusCode::kNoSpace, msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return corrupt(msg);
    case SQLITE_TOOBIG:
      return Status(StatusCode::kTooLarge, msg);
    case SQLITE_CONSTRAINT:
      return invalid_argument(msg);
    default:
      return Status(StatusCode::kIo, msg);
  }
}

int64_t Database::changes() const {
  return sqlite3_changes64(db_);
}
int64_t Database::last_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}

sqlite3_stmt* Database::stmt(const std::string& sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return it->second->s;
  auto st = std::make_unique<Stmt>();
  if (sqlite3_prepare_v3(db_, sql.c_str(), int(sql.size()), SQLITE_PREPARE_PERSISTENT, &st->s,
                         nullptr) != SQLITE_OK)
    return nullptr;
  sqlite3_stmt* s = st->s;
  stmts_.emplace(sql, std::move(st));
  return s;
}

Status Database::migrate(std::span<const char* const> migrations) {
  const int target = int(migrations.size());
  auto version = [&]() -> Result<int> {
    Query q(stmt("PRAGMA user_version"));
    if (q.step() != SQLITE_ROW) return err(q.rc(), "reading the schema version of " + path_);
    return int(q.i64(0));
  };
  HEARTH_ASSIGN_OR_RETURN(int v, version());
  if (v == target) return Status::ok();
  if (v > target)
    return unsupported(what_ + ": " + path_ + " has schema version " + std::to_string(v) +
                       ", written by a newer hearth (this one reads up to " +
                       std::to_string(target) + ")");
  Tx tx(db_);
  if (tx.begin_rc() != SQLITE_OK) return err(tx.begin_rc(), "migrating " + path_);
  HEARTH_ASSIGN_OR_RETURN(v, version());  // another process may have migrated meanwhile
  if (v == 0) {
    Query q(stmt("SELECT count(*) FROM sqlite_master"));
    if (q.step() != SQLITE_ROW) return err(q.rc(), "reading " + path_);
    if (q.i64(0) != 0)
      return corrupt(what_ + ": " + path_ + " is an SQLite database of something else");
  }
  for (; v < target; ++v) {
    char* msg = nullptr;
    const int rc = sqlite3_exec(db_, migrations[size_t(v)], nullptr, nullptr, &msg);
    sqlite3_free(msg);
    if (rc != SQLITE_OK)
      return err(rc, "migrating " + path_ + " to schema version " + std::to_string(v + 1));
  }
  const std::string set = "PRAGMA user_version = " + std::to_string(target);
  if (int rc = sqlite3_exec(db_, set.c_str(), 0, 0, 0); rc != SQLITE_OK)
    return err(rc, "migrating " + path_);
  if (int rc = tx.commit(); rc != SQLITE_OK) return err(rc, "migrating " + path_);
  return Status::ok();
}

Status make_private_dirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    const std::string part = dir.substr(0, i);
    if (::mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      return Status(StatusCode::kIo, "cannot create " + part + ": " + std::strerror(errno));
  }
  return Status::ok();
}

std::string random_uuid(std::random_device& rng) {
  uint8_t b[16];
  for (int i = 0; i < 16; i += 4) {
    const uint32_t r = rng();
    std::memcpy(b + i, &r, 4);
  }
  b[6] = (b[6] & 0x0F) | 0x40;
  b[8] = (b[8] & 0x3F) | 0x80;
  static const char hex[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    s += hex[b[i] >> 4];
    s += hex[b[i] & 15];
  }
  return s;
}

int64_t system_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace hearth::db
