#include "web/history.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "base/json_depth.h"
#include "base/utf8.h"
#include "db/sqlite.h"

namespace hearth::web {

using db::Query;
using db::Tx;

namespace {

// Version 1. Both tables have an INTEGER PRIMARY KEY because FTS5's external content refers to
// rows by rowid, and a rowid that is not a declared column may change on VACUUM. A message's
// parent is checked at commit (deferred): a chat's messages are deleted in one statement,
// children and parents in whatever order. It has no ON DELETE action of its own: a cascade
// through the tree would recurse once per level and fail on long conversations (SQLite's
// trigger depth limit); subtrees are deleted explicitly instead.
const char* const kSchemaV1 = R"sql(
CREATE TABLE chats (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  title TEXT NOT NULL DEFAULT '',
  model TEXT NOT NULL DEFAULT '',
  system TEXT NOT NULL DEFAULT '',
  options TEXT NOT NULL DEFAULT '{}',
  current_leaf TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX chats_by_update ON chats(updated_at, id);
CREATE TABLE messages (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
  parent_id TEXT REFERENCES messages(id) DEFERRABLE INITIALLY DEFERRED,
  role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
  content TEXT NOT NULL DEFAULT '',
  thinking TEXT NOT NULL DEFAULT '',
  tool_calls TEXT,
  model TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  extra TEXT
);
CREATE INDEX messages_by_chat ON messages(chat_id, seq);
CREATE INDEX messages_by_parent ON messages(parent_id);
CREATE VIRTUAL TABLE chats_fts USING fts5(title, content='chats', content_rowid='seq',
  tokenize='unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE messages_fts USING fts5(content, content='messages', content_rowid='seq',
  tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER chats_fts_insert AFTER INSERT ON chats BEGIN
  INSERT INTO chats_fts(rowid, title) VALUES (new.seq, new.title);
END;
CREATE TRIGGER chats_fts_delete AFTER DELETE ON chats BEGIN
  INSERT INTO chats_fts(chats_fts, rowid, title) VALUES ('delete', old.seq, old.title);
END;
CREATE TRIGGER chats_fts_update AFTER UPDATE OF title ON chats
WHEN old.title IS NOT new.title BEGIN
  INSERT INTO chats_fts(chats_fts, rowid, title) VALUES ('delete', old.seq, old.title);
  INSERT INTO chats_fts(rowid, title) VALUES (new.seq, new.title);
END;
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts(rowid, content) VALUES (new.seq, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages
WHEN old.content IS NOT new.content BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.seq, old.content);
  INSERT INTO messages_fts(rowid, content) VALUES (new.seq, new.content);
END;
)sql";

// migrations[v - 1] turns schema v - 1 into v.
const char* const kMigrations[] = {kSchemaV1};
static_assert(std::size(kMigrations) == kSchemaVersion);

const char* const kChatCols =
    "id, title, model, system, options, current_leaf, created_at, updated_at";
const char* const kMessageCols =
    "id, parent_id, role, content, thinking, tool_calls, model, created_at, extra";

// The subtree under (and including) message ?1.
const char* const kSubtree =
    "WITH RECURSIVE sub(id) AS (SELECT ?1 UNION ALL "
    "SELECT m.id FROM messages m JOIN sub ON m.parent_id = sub.id) ";

Chat chat_row(const Query& q) {
  Chat c;
  c.id = q.text(0);
  c.title = q.text(1);
  c.model = q.text(2);
  c.system = q.text(3);
  c.options = q.text(4);
  c.current_leaf = q.opt_text(5);
  c.created_at = q.i64(6);
  c.updated_at = q.i64(7);
  return c;
}

Message message_row(const Query& q) {
  Message m;
  m.id = q.text(0);
  m.parent_id = q.opt_text(1);
  m.role = q.text(2);
  m.content = q.text(3);
  m.thinking = q.text(4);
  m.tool_calls = q.opt_text(5);
  m.model = q.text(6);
  m.created_at = q.i64(7);
  m.extra = q.opt_text(8);
  return m;
}

// ---- Cursors: base64url of a small JSON array, opaque to clients. ["u", updated_at, id] pages
// the list; ["r", rank, id] pages a search (rank: FTS5's bm25, lower is better).

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url(const std::string& in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kB64[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kB64[(acc << (6 - bits)) & 63];
  return out;
}

std::optional<std::string> unb64url(const std::string& in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    const char* p = ch ? std::strchr(kB64, ch) : nullptr;
    if (!p) return std::nullopt;
    acc = (acc << 6) | uint32_t(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += char((acc >> bits) & 0xFF);
    }
  }
  return out;
}

struct Cursor {
  char kind = 0;  // 'u' or 'r'
  int64_t updated_at = 0;
  double rank = 0;
  std::string id;
};

std::string encode_cursor(const Cursor& c) {
  json j =
      c.kind == 'u' ? json::array({"u", c.updated_at, c.id}) : json::array({"r", c.rank, c.id});
  return b64url(j.dump());
}

Result<Cursor> decode_cursor(const std::string& s, char kind) {
  const Status bad = invalid_argument("invalid cursor");
  if (s.size() > 400) return bad;
  auto raw = unb64url(s);
  if (!raw) return bad;
  json j = parse_json_bounded<json>(*raw, nullptr, 2);
  if (j.is_discarded() || !j.is_array() || j.size() != 3 || !j[0].is_string() || !j[2].is_string())
    return bad;
  Cursor c;
  const std::string k = j[0].get<std::string>();
  if (k.size() != 1 || k[0] != kind)
    return invalid_argument(kind == 'r' ? "cursor does not belong to a search (q)"
                                        : "cursor belongs to a search: pass the same q");
  c.kind = kind;
  c.id = j[2].get<std::string>();
  if (kind == 'u') {
    if (!j[1].is_number_integer()) return bad;
    c.updated_at = j[1].get<int64_t>();
  } else {
    if (!j[1].is_number()) return bad;
    c.rank = j[1].get<double>();
  }
  return c;
}

// Ids this store hands out and keeps on import: they travel in URL paths unescaped.
bool plain_id(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  return true;
}

bool valid_role(const std::string& r) {
  return r == "user" || r == "assistant" || r == "system" || r == "tool";
}

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

// Parses JSON this store wrote (or null for absent / unreadable).
json stored_json(const std::optional<std::string>& text) {
  if (!text) return nullptr;
  json j = parse_json_bounded<json>(*text);
  return j.is_discarded() ? json(nullptr) : j;
}

Status check_message(const Message& m) {
  if (!valid_role(m.role))
    return invalid_argument("role must be one of user, assistant, system, tool (got '" +
                            m.role.substr(0, 40) + "')");
  HEARTH_RETURN_IF_ERROR(check_text("content", m.content, kMaxContentBytes));
  HEARTH_RETURN_IF_ERROR(check_text("thinking", m.thinking, kMaxContentBytes));
  HEARTH_RETURN_IF_ERROR(check_text("model", m.model, kMaxModelBytes));
  if (m.tool_calls)
    HEARTH_RETURN_IF_ERROR(check_text("tool_calls", *m.tool_calls, kMaxContentBytes));
  if (m.extra) HEARTH_RETURN_IF_ERROR(check_text("extra", *m.extra, kMaxContentBytes));
  return Status::ok();
}

Status check_chat(const std::string& title, const std::string& model, const std::string& system,
                  const std::string& options) {
  HEARTH_RETURN_IF_ERROR(check_title(title));
  HEARTH_RETURN_IF_ERROR(check_text("model", model, kMaxModelBytes));
  HEARTH_RETURN_IF_ERROR(check_text("system", system, kMaxContentBytes));
  HEARTH_RETURN_IF_ERROR(check_text("options", options, kMaxOptionsBytes));
  return Status::ok();
}

}  // namespace

// ---- Shared checks and forms.

Status check_text(const char* field, const std::string& s, size_t max_bytes) {
  if (s.size() > max_bytes)
    return invalid_argument(std::string("field '") + field + "' is longer than " +
                            std::to_string(max_bytes) + " bytes");
  return Status::ok();
}

Status check_title(const std::string& s) {
  if (s.size() > 4 * kMaxTitleChars || code_points(s) > kMaxTitleChars)
    return invalid_argument("field 'title' is longer than " + std::to_string(kMaxTitleChars) +
                            " characters");
  return Status::ok();
}

json chat_json(const Chat& c) {
  json o = stored_json(c.options);
  if (!o.is_object()) o = json::object();
  return {{"id", c.id},
          {"title", c.title},
          {"model", c.model},
          {"system", c.system},
          {"options", o},
          {"current_leaf", c.current_leaf ? json(*c.current_leaf) : json(nullptr)},
          {"created_at", c.created_at},
          {"updated_at", c.updated_at}};
}

json message_json(const Message& m) {
  return {{"id", m.id},
          {"parent_id", m.parent_id ? json(*m.parent_id) : json(nullptr)},
          {"role", m.role},
          {"content", m.content},
          {"thinking", m.thinking},
          {"tool_calls", stored_json(m.tool_calls)},
          {"model", m.model},
          {"created_at", m.created_at},
          {"extra", stored_json(m.extra)}};
}

std::string fts_query(const std::string& typed) {
  // Invalid UTF-8 (a query string may decode to anything) and control characters (a NUL would
  // end the FTS5 query text inside a quoted string) become separators.
  std::string clean;
  std::string_view rest = typed;
  size_t bad = 0;
  while (!utf8_well_formed(rest, &bad)) {
    clean.append(rest.substr(0, bad));
    clean += ' ';
    rest.remove_prefix(bad + 1);
  }
  clean.append(rest);
  std::string out;
  int terms = 0;
  size_t i = 0;
  while (i < clean.size() && terms < kMaxSearchTerms) {
    while (i < clean.size() && static_cast<unsigned char>(clean[i]) <= ' ') ++i;
    std::string term;
    while (i < clean.size() && static_cast<unsigned char>(clean[i]) > ' ') {
      if (clean[i] == '"') term += '"';  // "" is a quote inside an FTS5 string
      term += clean[i++];
    }
    if (term.empty()) continue;
    // A quoted string is never FTS5 syntax (AND, NEAR(, *, column filters are plain text inside
    // it); the trailing * makes it a prefix match, as search-as-you-type wants. A term with no
    // letters or digits is an empty phrase, which FTS5 leaves out of the AND.
    if (!out.empty()) out += ' ';
    out += '"' + term + "\"*";
    ++terms;
  }
  return out;
}

std::string snippet_html(const std::string& marked) {
  std::string out;
  bool open = false;
  for (char c : marked) {
    switch (c) {
      case '\x02':
        if (!open) out += "<mark>";
        open = true;
        break;
      case '\x03':
        if (open) out += "</mark>";
        open = false;
        break;
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  if (open) out += "</mark>";
  return out;
}

// ---- The store.

#define HEARTH_SQL_OK(q, what)                                          \
  do {                                                                  \
    const int _rc = (q).step();                                         \
    if (_rc != SQLITE_DONE && _rc != SQLITE_ROW) return err(_rc, what); \
  } while (0)

History::History(std::unique_ptr<db::Database> d, Options o)
    : db_(std::move(d)), opt_(std::move(o)) {}

History::~History() = default;

Result<std::unique_ptr<History>> History::open(const std::string& path, Options o) {
  HEARTH_ASSIGN_OR_RETURN(auto d, db::Database::open(path, "chat history", kMigrations));
  return std::unique_ptr<History>(new History(std::move(d), std::move(o)));
}

Status History::err(int rc, const std::string& what) const {
  return db_->err(rc, what);
}

sqlite3_stmt* History::stmt(const std::string& sql) {
  return db_->stmt(sql);
}

std::string History::new_id() {
  return db::random_uuid(rng_);
}

int64_t History::now() const {
  return opt_.clock ? opt_.clock() : db::system_ms();
}

Result<Chat> History::read_chat(const std::string& id) {
  Query q(stmt(std::string("SELECT ") + kChatCols + " FROM chats WHERE id = ?1"));
  q.bind(1, id);
  const int rc = q.step();
  if (rc == SQLITE_DONE) return not_found("chat '" + id + "' not found");
  if (rc != SQLITE_ROW) return err(rc, "reading a chat");
  return chat_row(q);
}

Result<ChatPage> History::list(int limit, const std::string& cursor, const std::string& query) {
  std::lock_guard<std::mutex> lk(mu_);
  if (limit <= 0) limit = kDefaultPage;
  limit = std::min(limit, kMaxPage);
  if (query.size() > kMaxSearchBytes)
    return invalid_argument("search text is longer than " + std::to_string(kMaxSearchBytes) +
                            " bytes");
  if (const std::string fq = fts_query(query); !fq.empty()) return search(limit, cursor, fq);
  std::optional<Cursor> after;
  if (!cursor.empty()) {
    HEARTH_ASSIGN_OR_RETURN(after, decode_cursor(cursor, 'u'));
  }
  // The range term on updated_at lets the index seek to the cursor instead of skipping rows.
  const std::string sql =
      std::string("SELECT id, title, model, created_at, updated_at FROM chats ") +
      (after ? "WHERE updated_at <= ?1 AND (updated_at < ?1 OR id < ?2) " : "") +
      "ORDER BY updated_at DESC, id DESC LIMIT ?3";
  Query q(stmt(sql));
  if (after) q.bind(1, after->updated_at).bind(2, after->id);
  q.bind(3, limit + 1);
  ChatPage page;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) {
    if (int(page.chats.size()) == limit) {
      const auto& last = page.chats.back();
      page.next = encode_cursor({'u', last.updated_at, 0, last.id});
      break;
    }
    page.chats.push_back({q.text(0), q.text(1), q.text(2), q.i64(3), q.i64(4), std::nullopt});
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) return err(rc, "listing chats");
  return page;
}

Result<ChatPage> History::search(int limit, const std::string& cursor, const std::string& fq) {
  std::optional<Cursor> after;
  if (!cursor.empty()) {
    HEARTH_ASSIGN_OR_RETURN(after, decode_cursor(cursor, 'r'));
  }
  // Each chat ranks by its best hit: a message or its title (a title hit counts double). The
  // bare columns next to min() come from that best row (SQLite's documented rule), so only the
  // page's snippets are computed, not one per hit.
  const std::string sql =
      "WITH hits(chat_id, r, src, rid) AS ("
      " SELECT m.chat_id, f.rank, 0, f.rowid FROM messages_fts f"
      " JOIN messages m ON m.seq = f.rowid WHERE messages_fts MATCH ?1"
      " UNION ALL"
      " SELECT c.id, f.rank * 2.0, 1, f.rowid FROM chats_fts f"
      " JOIN chats c ON c.seq = f.rowid WHERE chats_fts MATCH ?1),"
      " best AS (SELECT chat_id, min(r) AS r, src, rid FROM hits GROUP BY chat_id) "
      "SELECT c.id, c.title, c.model, c.created_at, c.updated_at, best.r, best.src, best.rid"
      " FROM best JOIN chats c ON c.id = best.chat_id" +
      std::string(after ? " WHERE best.r > ?2 OR (best.r = ?2 AND c.id > ?3)" : "") +
      " ORDER BY best.r, c.id LIMIT ?4";
  struct Hit {
    int src;
    int64_t rid;
    double rank;
  };
  std::vector<Hit> hits;
  ChatPage page;
  {
    Query q(stmt(sql));
    q.bind(1, fq);
    if (after) q.bind(2, after->rank).bind(3, after->id);
    q.bind(4, limit + 1);
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      if (int(page.chats.size()) == limit) {
        page.next = encode_cursor({'r', 0, hits.back().rank, page.chats.back().id});
        break;
      }
      page.chats.push_back({q.text(0), q.text(1), q.text(2), q.i64(3), q.i64(4), std::nullopt});
      hits.push_back({int(q.i64(6)), q.i64(7), q.f64(5)});
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) return err(rc, "searching chats");
  }
  for (size_t i = 0; i < hits.size(); ++i) {
    const char* table = hits[i].src ? "chats_fts" : "messages_fts";
    Query q(stmt(std::string("SELECT snippet(") + table + ", 0, char(2), char(3), '…', 12) FROM " +
                 table + " WHERE " + table + " MATCH ?1 AND rowid = ?2"));
    q.bind(1, fq).bind(2, hits[i].rid);
    const int rc = q.step();
    if (rc == SQLITE_ROW)
      page.chats[i].snippet = snippet_html(q.text(0));
    else if (rc != SQLITE_DONE)
      return err(rc, "searching chats");
  }
  return page;
}

Result<Chat> History::create_chat(const NewChat& c) {
  HEARTH_RETURN_IF_ERROR(check_chat(c.title, c.model, c.system, c.options));
  std::lock_guard<std::mutex> lk(mu_);
  Chat out;
  out.id = new_id();
  out.title = c.title;
  out.model = c.model;
  out.system = c.system;
  out.options = c.options;
  out.created_at = out.updated_at = now();
  Query q(
      stmt("INSERT INTO chats (id, title, model, system, options, created_at, updated_at) "
           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)"));
  q.bind(1, out.id).bind(2, out.title).bind(3, out.model).bind(4, out.system).bind(5, out.options);
  q.bind(6, out.created_at);
  HEARTH_SQL_OK(q, "creating a chat");
  return out;
}

Result<Chat> History::get_chat(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  return read_chat(id);
}

Result<std::vector<Message>> History::messages(const std::string& chat_id) {
  std::lock_guard<std::mutex> lk(mu_);
  HEARTH_RETURN_IF_ERROR(read_chat(chat_id).status());
  Query q(stmt(std::string("SELECT ") + kMessageCols +
               " FROM messages WHERE chat_id = ?1 ORDER BY seq"));
  q.bind(1, chat_id);
  std::vector<Message> out;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW) out.push_back(message_row(q));
  if (rc != SQLITE_DONE) return err(rc, "reading messages");
  return out;
}

Result<Chat> History::update_chat(const std::string& id, const ChatPatch& p) {
  std::lock_guard<std::mutex> lk(mu_);
  Tx tx(db_->raw());
  if (tx.begin_rc() != SQLITE_OK) return err(tx.begin_rc(), "updating a chat");
  HEARTH_ASSIGN_OR_RETURN(Chat c, read_chat(id));
  if (p.title) c.title = *p.title;
  if (p.model) c.model = *p.model;
  if (p.system) c.system = *p.system;
  if (p.options) c.options = *p.options;
  HEARTH_RETURN_IF_ERROR(check_chat(c.title, c.model, c.system, c.options));
  if (p.current_leaf) {
    if (*p.current_leaf) {
      Query q(stmt("SELECT 1 FROM messages WHERE id = ?1 AND chat_id = ?2"));
      q.bind(1, **p.current_leaf).bind(2, id);
      const int rc = q.step();
      if (rc == SQLITE_DONE)
        return invalid_argument("current_leaf '" + **p.current_leaf +
                                "' is not a message of this chat");
      if (rc != SQLITE_ROW) return err(rc, "updating a chat");
    }
    c.current_leaf = *p.current_leaf;
  }
  if (p.model || p.system || p.options) c.updated_at = now();
  {
    Query q(
        stmt("UPDATE chats SET title = ?2, model = ?3, system = ?4, options = ?5, "
             "current_leaf = ?6, updated_at = ?7 WHERE id = ?1"));
    q.bind(1, id).bind(2, c.title).bind(3, c.model).bind(4, c.system).bind(5, c.options);
    q.bind(6, c.current_leaf).bind(7, c.updated_at);
    HEARTH_SQL_OK(q, "updating a chat");
  }
  if (int rc = tx.commit(); rc != SQLITE_OK) return err(rc, "updating a chat");
  return c;
}

Status History::delete_chat(const std::string& id) {
  std::lock_guard<std::mutex> lk(mu_);
  Query q(stmt("DELETE FROM chats WHERE id = ?1"));
  q.bind(1, id);
  HEARTH_SQL_OK(q, "deleting a chat");
  if (db_->changes() == 0) return not_found("chat '" + id + "' not found");
  return Status::ok();
}

Status History::insert_message(const std::string& chat_id, const Message& m) {
  Query q(
      stmt("INSERT INTO messages (id, chat_id, parent_id, role, content, thinking, "
           "tool_calls, model, created_at, extra) "
           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
  q.bind(1, m.id).bind(2, chat_id).bind(3, m.parent_id).bind(4, m.role).bind(5, m.content);
  q.bind(6, m.thinking).bind(7, m.tool_calls).bind(8, m.model).bind(9, m.created_at);
  q.bind(10, m.extra);
  HEARTH_SQL_OK(q, "adding a message");
  return Status::ok();
}

Result<Message> History::add_message(const std::string& chat_id, const NewMessage& nm) {
  Message m;
  m.role = nm.role;
  m.content = nm.content;
  m.thinking = nm.thinking;
  m.model = nm.model;
  m.tool_calls = nm.tool_calls;
  m.extra = nm.extra;
  HEARTH_RETURN_IF_ERROR(check_message(m));
  std::lock_guard<std::mutex> lk(mu_);
  Tx tx(db_->raw());
  if (tx.begin_rc() != SQLITE_OK) return err(tx.begin_rc(), "adding a message");
  HEARTH_ASSIGN_OR_RETURN(Chat c, read_chat(chat_id));
  m.parent_id = nm.parent_id ? *nm.parent_id : c.current_leaf;
  if (m.parent_id) {
    Query q(stmt("SELECT chat_id FROM messages WHERE id = ?1"));
    q.bind(1, *m.parent_id);
    const int rc = q.step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return err(rc, "adding a message");
    if (rc == SQLITE_DONE || q.text(0) != chat_id)
      return invalid_argument("parent_id '" + *m.parent_id + "' is not a message of this chat");
  }
  m.id = new_id();
  m.created_at = now();
  HEARTH_RETURN_IF_ERROR(insert_message(chat_id, m));
  {
    Query q(stmt("UPDATE chats SET current_leaf = ?2, updated_at = ?3 WHERE id = ?1"));
    q.bind(1, chat_id).bind(2, m.id).bind(3, m.created_at);
    HEARTH_SQL_OK(q, "adding a message");
  }
  if (int rc = tx.commit(); rc != SQLITE_OK) return err(rc, "adding a message");
  return m;
}

Status History::delete_message(const std::string& chat_id, const std::string& message_id) {
  std::lock_guard<std::mutex> lk(mu_);
  Tx tx(db_->raw());
  if (tx.begin_rc() != SQLITE_OK) return err(tx.begin_rc(), "deleting a message");
  HEARTH_ASSIGN_OR_RETURN(Chat c, read_chat(chat_id));
  std::optional<std::string> parent;
  {
    Query q(stmt("SELECT parent_id FROM messages WHERE id = ?1 AND chat_id = ?2"));
    q.bind(1, message_id).bind(2, chat_id);
    const int rc = q.step();
    if (rc == SQLITE_DONE) return not_found("message '" + message_id + "' not found in this chat");
    if (rc != SQLITE_ROW) return err(rc, "deleting a message");
    parent = q.opt_text(0);
  }
  std::optional<std::string> leaf = c.current_leaf;
  if (leaf) {
    Query q(stmt(std::string(kSubtree) + "SELECT 1 FROM sub WHERE id = ?2"));
    q.bind(1, message_id).bind(2, *leaf);
    const int rc = q.step();
    if (rc == SQLITE_ROW)
      leaf = parent;
    else if (rc != SQLITE_DONE)
      return err(rc, "deleting a message");
  }
  {
    Query q(
        stmt(std::string("DELETE FROM messages WHERE id IN (") + kSubtree + "SELECT id FROM sub)"));
    q.bind(1, message_id);
    HEARTH_SQL_OK(q, "deleting a message");
  }
  {
    Query q(stmt("UPDATE chats SET current_leaf = ?2, updated_at = ?3 WHERE id = ?1"));
    q.bind(1, chat_id).bind(2, leaf).bind(3, now());
    HEARTH_SQL_OK(q, "deleting a message");
  }
  if (int rc = tx.commit(); rc != SQLITE_OK) return err(rc, "deleting a message");
  return Status::ok();
}

Result<json> History::export_all() {
  std::lock_guard<std::mutex> lk(mu_);
  // One read transaction: a consistent snapshot while other writes go on (WAL).
  if (int rc = sqlite3_exec(db_->raw(), "BEGIN", 0, 0, 0); rc != SQLITE_OK)
    return err(rc, "exporting chats");
  struct End {
    sqlite3* db;
    ~End() { sqlite3_exec(db, "COMMIT", 0, 0, 0); }
  } end{db_->raw()};
  json chats = json::array();
  std::map<std::string, size_t> at;  // chat id -> index in chats
  {
    Query q(stmt(std::string("SELECT ") + kChatCols + " FROM chats ORDER BY created_at, seq"));
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      json c = chat_json(chat_row(q));
      c["messages"] = json::array();
      at[c["id"].get<std::string>()] = chats.size();
      chats.push_back(std::move(c));
    }
    if (rc != SQLITE_DONE) return err(rc, "exporting chats");
  }
  {
    Query q(stmt(std::string("SELECT chat_id, ") + kMessageCols + " FROM messages ORDER BY seq"));
    int rc;
    while ((rc = q.step()) == SQLITE_ROW) {
      auto it = at.find(q.text(0));
      if (it == at.end()) continue;
      Message m;
      m.id = q.text(1);
      m.parent_id = q.opt_text(2);
      m.role = q.text(3);
      m.content = q.text(4);
      m.thinking = q.text(5);
      m.tool_calls = q.opt_text(6);
      m.model = q.text(7);
      m.created_at = q.i64(8);
      m.extra = q.opt_text(9);
      chats[it->second]["messages"].push_back(message_json(m));
    }
    if (rc != SQLITE_DONE) return err(rc, "exporting chats");
  }
  return json{{"version", 1}, {"chats", std::move(chats)}};
}

namespace {

// One chat of an import, checked, its messages parents first.
struct ImportChat {
  Chat chat;
  std::vector<Message> messages;
};

Result<std::string> opt_string(const json& o, const char* key, const std::string& where,
                               std::string def = "") {
  if (!o.contains(key) || o[key].is_null()) return def;
  if (!o[key].is_string())
    return invalid_argument(where + ": field '" + key + "' must be a string");
  return o[key].get<std::string>();
}

Result<std::optional<std::string>> opt_id(const json& o, const char* key,
                                          const std::string& where) {
  if (!o.contains(key) || o[key].is_null()) return std::optional<std::string>();
  if (!o[key].is_string())
    return invalid_argument(where + ": field '" + key + "' must be a string or null");
  return std::optional<std::string>(o[key].get<std::string>());
}

Result<int64_t> opt_time(const json& o, const char* key, const std::string& where, int64_t def) {
  if (!o.contains(key) || o[key].is_null()) return def;
  if (!o[key].is_number_integer() || o[key].get<int64_t>() < 0)
    return invalid_argument(where + ": field '" + key + "' must be a non-negative integer (ms)");
  return o[key].get<int64_t>();
}

// A JSON field stored as text: `is_kind` checks its type; null / absent: none.
Result<std::optional<std::string>> opt_json(const json& o, const char* key,
                                            const std::string& where, bool want_array) {
  if (!o.contains(key) || o[key].is_null()) return std::optional<std::string>();
  const json& v = o[key];
  if (want_array ? !v.is_array() : !v.is_object())
    return invalid_argument(where + ": field '" + key + "' must be " +
                            (want_array ? "an array" : "an object") + " or null");
  return std::optional<std::string>(v.dump(-1, ' ', false, json::error_handler_t::replace));
}

Result<ImportChat> parse_import_chat(const json& j, size_t index, int64_t now) {
  const std::string where = "chats[" + std::to_string(index) + "]";
  if (!j.is_object()) return invalid_argument(where + " must be an object");
  ImportChat ic;
  Chat& c = ic.chat;
  HEARTH_ASSIGN_OR_RETURN(c.id, opt_string(j, "id", where));
  HEARTH_ASSIGN_OR_RETURN(c.title, opt_string(j, "title", where));
  HEARTH_ASSIGN_OR_RETURN(c.model, opt_string(j, "model", where));
  HEARTH_ASSIGN_OR_RETURN(c.system, opt_string(j, "system", where));
  HEARTH_ASSIGN_OR_RETURN(auto options, opt_json(j, "options", where, false));
  c.options = options.value_or("{}");
  HEARTH_ASSIGN_OR_RETURN(c.current_leaf, opt_id(j, "current_leaf", where));
  HEARTH_ASSIGN_OR_RETURN(c.created_at, opt_time(j, "created_at", where, now));
  HEARTH_ASSIGN_OR_RETURN(c.updated_at, opt_time(j, "updated_at", where, c.created_at));
  if (Status s = check_chat(c.title, c.model, c.system, c.options); !s)
    return invalid_argument(where + ": " + s.message());
  if (!j.contains("messages") || j["messages"].is_null()) {
    if (c.current_leaf) return invalid_argument(where + ": current_leaf names no message");
    return ic;
  }
  if (!j["messages"].is_array()) return invalid_argument(where + ": 'messages' must be an array");
  std::vector<Message> msgs;
  std::unordered_set<std::string> ids;
  for (size_t k = 0; k < j["messages"].size(); ++k) {
    const json& mj = j["messages"][k];
    const std::string mw = where + ".messages[" + std::to_string(k) + "]";
    if (!mj.is_object()) return invalid_argument(mw + " must be an object");
    Message m;
    HEARTH_ASSIGN_OR_RETURN(m.id, opt_string(mj, "id", mw));
    HEARTH_ASSIGN_OR_RETURN(m.parent_id, opt_id(mj, "parent_id", mw));
    HEARTH_ASSIGN_OR_RETURN(m.role, opt_string(mj, "role", mw));
    HEARTH_ASSIGN_OR_RETURN(m.content, opt_string(mj, "content", mw));
    HEARTH_ASSIGN_OR_RETURN(m.thinking, opt_string(mj, "thinking", mw));
    HEARTH_ASSIGN_OR_RETURN(m.model, opt_string(mj, "model", mw));
    HEARTH_ASSIGN_OR_RETURN(m.tool_calls, opt_json(mj, "tool_calls", mw, true));
    HEARTH_ASSIGN_OR_RETURN(m.extra, opt_json(mj, "extra", mw, false));
    HEARTH_ASSIGN_OR_RETURN(m.created_at, opt_time(mj, "created_at", mw, c.created_at));
    if (Status s = check_message(m); !s) return invalid_argument(mw + ": " + s.message());
    if (m.id.empty()) m.id = "\x01" + std::to_string(k);  // unnamed: nothing refers to it
    if (!ids.insert(m.id).second) return invalid_argument(mw + ": duplicate message id");
    msgs.push_back(std::move(m));
  }
  // Parents first, otherwise in the export's order (so an export imports back unchanged): each
  // message is preceded by whichever of its ancestors are not placed yet.
  std::unordered_map<std::string, size_t> pos;
  for (size_t k = 0; k < msgs.size(); ++k) pos[msgs[k].id] = k;
  std::vector<int> state(msgs.size(), 0);  // 0 new, 1 on the current chain, 2 placed
  std::vector<size_t> order, chain;
  for (size_t k = 0; k < msgs.size(); ++k) {
    chain.clear();
    for (size_t x = k; state[x] != 2;) {
      if (state[x] == 1)
        return invalid_argument(where + ": the messages' parent_id links form a cycle");
      state[x] = 1;
      chain.push_back(x);
      if (!msgs[x].parent_id) break;
      auto it = pos.find(*msgs[x].parent_id);
      if (it == pos.end())
        return invalid_argument(where + ".messages[" + std::to_string(x) + "]: parent_id '" +
                                msgs[x].parent_id->substr(0, 80) +
                                "' is not a message of this chat");
      x = it->second;
    }
    for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
      state[*it] = 2;
      order.push_back(*it);
    }
  }
  if (c.current_leaf && !ids.count(*c.current_leaf))
    return invalid_argument(where + ": current_leaf '" + c.current_leaf->substr(0, 80) +
                            "' is not a message of this chat");
  for (size_t k : order) ic.messages.push_back(std::move(msgs[k]));
  return ic;
}

}  // namespace

Result<int> History::import_all(const json& doc) {
  if (!doc.is_object()) return invalid_argument("import: the body must be a JSON object");
  if (!doc.contains("version") || !doc["version"].is_number_integer() ||
      doc["version"].get<int64_t>() != 1)
    return invalid_argument("import: 'version' must be 1");
  if (!doc.contains("chats") || !doc["chats"].is_array())
    return invalid_argument("import: 'chats' must be an array");
  const int64_t t = now();
  std::vector<ImportChat> chats;
  chats.reserve(doc["chats"].size());
  for (size_t i = 0; i < doc["chats"].size(); ++i) {
    auto ic = parse_import_chat(doc["chats"][i], i, t);
    if (!ic) return invalid_argument("import: " + ic.status().message());
    chats.push_back(std::move(*ic));
  }
  std::lock_guard<std::mutex> lk(mu_);
  Tx tx(db_->raw());
  if (tx.begin_rc() != SQLITE_OK) return err(tx.begin_rc(), "importing chats");
  // An id is kept when it is plain and free (earlier chats of this import included: they are
  // already inserted); otherwise the item gets a new one.
  auto taken = [&](const char* table, const std::string& id) -> Result<bool> {
    if (!plain_id(id)) return true;
    Query q(stmt(std::string("SELECT 1 FROM ") + table + " WHERE id = ?1"));
    q.bind(1, id);
    const int rc = q.step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return err(rc, "importing chats");
    return rc == SQLITE_ROW;
  };
  for (auto& ic : chats) {
    Chat& c = ic.chat;
    HEARTH_ASSIGN_OR_RETURN(bool chat_taken, taken("chats", c.id));
    if (chat_taken) c.id = new_id();
    {
      Query q(
          stmt("INSERT INTO chats (id, title, model, system, options, created_at, "
               "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
      q.bind(1, c.id).bind(2, c.title).bind(3, c.model).bind(4, c.system).bind(5, c.options);
      q.bind(6, c.created_at).bind(7, c.updated_at);
      HEARTH_SQL_OK(q, "importing chats");
    }
    std::map<std::string, std::string> renamed;
    for (auto& m : ic.messages) {
      HEARTH_ASSIGN_OR_RETURN(bool msg_taken, taken("messages", m.id));
      const std::string old = m.id;
      if (msg_taken) m.id = new_id();
      renamed[old] = m.id;
      if (m.parent_id) m.parent_id = renamed.at(*m.parent_id);  // parents come first
      HEARTH_RETURN_IF_ERROR(insert_message(c.id, m));
    }
    if (c.current_leaf) {
      c.current_leaf = renamed.at(*c.current_leaf);
      Query q(stmt("UPDATE chats SET current_leaf = ?2 WHERE id = ?1"));
      q.bind(1, c.id).bind(2, c.current_leaf);
      HEARTH_SQL_OK(q, "importing chats");
    }
  }
  if (int rc = tx.commit(); rc != SQLITE_OK) return err(rc, "importing chats");
  return int(chats.size());
}

#undef HEARTH_SQL_OK

}  // namespace hearth::web
