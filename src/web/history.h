// web/history.h — the web chat's history: conversations as trees of messages in SQLite.
//
// A chat holds its settings (model, system prompt, options) and a tree of messages: editing a
// user message or regenerating an answer adds a sibling (same parent), and `current_leaf` names
// the branch the chat shows. Message contents and chat titles are indexed with FTS5 (external
// content tables kept in sync by triggers, so the text is stored once). The list is paged by
// keyset on (updated_at, id), so a deep page costs what the first one does.
//
// One connection (WAL, foreign keys on) guarded by a mutex: every call may come from any thread.
// Timestamps are milliseconds since the epoch. Errors: InvalidArgument (bad input, 400),
// NotFound (404), Unavailable (the database is locked by another process, 503), NoSpace,
// Corrupt/Io otherwise.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"
#include "db/sqlite.h"

struct sqlite3;
struct sqlite3_stmt;

namespace hearth::web {

using json = nlohmann::ordered_json;

// Input limits (bytes unless said otherwise): one message's text fields, a title in code points.
constexpr size_t kMaxContentBytes = size_t(1) << 20;
constexpr size_t kMaxTitleChars = 500;
constexpr size_t kMaxModelBytes = 1000;
constexpr size_t kMaxOptionsBytes = 64 << 10;
constexpr size_t kMaxSearchBytes = 1000;
constexpr int kMaxSearchTerms = 32;
constexpr int kDefaultPage = 50;
constexpr int kMaxPage = 200;
// The schema this code writes (PRAGMA user_version); older databases are migrated on open.
constexpr int kSchemaVersion = 1;

struct Chat {
  std::string id, title, model, system;
  std::string options = "{}";  // a JSON object, as text
  std::optional<std::string> current_leaf;
  int64_t created_at = 0, updated_at = 0;
};

struct Message {
  std::string id;
  std::optional<std::string> parent_id;  // none: a first message
  std::string role;                      // user, assistant, system, tool
  std::string content, thinking, model;
  std::optional<std::string> tool_calls;  // a JSON array, as text
  std::optional<std::string> extra;       // a JSON object, as text (citations, ...)
  int64_t created_at = 0;
};

struct ChatSummary {
  std::string id, title, model;
  int64_t created_at = 0, updated_at = 0;
  // Search only: where the query matched, HTML-escaped, matches in <mark>...</mark>.
  std::optional<std::string> snippet;
};

struct ChatPage {
  std::vector<ChatSummary> chats;
  std::optional<std::string> next;  // the cursor of the following page
};

struct NewChat {
  std::string title, model, system;
  std::string options = "{}";
};

// Fields left unset stay as they are; current_leaf set to nullopt inside clears it.
struct ChatPatch {
  std::optional<std::string> title, model, system, options;
  std::optional<std::optional<std::string>> current_leaf;
};

struct NewMessage {
  // Unset: under the chat's current leaf. Set to nullopt: a first message (a new root).
  std::optional<std::optional<std::string>> parent_id;
  std::string role, content, thinking, model;
  std::optional<std::string> tool_calls, extra;
};

class History {
 public:
  struct Options {
    std::function<int64_t()> clock;  // ms since the epoch; default: the system clock
  };
  // Opens (creating if needed, file mode 0600) and migrates the database at `path`.
  static Result<std::unique_ptr<History>> open(const std::string& path, Options o = {});
  ~History();
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  // Newest first; `cursor` from a previous page's `next` ("" for the first page). With a
  // non-empty `query`: chats whose title or messages match every term (each a prefix), best
  // match first, each with a snippet.
  Result<ChatPage> list(int limit, const std::string& cursor, const std::string& query);
  Result<Chat> create_chat(const NewChat& c);
  Result<Chat> get_chat(const std::string& id);
  // Every message of the chat, parents before children (insertion order).
  Result<std::vector<Message>> messages(const std::string& chat_id);
  // Changing the model, system prompt or options counts as activity (updated_at); a title or
  // branch change does not move the chat in the list.
  Result<Chat> update_chat(const std::string& id, const ChatPatch& p);
  Status delete_chat(const std::string& id);
  // Adds the message, makes it the chat's current leaf and bumps updated_at.
  Result<Message> add_message(const std::string& chat_id, const NewMessage& m);
  // Removes the message and everything under it; a current leaf inside moves to its parent.
  Status delete_message(const std::string& chat_id, const std::string& message_id);

  // {"version": 1, "chats": [{chat fields..., "messages": [...]}]}, oldest chat first.
  Result<json> export_all();
  // Adds every chat of an export (all or nothing); ids taken by existing chats or messages get
  // new ones. Returns the number of chats imported.
  Result<int> import_all(const json& doc);

  const std::string& path() const { return db_->path(); }

 private:
  History(std::unique_ptr<db::Database> d, Options o);
  sqlite3_stmt* stmt(const std::string& sql);  // prepared once, kept
  Status err(int rc, const std::string& what) const;
  std::string new_id();
  int64_t now() const;
  Result<Chat> read_chat(const std::string& id);
  Result<ChatPage> search(int limit, const std::string& cursor, const std::string& query);
  Status insert_message(const std::string& chat_id, const Message& m);

  std::unique_ptr<db::Database> db_;
  Options opt_;
  std::mutex mu_;
  std::random_device rng_;
};

// JSON forms the API and the export share.
json chat_json(const Chat& c);
json message_json(const Message& m);

// Checks shared by the API and the import: a string within `max` bytes (or code points for a
// title), a JSON object / array serialized within the limits.
Status check_text(const char* field, const std::string& s, size_t max_bytes);
Status check_title(const std::string& s);
// FTS5 query text for what a user typed: each term quoted (so no input is FTS5 syntax) and
// matched as a prefix; empty if nothing searchable is left.
std::string fts_query(const std::string& typed);
// A snippet with \x02/\x03 match markers as HTML: text escaped, matches in <mark>...</mark>.
std::string snippet_html(const std::string& marked);

}  // namespace hearth::web
