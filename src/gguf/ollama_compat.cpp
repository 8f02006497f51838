// Ollama library layout -> llama.cpp layout (see gguf/ollama_compat.h). The facts per family are
// in docs/architecture.md ("Ollama-layout files"); every fix below is applied only when one of
// its family's markers is present.
#include "gguf/ollama_compat.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>

namespace hearth::gguf {

// The one writer of a parsed GgufFile's metadata and tensor list (a friend of GgufFile).
class LayoutEditor {
 public:
  explicit LayoutEditor(GgufFile& f) : f_(f) {}
  const GgufFile& file() const { return f_; }
  void note(std::string s) { f_.fixes_.fixes.push_back(std::move(s)); }
  void set_family(std::string a) { f_.fixes_.family = std::move(a); }

  std::string_view own(std::string s) {
    f_.owned_.push_back(std::move(s));
    return f_.owned_.back();
  }

  void set(std::string_view key, MetaValue v) {
    if (auto it = f_.meta_index_.find(key); it != f_.meta_index_.end()) {
      f_.meta_[it->second].value = std::move(v);
      return;
    }
    MetaEntry e;
    e.key = own(std::string(key));
    e.value = std::move(v);
    f_.meta_index_.emplace(e.key, f_.meta_.size());
    f_.meta_.push_back(std::move(e));
  }
  void set_u32(std::string_view key, uint32_t x) {
    MetaValue v;
    v.type = ValueType::U32;
    v.i = x;
    v.u = x;
    set(key, std::move(v));
  }
  void set_f32(std::string_view key, float x) {
    MetaValue v;
    v.type = ValueType::F32;
    v.f = x;
    set(key, std::move(v));
  }
  void set_bool(std::string_view key, bool x) {
    MetaValue v;
    v.type = ValueType::BOOL;
    v.i = x;
    set(key, std::move(v));
  }
  void set_string(std::string_view key, std::string x) {
    MetaValue v;
    v.type = ValueType::STRING;
    v.s = own(std::move(x));
    set(key, std::move(v));
  }
  // An array of fixed-size elements from their little-endian bytes.
  void set_array(std::string_view key, ValueType elem, uint64_t count, std::string bytes) {
    MetaValue v;
    v.type = ValueType::ARRAY;
    v.elem_type = elem;
    v.count = count;
    v.raw = reinterpret_cast<const uint8_t*>(own(std::move(bytes)).data());
    set(key, std::move(v));
  }
  void set_i32_array(std::string_view key, const std::vector<int32_t>& a) {
    std::string b(a.size() * 4, '\0');
    if (!a.empty()) std::memcpy(b.data(), a.data(), b.size());
    set_array(key, ValueType::I32, a.size(), std::move(b));
  }
  void set_bool_array(std::string_view key, const std::vector<bool>& a) {
    std::string b(a.size(), '\0');
    for (size_t i = 0; i < a.size(); ++i) b[i] = a[i] ? 1 : 0;
    set_array(key, ValueType::BOOL, a.size(), std::move(b));
  }
  // Keeps the first n entries of an array (its bytes stay where they are).
  void truncate_array(std::string_view key, uint64_t n) {
    const MetaValue* v = f_.find(key);
    if (!v || v->type != ValueType::ARRAY || v->count <= n) return;
    MetaValue c = *v;
    c.count = n;
    if (c.elem_type == ValueType::STRING) c.strs.resize(size_t(n));
    set(key, std::move(c));
  }
  void erase(std::string_view key) {
    auto it = f_.meta_index_.find(key);
    if (it == f_.meta_index_.end()) return;
    f_.meta_.erase(f_.meta_.begin() + std::ptrdiff_t(it->second));
    f_.meta_index_.clear();
    for (size_t i = 0; i < f_.meta_.size(); ++i) f_.meta_index_.emplace(f_.meta_[i].key, i);
  }

  // Gives an entry a new key in place (false if `to` is taken or `from` is absent).
  bool rename_key(std::string_view from, const std::string& to) {
    auto it = f_.meta_index_.find(from);
    if (it == f_.meta_index_.end() || f_.meta_index_.count(to)) return false;
    const size_t idx = it->second;
    f_.meta_index_.erase(it);
    f_.meta_[idx].key = own(to);
    f_.meta_index_.emplace(f_.meta_[idx].key, idx);
    return true;
  }

  bool rename_tensor(std::string_view from, const std::string& to) {
    auto it = f_.tensor_index_.find(from);
    if (it == f_.tensor_index_.end() || f_.tensor_index_.count(to)) return false;
    const size_t idx = it->second;
    f_.tensor_index_.erase(it);
    f_.tensors_[idx].name = own(to);
    f_.tensor_index_.emplace(f_.tensors_[idx].name, idx);
    return true;
  }
  // Removes the tensors `drop` selects from tensors(); returns how many.
  size_t hide_tensors(const std::function<bool(std::string_view)>& drop) {
    std::vector<TensorInfo> keep;
    keep.reserve(f_.tensors_.size());
    size_t n = 0;
    for (const auto& t : f_.tensors_) {
      if (!drop(t.name)) {
        keep.push_back(t);
        continue;
      }
      ++n;
      f_.fixes_.ignored_tensors++;
      f_.fixes_.ignored_bytes += t.nbytes;
    }
    if (n == 0) return 0;
    f_.tensors_ = std::move(keep);
    f_.tensor_index_.clear();
    for (size_t i = 0; i < f_.tensors_.size(); ++i)
      f_.tensor_index_.emplace(f_.tensors_[i].name, i);
    return n;
  }

 private:
  GgufFile& f_;
};

namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

bool has(const GgufFile& f, const std::string& key) {
  return f.find(key) != nullptr;
}

std::string str_or(const GgufFile& f, const std::string& key, std::string fallback) {
  const MetaValue* v = f.find(key);
  return v && v->type == ValueType::STRING ? std::string(v->s) : fallback;
}

bool is_array(const GgufFile& f, const std::string& key) {
  const MetaValue* v = f.find(key);
  return v && v->type == ValueType::ARRAY;
}

bool any_key_with_prefix(const GgufFile& f, std::string_view prefix) {
  for (const auto& e : f.metadata())
    if (starts_with(e.key, prefix)) return true;
  return false;
}

// The first tensor whose name starts with one of the prefixes, or "".
std::string_view tensor_with_prefix(const GgufFile& f, std::initializer_list<std::string_view> ps) {
  for (const auto& t : f.tensors())
    for (auto p : ps)
      if (starts_with(t.name, p)) return t.name;
  return {};
}

bool has_merges(const GgufFile& f) {
  const MetaValue* v = f.find("tokenizer.ggml.merges");
  return v && v->type == ValueType::ARRAY && v->elem_type == ValueType::STRING && v->count > 0;
}

// Id of a token by its text (linear scan: used a handful of times per load), -1 if none.
int64_t token_id(const GgufFile& f, std::string_view text) {
  const MetaValue* v = f.find("tokenizer.ggml.tokens");
  if (!v || v->type != ValueType::ARRAY || v->elem_type != ValueType::STRING) return -1;
  for (size_t i = 0; i < v->strs.size(); ++i)
    if (v->strs[i] == text) return int64_t(i);
  return -1;
}

// "blk.<n>.<rest>" -> rest ("" if the name is not a block tensor).
std::string_view block_suffix(std::string_view name) {
  if (!starts_with(name, "blk.")) return {};
  const size_t dot = name.find('.', 4);
  if (dot == std::string_view::npos || dot == 4) return {};
  for (size_t i = 4; i < dot; ++i)
    if (name[i] < '0' || name[i] > '9') return {};
  return name.substr(dot + 1);
}

void marker_if(std::vector<std::string>& m, bool cond, std::string what) {
  if (cond) m.push_back(std::move(what));
}

void tensor_marker(std::vector<std::string>& m, const GgufFile& f,
                   std::initializer_list<std::string_view> ps) {
  if (auto t = tensor_with_prefix(f, ps); !t.empty())
    m.push_back("tensor '" + std::string(t) + "' (not part of the text model)");
}

// ----------------------------------------------------------------------------------- markers

// EmbeddingGemma as Ollama wrote it (its runtime's gemma3_embed, chosen by the presence of
// pooling_type). The Dense tensor is what tells it from a llama.cpp gemma3 file given a
// pooling_type to embed with, which stays a gemma3 model.
bool is_gemma3_embedding(const GgufFile& f) {
  return has(f, "gemma3.pooling_type") && f.find_tensor("dense.0.weight") != nullptr;
}

std::vector<std::string> gemma3_markers(const GgufFile& f) {
  std::vector<std::string> m;
  const std::string p = "gemma3.";
  marker_if(m, has(f, p + "mm.tokens_per_image"), p + "mm.tokens_per_image");
  marker_if(m, any_key_with_prefix(f, p + "vision."), p + "vision.* keys");
  tensor_marker(m, f, {"v.", "mm."});
  marker_if(m, has(f, p + "rope.global.freq_base"), p + "rope.global.freq_base");
  marker_if(m, has(f, p + "rope.local.freq_base"), p + "rope.local.freq_base");
  marker_if(m, has(f, "tokenizer.ggml.add_padding_token"), "tokenizer.ggml.add_padding_token");
  marker_if(m, has(f, "tokenizer.ggml.add_unknown_token"), "tokenizer.ggml.add_unknown_token");
  marker_if(m, is_gemma3_embedding(f), p + "pooling_type with tensor 'dense.0.weight'");
  // (in a file with hyperparameters: a vocabulary-only file has none at all)
  marker_if(m, has(f, p + "block_count") && !has(f, p + "attention.layer_norm_rms_epsilon"),
            "no " + p + "attention.layer_norm_rms_epsilon");
  return m;
}

std::vector<std::string> gemma4_markers(const GgufFile& f) {
  std::vector<std::string> m;
  tensor_marker(m, f, {"v.", "a.", "mm.", "model.vision_tower."});
  marker_if(m, any_key_with_prefix(f, "gemma4.vision."), "gemma4.vision.* keys");
  marker_if(m, any_key_with_prefix(f, "gemma4.audio."), "gemma4.audio.* keys");
  // Gemma 4's vocabulary is a BPE with merges; Ollama labels it 'llama' (SentencePiece).
  marker_if(m, str_or(f, "tokenizer.ggml.model", "") == "llama" && has_merges(f),
            "tokenizer.ggml.model 'llama' with merges");
  return m;
}

std::vector<std::string> qwen35_markers(const GgufFile& f, const std::string& arch) {
  std::vector<std::string> m;
  const std::string p = arch + ".";
  marker_if(m, any_key_with_prefix(f, p + "vision."), p + "vision.* keys");
  marker_if(m, has(f, p + "image_token_id"), p + "image_token_id");
  marker_if(m, has(f, p + "ssm.v_head_reordered"), p + "ssm.v_head_reordered");
  marker_if(m, has(f, p + "rope.mrope_interleaved"), p + "rope.mrope_interleaved");
  marker_if(m, has(f, p + "mrope_sections"), p + "mrope_sections");
  marker_if(m, has(f, p + "rope.mrope_section"), p + "rope.mrope_section");
  marker_if(m, is_array(f, p + "attention.head_count_kv"),
            p + "attention.head_count_kv is a per-layer array");
  tensor_marker(m, f, {"mtp.", "v."});
  for (const auto& t : f.tensors())
    if (block_suffix(t.name) == "ssm_dt") {
      m.push_back("tensor '" + std::string(t.name) + "' without .bias");
      break;
    }
  return m;
}

std::vector<std::string> llama4_markers(const GgufFile& f) {
  std::vector<std::string> m;
  tensor_marker(m, f, {"v.", "mm."});
  marker_if(m, any_key_with_prefix(f, "llama4.vision."), "llama4.vision.* keys");
  marker_if(m, str_or(f, "tokenizer.ggml.pre", "default") == "default",
            "tokenizer.ggml.pre missing or 'default'");
  return m;
}

// Llama 3 vocabularies (the chat markers are tokens) without a pre-tokenizer name: Ollama's
// converter wrote none (or "default") where llama.cpp writes llama-bpe.
std::vector<std::string> llama3_markers(const GgufFile& f) {
  std::vector<std::string> m;
  const std::string pre = str_or(f, "tokenizer.ggml.pre", "");
  if ((pre.empty() || pre == "default") && str_or(f, "tokenizer.ggml.model", "") == "gpt2" &&
      token_id(f, "<|eot_id|>") >= 0 && token_id(f, "<|start_header_id|>") >= 0)
    m.push_back("Llama 3 vocabulary with tokenizer.ggml.pre " +
                (pre.empty() ? std::string("missing") : "'" + pre + "'"));
  return m;
}

// ------------------------------------------------------------------------------------- fixes

void hide(LayoutEditor& e, std::initializer_list<std::string_view> prefixes, const char* what) {
  const size_t n = e.hide_tensors([&](std::string_view name) {
    for (auto p : prefixes)
      if (starts_with(name, p)) return true;
    return false;
  });
  if (n) e.note("ignored " + std::to_string(n) + " " + what + " tensors");
}

void default_f32(LayoutEditor& e, const std::string& key, float v) {
  if (has(e.file(), key)) return;
  e.set_f32(key, v);
  e.note("set " + key + " = " + std::to_string(v) + " (Ollama's default)");
}

void copy_key(LayoutEditor& e, const std::string& from, const std::string& to) {
  const MetaValue* v = e.file().find(from);
  if (!v || has(e.file(), to)) return;
  MetaValue c = *v;
  e.set(to, std::move(c));
  e.note("read " + from + " as " + to);
}

// An SPM vocabulary without tokenizer.ggml.add_space_prefix: llama.cpp's Gemma files say false.
void gemma_space_prefix(LayoutEditor& e) {
  if (str_or(e.file(), "tokenizer.ggml.model", "") != "llama" ||
      has(e.file(), "tokenizer.ggml.add_space_prefix"))
    return;
  e.set_bool("tokenizer.ggml.add_space_prefix", false);
  e.note("set tokenizer.ggml.add_space_prefix = false (Gemma)");
}

void fix_gemma3(LayoutEditor& e) {
  const GgufFile& f = e.file();
  const std::string p = "gemma3.";
  const bool embed = is_gemma3_embedding(f);
  hide(e, {"v.", "mm."}, "vision/projector");
  default_f32(e, p + "attention.layer_norm_rms_epsilon", 1e-6f);
  copy_key(e, p + "rope.global.freq_base", p + "rope.freq_base");
  default_f32(e, p + "rope.freq_base", 1e6f);
  copy_key(e, p + "rope.local.freq_base", p + "rope.freq_base_swa");
  default_f32(e, p + "rope.freq_base_swa", 1e4f);
  // 4B/12B/27B: Ollama drops the linear x8 scaling of the 128K-context models.
  if (!embed && !has(f, p + "rope.scaling.type") && !has(f, p + "rope.scaling.factor")) {
    const MetaValue* ctx = f.find(p + "context_length");
    if (ctx && ctx->is_integer() && ctx->i >= 131072) {
      e.set_string(p + "rope.scaling.type", "linear");
      e.set_f32(p + "rope.scaling.factor", 8.0f);
      e.note("set " + p + "rope.scaling = linear x8 (128K-context Gemma 3)");
    }
  }
  // Ollama's converter defaulted the soft-cap to 30; Gemma 3 has none (its engine ignored it).
  if (has(f, p + "final_logit_softcapping")) {
    e.erase(p + "final_logit_softcapping");
    e.note("ignored " + p + "final_logit_softcapping (Gemma 3 has none)");
  }
  gemma_space_prefix(e);
  // Added tokens past the embedding table (1B/270M): the tokenizer arrays end where it does.
  if (const TensorInfo* emb = f.find_tensor("token_embd.weight"); emb && !emb->shape.empty()) {
    const uint64_t rows = uint64_t(emb->shape.front());
    const MetaValue* tok = f.find("tokenizer.ggml.tokens");
    if (tok && tok->type == ValueType::ARRAY && tok->count > rows) {
      const uint64_t n = tok->count;
      for (const char* k :
           {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type"})
        e.truncate_array(k, rows);
      e.note("cut the vocabulary from " + std::to_string(n) + " to the " + std::to_string(rows) +
             " rows of token_embd");
    }
  }
}

// After fix_gemma3 on an embedding file: the gemma3 keys become llama.cpp's gemma-embedding keys
// and the sentence-transformers Dense layers (Ollama: `dense.0`, `dense.1`, applied in that order
// after pooling, shapes only) become dense_2 / dense_3 with the feature counts llama.cpp's
// converter writes as keys.
Status gemma3_to_embedding(LayoutEditor& e) {
  const GgufFile& f = e.file();
  const std::string from = "gemma3.", to = "gemma-embedding.";
  for (const char* bias : {"dense.0.bias", "dense.1.bias"})
    if (f.find_tensor(bias))  // nothing reads a Dense bias: refuse rather than drop it silently
      return unsupported(std::string("[gguf] Ollama-layout EmbeddingGemma: tensor '") + bias +
                         "' (a Dense layer with a bias) is not supported");
  std::vector<std::string> keys;
  for (const auto& m : f.metadata())
    if (starts_with(m.key, from)) keys.emplace_back(m.key);
  size_t moved = 0;
  for (const auto& k : keys) moved += e.rename_key(k, to + k.substr(from.size()));
  e.set_string("general.architecture", "gemma-embedding");
  e.note("architecture gemma3 with pooling_type -> gemma-embedding (" + std::to_string(moved) +
         " keys moved from " + from + "* to " + to + "*)");
  const std::pair<const char*, const char*> kDense[] = {{"dense.0", "dense_2"},
                                                        {"dense.1", "dense_3"}};
  for (const auto& [o, l] : kDense) {
    const std::string name = std::string(o) + ".weight", renamed = std::string(l) + ".weight";
    const TensorInfo* t = f.find_tensor(name);
    if (!t) continue;
    // Outermost-first {out, in}: each row is one output feature.
    if (t->shape.size() == 2) {
      const std::string k = to + l;
      if (!has(f, k + "_feat_in")) e.set_u32(k + "_feat_in", uint32_t(t->shape[1]));
      if (!has(f, k + "_feat_out")) e.set_u32(k + "_feat_out", uint32_t(t->shape[0]));
    }
    if (e.rename_tensor(name, renamed))
      e.note("tensor " + name + " -> " + renamed + " (" + std::to_string(t->shape.back()) + " -> " +
             std::to_string(t->shape.front()) + " features)");
  }
  return Status::ok();
}

void fix_gemma4(LayoutEditor& e) {
  const GgufFile& f = e.file();
  const std::string p = "gemma4.";
  hide(e, {"v.", "a.", "mm.", "model.vision_tower."}, "vision/audio/projector");
  if (str_or(f, "tokenizer.ggml.model", "") == "llama" && has_merges(f)) {
    e.set_string("tokenizer.ggml.model", "gemma4");
    e.note("tokenizer.ggml.model 'llama' -> 'gemma4' (a BPE vocabulary with merges)");
    // Types as llama.cpp writes them: byte tokens are BYTE; the channel/tool markers are
    // USER_DEFINED so they are matched in text and rendered.
    const MetaValue* tok = f.find("tokenizer.ggml.tokens");
    const MetaValue* ty = f.find("tokenizer.ggml.token_type");
    auto types = f.get_int_array("tokenizer.ggml.token_type");
    if (tok && ty && types.is_ok() && tok->type == ValueType::ARRAY &&
        tok->elem_type == ValueType::STRING && types->size() == tok->strs.size()) {
      std::vector<int32_t> t(types->begin(), types->end());
      static const std::string_view kUserDefined[] = {
          "<|channel>",       "<channel|>",       "<|tool_call>", "<tool_call|>",
          "<|tool_response>", "<tool_response|>", "<|\"|>"};
      size_t changed = 0;
      for (size_t i = 0; i < t.size(); ++i) {
        const std::string_view s = tok->strs[i];
        int32_t want = t[i];
        if (s.size() == 6 && starts_with(s, "<0x") && s[5] == '>' && t[i] == 1) want = 6;
        for (auto u : kUserDefined)
          if (s == u) want = 4;
        changed += want != t[i];
        t[i] = want;
      }
      if (changed) {
        e.set_i32_array("tokenizer.ggml.token_type", t);
        e.note("retyped " + std::to_string(changed) +
               " tokens (byte tokens, channel/tool markers)");
      }
    }
  }
  // llama.cpp's converter always sets add_bos for Gemma 4; Ollama's renderer wrote <bos> itself.
  const MetaValue* bos = f.find("tokenizer.ggml.add_bos_token");
  if (!bos || bos->type != ValueType::BOOL || bos->i == 0) {
    e.set_bool("tokenizer.ggml.add_bos_token", true);
    e.note("set tokenizer.ggml.add_bos_token = true (Gemma 4)");
  }
  gemma_space_prefix(e);
  copy_key(e, p + "rope.local.freq_base", p + "rope.freq_base_swa");
  // Tensor names Ollama's engine also accepted.
  static const std::pair<std::string_view, std::string_view> kAlias[] = {
      {"attn_post_norm.weight", "post_attention_norm.weight"},
      {"ffn_pre_norm.weight", "ffn_norm.weight"},
      {"ffn_post_norm.weight", "post_ffw_norm.weight"},
      {"ffn_pre_norm_2.weight", "pre_ffw_norm_2.weight"},
      {"ffn_post_norm_1.weight", "post_ffw_norm_1.weight"},
      {"ffn_post_norm_2.weight", "post_ffw_norm_2.weight"},
      {"layer_scalar", "layer_output_scale.weight"},
      {"layer_scalar.weight", "layer_output_scale.weight"},
      {"ffn_gate_inp.per_expert_scale", "ffn_down_exps.scale"},
  };
  std::vector<std::pair<std::string, std::string>> renames;
  for (const auto& t : f.tensors()) {
    const std::string_view suf = block_suffix(t.name);
    for (const auto& [from, to] : kAlias)
      if (!suf.empty() && suf == from) {
        const std::string name(t.name);
        renames.push_back({name, name.substr(0, name.size() - suf.size()) + std::string(to)});
      }
  }
  size_t n = 0;
  for (const auto& [from, to] : renames) n += e.rename_tensor(from, to);
  if (n) e.note("renamed " + std::to_string(n) + " tensors to llama.cpp's names");
}

void fix_qwen35(LayoutEditor& e, const std::string& arch) {
  const GgufFile& f = e.file();
  const std::string p = arch + ".";
  hide(e, {"mtp.", "v."}, "MTP/vision");
  // Per-layer head_count_kv: 0 marks a recurrent (Gated DeltaNet) layer.
  if (is_array(f, p + "attention.head_count_kv")) {
    auto kv = f.get_int_array(p + "attention.head_count_kv");
    if (kv.is_ok()) {
      int64_t mx = 0;
      std::vector<bool> rec;
      for (int64_t x : *kv) {
        mx = std::max(mx, x);
        rec.push_back(x == 0);
      }
      if (!has(f, p + "attention.recurrent_layers"))
        e.set_bool_array(p + "attention.recurrent_layers", rec);
      e.set_u32(p + "attention.head_count_kv", uint32_t(std::clamp<int64_t>(mx, 1, 1 << 20)));
      e.note(p + "attention.head_count_kv array -> " + std::to_string(mx) +
             " and attention.recurrent_layers");
    }
  }
  // Rope sections: three entries, possibly only under Ollama's names; llama.cpp has four.
  for (const std::string& from :
       {p + "rope.dimension_sections", p + "rope.mrope_section", p + "mrope_sections"}) {
    if (!is_array(f, from)) continue;
    auto sec = f.get_int_array(from);
    if (!sec.is_ok() || sec->size() > 4) break;
    if (from == p + "rope.dimension_sections" && sec->size() == 4) break;
    std::vector<int32_t> s4(4, 0);
    for (size_t i = 0; i < sec->size(); ++i)
      s4[i] = int32_t(std::clamp<int64_t>((*sec)[i], 0, 1 << 20));
    e.set_i32_array(p + "rope.dimension_sections", s4);
    e.note(from + " (" + std::to_string(sec->size()) + " entries) -> " + p +
           "rope.dimension_sections (4 entries)");
    break;
  }
  std::vector<std::string> dt;
  for (const auto& t : f.tensors())
    if (block_suffix(t.name) == "ssm_dt") dt.emplace_back(t.name);
  size_t n = 0;
  for (const auto& name : dt) n += e.rename_tensor(name, name + ".bias");
  if (n) e.note("renamed " + std::to_string(n) + " ssm_dt tensors to ssm_dt.bias");
  if (arch == "qwen35moe") {  // Ollama writes the dense FFN size even for MoE models (often 0)
    const MetaValue* ff = f.find(p + "feed_forward_length");
    const MetaValue* fe = f.find(p + "expert_feed_forward_length");
    if ((!ff || (ff->is_integer() && ff->i == 0)) && fe && fe->is_integer() && fe->i > 0) {
      e.set_u32(p + "feed_forward_length", uint32_t(std::min<int64_t>(fe->i, 1 << 30)));
      e.note("set " + p + "feed_forward_length = expert_feed_forward_length");
    }
  }
}

void fix_llama4(LayoutEditor& e) {
  const GgufFile& f = e.file();
  hide(e, {"v.", "mm."}, "vision/projector");
  if (str_or(f, "tokenizer.ggml.pre", "default") == "default" &&
      str_or(f, "tokenizer.ggml.model", "") == "gpt2") {
    e.set_string("tokenizer.ggml.pre", "llama4");
    e.note("tokenizer.ggml.pre 'default' -> 'llama4'");
  }
  copy_key(e, "llama4.attention.chunk_size", "llama4.attention.sliding_window");
}

void fix_llama3(LayoutEditor& e) {
  const GgufFile& f = e.file();
  e.set_string("tokenizer.ggml.pre", "llama-bpe");
  e.note("tokenizer.ggml.pre -> 'llama-bpe' (Llama 3 vocabulary)");
  const int64_t eot = token_id(f, "<|eot_id|>"), eot_text = token_id(f, "<|end_of_text|>");
  std::vector<int32_t> extra;
  if (auto ids = f.get_int_array("tokenizer.ggml.eos_token_ids"); ids.is_ok())
    for (int64_t x : *ids) extra.push_back(int32_t(x));
  auto add = [&](int64_t id) {
    if (id >= 0 && std::find(extra.begin(), extra.end(), int32_t(id)) == extra.end())
      extra.push_back(int32_t(id));
  };
  // The end-of-turn token ends a chat reply; the old EOS stays an end of generation.
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"}) {
    const MetaValue* v = f.find(key);
    if (v && (!v->is_integer() || v->i != eot_text)) continue;
    if (v) add(v->i);
    e.set_u32(key, uint32_t(eot));
    e.note(std::string(key) + " -> " + std::to_string(eot) + " (<|eot_id|>)");
  }
  add(eot);
  e.set_i32_array("tokenizer.ggml.eos_token_ids", extra);
}

}  // namespace

std::vector<std::string> detect_ollama_layout(const GgufFile& f) {
  const std::string arch = str_or(f, "general.architecture", "");
  if (arch == "gemma3") return gemma3_markers(f);
  if (arch == "gemma4") return gemma4_markers(f);
  if (arch == "qwen35" || arch == "qwen35moe") return qwen35_markers(f, arch);
  if (arch == "llama4") return llama4_markers(f);
  if (arch == "llama") return llama3_markers(f);
  return {};
}

Status normalize_ollama_layout(GgufFile& f) {
  if (const char* off = std::getenv("HEARTH_OLLAMA_COMPAT"); off && std::string_view(off) == "0")
    return Status::ok();  // kill switch (tests show what the fixes are for)
  const std::vector<std::string> markers = detect_ollama_layout(f);
  if (markers.empty()) return Status::ok();
  const std::string arch = str_or(f, "general.architecture", "");
  LayoutEditor e(f);
  e.set_family(arch);
  std::string why;
  for (const auto& m : markers) why += (why.empty() ? "" : "; ") + m;
  e.note("Ollama layout (" + why + ")");
  if (arch == "gemma3") {
    const bool embed = is_gemma3_embedding(f);
    fix_gemma3(e);
    if (embed) {
      e.set_family("gemma-embedding");
      HEARTH_RETURN_IF_ERROR(gemma3_to_embedding(e));
    }
  }
  if (arch == "gemma4") fix_gemma4(e);
  if (arch == "qwen35" || arch == "qwen35moe") fix_qwen35(e, arch);
  if (arch == "llama4") fix_llama4(e);
  if (arch == "llama") fix_llama3(e);
  return Status::ok();
}

}  // namespace hearth::gguf
