#include "models/gemma_decoder.h"

#include <cmath>

#include "models/config.h"
#include "ops/elementwise.h"

namespace hearth::models {

Result<GemmaSpec> read_gemma_spec(const gguf::GgufFile& f, GemmaVariant v) {
  const bool v4 = v == GemmaVariant::kGemma4, emb = v == GemmaVariant::kEmbedding;
  const std::string arch = v4 ? "gemma4" : emb ? "gemma-embedding" : "gemma3", p = arch + ".";
  GemmaSpec s;
  HEARTH_ASSIGN_OR_RETURN(s.cfg, read_common_config(f, arch, ops::RopeMode::kNeox));
  // EmbeddingGemma is bidirectional whatever the file says (llama.cpp forces it).
  if (emb) s.cfg.causal = false;
  const auto& c = s.cfg;
  const int64_t n = c.n_layer;
  HEARTH_ASSIGN_OR_RETURN(int64_t window, f.get_int_or(p + "attention.sliding_window", 0));
  if (window < 0 || window > (int64_t(1) << 30))
    return corrupt("[model] " + p + "attention.sliding_window = " + std::to_string(window));
  if (emb && window == 0)
    return corrupt("[model] " + p + "attention.sliding_window is missing or 0 (required)");
  std::vector<bool> swa(size_t(n), false);
  int64_t head_swa = c.head_dim, head_v_swa = c.head_dim_v;
  int n_rot_swa = c.rope.n_rot;
  int64_t shared_kv = 0;
  float scale = 0;
  if (!v4) {
    if (const auto* pat = f.find(p + "attention.sliding_window_pattern");
        window > 0 && pat && pat->type == gguf::ValueType::ARRAY) {  // per layer (Ollama)
      HEARTH_ASSIGN_OR_RETURN(swa, read_layer_flags(f, p + "attention.sliding_window_pattern", n));
    } else if (window > 0) {
      HEARTH_ASSIGN_OR_RETURN(int64_t period,
                              f.get_int_or(p + "attention.sliding_window_pattern", 6));
      if (period <= 0 || period > 4096)
        return corrupt("[model] " + p +
                       "attention.sliding_window_pattern = " + std::to_string(period));
      for (int64_t il = 0; il < n; ++il) swa[size_t(il)] = il % period < period - 1;
    }
    // Gemma 3 27B scales queries by 1/sqrt(n_embd / n_head) (its query_pre_attn_scalar), the
    // others by 1/sqrt(head_dim). The files carry no key for it; `attention.scale` is read when
    // a converter wrote one, else llama.cpp's rule (the 27B is the 62-layer model) applies.
    // EmbeddingGemma: always 1/sqrt(head_dim), as llama.cpp has it.
    HEARTH_ASSIGN_OR_RETURN(double sc, f.get_float_or(p + "attention.scale", 0.0));
    scale = emb       ? 1.0f / std::sqrt(float(c.head_dim))
            : sc > 0  ? float(sc)
            : n == 62 ? 1.0f / std::sqrt(float(c.n_embd / c.n_head))
                      : 1.0f / std::sqrt(float(c.head_dim));
    if (!emb) {  // an embedding model has no logits to cap
      HEARTH_ASSIGN_OR_RETURN(double cap, f.get_float_or(p + "final_logit_softcapping", 0.0));
      s.final_softcap = float(cap);
    }
  } else {
    HEARTH_ASSIGN_OR_RETURN(s.per_layer_width,
                            f.get_int_or(p + "embedding_length_per_layer_input", 0));
    HEARTH_ASSIGN_OR_RETURN(shared_kv, f.get_int_or(p + "attention.shared_kv_layers", 0));
    if (s.per_layer_width < 0 || s.per_layer_width > 65536 || shared_kv < 0 ||
        (shared_kv > 0 && shared_kv > n - 2))  // a sharing layer needs two earlier layers
      return corrupt("[model] gemma4: embedding_length_per_layer_input " +
                     std::to_string(s.per_layer_width) + " or attention.shared_kv_layers " +
                     std::to_string(shared_kv) + " out of range for " + std::to_string(n) +
                     " layers");
    if (const auto* kv = f.find(p + "attention.head_count_kv");
        kv && kv->type == gguf::ValueType::ARRAY)
      return unsupported("[model] gemma4: per-layer head_count_kv is not supported yet");
    if (f.find(p + "attention.sliding_window_pattern")) {
      HEARTH_ASSIGN_OR_RETURN(swa, read_layer_flags(f, p + "attention.sliding_window_pattern", n));
      for (size_t i = 0; i < swa.size(); ++i) swa[i] = swa[i] && window > 0;
    }
    HEARTH_ASSIGN_OR_RETURN(head_swa, f.get_int_or(p + "attention.key_length_swa", c.head_dim));
    HEARTH_ASSIGN_OR_RETURN(head_v_swa, f.get_int_or(p + "attention.value_length_swa", head_swa));
    if (head_v_swa != head_swa || head_swa <= 0 || head_swa > 1024)
      return unsupported("[model] gemma4: sliding layers with different K and V head sizes");
    HEARTH_ASSIGN_OR_RETURN(int64_t rot, f.get_int_or(p + "rope.dimension_count_swa", head_swa));
    if (rot <= 0 || rot > head_swa || rot % 2)
      return corrupt("[model] " + p + "rope.dimension_count_swa = " + std::to_string(rot));
    n_rot_swa = int(rot);
    scale = 1.0f;  // q and k are RMS-normed
    HEARTH_ASSIGN_OR_RETURN(double cap, f.get_float_or(p + "final_logit_softcapping", 30.0));
    s.final_softcap = float(cap);
    if (f.find(p + "expert_count")) {
      HEARTH_ASSIGN_OR_RETURN(s.moe, read_experts(f, arch));
      s.moe->act = Activation::kGeGLU;
      s.moe->norm_topk = true;
    }
  }
  HEARTH_ASSIGN_OR_RETURN(double base_swa, f.get_float_or(p + "rope.freq_base_swa", 10000.0));
  s.rope_swa = c.rope;
  s.rope_swa.n_rot = n_rot_swa;
  s.rope_swa.freq_base = float(base_swa);
  s.rope_swa.freq_scale = 1;
  s.rope_swa.ext_factor = 0;
  s.rope_swa.attn_factor = 1;
  s.rope_swa.freq_factors = nullptr;

  for (int64_t il = 0; il < n; ++il) {
    GemmaLayerSpec L;
    L.swa = swa[size_t(il)];
    const int64_t hk = L.swa ? head_swa : c.head_dim, hv = L.swa ? head_v_swa : c.head_dim_v;
    L.shape = {c.n_embd, c.n_head, c.n_head_kv, hk, hv, c.norm_eps};
    L.attn.qk_norm = true;
    L.attn.scale = scale;
    L.attn.window = L.swa ? int(window) : 0;
    L.attn.causal = c.causal;
    L.attn.v_norm = v4;
    L.attn.v_from_k = v4;
    L.n_ff = c.n_ff_layers.empty() ? c.n_ff : c.n_ff_layers[size_t(il)];
    // Gemma 4: the last shared_kv layers read the cache of the last earlier layer of their kind.
    if (shared_kv > 0 && il >= n - shared_kv) {
      const int64_t src = n - shared_kv - (L.swa ? 2 : 1);
      const GemmaLayerSpec* S = src >= 0 ? &s.layers[size_t(src)] : nullptr;
      if (!S || S->swa != L.swa || S->shape.head_k != hk || S->shape.head_v != hv ||
          S->attn.kv_source >= 0)
        return corrupt("[model] gemma4: layer " + std::to_string(il) +
                       " shares the KV cache of layer " + std::to_string(src) +
                       ", which is not a layer of the same kind with its own cache");
      L.attn.kv_source = int(src);
    }
    s.layers.push_back(L);
  }
  return s;
}

Result<ArchInfo> describe_gemma(const gguf::GgufFile& f, GemmaVariant v) {
  HEARTH_ASSIGN_OR_RETURN(GemmaSpec s, read_gemma_spec(f, v));
  CacheLayout layout;
  for (const auto& L : s.layers) layout.push_back(Attention::cache_for(L.shape, L.attn));
  return ArchInfo{std::move(s.cfg), std::move(layout)};
}

Status GemmaDecoder::load_layers(WeightLoader& w, GemmaSpec& s) {
  const auto& c = config_;
  const int64_t E = c.n_embd;
  rope_swa_ = s.rope_swa;
  if (s.per_layer_width > 0) {
    HEARTH_RETURN_IF_ERROR(
        ple_.emplace().load(w, c.n_vocab, E, c.n_layer, s.per_layer_width, c.norm_eps));
  }
  layers_.resize(size_t(c.n_layer));
  for (int il = 0; il < int(c.n_layer); ++il) {
    Layer& L = layers_[size_t(il)];
    GemmaLayerSpec& ls = s.layers[size_t(il)];
    ls.attn.rope = ls.swa ? &rope_swa_ : &config_.rope;
    L.swa = ls.swa;
    HEARTH_ASSIGN_OR_RETURN(L.attn_norm, w.vector(blk(il, "attn_norm.weight"), E));
    HEARTH_RETURN_IF_ERROR(L.attn.load(w, il, ls.shape, ls.attn));
    HEARTH_ASSIGN_OR_RETURN(L.post_attn_norm, w.vector(blk(il, "post_attention_norm.weight"), E));
    HEARTH_ASSIGN_OR_RETURN(L.ffn_norm, w.vector(blk(il, "ffn_norm.weight"), E));
    HEARTH_RETURN_IF_ERROR(L.ffn.load(w, il, E, ls.n_ff, Activation::kGeGLU));
    HEARTH_ASSIGN_OR_RETURN(L.post_ffn_norm, w.vector(blk(il, "post_ffw_norm.weight"), E));
    if (s.moe) {
      HEARTH_RETURN_IF_ERROR(L.moe.emplace().load(w, il, E, *s.moe));
      HEARTH_ASSIGN_OR_RETURN(L.router_scale, w.vector(blk(il, "ffn_gate_inp.scale"), E));
      HEARTH_ASSIGN_OR_RETURN(L.pre_ffn_norm2, w.vector(blk(il, "pre_ffw_norm_2.weight"), E));
      HEARTH_ASSIGN_OR_RETURN(L.post_ffn_norm1, w.vector(blk(il, "post_ffw_norm_1.weight"), E));
      HEARTH_ASSIGN_OR_RETURN(L.post_ffn_norm2, w.vector(blk(il, "post_ffw_norm_2.weight"), E));
    }
    if (ple_) HEARTH_RETURN_IF_ERROR(L.ple.emplace().load(w, il, E, s.per_layer_width, c.norm_eps));
    HEARTH_ASSIGN_OR_RETURN(auto os, w.optional_vector(blk(il, "layer_output_scale.weight"), 1));
    if (os) L.out_scale = (*os)[0];
  }
  has_moe_ = s.moe.has_value();
  return Status::ok();
}

void GemmaDecoder::forward_layers(const Step& s, ModelContext& ctx, float* x) const {
  const int64_t E = config_.n_embd;
  const float eps = config_.norm_eps;
  const DType kv = ctx.params().kv_type;
  float* xn = ctx.xn.at(size_t(s.T * E));
  if (ple_) ple_->forward(s, x, ctx.ple, ctx.ms);
  for (size_t il = 0; il < layers_.size(); ++il) {
    const Layer& L = layers_[il];
    for (int64_t t = s.tb; t < s.te; ++t)
      ops::rms_norm(x + t * E, L.attn_norm.data(), xn + t * E, E, eps);
    s.barrier();
    L.attn.forward(s, int(il), ctx.cache, kv, ctx.rope_cs(L.swa ? 1 : 0), xn, ctx.attn, ctx.ms);
    for (int64_t t = s.tb; t < s.te; ++t) {
      float* o = xn + t * E;
      ops::rms_norm(o, L.post_attn_norm.data(), o, E, eps);
      ops::add(x + t * E, o, x + t * E, E);
      ops::rms_norm(x + t * E, L.ffn_norm.data(), o, E, eps);
    }
    s.barrier();
    float* moe_out = nullptr;
    if (L.moe) {  // the experts' input and the router's, then the mixture
      float* x2 = ctx.xg.at(size_t(s.T * E));
      float* rin = ctx.aux.at(size_t(s.T * E));
      const float rs = 1.0f / std::sqrt(float(E));
      for (int64_t t = s.tb; t < s.te; ++t) {
        ops::rms_norm(x + t * E, L.pre_ffn_norm2.data(), x2 + t * E, E, eps);
        float* r = rin + t * E;
        ops::rms_norm(x + t * E, nullptr, r, E, eps);
        for (int64_t d = 0; d < E; ++d) r[d] *= rs * L.router_scale[size_t(d)];
      }
      s.barrier();
      L.moe->forward(s, x2, rin, nullptr, ctx.moe, ctx.ffn, ctx.ms);
      moe_out = ctx.moe.out.at(size_t(s.T * E));
    }
    L.ffn.forward(s, xn, xn, ctx.ffn, ctx.ms);
    for (int64_t t = s.tb; t < s.te; ++t) {
      float* o = xn + t * E;
      if (moe_out) {  // dense and expert branches, each normed, summed
        float* m = moe_out + t * E;
        ops::rms_norm(o, L.post_ffn_norm1.data(), o, E, eps);
        ops::rms_norm(m, L.post_ffn_norm2.data(), m, E, eps);
        ops::add(o, m, o, E);
      }
      ops::rms_norm(o, L.post_ffn_norm.data(), o, E, eps);
      ops::add(x + t * E, o, x + t * E, E);
      if (L.out_scale && !L.ple) ops::scale(x + t * E, *L.out_scale, E);
    }
    s.barrier();
    if (L.ple) L.ple->forward(s, int(il), config_.n_layer, x, xn, L.out_scale, ctx.ple, ctx.ms);
  }
}

void GemmaDecoder::reserve(ModelContext& ctx, std::vector<const ops::WeightMatrix*>& ws) const {
  const int64_t B = ctx.params().n_batch;
  if (ple_) {
    ple_->reserve(ctx.ple, B);
    ple_->weights(ws);
  }
  for (const Layer& L : layers_) {
    L.attn.reserve(ctx.attn, B);
    L.attn.weights(ws);
    L.ffn.reserve(ctx.ffn, B);
    L.ffn.weights(ws);
    if (L.moe) {
      L.moe->reserve(ctx.moe, ctx.ffn, B);
      L.moe->weights(ws);
      ctx.aux.need(size_t(B * config_.n_embd));
    }
    if (L.ple) L.ple->weights(ws);
  }
}

}  // namespace hearth::models
