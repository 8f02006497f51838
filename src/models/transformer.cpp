#include "models/transformer.h"

namespace hearth::models {

Result<std::unique_ptr<Context>> Transformer::new_context(const ContextParams& p,
                                                          ThreadPool& pool) const {
  auto ctx = std::make_unique<ModelContext>(p, pool);
  HEARTH_RETURN_IF_ERROR(ctx->init(layout_, config_.n_embd, ropes()));
  std::vector<const ops::WeightMatrix*> ws;
  head_.weights(ws);
  reserve(*ctx, ws);
  ctx->finish(ws);
  return std::unique_ptr<Context>(std::move(ctx));
}

Status Transformer::load_io(WeightLoader& w, ThreadPool& pool, const LoadOptions& opt,
                            bool scale_embeddings, float final_softcap) {
  HEARTH_RETURN_IF_ERROR(embd_.load(*file_, config_, scale_embeddings));
  HEARTH_RETURN_IF_ERROR(head_.load(w, pool, opt, config_, *embd_.table(), final_softcap));
  embd_.tie(head_);
  return Status::ok();
}

Result<bool> Transformer::begin(ModelContext& ctx, const ForwardInput& in, const ForwardOutput& out,
                                bool has_moe) const {
  if (out.kind == OutputKind::kLogits && !head_.has_logits())
    return invalid_argument("[model] " + config_.arch +
                            " is an embedding model: it gives embeddings, not logits");
  if (in.tokens.empty()) return false;
  HEARTH_RETURN_IF_ERROR(ctx.begin(in, out, config_.n_vocab, has_moe));
  return true;
}

Step Transformer::step(ModelContext& ctx, const ForwardInput& in, int ith, int nth) const {
  const int64_t T = int64_t(in.tokens.size());
  int64_t tb, te;
  ThreadPool::split(T, ith, nth, tb, te);
  return Step{ctx.pool(), ith, nth, in.tokens, T, tb, te};
}

}  // namespace hearth::models
