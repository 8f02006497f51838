// libFuzzer target: the tokenizers on arbitrary bytes. The first byte picks the vocabulary (the
// real Qwen3, Llama 3.1 and Gemma 3 ones, and Gemma 3's pieces and scores run as a Unigram
// vocabulary: tokenizer.ggml.model t5, XLM-R's whitespace settings) and the flags; the rest is
// text. Encoding, decoding and the streaming detokenizer with a stop string must neither crash nor
// lose text: a lossless vocabulary gives back the (sanitized, for Qwen NFC-normalized) input.
// (Hostile precompiled charsmaps reach the Unigram normalizer through fuzz_gguf's seeds.)
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "tokenizer/stream.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

std::shared_ptr<const hearth::tokenizer::Tokenizer> vocab(int i) {
  static std::shared_ptr<const hearth::tokenizer::Tokenizer> v[4];
  static const char* names[4] = {"qwen3", "llama3_1", "gemma3", "gemma3"};
  static std::vector<uint8_t> unigram_file;
  if (!v[i]) {
    auto f = hearth::gguf::GgufFile::open(std::string(HEARTH_SHARED_DIR) + "/fixtures/vocab-" +
                                          names[i] + ".gguf");
    if (!f) std::abort();
    if (i == 3) {  // the same pieces and scores as a t5 (Unigram) vocabulary
      hearth::gguf::GgufWriter w;
      for (const auto& e : (*f)->metadata()) w.copy_value(std::string(e.key), e.value);
      w.set_string("tokenizer.ggml.model", "t5");
      w.set_bool("tokenizer.ggml.add_space_prefix", true);
      w.set_bool("tokenizer.ggml.remove_extra_whitespaces", true);
      unigram_file = w.to_bytes();
      f = hearth::gguf::GgufFile::parse(unigram_file.data(), unigram_file.size());
      if (!f) std::abort();
    }
    auto t = hearth::tokenizer::Tokenizer::from_gguf(**f);
    if (!t) std::abort();
    v[i] = *t;
  }
  return v[i];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const auto t = vocab(mode % 4);
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool special = mode & 4;
  const auto ids = t->encode(text, mode & 8, special);
  for (int32_t id : ids)
    if (id < 0 || id >= t->n_vocab()) std::abort();
  const std::string back = t->decode(ids, true);
  if (!special && !(mode & 8)) {
    std::string want = hearth::tokenizer::sanitize_utf8(text);
    if (mode % 4 == 0) want = hearth::tokenizer::nfc(want);
    if (mode % 4 < 2 && back != want) std::abort();  // byte-level BPE is lossless
  }
  hearth::tokenizer::TextStream s(*t, {text.substr(0, (mode >> 4) % 5)});
  std::string streamed;
  for (int32_t id : ids) {
    streamed += s.push(id);
    if (s.stopped()) break;
  }
  streamed += s.flush();
  if (!hearth::tokenizer::is_valid_utf8(streamed)) std::abort();
  return 0;
}
