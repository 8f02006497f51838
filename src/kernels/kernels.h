// kernels/kernels.h — the fast compute kernels, one table per instruction-set level.
//
// The generic table is built from the scalar references in quant/ (so it is always correct).
// Each ISA level the CPU supports then overwrites the entries it implements, lowest level first;
// a missing entry silently keeps the level below. The active level is picked once from CPUID and
// can be capped with HEARTH_ISA=generic|avx2|avxvnni|avx512 (or set_isa_cap) so every path can be
// tested on one machine. Kernels never fail: ops/ checks preconditions before calling them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant/types.h"

namespace hearth::kernels {

// kAvxVnni: AVX2 + 256-bit vpdpbusd (AVX-VNNI, or AVX-512 VL + VNNI); kAvx512 includes VNNI.
enum class Isa : int { kGeneric = 0, kAvx2 = 1, kAvxVnni = 2, kAvx512 = 3 };
constexpr int kNumIsa = 4;
const char* isa_name(Isa isa);
bool parse_isa(const char* s, Isa& out);

// Y[m * ldy + r] = dot(W row r, A row m) for r in [0, n_rows), m in [0, M).
// W rows hold K elements of the weight type, w_stride bytes apart; A rows hold K elements of the
// weight type's vec_dot_type, a_stride bytes apart. Kernels may reuse unpacked weights across the
// M activation rows (prefill) and process several weight rows at once (decode).
using GemmFn = void (*)(int64_t K, const void* W, size_t w_stride, int64_t n_rows, const void* A,
                        size_t a_stride, int64_t M, float* Y, size_t ldy);
using VecDotFn = float (*)(int64_t n, const void* x, const void* y);
// Convert one row of float activations into an activation type (Q8_0, Q8_1, Q8_K, F16, BF16).
using QuantizeRowFn = void (*)(const float* x, void* y, int64_t n);

// Optional load-time repacking of a weight matrix into a kernel-private layout (e.g. rows
// interleaved so one SIMD lane holds one output row). ops/ packs a matrix once at load when an
// entry exists, splits work in multiples of `row_group`, and calls `gemm` on packed row ranges.
// Packed bytes must be linear in rows: rows [r0, r1) start at packed_bytes(K, r0).
struct RepackEntry {
  int row_group = 0;  // 0: this type is not repacked on this ISA
  size_t (*packed_bytes)(int64_t K, int64_t n_rows) = nullptr;
  void (*pack)(int64_t K, const void* W, size_t w_stride, int64_t n_rows, void* out) = nullptr;
  // Y[m * ldy + r] = dot(packed row r, A row m); n_rows is a multiple of row_group.
  void (*gemm)(int64_t K, const void* Wp, int64_t n_rows, const void* A, size_t a_stride, int64_t M,
               float* Y, size_t ldy) = nullptr;
};

struct KernelTable {
  Isa isa = Isa::kGeneric;
  RepackEntry repack[kMaxTypeId] = {};          // indexed by weight type id
  VecDotFn vec_dot[kMaxTypeId] = {};            // indexed by weight type id
  GemmFn gemm[kMaxTypeId] = {};                 // indexed by weight type id
  QuantizeRowFn quantize_row[kMaxTypeId] = {};  // indexed by the target (activation) type id
  // Weight types whose kernels stream faster from huge-page memory than from the page cache
  // (ops::Placement::kAuto copies them at load). Set only where measured.
  bool prefer_resident[kMaxTypeId] = {};
  // F16 · F16 (attention scores against an F16 cache).
  VecDotFn dot_f16 = nullptr;
  // Causal attention of g query heads sharing one F16 KV head at one query position:
  // scores = scale * (q_h . K_j) (optional softcap), softmax over the n_keys keys, probabilities
  // rounded to F16, out_h = sum_j p_hj V_j. q16: g x hd, out: g x hd, scores: g x n_keys and
  // lanes: g x 16 x hd scratch. key0 is the position of key 0.
  // Every level sums in llama.cpp's order (its F16 matmuls through 16-lane accumulators): a
  // score is 16 per-lane FMA chains over the head dims, folded by the tree of
  // _mm512_reduce_add_ps; the softmax denominator adds, in double, that tree of each aligned
  // block of 16 positions; out[d] is 16 per-lane chains over the keys (lane = position mod 16)
  // folded the same way. So levels agree bit for bit, and with llama.cpp's scores exactly.
  void (*attn_f16)(int hd, int g, const uint16_t* q16, const uint8_t* k, size_t k_stride,
                   const uint8_t* v, size_t v_stride, int64_t n_keys, int64_t key0, float scale,
                   float softcap, float* scores, float* lanes, float* out) = nullptr;
  // One step of tiled attention with an online softmax (flash-attention style): m query rows
  // sharing one KV head against a tile of n keys. q: m x hd row-major and qt: hd x mp (its
  // transpose, mp = m rounded up to 16, padding zero), both already multiplied by the scale.
  // k: n x hd and v: n x hdv F32 rows (the tile, dequantized); rows up to n rounded up to 16 must
  // be readable and finite. Row r sees keys [lo[r], hi[r]) of the tile (lo = hi: none). Running
  // state per row, updated in place: mx (largest score so far, -inf at start), l (sum of
  // exp(score - mx)) and o: m x hdv (sum of exp(score - mx) V_j, unnormalized); the caller divides
  // o by l after the last tile. Scores are softcapped first when softcap > 0. s: scratch of
  // (n rounded up to 16 + 1) * mp + 16 * hd floats. hd and hdv are multiples of 16. A row's
  // result does not depend on m or on the other rows, bit for bit (prefill equals decode).
  void (*attn_tile)(int hd, int hdv, int m, const float* q, const float* qt, const float* k,
                    const float* v, int n, const int32_t* lo, const int32_t* hi, float softcap,
                    float* mx, float* l, float* o, float* s) = nullptr;
  // attn_tile for up to kAttnCacheRows rows (decode) reading the tile's K and V rows straight
  // from the cache, in its type (indexed by type id; null: convert with to_f32 and call
  // attn_tile): K row j at k + j * k_stride, V row j at v + j * v_stride, only rows < n read.
  // Equals attn_tile on the rows as to_f32 gives them, bit for bit. q as for attn_tile (no qt).
  static constexpr int kAttnCacheRows = 8;
  void (*attn_tile_cache[kMaxTypeId])(int hd, int hdv, int m, const float* q, const uint8_t* k,
                                      size_t k_stride, const uint8_t* v, size_t v_stride, int n,
                                      const int32_t* lo, const int32_t* hi, float softcap,
                                      float* mx, float* l, float* o, float* s) = {};
  // A row of n elements of a KV cache type (F16, Q8_0, Q4_0, F32) as floats (indexed by type id;
  // n a multiple of the type's block).
  void (*to_f32[kMaxTypeId])(const void* src, float* dst, int64_t n) = {};
  // out[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + e^-x): the SwiGLU FFN's activation (the
  // vector levels' e^x is within a few ulp of std::exp, the generic level's reference).
  void (*swiglu)(const float* gate, const float* up, float* out, int64_t n) = nullptr;
  // y[i] += a * x[i] over an F16 row (attention's weighted sum of V rows).
  void (*mad_f16)(int64_t n, float* y, const uint16_t* x, float a) = nullptr;
  // Peak probes (`hearth bench --peak`): `iters` rounds of independent dot-product chains held in
  // registers, the instructions this level's kernels use; return the multiply-adds done. int8:
  // u8 x s8 pairs as the quantized prefill GEMMs take them; f32: FMA lanes; bf16: BF16 pairs
  // (nullptr where the CPU has no BF16 dot product).
  uint64_t (*peak_int8)(uint64_t iters) = nullptr;
  uint64_t (*peak_f32)(uint64_t iters) = nullptr;
  uint64_t (*peak_bf16)(uint64_t iters) = nullptr;
};

Isa detected_isa();                 // best level this CPU supports
const KernelTable& table(Isa isa);  // level must be <= detected_isa()
const KernelTable& active();        // min(detected, HEARTH_ISA, cap)
void set_isa_cap(Isa cap);          // for tests and --isa; affects later active() calls

// Per-ISA registration hooks (one per family file in kernels/<isa>/).
void register_avx2(KernelTable& t);
void register_avxvnni(KernelTable& t);
void register_avx512(KernelTable& t);

}  // namespace hearth::kernels
