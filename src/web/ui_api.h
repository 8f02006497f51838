// web/ui_api.h — the web chat's REST API under /ui/api/: chats, their message trees, search,
// export and import, on top of web/history.h. JSON in and out; every error is a JSON
// {"error": "..."} with a 4xx (or 503 when the database cannot be opened), never a crash.
//
// The database opens on first use, so the server starts fast and a history that cannot be
// opened (a bad HEARTH_UI_DB, a full disk, a newer schema) only affects /ui/api; each request
// tries again. See docs/api.md for the endpoints.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "server/api.h"
#include "server/http.h"
#include "web/history.h"

namespace hearth::web {

class UiApi {
 public:
  // `db_path`: the SQLite file (its folder is created, mode 0700). `path_error`, when set,
  // is why there is no path: every request then answers 503 with it.
  explicit UiApi(std::string db_path, std::string path_error = "");
  // HEARTH_UI_DB, else ~/.hearth/ui.sqlite.
  static std::unique_ptr<UiApi> from_env();

  // Answers a request for /ui/api or below and returns true; false for any other path.
  bool handle(const server::HttpRequest& req, server::ResponderP res);

  // Largest body outside /ui/api/import (whose limit is the server's).
  static constexpr size_t kMaxBody = size_t(16) << 20;

 private:
  void route(const server::HttpRequest& req, const server::ResponderP& res,
             const std::vector<std::string>& segments);
  // The open history, or why it cannot be opened.
  Result<History*> history();

  std::string path_, path_error_;
  std::mutex mu_;
  std::unique_ptr<History> h_;
  std::string logged_;  // the last open failure written to the log
};

}  // namespace hearth::web
