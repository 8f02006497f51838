// The llama family: Llama 2/3.x (and Mistral-style models), Qwen 2 / 2.5, Qwen 3 and Qwen 3 MoE.
//
//   x = token_embd[tokens]
//   every layer:  x += Attention(rms(x) · attn_norm)
//                 x += FFN(rms(x) · ffn_norm)          (Qwen 3 MoE: a mixture of experts)
//   logits = output · (rms(x) · output_norm)
//
// llama: RoPE in NORM layout (the converter permutes q/k rows so adjacent pairs rotate), optional
// `rope_freqs` for Llama 3 frequency scaling, optional attention biases, tied or untied output.
// qwen2: q/k/v biases, RoPE in NEOX layout (dims i and i + n_rot/2). qwen3: no biases, per-head
// RMSNorm of q and k before RoPE, a head size that may differ from n_embd / n_head. qwen3moe:
// every FFN is n_expert_used of n_expert softmax-routed SwiGLU experts, weights renormalised over
// the chosen ones.
#include <optional>

#include "models/blocks/attention.h"
#include "models/blocks/ffn.h"
#include "models/blocks/moe.h"
#include "models/config.h"
#include "models/prenorm.h"

namespace hearth::models {
namespace {

enum class Variant { kLlama, kQwen2, kQwen3, kQwen3Moe };

const char* arch_name(Variant v) {
  switch (v) {
    case Variant::kLlama:
      return "llama";
    case Variant::kQwen2:
      return "qwen2";
    case Variant::kQwen3:
      return "qwen3";
    default:
      return "qwen3moe";
  }
}

// What the metadata says, before any weight is read.
struct Spec {
  ModelConfig cfg;
  AttentionShape attn_shape;
  AttentionOptions attn;
  std::optional<MoeOptions> moe;
};

Result<Spec> read_spec(const gguf::GgufFile& f, Variant v) {
  const std::string arch = arch_name(v);
  Spec s;
  HEARTH_ASSIGN_OR_RETURN(
      s.cfg, read_common_config(
                 f, arch, v == Variant::kLlama ? ops::RopeMode::kNorm : ops::RopeMode::kNeox));
  const auto& c = s.cfg;
  s.attn_shape = {c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.head_dim_v, c.norm_eps};
  s.attn.biases_required = v == Variant::kQwen2;
  s.attn.qk_norm = v == Variant::kQwen3 || v == Variant::kQwen3Moe;
  s.attn.causal = c.causal;
  if (v == Variant::kQwen3Moe) {
    HEARTH_ASSIGN_OR_RETURN(s.moe, read_experts(f, arch));
    s.moe->norm_topk = true;
  }
  return s;
}

template <Variant V>
Result<ArchInfo> describe(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(Spec s, read_spec(f, V));
  CacheLayout layout(size_t(s.cfg.n_layer), Attention::cache_for(s.attn_shape, s.attn));
  return ArchInfo{std::move(s.cfg), std::move(layout)};
}

class LlamaModel final : public PreNormDecoder {
 public:
  using PreNormDecoder::PreNormDecoder;

  Status load(Variant v, ThreadPool& pool, const LoadOptions& opt) {
    HEARTH_ASSIGN_OR_RETURN(Spec s, read_spec(*file_, v));
    const auto& c = config_;
    WeightLoader w(*file_, pool, opt.repack, opt.placement, c.arch);
    HEARTH_RETURN_IF_ERROR(load_io(w, pool, opt, false, 0));
    s.attn.rope = &config_.rope;
    layers_.resize(size_t(c.n_layer));
    for (int il = 0; il < int(c.n_layer); ++il) {
      Layer& L = layers_[size_t(il)];
      HEARTH_ASSIGN_OR_RETURN(L.attn_norm, w.vector(blk(il, "attn_norm.weight"), c.n_embd));
      HEARTH_RETURN_IF_ERROR(L.attn.emplace().load(w, il, s.attn_shape, s.attn));
      HEARTH_ASSIGN_OR_RETURN(L.ffn_norm, w.vector(blk(il, "ffn_norm.weight"), c.n_embd));
      HEARTH_RETURN_IF_ERROR(L.ffn.load(w, il, c.n_embd, c.n_ff, s.moe));
    }
    return Status::ok();
  }
};

template <Variant V>
Result<std::unique_ptr<Model>> load(std::shared_ptr<gguf::GgufFile> f, ThreadPool& pool,
                                    const LoadOptions& opt) {
  return Transformer::build<LlamaModel>(describe<V>, std::move(f), pool, opt, V);
}

}  // namespace

extern const Architecture kLlama{"llama", describe<Variant::kLlama>, load<Variant::kLlama>};
extern const Architecture kQwen2{"qwen2", describe<Variant::kQwen2>, load<Variant::kQwen2>};
extern const Architecture kQwen3{"qwen3", describe<Variant::kQwen3>, load<Variant::kQwen3>};
extern const Architecture kQwen3Moe{"qwen3moe", describe<Variant::kQwen3Moe>,
                                    load<Variant::kQwen3Moe>};

}  // namespace hearth::models
