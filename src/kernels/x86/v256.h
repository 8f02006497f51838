// kernels/x86/v256.h — the 256-bit vector basics of gemm_cols.h's traits, shared by the AVX2
// and AVX-VNNI instances (each adds its own dot4). Header-only with internal linkage: each ISA
// folder compiles its copy with its own flags.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace hearth::kernels::x86 {
namespace {

struct V256Base {
  using I = __m256i;
  using F = __m256;
  static constexpr int kCols = 8, kRows = 4;  // 16 ymm registers
  static constexpr bool kSignedW = false;
  static constexpr bool kSum16 = false;
  static I load(const void* p) { return _mm256_load_si256(static_cast<const __m256i*>(p)); }
  static I zero() { return _mm256_setzero_si256(); }
  static I set1(int32_t x) { return _mm256_set1_epi32(x); }
  static F loadf(const float* p) { return _mm256_load_ps(p); }
  static void storef(float* p, F v) { _mm256_store_ps(p, v); }
  static F set1f(float x) { return _mm256_set1_ps(x); }
  static F zerof() { return _mm256_setzero_ps(); }
  static F cvt(I v) { return _mm256_cvtepi32_ps(v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F fmsub(F a, F b, F c) { return _mm256_fmsub_ps(a, b, c); }
};

}  // namespace
}  // namespace hearth::kernels::x86
