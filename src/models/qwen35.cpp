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
#include <variant>

#include "models/blocks/attention.h"
#include "models/blocks/delta_net.h"
#include "models/blocks/ffn.h"
#include "models/blocks/moe.h"
#include "models/config.h"
#include "models/transformer.h"
#include "ops/elementwise.h"

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

class Qwen35Model final : public Transformer {
 public:
  Qwen35Model(std::shared_ptr<gguf::GgufFile> f, ArchInfo info)
      : Transformer(std::move(f), std::move(info)) {}

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
      if (s.moe) {
        HEARTH_RETURN_IF_ERROR(L.moe.emplace().load(w, il, c.n_embd, *s.moe));
      } else {
        HEARTH_RETURN_IF_ERROR(L.ffn.emplace().load(w, il, c.n_embd, c.n_ff, Activation::kSwiGLU));
      }
    }
    has_moe_ = s.moe.has_value();
    return Status::ok();
  }

  Status eval(Context& base, const ForwardInput& in, const ForwardOutput& out) const override {
    auto& ctx = static_cast<ModelContext&>(base);
    HEARTH_ASSIGN_OR_RETURN(bool any, begin(ctx, in, out, has_moe_));
    if (!any) return Status::ok();
    const int64_t E = config_.n_embd;
    const float eps = config_.norm_eps;
    const DType kv = ctx.params().kv_type;
    ctx.pool().run([&](int ith, int nth) {
      const Step s = step(ctx, in, ith, nth);
      float* x = ctx.x.at(size_t(s.T * E));
      float* xn = ctx.xn.at(size_t(s.T * E));
      embd_.forward(s, in, x);
      ctx.rope_tables(s);
      s.barrier();
      for (size_t il = 0; il < layers_.size(); ++il) {
        const Layer& L = layers_[il];
        for (int64_t t = s.tb; t < s.te; ++t)
          ops::rms_norm(x + t * E, L.attn_norm.data(), xn + t * E, E, eps);
        s.barrier();
        if (L.delta)
          L.delta->forward(s, int(il), ctx.cache, xn, ctx.delta, ctx.ms);
        else
          L.attn->forward(s, int(il), ctx.cache, kv, ctx.rope_cs(0), xn, ctx.attn, ctx.ms);
        for (int64_t t = s.tb; t < s.te; ++t) {
          ops::add(x + t * E, xn + t * E, x + t * E, E);
          ops::rms_norm(x + t * E, L.ffn_norm.data(), xn + t * E, E, eps);
        }
        s.barrier();
        if (L.moe) {
          L.moe->forward(s, xn, xn, x, ctx.moe, ctx.ffn, ctx.ms);
          continue;
        }
        L.ffn->forward(s, xn, xn, ctx.ffn, ctx.ms);
        for (int64_t t = s.tb; t < s.te; ++t) ops::add(x + t * E, xn + t * E, x + t * E, E);
        s.barrier();
      }
      head_.forward(s, x, out, ctx.out_rows, ctx.out_seqs, ctx.xg.at(size_t(s.T * E)), ctx.ms);
    });
    return Status::ok();
  }

 private:
  struct Layer {
    std::vector<float> attn_norm, ffn_norm;
    std::optional<Attention> attn;
    std::optional<DeltaNet> delta;
    std::optional<DenseFfn> ffn;
    std::optional<Moe> moe;
  };

  void reserve(ModelContext& ctx, std::vector<const ops::WeightMatrix*>& ws) const override {
    const int64_t B = ctx.params().n_batch;
    for (const Layer& L : layers_) {
      if (L.delta) {
        L.delta->reserve(ctx.delta, B, ctx.pool().size());
        L.delta->weights(ws);
      } else {
        L.attn->reserve(ctx.attn, B);
        L.attn->weights(ws);
      }
      if (L.moe) {
        L.moe->reserve(ctx.moe, ctx.ffn, B);
        L.moe->weights(ws);
      } else {
        L.ffn->reserve(ctx.ffn, B);
        L.ffn->weights(ws);
      }
    }
  }
  std::vector<const ops::RopeParams*> ropes() const override { return {&config_.rope}; }

  std::vector<Layer> layers_;
  bool has_moe_ = false;
};

template <bool kMoe>
Result<std::unique_ptr<Model>> load(std::shared_ptr<gguf::GgufFile> f, ThreadPool& pool,
                                    const LoadOptions& opt) {
  HEARTH_ASSIGN_OR_RETURN(ArchInfo info, describe<kMoe>(*f));
  auto m = std::make_unique<Qwen35Model>(std::move(f), std::move(info));
  HEARTH_RETURN_IF_ERROR(m->load(kMoe, pool, opt));
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace

extern const Architecture kQwen35{"qwen35", describe<false>, load<false>};
extern const Architecture kQwen35Moe{"qwen35moe", describe<true>, load<true>};

}  // namespace hearth::models
