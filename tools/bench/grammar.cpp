// hearth-grammar-bench — what a JSON-schema grammar costs per generated token (not a test).
//
// Walks a valid document, token by token as the model's tokenizer splits it, through the matcher
// of a schema's grammar, and at every position times (1) a full-vocabulary mask (every token
// checked, which the sampler does not need with top_k > 0) and (2) the sampler itself, with
// Ollama's default settings, over random logits, the grammar as its filter (what the runner does
// per token). Prints mean, median and p99 in µs.
//   usage: hearth-grammar-bench [VOCAB.gguf]   (default ../shared/fixtures/vocab-qwen3.gguf)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "grammar/json_schema.h"
#include "grammar/matcher.h"
#include "sampling/sampler.h"
#include "tokenizer/tokenizer.h"

using namespace hearth;

namespace {

double us_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count();
}

void report(const char* what, std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size());
  const double p99 = v[std::min(v.size() - 1, size_t(double(v.size()) * 0.99))];
  std::printf("| %s | %.1f | %.1f | %.1f |\n", what, mean, v[v.size() / 2], p99);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "../shared/fixtures/vocab-qwen3.gguf";
  auto f = gguf::GgufFile::open(path);
  if (!f) {
    std::fprintf(stderr, "%s\n", f.status().message().c_str());
    return 1;
  }
  auto tok = tokenizer::Tokenizer::from_gguf(**f);
  if (!tok) {
    std::fprintf(stderr, "%s\n", tok.status().message().c_str());
    return 1;
  }
  const int32_t n = (*tok)->n_vocab();
  std::vector<std::string> bytes(static_cast<size_t>(n));
  std::vector<uint8_t> plain(static_cast<size_t>(n), 0);
  for (int32_t id = 0; id < n; ++id) {
    const auto ty = (*tok)->token_type(id);
    if (ty == tokenizer::TokenType::kControl || ty == tokenizer::TokenType::kUnused) continue;
    bytes[size_t(id)] = (*tok)->decode(std::span<const int32_t>(&id, 1), false);
    plain[size_t(id)] = !bytes[size_t(id)].empty();
  }
  const auto schema = nlohmann::ordered_json::parse(R"({
    "type": "object",
    "properties": {
      "name": {"type": "string", "maxLength": 40},
      "age": {"type": "integer", "minimum": 0, "maximum": 150},
      "email": {"type": "string", "format": "email"},
      "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
      "address": {"type": "object", "properties": {"city": {"type": "string"},
                  "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}, "required": ["city"]},
      "status": {"enum": ["active", "inactive", "pending"]},
      "score": {"type": "number", "minimum": 0, "maximum": 100}
    },
    "required": ["name", "age", "status"]
  })");
  const std::string doc =
      R"({"name": "Ada Lovelace", "age": 36, "status": "active", "email": "ada@example.org", )"
      R"("tags": ["math", "poetry", "engines"], "address": {"city": "London", "zip": "12345"}, )"
      R"("score": 99.5})";
  auto text = grammar::json_schema_grammar(schema);
  auto g = grammar::Grammar::parse(*text);
  if (!g) {
    std::fprintf(stderr, "%s\n", g.status().message().c_str());
    return 1;
  }
  grammar::Matcher m(*g);
  grammar::TokenChecker check(bytes, plain);  // as the runner's filter asks
  auto allowed = [&](int32_t t) { return check.allowed(t); };
  const std::vector<int32_t> ids = (*tok)->encode(doc, false, false);
  // The sampler's path: Ollama's default chain (top_k 40, top_p 0.9, temperature 0.8) over
  // random logits, the grammar as its filter, exactly as the runner asks it.
  struct Filter final : sampling::TokenFilter {
    grammar::TokenChecker& c;
    size_t asked = 0;
    explicit Filter(grammar::TokenChecker& ch) : c(ch) {}
    bool allowed(int32_t t) override {
      ++asked;
      return c.allowed(t);
    }
    bool candidates(std::vector<int32_t>& out) override {
      c.candidates(out);
      return true;
    }
  };
  sampling::SamplerParams sp;
  sp.seed = 1;
  sampling::Sampler sampler(sp, n);
  std::mt19937 rng(1);
  std::normal_distribution<float> logit(0.0f, 2.0f);
  std::vector<float> logits(static_cast<size_t>(n));
  std::vector<double> full, topk, checks;
  size_t allowed_sum = 0;
  for (int32_t id : ids) {
    auto t0 = std::chrono::steady_clock::now();
    check.begin_step(m);
    size_t ok = 0;
    for (int32_t t = 0; t < n; ++t) ok += allowed(t);
    full.push_back(us_since(t0));
    allowed_sum += ok;
    for (auto& x : logits) x = logit(rng);
    t0 = std::chrono::steady_clock::now();
    check.begin_step(m);
    Filter f(check);
    const int32_t chosen = sampler.sample(logits.data(), &f);
    topk.push_back(us_since(t0));
    checks.push_back(double(f.asked));
    if (chosen < 0) {
      std::fprintf(stderr, "the sampler found no allowed token\n");
      return 1;
    }
    if (!m.accept_bytes(bytes[size_t(id)])) {
      std::fprintf(stderr, "the document does not match its schema at token %d\n", id);
      return 1;
    }
  }
  std::printf("vocabulary %d tokens (%s), %zu positions, %.0f tokens allowed on average\n\n", n,
              path.c_str(), ids.size(), double(allowed_sum) / double(ids.size()));
  std::printf("| per generated token | mean µs | median µs | p99 µs |\n|---|---:|---:|---:|\n");
  report("full-vocabulary mask", full);
  report("sampler with the grammar (top_k 40, random logits)", topk);
  report("tokens asked on that path (count)", checks);
  return 0;
}
