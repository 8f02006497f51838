// WordPiece (tokenizer.ggml.model = bert) unit tests: the BertNormalizer, BertPreTokenizer,
// greedy longest match and decoder pieces one by one, then the Tokenizer on a small vocabulary
// in llama.cpp's GGUF form ("\u2581x" word starts, "x" continuations). Parity with Hugging Face
// and llama.cpp on the whole corpus: tests/differential/test_wordpiece.py.
#include "tokenizer/wordpiece.h"

#include <gtest/gtest.h>

#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace hearth::tokenizer {
namespace {

using wordpiece::NormalizerOptions;

std::string norm(std::string_view s, bool uncased = true) {
  NormalizerOptions o;
  o.lowercase = o.strip_accents = uncased;
  return wordpiece::normalize(s, o);
}

TEST(WordPieceNormalizer, CleansControlAndWhitespace) {
  // NUL, U+FFFD, a C0 control, ZERO WIDTH SPACE (Cf) and a private-use char go; tab, newline,
  // NBSP and the ideographic space become ' '.
  EXPECT_EQ(norm(std::string("a\0b", 3) + "\x01" + "c\xE2\x80\x8B\xEF\xBF\xBD\xEE\x80\x80" +
                 "\td\ne\xC2\xA0" + "f\xE3\x80\x80g"),
            "abc d e f g");
  // An unassigned code point (U+0378, category Cn) is a control character to Hugging Face.
  EXPECT_EQ(norm("x\xCD\xB8y"), "xy");
}

TEST(WordPieceNormalizer, SpacesAroundCjkIdeographs) {
  EXPECT_EQ(norm("\xE4\xB8\xAD"
                 "a\xE6\x96\x87"),
            " \xE4\xB8\xAD a \xE6\x96\x87 ");
  // Extension B (outside the BMP) too; Hangul and kana are not ideographs.
  EXPECT_EQ(norm("x\xF0\xA0\x80\x80y"), "x \xF0\xA0\x80\x80 y");
  EXPECT_EQ(norm("\xE3\x81\x82", false), "\xE3\x81\x82");  // hiragana: untouched
  EXPECT_TRUE(wordpiece::is_chinese_char(0x4E2D));
  EXPECT_FALSE(wordpiece::is_chinese_char(0x2B820));  // HF's table starts that range at 0x2B920
  EXPECT_TRUE(wordpiece::is_chinese_char(0x2B920));
}

TEST(WordPieceNormalizer, UncasedStripsAccentsAndLowercases) {
  EXPECT_EQ(norm("Caf\xC3\xA9 \xC3\x89"
                 "COLE"),
            "cafe ecole");                  // precomposed
  EXPECT_EQ(norm("Cafe\xCC\x81"), "cafe");  // combining acute
  EXPECT_EQ(norm("\xC3\x85ngstr\xC3\xB6m"), "angstrom");
  // Greek capital sigma lowercases to σ everywhere (per character, no final-ς rule).
  EXPECT_EQ(norm("\xCE\x9F\xCE\x94\xCE\x9F\xCE\xA3"), "\xCE\xBF\xCE\xB4\xCE\xBF\xCF\x83");
  // U+0130: strip accents first (I + U+0307 -> I), then lowercase.
  EXPECT_EQ(norm("\xC4\xB0stanbul"), "istanbul");
  NormalizerOptions lower_only;
  lower_only.strip_accents = false;
  EXPECT_EQ(wordpiece::normalize("\xC4\xB0", lower_only), "i\xCC\x87");  // full case mapping
  // Hangul syllables decompose under NFD (what Hugging Face's strip_accents does to them).
  EXPECT_EQ(norm("\xED\x95\x9C"), "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB");
}

TEST(WordPieceNormalizer, CasedKeepsTextAsIs) {
  EXPECT_EQ(norm("Caf\xC3\xA9 \xC4\xB0", false), "Caf\xC3\xA9 \xC4\xB0");
  EXPECT_EQ(norm("Cafe\xCC\x81", false), "Cafe\xCC\x81");  // no NFC/NFD either way
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::pair<size_t, size_t>> w;
  wordpiece::pre_tokenize(s, w);
  std::vector<std::string> r;
  for (auto [b, n] : w) r.emplace_back(s.substr(b, n));
  return r;
}

TEST(WordPiecePreTokenizer, WhitespaceAndPunctuation) {
  using V = std::vector<std::string>;
  EXPECT_EQ(words("Hello,world!!  a-b\tc "),
            (V{"Hello", ",", "world", "!", "!", "a", "-", "b", "c"}));
  // All ASCII symbols are split off ($ ^ ` | ~ < = > +), non-ASCII symbols (€, ©) are not;
  // Unicode punctuation (« » — 、) is.
  EXPECT_EQ(words("$5 ^_^ 5\xE2\x82\xAC \xC2\xA9x"),
            (V{"$", "5", "^", "_", "^", "5\xE2\x82\xAC", "\xC2\xA9x"}));
  EXPECT_EQ(words("\xC2\xABq\xC2\xBB a\xE2\x80\x94"
                  "b\xE3\x80\x81"),
            (V{"\xC2\xAB", "q", "\xC2\xBB", "a", "\xE2\x80\x94", "b", "\xE3\x80\x81"}));
  EXPECT_TRUE(words("   ").empty());
  EXPECT_TRUE(words("").empty());
}

// Greedy longest match over a vocabulary of Hugging Face pieces ("##" = continuation).
std::vector<int32_t> match(const std::vector<std::string>& vocab, std::string_view word,
                           size_t max_chars = 100, bool* ok = nullptr) {
  auto find = [&](std::string_view piece, bool start) -> int32_t {
    const std::string key = (start ? "" : "##") + std::string(piece);
    for (size_t i = 0; i < vocab.size(); ++i)
      if (vocab[i] == key) return int32_t(i);
    return -1;
  };
  std::vector<int32_t> out = {-7};  // what was there before stays
  const bool r = wordpiece::tokenize_word(word, max_chars, find, out);
  if (ok) *ok = r;
  return std::vector<int32_t>(out.begin() + 1, out.end());
}

TEST(WordPieceMatch, GreedyLongestFirst) {
  const std::vector<std::string> v = {"un",  "##aff", "##able", "##a", "##ff",       "ab",
                                      "abc", "##d",   "##cd",   "a",   "##\xC3\xA9", "caf"};
  using V = std::vector<int32_t>;
  EXPECT_EQ(match(v, "unaffable"), (V{0, 1, 2}));
  // Longest first, not best overall: "abc" + "##d", never "ab" + "##cd".
  EXPECT_EQ(match(v, "abcd"), (V{6, 7}));
  EXPECT_EQ(match(v, "caf\xC3\xA9"), (V{11, 10}));  // pieces end on character boundaries
  EXPECT_EQ(match(v, "a"), (V{9}));
  bool ok = true;
  EXPECT_TRUE(match(v, "abx", 100, &ok).empty());  // no "##x": the whole word fails
  EXPECT_FALSE(ok);
  EXPECT_TRUE(match(v, "unq", 100, &ok).empty());  // pieces found before are taken back
  EXPECT_FALSE(ok);
}

TEST(WordPieceMatch, MaxCharsPerWord) {
  const std::vector<std::string> v = {"a", "##a"};
  bool ok = false;
  EXPECT_EQ(match(v, std::string(100, 'a'), 100, &ok).size(), 100u);
  EXPECT_TRUE(ok);
  EXPECT_TRUE(match(v, std::string(101, 'a'), 100, &ok).empty());
  EXPECT_FALSE(ok);
  // Characters, not bytes: 100 two-byte characters are still within the limit.
  std::string e;
  for (int i = 0; i < 100; ++i) e += "\xC3\xA9";
  const std::vector<std::string> ve = {"\xC3\xA9", "##\xC3\xA9"};
  EXPECT_EQ(match(ve, e, 100, &ok).size(), 100u);
  EXPECT_TRUE(ok);
}

TEST(WordPieceDecoder, JoinsPiecesAndCleansUp) {
  using V = std::vector<std::string>;
  EXPECT_EQ(wordpiece::decode(V{"[CLS]", "hello", "##s", ",", "world", "!", "[SEP]"}),
            "[CLS] hellos, world! [SEP]");
  EXPECT_EQ(wordpiece::decode(V{"##s", "x"}), "##s x");  // the first token keeps its "##"
  EXPECT_EQ(wordpiece::decode(V{"don", "'", "t", "it", "'", "s", "?"}), "don't it's?");
  EXPECT_EQ(wordpiece::decode(V{}), "");
}

// A BERT vocabulary in llama.cpp's GGUF form.
std::shared_ptr<const Tokenizer> bert_vocab(std::vector<std::string> extra = {},
                                            bool add_sep = true) {
  std::vector<std::string> toks = {"[PAD]",
                                   "[UNK]",
                                   "[CLS]",
                                   "[SEP]",
                                   "[MASK]",
                                   "\xE2\x96\x81hello",
                                   "\xE2\x96\x81world",
                                   "s",
                                   "\xE2\x96\x81,",
                                   "\xE2\x96\x81un",
                                   "aff",
                                   "able",
                                   "\xE2\x96\x81"
                                   "cafe",
                                   "\xE2\x96\x81\xE4\xB8\xAD",
                                   "\xE2\x96\x81!"};
  toks.insert(toks.end(), extra.begin(), extra.end());
  std::vector<int32_t> types(toks.size(), 1);
  for (int i = 0; i < 5; ++i) types[size_t(i)] = 3;
  gguf::GgufWriter w;
  w.set_string("tokenizer.ggml.model", "bert");
  w.set_array_strings("tokenizer.ggml.tokens", toks);
  w.set_array_i32("tokenizer.ggml.token_type", types);
  w.set_i64("tokenizer.ggml.cls_token_id", 2);
  w.set_i64("tokenizer.ggml.seperator_token_id", 3);
  w.set_i64("tokenizer.ggml.unknown_token_id", 1);
  w.set_bool("tokenizer.ggml.add_sep_token", add_sep);
  const auto bytes = w.to_bytes();
  auto f = gguf::GgufFile::parse(bytes.data(), bytes.size());
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  auto t = Tokenizer::from_gguf(**f);
  EXPECT_TRUE(t.is_ok()) << t.status().message();
  return *t;
}

TEST(WordPieceTokenizer, EncodesLikeBert) {
  auto t = bert_vocab();
  ASSERT_TRUE(t);
  EXPECT_EQ(t->kind(), Tokenizer::Kind::kWordPiece);
  EXPECT_TRUE(t->lowercase());
  using V = std::vector<int32_t>;
  EXPECT_EQ(t->encode("Hello, WORLDS!", true, true), (V{2, 5, 8, 6, 7, 14, 3}));
  EXPECT_EQ(t->encode("unaffable Caf\xC3\xA9", false, true), (V{9, 10, 11, 12}));
  EXPECT_EQ(t->encode("hello zzz \xE4\xB8\xAD\xE4\xB8\xAD", false, true), (V{5, 1, 13, 13}));
  EXPECT_EQ(t->encode("", true, true), (V{2, 3}));
  // Control-token text is a token only with parse_special; otherwise it is text ("[", "mask",
  // "]": none of them pieces here).
  EXPECT_EQ(t->encode("hello[MASK]", false, true), (V{5, 4}));
  EXPECT_EQ(t->encode("hello[MASK]", false, false), (V{5, 1, 1, 1}));
  // Word starts are looked up with U+2581, continuations without: "s" alone is no word.
  EXPECT_EQ(t->encode("s", false, true), (V{1}));
  auto no_sep = bert_vocab({}, false);
  EXPECT_EQ(no_sep->encode("hello", true, true), (V{2, 5}));
}

TEST(WordPieceTokenizer, CasedVocabularyKeepsCase) {
  auto t = bert_vocab({"\xE2\x96\x81Hello",
                       "\xE2\x96\x81"
                       "Caf\xC3\xA9"});
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->lowercase());
  using V = std::vector<int32_t>;
  EXPECT_EQ(t->encode("Hello hello Caf\xC3\xA9", false, true), (V{15, 5, 16}));
  EXPECT_EQ(t->encode("HELLO", false, true), (V{1}));
}

TEST(WordPieceTokenizer, DecodesAsHuggingFace) {
  auto t = bert_vocab();
  ASSERT_TRUE(t);
  const auto ids = t->encode("Hello, worlds! unaffable zzz", true, true);
  EXPECT_EQ(t->decode(ids, true), "[CLS] hello, worlds! unaffable [UNK] [SEP]");
  EXPECT_EQ(t->decode(ids, false), "hello, worlds! unaffable");
  const std::vector<int32_t> cont_first = {7, 5, -1, 999};  // out-of-range ids are skipped
  EXPECT_EQ(t->decode(cont_first, true), "##s hello");
}

}  // namespace
}  // namespace hearth::tokenizer
