// The column-vectorised int8 GEMM (kernels/x86/gemm_cols.h) on AVX-512 VNNI: one zmm holds 4 K
// bytes of 16 activation rows, vpdpbusd against a broadcast weight quad, register tiles of 8
// weight rows x 16 columns.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/unpack_rows.h"
#include "kernels/x86/act_format.h"

namespace hearth::kernels::avx512 {

using ActFormat = x86::ActFormat;

// Y[m * ldy + r] for r < n_rows, m < M; group = 16 or 32 (elements per scale); K % 256 == 0.
// zero_point (Q8_K activations, K-quants): the type's fixed zero point, weight = d * isc * (q -
// zero_point) (Q6_K 32, Q3_K 4, IQ4_XS 128); 0 for the types with per-row mins (Q4_K, Q5_K, Q2_K).
void gemm_vnni(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W, size_t w_stride,
               int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y, size_t ldy,
               int zero_point = 0);

// The same product with weight rows interleaved 16 to a vector and activations broadcast from
// their rows (gemm_rows16.cpp); any row count, M >= 1.
void gemm_vnni_rows16(UnpackFn unpack, int group, ActFormat act, int64_t K, const void* W,
                      size_t w_stride, int64_t n_rows, const void* A, size_t a_stride, int64_t M,
                      float* Y, size_t ldy, int zero_point = 0);

// One super-block (256 K elements) of 16 weight rows as the rows-16 GEMM reads it: q[k4] holds K
// bytes 4 k4 .. 4 k4 + 3 of each row (unsigned, lane i = row i). Per group g of 16 or 32 elements
// (RowUnpack's algebra), with Q8_0 / Q8_1 activations the float form
//   weight = scale[g][i] * q - off[g][i],
// with Q8_K activations (K-quant weights: integer sub-block scales) the integer form
//   weight = d[i] * isc[g][i] * q - dmin[i] * imin[g][i],
// imin2[j] holding imin of groups 2j and 2j + 1 as an int16 pair per lane (vpdpwssd's operand);
// imin2 and dmin are not read for types with a zero point (imin = zero_point * isc, dmin = d).
struct Block16 {
  alignas(64) uint8_t q[64][16][4];
  float scale[16][16];
  float off[16][16];
  int32_t isc[16][16];
  int32_t imin2[8][16];
  float d[16];
  float dmin[16];
};

// Expands one group's super-block of a load-time packed layout (kernels.h's RepackEntry) into a
// Block16: a few vector ops, the 16 rows being interleaved already.
using PackedExpandFn = void (*)(const uint8_t* src, Block16& out);

// gemm_vnni_rows16 on packed weights: group q's super-block sb at Wp + (q * K / 256 + sb) *
// sb_bytes; n_rows a multiple of 16.
void gemm_vnni_rows16_packed(PackedExpandFn expand, size_t sb_bytes, int group, ActFormat act,
                             int64_t K, const void* Wp, int64_t n_rows, const void* A,
                             size_t a_stride, int64_t M, float* Y, size_t ldy, int zero_point = 0);

// Q8_0 weights (unpacked by `unpack` as x + 128 with scale d) x Q8_0 activations, summed in
// llama.cpp's order so results equal its bit for bit (tile_q8_0_lanes in x86/gemm_cols.h).
void gemm_vnni_q8_0_lanes(UnpackFn unpack, int64_t K, const void* W, size_t w_stride,
                          int64_t n_rows, const void* A, size_t a_stride, int64_t M, float* Y,
                          size_t ldy);

// The same product and order with weight rows interleaved 16 to a vector (gemm_q8_0_rows16.cpp);
// any row count, K % 32 == 0.
void gemm_q8_0_rows16(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                      size_t a_stride, int64_t M, float* Y, size_t ldy);

// HEARTH_GEMM_COLS=1 in the environment: prefill on the column GEMM (gemm_cols.h) instead of the
// rows-16 ones, for comparison.
bool gemm_cols_requested();

}  // namespace hearth::kernels::avx512
