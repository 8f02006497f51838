// ops/delta_net.h — the pieces of a Gated DeltaNet linear-attention layer (Qwen 3.5 / Qwen3-Next):
// a short causal depthwise convolution with carried state, and the gated delta rule
//
//   S_t = e^{g_t} S_{t-1} + β_t (v_t − e^{g_t} S_{t-1} k_t) k_tᵀ,    o_t = S_t q_t
//
// per value head, with S a d_v × d_k matrix carried between calls (one per head and sequence).
// Two forms give the same result: the recurrent one (one token at a time, one pass over S per
// token; used to decode) and the chunked one (a chunk of C tokens at once through a unit
// lower-triangular solve and small matrix products; used for prompts). q and k are expected
// L2-normalised, q already scaled by 1/sqrt(d_k); g = log of the decay (≤ 0), β in (0, 1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hearth::ops {

// Depthwise causal convolution over T new rows of C channels, then SiLU:
//   out[t][c] = silu(Σ_j w[c][j] · x[t − (K−1) + j][c]),   j = 0..K−1
// where rows before the first new one come from `state` ((K−1) × C, oldest first), which is
// updated to the last K−1 input rows. Channels [c0, c1) only (threads split channels).
void causal_conv1d_silu(const float* w, int K, float* state, const float* x, size_t ldx, float* out,
                        size_t ldo, int64_t T, int64_t C, int64_t c0, int64_t c1);

// One head's token rows: row t of q and k at q + t*ldqk, of v at v + t*ldv, output at
// o + t*ldo; g and β at g[t*ldgb], beta[t*ldgb].
struct DeltaRows {
  const float *q, *k, *v, *g, *beta;
  size_t ldqk, ldv, ldgb;
  float* o;
  size_t ldo;
};

// The recurrent form over T tokens (S: d_v rows of d_k, updated in place).
void gated_delta_recurrent(float* S, int dk, int dv, const DeltaRows& r, int64_t T);

// Scratch for the chunked form (one per thread).
struct DeltaChunkScratch {
  std::vector<float> a, w, u, gc, sq;
  void reserve(int chunk, int dk, int dv);
};
constexpr int kDeltaChunk = 64;

// The chunked form over T tokens, chunks of kDeltaChunk (the last may be shorter).
void gated_delta_chunked(float* S, int dk, int dv, const DeltaRows& r, int64_t T,
                         DeltaChunkScratch& sc);

}  // namespace hearth::ops
