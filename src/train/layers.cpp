#include "train/layers.h"

#include <algorithm>
#include <cmath>

#include "train/gemm.h"

namespace hearth::train {
namespace {

template <typename F>
void for_rows(ThreadPool& pool, int64_t rows, F&& f) {
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    ThreadPool::split(rows, ith, nth, b, e);
    for (int64_t r = b; r < e; ++r) f(r);
  });
}

// One scratch buffer per pool thread, large enough for either pass.
void reserve_scratch(const ThreadPool& pool, const AttentionShape& s,
                     std::vector<std::vector<float>>& tmp) {
  tmp.resize(size_t(pool.size()));
  for (auto& t : tmp)
    if (t.size() < s.scratch_floats()) t.resize(s.scratch_floats());
}

// Causal products are computed in row blocks so the upper triangle costs little.
constexpr int64_t kRowBlock = 64;

}  // namespace

void rmsnorm_forward(ThreadPool& pool, const float* x, const float* g, int64_t rows, int64_t n,
                     float eps, float* y, float* rinv) {
  for_rows(pool, rows, [&](int64_t r) {
    const float* xr = x + r * n;
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(xr[i]) * xr[i];
    const float ri = 1.0f / std::sqrt(float(ss / double(n)) + eps);
    rinv[r] = ri;
    float* yr = y + r * n;
    for (int64_t i = 0; i < n; ++i) yr[i] = xr[i] * ri * g[i];
  });
}

void rmsnorm_backward(ThreadPool& pool, const float* x, const float* g, const float* rinv,
                      const float* dy, int64_t rows, int64_t n, float* dx, float* dg) {
  for_rows(pool, rows, [&](int64_t r) {
    const float* xr = x + r * n;
    const float* dyr = dy + r * n;
    const float ri = rinv[r];
    double dot = 0;  // Σ (dy·g)·x
    for (int64_t i = 0; i < n; ++i) dot += double(dyr[i]) * g[i] * xr[i];
    const float c = float(dot / double(n)) * ri * ri * ri;
    float* dxr = dx + r * n;
    for (int64_t i = 0; i < n; ++i) dxr[i] = ri * dyr[i] * g[i] - c * xr[i];
  });
  // dg by columns, so threads never write the same accumulator.
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    ThreadPool::split(n, ith, nth, b, e, 16);
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * n;
      const float* dyr = dy + r * n;
      const float ri = rinv[r];
      for (int64_t i = b; i < e; ++i) dg[i] += dyr[i] * xr[i] * ri;
    }
  });
}

void swiglu_forward(ThreadPool& pool, const float* gate, const float* up, int64_t count, float* h) {
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    ThreadPool::split(count, ith, nth, b, e, 16);
    for (int64_t i = b; i < e; ++i) h[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
  });
}

void swiglu_backward(ThreadPool& pool, const float* gate, const float* up, const float* dh,
                     int64_t count, float* dgate, float* dup) {
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    ThreadPool::split(count, ith, nth, b, e, 16);
    for (int64_t i = b; i < e; ++i) {
      const float z = gate[i], s = 1.0f / (1.0f + std::exp(-z));
      dup[i] = dh[i] * z * s;
      dgate[i] = dh[i] * up[i] * s * (1.0f + z * (1.0f - s));
    }
  });
}

void RopeTables::build(const ops::RopeParams& p, int64_t n) {
  params = p;
  n_tok = n;
  const size_t w = size_t(p.n_rot);
  fwd.assign(size_t(n) * w, 0.0f);
  inv.assign(size_t(n) * w, 0.0f);
  for (int64_t t = 0; t < n; ++t) {
    ops::rope_cos_sin(p, t, fwd.data() + t * w);
    for (size_t i = 0; i < w; i += 2) {
      inv[t * w + i] = fwd[t * w + i];
      inv[t * w + i + 1] = -fwd[t * w + i + 1];
    }
  }
}

void rope_rows(ThreadPool& pool, const RopeTables& t, bool inverse, float* x, int64_t n_seq,
               int n_heads, int head_dim) {
  const auto& cs = inverse ? t.inv : t.fwd;
  const size_t w = size_t(t.params.n_rot);
  const size_t ld = size_t(n_heads) * head_dim;
  for_rows(pool, n_seq * t.n_tok, [&](int64_t r) {
    ops::rope_apply(t.params, cs.data() + size_t(r % t.n_tok) * w, x + r * ld, n_heads, head_dim);
  });
}

size_t AttentionShape::scratch_floats() const {
  const size_t T = size_t(n_tok), hd = size_t(head_dim);
  return 3 * T * T + 7 * hd * T;
}

void attention_forward(ThreadPool& pool, const AttentionShape& s, const float* q, const float* k,
                       const float* v, float* p, float* o, std::vector<std::vector<float>>& tmp) {
  const int64_t T = s.n_tok, hd = s.head_dim;
  const size_t qd = size_t(s.n_head) * hd, kd = size_t(s.n_head_kv) * hd;
  const int group = s.n_head / s.n_head_kv;
  reserve_scratch(pool, s, tmp);
  pool.run([&](int ith, int nth) {
    float* vt = tmp[size_t(ith)].data();  // hd × T
    for (int64_t item = ith; item < s.n_seq * s.n_head_kv; item += nth) {
      const int64_t seq = item / s.n_head_kv, kvh = item % s.n_head_kv;
      const float* K = k + seq * T * kd + kvh * hd;
      const float* V = v + seq * T * kd + kvh * hd;
      transpose(T, hd, V, kd, vt, size_t(T));
      for (int g = 0; g < group; ++g) {
        const int64_t h = kvh * group + g;
        const float* Q = q + seq * T * qd + h * hd;
        float* P = p + (seq * s.n_head + h) * T * T;
        float* O = o + seq * T * qd + h * hd;
        for (int64_t i0 = 0; i0 < T; i0 += kRowBlock) {
          const int64_t i1 = std::min(T, i0 + kRowBlock);
          gemm_nt(i1 - i0, i1, hd, Q + i0 * qd, qd, K, kd, P + i0 * T, size_t(T));
          for (int64_t i = i0; i < i1; ++i) {
            float* row = P + i * T;
            float mx = -INFINITY;
            for (int64_t j = 0; j <= i; ++j) mx = std::max(mx, row[j] * s.scale);
            double sum = 0;
            for (int64_t j = 0; j <= i; ++j) {
              row[j] = std::exp(row[j] * s.scale - mx);
              sum += row[j];
            }
            const float inv = float(1.0 / sum);
            for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
            std::fill(row + i + 1, row + T, 0.0f);
          }
          gemm_nt(i1 - i0, hd, i1, P + i0 * T, size_t(T), vt, size_t(T), O + i0 * qd, qd);
        }
      }
    }
  });
}

void attention_backward(ThreadPool& pool, const AttentionShape& s, const float* q, const float* k,
                        const float* v, const float* p, const float* d_o, float* dq, float* dk,
                        float* dv, std::vector<std::vector<float>>& tmp) {
  const int64_t T = s.n_tok, hd = s.head_dim;
  const size_t qd = size_t(s.n_head) * hd, kd = size_t(s.n_head_kv) * hd;
  const size_t TT = size_t(T) * T, HT = size_t(hd) * T;
  const int group = s.n_head / s.n_head_kv;
  reserve_scratch(pool, s, tmp);
  pool.run([&](int ith, int nth) {
    float* base = tmp[size_t(ith)].data();
    float* dP = base;          // T × T: dP, then dS
    float* dSt = dP + TT;      // T × T
    float* Pt = dSt + TT;      // T × T
    float* Kt = Pt + TT;       // hd × T
    float* Qt = Kt + HT;       // hd × T
    float* dOt = Qt + HT;      // hd × T
    float* tmpC = dOt + HT;    // T × hd
    float* dKacc = tmpC + HT;  // T × hd
    float* dVacc = dKacc + HT;
    for (int64_t item = ith; item < s.n_seq * s.n_head_kv; item += nth) {
      const int64_t seq = item / s.n_head_kv, kvh = item % s.n_head_kv;
      const float* K = k + seq * T * kd + kvh * hd;
      const float* V = v + seq * T * kd + kvh * hd;
      transpose(T, hd, K, kd, Kt, size_t(T));
      std::fill(dKacc, dKacc + HT, 0.0f);
      std::fill(dVacc, dVacc + HT, 0.0f);
      for (int g = 0; g < group; ++g) {
        const int64_t h = kvh * group + g;
        const float* Q = q + seq * T * qd + h * hd;
        const float* P = p + (seq * s.n_head + h) * T * T;
        const float* dO = d_o + seq * T * qd + h * hd;
        float* dQ = dq + seq * T * qd + h * hd;
        // dP = dO · Vᵀ, then dS = P ⊙ (dP − rowsum(P ⊙ dP)) · scale, then dQ = dS · K.
        for (int64_t i0 = 0; i0 < T; i0 += kRowBlock) {
          const int64_t i1 = std::min(T, i0 + kRowBlock);
          gemm_nt(i1 - i0, i1, hd, dO + i0 * qd, qd, V, kd, dP + i0 * T, size_t(T));
          for (int64_t i = i0; i < i1; ++i) {
            float* row = dP + i * T;
            const float* pr = P + i * T;
            double dot = 0;
            for (int64_t j = 0; j <= i; ++j) dot += double(pr[j]) * row[j];
            for (int64_t j = 0; j <= i; ++j) row[j] = pr[j] * (row[j] - float(dot)) * s.scale;
            std::fill(row + i + 1, row + T, 0.0f);
          }
          gemm_nt(i1 - i0, hd, i1, dP + i0 * T, size_t(T), Kt, size_t(T), dQ + i0 * qd, qd);
        }
        // dK += dSᵀ · Q and dV += Pᵀ · dO; row j of a transposed causal matrix is non-zero
        // from column j on.
        transpose(T, T, dP, size_t(T), dSt, size_t(T));
        transpose(T, T, P, size_t(T), Pt, size_t(T));
        transpose(T, hd, Q, qd, Qt, size_t(T));
        transpose(T, hd, dO, qd, dOt, size_t(T));
        for (int64_t j0 = 0; j0 < T; j0 += kRowBlock) {
          const int64_t j1 = std::min(T, j0 + kRowBlock);
          gemm_nt(j1 - j0, hd, T - j0, dSt + j0 * T + j0, size_t(T), Qt + j0, size_t(T),
                  tmpC + j0 * hd, size_t(hd));
        }
        for (size_t i = 0; i < HT; ++i) dKacc[i] += tmpC[i];
        for (int64_t j0 = 0; j0 < T; j0 += kRowBlock) {
          const int64_t j1 = std::min(T, j0 + kRowBlock);
          gemm_nt(j1 - j0, hd, T - j0, Pt + j0 * T + j0, size_t(T), dOt + j0, size_t(T),
                  tmpC + j0 * hd, size_t(hd));
        }
        for (size_t i = 0; i < HT; ++i) dVacc[i] += tmpC[i];
      }
      for (int64_t t = 0; t < T; ++t) {
        std::copy(dKacc + t * hd, dKacc + (t + 1) * hd, dk + (seq * T + t) * kd + kvh * hd);
        std::copy(dVacc + t * hd, dVacc + (t + 1) * hd, dv + (seq * T + t) * kd + kvh * hd);
      }
    }
  });
}

double cross_entropy(ThreadPool& pool, float* logits, const int32_t* targets, const float* weights,
                     int64_t rows, int64_t n_vocab, float grad_scale, double* weight_sum) {
  std::vector<double> part(size_t(pool.size()) * 2, 0.0);
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    ThreadPool::split(rows, ith, nth, b, e);
    double loss = 0, wsum = 0;
    for (int64_t r = b; r < e; ++r) {
      float* l = logits + r * n_vocab;
      const float w = weights ? weights[r] : 1.0f;
      if (w <= 0 || targets[r] < 0) {
        std::fill(l, l + n_vocab, 0.0f);
        continue;
      }
      float mx = -INFINITY;
      for (int64_t i = 0; i < n_vocab; ++i) mx = std::max(mx, l[i]);
      double sum = 0;
      for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(double(l[i] - mx));
      const double lse = double(mx) + std::log(sum);
      loss += w * (lse - double(l[targets[r]]));
      wsum += w;
      const float gs = w * grad_scale;
      for (int64_t i = 0; i < n_vocab; ++i) l[i] = float(std::exp(double(l[i]) - lse)) * gs;
      l[targets[r]] -= gs;
    }
    part[size_t(ith) * 2] = loss;
    part[size_t(ith) * 2 + 1] = wsum;
  });
  double loss = 0, wsum = 0;
  for (int i = 0; i < pool.size(); ++i) {
    loss += part[size_t(i) * 2];
    wsum += part[size_t(i) * 2 + 1];
  }
  if (weight_sum) *weight_sum = wsum;
  return loss;
}

}  // namespace hearth::train
