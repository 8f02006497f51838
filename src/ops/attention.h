// ops/attention.h — causal grouped-query attention over one sequence's KV cache.
//
// The cache of a layer holds one row per position: K (n_head_kv * head_dim_k elements) and V
// (n_head_kv * head_dim_v) in the cache type (F16 by default, Q8_0 optional), K after RoPE.
// Scores use the cache type's dot kernel with Q converted to its activation format, and the
// probabilities are rounded to F16 before weighting an F16 V — what llama.cpp's non-flash path
// does, so results match it.
#pragma once

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "quant/types.h"

namespace hearth::ops {

struct AttnParams {
  int n_head = 0, n_head_kv = 0;
  int head_dim_k = 0, head_dim_v = 0;
  float scale = 1;    // applied to Q·K
  float softcap = 0;  // 0: off; else s = softcap * tanh(s / softcap)
  // 0: no window. Causal: attend to positions > pos - window. Bidirectional: to positions
  // within window / 2 on either side of pos (llama.cpp's symmetric window, EmbeddingGemma).
  int window = 0;
  int chunk = 0;  // 0: off; else attend only within pos's chunk (Llama 4: pos / chunk * chunk)
  // 0: the cache holds position j at row j. Else a sliding layer's ring of `ring` rows, each
  // written twice (rows j % ring and j % ring + ring), so any window of at most `ring`
  // positions is contiguous from row first % ring.
  int64_t ring = 0;
  // false: bidirectional (encoders): every token of the call attends to every row up to
  // pos0 + n_tokens - 1 (within the window, if any), not only to those up to its own position.
  bool causal = true;
  DType kv_type = DType::F16;
  // F16 cache only: llama.cpp's non-flash summation order (one attn_f16 call per token and KV
  // head; logits match llama.cpp's bit for bit) instead of the tiled online softmax.
  bool exact = false;
  // Set: decode of a block with fewer KV heads than threads splits its keys across the threads
  // (two pool barriers inside attention_in_run, so every thread of the run must call it).
  ThreadPool* pool = nullptr;
};

// Query rows (tokens x heads of a group) per block of the tiled path: each block converts the K/V
// rows it sees once, so larger blocks convert less (128 against 64: one layer of 512 queries at
// depth 4096, 1 thread, 12% faster on a Zen 5, 3% at the AVX2 level).
constexpr int kTileRows = 128;

// Per-thread scratch, sized once for a context length.
struct AttnScratch {
  std::vector<std::vector<float>> scores;    // [nth][16 * n_ctx] (a group of heads)
  std::vector<std::vector<uint8_t>> qconv;   // [nth][converted q head]
  std::vector<std::vector<float>> vrow;      // [nth][head_dim_v]
  std::vector<std::vector<float>> lanes;     // [nth][16 heads x 16 lanes x head_dim]
  std::vector<std::vector<float>> obuf;      // [nth][16 heads x head_dim_v] (tokens sharing keys)
  std::vector<std::vector<float>> tile;      // [nth][the tiled path's block and tile]
  std::vector<std::vector<int32_t>> bounds;  // [nth][2 x kTileRows] (keys each row sees in a tile)
  void reserve(int nth, int n_ctx, int head_dim_k, int head_dim_v);
};

// Floats of the tiled path's per-thread scratch (AttnScratch::tile) for these head sizes.
size_t tile_scratch_floats(int head_dim_k, int head_dim_v);

// Bytes of one cache row for `n` elements of the cache type.
size_t kv_row_bytes(DType t, int64_t n);
// Converts n floats into the cache type at dst.
void kv_store(DType t, const float* src, uint8_t* dst, int64_t n);

// Whether attention_in_run takes the tiled (flash-attention style) path for these parameters.
bool attention_tiled_supported(const AttnParams& p);

// Tokens at positions pos0 .. pos0+n_tokens-1 of one sequence; the cache already holds them.
// q: (n_tokens, n_head * head_dim_k), q_stride floats between tokens.
// out: (n_tokens, n_head * head_dim_v), out_stride floats between tokens.
// Call from inside pool.run (work is split by (token, head)); ends without a barrier.
void attention_in_run(int ith, int nth, const AttnParams& p, const float* q, int64_t q_stride,
                      int64_t n_tokens, int64_t pos0, const uint8_t* k_cache,
                      const uint8_t* v_cache, float* out, int64_t out_stride, AttnScratch& scratch);

}  // namespace hearth::ops
