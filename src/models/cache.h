// models/cache.h — what each layer keeps between forward calls, and the one allocator for it.
//
// An architecture declares a LayerCache per layer from metadata alone (models/arch.h); the same
// declaration sizes a context's buffers (CacheStore), a sequence's re-reservation and the
// scheduler's memory estimate (sequence_bytes), so the three cannot disagree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/zeroed_buffer.h"
#include "quant/types.h"

namespace hearth::models {

struct ContextParams;

enum class CacheKind {
  kNone,       // keeps nothing (encoders; layers without attention)
  kFull,       // K and V rows for every position of the context
  kRing,       // a sliding-window layer: a ring of recent positions (see ring_rows)
  kShared,     // reads the cache of an earlier layer (`source`), keeps none of its own
  kLatent,     // one compressed row of `latent_bytes` per position (MLA-style attention)
  kRecurrent,  // a fixed-size state per sequence, whatever the context length (Gated DeltaNet)
};

struct LayerCache {
  CacheKind kind = CacheKind::kNone;
  int64_t n_head_kv = 0;  // kFull / kRing: KV heads
  int64_t head_k = 0;     // and their K and V head sizes
  int64_t head_v = 0;
  int window = 0;           // kRing: positions a query attends back (including itself)
  int source = -1;          // kShared: the layer whose cache is read
  size_t latent_bytes = 0;  // kLatent: bytes per position
  size_t state_floats = 0;  // kRecurrent: floats of state per sequence

  static LayerCache none() { return {}; }
  static LayerCache full(int64_t n_head_kv, int64_t head_k, int64_t head_v);
  static LayerCache ring(int64_t n_head_kv, int64_t head_k, int64_t head_v, int window);
  static LayerCache shared(int source);
  static LayerCache latent(size_t bytes_per_position);
  static LayerCache recurrent(size_t floats);
  bool has_kv_rows() const { return kind == CacheKind::kFull || kind == CacheKind::kRing; }
};

using CacheLayout = std::vector<LayerCache>;

// A ring layer keeps R = window + n_batch positions, each written twice (rows j % R and
// j % R + R) so every window of a batch is contiguous; used only once 2R rows are fewer than the
// context. 0 when the layer keeps every position.
int64_t ring_rows(const LayerCache& c, int n_ctx, int n_batch);
// Rows of KV (or latent) a layer keeps for one sequence of n_ctx positions.
int64_t kv_rows(const LayerCache& c, int n_ctx, int n_batch);
// Bytes one sequence of p.n_ctx positions needs for the whole layout: what Model::state_bytes
// and the scheduler's estimate report, and what CacheStore allocates.
size_t sequence_bytes(const CacheLayout& layout, const ContextParams& p);
// Shared layers name an earlier layer with rows of its own; head sizes fit the cache type.
Status check_layout(const CacheLayout& layout, DType kv_type);

// "f16", "q8_0", "q4_0" or "f32" (any case): the KV cache types hearth supports.
Result<DType> parse_kv_type(std::string_view s);

// The buffers of a context: per [layer][sequence] KV rows or state, allocated from the layout.
class CacheStore {
 public:
  Status init(const CacheLayout& layout, const ContextParams& p);
  // Gives `seq` room for n_ctx positions (drops what it held when the size changes).
  Status reserve(int seq, int n_ctx);
  int capacity(int seq) const { return seq >= 0 && seq < n_seq_ ? cap_[size_t(seq)] : 0; }
  // Ring size in use for (layer, seq) (its source's, for a shared layer): 0 when the layer keeps
  // every position.
  int64_t ring(int layer, int seq) const { return ring_[idx(resolve(layer), seq)]; }
  // KV rows of a layer (of its source, for a shared layer).
  uint8_t* k(int layer, int seq) { return k_[idx(resolve(layer), seq)].data(); }
  uint8_t* v(int layer, int seq) { return v_[idx(resolve(layer), seq)].data(); }
  size_t k_row_bytes(int layer) const { return k_row_[size_t(resolve(layer))]; }
  size_t v_row_bytes(int layer) const { return v_row_[size_t(resolve(layer))]; }
  // Recurrent state of a layer (state_floats of the layout).
  float* state(int layer, int seq) { return state_[idx(layer, seq)].data(); }
  bool has_recurrent() const { return has_recurrent_; }
  // The position sequence `seq`'s recurrent state continues at (only 0 or exactly this may come
  // next: the state cannot be rewound).
  int64_t& recurrent_next(int seq) { return rec_next_[size_t(seq)]; }
  // The longest prefix (<= want) of n_past held positions that can be kept and continued.
  int64_t reusable_prefix(int seq, int64_t n_past, int64_t want) const;
  const CacheLayout& layout() const { return layout_; }

 private:
  size_t idx(int layer, int seq) const { return size_t(layer) * size_t(n_seq_) + size_t(seq); }
  int resolve(int layer) const {
    const auto& c = layout_[size_t(layer)];
    return c.kind == CacheKind::kShared ? c.source : layer;
  }
  CacheLayout layout_;
  DType kv_type_ = DType::F16;
  int n_seq_ = 0, n_batch_ = 0;
  std::vector<size_t> k_row_, v_row_;  // bytes of one row, per layer
  std::vector<ZeroedBuffer> k_, v_;    // pages appear as positions are written
  std::vector<std::vector<float>> state_;
  std::vector<int64_t> ring_, rec_next_;
  std::vector<int> cap_;
  bool has_recurrent_ = false;
};

}  // namespace hearth::models
