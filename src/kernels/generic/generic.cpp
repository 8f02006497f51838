#include "kernels/generic/generic.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "base/fp16.h"
#include "quant/float_types.h"

namespace hearth::kernels {
namespace {

template <int Id>
void gemm_generic(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                  size_t a_stride, int64_t M, float* Y, size_t ldy) {
  gemm_from_vec_dot(find_type(Id)->vec_dot, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

template <int... Ids>
void fill_gemms(KernelTable& t, std::integer_sequence<int, Ids...>) {
  ((t.gemm[Ids] = find_type(Ids) && find_type(Ids)->vec_dot ? &gemm_generic<Ids> : nullptr), ...);
}

}  // namespace

void gemm_from_vec_dot(VecDotFn dot, int64_t K, const void* W, size_t w_stride, int64_t n_rows,
                       const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy) {
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* a = static_cast<const uint8_t*>(A);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t r = 0; r < n_rows; ++r)
      Y[m * ldy + r] = dot(K, w + r * w_stride, a + m * a_stride);
}

namespace {
// The fold of _mm512_reduce_add_ps: lanes i + i+8, then + i+4, then i + i+2, then 0 + 1.
float tree16(const float* a) {
  float t8[8], t4[4];
  for (int i = 0; i < 8; ++i) t8[i] = a[i] + a[i + 8];
  for (int i = 0; i < 4; ++i) t4[i] = t8[i] + t8[i + 4];
  return (t4[0] + t4[2]) + (t4[1] + t4[3]);
}

void attn_f16_generic(int hd, int g, const uint16_t* q16, const uint8_t* k, size_t k_stride,
                      const uint8_t* v, size_t v_stride, int64_t n_keys, int64_t key0, float scale,
                      float softcap, float* scores, float* lanes, float* out) {
  for (int h = 0; h < g; ++h) {
    float* s = scores + h * n_keys;
    const uint16_t* q = q16 + h * hd;
    float mx = -INFINITY;
    for (int64_t j = 0; j < n_keys; ++j) {
      const auto* kr = reinterpret_cast<const uint16_t*>(k + j * k_stride);
      float acc[16] = {};
      for (int c = 0; c < hd; c += 16)
        for (int l = 0; l < 16; ++l)
          acc[l] = std::fma(fp16_to_fp32(kr[c + l]), fp16_to_fp32(q[c + l]), acc[l]);
      float x = tree16(acc) * scale;
      if (softcap > 0) x = softcap * std::tanh(x / softcap);
      s[j] = x;
      mx = std::max(mx, x);
    }
    for (int64_t j = 0; j < n_keys; ++j) s[j] = std::exp(s[j] - mx);
    double sum = 0;
    for (int64_t b = key0 & ~int64_t(15); b < key0 + n_keys; b += 16) {
      float blk16[16] = {};
      for (int l = 0; l < 16; ++l)
        if (b + l >= key0 && b + l < key0 + n_keys) blk16[l] = s[b + l - key0];
      sum += double(tree16(blk16));
    }
    const float inv = float(1.0 / sum);
    float* ln = lanes + size_t(h) * 16 * hd;
    std::fill(ln, ln + 16 * hd, 0.0f);
    for (int64_t j = 0; j < n_keys; ++j) {
      const float w = round_fp16(s[j] * inv);
      const auto* vr = reinterpret_cast<const uint16_t*>(v + j * v_stride);
      float* lr = ln + ((key0 + j) & 15) * hd;
      for (int d = 0; d < hd; ++d) lr[d] = std::fma(w, fp16_to_fp32(vr[d]), lr[d]);
    }
    float col[16];
    for (int d = 0; d < hd; ++d) {
      for (int l = 0; l < 16; ++l) col[l] = ln[l * hd + d];
      out[h * hd + d] = tree16(col);
    }
  }
}

// The scalar reference of KernelTable::attn_tile: scores, online-softmax update, weighted V.
void attn_tile_generic(int hd, int hdv, int m, const float* q, const float*, const float* k,
                       const float* v, int n, const int32_t* lo, const int32_t* hi, float softcap,
                       float* mx, float* l, float* o, float* s) {
  for (int r = 0; r < m; ++r) {
    if (lo[r] >= hi[r]) continue;
    float mt = -INFINITY;
    for (int j = lo[r]; j < hi[r]; ++j) {
      float x = 0;
      for (int d = 0; d < hd; ++d) x += q[size_t(r) * hd + d] * k[size_t(j) * hd + d];
      if (softcap > 0) x = softcap * std::tanh(x / softcap);
      s[j] = x;
      mt = std::max(mt, x);
    }
    const float mnew = std::max(mx[r], mt);
    const float corr = std::exp(mx[r] - mnew);  // 0 when nothing was seen yet
    float* orow = o + size_t(r) * hdv;
    for (int d = 0; d < hdv; ++d) orow[d] *= corr;
    float sum = 0;
    for (int j = lo[r]; j < hi[r]; ++j) {
      const float p = std::exp(s[j] - mnew);
      sum += p;
      for (int d = 0; d < hdv; ++d) orow[d] += p * v[size_t(j) * hdv + d];
    }
    l[r] = l[r] * corr + sum;
    mx[r] = mnew;
  }
}

template <DType T>
void to_f32_generic(const void* src, float* dst, int64_t n) {
  type_traits(T).dequantize_row(src, dst, n);
}

void mad_f16_generic(int64_t n, float* y, const uint16_t* x, float a) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * fp16_to_fp32(x[i]);
}
}  // namespace

void swiglu_generic(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void fill_generic(KernelTable& t) {
  t.isa = Isa::kGeneric;
  t.mad_f16 = mad_f16_generic;
  t.swiglu = swiglu_generic;
  t.dot_f16 = vec_dot_f16_f16;
  t.attn_f16 = attn_f16_generic;
  t.attn_tile = attn_tile_generic;
  t.to_f32[uint32_t(DType::F32)] = to_f32_generic<DType::F32>;
  t.to_f32[uint32_t(DType::F16)] = to_f32_generic<DType::F16>;
  t.to_f32[uint32_t(DType::Q8_0)] = to_f32_generic<DType::Q8_0>;
  t.to_f32[uint32_t(DType::Q4_0)] = to_f32_generic<DType::Q4_0>;
  for (uint32_t id = 0; id < kMaxTypeId; ++id) {
    const TypeTraits* tt = find_type(id);
    if (!tt) continue;
    t.vec_dot[id] = tt->vec_dot;
    t.quantize_row[id] = act_quantizer(*tt);
  }
  fill_gemms(t, std::make_integer_sequence<int, kMaxTypeId>{});
}

}  // namespace hearth::kernels
