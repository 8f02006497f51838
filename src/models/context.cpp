#include "models/context.h"

#include <algorithm>
#include <string>

namespace hearth::models {

Status ModelContext::init(const CacheLayout& layout, int64_t n_embd,
                          std::vector<const ops::RopeParams*> ropes) {
  const auto& p = params_;
  if (p.n_ctx <= 0 || p.n_seq <= 0 || p.n_batch <= 0)
    return invalid_argument("[model] n_ctx, n_seq and n_batch must be positive");
  HEARTH_RETURN_IF_ERROR(cache.init(layout, p));
  n_embd_ = n_embd;
  const size_t B = size_t(p.n_batch);
  x.need(B * size_t(n_embd));
  xn.need(B * size_t(n_embd));
  xg.need(B * size_t(n_embd));
  out_rows.reserve(B);
  moe.margin.need(B);  // routing diagnostics (MoE families)
  out_seqs.reserve(B);
  ropes_ = std::move(ropes);
  rope_cs_.resize(ropes_.size());
  for (size_t i = 0; i < ropes_.size(); ++i) rope_cs_[i].resize(B * size_t(ropes_[i]->n_rot));
  return Status::ok();
}

void ModelContext::finish(const std::vector<const ops::WeightMatrix*>& weights) {
  size_t act = 0;
  for (const auto* W : weights)
    act = std::max(act, ops::activation_bytes(W->type(), W->n_in(), params_.n_batch));
  ms.reserve(act);
  attn.ops.reserve(pool_->size(), params_.n_ctx, int(attn.max_head_k), int(attn.max_head_v));
}

Status ModelContext::reserve_sequence(int seq, int n_ctx) {
  HEARTH_RETURN_IF_ERROR(cache.reserve(seq, n_ctx));
  attn.ops.reserve(pool_->size(), n_ctx, int(attn.max_head_k), int(attn.max_head_v));
  return Status::ok();
}

std::span<const float> ModelContext::router_margins() const {
  if (!has_moe_) return {};
  return std::span<const float>(moe.margin.data(), size_t(moe.n_margin));
}

Status ModelContext::begin(const ForwardInput& in, const ForwardOutput& out, int64_t n_vocab,
                           bool has_moe) {
  const auto batch = in.tokens;
  const int64_t T = int64_t(batch.size());
  const auto& P = params_;
  if (T > P.n_batch)
    return invalid_argument("[model] batch of " + std::to_string(T) + " tokens exceeds n_batch " +
                            std::to_string(P.n_batch));
  if (!out.data && T > 0) return invalid_argument("[model] no output buffer");
  if (out.kind == OutputKind::kPooled && out.pooling == Pooling::kNone)
    return invalid_argument("[model] pooled output needs a pooling type");
  out_rows.clear();
  out_seqs.clear();
  for (int64_t t = 0; t < T; ++t) {
    const auto& b = batch[size_t(t)];
    if (b.token < 0 || b.token >= n_vocab)  // also with embedding rows: some models read both
      return invalid_argument("[model] token id " + std::to_string(b.token) +
                              " is out of range [0, " + std::to_string(n_vocab) + ")");
    if (b.seq < 0 || b.seq >= P.n_seq)
      return invalid_argument("[model] sequence " + std::to_string(b.seq) + " out of range");
    if (b.pos < 0 || b.pos >= cache.capacity(b.seq))
      return invalid_argument("[model] position " + std::to_string(b.pos) +
                              " exceeds the context size " + std::to_string(cache.capacity(b.seq)));
    if (b.logits) out_rows.push_back(t);
    if (std::find(out_seqs.begin(), out_seqs.end(), b.seq) == out_seqs.end())
      out_seqs.push_back(b.seq);
  }
  // Before anything below commits state: a bad adapter batch leaves the context untouched.
  ms.hook = nullptr;
  lora_active = false;
  if (in.lora) {
    HEARTH_ASSIGN_OR_RETURN(lora_active, lora.begin(*in.lora, batch, out_rows, P.n_seq, P.n_batch));
    if (lora_active) ms.hook = &lora;
  }
  if (cache.has_recurrent()) {
    // A recurrent state continues only where it stopped (or restarts at position 0).
    for (int64_t s = 0; s < T;) {
      const int64_t e = run_end(batch, s);
      int64_t expect = cache.recurrent_next(batch[size_t(s)].seq);
      for (int64_t q = 0; q < s; q = run_end(batch, q))  // an earlier run of this sequence
        if (batch[size_t(q)].seq == batch[size_t(s)].seq)
          expect = batch[size_t(run_end(batch, q) - 1)].pos + 1;
      if (batch[size_t(s)].pos != 0 && batch[size_t(s)].pos != expect)
        return invalid_argument("[model] sequence " + std::to_string(batch[size_t(s)].seq) +
                                ": the recurrent state holds " + std::to_string(expect) +
                                " positions and cannot continue at " +
                                std::to_string(batch[size_t(s)].pos));
      s = e;
    }
    for (int64_t s = 0; s < T; s = run_end(batch, s))
      cache.recurrent_next(batch[size_t(s)].seq) = batch[size_t(run_end(batch, s) - 1)].pos + 1;
  }
  has_moe_ = has_moe;
  if (has_moe && T > 0) moe.begin(T);
  return Status::ok();
}

void ModelContext::rope_tables(const Step& s) {
  for (size_t i = 0; i < ropes_.size(); ++i) {
    const int n_rot = ropes_[i]->n_rot;
    for (int64_t t = s.tb; t < s.te; ++t)
      ops::rope_cos_sin(*ropes_[i], s.batch[size_t(t)].pos, rope_cs_[i].data() + t * n_rot);
  }
}

}  // namespace hearth::models
