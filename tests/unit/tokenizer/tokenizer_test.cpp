// Tokenizer unit tests on the real vocabularies: round trips over the kept corpus, UTF-8
// handling, special-token rules, and the streaming detokenizer with stop strings.
#include "tokenizer/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "gguf/gguf.h"
#include "tokenizer/stream.h"
#include "tokenizer/unicode.h"

namespace hearth::tokenizer {
namespace {

std::shared_ptr<const Tokenizer> load(const std::string& name) {
  auto f =
      gguf::GgufFile::open(std::string(HEARTH_SHARED_DIR) + "/fixtures/vocab-" + name + ".gguf");
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  auto t = Tokenizer::from_gguf(**f);
  EXPECT_TRUE(t.is_ok()) << t.status().message();
  return *t;
}

std::vector<std::string> corpus() {
  std::ifstream in(std::string(HEARTH_SOURCE_DIR) + "/tests/data/tokenizer_corpus.json");
  return nlohmann::json::parse(in).get<std::vector<std::string>>();
}

// detokenize(tokenize(s)) == s for byte-level BPE and byte-fallback SentencePiece; Qwen's
// tokenizer normalizes to NFC first, so there the round trip gives NFC(s); SentencePiece reads
// a literal U+2581 as a space.
TEST(Tokenizer, CorpusRoundTrips) {
  const auto texts = corpus();
  ASSERT_GE(texts.size(), 500u);
  for (const char* name : {"qwen3", "llama3_1", "gemma3"}) {
    auto t = load(name);
    ASSERT_TRUE(t);
    const bool normalizes = std::string(name) == "qwen3";
    int ok = 0;
    for (const auto& s : texts) {
      const auto ids = t->encode(s, /*add_special=*/false, /*parse_special=*/true);
      const std::string back = t->decode(ids, /*special=*/true);
      std::string want = normalizes ? nfc(s) : s;
      // SentencePiece reads a literal U+2581 as the space marker: it comes back as a space.
      if (t->kind() == Tokenizer::Kind::kSpm) {
        std::string spaced;
        for (size_t i = 0; i < want.size(); ++i) {
          if (want.compare(i, 3, "\xE2\x96\x81") == 0) {
            spaced += ' ';
            i += 2;
          } else {
            spaced += want[i];
          }
        }
        want = spaced;
      }
      EXPECT_EQ(back, want) << name << ": " << s;
      ok += back == want;
    }
    EXPECT_EQ(ok, int(texts.size())) << name;
  }
}

TEST(Tokenizer, IllFormedUtf8IsReadAsReplacementCharacters) {
  EXPECT_EQ(sanitize_utf8("a\xff"
                          "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(sanitize_utf8("\xE2\x82"), "\xEF\xBF\xBD");  // truncated sequence: one U+FFFD
  EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(sanitize_utf8("\xF0\x9F\x8E\x89"), "\xF0\x9F\x8E\x89");
  auto t = load("llama3_1");
  EXPECT_EQ(t->encode("x\xC3(y", false, true), t->encode("x\xEF\xBF\xBD(y", false, true));
}

TEST(Tokenizer, SpecialTokensOnlyWhenAsked) {
  auto t = load("qwen3");
  const int32_t im_start = t->find("<|im_start|>");
  ASSERT_GE(im_start, 0);
  EXPECT_EQ(t->encode("<|im_start|>", false, true), std::vector<int32_t>{im_start});
  const auto literal = t->encode("<|im_start|>", false, false);
  EXPECT_GT(literal.size(), 1u);
  EXPECT_EQ(t->decode(literal), "<|im_start|>");
  EXPECT_TRUE(t->is_eog(t->find("<|im_end|>")));
  EXPECT_TRUE(t->is_eog(t->find("<|endoftext|>")));
  EXPECT_FALSE(t->is_eog(im_start));
  EXPECT_EQ(t->special().fim_pre, t->find("<|fim_prefix|>"));
  // Control tokens are left out of the text unless asked for.
  EXPECT_EQ(t->piece(im_start, false), "");
  EXPECT_EQ(t->piece(im_start, true), "<|im_start|>");
}

TEST(Tokenizer, BosFollowsMetadata) {
  auto l = load("llama3_1");
  EXPECT_TRUE(l->add_bos());
  EXPECT_EQ(l->encode("hi", true, true).front(), l->special().bos);
  auto q = load("qwen3");
  EXPECT_FALSE(q->add_bos());
  EXPECT_NE(q->encode("hi", true, true).front(), q->special().bos);
}

TEST(Tokenizer, UnknownModelIsNamed) {
  gguf::GgufWriter w;
  w.set_string("tokenizer.ggml.model", "wordpiece-x");
  w.set_array_strings("tokenizer.ggml.tokens", {"a"});
  const auto bytes = w.to_bytes();
  auto f = gguf::GgufFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  auto t = Tokenizer::from_gguf(**f);
  ASSERT_FALSE(t.is_ok());
  EXPECT_NE(t.status().message().find("wordpiece-x"), std::string::npos);
}

// A SentencePiece vocabulary as a malformed file may carry it: byte tokens that are not <0xXX>,
// an empty token, a token of invalid UTF-8, a NaN score, and special ids that are negative
// 64-bit values (which used to wrap into an int32 id: an out-of-bounds write at load).
TEST(Tokenizer, MalformedVocabularyIsToleratedNotFatal) {
  const std::vector<std::string> toks = {"<unk>",
                                         "<s>",
                                         "</s>",
                                         "<0x41>",
                                         "<0xZZ>",
                                         "<0x>",
                                         "<0xG1>",
                                         "<0x\xff\xfe>",
                                         "<0x4a>",
                                         "",
                                         "\xE2\x96\x81"
                                         "a",
                                         "\xff\x80",
                                         "b"};
  gguf::GgufWriter w;
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_array_strings("tokenizer.ggml.tokens", toks);
  std::vector<float> scores(toks.size(), 0.0f);
  scores[10] = std::numeric_limits<float>::quiet_NaN();
  w.set_array_f32("tokenizer.ggml.scores", scores);
  w.set_array_i32("tokenizer.ggml.token_type", {2, 3, 3, 6, 6, 6, 6, 6, 6, 1, 1, 1, 1});
  w.set_i64("tokenizer.ggml.bos_token_id", -(int64_t(1) << 32) + 5);
  w.set_i64("tokenizer.ggml.eos_token_id", -(int64_t(1) << 32) + 1000000000);
  w.set_i64("tokenizer.ggml.padding_token_id", -7);
  const auto bytes = w.to_bytes();
  auto f = gguf::GgufFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  auto r = Tokenizer::from_gguf(**f);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  const Tokenizer& t = **r;
  EXPECT_EQ(t.special().bos, -1);  // negative: none, never wrapped into range
  EXPECT_EQ(t.special().eos, -1);
  EXPECT_EQ(t.special().pad, -1);
  for (int32_t id : t.eog_ids()) EXPECT_TRUE(id >= 0 && id < t.n_vocab()) << id;
  EXPECT_EQ(t.piece(3), "A");
  EXPECT_EQ(t.piece(8), "J");
  EXPECT_EQ(t.piece(4), "<0xZZ>");  // malformed byte tokens are their text (std::stoi threw)
  EXPECT_EQ(t.piece(5), "<0x>");
  EXPECT_EQ(t.piece(6), "<0xG1>");
  EXPECT_EQ(t.piece(7), "<0x\xff\xfe>");
  EXPECT_EQ(t.piece(9), "");
  EXPECT_EQ(t.piece(-3), "");
  EXPECT_EQ(t.piece(1 << 30), "");
  std::vector<int32_t> all;
  for (int32_t i = -2; i < t.n_vocab() + 2; ++i) all.push_back(i);
  EXPECT_NO_THROW((void)t.decode(all));
  TextStream s(t);
  std::string streamed;
  for (int32_t id : all) streamed += s.push(id);
  streamed += s.flush();
  EXPECT_TRUE(is_valid_utf8(streamed));
  for (int32_t id : t.encode("a b A \xff<0xZZ>", true, true))
    EXPECT_TRUE(id >= 0 && id < t.n_vocab()) << id;
}

// Streams every token of `text` through a TextStream one by one; returns the emitted chunks.
std::vector<std::string> stream_chunks(const Tokenizer& t, const std::string& text,
                                       std::vector<std::string> stops, bool* stopped = nullptr) {
  TextStream s(t, std::move(stops));
  std::vector<std::string> chunks;
  for (int32_t id : t.encode(text, false, false)) {
    chunks.push_back(s.push(id));
    if (s.stopped()) break;
  }
  chunks.push_back(s.flush());
  if (stopped) *stopped = s.stopped();
  return chunks;
}

TEST(TextStream, NeverEmitsPartialCharacters) {
  auto t = load("llama3_1");
  // Emoji and CJK are split over several byte-level tokens.
  const std::string text = "🎉 你好 👨‍👩‍👧‍👦 done";
  ASSERT_GT(t->encode(text, false, false).size(), 8u);
  std::string joined;
  for (const auto& c : stream_chunks(*t, text, {})) {
    EXPECT_TRUE(is_valid_utf8(c)) << "chunk with a broken character";
    joined += c;
  }
  EXPECT_EQ(joined, text);
}

TEST(TextStream, StopStringAcrossTokensIsHeldAndCut) {
  auto t = load("llama3_1");
  bool stopped = false;
  std::string joined;
  const auto chunks =
      stream_chunks(*t, "The answer is 42.\nUSER: next question", {"\nUSER:"}, &stopped);
  for (const auto& c : chunks) joined += c;
  EXPECT_TRUE(stopped);
  EXPECT_EQ(joined, "The answer is 42.");
  // A partial match that turns out not to be the stop string is released, in order.
  stopped = false;
  joined.clear();
  for (const auto& c : stream_chunks(*t, "a\nUSE the force\nUS", {"\nUSER:"}, &stopped))
    joined += c;
  EXPECT_FALSE(stopped);
  EXPECT_EQ(joined, "a\nUSE the force\nUS");
}

TEST(TextStream, StopStringInsideOneToken) {
  auto t = load("qwen3");
  TextStream s(*t, {"world"});
  std::string out;
  for (int32_t id : t->encode("hello world again", false, false)) {
    out += s.push(id);
    if (s.stopped()) break;
  }
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(out, "hello ");
  EXPECT_EQ(s.stop_matched(), "world");
}

}  // namespace
}  // namespace hearth::tokenizer
