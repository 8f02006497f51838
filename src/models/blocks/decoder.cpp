#include "models/blocks/decoder.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "models/weights.h"
#include "ops/attention.h"
#include "ops/delta_net.h"
#include "ops/elementwise.h"

namespace hearth::models {
namespace {

using Vec = std::vector<float>;

// Gated DeltaNet sizes: channels of the causal conv (q, k and v), floats of its carried history
// and of the delta-rule state, per layer and sequence.
int64_t delta_conv_dim(const DecoderFlags& f) {
  return (2 * f.ssm_k_heads + f.ssm_v_heads) * int64_t(f.ssm_head_dim);
}
size_t delta_conv_floats(const DecoderFlags& f) {
  return size_t(f.ssm_conv - 1) * size_t(delta_conv_dim(f));
}
size_t delta_ssm_floats(const DecoderFlags& f) {
  return size_t(f.ssm_v_heads) * size_t(f.ssm_head_dim) * size_t(f.ssm_head_dim);
}
using OptVec = std::optional<Vec>;

struct Layer {
  Vec attn_norm, ffn_norm;
  OptVec post_attn_norm, post_ffn_norm;  // Gemma
  bool swa = false;                      // sliding-window layer
  bool nope = false;                     // no RoPE (Llama 4)
  int64_t hd = 0, hd_v = 0;              // head sizes (Gemma 4: differ between layer kinds)
  std::optional<ops::WeightMatrix> sh_gate, sh_up, sh_down;  // shared expert (Llama 4)
  ops::WeightMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
  OptVec bq, bk, bv, bo;
  OptVec q_norm, k_norm;
  // Mixture of experts (instead of w_gate/w_up/w_down): router (n_expert, n_embd), experts.
  std::optional<ops::WeightMatrix> router;
  std::vector<ops::WeightMatrix> exp_gate, exp_up, exp_down;
  OptVec shexp_gate;  // Qwen 3.5 MoE: the shared expert's sigmoid gate (n_embd)
  // Gemma 4 MoE beside the dense FFN: its norms and the router's input scale.
  OptVec pre_ffn_norm2, post_ffn_norm1, post_ffn_norm2, router_scale;
  std::optional<float> out_scale;  // Gemma 4: the layer's output × this (layer_output_scale)
  int64_t n_ff = 0;                // dense FFN size (Gemma 4 E2B/E4B: per layer)
  int kv_src = -1;                 // Gemma 4 shared-KV layer: the layer whose cache it reads
  bool v_is_k = false;             // Gemma 4: no attn_v, V is the K projection
  std::optional<ops::WeightMatrix> ple_gate, ple_proj;  // Gemma 4 per-layer embeddings
  OptVec ple_post_norm;
  // Gated DeltaNet layer (instead of attention): projections, conv taps (conv_dim × K), per
  // value head dt bias and A (= −exp(A_log)), the output norm (head size).
  bool recurrent = false;
  ops::WeightMatrix w_qkv, w_z, w_beta, w_alpha, w_ssm_out;
  Vec conv_w, dt_bias, ssm_a, ssm_norm;
};

class DecoderContext final : public Context {
 public:
  DecoderContext(const ContextParams& p, ThreadPool& pool) : Context(p, pool) {}
  int seq_capacity(int seq) const override {
    return seq >= 0 && seq < int(cap.size()) ? cap[size_t(seq)] : 0;
  }
  Status reserve_sequence(int seq, int n_ctx) override {
    if (seq < 0 || seq >= params_.n_seq)
      return invalid_argument("[model] sequence " + std::to_string(seq) + " out of range");
    if (n_ctx <= 0) return invalid_argument("[model] n_ctx must be positive");
    if (n_ctx == cap[size_t(seq)]) return Status::ok();
    // Sliding layers keep a ring of window + n_batch positions (written twice, see
    // ops::AttnParams::ring) once that is smaller than the whole context.
    const int64_t R = window > 0 ? int64_t(window) + params_.n_batch : 0;
    const bool use_ring = R > 0 && int64_t(n_ctx) > 2 * R;
    for (size_t il = 0; il < n_layer; ++il) {
      auto& kb = k[il * size_t(params_.n_seq) + size_t(seq)];
      auto& vb = v[il * size_t(params_.n_seq) + size_t(seq)];
      const size_t rows = use_ring && swa[il] ? size_t(2 * R) : size_t(n_ctx);
      kb.assign(rows * k_rows[il], 0);
      vb.assign(rows * v_rows[il], 0);
      kb.shrink_to_fit();
      vb.shrink_to_fit();
    }
    ring[size_t(seq)] = use_ring ? R : 0;
    cap[size_t(seq)] = n_ctx;
    if (has_recurrent) rec_next[size_t(seq)] = 0;
    as.reserve(pool_->size(), n_ctx, head_dim_k, head_dim_v);  // the largest head sizes
    return Status::ok();
  }
  int64_t reusable_prefix(int seq, int64_t n_past, int64_t want) const override {
    // Recurrent state holds exactly n_past positions and cannot be rewound.
    if (has_recurrent && want != n_past) return 0;
    const int64_t R = seq >= 0 && seq < int(ring.size()) ? ring[size_t(seq)] : 0;
    if (R == 0 || n_past <= R) return want;  // nothing overwritten yet
    // The ring holds positions n_past - R .. n_past - 1; continuing at L needs L - window ..
    // L - 1.
    return want >= n_past - R + window ? want : 0;
  }
  // KV cache: [layer][seq] buffers of cap[seq] rows each (sliding layers: 2 * ring[seq] rows
  // when ring[seq] > 0).
  std::vector<std::vector<uint8_t>> k, v;
  std::vector<int> cap;
  std::vector<int64_t> ring;
  std::vector<bool> swa;  // per layer
  int window = 0;
  size_t n_layer = 0;
  std::vector<size_t> k_rows, v_rows;  // bytes of one cache row, per layer
  int head_dim_k = 0, head_dim_v = 0;
  // Activations for up to n_batch tokens.
  Vec x, xn, q, kc, vc, attn, gate, up, rope_cs, rope_cs_swa, xg;
  // MoE: router probabilities, each token's chosen experts and weights, the tokens routed to
  // each expert, and the weighted sum of expert outputs.
  Vec router_p, sel_w, moe_out, exp_out, margin;
  int64_t n_margin = 0;
  std::span<const float> router_margins() const override {
    return std::span<const float>(margin.data(), size_t(n_margin));
  }
  std::vector<int32_t> sel_id, exp_rows, exp_count;
  std::vector<float> exp_wt;
  // Gated DeltaNet layers: per [layer][seq] conv history ((K-1) × conv_dim) and delta-rule
  // state (v_heads × d × d); per sequence the position the recurrent state continues at (it
  // cannot be rewound: only 0, a fresh start, or exactly that position may come next).
  std::vector<Vec> conv_state, ssm_state;
  std::vector<int64_t> rec_next;
  bool has_recurrent = false;
  Vec qkv, conv_out, zg, beta, alpha, dn_out, qg, attn_gate;
  Vec x2, rin;              // Gemma 4 MoE: the experts' and the router's inputs
  Vec ple, ple_tmp, ple_g;  // Gemma 4 per-layer embeddings: [token][layer][width], scratch
  std::vector<ops::DeltaChunkScratch> dsc;  // per thread
  ops::MatmulScratch ms;
  ops::AttnScratch as;
};

class DenseDecoder final : public Model {
 public:
  DenseDecoder(std::shared_ptr<gguf::GgufFile> f, ModelConfig c, DecoderFlags fl) : flags_(fl) {
    file_ = std::move(f);
    config_ = std::move(c);
  }

  Status load(ThreadPool& pool, const LoadOptions& opt) {
    const auto& c = config_;
    WeightLoader w(*file_, pool, opt.repack, opt.placement, c.arch);
    HEARTH_ASSIGN_OR_RETURN(const gguf::TensorInfo* emb, [&]() -> Result<const gguf::TensorInfo*> {
      const auto* t = file_->find_tensor("token_embd.weight");
      if (!t)
        return corrupt("[model] missing tensor 'token_embd.weight' (required by " + c.arch + ")");
      if (t->shape.size() != 2 || t->shape[1] != c.n_embd)
        return corrupt("[model] tensor 'token_embd.weight' has shape " + shape_str(t->shape) +
                       ", expected {n_vocab, " + std::to_string(c.n_embd) + "}");
      return t;
    }());
    tok_embd_ = emb;
    config_.n_vocab = emb->shape[0];
    const int64_t n_vocab = config_.n_vocab;
    HEARTH_ASSIGN_OR_RETURN(output_norm_, w.vector("output_norm.weight", c.n_embd));
    HEARTH_ASSIGN_OR_RETURN(auto out, w.optional_matrix("output.weight", n_vocab, c.n_embd));
    if (out) {
      output_ = std::move(*out);
    } else {  // tied embeddings
      tied_ = true;
      HEARTH_ASSIGN_OR_RETURN(
          output_, ops::WeightMatrix::make("token_embd.weight", emb->type, n_vocab, c.n_embd,
                                           emb->data, emb->nbytes));
      output_.prepare(pool, opt.placement, opt.repack, &w.arena());
    }
    HEARTH_ASSIGN_OR_RETURN(rope_freqs_, w.optional_vector("rope_freqs.weight", c.rope.n_rot / 2));

    const int64_t PL = flags_.n_embd_per_layer;
    if (PL > 0) {
      HEARTH_ASSIGN_OR_RETURN(ple_tok_,
                              w.tensor("per_layer_token_embd.weight", {n_vocab, c.n_layer * PL}));
      HEARTH_ASSIGN_OR_RETURN(ple_model_proj_,
                              w.matrix("per_layer_model_proj.weight", c.n_layer * PL, c.n_embd));
      HEARTH_ASSIGN_OR_RETURN(ple_proj_norm_, w.vector("per_layer_proj_norm.weight", PL));
    }
    layers_.resize(size_t(c.n_layer));
    for (int il = 0; il < int(c.n_layer); ++il) {
      Layer& L = layers_[il];
      L.swa = size_t(il) < flags_.swa_layers.size() && flags_.swa_layers[size_t(il)];
      L.hd = L.swa && flags_.head_dim_swa > 0 ? flags_.head_dim_swa : c.head_dim;
      L.hd_v = L.swa && flags_.head_dim_swa > 0 ? flags_.head_dim_swa : c.head_dim_v;
      const int64_t nq = c.n_head * L.hd, nk = c.n_head_kv * L.hd, nv = c.n_head_kv * L.hd_v;
      HEARTH_ASSIGN_OR_RETURN(L.attn_norm, w.vector(blk(il, "attn_norm.weight"), c.n_embd));
      L.recurrent =
          size_t(il) < flags_.recurrent_layers.size() && flags_.recurrent_layers[size_t(il)];
      if (flags_.n_kv_shared > 0 && il >= c.n_layer - flags_.n_kv_shared) {
        L.kv_src = int(c.n_layer - flags_.n_kv_shared) - (L.swa ? 2 : 1);
        const Layer* src = L.kv_src >= 0 ? &layers_[size_t(L.kv_src)] : nullptr;
        if (!src || src->swa != L.swa || src->hd != L.hd || src->kv_src >= 0)
          return corrupt("[model] " + c.arch + ": layer " + std::to_string(il) +
                         " shares the KV cache of layer " + std::to_string(L.kv_src) +
                         ", which is not a layer of the same kind with its own cache");
      }
      if (PL > 0) {
        HEARTH_ASSIGN_OR_RETURN(L.ple_gate, w.matrix(blk(il, "inp_gate.weight"), PL, c.n_embd));
        HEARTH_ASSIGN_OR_RETURN(L.ple_proj, w.matrix(blk(il, "proj.weight"), c.n_embd, PL));
        HEARTH_ASSIGN_OR_RETURN(L.ple_post_norm, w.vector(blk(il, "post_norm.weight"), c.n_embd));
      }
      if (L.recurrent) {
        HEARTH_RETURN_IF_ERROR(load_delta_net(w, il, L));
      } else {
        HEARTH_RETURN_IF_ERROR(load_attention(w, il, L, nq, nk, nv));
      }
      HEARTH_ASSIGN_OR_RETURN(L.ffn_norm,
                              w.vector(blk(il, flags_.ffn_norm_name.c_str()), c.n_embd));
      if (flags_.post_norms) {
        HEARTH_ASSIGN_OR_RETURN(L.post_attn_norm,
                                w.vector(blk(il, "post_attention_norm.weight"), c.n_embd));
        HEARTH_ASSIGN_OR_RETURN(L.post_ffn_norm,
                                w.vector(blk(il, "post_ffw_norm.weight"), c.n_embd));
      }
      L.nope = size_t(il) < flags_.nope_layers.size() && flags_.nope_layers[size_t(il)];
      const bool moe = flags_.n_expert > 0 &&
                       (flags_.moe_layers.empty() ||
                        (size_t(il) < flags_.moe_layers.size() && flags_.moe_layers[size_t(il)]));
      if (moe && flags_.shared_expert) {
        const int64_t nf = flags_.n_ff_shexp > 0 ? flags_.n_ff_shexp : flags_.n_ff_exp;
        HEARTH_ASSIGN_OR_RETURN(L.sh_gate,
                                w.matrix(blk(il, "ffn_gate_shexp.weight"), nf, c.n_embd));
        HEARTH_ASSIGN_OR_RETURN(L.sh_up, w.matrix(blk(il, "ffn_up_shexp.weight"), nf, c.n_embd));
        HEARTH_ASSIGN_OR_RETURN(L.sh_down,
                                w.matrix(blk(il, "ffn_down_shexp.weight"), c.n_embd, nf));
        if (flags_.shared_expert_gate) {
          HEARTH_ASSIGN_OR_RETURN(L.shexp_gate,
                                  w.vector(blk(il, "ffn_gate_inp_shexp.weight"), c.n_embd));
        }
      }
      HEARTH_ASSIGN_OR_RETURN(auto os, w.optional_vector(blk(il, "layer_output_scale.weight"), 1));
      if (os) L.out_scale = (*os)[0];
      if (moe) {
        const int64_t ne = flags_.n_expert, nf = flags_.n_ff_exp;
        HEARTH_ASSIGN_OR_RETURN(L.router, w.matrix(blk(il, "ffn_gate_inp.weight"), ne, c.n_embd));
        if (w.has(blk(il, "ffn_gate_up_exps.weight"))) {  // fused: gate rows, then up rows
          HEARTH_ASSIGN_OR_RETURN(
              auto gu, w.experts_split(blk(il, "ffn_gate_up_exps.weight"), ne, 2, nf, c.n_embd));
          L.exp_gate = std::move(gu[0]);
          L.exp_up = std::move(gu[1]);
        } else {
          HEARTH_ASSIGN_OR_RETURN(L.exp_gate,
                                  w.experts(blk(il, "ffn_gate_exps.weight"), ne, nf, c.n_embd));
          HEARTH_ASSIGN_OR_RETURN(L.exp_up,
                                  w.experts(blk(il, "ffn_up_exps.weight"), ne, nf, c.n_embd));
        }
        HEARTH_ASSIGN_OR_RETURN(L.exp_down,
                                w.experts(blk(il, "ffn_down_exps.weight"), ne, c.n_embd, nf));
        if (!flags_.moe_beside_dense) continue;
        HEARTH_ASSIGN_OR_RETURN(L.router_scale, w.vector(blk(il, "ffn_gate_inp.scale"), c.n_embd));
        HEARTH_ASSIGN_OR_RETURN(L.pre_ffn_norm2,
                                w.vector(blk(il, "pre_ffw_norm_2.weight"), c.n_embd));
        HEARTH_ASSIGN_OR_RETURN(L.post_ffn_norm1,
                                w.vector(blk(il, "post_ffw_norm_1.weight"), c.n_embd));
        HEARTH_ASSIGN_OR_RETURN(L.post_ffn_norm2,
                                w.vector(blk(il, "post_ffw_norm_2.weight"), c.n_embd));
      }
      L.n_ff = c.n_ff_layers.empty() ? c.n_ff : c.n_ff_layers[size_t(il)];
      HEARTH_ASSIGN_OR_RETURN(L.w_gate, w.matrix(blk(il, "ffn_gate.weight"), L.n_ff, c.n_embd));
      HEARTH_ASSIGN_OR_RETURN(L.w_up, w.matrix(blk(il, "ffn_up.weight"), L.n_ff, c.n_embd));
      HEARTH_ASSIGN_OR_RETURN(L.w_down, w.matrix(blk(il, "ffn_down.weight"), c.n_embd, L.n_ff));
    }
    config_.rope.freq_factors = rope_freqs_ ? rope_freqs_->data() : nullptr;
    rope_swa_ = config_.rope;
    if (flags_.n_rot_swa > 0) rope_swa_.n_rot = flags_.n_rot_swa;
    rope_swa_.freq_base = flags_.rope_base_swa;
    rope_swa_.freq_scale = 1;
    rope_swa_.ext_factor = 0;
    rope_swa_.attn_factor = 1;
    rope_swa_.freq_factors = nullptr;
    return Status::ok();
  }

  Status load_attention(WeightLoader& w, int il, Layer& L, int64_t nq, int64_t nk, int64_t nv) {
    const auto& c = config_;
    HEARTH_ASSIGN_OR_RETURN(
        L.wq, w.matrix(blk(il, "attn_q.weight"), flags_.attn_output_gate ? 2 * nq : nq, c.n_embd));
    HEARTH_ASSIGN_OR_RETURN(L.wo,
                            w.matrix(blk(il, "attn_output.weight"), c.n_embd, c.n_head * L.hd_v));
    if (L.kv_src >= 0) {  // queries only: K and V come from another layer's cache
      if (flags_.qk_norm) {
        HEARTH_ASSIGN_OR_RETURN(L.q_norm, w.vector(blk(il, "attn_q_norm.weight"), L.hd));
      }
      return Status::ok();
    }
    HEARTH_ASSIGN_OR_RETURN(L.wk, w.matrix(blk(il, "attn_k.weight"), nk, c.n_embd));
    if (flags_.v_from_k && !w.has(blk(il, "attn_v.weight")) && nk == nv) {
      L.v_is_k = true;
    } else {
      HEARTH_ASSIGN_OR_RETURN(L.wv, w.matrix(blk(il, "attn_v.weight"), nv, c.n_embd));
    }
    if (flags_.qkv_bias_required) {
      HEARTH_ASSIGN_OR_RETURN(L.bq, w.vector(blk(il, "attn_q.bias"), nq));
      HEARTH_ASSIGN_OR_RETURN(L.bk, w.vector(blk(il, "attn_k.bias"), nk));
      HEARTH_ASSIGN_OR_RETURN(L.bv, w.vector(blk(il, "attn_v.bias"), nv));
    } else {
      HEARTH_ASSIGN_OR_RETURN(L.bq, w.optional_vector(blk(il, "attn_q.bias"), nq));
      HEARTH_ASSIGN_OR_RETURN(L.bk, w.optional_vector(blk(il, "attn_k.bias"), nk));
      HEARTH_ASSIGN_OR_RETURN(L.bv, w.optional_vector(blk(il, "attn_v.bias"), nv));
    }
    HEARTH_ASSIGN_OR_RETURN(L.bo, w.optional_vector(blk(il, "attn_output.bias"), c.n_embd));
    if (flags_.qk_norm) {
      HEARTH_ASSIGN_OR_RETURN(L.q_norm, w.vector(blk(il, "attn_q_norm.weight"), L.hd));
      HEARTH_ASSIGN_OR_RETURN(L.k_norm, w.vector(blk(il, "attn_k_norm.weight"), L.hd));
    }
    return Status::ok();
  }

  Status load_delta_net(WeightLoader& w, int il, Layer& L) {
    const int64_t E = config_.n_embd, K = flags_.ssm_conv, d = flags_.ssm_head_dim;
    const int64_t nvh = flags_.ssm_v_heads;
    const int64_t conv_dim = delta_conv_dim(flags_);
    HEARTH_ASSIGN_OR_RETURN(L.w_qkv, w.matrix(blk(il, "attn_qkv.weight"), conv_dim, E));
    HEARTH_ASSIGN_OR_RETURN(L.w_z, w.matrix(blk(il, "attn_gate.weight"), nvh * d, E));
    HEARTH_ASSIGN_OR_RETURN(L.w_beta, w.matrix(blk(il, "ssm_beta.weight"), nvh, E));
    HEARTH_ASSIGN_OR_RETURN(L.w_alpha, w.matrix(blk(il, "ssm_alpha.weight"), nvh, E));
    HEARTH_ASSIGN_OR_RETURN(L.w_ssm_out, w.matrix(blk(il, "ssm_out.weight"), E, nvh * d));
    HEARTH_ASSIGN_OR_RETURN(const gguf::TensorInfo* conv,
                            w.tensor(blk(il, "ssm_conv1d.weight"), {conv_dim, K}));
    L.conv_w.resize(size_t(conv_dim * K));
    for (int64_t r = 0; r < conv_dim; ++r) dequantize_row_of(*conv, r, L.conv_w.data() + r * K);
    HEARTH_ASSIGN_OR_RETURN(L.dt_bias, w.vector(blk(il, "ssm_dt.bias"), nvh));
    HEARTH_ASSIGN_OR_RETURN(L.ssm_a, w.vector(blk(il, "ssm_a"), nvh));
    HEARTH_ASSIGN_OR_RETURN(L.ssm_norm, w.vector(blk(il, "ssm_norm.weight"), d));
    return Status::ok();
  }

  size_t state_bytes(const ContextParams& p) const override {
    return decoder_state_bytes(config_, flags_, p);
  }

  int64_t conv_dim() const { return delta_conv_dim(flags_); }
  size_t conv_floats() const { return delta_conv_floats(flags_); }
  size_t ssm_floats() const { return delta_ssm_floats(flags_); }

  Result<std::unique_ptr<Context>> new_context(const ContextParams& p,
                                               ThreadPool& pool) const override {
    const auto& c = config_;
    const TypeTraits* kvt = find_type(uint32_t(p.kv_type));
    if (!kvt || (p.kv_type != DType::F16 && p.kv_type != DType::Q8_0 && p.kv_type != DType::F32))
      return invalid_argument("[model] KV cache type must be f16, q8_0 or f32");
    if (c.head_dim % kvt->block_elems || c.head_dim_v % kvt->block_elems)
      return invalid_argument(std::string("[model] head size is not a multiple of the ") +
                              kvt->name + " block size");
    if (p.n_ctx <= 0 || p.n_seq <= 0 || p.n_batch <= 0)
      return invalid_argument("[model] n_ctx, n_seq and n_batch must be positive");
    auto ctx = std::make_unique<DecoderContext>(p, pool);
    int64_t max_hd = c.head_dim, max_hd_v = c.head_dim_v;
    for (const auto& L : layers_) {
      if (L.recurrent || L.kv_src >= 0) {  // no KV cache of its own
        ctx->k_rows.push_back(0);
        ctx->v_rows.push_back(0);
        max_hd = std::max(max_hd, L.hd);
        max_hd_v = std::max(max_hd_v, L.hd_v);
        continue;
      }
      if (L.hd % kvt->block_elems || L.hd_v % kvt->block_elems)
        return invalid_argument(std::string("[model] head size is not a multiple of the ") +
                                kvt->name + " block size");
      ctx->k_rows.push_back(row_bytes(*kvt, c.n_head_kv * L.hd));
      ctx->v_rows.push_back(row_bytes(*kvt, c.n_head_kv * L.hd_v));
      max_hd = std::max(max_hd, L.hd);
      max_hd_v = std::max(max_hd_v, L.hd_v);
    }
    ctx->n_layer = size_t(c.n_layer);
    ctx->head_dim_k = int(max_hd);
    ctx->head_dim_v = int(max_hd_v);
    ctx->k.resize(size_t(c.n_layer) * size_t(p.n_seq));
    ctx->v.resize(size_t(c.n_layer) * size_t(p.n_seq));
    ctx->cap.assign(size_t(p.n_seq), 0);
    ctx->ring.assign(size_t(p.n_seq), 0);
    ctx->window = flags_.sliding_window;
    ctx->swa.assign(size_t(c.n_layer), false);
    for (size_t il = 0; il < layers_.size(); ++il) ctx->swa[il] = layers_[il].swa;
    const size_t B = size_t(p.n_batch);
    for (const auto& L : layers_) ctx->has_recurrent |= L.recurrent;
    if (ctx->has_recurrent) {
      ctx->rec_next.assign(size_t(p.n_seq), 0);
      ctx->conv_state.resize(size_t(c.n_layer) * size_t(p.n_seq));
      ctx->ssm_state.resize(size_t(c.n_layer) * size_t(p.n_seq));
      for (size_t il = 0; il < layers_.size(); ++il) {
        if (!layers_[il].recurrent) continue;
        for (int s = 0; s < p.n_seq; ++s) {
          ctx->conv_state[il * size_t(p.n_seq) + size_t(s)].assign(conv_floats(), 0.0f);
          ctx->ssm_state[il * size_t(p.n_seq) + size_t(s)].assign(ssm_floats(), 0.0f);
        }
      }
      const int64_t nvd = int64_t(flags_.ssm_v_heads) * flags_.ssm_head_dim;
      ctx->qkv.resize(B * size_t(conv_dim()));
      ctx->conv_out.resize(B * size_t(conv_dim()));
      ctx->zg.resize(B * size_t(nvd));
      ctx->dn_out.resize(B * size_t(nvd));
      ctx->beta.resize(B * size_t(flags_.ssm_v_heads));
      ctx->alpha.resize(B * size_t(flags_.ssm_v_heads));
      ctx->dsc.resize(size_t(pool.size()));
      for (auto& d : ctx->dsc)
        d.reserve(ops::kDeltaChunk, flags_.ssm_head_dim, flags_.ssm_head_dim);
    }
    if (flags_.n_embd_per_layer > 0) {
      const size_t LP = size_t(c.n_layer * flags_.n_embd_per_layer);
      ctx->ple.resize(B * LP);
      ctx->ple_tmp.resize(B * LP);
      ctx->ple_g.resize(B * size_t(flags_.n_embd_per_layer));
    }
    if (flags_.attn_output_gate) {
      ctx->qg.resize(B * size_t(2 * c.n_head * max_hd));
      ctx->attn_gate.resize(B * size_t(c.n_head * max_hd_v));
    }
    for (int s = 0; s < p.n_seq; ++s) HEARTH_RETURN_IF_ERROR(ctx->reserve_sequence(s, p.n_ctx));
    ctx->x.resize(B * c.n_embd);
    ctx->xn.resize(B * c.n_embd);
    ctx->xg.resize(B * c.n_embd);
    ctx->q.resize(B * c.n_head * max_hd);
    ctx->kc.resize(B * c.n_head_kv * max_hd);
    ctx->vc.resize(B * c.n_head_kv * max_hd_v);
    ctx->attn.resize(B * c.n_head * max_hd_v);
    const int64_t n_ff =
        flags_.n_expert > 0 ? std::max({c.n_ff, flags_.n_ff_exp, flags_.n_ff_shexp}) : c.n_ff;
    ctx->gate.resize(B * n_ff);
    ctx->up.resize(B * n_ff);
    ctx->rope_cs.resize(B * c.rope.n_rot);
    if (!flags_.swa_layers.empty()) ctx->rope_cs_swa.resize(B * rope_swa_.n_rot);
    if (flags_.n_expert > 0) {
      const size_t ne = size_t(flags_.n_expert), k = size_t(flags_.n_expert_used);
      ctx->router_p.resize(B * ne);
      ctx->sel_w.resize(B * k);
      ctx->sel_id.resize(B * k);
      ctx->exp_count.resize(ne);
      ctx->exp_rows.resize(ne * B);
      ctx->exp_wt.resize(ne * B);
      ctx->moe_out.resize(B * c.n_embd);
      ctx->margin.resize(B);
      ctx->exp_out.resize(B * c.n_embd);
      if (flags_.moe_beside_dense) {
        ctx->x2.resize(B * c.n_embd);
        ctx->rin.resize(B * c.n_embd);
      }
    }
    size_t act = ops::activation_bytes(output_.type(), c.n_embd, int64_t(B));
    if (ple_model_proj_)
      act = std::max(act, ops::activation_bytes(ple_model_proj_->type(), c.n_embd, int64_t(B)));
    for (const auto& L : layers_) {
      std::vector<const ops::WeightMatrix*> ws;
      if (L.recurrent)
        ws = {&L.w_qkv, &L.w_z, &L.w_beta, &L.w_alpha, &L.w_ssm_out};
      else if (L.kv_src >= 0)
        ws = {&L.wq, &L.wo};
      else if (L.v_is_k)
        ws = {&L.wq, &L.wk, &L.wo};
      else
        ws = {&L.wq, &L.wk, &L.wv, &L.wo};
      if (L.ple_gate)
        for (const auto* W : {&*L.ple_gate, &*L.ple_proj}) ws.push_back(W);
      if (L.router && flags_.moe_beside_dense)
        for (const auto* W : {&L.w_gate, &L.w_up, &L.w_down}) ws.push_back(W);
      if (L.router) {
        ws.push_back(&*L.router);
        if (L.sh_gate)
          for (const auto* W : {&*L.sh_gate, &*L.sh_up, &*L.sh_down}) ws.push_back(W);
        for (size_t e = 0; e < L.exp_gate.size(); ++e)
          for (const auto* W : {&L.exp_gate[e], &L.exp_up[e], &L.exp_down[e]}) ws.push_back(W);
      } else {
        for (const auto* W : {&L.w_gate, &L.w_up, &L.w_down}) ws.push_back(W);
      }
      for (const auto* W : ws)
        act = std::max(act, ops::activation_bytes(W->type(), W->n_in(), int64_t(B)));
    }
    ctx->ms.reserve(act);
    ctx->as.reserve(pool.size(), p.n_ctx, int(max_hd), int(max_hd_v));
    return std::unique_ptr<Context>(std::move(ctx));
  }

  Status forward(Context& base_ctx, std::span<const BatchToken> batch,
                 float* logits) const override;

 private:
  // x += sum over each token's chosen experts of weight * expert(xn); inside pool.run, ends
  // with a barrier. Tokens are grouped by expert, so each expert's weights are read once per
  // batch and only experts some token chose are read at all.
  // The expert mixture (and shared expert) on xin, routed from rin (both T rows of n_embd);
  // the result is added to x, or left in ctx.moe_out when !add.
  void moe_ffn(const Layer& L, DecoderContext& ctx, int64_t T, int ith, int nth, int64_t tb,
               int64_t te, const float* xin, const float* rin, bool add) const;
  // Gemma 4 per-layer embeddings. per_layer_inputs fills ctx.ple[token][layer] once per batch
  // from the token's row of per_layer_token_embd (× sqrt(width)) and the RMS-normed projection
  // of its embedding (× 1/sqrt(n_embd)), summed and × 1/sqrt(2); per_layer_embedding adds
  // post_norm(proj(gelu(inp_gate · x) ⊙ ple[token][layer])) to x, then applies the layer's
  // output scale. Both inside pool.run; both end with a barrier.
  void per_layer_inputs(DecoderContext& ctx, std::span<const BatchToken> batch, int ith, int nth,
                        int64_t tb, int64_t te) const;
  void per_layer_embedding(const Layer& L, DecoderContext& ctx, size_t il, int64_t T, int ith,
                           int nth, int64_t tb, int64_t te) const;
  // The Gated DeltaNet mixer of a recurrent layer: from the normed input in ctx.xn to the
  // layer's output projection, written back to ctx.xn. Inside pool.run; ends with a barrier.
  void delta_net(const Layer& L, DecoderContext& ctx, std::span<const BatchToken> batch, size_t il,
                 int ith, int nth, int64_t tb, int64_t te) const;
  DecoderFlags flags_;
  ops::RopeParams rope_swa_;  // sliding layers: own base, no scaling
  const gguf::TensorInfo* tok_embd_ = nullptr;

  // One embedding row; from the output head's resident copy when the two are tied, so the
  // mapped table (released after the copy) is not faulted back in.
  void embed_row(int32_t token, float* out) const {
    if (tied_ && output_.resident())
      type_traits(output_.type()).dequantize_row(output_.row(token), out, config_.n_embd);
    else
      dequantize_row_of(*tok_embd_, token, out);
  }
  bool tied_ = false;
  // Gemma 4 per-layer embeddings: the table (read row by row), the projection of the token
  // embeddings into every layer's input, its norm.
  const gguf::TensorInfo* ple_tok_ = nullptr;
  std::optional<ops::WeightMatrix> ple_model_proj_;
  Vec ple_proj_norm_;
  Vec output_norm_;
  ops::WeightMatrix output_;
  OptVec rope_freqs_;
  std::vector<Layer> layers_;
};

// End of the run of consecutive positions of one sequence that starts at s.
int64_t run_end(std::span<const BatchToken> batch, int64_t s) {
  int64_t e = s + 1;
  while (e < int64_t(batch.size()) && batch[e].seq == batch[s].seq &&
         batch[e].pos == batch[e - 1].pos + 1)
    ++e;
  return e;
}

void DenseDecoder::delta_net(const Layer& L, DecoderContext& ctx, std::span<const BatchToken> batch,
                             size_t il, int ith, int nth, int64_t tb, int64_t te) const {
  ThreadPool& pool = ctx.pool();
  const int64_t T = int64_t(batch.size()), E = config_.n_embd;
  const int d = flags_.ssm_head_dim, nkh = flags_.ssm_k_heads, nvh = flags_.ssm_v_heads;
  const int K = flags_.ssm_conv;
  const int64_t C = conv_dim(), nvd = int64_t(nvh) * d;
  const size_t n_seq = size_t(ctx.params().n_seq);
  const float eps = config_.norm_eps;
  {
    const ops::WeightMatrix* Ws[4] = {&L.w_qkv, &L.w_z, &L.w_beta, &L.w_alpha};
    float* Ys[4] = {ctx.qkv.data(), ctx.zg.data(), ctx.beta.data(), ctx.alpha.data()};
    ops::matmul_multi_in_run(pool, ith, nth, Ws, Ys, 4, ctx.xn.data(), T, ctx.ms);
  }
  // β = sigmoid(·); the log decay g = softplus(α + dt_bias) · A (A < 0), kept in ctx.alpha.
  for (int64_t t = tb; t < te; ++t)
    for (int h = 0; h < nvh; ++h) {
      float& b = ctx.beta[size_t(t * nvh + h)];
      b = ops::sigmoid(b);
      float& a = ctx.alpha[size_t(t * nvh + h)];
      const float x = a + L.dt_bias[size_t(h)];
      a = (x > 20.0f ? x : std::log1p(std::exp(x))) * L.ssm_a[size_t(h)];
    }
  // The causal conv, channels split across threads; a run starting at position 0 starts from
  // an empty history.
  int64_t c0, c1;
  ThreadPool::split(C, ith, nth, c0, c1);
  for (int64_t s = 0; s < T;) {
    const int64_t e = run_end(batch, s);
    float* st = ctx.conv_state[il * n_seq + size_t(batch[s].seq)].data();
    if (batch[s].pos == 0)
      for (int i = 0; i < K - 1; ++i) std::fill(st + i * C + c0, st + i * C + c1, 0.0f);
    ops::causal_conv1d_silu(L.conv_w.data(), K, st, ctx.qkv.data() + s * C, size_t(C),
                            ctx.conv_out.data() + s * C, size_t(C), e - s, C, c0, c1);
    s = e;
  }
  pool.barrier();
  // q and k heads L2-normalised (x / max(|x|, eps)); q also scaled by 1/sqrt(d).
  for (int64_t t = tb; t < te; ++t)
    for (int h = 0; h < 2 * nkh; ++h) {
      float* r = ctx.conv_out.data() + t * C + int64_t(h) * d;
      double ss = 0;
      for (int i = 0; i < d; ++i) ss += double(r[i]) * r[i];
      float sc = 1.0f / std::max(float(std::sqrt(ss)), eps);
      if (h < nkh) sc *= 1.0f / std::sqrt(float(d));
      ops::scale(r, sc, d);
    }
  pool.barrier();
  // The delta rule, one (run, value head) unit per thread in turn: the chunked form for a
  // prompt, the recurrent one for a single token. Value head h reads key head h mod n_k_heads
  // (llama.cpp tiles the key heads).
  int64_t u = 0;
  for (int64_t s = 0; s < T;) {
    const int64_t e = run_end(batch, s);
    for (int h = 0; h < nvh; ++h, ++u) {
      if (u % nth != ith) continue;
      const int kh = h % nkh;
      float* S = ctx.ssm_state[il * n_seq + size_t(batch[s].seq)].data() + size_t(h) * d * d;
      if (batch[s].pos == 0) std::fill(S, S + size_t(d) * d, 0.0f);
      const float* base = ctx.conv_out.data() + s * C;
      const ops::DeltaRows r{base + int64_t(kh) * d,
                             base + int64_t(nkh + kh) * d,
                             base + int64_t(2 * nkh + h) * d,
                             ctx.alpha.data() + s * nvh + h,
                             ctx.beta.data() + s * nvh + h,
                             size_t(C),
                             size_t(C),
                             size_t(nvh),
                             ctx.dn_out.data() + s * nvd + int64_t(h) * d,
                             size_t(nvd)};
      if (e - s == 1)
        ops::gated_delta_recurrent(S, d, d, r, 1);
      else
        ops::gated_delta_chunked(S, d, d, r, e - s, ctx.dsc[size_t(ith)]);
    }
    s = e;
  }
  pool.barrier();
  // Per head: RMSNorm(o) · w ⊙ silu(z).
  for (int64_t t = tb; t < te; ++t)
    for (int h = 0; h < nvh; ++h) {
      float* o = ctx.dn_out.data() + t * nvd + int64_t(h) * d;
      const float* z = ctx.zg.data() + t * nvd + int64_t(h) * d;
      ops::rms_norm(o, L.ssm_norm.data(), o, d, eps);
      for (int i = 0; i < d; ++i) o[i] *= ops::silu(z[i]);
    }
  pool.barrier();
  ops::matmul_in_run(pool, ith, nth, L.w_ssm_out, ctx.dn_out.data(), T, ctx.xn.data(), size_t(E),
                     ctx.ms);
}

void DenseDecoder::per_layer_inputs(DecoderContext& ctx, std::span<const BatchToken> batch, int ith,
                                    int nth, int64_t tb, int64_t te) const {
  ThreadPool& pool = ctx.pool();
  const int64_t T = int64_t(batch.size()), E = config_.n_embd, P = flags_.n_embd_per_layer;
  const int64_t LP = config_.n_layer * P;
  ops::matmul_in_run(pool, ith, nth, *ple_model_proj_, ctx.x.data(), T, ctx.ple_tmp.data(),
                     size_t(LP), ctx.ms);
  const float proj_scale = 1.0f / std::sqrt(float(E)), tok_scale = std::sqrt(float(P));
  const float in_scale = 1.0f / std::sqrt(2.0f);
  for (int64_t t = tb; t < te; ++t) {
    float* dst = ctx.ple.data() + t * LP;
    dequantize_row_of(*ple_tok_, batch[t].token, dst);
    for (int64_t l = 0; l < config_.n_layer; ++l) {
      float* pr = ctx.ple_tmp.data() + t * LP + l * P;
      ops::scale(pr, proj_scale, P);
      ops::rms_norm(pr, ple_proj_norm_.data(), pr, P, config_.norm_eps);
      float* d = dst + l * P;
      for (int64_t i = 0; i < P; ++i) d[i] = (pr[i] + d[i] * tok_scale) * in_scale;
    }
  }
  pool.barrier();
}

void DenseDecoder::per_layer_embedding(const Layer& L, DecoderContext& ctx, size_t il, int64_t T,
                                       int ith, int nth, int64_t tb, int64_t te) const {
  ThreadPool& pool = ctx.pool();
  const int64_t E = config_.n_embd, P = flags_.n_embd_per_layer, LP = config_.n_layer * P;
  ops::matmul_in_run(pool, ith, nth, *L.ple_gate, ctx.x.data(), T, ctx.ple_g.data(), size_t(P),
                     ctx.ms);
  for (int64_t t = tb; t < te; ++t) {
    float* g = ctx.ple_g.data() + t * P;
    const float* in = ctx.ple.data() + t * LP + int64_t(il) * P;
    for (int64_t i = 0; i < P; ++i) g[i] = ops::gelu(g[i]) * in[i];
  }
  pool.barrier();
  ops::matmul_in_run(pool, ith, nth, *L.ple_proj, ctx.ple_g.data(), T, ctx.xn.data(), size_t(E),
                     ctx.ms);
  for (int64_t t = tb; t < te; ++t) {
    float* o = ctx.xn.data() + t * E;
    float* x = ctx.x.data() + t * E;
    ops::rms_norm(o, L.ple_post_norm->data(), o, E, config_.norm_eps);
    ops::add(x, o, x, E);
    if (L.out_scale) ops::scale(x, *L.out_scale, E);
  }
  pool.barrier();
}

void DenseDecoder::moe_ffn(const Layer& L, DecoderContext& ctx, int64_t T, int ith, int nth,
                           int64_t tb, int64_t te, const float* xin, const float* rin,
                           bool add) const {
  ThreadPool& pool = ctx.pool();
  const int64_t E = config_.n_embd, NF = flags_.n_ff_exp;
  const int ne = flags_.n_expert, k = flags_.n_expert_used;
  // Router logits, each token's top k, and their weights: softmax probabilities (renormalised
  // over the chosen ones when norm_topk) or, for a sigmoid router, sigmoid of the logit.
  ops::matmul_in_run(pool, ith, nth, *L.router, rin, T, ctx.router_p.data(), size_t(ne), ctx.ms);
  for (int64_t t = tb; t < te; ++t) {
    const float* l = ctx.router_p.data() + t * ne;
    int32_t* id = ctx.sel_id.data() + t * k;
    float* w = ctx.sel_w.data() + t * k;
    for (int j = 0; j < k; ++j) {  // k is small: repeated selection, lowest id on ties
      int best = -1;
      for (int e = 0; e < ne; ++e) {
        bool taken = false;
        for (int q = 0; q < j; ++q) taken |= id[q] == e;
        if (!taken && (best < 0 || l[e] > l[best])) best = e;
      }
      id[j] = best;
    }
    if (flags_.router_sigmoid) {
      for (int j = 0; j < k; ++j) w[j] = ops::sigmoid(l[id[j]]);
    } else {
      float mx = l[0];
      for (int e = 1; e < ne; ++e) mx = std::max(mx, l[e]);
      float sum = 0;
      for (int e = 0; e < ne; ++e) sum += std::exp(l[e] - mx);
      float wsum = 0;
      for (int j = 0; j < k; ++j) wsum += (w[j] = std::exp(l[id[j]] - mx) / sum);
      if (flags_.norm_topk)
        for (int j = 0; j < k; ++j) w[j] /= wsum;
    }
    float left = -std::numeric_limits<float>::infinity();  // best logit left out
    for (int e = 0; e < ne; ++e) {
      bool taken = false;
      for (int q = 0; q < k; ++q) taken |= id[q] == e;
      if (!taken) left = std::max(left, l[e]);
    }
    ctx.margin[size_t(t)] = std::min(ctx.margin[size_t(t)], l[id[k - 1]] - left);
    std::fill(ctx.moe_out.data() + t * E, ctx.moe_out.data() + (t + 1) * E, 0.0f);
  }
  pool.barrier();
  if (ith == 0) {  // group tokens by expert (small: T * k entries)
    std::fill(ctx.exp_count.begin(), ctx.exp_count.end(), 0);
    for (int64_t t = 0; t < T; ++t)
      for (int j = 0; j < k; ++j) {
        const int e = ctx.sel_id[size_t(t * k + j)];
        const int32_t n = ctx.exp_count[size_t(e)]++;
        ctx.exp_rows[size_t(e) * size_t(T) + size_t(n)] = int32_t(t);
        ctx.exp_wt[size_t(e) * size_t(T) + size_t(n)] = ctx.sel_w[size_t(t * k + j)];
      }
  }
  pool.barrier();
  for (int e = 0; e < ne; ++e) {
    const int64_t n = ctx.exp_count[size_t(e)];
    if (n == 0) continue;  // an expert no token chose is never read
    const int32_t* rows = ctx.exp_rows.data() + size_t(e) * size_t(T);
    const float* wts = ctx.exp_wt.data() + size_t(e) * size_t(T);
    int64_t b, en;
    ThreadPool::split(n, ith, nth, b, en);
    for (int64_t i = b; i < en; ++i) {
      std::copy_n(xin + int64_t(rows[i]) * E, E, ctx.xg.data() + i * E);
      if (flags_.weight_before_ffn) ops::scale(ctx.xg.data() + i * E, wts[i], E);
    }
    pool.barrier();
    {
      const ops::WeightMatrix* Ws[2] = {&L.exp_gate[size_t(e)], &L.exp_up[size_t(e)]};
      float* Ys[2] = {ctx.gate.data(), ctx.up.data()};
      ops::matmul_multi_in_run(pool, ith, nth, Ws, Ys, 2, ctx.xg.data(), n, ctx.ms);
    }
    for (int64_t i = b; i < en; ++i) {
      float* g = ctx.gate.data() + i * NF;
      if (flags_.gelu)
        ops::geglu(g, ctx.up.data() + i * NF, g, NF);
      else
        ops::swiglu(g, ctx.up.data() + i * NF, g, NF);
    }
    pool.barrier();
    ops::matmul_in_run(pool, ith, nth, L.exp_down[size_t(e)], ctx.gate.data(), n,
                       ctx.exp_out.data(), size_t(E), ctx.ms);
    for (int64_t i = b; i < en; ++i) {
      float* dst = ctx.moe_out.data() + int64_t(rows[i]) * E;
      const float* src = ctx.exp_out.data() + i * E;
      const float wt = flags_.weight_before_ffn ? 1.0f : wts[i];
      for (int64_t d = 0; d < E; ++d) dst[d] += wt * src[d];
    }
    pool.barrier();
  }
  if (L.sh_gate) {  // the shared expert sees every token
    const int64_t NS = flags_.n_ff_shexp > 0 ? flags_.n_ff_shexp : flags_.n_ff_exp;
    {
      const ops::WeightMatrix* Ws[2] = {&*L.sh_gate, &*L.sh_up};
      float* Ys[2] = {ctx.gate.data(), ctx.up.data()};
      ops::matmul_multi_in_run(pool, ith, nth, Ws, Ys, 2, xin, T, ctx.ms);
    }
    for (int64_t t = tb; t < te; ++t)
      ops::swiglu(ctx.gate.data() + t * NS, ctx.up.data() + t * NS, ctx.gate.data() + t * NS, NS);
    pool.barrier();
    ops::matmul_in_run(pool, ith, nth, *L.sh_down, ctx.gate.data(), T, ctx.exp_out.data(),
                       size_t(E), ctx.ms);
    for (int64_t t = tb; t < te; ++t) {
      float* sh = ctx.exp_out.data() + t * E;
      if (L.shexp_gate) {
        const float* xt = xin + t * E;
        float z = 0;
        for (int64_t d = 0; d < E; ++d) z += xt[d] * (*L.shexp_gate)[size_t(d)];
        ops::scale(sh, ops::sigmoid(z), E);
      }
      ops::add(ctx.moe_out.data() + t * E, sh, ctx.moe_out.data() + t * E, E);
    }
  }
  if (add)
    for (int64_t t = tb; t < te; ++t)
      ops::add(ctx.x.data() + t * E, ctx.moe_out.data() + t * E, ctx.x.data() + t * E, E);
  pool.barrier();
}

Status DenseDecoder::forward(Context& base_ctx, std::span<const BatchToken> batch,
                             float* logits) const {
  auto& ctx = static_cast<DecoderContext&>(base_ctx);
  const auto& c = config_;
  const auto& P = ctx.params();
  const int64_t T = int64_t(batch.size());
  if (T == 0) return Status::ok();
  if (T > P.n_batch)
    return invalid_argument("[model] batch of " + std::to_string(T) + " tokens exceeds n_batch " +
                            std::to_string(P.n_batch));
  std::vector<int64_t> out_rows;  // small; one entry per requested logits row
  for (int64_t t = 0; t < T; ++t) {
    const auto& b = batch[t];
    if (b.token < 0 || b.token >= c.n_vocab)
      return invalid_argument("[model] token id " + std::to_string(b.token) +
                              " is out of range [0, " + std::to_string(c.n_vocab) + ")");
    if (b.seq < 0 || b.seq >= P.n_seq)
      return invalid_argument("[model] sequence " + std::to_string(b.seq) + " out of range");
    if (b.pos < 0 || b.pos >= ctx.cap[size_t(b.seq)])
      return invalid_argument("[model] position " + std::to_string(b.pos) +
                              " exceeds the context size " +
                              std::to_string(ctx.cap[size_t(b.seq)]));
    if (b.logits) out_rows.push_back(t);
  }

  if (ctx.has_recurrent) {
    // A recurrent state continues only where it stopped (or restarts at position 0).
    for (int64_t s = 0; s < T;) {
      const int64_t e = run_end(batch, s);
      int64_t expect = ctx.rec_next[size_t(batch[s].seq)];
      for (int64_t p = 0; p < s; p = run_end(batch, p))  // an earlier run of this sequence
        if (batch[p].seq == batch[s].seq) expect = batch[run_end(batch, p) - 1].pos + 1;
      if (batch[s].pos != 0 && batch[s].pos != expect)
        return invalid_argument("[model] sequence " + std::to_string(batch[s].seq) +
                                ": the recurrent state holds " + std::to_string(expect) +
                                " positions and cannot continue at " +
                                std::to_string(batch[s].pos));
      s = e;
    }
    for (int64_t s = 0; s < T; s = run_end(batch, s))
      ctx.rec_next[size_t(batch[s].seq)] = batch[run_end(batch, s) - 1].pos + 1;
  }

  const int64_t E = c.n_embd;
  const int n_rot = c.rope.n_rot, n_rot_swa = rope_swa_.n_rot;
  ThreadPool& pool = ctx.pool();

  if (flags_.n_expert > 0) {
    std::fill(ctx.margin.begin(), ctx.margin.begin() + T, std::numeric_limits<float>::infinity());
    ctx.n_margin = T;
  }
  pool.run([&](int ith, int nth) {
    int64_t tb, te;
    ThreadPool::split(T, ith, nth, tb, te);
    for (int64_t t = tb; t < te; ++t) {
      embed_row(batch[t].token, ctx.x.data() + t * E);
      if (flags_.scale_embeddings) ops::scale(ctx.x.data() + t * E, std::sqrt(float(E)), E);
      ops::rope_cos_sin(c.rope, batch[t].pos, ctx.rope_cs.data() + t * n_rot);
      if (!ctx.rope_cs_swa.empty())
        ops::rope_cos_sin(rope_swa_, batch[t].pos, ctx.rope_cs_swa.data() + t * n_rot_swa);
    }
    pool.barrier();
    if (ple_tok_) per_layer_inputs(ctx, batch, ith, nth, tb, te);

    for (const Layer& L : layers_) {
      const size_t il = size_t(&L - layers_.data());
      const int64_t HD = L.hd, HDV = L.hd_v;
      const int64_t nq = c.n_head * HD, nk = c.n_head_kv * HD, nv = c.n_head_kv * HDV;
      const size_t k_row = ctx.k_rows[il], v_row = ctx.v_rows[il];
      ops::AttnParams ap;
      ap.n_head = int(c.n_head);
      ap.n_head_kv = int(c.n_head_kv);
      ap.head_dim_k = int(HD);
      ap.head_dim_v = int(HDV);
      ap.scale = flags_.attn_scale > 0 ? flags_.attn_scale : 1.0f / std::sqrt(float(HD));
      ap.kv_type = P.kv_type;
      for (int64_t t = tb; t < te; ++t)
        ops::rms_norm(ctx.x.data() + t * E, L.attn_norm.data(), ctx.xn.data() + t * E, E,
                      c.norm_eps);
      pool.barrier();
      if (L.recurrent) {
        delta_net(L, ctx, batch, il, ith, nth, tb, te);
      } else {
        const bool gated = flags_.attn_output_gate;
        const bool own_kv = L.kv_src < 0;
        {
          const ops::WeightMatrix* Ws[3] = {&L.wq, &L.wk, &L.wv};
          float* Ys[3] = {gated ? ctx.qg.data() : ctx.q.data(), ctx.kc.data(), ctx.vc.data()};
          const int n = !own_kv ? 1 : L.v_is_k ? 2 : 3;
          ops::matmul_multi_in_run(pool, ith, nth, Ws, Ys, n, ctx.xn.data(), T, ctx.ms);
        }
        for (int64_t t = tb; t < te; ++t) {
          float* q = ctx.q.data() + t * nq;
          if (gated)  // Wq's rows are [query | gate] per head
            for (int64_t h = 0; h < c.n_head; ++h) {
              const float* src = ctx.qg.data() + t * 2 * nq + h * 2 * HD;
              std::copy_n(src, HD, q + h * HD);
              std::copy_n(src + HD, HD, ctx.attn_gate.data() + t * nq + h * HD);
            }
          float* k = ctx.kc.data() + t * nk;
          float* v = ctx.vc.data() + t * nv;
          if (L.v_is_k) std::copy_n(k, nk, v);  // before K's norm and RoPE
          if (L.bq) ops::add(q, L.bq->data(), q, nq);
          if (L.bk) ops::add(k, L.bk->data(), k, nk);
          if (L.bv) ops::add(v, L.bv->data(), v, nv);
          if (L.q_norm)
            for (int64_t h = 0; h < c.n_head; ++h)
              ops::rms_norm(q + h * HD, L.q_norm->data(), q + h * HD, HD, c.norm_eps);
          if (L.k_norm && own_kv)
            for (int64_t h = 0; h < c.n_head_kv; ++h)
              ops::rms_norm(k + h * HD, L.k_norm->data(), k + h * HD, HD, c.norm_eps);
          if (!L.nope) {
            const ops::RopeParams& rp = L.swa ? rope_swa_ : c.rope;
            const float* cs =
                L.swa ? ctx.rope_cs_swa.data() + t * n_rot_swa : ctx.rope_cs.data() + t * n_rot;
            ops::rope_apply(rp, cs, q, int(c.n_head), int(HD));
            if (own_kv) ops::rope_apply(rp, cs, k, int(c.n_head_kv), int(HD));
            if (flags_.qk_rms_after_rope) {
              for (int64_t h = 0; h < c.n_head; ++h)
                ops::rms_norm(q + h * HD, nullptr, q + h * HD, HD, c.norm_eps);
              for (int64_t h = 0; h < c.n_head_kv; ++h)
                ops::rms_norm(k + h * HD, nullptr, k + h * HD, HD, c.norm_eps);
            }
          } else if (flags_.attn_temp_scale > 0) {
            const float f =
                std::log(std::floor(float(batch[t].pos + 1) / flags_.attn_temp_floor) + 1.0f) *
                    flags_.attn_temp_scale +
                1.0f;
            ops::scale(q, f, nq);
          }
          if (!own_kv) continue;
          const size_t buf = il * size_t(P.n_seq) + size_t(batch[t].seq);
          const int64_t R = L.swa ? ctx.ring[size_t(batch[t].seq)] : 0;
          const size_t cell = R > 0 ? size_t(batch[t].pos % R) : size_t(batch[t].pos);
          if (flags_.v_norm)
            for (int64_t h = 0; h < c.n_head_kv; ++h)
              ops::rms_norm(v + h * HDV, nullptr, v + h * HDV, HDV, c.norm_eps);
          ops::kv_store(P.kv_type, k, ctx.k[buf].data() + cell * k_row, nk);
          ops::kv_store(P.kv_type, v, ctx.v[buf].data() + cell * v_row, nv);
          if (R > 0) {  // the mirror row keeps every window contiguous
            ops::kv_store(P.kv_type, k, ctx.k[buf].data() + (cell + size_t(R)) * k_row, nk);
            ops::kv_store(P.kv_type, v, ctx.v[buf].data() + (cell + size_t(R)) * v_row, nv);
          }
        }
        pool.barrier();
        // Attention per run of consecutive positions of one sequence.
        ap.window = L.swa ? flags_.sliding_window : 0;
        ap.chunk = L.nope ? 0 : flags_.attn_chunk;
        for (int64_t s = 0; s < T;) {
          const int64_t e = run_end(batch, s);
          const size_t kv_layer = own_kv ? il : size_t(L.kv_src);
          const size_t buf = kv_layer * size_t(P.n_seq) + size_t(batch[s].seq);
          ops::AttnParams aps = ap;
          aps.ring = L.swa ? ctx.ring[size_t(batch[s].seq)] : 0;
          ops::attention_in_run(ith, nth, aps, ctx.q.data() + s * nq, nq, e - s, batch[s].pos,
                                ctx.k[buf].data(), ctx.v[buf].data(),
                                ctx.attn.data() + s * c.n_head * HDV, c.n_head * HDV, ctx.as);
          s = e;
        }
        pool.barrier();
        if (gated) {
          for (int64_t t = tb; t < te; ++t) {
            float* a = ctx.attn.data() + t * c.n_head * HDV;
            const float* g = ctx.attn_gate.data() + t * nq;
            for (int64_t i = 0; i < c.n_head * HDV; ++i) a[i] *= ops::sigmoid(g[i]);
          }
          pool.barrier();
        }
        ops::matmul_in_run(pool, ith, nth, L.wo, ctx.attn.data(), T, ctx.xn.data(), size_t(E),
                           ctx.ms);
      }
      for (int64_t t = tb; t < te; ++t) {
        float* x = ctx.x.data() + t * E;
        float* o = ctx.xn.data() + t * E;
        if (L.bo) ops::add(o, L.bo->data(), o, E);
        if (L.post_attn_norm) ops::rms_norm(o, L.post_attn_norm->data(), o, E, c.norm_eps);
        ops::add(x, o, x, E);
        ops::rms_norm(x, L.ffn_norm.data(), o, E, c.norm_eps);
      }
      pool.barrier();
      if (L.router && !flags_.moe_beside_dense) {
        moe_ffn(L, ctx, T, ith, nth, tb, te, ctx.xn.data(), ctx.xn.data(), true);
        continue;
      }
      if (L.router) {  // Gemma 4: the experts' input and the router's, then the mixture
        const float rs = 1.0f / std::sqrt(float(E));
        for (int64_t t = tb; t < te; ++t) {
          const float* x = ctx.x.data() + t * E;
          ops::rms_norm(x, L.pre_ffn_norm2->data(), ctx.x2.data() + t * E, E, c.norm_eps);
          float* r = ctx.rin.data() + t * E;
          ops::rms_norm(x, nullptr, r, E, c.norm_eps);
          for (int64_t d = 0; d < E; ++d) r[d] *= rs * (*L.router_scale)[size_t(d)];
        }
        pool.barrier();
        moe_ffn(L, ctx, T, ith, nth, tb, te, ctx.x2.data(), ctx.rin.data(), false);
      }
      {
        const ops::WeightMatrix* Ws[2] = {&L.w_gate, &L.w_up};
        float* Ys[2] = {ctx.gate.data(), ctx.up.data()};
        ops::matmul_multi_in_run(pool, ith, nth, Ws, Ys, 2, ctx.xn.data(), T, ctx.ms);
      }
      for (int64_t t = tb; t < te; ++t) {
        float* g = ctx.gate.data() + t * L.n_ff;
        if (flags_.gelu)
          ops::geglu(g, ctx.up.data() + t * L.n_ff, g, L.n_ff);
        else
          ops::swiglu(g, ctx.up.data() + t * L.n_ff, g, L.n_ff);
      }
      pool.barrier();
      ops::matmul_in_run(pool, ith, nth, L.w_down, ctx.gate.data(), T, ctx.xn.data(), size_t(E),
                         ctx.ms);
      for (int64_t t = tb; t < te; ++t) {
        float* o = ctx.xn.data() + t * E;
        if (L.router) {  // Gemma 4: dense and expert branches, each normed, summed
          float* m = ctx.moe_out.data() + t * E;
          ops::rms_norm(o, L.post_ffn_norm1->data(), o, E, c.norm_eps);
          ops::rms_norm(m, L.post_ffn_norm2->data(), m, E, c.norm_eps);
          ops::add(o, m, o, E);
        }
        if (L.post_ffn_norm) ops::rms_norm(o, L.post_ffn_norm->data(), o, E, c.norm_eps);
        ops::add(ctx.x.data() + t * E, o, ctx.x.data() + t * E, E);
        if (L.out_scale && !L.ple_gate) ops::scale(ctx.x.data() + t * E, *L.out_scale, E);
      }
      pool.barrier();
      if (L.ple_gate) per_layer_embedding(L, ctx, il, T, ith, nth, tb, te);
    }

    const int64_t R = int64_t(out_rows.size());
    if (R == 0) return;
    int64_t rb, re;
    ThreadPool::split(R, ith, nth, rb, re);
    for (int64_t i = rb; i < re; ++i)
      ops::rms_norm(ctx.x.data() + out_rows[i] * E, output_norm_.data(), ctx.xg.data() + i * E, E,
                    c.norm_eps);
    pool.barrier();
    ops::matmul_in_run(pool, ith, nth, output_, ctx.xg.data(), R, logits, size_t(c.n_vocab),
                       ctx.ms);
    if (flags_.final_softcap > 0) {
      const float cap = flags_.final_softcap;
      for (int64_t i = rb; i < re; ++i)
        for (int64_t v = 0; v < c.n_vocab; ++v) {
          float& l = logits[i * c.n_vocab + v];
          l = cap * std::tanh(l / cap);
        }
    }
  });
  return Status::ok();
}

}  // namespace

size_t decoder_state_bytes(const ModelConfig& c, const DecoderFlags& f, const ContextParams& p) {
  const int64_t R = f.sliding_window > 0 ? int64_t(f.sliding_window) + p.n_batch : 0;
  const bool use_ring = R > 0 && int64_t(p.n_ctx) > 2 * R;
  size_t bytes = 0;
  for (int64_t il = 0; il < c.n_layer; ++il) {
    auto at = [&](const std::vector<bool>& v) { return size_t(il) < v.size() && v[size_t(il)]; };
    if (at(f.recurrent_layers)) {  // fixed-size state, whatever the context length
      bytes += (delta_conv_floats(f) + delta_ssm_floats(f)) * sizeof(float);
      continue;
    }
    if (f.n_kv_shared > 0 && il >= c.n_layer - f.n_kv_shared) continue;  // reads another's cache
    const bool swa = at(f.swa_layers);
    const int64_t hd = swa && f.head_dim_swa > 0 ? f.head_dim_swa : c.head_dim;
    const int64_t hd_v = swa && f.head_dim_swa > 0 ? f.head_dim_swa : c.head_dim_v;
    const size_t rows = use_ring && swa ? size_t(2 * R) : size_t(p.n_ctx);
    bytes +=
        rows * (row_bytes(p.kv_type, c.n_head_kv * hd) + row_bytes(p.kv_type, c.n_head_kv * hd_v));
  }
  return bytes;
}

Result<std::unique_ptr<Model>> load_dense_decoder(std::shared_ptr<gguf::GgufFile> file,
                                                  ThreadPool& pool, const LoadOptions& opt,
                                                  ModelConfig cfg, DecoderFlags flags) {
  auto m = std::make_unique<DenseDecoder>(std::move(file), std::move(cfg), flags);
  HEARTH_RETURN_IF_ERROR(m->load(pool, opt));
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace hearth::models
