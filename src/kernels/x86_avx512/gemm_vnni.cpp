// AVX-512 VNNI instance of the shared column GEMM (kernels/x86/gemm_cols.h).
#include "kernels/x86_avx512/gemm_vnni.h"

#include <immintrin.h>

#include <cstdlib>

#include "kernels/x86/gemm_cols.h"

namespace hearth::kernels::avx512 {
namespace {

struct V512 {
  using I = __m512i;
  using F = __m512;
  static constexpr int kCols = 16, kRows = 8;
  static constexpr bool kSignedW = false;
  static constexpr bool kSum16 = false;  // vpdpbusd widens by itself
  static I load(const void* p) { return _mm512_load_si512(p); }
  static I zero() { return _mm512_setzero_si512(); }
  static I set1(int32_t x) { return _mm512_set1_epi32(x); }
  static I dot4(I acc, I w, I a) { return _mm512_dpbusd_epi32(acc, w, a); }
  static F loadf(const float* p) { return _mm512_load_ps(p); }
  static void storef(float* p, F v) { _mm512_store_ps(p, v); }
  static F set1f(float x) { return _mm512_set1_ps(x); }
  static F zerof() { return _mm512_setzero_ps(); }
  static F cvt(I v) { return _mm512_cvtepi32_ps(v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F fmsub(F a, F b, F c) { return _mm512_fmsub_ps(a, b, c); }
};

}  // namespace

bool gemm_cols_requested() {
  static const bool cols = [] {
    const char* e = std::getenv("HEARTH_GEMM_COLS");
    return e && *e == '1';
  }();
  return cols;
}

void gemm_vnni(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W, size_t w_stride,
               int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy,
               int zero_point) {
  if (!gemm_cols_requested())
    return gemm_vnni_rows16(unpack, group, act, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy,
                            zero_point);
  x86::gemm_cols<V512>(unpack, group, act, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

void gemm_vnni_q8_0_lanes(UnpackFn unpack, int64_t K, const void* W, size_t w_stride,
                          int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y,
                          size_t ldy) {
  x86::gemm_cols_q8_0_lanes<V512>(unpack, K, W, w_stride, n_rows, A, a_stride, M, Y, ldy);
}

}  // namespace hearth::kernels::avx512
