// kernels/x86/row_stream.h — the drivers every x86 level runs its weight-streaming kernels
// through: decode (one activation row), small batches (continuous batching) and, with the weight
// rows blocked to stay in cache, any batch. Only the inner loops differ per ISA and type; they
// come in as a Kind:
//
//   struct Kind {
//     static constexpr int kStep;     // elements per unpack: 256 (a super-block) or 32 (a block)
//     static constexpr size_t kStepBytes;  // weight bytes per step (the block's size)
//     static constexpr int kMaxCols;  // activation rows one pass may hold in registers (<= 8)
//     struct Unp;                     // one step of a weight row, unpacked into registers
//     struct Act;                     // one step of an activation row, as the dot wants it
//     struct Acc;                     // running sums of one (weight row, activation row) pair
//     static void unpack(const uint8_t* row, int64_t step, Unp& u);
//     static void prep(const uint8_t* act_row, int64_t step, Act& a);  // once per step and row,
//                                                                      // shared by the R rows
//     static void zero(Acc& acc);
//     static void dot(const Unp& u, const Act& a, Acc& acc);
//     static float finish(const Acc& acc);
//   };
//
// Header-only with internal linkage: each ISA folder includes it and gets a copy compiled with its
// own flags. The drivers own the loop order, the prefetching and the cache blocking, so an
// improvement there lands on every level.
#pragma once

#include <xmmintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

// For a Kind's functions and what they call: the drivers only pay off when unpack and dot are
// inlined into the pass, so the unpacked registers never go through memory.
#define HEARTH_KERNEL_INLINE [[gnu::always_inline]] inline

namespace hearth::kernels::x86 {
namespace {

// R weight rows x NC activation rows over the whole K: each step of each weight row is unpacked
// once and dotted with the NC activation rows. Y[c * ldy + i] = row i . activation c.
// kPrefetch: the rows of a pass are short separate streams the hardware prefetcher barely ramps
// up on, so the same place two passes ahead is fetched into L2 (not L1: on a Zen 4 EPYC prefetcht0
// left the decode waiting on memory at half of llama.cpp's speed per core; prefetcht1 doubled it,
// PERFORMANCE.md). Off when the rows are already in cache (blocked batches).
template <class Kind, int R, int NC, bool kPrefetch>
inline void pass(int64_t K, const uint8_t* w, size_t w_stride, const uint8_t* a, size_t a_stride,
                 float* Y, size_t ldy) {
  typename Kind::Acc acc[R][NC];
  for (int i = 0; i < R; ++i)
    for (int c = 0; c < NC; ++c) Kind::zero(acc[i][c]);
  const int64_t steps = K / Kind::kStep;
  constexpr size_t step_bytes = Kind::kStepBytes;
  for (int64_t b = 0; b < steps; ++b) {
    // Every cache line of the step (a compile-time count; one line for the short blocks of the
    // 32-wide types, some of them fetched twice).
    if constexpr (kPrefetch)
      for (int i = 0; i < R; ++i) {
        const char* p = reinterpret_cast<const char*>(w + (i + 2 * R) * w_stride + b * step_bytes);
        for (size_t off = 0; off < step_bytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T1);
      }
    typename Kind::Act act[NC];
    for (int c = 0; c < NC; ++c) Kind::prep(a + c * a_stride, b, act[c]);
    for (int i = 0; i < R; ++i) {
      typename Kind::Unp u;
      Kind::unpack(w + i * w_stride, b, u);
      for (int c = 0; c < NC; ++c) Kind::dot(u, act[c], acc[i][c]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int c = 0; c < NC; ++c) Y[c * ldy + i] = Kind::finish(acc[i][c]);
}

// All n_rows weight rows against NC activation rows, R rows per pass (then single rows).
template <class Kind, int NC, bool kPrefetch>
inline void rows(int64_t K, const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* a,
                 size_t a_stride, float* Y, size_t ldy) {
  // Registers: R x NC accumulators. One activation row: 4 weight rows give the core independent
  // dependency chains to overlap while the weights stream in.
  constexpr int R = NC == 1 ? 4 : NC > 4 ? 1 : 2;
  int64_t r = 0;
  for (; r + R <= n_rows; r += R)
    pass<Kind, R, NC, kPrefetch>(K, w + r * w_stride, w_stride, a, a_stride, Y + r, ldy);
  for (; r < n_rows; ++r)
    pass<Kind, 1, NC, kPrefetch>(K, w + r * w_stride, w_stride, a, a_stride, Y + r, ldy);
}

// Activation rows [0, M) in groups of up to Kind::kMaxCols, each group a compile-time count so
// the accumulators stay in registers.
template <class Kind, bool kPrefetch>
inline void cols(int64_t K, const uint8_t* w, size_t w_stride, int64_t n_rows, const uint8_t* a,
                 size_t a_stride, int64_t M, float* Y, size_t ldy) {
  for (int64_t m0 = 0; m0 < M;) {
    const int64_t left = M - m0;
    const uint8_t* am = a + m0 * a_stride;
    float* ym = Y + m0 * ldy;
    int n;
    if constexpr (Kind::kMaxCols >= 8) {
      if (left >= 8) {
        rows<Kind, 8, kPrefetch>(K, w, w_stride, n_rows, am, a_stride, ym, ldy);
        m0 += 8;
        continue;
      }
    }
    if (left >= 4) {
      rows<Kind, 4, kPrefetch>(K, w, w_stride, n_rows, am, a_stride, ym, ldy);
      n = 4;
    } else if (left == 3) {
      rows<Kind, 3, kPrefetch>(K, w, w_stride, n_rows, am, a_stride, ym, ldy);
      n = 3;
    } else if (left == 2) {
      rows<Kind, 2, kPrefetch>(K, w, w_stride, n_rows, am, a_stride, ym, ldy);
      n = 2;
    } else {
      rows<Kind, 1, kPrefetch>(K, w, w_stride, n_rows, am, a_stride, ym, ldy);
      n = 1;
    }
    m0 += n;
  }
}

// Y[m * ldy + r] = dot(weight row r, activation row m) for any M. Up to one group of columns the
// weights stream from memory once, with prefetching; beyond that, the weight rows are taken in
// blocks of ~kBlockBytes that stay in L2 while every group of activation rows sweeps over them,
// so each weight byte still comes from memory once per call.
template <class Kind>
void gemm(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A, size_t a_stride,
          int64_t M, float* Y, size_t ldy) {
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* a = static_cast<const uint8_t*>(A);
  if (M <= Kind::kMaxCols) {
    cols<Kind, true>(K, w, w_stride, n_rows, a, a_stride, M, Y, ldy);
    return;
  }
  constexpr size_t kBlockBytes = 128 * 1024;
  const int64_t rb = std::max<int64_t>(4, int64_t(kBlockBytes / std::max<size_t>(w_stride, 1)));
  for (int64_t r0 = 0; r0 < n_rows; r0 += rb) {
    const int64_t nr = std::min(rb, n_rows - r0);
    cols<Kind, false>(K, w + r0 * w_stride, w_stride, nr, a, a_stride, M, Y + r0, ldy);
  }
}

template <class Kind>
float vec_dot(int64_t n, const void* x, const void* y) {
  float r;
  pass<Kind, 1, 1, false>(n, static_cast<const uint8_t*>(x), 0, static_cast<const uint8_t*>(y), 0,
                          &r, 0);
  return r;
}

}  // namespace
}  // namespace hearth::kernels::x86
