#include "models/blocks/attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "ops/elementwise.h"

namespace hearth::models {

LayerCache Attention::cache_for(const AttentionShape& sh, const AttentionOptions& opt) {
  if (opt.kv_source >= 0) return LayerCache::shared(opt.kv_source);
  if (!opt.causal) return LayerCache::none();  // an encoder sees one batch at a time
  if (opt.window > 0) return LayerCache::ring(sh.n_head_kv, sh.head_k, sh.head_v, opt.window);
  return LayerCache::full(sh.n_head_kv, sh.head_k, sh.head_v);
}

Status Attention::load(WeightLoader& w, int il, const AttentionShape& sh,
                       const AttentionOptions& opt) {
  shape_ = sh;
  opt_ = opt;
  const std::string where = "[model] layer " + std::to_string(il) + ": ";
  if (sh.n_head <= 0 || sh.n_head_kv <= 0 || sh.n_head % sh.n_head_kv || sh.head_k <= 0 ||
      sh.head_v <= 0 || sh.head_k > 1024 || sh.head_v > 1024)
    return corrupt(where + "attention heads " + std::to_string(sh.n_head) + "/" +
                   std::to_string(sh.n_head_kv) + " of sizes " + std::to_string(sh.head_k) + "/" +
                   std::to_string(sh.head_v) + " do not fit together");
  // The gate multiplies the attention output (head_v per head) and comes from Wq's rows
  // (head_k per head): one size for both.
  if (opt.gated && sh.head_v != sh.head_k)
    return corrupt(where + "gated attention needs attention.value_length (" +
                   std::to_string(sh.head_v) + ") equal to attention.key_length (" +
                   std::to_string(sh.head_k) + ")");
  if (opt.rope && (opt.rope->n_rot <= 0 || opt.rope->n_rot > sh.head_k || opt.rope->n_rot % 2))
    return corrupt(where + "RoPE over " + std::to_string(opt.rope->n_rot) +
                   " dims does not fit heads of " + std::to_string(sh.head_k));
  if (!opt.causal && (opt.chunk > 0 || opt.kv_source >= 0))
    return unsupported(where + "bidirectional attention with chunks or shared KV");
  const int64_t nq = sh.n_head * sh.head_k, nk = sh.n_head_kv * sh.head_k;
  const int64_t nv = sh.n_head_kv * sh.head_v;
  HEARTH_ASSIGN_OR_RETURN(
      wo_, w.matrix(blk(il, "attn_output.weight"), sh.n_embd, sh.n_head * sh.head_v));
  HEARTH_ASSIGN_OR_RETURN(bo_, w.optional_vector(blk(il, "attn_output.bias"), sh.n_embd));
  if (opt.kv_source >= 0) {  // queries only: K and V come from another layer's cache
    HEARTH_ASSIGN_OR_RETURN(wq_,
                            w.matrix(blk(il, "attn_q.weight"), opt.gated ? 2 * nq : nq, sh.n_embd));
    if (opt.qk_norm) {
      HEARTH_ASSIGN_OR_RETURN(q_norm_, w.vector(blk(il, "attn_q_norm.weight"), sh.head_k));
    }
    return Status::ok();
  }
  if (!opt.gated && !w.has(blk(il, "attn_q.weight")) && w.has(blk(il, "attn_qkv.weight"))) {
    // One fused projection (some encoder converters): Q rows, then K, then V.
    HEARTH_ASSIGN_OR_RETURN(wqkv_, w.matrix(blk(il, "attn_qkv.weight"), nq + nk + nv, sh.n_embd));
    HEARTH_ASSIGN_OR_RETURN(bqkv_, w.optional_vector(blk(il, "attn_qkv.bias"), nq + nk + nv));
  } else {
    HEARTH_ASSIGN_OR_RETURN(wq_,
                            w.matrix(blk(il, "attn_q.weight"), opt.gated ? 2 * nq : nq, sh.n_embd));
  }
  if (opt.qk_norm) {
    HEARTH_ASSIGN_OR_RETURN(q_norm_, w.vector(blk(il, "attn_q_norm.weight"), sh.head_k));
    HEARTH_ASSIGN_OR_RETURN(k_norm_, w.vector(blk(il, "attn_k_norm.weight"), sh.head_k));
  }
  if (wqkv_) return Status::ok();
  HEARTH_ASSIGN_OR_RETURN(wk_, w.matrix(blk(il, "attn_k.weight"), nk, sh.n_embd));
  if (opt.v_from_k && !w.has(blk(il, "attn_v.weight")) && nk == nv) {
    v_is_k_ = true;
  } else {
    HEARTH_ASSIGN_OR_RETURN(wv_, w.matrix(blk(il, "attn_v.weight"), nv, sh.n_embd));
  }
  if (opt.biases_required) {
    HEARTH_ASSIGN_OR_RETURN(bq_, w.vector(blk(il, "attn_q.bias"), nq));
    HEARTH_ASSIGN_OR_RETURN(bk_, w.vector(blk(il, "attn_k.bias"), nk));
    HEARTH_ASSIGN_OR_RETURN(bv_, w.vector(blk(il, "attn_v.bias"), nv));
  } else {
    HEARTH_ASSIGN_OR_RETURN(bq_, w.optional_vector(blk(il, "attn_q.bias"), nq));
    HEARTH_ASSIGN_OR_RETURN(bk_, w.optional_vector(blk(il, "attn_k.bias"), nk));
    HEARTH_ASSIGN_OR_RETURN(bv_, w.optional_vector(blk(il, "attn_v.bias"), nv));
  }
  return Status::ok();
}

void Attention::reserve(AttentionScratch& s, int64_t B) const {
  const size_t b = size_t(B);
  const int64_t nq = shape_.n_head * shape_.head_k;
  s.q.need(b * size_t(nq));
  s.k.need(b * size_t(shape_.n_head_kv * shape_.head_k));
  s.v.need(b * size_t(shape_.n_head_kv * shape_.head_v));
  s.out.need(b * size_t(shape_.n_head * shape_.head_v));
  if (wqkv_) s.qkv.need(b * size_t(wqkv_->n_out()));
  if (opt_.gated) {
    s.qg.need(b * size_t(2 * nq));
    s.gate.need(b * size_t(nq));
  }
  if (!opt_.causal) {  // the batch's own K/V rows, in the largest cache type (F32)
    s.enc_k.need(b * row_bytes(DType::F32, shape_.n_head_kv * shape_.head_k));
    s.enc_v.need(b * row_bytes(DType::F32, shape_.n_head_kv * shape_.head_v));
  }
  s.max_head_k = std::max(s.max_head_k, shape_.head_k);
  s.max_head_v = std::max(s.max_head_v, shape_.head_v);
}

void Attention::weights(std::vector<const ops::WeightMatrix*>& out) const {
  out.push_back(&wo_);
  if (wqkv_) {
    out.push_back(&*wqkv_);
    return;
  }
  out.push_back(&wq_);
  if (opt_.kv_source >= 0) return;
  out.push_back(&wk_);
  if (!v_is_k_) out.push_back(&wv_);
}

void Attention::forward(const Step& s, int il, CacheStore& cache, DType kv_type, const float* cs,
                        float* xn, AttentionScratch& sc, ops::MatmulScratch& ms) const {
  const auto& sh = shape_;
  const int64_t T = s.T, E = sh.n_embd, HD = sh.head_k, HDV = sh.head_v;
  const int64_t NH = sh.n_head, NKV = sh.n_head_kv;
  const int64_t nq = NH * HD, nk = NKV * HD, nv = NKV * HDV;
  const bool own_kv = opt_.kv_source < 0;
  const bool keep = own_kv && opt_.causal;  // K/V rows go to this layer's cache
  const int n_rot = opt_.rope ? opt_.rope->n_rot : 0;
  float* Q = sc.q.at(size_t(T * nq));
  float* K = sc.k.at(size_t(T * nk));
  float* V = sc.v.at(size_t(T * nv));
  float* A = sc.out.at(size_t(T * NH * HDV));
  float* QG = opt_.gated ? sc.qg.at(size_t(T * 2 * nq)) : nullptr;
  float* G = opt_.gated ? sc.gate.at(size_t(T * nq)) : nullptr;
  const int64_t nqkv = nq + nk + nv;
  float* QKV = wqkv_ ? sc.qkv.at(size_t(T * nqkv)) : nullptr;
  if (wqkv_) {
    ops::matmul_in_run(s.pool, s.ith, s.nth, *wqkv_, xn, T, QKV, size_t(nqkv), ms);
  } else {
    const ops::WeightMatrix* Ws[3] = {&wq_, &wk_, &wv_};
    float* Ys[3] = {opt_.gated ? QG : Q, K, V};
    const int n = !own_kv ? 1 : v_is_k_ ? 2 : 3;
    ops::matmul_multi_in_run(s.pool, s.ith, s.nth, Ws, Ys, n, xn, T, ms);
  }
  // An encoder's K/V rows (EK, EV) live for this call only, in the cache type too (F16 by
  // default: llama.cpp's flash-attention path, its CPU default, casts them to F16 as well).
  const size_t k_row = row_bytes(kv_type, nk), v_row = row_bytes(kv_type, nv);
  uint8_t* EK = !keep && own_kv ? sc.enc_k.at(size_t(T) * k_row) : nullptr;
  uint8_t* EV = !keep && own_kv ? sc.enc_v.at(size_t(T) * v_row) : nullptr;
  for (int64_t t = s.tb; t < s.te; ++t) {
    const BatchToken& bt = s.batch[size_t(t)];
    float* q = Q + t * nq;
    if (opt_.gated)  // Wq's rows are [query | gate] per head
      for (int64_t h = 0; h < NH; ++h) {
        const float* src = QG + t * 2 * nq + h * 2 * HD;
        std::copy_n(src, HD, q + h * HD);
        std::copy_n(src + HD, HD, G + t * nq + h * HD);
      }
    float* k = K + t * nk;
    float* v = V + t * nv;
    if (QKV) {  // split the fused rows
      float* r = QKV + t * nqkv;
      if (bqkv_) ops::add(r, bqkv_->data(), r, nqkv);
      std::copy_n(r, nq, q);
      std::copy_n(r + nq, nk, k);
      std::copy_n(r + nq + nk, nv, v);
    }
    if (v_is_k_) std::copy_n(k, nk, v);  // before K's norm and RoPE
    if (bq_) ops::add(q, bq_->data(), q, nq);
    if (own_kv) {
      if (bk_) ops::add(k, bk_->data(), k, nk);
      if (bv_) ops::add(v, bv_->data(), v, nv);
    }
    if (q_norm_)
      for (int64_t h = 0; h < NH; ++h)
        ops::rms_norm(q + h * HD, q_norm_->data(), q + h * HD, HD, sh.norm_eps);
    if (k_norm_ && own_kv)
      for (int64_t h = 0; h < NKV; ++h)
        ops::rms_norm(k + h * HD, k_norm_->data(), k + h * HD, HD, sh.norm_eps);
    if (opt_.rope) {
      const float* c = cs + t * n_rot;
      ops::rope_apply(*opt_.rope, c, q, int(NH), int(HD));
      if (own_kv) ops::rope_apply(*opt_.rope, c, k, int(NKV), int(HD));
      if (opt_.qk_rms_after_rope) {
        for (int64_t h = 0; h < NH; ++h)
          ops::rms_norm(q + h * HD, nullptr, q + h * HD, HD, sh.norm_eps);
        if (own_kv)
          for (int64_t h = 0; h < NKV; ++h)
            ops::rms_norm(k + h * HD, nullptr, k + h * HD, HD, sh.norm_eps);
      }
    } else if (opt_.temp_scale > 0) {
      const float f =
          std::log(std::floor(float(bt.pos + 1) / opt_.temp_floor) + 1.0f) * opt_.temp_scale + 1.0f;
      ops::scale(q, f, nq);
    }
    if (!own_kv) continue;
    if (opt_.v_norm)
      for (int64_t h = 0; h < NKV; ++h)
        ops::rms_norm(v + h * HDV, nullptr, v + h * HDV, HDV, sh.norm_eps);
    const int64_t R = keep ? cache.ring(il, bt.seq) : 0;
    // Encoders keep the batch's own rows, indexed by batch position, for this call only.
    const size_t cell = !keep ? size_t(t) : R > 0 ? size_t(bt.pos % R) : size_t(bt.pos);
    uint8_t* kb = keep ? cache.k(il, bt.seq) : EK;
    uint8_t* vb = keep ? cache.v(il, bt.seq) : EV;
    ops::kv_store(kv_type, k, kb + cell * k_row, nk);
    ops::kv_store(kv_type, v, vb + cell * v_row, nv);
    if (R > 0) {  // the mirror row keeps every window contiguous
      ops::kv_store(kv_type, k, kb + (cell + size_t(R)) * k_row, nk);
      ops::kv_store(kv_type, v, vb + (cell + size_t(R)) * v_row, nv);
    }
  }
  s.barrier();
  ops::AttnParams ap;
  ap.n_head = int(NH);
  ap.n_head_kv = int(NKV);
  ap.head_dim_k = int(HD);
  ap.head_dim_v = int(HDV);
  ap.scale = opt_.scale > 0 ? opt_.scale : 1.0f / std::sqrt(float(HD));
  ap.kv_type = kv_type;
  // HEARTH_ATTN=exact: llama.cpp's non-flash order for an F16 cache (bit-identical scores), to
  // separate attention's rounding from other differences when comparing with llama.cpp.
  static const bool exact = [] {
    const char* e = std::getenv("HEARTH_ATTN");
    return e && std::string(e) == "exact";
  }();
  ap.exact = exact;
  ap.pool = &s.pool;
  ap.window = opt_.window;
  ap.chunk = opt_.chunk;
  ap.causal = opt_.causal;
  // Attention per run of consecutive positions of one sequence.
  for (int64_t b = 0; b < T;) {
    const int64_t e = run_end(s.batch, b);
    const BatchToken& first = s.batch[size_t(b)];
    ops::AttnParams aps = ap;
    const uint8_t* kc = EK ? EK + size_t(b) * k_row : cache.k(il, first.seq);
    const uint8_t* vc = EV ? EV + size_t(b) * v_row : cache.v(il, first.seq);
    if (!EK) aps.ring = cache.ring(il, first.seq);
    // An encoder's rows start at the run's first token: position 0 of its buffer.
    ops::attention_in_run(s.ith, s.nth, aps, Q + b * nq, nq, e - b, EK ? 0 : first.pos, kc, vc,
                          A + b * NH * HDV, NH * HDV, sc.ops);
    b = e;
  }
  s.barrier();
  if (opt_.gated) {
    for (int64_t t = s.tb; t < s.te; ++t) {
      float* a = A + t * NH * HDV;
      const float* g = G + t * nq;
      for (int64_t i = 0; i < NH * HDV; ++i) a[i] *= ops::sigmoid(g[i]);
    }
    s.barrier();
  }
  ops::matmul_in_run(s.pool, s.ith, s.nth, wo_, A, T, xn, size_t(E), ms);
  if (bo_) {
    for (int64_t t = s.tb; t < s.te; ++t) ops::add(xn + t * E, bo_->data(), xn + t * E, E);
    s.barrier();
  }
}

}  // namespace hearth::models
