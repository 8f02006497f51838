// The Ollama-layout normalisation (gguf/ollama_compat.h): every llama.cpp-layout fixture is left
// exactly as read, and small files carrying each family's markers get that family's fixes (and
// only with Layout::kNormalized). tests/differential/test_ollama_layout.py checks whole models.
#include "gguf/ollama_compat.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace hearth::gguf {
namespace {

const std::string kFixtures = std::string(HEARTH_SHARED_DIR) + "/fixtures/";

bool has_fix(const GgufFile& f, const std::string& needle) {
  for (const auto& s : f.layout_fixes().fixes)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}

struct Parsed {
  std::vector<uint8_t> bytes;
  std::shared_ptr<GgufFile> f, raw;
};

Parsed parse_both(const GgufWriter& w) {
  Parsed p;
  p.bytes = w.to_bytes();
  auto f = GgufFile::parse(p.bytes.data(), p.bytes.size(), "test");
  auto raw = GgufFile::parse(p.bytes.data(), p.bytes.size(), "test", Layout::kRaw);
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  EXPECT_TRUE(raw.is_ok()) << raw.status().message();
  if (f.is_ok()) p.f = *f;
  if (raw.is_ok()) p.raw = *raw;
  return p;
}

TEST(OllamaCompat, LlamaCppFixturesAreLeftUntouched) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(kFixtures)) {
    if (entry.path().extension() != ".gguf") continue;
    const std::string path = entry.path().string();
    auto f = GgufFile::open(path);
    auto raw = GgufFile::open(path, Layout::kRaw);
    ASSERT_TRUE(f.is_ok() && raw.is_ok()) << path;
    const GgufFile &a = **f, &b = **raw;
    EXPECT_TRUE(detect_ollama_layout(b).empty()) << path << ": " << detect_ollama_layout(b)[0];
    EXPECT_FALSE(a.layout_fixes().applied()) << path;
    EXPECT_EQ(a.layout_fixes().ignored_tensors, 0u);
    ASSERT_EQ(a.metadata().size(), b.metadata().size()) << path;
    for (size_t i = 0; i < a.metadata().size(); ++i) {
      EXPECT_EQ(a.metadata()[i].key, b.metadata()[i].key);
      EXPECT_EQ(a.metadata()[i].value.type, b.metadata()[i].value.type);
    }
    ASSERT_EQ(a.tensors().size(), b.tensors().size()) << path;
    for (size_t i = 0; i < a.tensors().size(); ++i) {
      EXPECT_EQ(a.tensors()[i].name, b.tensors()[i].name);
      EXPECT_EQ(a.tensors()[i].offset, b.tensors()[i].offset);
      EXPECT_EQ(a.tensors()[i].shape, b.tensors()[i].shape);
    }
    ++n;
  }
  EXPECT_GE(n, 30);
}

GgufWriter spm_vocab(const std::string& arch, int n_tokens) {
  GgufWriter w;
  w.set_string("general.architecture", arch);
  std::vector<std::string> toks = {"<pad>",
                                   "<eos>",
                                   "<bos>",
                                   "<unk>",
                                   "\xE2\x96\x81"
                                   "a",
                                   "b"};
  for (int i = int(toks.size()); i < n_tokens; ++i) toks.push_back(std::to_string(i) + "t");
  toks.resize(size_t(n_tokens));
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_array_strings("tokenizer.ggml.tokens", toks);
  w.set_array_f32("tokenizer.ggml.scores", std::vector<float>(toks.size(), 0.0f));
  std::vector<int32_t> types(toks.size(), 1);
  types[0] = types[1] = types[2] = 3;
  w.set_array_i32("tokenizer.ggml.token_type", types);
  return w;
}

TEST(OllamaCompat, Gemma3) {
  static const std::vector<float> emb(4 * 32, 0.5f), vis(16, 1.0f);
  GgufWriter w = spm_vocab("gemma3", 6);  // 6 tokens, 4 embedding rows
  w.set_u32("gemma3.block_count", 1);
  w.set_u32("gemma3.context_length", 131072);
  w.set_f32("gemma3.rope.local.freq_base", 20000.0f);
  w.set_f32("gemma3.final_logit_softcapping", 30.0f);
  w.set_bool("tokenizer.ggml.add_padding_token", false);
  ASSERT_TRUE(w.add_tensor("token_embd.weight", DType::F32, {4, 32}, emb.data(), emb.size() * 4));
  ASSERT_TRUE(w.add_tensor("v.patch_embedding.weight", DType::F32, {16}, vis.data(), 64));
  ASSERT_TRUE(w.add_tensor("mm.mm_soft_emb_norm.weight", DType::F32, {16}, vis.data(), 64));
  Parsed p = parse_both(w);
  ASSERT_TRUE(p.f && p.raw);
  const GgufFile& f = *p.f;
  EXPECT_EQ(detect_ollama_layout(*p.raw).size(), 4u);  // tower, local base, add_padding, no eps
  EXPECT_EQ(f.layout_fixes().family, "gemma3");
  EXPECT_EQ(*f.get_string("general.architecture"), "gemma3");  // generative: stays gemma3
  EXPECT_EQ(f.layout_fixes().ignored_tensors, 2u);
  EXPECT_EQ(f.layout_fixes().ignored_bytes, 128u);
  EXPECT_EQ(f.tensors().size(), 1u);
  EXPECT_EQ(f.find_tensor("v.patch_embedding.weight"), nullptr);
  EXPECT_FLOAT_EQ(float(*f.get_float("gemma3.attention.layer_norm_rms_epsilon")), 1e-6f);
  EXPECT_FLOAT_EQ(float(*f.get_float("gemma3.rope.freq_base")), 1e6f);
  EXPECT_FLOAT_EQ(float(*f.get_float("gemma3.rope.freq_base_swa")), 20000.0f);
  EXPECT_EQ(*f.get_string("gemma3.rope.scaling.type"), "linear");
  EXPECT_FLOAT_EQ(float(*f.get_float("gemma3.rope.scaling.factor")), 8.0f);
  EXPECT_EQ(f.find("gemma3.final_logit_softcapping"), nullptr);
  EXPECT_FALSE(*f.get_bool("tokenizer.ggml.add_space_prefix"));
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens")->size(), 4u);
  EXPECT_EQ(f.get_float_array("tokenizer.ggml.scores")->size(), 4u);
  EXPECT_EQ(f.get_int_array("tokenizer.ggml.token_type")->size(), 4u);
  // As written when asked for.
  EXPECT_EQ(p.raw->tensors().size(), 3u);
  EXPECT_EQ(p.raw->find("gemma3.attention.layer_norm_rms_epsilon"), nullptr);
  EXPECT_EQ(p.raw->get_string_array("tokenizer.ggml.tokens")->size(), 6u);
  EXPECT_FALSE(p.raw->layout_fixes().applied());
  // The tokenizer reads the fixed metadata (no space prefix, four tokens).
  auto t = tokenizer::Tokenizer::from_gguf(f);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ((*t)->n_vocab(), 4);
}

// EmbeddingGemma as Ollama wrote it (its runtime's gemma3_embed): gemma3 keys plus pooling_type,
// the Dense layers as dense.0 / dense.1. Presented as llama.cpp's gemma-embedding.
TEST(OllamaCompat, Gemma3Embedding) {
  static const std::vector<float> emb(4 * 8, 0.5f), d0(16 * 8, 0.25f), d1(8 * 16, 0.125f);
  GgufWriter w = spm_vocab("gemma3", 6);
  w.set_u32("gemma3.block_count", 1);
  w.set_u32("gemma3.context_length", 131072);  // no 128K rope scaling for an embedding model
  w.set_u32("gemma3.embedding_length", 8);
  w.set_u32("gemma3.pooling_type", 1);
  w.set_f32("gemma3.rope.local.freq_base", 10000.0f);
  ASSERT_TRUE(w.add_tensor("token_embd.weight", DType::F32, {4, 8}, emb.data(), emb.size() * 4));
  ASSERT_TRUE(w.add_tensor("dense.0.weight", DType::F32, {16, 8}, d0.data(), d0.size() * 4));
  ASSERT_TRUE(w.add_tensor("dense.1.weight", DType::F32, {8, 16}, d1.data(), d1.size() * 4));
  Parsed p = parse_both(w);
  ASSERT_TRUE(p.f && p.raw);
  const GgufFile& f = *p.f;
  EXPECT_EQ(f.layout_fixes().family, "gemma-embedding");
  EXPECT_TRUE(has_fix(f, "gemma-embedding"));
  EXPECT_EQ(*f.get_string("general.architecture"), "gemma-embedding");
  for (const auto& m : f.metadata()) EXPECT_NE(m.key.substr(0, 7), "gemma3.") << m.key;
  EXPECT_EQ(*f.get_int("gemma-embedding.pooling_type"), 1);
  EXPECT_EQ(*f.get_int("gemma-embedding.block_count"), 1);
  EXPECT_FLOAT_EQ(float(*f.get_float("gemma-embedding.attention.layer_norm_rms_epsilon")), 1e-6f);
  EXPECT_FLOAT_EQ(float(*f.get_float("gemma-embedding.rope.freq_base")), 1e6f);
  EXPECT_FLOAT_EQ(float(*f.get_float("gemma-embedding.rope.freq_base_swa")), 1e4f);
  EXPECT_EQ(f.find("gemma-embedding.rope.scaling.type"), nullptr);
  EXPECT_EQ(*f.get_int("gemma-embedding.dense_2_feat_in"), 8);
  EXPECT_EQ(*f.get_int("gemma-embedding.dense_2_feat_out"), 16);
  EXPECT_EQ(*f.get_int("gemma-embedding.dense_3_feat_in"), 16);
  EXPECT_EQ(*f.get_int("gemma-embedding.dense_3_feat_out"), 8);
  EXPECT_EQ(f.find_tensor("dense.0.weight"), nullptr);
  ASSERT_NE(f.find_tensor("dense_2.weight"), nullptr);
  ASSERT_NE(f.find_tensor("dense_3.weight"), nullptr);
  EXPECT_EQ(f.find_tensor("dense_2.weight")->data, p.raw->find_tensor("dense.0.weight")->data);
  EXPECT_EQ(f.find_tensor("dense_3.weight")->shape, (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens")->size(), 4u);
  // As written when asked for.
  EXPECT_EQ(*p.raw->get_string("general.architecture"), "gemma3");
  EXPECT_NE(p.raw->find_tensor("dense.0.weight"), nullptr);

  // A llama.cpp gemma3 file given a pooling_type (no Dense tensors) stays gemma3, untouched.
  GgufWriter g = spm_vocab("gemma3", 4);
  g.set_u32("gemma3.block_count", 1);
  g.set_f32("gemma3.attention.layer_norm_rms_epsilon", 1e-6f);
  g.set_u32("gemma3.pooling_type", 1);
  ASSERT_TRUE(g.add_tensor("token_embd.weight", DType::F32, {4, 8}, emb.data(), emb.size() * 4));
  Parsed q = parse_both(g);
  ASSERT_TRUE(q.f);
  EXPECT_FALSE(q.f->layout_fixes().applied());
  EXPECT_EQ(*q.f->get_string("general.architecture"), "gemma3");

  // A Dense bias would be dropped silently: refused.
  GgufWriter b = w;
  ASSERT_TRUE(b.add_tensor("dense.0.bias", DType::F32, {16}, d0.data(), 64));
  const std::vector<uint8_t> bytes = b.to_bytes();
  EXPECT_FALSE(GgufFile::parse(bytes.data(), bytes.size(), "test").is_ok());
}

TEST(OllamaCompat, Qwen35) {
  static const std::vector<float> data(64, 0.25f);
  for (const std::string arch : {"qwen35", "qwen35moe"}) {
    GgufWriter w;
    w.set_string("general.architecture", arch);
    w.set_array_u32(arch + ".attention.head_count_kv", {0, 0, 0, 2});
    w.set_array_i32(arch + ".rope.dimension_sections", {3, 3, 2});
    w.set_array_i32(arch + ".mrope_sections", {3, 3, 2});
    w.set_u32(arch + ".feed_forward_length", 0);
    w.set_u32(arch + ".expert_feed_forward_length", 256);
    ASSERT_TRUE(w.add_tensor("blk.0.ssm_dt", DType::F32, {4}, data.data(), 16));
    ASSERT_TRUE(w.add_tensor("blk.0.ssm_a", DType::F32, {4}, data.data(), 16));
    ASSERT_TRUE(w.add_tensor("mtp.fc.weight", DType::F32, {4, 4}, data.data(), 64));
    Parsed p = parse_both(w);
    ASSERT_TRUE(p.f);
    const GgufFile& f = *p.f;
    EXPECT_EQ(f.layout_fixes().family, arch);
    EXPECT_EQ(*f.get_int(arch + ".attention.head_count_kv"), 2);
    EXPECT_EQ(*f.get_int_array(arch + ".attention.recurrent_layers"),
              (std::vector<int64_t>{1, 1, 1, 0}));
    EXPECT_EQ(*f.get_int_array(arch + ".rope.dimension_sections"),
              (std::vector<int64_t>{3, 3, 2, 0}));
    EXPECT_NE(f.find_tensor("blk.0.ssm_dt.bias"), nullptr);
    EXPECT_EQ(f.find_tensor("blk.0.ssm_dt"), nullptr);
    EXPECT_NE(f.find_tensor("blk.0.ssm_a"), nullptr);
    EXPECT_EQ(f.find_tensor("mtp.fc.weight"), nullptr);
    EXPECT_EQ(f.layout_fixes().ignored_tensors, 1u);
    EXPECT_EQ(*f.get_int(arch + ".feed_forward_length"), arch == "qwen35moe" ? 256 : 0);
  }
}

// A marked file with nothing to hide or rename (what `hearth quantize` writes from a normalised
// file: the markers stay) keeps every tensor intact.
TEST(OllamaCompat, NormalisedFileReadAgain) {
  static const std::vector<float> data(64, 0.25f);
  GgufWriter w;
  w.set_string("general.architecture", "qwen35");
  w.set_bool("qwen35.rope.mrope_interleaved", true);
  w.set_array_i32("qwen35.rope.dimension_sections", {3, 3, 2, 0});
  ASSERT_TRUE(w.add_tensor("token_embd.weight", DType::F32, {4, 16}, data.data(), 256));
  ASSERT_TRUE(w.add_tensor("blk.0.ssm_dt.bias", DType::F32, {4}, data.data(), 16));
  Parsed p = parse_both(w);
  ASSERT_TRUE(p.f);
  EXPECT_EQ(p.f->layout_fixes().family, "qwen35");
  EXPECT_EQ(p.f->layout_fixes().ignored_tensors, 0u);
  ASSERT_EQ(p.f->tensors().size(), 2u);
  const TensorInfo* t = p.f->find_tensor("token_embd.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{4, 16}));
  EXPECT_EQ(t->data, p.raw->find_tensor("token_embd.weight")->data);
  EXPECT_EQ(*p.f->get_int_array("qwen35.rope.dimension_sections"),
            (std::vector<int64_t>{3, 3, 2, 0}));
}

TEST(OllamaCompat, Gemma4BpeVocabulary) {
  const std::vector<std::string> toks = {"<pad>", "<eos>", "<bos>", "<0x41>",
                                         "a",     "b",     "ab",    "<|channel>"};
  GgufWriter w;
  w.set_string("general.architecture", "gemma4");
  w.set_string("tokenizer.ggml.model", "llama");
  w.set_string("tokenizer.ggml.pre", "gemma4");
  w.set_array_strings("tokenizer.ggml.tokens", toks);
  w.set_array_f32("tokenizer.ggml.scores", {0, 1, 2, 3, 4, 5, 6, 7});
  w.set_array_i32("tokenizer.ggml.token_type", {3, 3, 3, 1, 1, 1, 1, 3});
  w.set_array_strings("tokenizer.ggml.merges", {"a b"});
  w.set_u32("tokenizer.ggml.bos_token_id", 2);
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  Parsed p = parse_both(w);
  ASSERT_TRUE(p.f);
  const GgufFile& f = *p.f;
  EXPECT_EQ(*f.get_string("tokenizer.ggml.model"), "gemma4");
  EXPECT_EQ(*f.get_int_array("tokenizer.ggml.token_type"),
            (std::vector<int64_t>{3, 3, 3, 6, 1, 1, 1, 4}));
  EXPECT_TRUE(*f.get_bool("tokenizer.ggml.add_bos_token"));
  auto t = tokenizer::Tokenizer::from_gguf(f);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_EQ((*t)->encode("ab", true, true), (std::vector<int32_t>{2, 6}));
  EXPECT_EQ((*t)->piece(3), "A");  // a byte token again

  // Gemma 4 with a SentencePiece vocabulary and no tower (a llama.cpp fixture): untouched.
  GgufWriter s = spm_vocab("gemma4", 6);
  Parsed q = parse_both(s);
  ASSERT_TRUE(q.f);
  EXPECT_FALSE(q.f->layout_fixes().applied());
}

GgufWriter llama3_vocab() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_array_strings("tokenizer.ggml.tokens", {"a", "b", "<|begin_of_text|>", "<|end_of_text|>",
                                                "<|start_header_id|>", "<|eom_id|>", "<|eot_id|>"});
  w.set_array_i32("tokenizer.ggml.token_type", {1, 1, 3, 3, 3, 3, 3});
  w.set_array_strings("tokenizer.ggml.merges", {"a b"});
  w.set_u32("tokenizer.ggml.bos_token_id", 2);
  w.set_u32("tokenizer.ggml.eos_token_id", 3);
  return w;
}

TEST(OllamaCompat, Llama3) {
  Parsed p = parse_both(llama3_vocab());
  ASSERT_TRUE(p.f);
  const GgufFile& f = *p.f;
  EXPECT_EQ(*f.get_string("tokenizer.ggml.pre"), "llama-bpe");
  EXPECT_EQ(*f.get_int("tokenizer.ggml.eos_token_id"), 6);
  EXPECT_EQ(*f.get_int("tokenizer.ggml.eot_token_id"), 6);
  EXPECT_EQ(*f.get_int_array("tokenizer.ggml.eos_token_ids"), (std::vector<int64_t>{3, 6}));
  auto t = tokenizer::Tokenizer::from_gguf(f);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_TRUE((*t)->is_eog(3));
  EXPECT_TRUE((*t)->is_eog(6));
  EXPECT_TRUE((*t)->add_bos());  // llama-bpe's default
  EXPECT_EQ((*t)->special().eos, 6);

  // With llama.cpp's pre-tokenizer name the file is a llama.cpp file: left alone.
  GgufWriter w = llama3_vocab();
  w.set_string("tokenizer.ggml.pre", "llama-bpe");
  Parsed q = parse_both(w);
  ASSERT_TRUE(q.f);
  EXPECT_FALSE(q.f->layout_fixes().applied());
  EXPECT_EQ(*q.f->get_int("tokenizer.ggml.eos_token_id"), 3);
}

TEST(OllamaCompat, Llama4) {
  static const std::vector<float> data(16, 1.0f);
  GgufWriter w = llama3_vocab();
  w.set_string("general.architecture", "llama4");
  w.set_string("tokenizer.ggml.pre", "default");
  w.set_u32("llama4.attention.chunk_size", 4096);
  ASSERT_TRUE(w.add_tensor("v.class_embedding", DType::F32, {16}, data.data(), 64));
  Parsed p = parse_both(w);
  ASSERT_TRUE(p.f);
  EXPECT_EQ(*p.f->get_string("tokenizer.ggml.pre"), "llama4");
  EXPECT_EQ(*p.f->get_int("llama4.attention.sliding_window"), 4096);
  EXPECT_TRUE(p.f->tensors().empty());
  EXPECT_TRUE(has_fix(*p.f, "vision/projector"));
}

TEST(OllamaCompat, EosTokenIdsAreEndsOfGeneration) {
  GgufWriter w = llama3_vocab();
  w.set_string("tokenizer.ggml.pre", "llama-bpe");
  w.set_array_i32("tokenizer.ggml.eos_token_ids", {0, 5, 999});  // 999: outside, ignored
  Parsed p = parse_both(w);
  ASSERT_TRUE(p.f);
  auto t = tokenizer::Tokenizer::from_gguf(*p.f);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  EXPECT_TRUE((*t)->is_eog(0));
  EXPECT_TRUE((*t)->is_eog(5));
  EXPECT_FALSE((*t)->is_eog(1));
}

}  // namespace
}  // namespace hearth::gguf
