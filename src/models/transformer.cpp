#include "models/transformer.h"

#include "ops/elementwise.h"

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

std::vector<const ops::WeightMatrix*> Transformer::matrices(ThreadPool& pool) const {
  // The blocks list their weights while reserving scratch: a one-token context keeps that small.
  ContextParams p;
  p.n_ctx = 1;
  p.n_batch = 1;
  ModelContext ctx(p, pool);
  std::vector<const ops::WeightMatrix*> ws;
  head_.weights(ws);
  reserve(ctx, ws);
  return ws;
}

Status Transformer::load_io(WeightLoader& w, ThreadPool& pool, const LoadOptions& opt,
                            bool scale_embeddings, float final_softcap) {
  HEARTH_RETURN_IF_ERROR(embd_.load(*file_, config_, scale_embeddings));
  HEARTH_RETURN_IF_ERROR(head_.load(w, pool, opt, config_, *embd_.table(), final_softcap));
  embd_.tie(head_);
  HEARTH_RETURN_IF_ERROR(load_classifier(w));
  HEARTH_ASSIGN_OR_RETURN(rope_freqs_,
                          w.optional_vector("rope_freqs.weight", config_.rope.n_rot / 2));
  config_.rope.freq_factors = rope_freqs_ ? rope_freqs_->data() : nullptr;
  return Status::ok();
}

Status Transformer::load_classifier(WeightLoader& w) {
  HEARTH_RETURN_IF_ERROR(head_.load_classifier(w, config_));
  if (config_.pooling == Pooling::kRank && config_.n_cls_out == 0)
    return corrupt("[model] " + config_.arch +
                   ".pooling_type is 4 (rank) but the file has no classifier head: neither "
                   "'cls.weight' nor 'cls.output.weight'");
  return Status::ok();
}

Result<bool> Transformer::begin(ModelContext& ctx, const ForwardInput& in, const ForwardOutput& out,
                                bool has_moe) const {
  if (out.kind == OutputKind::kLogits && !head_.has_logits())
    return invalid_argument("[model] " + config_.arch +
                            " is an embedding model: it gives embeddings, not logits");
  if (out.kind == OutputKind::kPooled && out.pooling == Pooling::kRank && config_.n_cls_out <= 0)
    return invalid_argument("[model] this " + config_.arch +
                            " model has no classifier head (cls.weight / cls.output.weight): it "
                            "cannot rank");
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

float* Transformer::embed(const Step& s, ModelContext& ctx, const ForwardInput& in) const {
  float* x = ctx.x.at(size_t(s.T * config_.n_embd));
  embd_.forward(s, in, x);
  if (ctx.lora_active && !in.embeddings)  // token_embd adapters (token inputs only, as llama.cpp)
    ctx.lora.embed(s, x, config_.n_embd, embd_.row_scale());
  ctx.rope_tables(s);
  s.barrier();
  return x;
}

void Transformer::output(const Step& s, ModelContext& ctx, const float* x,
                         const ForwardOutput& out) const {
  const size_t n = size_t(s.T * config_.n_embd);
  head_.forward(s, x, out, ctx.out_rows, ctx.out_seqs, ctx.xg.at(n), ctx.xn.at(n), ctx.ms);
}

Status FeedForward::load(WeightLoader& w, int il, int64_t n_embd, int64_t n_ff,
                         const std::optional<MoeOptions>& experts) {
  n_embd_ = n_embd;
  if (experts) return moe.emplace().load(w, il, n_embd, *experts);
  return dense.emplace().load(w, il, n_embd, n_ff, Activation::kSwiGLU);
}

void FeedForward::reserve(ModelContext& ctx, std::vector<const ops::WeightMatrix*>& ws) const {
  const int64_t B = ctx.params().n_batch;
  if (moe) {
    moe->reserve(ctx.moe, ctx.ffn, B);
    moe->weights(ws);
  } else {
    dense->reserve(ctx.ffn, B);
    dense->weights(ws);
  }
}

void FeedForward::forward_add(const Step& s, ModelContext& ctx, float* x, float* xn) const {
  if (moe) return moe->forward(s, xn, xn, x, ctx.moe, ctx.ffn, ctx.ms);  // adds into x
  dense->forward(s, xn, xn, ctx.ffn, ctx.ms);
  const int64_t E = n_embd_;
  for (int64_t t = s.tb; t < s.te; ++t) ops::add(x + t * E, xn + t * E, x + t * E, E);
  s.barrier();
}

}  // namespace hearth::models
