// libFuzzer target: request bytes in, never a crash. The input is one or more raw HTTP/1.1
// requests (one keep-alive connection); each is parsed with Boost.Beast as src/server/http.cpp
// parses it and answered by server::Api::handle against a real store (one tiny model) and a
// real scheduler, through a fake client that checks every answer. See http_harness.h for what
// is mirrored, what is checked and how the cost and the store's size stay bounded.
//
// A violated check aborts with its description (FUZZ_HTTP_VERBOSE=1 also prints each request);
// a request the server still holds after 8 s traps (kAnswerTimeout). Seeds: tests/fuzz/corpus/http/
// and seed_http.sh; dictionary: http.dict.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "base/json_depth.h"
#include "http_harness.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

hearth::fuzz_http::Harness* g_harness = nullptr;

// ---- Custom mutator. Byte mutations seldom turn a JSON field into another well-formed value of
// another type (the API's type checks), so half the mutations parse the input's requests, pick
// one with a JSON body, change one value in it (another type, an edge value, a field added or
// removed, an array element duplicated) and write the request back with a fixed Content-Length.
// The other half are libFuzzer's own byte mutations.

using ojson = nlohmann::ordered_json;

// Field names the API reads (any level: requests, options, messages, tools), space-separated.
const char* const kKeyList =
    "model name prompt suffix system template raw stream context images format think "
    "keep_alive options messages role content tool_calls function arguments tools "
    "type text parameters from files adapters license quantize quantization source "
    "destination verbose input max_tokens max_completion_tokens stream_options "
    "include_usage n seed stop temperature top_p frequency_penalty presence_penalty "
    "num_ctx num_predict num_keep top_k min_p typical_p repeat_last_n repeat_penalty "
    "tool_name thinking tool_call_id ";

const std::vector<std::string>& keys() {
  static const std::vector<std::string> v = [] {
    std::vector<std::string> out;
    std::istringstream in(kKeyList);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
  }();
  return v;
}

// Replacement values: every JSON type, edge numbers, strings the API gives meaning to.
const char* const kValues = R"([
  null, true, false, 0, 1, -1, -2, 2, 4, 64, 4096, 1048576, 1000000000, 2000000000, 2147483647,
  2147483648, -2147483649,
  9223372036854775807, -9223372036854775808, 18446744073709551615, 0.5, -0.0, 1e300, -1e300,
  1e-300, "", "x", "tiny", "tiny-tmpl", "json", "low", "5m", "0", "-1", "nanh", "1e9999h",
  "\u00ff", "sha256:6c7e64dfc7bcbede2b56df876bb61c3579b4ed416095f7d42be3845e9dce0727", "user",
  "assistant", "tool", "system", "text", "{{ .Prompt }}",
  "{{ range .Messages }}{{ .Content }}{{ end }}", "{%", [], {}, [1], ["a"], {"a": 1},
  [{"role": "user", "content": "x"}], {"type": "text", "text": "x"},
  {"function": {"name": "f", "arguments": {}}}, {"type": "object", "properties": {}}
])";

const std::vector<ojson>& value_pool() {
  static const std::vector<ojson> pool = ojson::parse(kValues).get<std::vector<ojson>>();
  return pool;
}

void collect(ojson& j, std::vector<ojson*>& out) {
  out.push_back(&j);
  if (j.is_structured())
    for (auto& x : j) collect(x, out);
}

// Changes one value somewhere in `j`.
void mutate_json(ojson& j, std::mt19937& rng) {
  std::vector<ojson*> nodes;
  collect(j, nodes);
  ojson& n = *nodes[rng() % nodes.size()];
  const auto& pool = value_pool();
  const ojson& v = pool[rng() % pool.size()];
  switch (rng() % 5) {
    case 0:  // add (or replace) a known field
      if (n.is_object()) {
        n[keys()[rng() % keys().size()]] = v;
        return;
      }
      break;
    case 1:  // remove a field or an element
      if (n.is_object() && !n.empty()) {
        auto it = n.begin();
        std::advance(it, long(rng() % n.size()));
        n.erase(it);
        return;
      }
      if (n.is_array() && !n.empty()) {
        n.erase(n.begin() + long(rng() % n.size()));
        return;
      }
      break;
    case 2:  // duplicate an element
      if (n.is_array() && !n.empty()) {
        n.push_back(ojson(n[rng() % n.size()]));
        return;
      }
      break;
    case 3:  // wrap
      n = rng() % 2 ? ojson::array({n}) : ojson{{"text", n}};
      return;
    default:
      break;
  }
  if (&n == &j && !v.is_object()) return;  // keep the body an object, mostly
  n = v;
}

// One request of the input: where its bytes are and, if it parsed, its parts.
struct RawRequest {
  size_t begin = 0, end = 0;
  std::string head_line;                                    // "POST /api/chat HTTP/1.1"
  std::vector<std::pair<std::string, std::string>> fields;  // without length and encoding
  std::string body;
};

std::vector<RawRequest> split_requests(std::string_view data) {
  namespace http = hearth::fuzz_http::http;
  std::vector<RawRequest> out;
  size_t off = 0;
  while (off < data.size() && out.size() < 64) {
    http::request_parser<http::string_body> p;
    p.eager(true);
    p.header_limit(hearth::fuzz_http::kHeaderLimit);
    p.body_limit(hearth::fuzz_http::kMaxBody);
    RawRequest r;
    r.begin = off;
    while (!p.is_done()) {
      boost::beast::error_code ec;
      const size_t n = p.put(boost::asio::buffer(data.data() + off, data.size() - off), ec);
      off += n;
      if (ec || n == 0) return out;
    }
    r.end = off;
    const auto& m = p.get();
    r.head_line = std::string(m.method_string()) + " " + std::string(m.target()) +
                  (m.version() == 10 ? " HTTP/1.0" : " HTTP/1.1");
    for (const auto& f : m)
      if (f.name() != http::field::content_length && f.name() != http::field::transfer_encoding)
        r.fields.emplace_back(std::string(f.name_string()), std::string(f.value()));
    r.body = m.body();
    out.push_back(std::move(r));
  }
  return out;
}

size_t mutate_json_body(uint8_t* data, size_t size, size_t max_size, std::mt19937& rng) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto reqs = split_requests(in);
  std::vector<size_t> with_json;
  std::vector<ojson> parsed(reqs.size());
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (reqs[i].body.empty() || reqs[i].body.size() > 65536) continue;
    parsed[i] = hearth::parse_json_bounded<ojson>(reqs[i].body, nullptr, 64);
    if (!parsed[i].is_discarded() && parsed[i].is_structured()) with_json.push_back(i);
  }
  if (with_json.empty()) return 0;
  const size_t i = with_json[rng() % with_json.size()];
  const int rounds = 1 + int(rng() % 3);
  for (int k = 0; k < rounds; ++k) mutate_json(parsed[i], rng);
  const RawRequest& r = reqs[i];
  std::string body = parsed[i].dump(-1, ' ', false, ojson::error_handler_t::replace);
  std::string req = r.head_line + "\r\n";
  for (const auto& [k, v] : r.fields) req += k + ": " + v + "\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::string out(in.substr(0, r.begin));
  out += req;
  out += in.substr(r.end);
  if (out.size() > max_size) return 0;
  std::memcpy(data, out.data(), out.size());
  return out.size();
}

}  // namespace

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size,
                                          unsigned int seed) {
  std::mt19937 rng(seed);
  if (rng() % 2 == 0)
    if (size_t n = mutate_json_body(data, size, max_size, rng)) return n;
  return LLVMFuzzerMutate(data, size, max_size);
}

// UBSan findings are fatal in this target (the fuzz build compiles with recoverable UBSan, which
// only prints): undefined behaviour reached from a request is a bug like any other.
extern "C" const char* __ubsan_default_options() {
  return "halt_on_error=1:print_stacktrace=1";
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string err;
  // Never destroyed: the scheduler's threads and the temporary store live until exit, when
  // atexit removes the store's folder.
  g_harness = new hearth::fuzz_http::Harness(HEARTH_SHARED_DIR, &err);
  if (!err.empty()) {
    std::fprintf(stderr, "fuzz_http: setup failed: %s\n", err.c_str());
    std::exit(1);
  }
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(g_harness->root()).parent_path(), ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool verbose = std::getenv("FUZZ_HTTP_VERBOSE") != nullptr;
  const std::string problem =
      g_harness->run(std::string_view(reinterpret_cast<const char*>(data), size));
  if (verbose)
    std::fprintf(stderr, "fuzz_http: %s: %s\n", g_harness->last_request.c_str(),
                 problem.empty() ? "ok" : problem.c_str());
  if (problem.empty()) return 0;
  std::fprintf(stderr, "fuzz_http: %s\n", problem.c_str());
  if (problem.rfind("timeout", 0) == 0) __builtin_trap();
  std::abort();
}
