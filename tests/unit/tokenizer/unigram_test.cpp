// Unigram (tokenizer.ggml.model = t5) unit tests: the precompiled charsmap (a small double array
// built here in darts-clone's layout, and malformed blobs), the normalizer's whitespace rules, the
// Viterbi segmentation, then the Tokenizer on a small XLM-R-style vocabulary. Parity with Hugging
// Face and llama.cpp on the corpus: tests/differential/test_unigram.py.
#include "tokenizer/unigram.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "gguf/gguf.h"
#include "tokenizer/stream.h"
#include "tokenizer/tokenizer.h"

namespace hearth::tokenizer {
namespace {

using unigram::CharsMap;
using unigram::NormalizerOptions;

// A charsmap blob for `rules` (key -> replacement): the trie as a darts-clone double array (a
// node's children at base ^ byte, its value unit at base ^ 0; every base used once), then the
// NUL-terminated replacement strings.
std::vector<uint8_t> charsmap_blob(const std::map<std::string, std::string>& rules) {
  struct Node {
    std::map<uint8_t, int> kids;
    int value = -1;
  };
  std::vector<Node> trie(1);
  std::string strings;
  for (const auto& [k, v] : rules) {
    int n = 0;
    for (char ch : k) {
      auto it = trie[size_t(n)].kids.find(uint8_t(ch));
      if (it == trie[size_t(n)].kids.end()) {
        trie[size_t(n)].kids[uint8_t(ch)] = int(trie.size());
        n = int(trie.size());
        trie.emplace_back();
      } else {
        n = it->second;
      }
    }
    trie[size_t(n)].value = int(strings.size());
    strings += v;
    strings += '\0';
  }
  std::vector<uint32_t> units(256, 0);
  std::vector<bool> used(256, false);
  std::set<uint32_t> bases;
  used[0] = true;
  std::vector<std::pair<int, uint32_t>> queue = {{0, 0}};
  for (size_t q = 0; q < queue.size(); ++q) {
    const auto [n, idx] = queue[q];
    std::vector<uint32_t> labels;
    if (trie[size_t(n)].value >= 0) labels.push_back(0);
    for (const auto& kv : trie[size_t(n)].kids) labels.push_back(kv.first);
    if (labels.empty()) continue;
    uint32_t b = 1;
    for (;; ++b) {
      if (bases.count(b)) continue;
      bool fits = true;
      for (uint32_t l : labels) {
        const uint32_t s = b ^ l;
        if (s >= units.size()) {
          units.resize((s | 0xFF) + 1, 0);
          used.resize(units.size(), false);
        }
        fits = fits && !used[s];
      }
      if (fits) break;
    }
    bases.insert(b);
    for (uint32_t l : labels) used[b ^ l] = true;
    units[idx] |= ((idx ^ b) << 10) | (trie[size_t(n)].value >= 0 ? 1u << 8 : 0);
    if (trie[size_t(n)].value >= 0) units[b] = 0x80000000u | uint32_t(trie[size_t(n)].value);
    for (const auto& [l, kid] : trie[size_t(n)].kids) {
      units[b ^ l] = l;
      queue.push_back({kid, b ^ l});
    }
  }
  std::vector<uint8_t> blob;
  auto put32 = [&](uint32_t x) {
    for (int i = 0; i < 4; ++i) blob.push_back(uint8_t(x >> (8 * i)));
  };
  put32(uint32_t(units.size() * 4));
  for (uint32_t u : units) put32(u);
  blob.insert(blob.end(), strings.begin(), strings.end());
  return blob;
}

const std::map<std::string, std::string> kRules = {
    {"a", "x"},
    {"ab", "y"},
    {"abc", "zz"},
    {"\xEF\xBC\xA1", "A"},      // fullwidth A
    {"\xEF\xAC\x81", "fi"},     // U+FB01 ligature
    {"\t", " "},                // tab -> space
    {"\xE3\x80\x80", " "},      // ideographic space
    {"\x01", ""},               // removed
    {"e\xCC\x81", "\xC3\xA9"},  // e + combining acute -> é
    {"\xE2\x96\x81", " "},      // U+2581 -> space
};

CharsMap parsed(const std::map<std::string, std::string>& rules = kRules) {
  const auto blob = charsmap_blob(rules);
  auto m = CharsMap::parse(blob);
  EXPECT_TRUE(m.is_ok()) << m.status().message();
  return std::move(*m);
}

TEST(UnigramCharsMap, LongestRuleWins) {
  const CharsMap m = parsed();
  using P = std::pair<size_t, std::string_view>;
  EXPECT_EQ(m.longest("abd", 0), (P{2, "y"}));
  EXPECT_EQ(m.longest("abc", 0), (P{3, "zz"}));
  EXPECT_EQ(m.longest("ac", 0), (P{1, "x"}));
  EXPECT_EQ(m.longest("xab", 1), (P{2, "y"}));
  EXPECT_EQ(m.longest("b", 0).first, 0u);
  EXPECT_EQ(m.longest("\x01z", 0), (P{1, ""}));  // an empty replacement is still a rule
  EXPECT_EQ(m.longest("e\xCC\x81!", 0), (P{3, "\xC3\xA9"}));
  EXPECT_EQ(m.longest("e", 0).first, 0u);  // a key's prefix alone is no rule
  // A NUL byte ends the key, as in SentencePiece.
  EXPECT_EQ(m.longest(std::string_view("a\0b", 3), 0), (P{1, "x"}));
  EXPECT_EQ(m.longest(std::string_view("\0", 1), 0).first, 0u);
}

TEST(UnigramCharsMap, EmptyBlobHasNoRules) {
  auto m = CharsMap::parse({});
  ASSERT_TRUE(m.is_ok());
  EXPECT_TRUE(m->empty());
  EXPECT_EQ(m->longest("abc", 0).first, 0u);
}

TEST(UnigramCharsMap, MalformedBlobsAreClearErrors) {
  auto err = [](std::vector<uint8_t> b) {
    auto m = CharsMap::parse(b);
    EXPECT_FALSE(m.is_ok());
    return m.is_ok() ? std::string() : m.status().message();
  };
  EXPECT_NE(err({1, 2, 3}).find("too short"), std::string::npos);
  EXPECT_NE(err({6, 0, 0, 0, 1, 2, 3, 4, 5, 6, 0}).find("not a multiple of 4"), std::string::npos);
  // The trie must leave at least one byte of strings (llama.cpp's check too).
  EXPECT_NE(err({4, 0, 0, 0, 1, 2, 3, 4}).find("no room"), std::string::npos);
  EXPECT_NE(err({0xFC, 0xFF, 0xFF, 0xFF, 0}).find("no room"), std::string::npos);
  EXPECT_NE(err({4, 0, 0, 0, 1, 2, 3, 4, 'a', 'b'}).find("NUL"), std::string::npos);
  // A valid header with an all-zero trie: a map that matches nothing.
  auto z = CharsMap::parse(std::vector<uint8_t>{4, 0, 0, 0, 0, 0, 0, 0, 0});
  ASSERT_TRUE(z.is_ok());
  EXPECT_EQ(z->longest("abc", 0).first, 0u);
}

TEST(UnigramCharsMap, HostileTriesStayInBounds) {
  // Random units and random strings: lookups end at out-of-range indexes and ignore values
  // outside the strings; a match's replacement always lies inside the blob's strings.
  std::mt19937 rng(7);
  for (int iter = 0; iter < 2000; ++iter) {
    const size_t n_units = 1 + rng() % 40, n_str = 1 + rng() % 16;
    std::vector<uint8_t> blob;
    const uint32_t tb = uint32_t(n_units * 4);
    for (int i = 0; i < 4; ++i) blob.push_back(uint8_t(tb >> (8 * i)));
    for (size_t i = 0; i < n_units; ++i) {
      // Mostly small offsets so walks go somewhere; sometimes anything.
      uint32_t u = rng() % 3 == 0 ? uint32_t(rng())
                                  : ((rng() % 64) << 10) | (rng() % 2) << 8 | (rng() % 256);
      if (rng() % 5 == 0) u = 0x80000000u | (rng() % 32);
      for (int b = 0; b < 4; ++b) blob.push_back(uint8_t(u >> (8 * b)));
    }
    for (size_t i = 0; i + 1 < n_str; ++i) blob.push_back(uint8_t(rng() % 256));
    blob.push_back(0);
    auto m = CharsMap::parse(blob);
    ASSERT_TRUE(m.is_ok()) << m.status().message();
    std::string text;
    for (int i = 0; i < 12; ++i) text += char(rng() % 256);
    for (size_t pos = 0; pos < text.size(); ++pos) {
      const auto [len, rep] = m->longest(text, pos);
      EXPECT_LE(pos + len, text.size());
      if (len > 0) {
        EXPECT_LE(rep.size(), n_str);
      }
    }
    // normalize never fails on what the map gives back.
    NormalizerOptions o;
    (void)unigram::normalize(text, *m, o);
  }
}

std::string norm(std::string_view s, NormalizerOptions o = {}, const CharsMap* m = nullptr) {
  static const CharsMap none;
  return unigram::normalize(s, m ? *m : none, o);
}

#define SP "\xE2\x96\x81"

TEST(UnigramNormalizer, DummyPrefixAndExtraWhitespace) {
  // XLM-R: a '▁' before the text, runs of spaces as one, leading and trailing ones gone.
  EXPECT_EQ(norm("Hello world"), SP "Hello" SP "world");
  EXPECT_EQ(norm("  Hello   world  "), SP "Hello" SP "world");
  EXPECT_EQ(norm("   "), "");
  EXPECT_EQ(norm(""), "");
  // Trailing whitespace of any kind goes (Hugging Face's Strip); inside a word it stays
  // (without a charsmap only ' ' is a space).
  EXPECT_EQ(norm("a\n"), SP "a");
  EXPECT_EQ(norm("a \xE3\x80\x80\t"), SP "a");
  EXPECT_EQ(norm("a\nb c"), SP "a\nb" SP "c");
  EXPECT_EQ(norm("\na"), SP "\na");
  NormalizerOptions no_prefix;
  no_prefix.add_space_prefix = false;
  EXPECT_EQ(norm("  a  b ", no_prefix), "a" SP "b");
}

TEST(UnigramNormalizer, KeepsWhitespaceWhenAsked) {
  NormalizerOptions o;
  o.remove_extra_whitespaces = false;
  // llama.cpp: every space kept, the prefix before the first non-space.
  EXPECT_EQ(norm(" a  b ", o), SP SP "a" SP SP "b" SP);
  EXPECT_EQ(norm("a\n", o), SP "a\n");
  o.add_space_prefix = false;
  EXPECT_EQ(norm(" a b", o), SP "a" SP "b");
}

TEST(UnigramNormalizer, WhitespaceAsSuffix) {
  NormalizerOptions o;
  o.treat_whitespace_as_suffix = true;
  EXPECT_EQ(norm("  a  b ", o), "a" SP "b" SP);
  o.remove_extra_whitespaces = false;
  EXPECT_EQ(norm("a b", o), "a" SP "b" SP);
}

TEST(UnigramNormalizer, CharsMapBeforeWhitespace) {
  const CharsMap m = parsed();
  NormalizerOptions o;
  // tab and U+3000 become spaces (and so word breaks), \x01 goes, fullwidth A and the ligature
  // are rewritten, e + U+0301 composes (the longest rule) and a second U+0301 has no rule.
  EXPECT_EQ(norm("\t\xEF\xBC\xA1\x01q\xE3\x80\x80\xEF\xAC\x81 e\xCC\x81\xCC\x81", o, &m),
            SP "Aq" SP "fi" SP "\xC3\xA9\xCC\x81");
  // U+2581 in the input is a space like any other once the charsmap says so.
  EXPECT_EQ(norm("x" SP SP "y", o, &m), SP "x" SP "y");
  // Without a charsmap it is a character of its own, and a text that starts with it gets no
  // second one (Hugging Face's Metaspace).
  EXPECT_EQ(norm(SP "y"), SP "y");
  EXPECT_EQ(norm(" " SP " y"), SP SP SP "y");  // after a space it is a word of its own
  EXPECT_EQ(norm("y" SP), SP "y" SP);
  // Ill-formed UTF-8: U+FFFD for each bad byte.
  EXPECT_EQ(norm("a\xFF"
                 "b"),
            SP
            "a\xEF\xBF\xBD"
            "b");
}

// A model over pieces given as (text, score); ids are the positions.
struct Vocab {
  std::vector<std::string> texts;
  std::vector<double> scores;
  unigram::Model model(int32_t unk, double unk_score) const {
    return unigram::Model(std::vector<std::string_view>(texts.begin(), texts.end()), scores, unk,
                          unk_score);
  }
};

std::vector<int32_t> seg(const unigram::Model& m, std::string_view s) {
  std::vector<int32_t> out;
  m.encode(s, out);
  return out;
}

TEST(UnigramModel, ViterbiMaximizesTheScoreSum) {
  // 0 <unk> (not a piece), 1 ▁, 2 a, 3 b, 4 ab, 5 ▁a, 6 ▁ab, 7 c
  Vocab v{{"", SP, "a", "b", "ab", SP "a", SP "ab", "c"}, {0, -2, -3, -3, -4.5, -3, -9, -3}};
  auto m = v.model(0, -13);
  using V = std::vector<int32_t>;
  EXPECT_EQ(seg(m, SP "ab"), (V{5, 3}));  // -6 beats ▁ + ab (-6.5) and ▁ab (-9)
  EXPECT_EQ(seg(m, SP "abc"), (V{5, 3, 7}));
  EXPECT_EQ(seg(m, "abab"), (V{4, 4}));  // -9 beats a b a b (-12)
  EXPECT_EQ(seg(m, ""), V{});
}

TEST(UnigramModel, TiesGoToTheEarlierStart) {
  // a + b and ab both sum to -2: the piece that starts first (ab, from 0) wins, as in
  // llama.cpp and Hugging Face's lattice.
  Vocab v{{"", "a", "b", "ab"}, {0, -1, -1, -2}};
  auto m = v.model(0, -11);
  EXPECT_EQ(seg(m, "ab"), (std::vector<int32_t>{3}));
}

TEST(UnigramModel, UnknownCodePoints) {
  Vocab v{{"", SP, "a", "\xC3\xA9"}, {0, -1, -1, -1}};
  auto m = v.model(0, -11);
  using V = std::vector<int32_t>;
  // A code point no single piece covers is <unk>; a run of them is one <unk>.
  EXPECT_EQ(seg(m, SP "a\xE4\xB8\xAD\xE6\x96\x87" SP "a"), (V{1, 2, 0, 1, 2}));
  EXPECT_EQ(seg(m, "\xC3\xA9z"), (V{3, 0}));
  EXPECT_EQ(seg(m, "zaz"), (V{0, 2, 0}));
  // Without an unknown token the characters are dropped.
  auto no_unk = v.model(-1, -11);
  EXPECT_EQ(seg(no_unk, "zaz"), (V{2}));
  // A piece that can never win (score -inf) does not stand in for the unknown token.
  Vocab inf{{"", "a"}, {0, -std::numeric_limits<double>::infinity()}};
  EXPECT_EQ(seg(inf.model(0, -11), "aa"), (V{0}));
}

TEST(UnigramModel, LongPiecesAndSharedPrefixes) {
  // Many pieces sharing prefixes, found by narrowing a sorted range byte by byte.
  Vocab v{{"", "x", "xy", "xyz", "xyzw", "xz", "y", "z", "w", "xyzwv"},
          {0, -5, -5, -5, -5, -5, -5, -5, -5, -5}};
  auto m = v.model(0, -15);
  using V = std::vector<int32_t>;
  EXPECT_EQ(seg(m, "xyzwv"), (V{9}));
  EXPECT_EQ(seg(m, "xyzwxz"), (V{4, 5}));
  EXPECT_EQ(seg(m, "xyzq"), (V{3, 0}));
}

// An XLM-R-shaped vocabulary in llama.cpp's GGUF form: <s> <pad> </s> <unk>, pieces, and the
// unused "[PAD…]" the converter leaves where Hugging Face has <mask>.
std::shared_ptr<const Tokenizer> xlmr_vocab(bool with_charsmap = true,
                                            const std::vector<uint8_t>* blob_override = nullptr,
                                            bool bad_type = false) {
  const std::vector<std::pair<std::string, float>> pieces = {
      {SP, -2.0f},         {SP "hello", -5.0f}, {SP "world", -5.5f}, {"h", -4.0f},
      {"e", -4.0f},        {"l", -4.0f},        {"o", -4.0f},        {"w", -4.1f},
      {"r", -4.2f},        {"d", -4.3f},        {SP "A", -6.0f},     {"fi", -6.0f},
      {"\xC3\xA9", -6.0f}, {"s", -4.0f},        {SP "s", -5.0f},     {SP "hell", -5.1f},
  };
  std::vector<std::string> tokens = {"<s>", "<pad>", "</s>", "<unk>"};
  std::vector<float> scores = {0, 0, 0, 0};
  std::vector<int32_t> types = {3, 3, 3, 2};
  for (const auto& [p, s] : pieces) {
    tokens.push_back(p);
    scores.push_back(s);
    types.push_back(1);
  }
  tokens.push_back("[PAD" + std::to_string(tokens.size() - 1) + "]");
  scores.push_back(-10000.0f);
  types.push_back(5);
  gguf::GgufWriter w;
  w.set_string("general.architecture", "bert");
  w.set_string("tokenizer.ggml.model", "t5");
  w.set_string("tokenizer.ggml.pre", "default");
  w.set_array_strings("tokenizer.ggml.tokens", tokens);
  w.set_array_f32("tokenizer.ggml.scores", scores);
  w.set_array_i32("tokenizer.ggml.token_type", types);
  w.set_bool("tokenizer.ggml.add_space_prefix", true);
  w.set_bool("tokenizer.ggml.remove_extra_whitespaces", true);
  const auto blob = blob_override ? *blob_override : charsmap_blob(kRules);
  if (bad_type) {
    w.set_array_i32("tokenizer.ggml.precompiled_charsmap", {1, 2, 3});
  } else if (with_charsmap) {
    gguf::MetaValue mv;
    mv.type = gguf::ValueType::ARRAY;
    mv.elem_type = gguf::ValueType::U8;
    mv.count = blob.size();
    mv.raw = blob.data();
    w.copy_value("tokenizer.ggml.precompiled_charsmap", mv);
  }
  w.set_i64("tokenizer.ggml.bos_token_id", 0);
  w.set_i64("tokenizer.ggml.eos_token_id", 2);
  w.set_i64("tokenizer.ggml.unknown_token_id", 3);
  w.set_i64("tokenizer.ggml.padding_token_id", 1);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  w.set_bool("tokenizer.ggml.add_eos_token", true);
  const auto bytes = w.to_bytes();
  auto f = gguf::GgufFile::parse(bytes.data(), bytes.size());
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  auto t = Tokenizer::from_gguf(**f);
  if (!t.is_ok()) {
    ADD_FAILURE() << t.status().message();
    return nullptr;
  }
  return *t;
}

TEST(UnigramTokenizer, EncodesLikeXlmRoberta) {
  auto t = xlmr_vocab();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->kind(), Tokenizer::Kind::kUnigram);
  EXPECT_TRUE(t->add_bos());
  EXPECT_TRUE(t->add_eos());
  using V = std::vector<int32_t>;
  // <s> ▁hello ▁world </s>
  EXPECT_EQ(t->encode("hello world", true, true), (V{0, 5, 6, 2}));
  EXPECT_EQ(t->encode("  hello\t\tworld  ", false, true), (V{5, 6}));
  // The charsmap first: fullwidth A, the ligature, e + U+0301.
  EXPECT_EQ(t->encode("\xEF\xBC\xA1 \xEF\xAC\x81 e\xCC\x81", false, true), (V{14, 4, 15, 4, 16}));
  // Unknown characters, one <unk> per run.
  EXPECT_EQ(t->encode("hello zz", false, true), (V{5, 4, 3}));
  // Special-token text: a token with parse_special (each side gets its own prefix), text without.
  EXPECT_EQ(t->encode("hello</s>world", false, true), (V{5, 2, 6}));
  EXPECT_EQ(t->encode("hello</s>", false, false), (V{5, 3, 17, 3}));
  EXPECT_EQ(t->encode("", true, true), (V{0, 2}));
  EXPECT_EQ(t->encode("   ", true, true), (V{0, 2}));
}

TEST(UnigramTokenizer, DecodesAsHuggingFace) {
  auto t = xlmr_vocab();
  ASSERT_TRUE(t);
  const auto ids = t->encode("hello world zz", true, true);
  EXPECT_EQ(t->decode(ids, true), "<s> hello world <unk></s>");
  EXPECT_EQ(t->decode(ids, false), "hello world ");
  const std::vector<int32_t> odd = {6, -1, 999, 5};  // out-of-range ids are skipped
  EXPECT_EQ(t->decode(odd, true), "world hello");
  EXPECT_EQ(t->piece(5), " hello");
  // The streaming detokenizer: pieces as they come, the leading space kept (generated text
  // continues a prompt), control tokens left out, the unknown token shown as its text.
  TextStream stream(*t);
  std::string streamed;
  for (int32_t id : ids) streamed += stream.push(id);
  streamed += stream.flush();
  EXPECT_EQ(streamed, " hello world <unk>");
}

TEST(UnigramTokenizer, WithoutCharsMap) {
  auto t = xlmr_vocab(false);
  ASSERT_TRUE(t);
  using V = std::vector<int32_t>;
  // Only ' ' separates words: the tab is an unknown character inside the text; a trailing one
  // goes; the fullwidth A stays as it is (and is unknown).
  EXPECT_EQ(t->encode("hello\tworld", false, true), (V{5, 3, 11, 10, 12, 9, 13}));
  EXPECT_EQ(t->encode("hello\t", false, true), (V{5}));
  EXPECT_EQ(t->encode("\xEF\xBC\xA1", false, true), (V{4, 3}));
}

TEST(UnigramTokenizer, BadCharsMapIsAClearError) {
  auto load = [](const std::vector<uint8_t>* blob, bool bad_type) {
    std::vector<std::string> tokens = {"<s>", "<pad>", "</s>", "<unk>", SP "a"};
    gguf::GgufWriter w;
    w.set_string("tokenizer.ggml.model", "t5");
    w.set_array_strings("tokenizer.ggml.tokens", tokens);
    w.set_array_f32("tokenizer.ggml.scores", {0, 0, 0, 0, -1});
    w.set_array_i32("tokenizer.ggml.token_type", {3, 3, 3, 2, 1});
    if (bad_type) {
      w.set_array_i32("tokenizer.ggml.precompiled_charsmap", {1, 2, 3});
    } else {
      gguf::MetaValue mv;
      mv.type = gguf::ValueType::ARRAY;
      mv.elem_type = gguf::ValueType::U8;
      mv.count = blob->size();
      mv.raw = blob->data();
      w.copy_value("tokenizer.ggml.precompiled_charsmap", mv);
    }
    const auto bytes = w.to_bytes();
    auto f = gguf::GgufFile::parse(bytes.data(), bytes.size());
    EXPECT_TRUE(f.is_ok());
    auto t = Tokenizer::from_gguf(**f);
    return t.is_ok() ? std::string("ok") : t.status().message();
  };
  const std::vector<uint8_t> truncated = {0x40, 0, 0, 0, 1, 2, 3, 4, 0};
  const std::string e1 = load(&truncated, false);
  EXPECT_NE(e1.find("tokenizer.ggml.precompiled_charsmap"), std::string::npos) << e1;
  EXPECT_NE(e1.find("no room"), std::string::npos) << e1;
  const std::string e2 = load(nullptr, true);
  EXPECT_NE(e2.find("array of bytes"), std::string::npos) << e2;
  const std::vector<uint8_t> good = charsmap_blob(kRules);
  EXPECT_EQ(load(&good, false), "ok");
}

TEST(UnigramTokenizer, DefaultsWithoutKeys) {
  // llama.cpp's UGM defaults: no BOS, EOS appended, no dummy prefix, whitespace kept; the
  // special ids found by text. Scores are required.
  std::vector<std::string> tokens = {"<pad>", "</s>", "<unk>", "a", SP};
  gguf::GgufWriter w;
  w.set_string("tokenizer.ggml.model", "t5");
  w.set_array_strings("tokenizer.ggml.tokens", tokens);
  w.set_array_f32("tokenizer.ggml.scores", {0, 0, 0, -1, -1});
  w.set_array_i32("tokenizer.ggml.token_type", {3, 3, 2, 1, 1});
  auto bytes = w.to_bytes();
  auto f = gguf::GgufFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(f.is_ok());
  auto t = Tokenizer::from_gguf(**f);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_FALSE((*t)->add_bos());
  EXPECT_TRUE((*t)->add_eos());
  EXPECT_EQ((*t)->special().unk, 2);
  EXPECT_EQ((*t)->special().eos, 1);
  EXPECT_EQ((*t)->special().pad, 0);
  EXPECT_EQ((*t)->encode("a a", true, true), (std::vector<int32_t>{3, 4, 3, 1}));

  w.remove("tokenizer.ggml.scores");
  bytes = w.to_bytes();
  f = gguf::GgufFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(f.is_ok());
  auto no_scores = Tokenizer::from_gguf(**f);
  ASSERT_FALSE(no_scores.is_ok());
  EXPECT_NE(no_scores.status().message().find("scores"), std::string::npos);
}

}  // namespace
}  // namespace hearth::tokenizer
