#include "ops/delta_net.h"

#include <algorithm>
#include <cmath>

#include "ops/elementwise.h"

namespace hearth::ops {
namespace {

inline float dot(const float* a, const float* b, int n) {
  float s = 0;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline void axpy(float* y, float a, const float* x, int n) {
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

void causal_conv1d_silu(const float* w, int K, float* state, const float* x, size_t ldx, float* out,
                        size_t ldo, int64_t T, int64_t C, int64_t c0, int64_t c1) {
  const int64_t H = K - 1;  // rows of history
  for (int64_t c = c0; c < c1; ++c) {
    const float* wc = w + c * K;
    for (int64_t t = 0; t < T; ++t) {
      float s = 0;
      for (int j = 0; j < K; ++j) {
        const int64_t r = t - H + j;  // input row; < 0 reads the carried state
        const float xv = r < 0 ? state[(r + H) * C + c] : x[size_t(r) * ldx + size_t(c)];
        s += wc[j] * xv;
      }
      out[size_t(t) * ldo + size_t(c)] = silu(s);
    }
    // The new state: the last H rows of [state; x].
    for (int64_t i = 0; i < H; ++i) {
      const int64_t r = T - H + i;
      state[i * C + c] = r < 0 ? state[(r + H) * C + c] : x[size_t(r) * ldx + size_t(c)];
    }
  }
}

void gated_delta_recurrent(float* S, int dk, int dv, const DeltaRows& r, int64_t T) {
  for (int64_t t = 0; t < T; ++t) {
    const float* q = r.q + t * r.ldqk;
    const float* k = r.k + t * r.ldqk;
    const float* v = r.v + t * r.ldv;
    const float eg = std::exp(r.g[t * r.ldgb]), b = r.beta[t * r.ldgb];
    float* o = r.o + t * r.ldo;
    // One pass per row of S: decay, read S k, write the rank-1 update, read S q.
    for (int i = 0; i < dv; ++i) {
      float* Si = S + size_t(i) * dk;
      float sk = 0;
      for (int j = 0; j < dk; ++j) {
        Si[j] *= eg;
        sk += Si[j] * k[j];
      }
      const float d = b * (v[i] - sk);
      float oq = 0;
      for (int j = 0; j < dk; ++j) {
        Si[j] += d * k[j];
        oq += Si[j] * q[j];
      }
      o[i] = oq;
    }
  }
}

void DeltaChunkScratch::reserve(int chunk, int dk, int dv) {
  a.resize(size_t(chunk) * chunk);
  w.resize(size_t(chunk) * dk);
  u.resize(size_t(chunk) * dv);
  gc.resize(size_t(chunk));
  sq.resize(size_t(chunk) * dv);
}

// Within a chunk of n tokens, with cumulative log-decays gc_i = Σ_{j≤i} g_j and
//   A_ij = β_i e^{gc_i − gc_j} k_i·k_j  (j < i),   T = (I + A)⁻¹,
// the recurrence unrolls to
//   U = T (β ⊙ V),  W = T (β e^{gc} ⊙ K),  V' = U − W Sᵀ          (the "new values")
//   o_i = e^{gc_i} S q_i + Σ_{j≤i} e^{gc_i − gc_j} (q_i·k_j) v'_j
//   S ← e^{gc_n} S + Σ_j e^{gc_n − gc_j} v'_j k_jᵀ
// T is never formed: U and W come from forward substitution with A.
void gated_delta_chunked(float* S, int dk, int dv, const DeltaRows& r, int64_t T,
                         DeltaChunkScratch& sc) {
  const int C = kDeltaChunk;
  float* A = sc.a.data();
  float* W = sc.w.data();
  float* U = sc.u.data();
  float* gc = sc.gc.data();
  float* SQ = sc.sq.data();
  for (int64_t t0 = 0; t0 < T; t0 += C) {
    const int n = int(std::min<int64_t>(C, T - t0));
    auto q = [&](int i) { return r.q + (t0 + i) * r.ldqk; };
    auto k = [&](int i) { return r.k + (t0 + i) * r.ldqk; };
    auto v = [&](int i) { return r.v + (t0 + i) * r.ldv; };
    auto beta = [&](int i) { return r.beta[(t0 + i) * r.ldgb]; };
    float acc = 0;
    for (int i = 0; i < n; ++i) gc[i] = (acc += r.g[(t0 + i) * r.ldgb]);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < i; ++j)
        A[i * C + j] = beta(i) * std::exp(gc[i] - gc[j]) * dot(k(i), k(j), dk);
    // Forward substitution: row i of U and W minus the rows before it, weighted by A.
    for (int i = 0; i < n; ++i) {
      float* ui = U + size_t(i) * dv;
      float* wi = W + size_t(i) * dk;
      const float b = beta(i), bg = b * std::exp(gc[i]);
      for (int d = 0; d < dv; ++d) ui[d] = b * v(i)[d];
      for (int d = 0; d < dk; ++d) wi[d] = bg * k(i)[d];
      for (int j = 0; j < i; ++j) {
        axpy(ui, -A[i * C + j], U + size_t(j) * dv, dv);
        axpy(wi, -A[i * C + j], W + size_t(j) * dk, dk);
      }
    }
    // With the state at the chunk's start: v'_i = U_i − S W_i and the inter-chunk output
    // e^{gc_i} S q_i (both one pass over S).
    for (int d = 0; d < dv; ++d) {
      const float* Sd = S + size_t(d) * dk;
      for (int i = 0; i < n; ++i) {
        U[size_t(i) * dv + d] -= dot(Sd, W + size_t(i) * dk, dk);
        SQ[size_t(i) * dv + d] = std::exp(gc[i]) * dot(Sd, q(i), dk);
      }
    }
    // Intra-chunk output.
    for (int i = 0; i < n; ++i) {
      float* o = r.o + (t0 + i) * r.ldo;
      std::copy_n(SQ + size_t(i) * dv, dv, o);
      for (int j = 0; j <= i; ++j)
        axpy(o, std::exp(gc[i] - gc[j]) * dot(q(i), k(j), dk), U + size_t(j) * dv, dv);
    }
    // State update.
    const float gl = gc[n - 1], el = std::exp(gl);
    for (int d = 0; d < dv; ++d) {
      float* Sd = S + size_t(d) * dk;
      for (int j = 0; j < dk; ++j) Sd[j] *= el;
      for (int i = 0; i < n; ++i) axpy(Sd, std::exp(gl - gc[i]) * U[size_t(i) * dv + d], k(i), dk);
    }
  }
}

}  // namespace hearth::ops
