// bert: BERT-style text encoders (all-MiniLM, BGE, mxbai-embed-large, ... as embedding models).
//
//   x = LayerNorm(token_embd[tokens] + token_types[0] + position_embd[positions])
//   every layer:  x = LayerNorm(x + Attention(x))        (bidirectional, biases, no RoPE)
//                 x = LayerNorm(x + Wdown · gelu(Wup · x + b) + b)
//   output = x per token, or pooled per sequence (`bert.pooling_type`); rerankers (rank pooling)
//            put the [CLS] row through their classifier head: cls (+ tanh) and/or cls.output
//
// Biases are optional (real BERTs have them). Fused attn_qkv files (some converters) are not
// read yet. Post-norm, unlike the decoders. Positions are absolute: a sequence holds at most
// `bert.context_length` tokens. No vocabulary head: the model gives embeddings (or rank scores)
// only.
#include <algorithm>
#include <optional>

#include "models/blocks/attention.h"
#include "models/blocks/ffn.h"
#include "models/blocks/postnorm.h"
#include "models/config.h"
#include "models/transformer.h"
#include "ops/elementwise.h"

namespace hearth::models {
namespace {

struct Spec {
  ModelConfig cfg;
  AttentionShape attn_shape;
  AttentionOptions attn;
  float ln_eps = 1e-12f;
};

Result<Spec> read_spec(const gguf::GgufFile& f) {
  Spec s;
  HEARTH_ASSIGN_OR_RETURN(s.cfg, read_common_config(f, "bert", ops::RopeMode::kNorm));
  auto& c = s.cfg;
  // Always bidirectional, whatever bert.attention.causal says: llama.cpp runs BERT through its
  // encoder path, which ignores the key (docs/bert-llama-cpp.md).
  c.causal = false;
  HEARTH_ASSIGN_OR_RETURN(double eps, f.get_float_or("bert.attention.layer_norm_epsilon", 1e-12));
  s.ln_eps = float(eps);
  c.norm_eps = s.ln_eps;
  if (c.n_ctx_train <= 0 || c.n_ctx_train > (1 << 20))
    return corrupt("[model] bert.context_length = " + std::to_string(c.n_ctx_train));
  s.attn_shape = {c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.head_dim_v, s.ln_eps};
  s.attn.causal = false;
  return s;
}

Result<ArchInfo> describe(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(Spec s, read_spec(f));
  CacheLayout layout(size_t(s.cfg.n_layer), Attention::cache_for(s.attn_shape, s.attn));
  return ArchInfo{std::move(s.cfg), std::move(layout)};
}

class BertModel final : public Transformer {
 public:
  BertModel(std::shared_ptr<gguf::GgufFile> f, ArchInfo info)
      : Transformer(std::move(f), std::move(info)) {}

  Status load(ThreadPool& pool, const LoadOptions& opt) {
    HEARTH_ASSIGN_OR_RETURN(Spec s, read_spec(*file_));
    const auto& c = config_;
    const int64_t E = c.n_embd;
    WeightLoader w(*file_, pool, opt.repack, opt.placement, c.arch);
    HEARTH_RETURN_IF_ERROR(embd_.load(*file_, config_, false));
    head_.load_encoder(config_);
    HEARTH_RETURN_IF_ERROR(load_classifier(w));
    // A classifier head without a pooling type: a converted *ForSequenceClassification model,
    // which llama-server runs with --reranking (rank pooling) and node-llama-cpp ranks.
    if (config_.n_cls_out > 0 && config_.pooling == Pooling::kNone)
      config_.pooling = Pooling::kRank;
    HEARTH_ASSIGN_OR_RETURN(pos_, w.tensor("position_embd.weight", {c.n_ctx_train, E}));
    if (const auto* tt = file_->find_tensor("token_types.weight")) {
      if (tt->shape.size() != 2 || tt->shape[1] != E || tt->shape[0] <= 0)
        return corrupt("[model] tensor 'token_types.weight' has shape " + shape_str(tt->shape) +
                       ", expected {n_types, " + std::to_string(E) + "}");
      type0_.resize(size_t(E));
      dequantize_row_of(*tt, 0, type0_.data());
    }
    HEARTH_ASSIGN_OR_RETURN(embd_norm_w_, w.vector("token_embd_norm.weight", E));
    HEARTH_ASSIGN_OR_RETURN(embd_norm_b_, w.vector("token_embd_norm.bias", E));
    layers_.resize(size_t(c.n_layer));
    for (int il = 0; il < int(c.n_layer); ++il) {
      Layer& L = layers_[size_t(il)];
      HEARTH_RETURN_IF_ERROR(L.attn.load(w, il, s.attn_shape, s.attn));
      HEARTH_ASSIGN_OR_RETURN(L.attn_norm_w, w.vector(blk(il, "attn_output_norm.weight"), E));
      HEARTH_ASSIGN_OR_RETURN(L.attn_norm_b, w.vector(blk(il, "attn_output_norm.bias"), E));
      HEARTH_RETURN_IF_ERROR(L.ffn.load(w, il, E, c.n_ff));
      HEARTH_ASSIGN_OR_RETURN(L.out_norm_w, w.vector(blk(il, "layer_output_norm.weight"), E));
      HEARTH_ASSIGN_OR_RETURN(L.out_norm_b, w.vector(blk(il, "layer_output_norm.bias"), E));
    }
    return Status::ok();
  }

  Status eval(Context& base, const ForwardInput& in, const ForwardOutput& out) const override {
    auto& ctx = static_cast<ModelContext&>(base);
    for (const auto& b : in.tokens)
      if (b.pos >= config_.n_ctx_train)
        return invalid_argument("[model] position " + std::to_string(b.pos) + " is past bert's " +
                                std::to_string(config_.n_ctx_train) + " positions");
    HEARTH_ASSIGN_OR_RETURN(bool any, begin(ctx, in, out, false));
    if (!any) return Status::ok();
    const int64_t E = config_.n_embd;
    const float eps = config_.norm_eps;
    const DType kv = ctx.params().kv_type;
    ctx.pool().run([&](int ith, int nth) {
      const Step s = step(ctx, in, ith, nth);
      float* x = ctx.x.at(size_t(s.T * E));
      float* xn = ctx.xn.at(size_t(s.T * E));
      float* row = ctx.xg.at(size_t(s.T * E));
      embd_.forward(s, in, x);
      for (int64_t t = s.tb; t < s.te; ++t) {
        float* xr = x + t * E;
        dequantize_row_of(*pos_, s.batch[size_t(t)].pos, row + t * E);
        ops::add(xr, row + t * E, xr, E);
        if (!type0_.empty()) ops::add(xr, type0_.data(), xr, E);
        ops::layer_norm(xr, embd_norm_w_.data(), embd_norm_b_.data(), xr, E, eps);
      }
      s.barrier();
      for (size_t il = 0; il < layers_.size(); ++il) {
        const Layer& L = layers_[il];
        for (int64_t t = s.tb; t < s.te; ++t) std::copy_n(x + t * E, E, xn + t * E);
        s.barrier();
        L.attn.forward(s, int(il), ctx.cache, kv, nullptr, xn, ctx.attn, ctx.ms);
        add_layer_norm(s, x, xn, L.attn_norm_w, L.attn_norm_b, E, eps);
        s.barrier();
        L.ffn.forward(s, x, xn, ctx.ffn, ctx.ms);
        add_layer_norm(s, x, xn, L.out_norm_w, L.out_norm_b, E, eps);
        s.barrier();
      }
      output(s, ctx, x, out);
    });
    return Status::ok();
  }

 private:
  struct Layer {
    Attention attn;
    std::vector<float> attn_norm_w, attn_norm_b, out_norm_w, out_norm_b;
    PlainFfn ffn;
  };

  void reserve(ModelContext& ctx, std::vector<const ops::WeightMatrix*>& ws) const override {
    const int64_t B = ctx.params().n_batch;
    for (const Layer& L : layers_) {
      L.attn.reserve(ctx.attn, B);
      L.attn.weights(ws);
      L.ffn.reserve(ctx.ffn, B);
      L.ffn.weights(ws);
    }
  }
  std::vector<const ops::RopeParams*> ropes() const override { return {}; }

  const gguf::TensorInfo* pos_ = nullptr;
  std::vector<float> type0_, embd_norm_w_, embd_norm_b_;
  std::vector<Layer> layers_;
};

Result<std::unique_ptr<Model>> load(std::shared_ptr<gguf::GgufFile> f, ThreadPool& pool,
                                    const LoadOptions& opt) {
  return Transformer::build<BertModel>(describe, std::move(f), pool, opt);
}

}  // namespace

extern const Architecture kBert{"bert", describe, load};

}  // namespace hearth::models
