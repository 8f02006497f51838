#include "models/cache.h"

#include <cctype>
#include <new>
#include <string>

#include "models/model.h"

namespace hearth::models {

LayerCache LayerCache::full(int64_t n_head_kv, int64_t head_k, int64_t head_v) {
  LayerCache c;
  c.kind = CacheKind::kFull;
  c.n_head_kv = n_head_kv;
  c.head_k = head_k;
  c.head_v = head_v;
  return c;
}

LayerCache LayerCache::ring(int64_t n_head_kv, int64_t head_k, int64_t head_v, int window) {
  LayerCache c = full(n_head_kv, head_k, head_v);
  c.kind = CacheKind::kRing;
  c.window = window;
  return c;
}

LayerCache LayerCache::shared(int source) {
  LayerCache c;
  c.kind = CacheKind::kShared;
  c.source = source;
  return c;
}

LayerCache LayerCache::latent(size_t bytes_per_position) {
  LayerCache c;
  c.kind = CacheKind::kLatent;
  c.latent_bytes = bytes_per_position;
  return c;
}

LayerCache LayerCache::recurrent(size_t floats) {
  LayerCache c;
  c.kind = CacheKind::kRecurrent;
  c.state_floats = floats;
  return c;
}

int64_t ring_rows(const LayerCache& c, int n_ctx, int n_batch) {
  if (c.kind != CacheKind::kRing || c.window <= 0) return 0;
  const int64_t R = int64_t(c.window) + n_batch;
  return int64_t(n_ctx) > 2 * R ? R : 0;
}

int64_t kv_rows(const LayerCache& c, int n_ctx, int n_batch) {
  switch (c.kind) {
    case CacheKind::kFull:
    case CacheKind::kLatent:
      return n_ctx;
    case CacheKind::kRing: {
      const int64_t R = ring_rows(c, n_ctx, n_batch);
      return R > 0 ? 2 * R : n_ctx;
    }
    default:
      return 0;
  }
}

namespace {
size_t layer_k_row(const LayerCache& c, DType t) {
  if (c.kind == CacheKind::kLatent) return c.latent_bytes;
  return c.has_kv_rows() ? row_bytes(t, c.n_head_kv * c.head_k) : 0;
}
size_t layer_v_row(const LayerCache& c, DType t) {
  return c.has_kv_rows() ? row_bytes(t, c.n_head_kv * c.head_v) : 0;
}
}  // namespace

size_t sequence_bytes(const CacheLayout& layout, const ContextParams& p) {
  size_t bytes = 0;
  for (const auto& c : layout) {
    if (c.kind == CacheKind::kRecurrent) {
      bytes += c.state_floats * sizeof(float);
      continue;
    }
    bytes += size_t(kv_rows(c, p.n_ctx, p.n_batch)) *
             (layer_k_row(c, p.kv_type) + layer_v_row(c, p.kv_type));
  }
  return bytes;
}

Result<DType> parse_kv_type(std::string_view s) {
  std::string l(s);
  for (char& c : l) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (l == "f16") return DType::F16;
  if (l == "q8_0") return DType::Q8_0;
  if (l == "q4_0") return DType::Q4_0;
  if (l == "f32") return DType::F32;
  return invalid_argument("KV cache type must be f16, q8_0, q4_0 or f32 (got '" + l + "')");
}

Status check_layout(const CacheLayout& layout, DType kv_type) {
  const TypeTraits* kvt = find_type(uint32_t(kv_type));
  if (!kvt || (kv_type != DType::F16 && kv_type != DType::Q8_0 && kv_type != DType::Q4_0 &&
               kv_type != DType::F32))
    return invalid_argument("[model] KV cache type must be f16, q8_0, q4_0 or f32");
  for (size_t il = 0; il < layout.size(); ++il) {
    const auto& c = layout[il];
    if (c.kind == CacheKind::kShared) {
      if (c.source < 0 || size_t(c.source) >= il || !layout[size_t(c.source)].has_kv_rows())
        return corrupt("[model] layer " + std::to_string(il) + " shares the cache of layer " +
                       std::to_string(c.source) + ", which is not an earlier layer with its own");
    }
    if (c.has_kv_rows() && (c.head_k % kvt->block_elems || c.head_v % kvt->block_elems))
      return invalid_argument(std::string("[model] head size is not a multiple of the ") +
                              kvt->name + " block size");
  }
  return Status::ok();
}

Status CacheStore::init(const CacheLayout& layout, const ContextParams& p) {
  HEARTH_RETURN_IF_ERROR(check_layout(layout, p.kv_type));
  layout_ = layout;
  kv_type_ = p.kv_type;
  n_seq_ = p.n_seq;
  n_batch_ = p.n_batch;
  const size_t n = layout.size() * size_t(p.n_seq);
  k_row_.clear();
  v_row_.clear();
  for (const auto& c : layout) {
    k_row_.push_back(layer_k_row(c, p.kv_type));
    v_row_.push_back(layer_v_row(c, p.kv_type));
    has_recurrent_ |= c.kind == CacheKind::kRecurrent;
  }
  k_.clear();
  v_.clear();
  k_.resize(n);
  v_.resize(n);
  state_.assign(n, {});
  ring_.assign(n, 0);
  cap_.assign(size_t(p.n_seq), 0);
  rec_next_.assign(size_t(p.n_seq), 0);
  for (size_t il = 0; il < layout.size(); ++il)
    if (layout[il].kind == CacheKind::kRecurrent)
      for (int s = 0; s < p.n_seq; ++s)
        state_[idx(int(il), s)].assign(layout[il].state_floats, 0.0f);
  for (int s = 0; s < p.n_seq; ++s) HEARTH_RETURN_IF_ERROR(reserve(s, p.n_ctx));
  return Status::ok();
}

Status CacheStore::reserve(int seq, int n_ctx) {
  if (seq < 0 || seq >= n_seq_)
    return invalid_argument("[model] sequence " + std::to_string(seq) + " out of range");
  if (n_ctx <= 0) return invalid_argument("[model] n_ctx must be positive");
  if (n_ctx == cap_[size_t(seq)]) return Status::ok();
  for (size_t il = 0; il < layout_.size(); ++il) {
    const auto& c = layout_[il];
    const size_t i = idx(int(il), seq);
    const size_t rows = size_t(kv_rows(c, n_ctx, n_batch_));
    k_[i] = ZeroedBuffer();  // the old window's memory goes first
    v_[i] = ZeroedBuffer();
    try {
      k_[i] = ZeroedBuffer(rows * k_row_[il]);
      v_[i] = ZeroedBuffer(rows * v_row_[il]);
    } catch (const std::bad_alloc&) {
      cap_[size_t(seq)] = 0;
      return Status(StatusCode::kResourceExhausted,
                    "[model] no memory for a KV cache of " + std::to_string(n_ctx) + " positions");
    }
    ring_[i] = ring_rows(c, n_ctx, n_batch_);
  }
  cap_[size_t(seq)] = n_ctx;
  rec_next_[size_t(seq)] = 0;
  return Status::ok();
}

int64_t CacheStore::reusable_prefix(int seq, int64_t n_past, int64_t want) const {
  if (seq < 0 || seq >= n_seq_) return 0;
  // Recurrent state holds exactly n_past positions and cannot be rewound.
  if (has_recurrent_ && want != n_past) return 0;
  for (size_t il = 0; il < layout_.size(); ++il) {
    const int64_t R = ring_[idx(int(il), seq)];
    if (R == 0 || n_past <= R) continue;  // nothing overwritten yet
    // The ring holds positions n_past - R .. n_past - 1; continuing at L needs L - window ..
    // L - 1.
    if (want < n_past - R + layout_[il].window) return 0;
  }
  return want;
}

}  // namespace hearth::models
