// The Qwen 3.5 / 3.6 hybrids: qwen35 (dense: Qwen3.5-9B, -27B) and qwen35moe (Qwen3.5-35B-A3B,
// -122B-A10B, -397B-A17B).
//
//   x = token_embd[tokens]
//   every layer:  x += Mixer(rms(x) · attn_norm)
//                   Mixer = Gated DeltaNet (3 of every 4 layers: linear attention with a
//                           fixed-size recurrent state) or gated attention (q/k RMSNorm,
//                           partial interleaved M-RoPE, output × σ(gate from Wq's rows))
//                 x += FFN(rms(x) · post_attention_norm)   (qwen35moe: experts + shared expert)
//   logits = output · (rms(x) · output_norm)
//
// Text tokens have their position on the t, h and w M-RoPE axes. qwen35moe's FFN: softmax-routed
// top-k experts (renormalised over the chosen ones) plus a shared SwiGLU expert scaled by
// σ(ffn_gate_inp_shexp · x).
#include <optional>

#include "models/blocks/attention.h"
#include "models/blocks/delta_net.h"
#include "models/blocks/ffn.h"
#include "models/blocks/moe.h"
#include "models/config.h"
#include "models/prenorm.h"

namespace hearth::models {
namespace {

struct Spec {
  ModelConfig cfg;
  AttentionShape attn_shape;
  AttentionOptions attn;
  DeltaNetShape delta;
  std::vector<bool> recurrent;  // per layer: Gated DeltaNet instead of attention
  std::optional<MoeOptions> moe;
};

Result<Spec> read_spec(const gguf::GgufFile& f, bool moe) {
  const std::string arch = moe ? "qwen35moe" : "qwen35", p = arch + ".";
  Spec s;
  HEARTH_ASSIGN_OR_RETURN(s.cfg, read_common_config(f, arch, ops::RopeMode::kNeox));
  auto& c = s.cfg;
  HEARTH_ASSIGN_OR_RETURN(int64_t conv, f.get_int(p + "ssm.conv_kernel"));
  HEARTH_ASSIGN_OR_RETURN(int64_t d_state, f.get_int(p + "ssm.state_size"));
  HEARTH_ASSIGN_OR_RETURN(int64_t n_group, f.get_int(p + "ssm.group_count"));
  HEARTH_ASSIGN_OR_RETURN(int64_t dt_rank, f.get_int(p + "ssm.time_step_rank"));
  HEARTH_ASSIGN_OR_RETURN(int64_t inner, f.get_int(p + "ssm.inner_size"));
  if (conv < 1 || conv > 64 || d_state <= 0 || d_state > 1024 || n_group <= 0 || n_group > 4096 ||
      dt_rank <= 0 || dt_rank > 4096 || dt_rank % n_group != 0 || inner != d_state * dt_rank)
    return corrupt("[model] " + arch + ": implausible ssm.conv_kernel " + std::to_string(conv) +
                   ", state_size " + std::to_string(d_state) + ", group_count " +
                   std::to_string(n_group) + ", time_step_rank " + std::to_string(dt_rank) +
                   " or inner_size " + std::to_string(inner) +
                   " (value heads must be a multiple of key heads, head sizes equal)");
  s.delta = {c.n_embd, int(conv), int(n_group), int(dt_rank), int(d_state), c.norm_eps};
  HEARTH_RETURN_IF_ERROR(DeltaNet::check(s.delta));
  if (f.find(p + "attention.recurrent_layers")) {
    HEARTH_ASSIGN_OR_RETURN(s.recurrent,
                            read_layer_flags(f, p + "attention.recurrent_layers", c.n_layer));
  } else {
    HEARTH_ASSIGN_OR_RETURN(int64_t every, f.get_int_or(p + "full_attention_interval", 4));
    if (every <= 0 || every > 4096)
      return corrupt("[model] " + p + "full_attention_interval = " + std::to_string(every));
    for (int64_t i = 0; i < c.n_layer; ++i) s.recurrent.push_back((i + 1) % every != 0);
  }
  if (f.find(p + "rope.dimension_sections")) {
    HEARTH_ASSIGN_OR_RETURN(auto sec, f.get_int_array(p + "rope.dimension_sections"));
    int sum = 0;
    for (size_t i = 0; i < sec.size() && i < 4; ++i) {
      if (sec[i] < 0 || sec[i] > 4096)
        return corrupt("[model] " + p + "rope.dimension_sections has " + std::to_string(sec[i]));
      c.rope.sections[i] = int(sec[i]);
      sum += int(sec[i]);
    }
    if (sum == 0) c.rope.sections[0] = c.rope.n_rot / 2;  // one axis
  }
  s.attn_shape = {c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.head_dim_v, c.norm_eps};
  s.attn.qk_norm = true;
  s.attn.gated = true;
  if (moe) {
    HEARTH_ASSIGN_OR_RETURN(s.moe, read_experts(f, arch));
    HEARTH_ASSIGN_OR_RETURN(int64_t nsh,
                            f.get_int_or(p + "expert_shared_feed_forward_length", s.moe->n_ff_exp));
    if (nsh <= 0 || nsh > (1 << 22))
      return corrupt("[model] " + arch + ": expert_shared_feed_forward_length " +
                     std::to_string(nsh) + " must be positive");
    s.moe->n_ff_shared = nsh;
    s.moe->shared_gate = true;
    s.moe->norm_topk = true;
  }
  return s;
}

template <bool kMoe>
Result<ArchInfo> describe(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(Spec s, read_spec(f, kMoe));
  CacheLayout layout;
  for (int64_t il = 0; il < s.cfg.n_layer; ++il)
    layout.push_back(s.recurrent[size_t(il)] ? DeltaNet::cache_for(s.delta)
                                             : Attention::cache_for(s.attn_shape, s.attn));
  return ArchInfo{std::move(s.cfg), std::move(layout)};
}

class Qwen35Model final : public PreNormDecoder {
 public:
  using PreNormDecoder::PreNormDecoder;

  Status load(bool moe, ThreadPool& pool, const LoadOptions& opt) {
    HEARTH_ASSIGN_OR_RETURN(Spec s, read_spec(*file_, moe));
    const auto& c = config_;
    WeightLoader w(*file_, pool, opt.repack, opt.placement, c.arch);
    HEARTH_RETURN_IF_ERROR(load_io(w, pool, opt, false, 0));
    s.attn.rope = &config_.rope;
    layers_.resize(size_t(c.n_layer));
    for (int il = 0; il < int(c.n_layer); ++il) {
      Layer& L = layers_[size_t(il)];
      HEARTH_ASSIGN_OR_RETURN(L.attn_norm, w.vector(blk(il, "attn_norm.weight"), c.n_embd));
      if (s.recurrent[size_t(il)]) {
        HEARTH_RETURN_IF_ERROR(L.delta.emplace().load(w, il, s.delta));
      } else {
        HEARTH_RETURN_IF_ERROR(L.attn.emplace().load(w, il, s.attn_shape, s.attn));
      }
      HEARTH_ASSIGN_OR_RETURN(L.ffn_norm,
                              w.vector(blk(il, "post_attention_norm.weight"), c.n_embd));
      HEARTH_RETURN_IF_ERROR(L.ffn.load(w, il, c.n_embd, c.n_ff, s.moe));
    }
    return Status::ok();
  }
};

template <bool kMoe>
Result<std::unique_ptr<Model>> load(std::shared_ptr<gguf::GgufFile> f, ThreadPool& pool,
                                    const LoadOptions& opt) {
  return Transformer::build<Qwen35Model>(describe<kMoe>, std::move(f), pool, opt, kMoe);
}

}  // namespace

extern const Architecture kQwen35{"qwen35", describe<false>, load<false>};
extern const Architecture kQwen35Moe{"qwen35moe", describe<true>, load<true>};

}  // namespace hearth::models
