// nomic-bert and nomic-bert-moe: Nomic's BERT-style text encoders (nomic-embed-text v1/v1.5,
// nomic-embed-text-v2-moe), as llama.cpp runs them.
//
//   x = LayerNorm(token_embd[tokens] + token_types[0])        (no absolute positions)
//   every layer:  x = LayerNorm(x + Attention(x))              (bidirectional, NEOX RoPE)
//                 x = LayerNorm(x + FFN(x))
//   output = x per token, or pooled per sequence (`<arch>.pooling_type`)
//
// nomic-bert: one fused attn_qkv projection without biases, RoPE over the whole head
// (`nomic-bert.rope.freq_base`, 1000 for v1.5), a SwiGLU FFN Wdown · (silu(Wgate · x) ⊙ Wup · x)
// (llama.cpp ignores FFN biases here).
// nomic-bert-moe: the same attention with biases; every layer il with il % moe_every_n_layers
// == 1 is a mixture of expert_count plain GELU experts (Wdown · gelu(Wup · x), no gate, no
// biases: the converter drops the experts' bias), expert_used_count of them chosen per token by a
// softmax router whose probabilities weigh them as they are (not renormalised); the other layers
// have BERT's FFN, Wdown · gelu(Wup · x + b) + b. GELU is llama.cpp's tanh form through its F16
// table (ops::gelu).
// Post-norm like BERT. RoPE positions run up to `<arch>.context_length`. Embeddings only.
#include <algorithm>
#include <optional>

#include "models/blocks/attention.h"
#include "models/blocks/ffn.h"
#include "models/blocks/moe.h"
#include "models/blocks/postnorm.h"
#include "models/config.h"
#include "models/transformer.h"
#include "ops/elementwise.h"

namespace hearth::models {
namespace {

enum class Variant { kNomic, kNomicMoe };

const char* arch_name(Variant v) {
  return v == Variant::kNomic ? "nomic-bert" : "nomic-bert-moe";
}

struct Spec {
  ModelConfig cfg;
  AttentionShape attn_shape;
  AttentionOptions attn;
  int moe_every = 0;  // nomic-bert-moe: layers il % moe_every == 1 are experts (0: none)
  MoeOptions moe;
};

Result<Spec> read_spec(const gguf::GgufFile& f, Variant v) {
  const std::string arch = arch_name(v), p = arch + ".";
  Spec s;
  HEARTH_ASSIGN_OR_RETURN(s.cfg, read_common_config(f, arch, ops::RopeMode::kNeox));
  auto& c = s.cfg;
  // An encoder: llama.cpp runs it bidirectionally whatever attention.causal says.
  c.causal = false;
  if (!f.find(p + "attention.layer_norm_epsilon"))  // llama.cpp requires it too
    return corrupt("[model] " + arch + " needs " + p + "attention.layer_norm_epsilon");
  HEARTH_ASSIGN_OR_RETURN(double eps, f.get_float(p + "attention.layer_norm_epsilon"));
  c.norm_eps = float(eps);
  if (c.n_ctx_train <= 0 || c.n_ctx_train > (1 << 20))
    return corrupt("[model] " + p + "context_length = " + std::to_string(c.n_ctx_train));
  s.attn_shape = {c.n_embd, c.n_head, c.n_head_kv, c.head_dim, c.head_dim_v, c.norm_eps};
  s.attn.causal = false;
  if (v == Variant::kNomicMoe) {
    HEARTH_ASSIGN_OR_RETURN(int64_t every, f.get_int_or(p + "moe_every_n_layers", 0));
    if (every < 0 || every > c.n_layer)
      return corrupt("[model] " + p + "moe_every_n_layers = " + std::to_string(every));
    s.moe_every = int(every);
    if (s.moe_every > 0) {
      HEARTH_ASSIGN_OR_RETURN(int64_t ne, f.get_int(p + "expert_count"));
      HEARTH_ASSIGN_OR_RETURN(int64_t nu, f.get_int(p + "expert_used_count"));
      if (ne <= 0 || nu <= 0 || nu > ne || ne > 1024)
        return corrupt("[model] " + arch + ": expert_used_count " + std::to_string(nu) +
                       " of expert_count " + std::to_string(ne));
      s.moe.n_expert = int(ne);
      s.moe.n_used = int(nu);
      s.moe.n_ff_exp = c.n_ff;  // the experts are feed_forward_length wide
      s.moe.act = Activation::kGeGLU;
      s.moe.gated = false;
      s.moe.norm_topk = false;
    }
  }
  return s;
}

template <Variant V>
Result<ArchInfo> describe(const gguf::GgufFile& f) {
  HEARTH_ASSIGN_OR_RETURN(Spec s, read_spec(f, V));
  CacheLayout layout(size_t(s.cfg.n_layer), Attention::cache_for(s.attn_shape, s.attn));
  return ArchInfo{std::move(s.cfg), std::move(layout)};
}

class NomicBertModel final : public Transformer {
 public:
  NomicBertModel(std::shared_ptr<gguf::GgufFile> f, ArchInfo info)
      : Transformer(std::move(f), std::move(info)) {}

  Status load(Variant v, ThreadPool& pool, const LoadOptions& opt) {
    HEARTH_ASSIGN_OR_RETURN(Spec s, read_spec(*file_, v));
    const auto& c = config_;
    const int64_t E = c.n_embd;
    WeightLoader w(*file_, pool, opt.repack, opt.placement, c.arch);
    HEARTH_RETURN_IF_ERROR(embd_.load(*file_, config_, false));
    head_.load_encoder(config_);
    if (const auto* tt = file_->find_tensor("token_types.weight")) {  // only row 0 is used
      if (tt->shape.size() != 2 || tt->shape[1] != E || tt->shape[0] <= 0)
        return corrupt("[model] tensor 'token_types.weight' has shape " + shape_str(tt->shape) +
                       ", expected {n_types, " + std::to_string(E) + "}");
      type0_.resize(size_t(E));
      dequantize_row_of(*tt, 0, type0_.data());
    }
    HEARTH_ASSIGN_OR_RETURN(embd_norm_w_, w.vector("token_embd_norm.weight", E));
    HEARTH_ASSIGN_OR_RETURN(embd_norm_b_, w.vector("token_embd_norm.bias", E));
    s.attn.rope = &config_.rope;
    layers_.resize(size_t(c.n_layer));
    for (int il = 0; il < int(c.n_layer); ++il) {
      Layer& L = layers_[size_t(il)];
      HEARTH_RETURN_IF_ERROR(L.attn.load(w, il, s.attn_shape, s.attn));
      HEARTH_ASSIGN_OR_RETURN(L.attn_norm_w, w.vector(blk(il, "attn_output_norm.weight"), E));
      HEARTH_ASSIGN_OR_RETURN(L.attn_norm_b, w.vector(blk(il, "attn_output_norm.bias"), E));
      if (v == Variant::kNomic) {
        HEARTH_RETURN_IF_ERROR(L.swiglu.emplace().load(w, il, E, c.n_ff, Activation::kSwiGLU));
      } else if (s.moe_every > 0 && il % s.moe_every == 1) {
        HEARTH_RETURN_IF_ERROR(L.moe.emplace().load(w, il, E, s.moe));
      } else {
        HEARTH_RETURN_IF_ERROR(L.gelu.emplace().load(w, il, E, c.n_ff));
      }
      HEARTH_ASSIGN_OR_RETURN(L.out_norm_w, w.vector(blk(il, "layer_output_norm.weight"), E));
      HEARTH_ASSIGN_OR_RETURN(L.out_norm_b, w.vector(blk(il, "layer_output_norm.bias"), E));
    }
    has_moe_ = std::any_of(layers_.begin(), layers_.end(), [](const Layer& L) { return L.moe; });
    return Status::ok();
  }

  Status eval(Context& base, const ForwardInput& in, const ForwardOutput& out) const override {
    auto& ctx = static_cast<ModelContext&>(base);
    for (const auto& b : in.tokens)
      if (b.pos >= config_.n_ctx_train)
        return invalid_argument("[model] position " + std::to_string(b.pos) + " is past " +
                                config_.arch + "'s " + std::to_string(config_.n_ctx_train) +
                                " positions");
    HEARTH_ASSIGN_OR_RETURN(bool any, begin(ctx, in, out, has_moe_));
    if (!any) return Status::ok();
    const int64_t E = config_.n_embd;
    const float eps = config_.norm_eps;
    const DType kv = ctx.params().kv_type;
    ctx.pool().run([&](int ith, int nth) {
      const Step s = step(ctx, in, ith, nth);
      float* x = embed(s, ctx, in);  // and the batch's RoPE tables
      float* xn = ctx.xn.at(size_t(s.T * E));
      for (int64_t t = s.tb; t < s.te; ++t) {
        float* xr = x + t * E;
        if (!type0_.empty()) ops::add(xr, type0_.data(), xr, E);
        ops::layer_norm(xr, embd_norm_w_.data(), embd_norm_b_.data(), xr, E, eps);
      }
      for (size_t il = 0; il < layers_.size(); ++il) {
        const Layer& L = layers_[il];
        for (int64_t t = s.tb; t < s.te; ++t) std::copy_n(x + t * E, E, xn + t * E);
        s.barrier();
        L.attn.forward(s, int(il), ctx.cache, kv, ctx.rope_cs(0), xn, ctx.attn, ctx.ms);
        add_layer_norm(s, x, xn, L.attn_norm_w, L.attn_norm_b, E, eps);
        s.barrier();
        if (L.moe) {
          L.moe->forward(s, x, x, x, ctx.moe, ctx.ffn, ctx.ms);  // x += experts(x)
        } else {
          if (L.swiglu)
            L.swiglu->forward(s, x, xn, ctx.ffn, ctx.ms);
          else
            L.gelu->forward(s, x, xn, ctx.ffn, ctx.ms);
          for (int64_t t = s.tb; t < s.te; ++t) ops::add(x + t * E, xn + t * E, x + t * E, E);
        }
        for (int64_t t = s.tb; t < s.te; ++t)
          ops::layer_norm(x + t * E, L.out_norm_w.data(), L.out_norm_b.data(), x + t * E, E, eps);
      }
      s.barrier();
      output(s, ctx, x, out);
    });
    return Status::ok();
  }

 private:
  struct Layer {
    Attention attn;
    std::vector<float> attn_norm_w, attn_norm_b, out_norm_w, out_norm_b;
    std::optional<DenseFfn> swiglu;  // nomic-bert
    std::optional<PlainFfn> gelu;    // nomic-bert-moe's dense layers
    std::optional<Moe> moe;          // and its expert layers
  };

  void reserve(ModelContext& ctx, std::vector<const ops::WeightMatrix*>& ws) const override {
    const int64_t B = ctx.params().n_batch;
    for (const Layer& L : layers_) {
      L.attn.reserve(ctx.attn, B);
      L.attn.weights(ws);
      if (L.swiglu) {
        L.swiglu->reserve(ctx.ffn, B);
        L.swiglu->weights(ws);
      } else if (L.gelu) {
        L.gelu->reserve(ctx.ffn, B);
        L.gelu->weights(ws);
      } else {
        L.moe->reserve(ctx.moe, ctx.ffn, B);
        L.moe->weights(ws);
      }
    }
  }
  std::vector<const ops::RopeParams*> ropes() const override { return {&config_.rope}; }

  std::vector<float> type0_, embd_norm_w_, embd_norm_b_;
  std::vector<Layer> layers_;
  bool has_moe_ = false;
};

template <Variant V>
Result<std::unique_ptr<Model>> load(std::shared_ptr<gguf::GgufFile> f, ThreadPool& pool,
                                    const LoadOptions& opt) {
  return Transformer::build<NomicBertModel>(describe<V>, std::move(f), pool, opt, V);
}

}  // namespace

extern const Architecture kNomicBert{"nomic-bert", describe<Variant::kNomic>,
                                     load<Variant::kNomic>};
extern const Architecture kNomicBertMoe{"nomic-bert-moe", describe<Variant::kNomicMoe>,
                                        load<Variant::kNomicMoe>};

}  // namespace hearth::models
