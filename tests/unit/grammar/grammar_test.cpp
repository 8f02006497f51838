// GBNF parsing, the matcher on bytes and tokens, and JSON Schema compilation.
#include "grammar/grammar.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>

#include "grammar/json_schema.h"
#include "grammar/matcher.h"

using namespace hearth::grammar;
using ojson = nlohmann::ordered_json;

namespace {

std::shared_ptr<const Grammar> G(const std::string& text) {
  auto g = Grammar::parse(text);
  EXPECT_TRUE(g.is_ok()) << g.status().message() << "\n" << text;
  return g.is_ok() ? *g : nullptr;
}

// Whole string accepted (byte by byte) and complete at the end.
bool full(const std::shared_ptr<const Grammar>& g, const std::string& s) {
  Matcher m(g);
  for (char c : s)
    if (!m.accept_bytes(std::string_view(&c, 1))) return false;
  return m.accepting();
}

std::shared_ptr<const Grammar> schema(const ojson& s) {
  auto text = json_schema_grammar(s);
  EXPECT_TRUE(text.is_ok()) << text.status().message() << " for " << s.dump();
  return text.is_ok() ? G(*text) : nullptr;
}

// A random sentence of the grammar: random allowed bytes until the matcher may stop (and then
// stops with probability 1/2, or surely once it must).
std::string walk(const std::shared_ptr<const Grammar>& g, std::mt19937& rng, size_t cap = 4000) {
  Matcher m(g);
  std::string out;
  while (out.size() < cap) {
    if (m.finished() || (m.accepting() && rng() % 2 == 0)) break;
    std::vector<unsigned char> ok;
    for (int b = 0; b < 256; ++b) {
      const char c = char(b);
      if (m.allows_bytes(std::string_view(&c, 1))) ok.push_back(static_cast<unsigned char>(b));
    }
    if (ok.empty()) break;
    // Prefer closing characters so nested structures end.
    unsigned char pick = ok[rng() % ok.size()];
    for (unsigned char c : ok)
      if ((c == '}' || c == ']' || c == '"') && rng() % 3 == 0) pick = c;
    const char c = char(pick);
    EXPECT_TRUE(m.accept_bytes(std::string_view(&c, 1)));
    out += c;
  }
  EXPECT_TRUE(m.accepting()) << out;
  return out;
}

}  // namespace

TEST(Grammar, ParsesGbnfAndMatchesBytes) {
  auto g = G(R"(# a comment
root ::= greeting (" " name)? "!"{1,3}
greeting ::= "hi" | "hello"
name ::= [A-Z] [a-z]*
)");
  EXPECT_TRUE(full(g, "hi!"));
  EXPECT_TRUE(full(g, "hello Bob!!!"));
  EXPECT_FALSE(full(g, "hello bob!"));
  EXPECT_FALSE(full(g, "hi!!!!"));
  EXPECT_FALSE(full(g, "hi"));
}

TEST(Grammar, ClassesAreUtf8AndNegationWorks) {
  auto g = G("root ::= [^a-z]+\n");
  EXPECT_TRUE(full(g, "\xc3\xa9\xe6\x9d\xb1\xf0\x9f\x98\x80 ABC"));  // é 東 😀
  EXPECT_FALSE(full(g, "abc"));
  EXPECT_FALSE(full(g, "\xc3"));  // half a character is not complete
  auto h = G("root ::= [\xc3\xa0-\xc3\xbf\xe4\xb8\x80-\xe9\xbe\xa5]\n");  // à-ÿ, CJK
  EXPECT_TRUE(full(h, "\xc3\xa9"));
  EXPECT_TRUE(full(h, "\xe6\x9d\xb1"));
  EXPECT_FALSE(full(h, "a"));
  // A token ending inside a character is checked as the bytes it has.
  Matcher m(h);
  EXPECT_TRUE(m.allows_bytes("\xe6"));
  EXPECT_FALSE(m.allows_bytes("\xf0"));
}

TEST(Grammar, SpecialTokensMatchOnlyAsTokens) {
  auto g = G("root ::= <[42]> \"x\"\n");
  Matcher m(g);
  EXPECT_FALSE(m.allows_bytes("<[42]>"));
  EXPECT_FALSE(m.allows_token(41));
  EXPECT_TRUE(m.accept_token(42));
  EXPECT_TRUE(m.accept_bytes("x"));
  EXPECT_TRUE(m.finished());
}

TEST(Grammar, ForcedBytesAreTheRunWithOneChoice) {
  auto g = G("root ::= \"{\\\"a\\\":\" [0-9]+ (\",\\\"b\\\":true\")? \"}\"\n");
  Matcher m(g);
  std::string f;
  m.forced_bytes(f, 64);
  EXPECT_EQ(f, "{\"a\":");
  m.forced_bytes(f, 3);  // capped
  EXPECT_EQ(f, "{\"a");
  ASSERT_TRUE(m.accept_bytes("{\"a\":7"));
  m.forced_bytes(f, 64);  // a digit, a comma or the brace: a choice
  EXPECT_EQ(f, "");
  ASSERT_TRUE(m.accept_bytes(","));
  m.forced_bytes(f, 64);
  EXPECT_EQ(f, "\"b\":true}");  // and it may end after the brace: the run stops there
  EXPECT_TRUE(m.accept_bytes(f));
  EXPECT_TRUE(m.finished());
  // Nothing is forced where the sentence may already end, or a special token may come.
  Matcher done(G("root ::= \"x\" \"y\"?\n"));
  ASSERT_TRUE(done.accept_bytes("x"));
  done.forced_bytes(f, 64);
  EXPECT_EQ(f, "");
  Matcher tok(G("root ::= \"a\" (<[42]> | \"b\")\n"));
  ASSERT_TRUE(tok.accept_bytes("a"));
  tok.forced_bytes(f, 64);
  EXPECT_EQ(f, "");
  // A schema forces its keys (the whitespace around its punctuation is the model's choice).
  Matcher obj(schema(ojson::parse(R"({"type":"object","properties":{"name":{"type":"string"}},
                                     "required":["name"],"additionalProperties":false})")));
  ASSERT_TRUE(obj.accept_bytes("{\""));
  obj.forced_bytes(f, 64);
  EXPECT_EQ(f, "name\"");
}

TEST(Grammar, ErrorsNameTheProblem) {
  for (const char* bad : {"root ::= (\"a\"\n", "root ::= \"a\n", "root ::= x\n", "a ::= \"b\"\n",
                          "root ::= [z-a]\n", "root ::= \"a\"{3,2}\n"}) {
    auto g = Grammar::parse(bad);
    EXPECT_FALSE(g.is_ok()) << bad;
  }
}

TEST(JsonSchema, ObjectsWithRequiredOptionalAndTypes) {
  auto g = schema(ojson::parse(R"({"type":"object","properties":{
      "name":{"type":"string","maxLength":5},"age":{"type":"integer","minimum":0,"maximum":120},
      "tags":{"type":"array","items":{"enum":["a","b"]},"minItems":1,"maxItems":2},
      "ok":{"type":["boolean","null"]},"ratio":{"type":"number","minimum":0,"maximum":1}},
      "required":["age","name"]})"));
  EXPECT_TRUE(full(g, R"({"age": 30, "name": "Bob"})"));
  EXPECT_TRUE(full(g, R"({"age":120,"name":"", "tags": ["a","b"], "ok": null, "ratio": 0.25})"));
  EXPECT_TRUE(full(g, R"({"age": 0, "name": "x", "ratio": 1.0})"));
  EXPECT_FALSE(full(g, R"({"name": "Bob", "age": 30})"));  // required ones first, in order
  EXPECT_FALSE(full(g, R"({"age": 121, "name": "Bob"})"));
  EXPECT_FALSE(full(g, R"({"age": 3, "name": "Robert"})"));
  EXPECT_FALSE(full(g, R"({"age": 3, "name": "a", "tags": []})"));
  EXPECT_FALSE(full(g, R"({"age": 3, "name": "a", "ratio": 1.5})"));
  EXPECT_FALSE(full(g, R"({"age": 3, "name": "a", "other": 1})"));
}

TEST(JsonSchema, RefsAnyOfConstPatternAndFormats) {
  auto g =
      schema(ojson::parse(R"({"$defs":{"pt":{"type":"object","properties":{"x":{"type":"integer"}},
      "required":["x"]}},"type":"object","properties":{"p":{"$ref":"#/$defs/pt"},
      "v":{"anyOf":[{"type":"string","pattern":"^[A-Z]{2}-\\d{3}$"},{"const":7}]},
      "d":{"type":"string","format":"date"}},"required":["p","v","d"]})"));
  EXPECT_TRUE(full(g, R"({"p": {"x": -5}, "v": "AB-123", "d": "2026-12-06"})"));
  EXPECT_TRUE(full(g, R"({"p": {"x": 1}, "v": 7, "d": "2026-01-31"})"));
  EXPECT_FALSE(full(g, R"({"p": {"x": 1}, "v": "ab-123", "d": "2026-01-31"})"));
  EXPECT_FALSE(full(g, R"({"p": {"x": 1}, "v": 8, "d": "2026-01-31"})"));
  EXPECT_FALSE(full(g, R"({"p": {"x": 1}, "v": 7, "d": "2026-13-01"})"));
}

TEST(JsonSchema, FormatJsonIsAnyObject) {
  auto g = schema("json");
  EXPECT_TRUE(full(g, R"({"a": [1, 2.5e3, {"b": null}], "c": "\u00e9\n"})"));
  EXPECT_FALSE(full(g, "[1]"));
  EXPECT_FALSE(full(g, R"({"a": })"));
}

TEST(JsonSchema, UnsupportedKeywordsAreNamed) {
  for (const char* s :
       {R"({"type":"string","contentEncoding":"base64"})", R"({"type":"array","uniqueItems":true})",
        R"({"type":"number","multipleOf":3})", R"({"not":{"type":"string"}})",
        R"({"type":"integer","minimum":0.5})"}) {
    auto r = json_schema_grammar(ojson::parse(s));
    ASSERT_FALSE(r.is_ok()) << s;
    EXPECT_FALSE(r.status().message().empty());
  }
  auto r = json_schema_grammar(ojson::parse(R"({"type":"array","uniqueItems":true})"));
  EXPECT_NE(r.status().message().find("uniqueItems"), std::string::npos) << r.status().message();
}

// Random sentences of random schemas are valid JSON of the right shape.
TEST(JsonSchema, RandomWalksProduceValidJson) {
  std::mt19937 rng(7);
  const std::vector<ojson> leaves = {
      ojson::parse(R"({"type":"string","maxLength":8})"),
      ojson::parse(R"({"type":"integer","minimum":-50,"maximum":50})"),
      ojson::parse(R"({"type":"number"})"),
      ojson::parse(R"({"type":"boolean"})"),
      ojson::parse(R"({"enum":["red","green",3,null]})"),
      ojson::parse(R"({"type":"string","pattern":"^[a-c]+x?$"})"),
  };
  std::function<ojson(int)> random_schema = [&](int depth) -> ojson {
    const int k = depth > 2 ? 0 : int(rng() % 3);
    if (k == 0) return leaves[rng() % leaves.size()];
    if (k == 1) return {{"type", "array"}, {"items", random_schema(depth + 1)}, {"maxItems", 3}};
    ojson props = ojson::object(), req = ojson::array();
    const int n = 1 + int(rng() % 3);
    for (int i = 0; i < n; ++i) {
      const std::string key = "k" + std::to_string(i);
      props[key] = random_schema(depth + 1);
      if (rng() % 2) req.push_back(key);
    }
    return {{"type", "object"}, {"properties", props}, {"required", req}};
  };
  for (int t = 0; t < 60; ++t) {
    const ojson s = random_schema(0);
    auto g = schema(s);
    ASSERT_NE(g, nullptr);
    const std::string text = walk(g, rng);
    const auto j = ojson::parse(text, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << s.dump() << "\n" << text;
  }
}

// The checker's fast paths (first/second-byte tables, per-step prefix states, the whole-vocabulary
// walk it falls back to) against the matcher's plain walk, token by token, at every position of
// documents of a schema; asked in random order, as a sampler asks, some steps about few tokens
// and some about the whole vocabulary.
TEST(TokenChecker, AgreesWithTheMatcherEverywhere) {
  std::mt19937 rng(7);
  // A vocabulary of JSON-ish pieces: every single byte a document may use, and random strings.
  const std::string alphabet = "{}[]\",: \n\tabcdefxyz0123456789-.\\u";
  std::vector<std::string> vocab;
  for (char ch : alphabet) vocab.push_back(std::string(1, ch));
  for (int i = 0; i < 9000; ++i) {
    std::string t;
    const int len = 2 + int(rng() % 6);
    for (int k = 0; k < len; ++k) t += alphabet[rng() % alphabet.size()];
    vocab.push_back(t);
  }
  vocab.push_back("");  // an empty (control) token: never allowed by bytes
  std::vector<uint8_t> plain(vocab.size(), 1);
  plain.back() = 0;
  auto g = schema(ojson::parse(R"({"type":"object","properties":{
      "name":{"type":"string","maxLength":5},
      "tags":{"type":"array","items":{"enum":["ab","cd"]},"maxItems":3},
      "n":{"type":"integer","minimum":-5,"maximum":50}},
      "required":["name","n"],"additionalProperties":false})"));
  ASSERT_TRUE(g);
  TokenChecker check(vocab, plain);
  int steps = 0, mismatches = 0, narrow = 0;
  for (int doc = 0; doc < 6; ++doc) {
    const std::string text = walk(g, rng);
    Matcher m(g), ref(g);
    for (size_t pos = 0; pos <= text.size(); ++pos) {
      check.begin_step(m);
      std::vector<int32_t> ids(vocab.size());
      std::iota(ids.begin(), ids.end(), 0);
      std::shuffle(ids.begin(), ids.end(), rng);
      // Alternate: a few dozen questions (tables and prefix states), or all (the fallback).
      const size_t ask = pos % 3 == 0 ? ids.size() : 60;
      std::vector<int32_t> cand;
      check.candidates(cand);
      std::vector<uint8_t> named(vocab.size(), 0);
      for (int32_t t : cand) named[size_t(t)] = 1;
      narrow += cand.size() < vocab.size() / 4;
      for (size_t i = 0; i < ask; ++i) {
        const int32_t t = ids[i];
        const bool want = plain[size_t(t)] && ref.allows_bytes(vocab[size_t(t)]);
        mismatches += check.allowed(t) != want;
        if (want) mismatches += !check.is_candidate(t) + !named[size_t(t)];
      }
      ++steps;
      if (pos < text.size()) {
        ASSERT_TRUE(m.accept_bytes(text.substr(pos, 1)));
        ASSERT_TRUE(ref.accept_bytes(text.substr(pos, 1)));
      }
    }
  }
  EXPECT_EQ(mismatches, 0) << "over " << steps << " steps";
  EXPECT_GT(check.masks_built(), 0);  // the fallback ran too
  EXPECT_GT(narrow, 10);              // and steps whose candidates the second byte narrowed
}
