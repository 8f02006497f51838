#include "models/blocks/io.h"

#include <algorithm>
#include <cmath>

#include "ops/elementwise.h"

namespace hearth::models {

Status Embeddings::load(const gguf::GgufFile& f, ModelConfig& cfg, bool scale) {
  const auto* t = f.find_tensor("token_embd.weight");
  if (!t)
    return corrupt("[model] missing tensor 'token_embd.weight' (required by " + cfg.arch + ")");
  if (t->shape.size() != 2 || t->shape[1] != cfg.n_embd || t->shape[0] <= 0)
    return corrupt("[model] tensor 'token_embd.weight' has shape " + shape_str(t->shape) +
                   ", expected {n_vocab, " + std::to_string(cfg.n_embd) + "}");
  table_ = t;
  cfg.n_vocab = t->shape[0];
  n_embd_ = cfg.n_embd;
  scale_ = scale;
  return Status::ok();
}

void Embeddings::forward(const Step& s, const ForwardInput& in, float* x) const {
  const int64_t E = n_embd_;
  for (int64_t t = s.tb; t < s.te; ++t) {
    float* row = x + t * E;
    if (in.embeddings) {
      std::copy_n(in.embeddings + t * E, E, row);
      continue;  // given rows are already in the model's space
    }
    const int32_t token = s.batch[size_t(t)].token;
    if (head_ && head_->tied() && head_->output().resident())
      type_traits(head_->output().type()).dequantize_row(head_->output().row(token), row, E);
    else
      dequantize_row_of(*table_, token, row);
    if (scale_) ops::scale(row, std::sqrt(float(E)), E);
  }
}

Status OutputHead::load(WeightLoader& w, ThreadPool& pool, const LoadOptions& opt,
                        const ModelConfig& c, const gguf::TensorInfo& emb, float softcap) {
  n_embd_ = c.n_embd;
  n_vocab_ = c.n_vocab;
  eps_ = c.norm_eps;
  softcap_ = softcap;
  has_logits_ = true;
  HEARTH_ASSIGN_OR_RETURN(norm_, w.vector("output_norm.weight", c.n_embd));
  HEARTH_ASSIGN_OR_RETURN(auto out, w.optional_matrix("output.weight", c.n_vocab, c.n_embd));
  if (out) {
    output_ = std::move(*out);
  } else {  // tied embeddings
    tied_ = true;
    HEARTH_ASSIGN_OR_RETURN(
        output_, ops::WeightMatrix::make("token_embd.weight", emb.type, c.n_vocab, c.n_embd,
                                         emb.data, emb.nbytes));
    output_.prepare(pool, opt.placement, opt.repack, &w.arena());
  }
  return Status::ok();
}

void OutputHead::load_encoder(const ModelConfig& c, std::vector<float> norm) {
  n_embd_ = c.n_embd;
  n_vocab_ = c.n_vocab;
  eps_ = c.norm_eps;
  has_logits_ = false;
  norm_ = std::move(norm);
}

Status OutputHead::load_classifier(WeightLoader& w, ModelConfig& c) {
  // llama.cpp ranks Qwen3 rerankers by the last token's yes/no softmax, every other model by its
  // first token (llm_graph_input_cls, build_pooling).
  const bool qwen3 = c.arch == "qwen3" || c.arch == "qwen3vl";
  rank_last_ = c.rank_last = qwen3;
  return cls_.load(w, c, qwen3);
}

Status ClassifierHead::load(WeightLoader& w, ModelConfig& c, bool softmax) {
  const int64_t E = c.n_embd;
  n_embd_ = E;
  softmax_ = softmax;
  c.n_cls_out = 0;
  const std::string key = c.arch + ".classifier.output_labels";
  int64_t n_out = 1;  // llama.cpp's default: one score
  if (const auto* v = w.file().find(key)) {
    if (v->type != gguf::ValueType::ARRAY || v->count == 0 || v->count > (1u << 16))
      return corrupt("[model] " + key + " must be a non-empty array of labels");
    n_out = int64_t(v->count);
  }
  if (const auto* t = w.file().find_tensor("cls.output.weight");
      t && (t->shape.size() != 2 || t->shape[1] != E || t->shape[0] != n_out))
    return corrupt("[model] tensor 'cls.output.weight' has shape " + shape_str(t->shape) +
                   ", expected {" + std::to_string(n_out) + ", " + std::to_string(E) +
                   "}: " + std::to_string(n_out) + " class(es) (" + key + ", default 1) of " +
                   std::to_string(E) + " inputs");
  HEARTH_ASSIGN_OR_RETURN(dense_, w.optional_matrix("cls.weight", E, E));
  HEARTH_ASSIGN_OR_RETURN(out_, w.optional_matrix("cls.output.weight", n_out, E));
  if (!dense_ && !out_) return Status::ok();
  if (dense_) {
    HEARTH_ASSIGN_OR_RETURN(auto b, w.optional_vector("cls.bias", E));
    if (b) dense_b_ = std::move(*b);
  }
  if (out_) {
    HEARTH_ASSIGN_OR_RETURN(auto b, w.optional_vector("cls.output.bias", n_out));
    if (b) out_b_ = std::move(*b);
  } else if (n_out > E) {
    return corrupt("[model] " + key + " names " + std::to_string(n_out) +
                   " classes but the head (cls.weight, no cls.output.weight) gives " +
                   std::to_string(E) + " outputs");
  }
  n_out_ = n_out;
  c.n_cls_out = n_out;
  return Status::ok();
}

void ClassifierHead::weights(std::vector<const ops::WeightMatrix*>& out) const {
  if (dense_) out.push_back(&*dense_);
  if (out_) out.push_back(&*out_);
}

void ClassifierHead::forward(const Step& s, float* in, int64_t S, float* tmp, float* out,
                             ops::MatmulScratch& ms) const {
  const int64_t E = n_embd_;
  int64_t sb, se;
  ThreadPool::split(S, s.ith, s.nth, sb, se);
  const float* h = in;
  if (dense_) {
    ops::matmul_in_run(s.pool, s.ith, s.nth, *dense_, in, S, tmp, size_t(E), ms);
    for (int64_t i = sb; i < se; ++i) {
      float* r = tmp + i * E;
      if (!dense_b_.empty()) ops::add(r, dense_b_.data(), r, E);
      for (int64_t d = 0; d < E; ++d) r[d] = std::tanh(r[d]);
    }
    s.barrier();
    h = tmp;
  }
  if (out_) {
    ops::matmul_in_run(s.pool, s.ith, s.nth, *out_, h, S, out, size_t(n_out_), ms);
    for (int64_t i = sb; i < se; ++i) {
      float* r = out + i * n_out_;
      if (!out_b_.empty()) ops::add(r, out_b_.data(), r, n_out_);
      if (softmax_) ops::softmax(r, n_out_);
    }
  } else {
    for (int64_t i = sb; i < se; ++i) std::copy_n(h + i * E, n_out_, out + i * n_out_);
  }
  s.barrier();
}

void OutputHead::forward(const Step& s, const float* x, const ForwardOutput& out,
                         const std::vector<int64_t>& rows, const std::vector<int32_t>& seqs,
                         float* xg, float* xt, ops::MatmulScratch& ms) const {
  const int64_t E = n_embd_;
  if (out.kind == OutputKind::kPooled) {
    // Every token's normed row, then one pooled row per sequence.
    const float* h = x;
    if (!norm_.empty()) {
      for (int64_t t = s.tb; t < s.te; ++t)
        ops::rms_norm(x + t * E, norm_.data(), xg + t * E, E, eps_);
      s.barrier();
      h = xg;
    }
    const int64_t S = int64_t(seqs.size());
    int64_t sb, se;
    ThreadPool::split(S, s.ith, s.nth, sb, se);
    if (out.pooling == Pooling::kRank) {
      // Each sequence's first (Qwen3: last) row, through the classifier.
      for (int64_t i = sb; i < se; ++i) {
        int64_t pick = -1;
        for (int64_t t = 0; t < s.T; ++t)
          if (s.batch[size_t(t)].seq == seqs[size_t(i)]) {
            pick = t;
            if (!rank_last_) break;
          }
        std::copy_n(h + pick * E, E, xt + i * E);
      }
      s.barrier();
      cls_.forward(s, xt, S, xg, out.data, ms);  // xg (the normed rows) is free again
      return;
    }
    for (int64_t i = sb; i < se; ++i) {
      float* dst = out.data + i * E;
      int64_t n = 0, first = -1, last = -1;
      std::fill(dst, dst + E, 0.0f);
      for (int64_t t = 0; t < s.T; ++t) {
        if (s.batch[size_t(t)].seq != seqs[size_t(i)]) continue;
        if (first < 0) first = t;
        last = t;
        ++n;
        if (out.pooling == Pooling::kMean) ops::add(dst, h + t * E, dst, E);
      }
      if (out.pooling == Pooling::kMean)
        ops::scale(dst, 1.0f / float(n), E);
      else
        std::copy_n(h + (out.pooling == Pooling::kCls ? first : last) * E, E, dst);
    }
    s.barrier();
    return;
  }
  const int64_t R = int64_t(rows.size());
  if (R == 0) return;
  int64_t rb, re;
  ThreadPool::split(R, s.ith, s.nth, rb, re);
  float* dst_hidden = out.kind == OutputKind::kHidden ? out.data : xg;
  for (int64_t i = rb; i < re; ++i) {
    if (norm_.empty())
      std::copy_n(x + rows[size_t(i)] * E, E, dst_hidden + i * E);
    else
      ops::rms_norm(x + rows[size_t(i)] * E, norm_.data(), dst_hidden + i * E, E, eps_);
  }
  s.barrier();
  if (out.kind == OutputKind::kHidden) return;
  ops::matmul_in_run(s.pool, s.ith, s.nth, output_, xg, R, out.data, size_t(n_vocab_), ms);
  if (softcap_ > 0) {
    for (int64_t i = rb; i < re; ++i)
      for (int64_t v = 0; v < n_vocab_; ++v) {
        float& l = out.data[i * n_vocab_ + v];
        l = softcap_ * std::tanh(l / softcap_);
      }
  }
}

}  // namespace hearth::models
