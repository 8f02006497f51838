#include "models/blocks/delta_net.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "ops/elementwise.h"

namespace hearth::models {

Status DeltaNet::check(const DeltaNetShape& sh) {
  if (sh.conv < 1 || sh.conv > 64 || sh.head_dim <= 0 || sh.head_dim > 1024 || sh.k_heads <= 0 ||
      sh.v_heads <= 0 || sh.v_heads > 4096 || sh.v_heads % sh.k_heads != 0)
    return corrupt("[model] implausible Gated DeltaNet shape: conv " + std::to_string(sh.conv) +
                   ", head size " + std::to_string(sh.head_dim) + ", key heads " +
                   std::to_string(sh.k_heads) + ", value heads " + std::to_string(sh.v_heads) +
                   " (value heads must be a multiple of key heads)");
  return Status::ok();
}

Status DeltaNet::load(WeightLoader& w, int il, const DeltaNetShape& sh) {
  HEARTH_RETURN_IF_ERROR(check(sh));
  sh_ = sh;
  const int64_t E = sh.n_embd, K = sh.conv, d = sh.head_dim, nvh = sh.v_heads;
  const int64_t C = sh.conv_dim();
  HEARTH_ASSIGN_OR_RETURN(qkv_, w.matrix(blk(il, "attn_qkv.weight"), C, E));
  HEARTH_ASSIGN_OR_RETURN(z_, w.matrix(blk(il, "attn_gate.weight"), nvh * d, E));
  HEARTH_ASSIGN_OR_RETURN(beta_, w.matrix(blk(il, "ssm_beta.weight"), nvh, E));
  HEARTH_ASSIGN_OR_RETURN(alpha_, w.matrix(blk(il, "ssm_alpha.weight"), nvh, E));
  HEARTH_ASSIGN_OR_RETURN(out_, w.matrix(blk(il, "ssm_out.weight"), E, nvh * d));
  HEARTH_ASSIGN_OR_RETURN(const gguf::TensorInfo* conv,
                          w.tensor(blk(il, "ssm_conv1d.weight"), {C, K}));
  conv_w_.resize(size_t(C * K));
  for (int64_t r = 0; r < C; ++r) dequantize_row_of(*conv, r, conv_w_.data() + r * K);
  HEARTH_ASSIGN_OR_RETURN(dt_bias_, w.vector(blk(il, "ssm_dt.bias"), nvh));
  HEARTH_ASSIGN_OR_RETURN(a_, w.vector(blk(il, "ssm_a"), nvh));
  HEARTH_ASSIGN_OR_RETURN(norm_, w.vector(blk(il, "ssm_norm.weight"), d));
  return Status::ok();
}

void DeltaNet::reserve(DeltaNetScratch& s, int64_t B, int n_threads) const {
  const size_t b = size_t(B), nvd = size_t(sh_.v_heads) * size_t(sh_.head_dim);
  s.qkv.need(b * size_t(sh_.conv_dim()));
  s.conv_out.need(b * size_t(sh_.conv_dim()));
  s.z.need(b * nvd);
  s.out.need(b * nvd);
  s.beta.need(b * size_t(sh_.v_heads));
  s.alpha.need(b * size_t(sh_.v_heads));
  if (s.chunk.size() < size_t(n_threads)) s.chunk.resize(size_t(n_threads));
  for (auto& c : s.chunk) c.reserve(ops::kDeltaChunk, sh_.head_dim, sh_.head_dim);
}

void DeltaNet::weights(std::vector<const ops::WeightMatrix*>& out) const {
  for (const auto* W : {&qkv_, &z_, &beta_, &alpha_, &out_}) out.push_back(W);
}

void DeltaNet::forward(const Step& s, int il, CacheStore& cache, float* xn, DeltaNetScratch& sc,
                       ops::MatmulScratch& ms) const {
  ThreadPool& pool = s.pool;
  const int ith = s.ith, nth = s.nth;
  const int64_t T = s.T, E = sh_.n_embd;
  const int d = sh_.head_dim, nkh = sh_.k_heads, nvh = sh_.v_heads, K = sh_.conv;
  const int64_t C = sh_.conv_dim(), nvd = int64_t(nvh) * d;
  const float eps = sh_.norm_eps;
  const size_t conv_floats = sh_.conv_floats();
  float* QKV = sc.qkv.at(size_t(T * C));
  float* CO = sc.conv_out.at(size_t(T * C));
  float* Z = sc.z.at(size_t(T * nvd));
  float* BETA = sc.beta.at(size_t(T * nvh));
  float* ALPHA = sc.alpha.at(size_t(T * nvh));
  float* O = sc.out.at(size_t(T * nvd));
  {
    const ops::WeightMatrix* Ws[4] = {&qkv_, &z_, &beta_, &alpha_};
    float* Ys[4] = {QKV, Z, BETA, ALPHA};
    ops::matmul_multi_in_run(pool, ith, nth, Ws, Ys, 4, xn, T, ms);
  }
  // β = sigmoid(·); the log decay g = softplus(α + dt_bias) · A (A < 0), kept in ALPHA.
  for (int64_t t = s.tb; t < s.te; ++t)
    for (int h = 0; h < nvh; ++h) {
      float& b = BETA[t * nvh + h];
      b = ops::sigmoid(b);
      float& a = ALPHA[t * nvh + h];
      const float x = a + dt_bias_[size_t(h)];
      a = (x > 20.0f ? x : std::log1p(std::exp(x))) * a_[size_t(h)];
    }
  // The causal conv, channels split across threads; a run starting at position 0 starts from
  // an empty history.
  int64_t c0, c1;
  ThreadPool::split(C, ith, nth, c0, c1);
  for (int64_t b = 0; b < T;) {
    const int64_t e = run_end(s.batch, b);
    float* st = cache.state(il, s.batch[size_t(b)].seq);  // conv history, then the d×d states
    if (s.batch[size_t(b)].pos == 0)
      for (int i = 0; i < K - 1; ++i) std::fill(st + i * C + c0, st + i * C + c1, 0.0f);
    ops::causal_conv1d_silu(conv_w_.data(), K, st, QKV + b * C, size_t(C), CO + b * C, size_t(C),
                            e - b, C, c0, c1);
    b = e;
  }
  pool.barrier();
  // q and k heads L2-normalised (x / max(|x|, eps)); q also scaled by 1/sqrt(d).
  for (int64_t t = s.tb; t < s.te; ++t)
    for (int h = 0; h < 2 * nkh; ++h) {
      float* r = CO + t * C + int64_t(h) * d;
      double ss = 0;
      for (int i = 0; i < d; ++i) ss += double(r[i]) * r[i];
      float sc2 = 1.0f / std::max(float(std::sqrt(ss)), eps);
      if (h < nkh) sc2 *= 1.0f / std::sqrt(float(d));
      ops::scale(r, sc2, d);
    }
  pool.barrier();
  // The delta rule, one (run, value head) unit per thread in turn: the chunked form for a
  // prompt, the recurrent one for a single token. Value head h reads key head h mod n_k_heads
  // (llama.cpp tiles the key heads).
  int64_t u = 0;
  for (int64_t b = 0; b < T;) {
    const int64_t e = run_end(s.batch, b);
    for (int h = 0; h < nvh; ++h, ++u) {
      if (u % nth != ith) continue;
      const int kh = h % nkh;
      float* S = cache.state(il, s.batch[size_t(b)].seq) + conv_floats + size_t(h) * d * d;
      if (s.batch[size_t(b)].pos == 0) std::fill(S, S + size_t(d) * d, 0.0f);
      const float* base = CO + b * C;
      const ops::DeltaRows r{base + int64_t(kh) * d,
                             base + int64_t(nkh + kh) * d,
                             base + int64_t(2 * nkh + h) * d,
                             ALPHA + b * nvh + h,
                             BETA + b * nvh + h,
                             size_t(C),
                             size_t(C),
                             size_t(nvh),
                             O + b * nvd + int64_t(h) * d,
                             size_t(nvd)};
      if (e - b == 1)
        ops::gated_delta_recurrent(S, d, d, r, 1);
      else
        ops::gated_delta_chunked(S, d, d, r, e - b, sc.chunk[size_t(ith)]);
    }
    b = e;
  }
  pool.barrier();
  // Per head: RMSNorm(o) · w ⊙ silu(z).
  for (int64_t t = s.tb; t < s.te; ++t)
    for (int h = 0; h < nvh; ++h) {
      float* o = O + t * nvd + int64_t(h) * d;
      const float* z = Z + t * nvd + int64_t(h) * d;
      ops::rms_norm(o, norm_.data(), o, d, eps);
      for (int i = 0; i < d; ++i) o[i] *= ops::silu(z[i]);
    }
  pool.barrier();
  ops::matmul_in_run(pool, ith, nth, out_, O, T, xn, size_t(E), ms);
}

}  // namespace hearth::models
