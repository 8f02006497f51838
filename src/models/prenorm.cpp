#include "models/prenorm.h"

#include <algorithm>

#include "ops/elementwise.h"

namespace hearth::models {

Status PreNormDecoder::eval(Context& base, const ForwardInput& in, const ForwardOutput& out) const {
  auto& ctx = static_cast<ModelContext&>(base);
  const bool has_moe =
      std::any_of(layers_.begin(), layers_.end(), [](const Layer& L) { return L.ffn.moe; });
  HEARTH_ASSIGN_OR_RETURN(bool any, begin(ctx, in, out, has_moe));
  if (!any) return Status::ok();
  const int64_t E = config_.n_embd;
  const float eps = config_.norm_eps;
  const DType kv = ctx.params().kv_type;
  ctx.pool().run([&](int ith, int nth) {
    const Step s = step(ctx, in, ith, nth);
    float* x = embed(s, ctx, in);
    float* xn = ctx.xn.at(size_t(s.T * E));
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
      L.ffn.forward_add(s, ctx, x, xn);
    }
    output(s, ctx, x, out);
  });
  return Status::ok();
}

void PreNormDecoder::reserve(ModelContext& ctx, std::vector<const ops::WeightMatrix*>& ws) const {
  const int64_t B = ctx.params().n_batch;
  for (const Layer& L : layers_) {
    if (L.delta) {
      L.delta->reserve(ctx.delta, B, ctx.pool().size());
      L.delta->weights(ws);
    } else {
      L.attn->reserve(ctx.attn, B);
      L.attn->weights(ws);
    }
    L.ffn.reserve(ctx, ws);
  }
}

}  // namespace hearth::models
