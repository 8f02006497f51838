// server/api_util.h — request parsing and response helpers shared by the API files.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/status.h"
#include "runtime/fit.h"
#include "server/errors.h"
#include "server/http.h"
#include "store/store.h"

namespace hearth::store {
struct StoredDetails;
}

namespace hearth::server {

using json = nlohmann::ordered_json;

// A model's `details` object as /api/tags, /api/ps and /api/show give it.
json details_json(const store::StoredDetails& d);

// Bytes a write into `dir` may use: the free space less a safety margin (UINT64_MAX if unknown).
uint64_t disk_room(const std::string& dir);
// 200 with a compact JSON body (invalid UTF-8 replaced, never thrown).
HttpResponse json_ok(const json& j);
// Parses the JSON object body; answers 400 the way Ollama does and returns nullopt on failure.
std::optional<json> body_json(const HttpRequest& req, Responder& res);
// A string field (or its deprecated alias); a present non-string is a type error (answered 400,
// *type_error set).
std::optional<std::string> str_field(const json& j, const char* key, const char* alias,
                                     Responder& res, bool* type_error);

// What GET /api/fit answers (and `hearth fit` prints when no server runs): this machine (memory
// capped at `memory_limit` when > 0), then `model`'s report, or every local model's summary when
// `model` is empty.
Result<json> fit_answer(const store::Store& st, const std::string& model,
                        const runtime::FitParams& p, int64_t memory_limit, bool insecure);

// The decoded value of `key` in a URL query string ("" if absent).
std::string query_value(const std::string& query, const std::string& key);

}  // namespace hearth::server
