// llama4: Llama 4 (Scout 17B-16E, Maverick 17B-128E).
//
//   x = token_embd[tokens]
//   every layer:  x += Attention(rms(x) · attn_norm)
//                 x += FFN or MoE(rms(x) · ffn_norm)
//   logits = output · (rms(x) · output_norm)
//
// Every 4th layer has no RoPE (NoPE: full causal attention, queries scaled by the temperature
// log(floor((pos + 1) / 8192) + 1) · 0.1 + 1); the others use chunked attention (chunk 8192 unless
// `attention.sliding_window` says otherwise) and a weightless RMSNorm of q and k after RoPE (not
// with 128 experts). Every `interleave_moe_layer_step`-th FFN is a mixture: the top-k experts by
// raw router logit, σ(logit) scaling the expert's input, plus an always-on shared expert.
#include <algorithm>
#include <optional>

#include "models/blocks/attention.h"
#include "models/blocks/ffn.h"
#include "models/blocks/moe.h"
#include "models/config.h"
#include "models/prenorm.h"

namespace hearth::models {
namespace {

struct Spec {
  ModelConfig cfg;
  AttentionShape attn_shape;
  AttentionOptions rope_attn, nope_attn;
  MoeOptions moe;
  int64_t moe_step = 1;
  bool nope(int64_t il) const { return (il + 1) % 4 == 0; }
  bool is_moe(int64_t il) const { return (il + 1) % moe_step == 0; }
};

Result<Spec> read_spec(const gguf::GgufFile& f) {
  Spec s;
  HEARTH_ASSIGN_OR_RETURN(s.cfg, read_common_config(f, "llama4", ops::RopeMode::kNorm));
  const auto& c = s.cfg;
  s.attn_shape = {c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.head_dim_v, c.norm_eps};
  HEARTH_ASSIGN_OR_RETURN(s.moe, read_experts(f, "llama4"));
  HEARTH_ASSIGN_OR_RETURN(s.moe_step, f.get_int_or("llama4.interleave_moe_layer_step", 1));
  if (s.moe_step <= 0 || s.moe_step > 4096)
    return corrupt("[model] llama4: implausible interleave_moe_layer_step " +
                   std::to_string(s.moe_step));
  s.moe.sigmoid_router = true;
  s.moe.norm_topk = false;
  s.moe.n_ff_shared = s.moe.n_ff_exp;
  HEARTH_ASSIGN_OR_RETURN(int64_t chunk, f.get_int_or("llama4.attention.sliding_window", 8192));
  HEARTH_ASSIGN_OR_RETURN(double temp, f.get_float_or("llama4.attention.temperature_scale", 0.1));
  s.rope_attn.chunk = int(std::clamp<int64_t>(chunk, 0, int64_t(1) << 30));
  s.rope_attn.qk_rms_after_rope = s.moe.n_expert != 128;
  s.nope_attn.temp_scale = float(temp);
  return s;
}

Result<ArchInfo> describe(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(Spec s, read_spec(f));
  CacheLayout layout;
  for (int64_t il = 0; il < s.cfg.n_layer; ++il)
    layout.push_back(Attention::cache_for(s.attn_shape, s.nope(il) ? s.nope_attn : s.rope_attn));
  return ArchInfo{std::move(s.cfg), std::move(layout)};
}

class Llama4Model final : public PreNormDecoder {
 public:
  using PreNormDecoder::PreNormDecoder;

  Status load(ThreadPool& pool, const LoadOptions& opt) {
    HEARTH_ASSIGN_OR_RETURN(Spec s, read_spec(*file_));
    const auto& c = config_;
    WeightLoader w(*file_, pool, opt.repack, opt.placement, c.arch);
    HEARTH_RETURN_IF_ERROR(load_io(w, pool, opt, false, 0));
    s.rope_attn.rope = &config_.rope;
    layers_.resize(size_t(c.n_layer));
    for (int il = 0; il < int(c.n_layer); ++il) {
      Layer& L = layers_[size_t(il)];
      HEARTH_ASSIGN_OR_RETURN(L.attn_norm, w.vector(blk(il, "attn_norm.weight"), c.n_embd));
      HEARTH_RETURN_IF_ERROR(
          L.attn.emplace().load(w, il, s.attn_shape, s.nope(il) ? s.nope_attn : s.rope_attn));
      HEARTH_ASSIGN_OR_RETURN(L.ffn_norm, w.vector(blk(il, "ffn_norm.weight"), c.n_embd));
      HEARTH_RETURN_IF_ERROR(
          L.ffn.load(w, il, c.n_embd, c.n_ff, s.is_moe(il) ? std::optional(s.moe) : std::nullopt));
    }
    return Status::ok();
  }
};

Result<std::unique_ptr<Model>> load(std::shared_ptr<gguf::GgufFile> f, ThreadPool& pool,
                                    const LoadOptions& opt) {
  return Transformer::build<Llama4Model>(describe, std::move(f), pool, opt);
}

}  // namespace

extern const Architecture kLlama4{"llama4", describe, load};

}  // namespace hearth::models
