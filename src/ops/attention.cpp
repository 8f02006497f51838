#include "ops/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/fp16.h"
#include "kernels/kernels.h"

namespace hearth::ops {

void AttnScratch::reserve(int nth, int n_ctx, int head_dim_k, int head_dim_v) {
  scores.resize(nth);
  qconv.resize(nth);
  vrow.resize(nth);
  lanes.resize(nth);
  obuf.resize(nth);
  for (int i = 0; i < nth; ++i) {
    if (obuf[i].size() < size_t(16) * head_dim_v) obuf[i].resize(size_t(16) * head_dim_v);
    // A group of up to 16 heads x 16 lanes of the largest head.
    const size_t nl = size_t(16) * 16 * size_t(std::max(head_dim_k, head_dim_v));
    if (lanes[i].size() < nl) lanes[i].resize(nl);
    if (scores[i].size() < size_t(16) * n_ctx) scores[i].resize(size_t(16) * n_ctx);
    // Enough for any activation format of head_dim_k floats (F32 is the largest), or the F16
    // queries of a group of up to 16 heads.
    if (qconv[i].size() < size_t(head_dim_k) * 32 + 64)
      qconv[i].resize(size_t(head_dim_k) * 32 + 64);
    if (int(vrow[i].size()) < head_dim_v) vrow[i].resize(head_dim_v);
  }
  // The tiled path: a block of kTileRows query rows (q, qt, o, mx, l) and one tile of keys (K, V
  // as floats, the transposed scores); tile_keys() keeps a tile's K or V within 4096 floats.
  const size_t need = tile_scratch_floats(head_dim_k, head_dim_v), R = kTileRows;
  tile.resize(nth);
  bounds.resize(nth);
  for (int i = 0; i < nth; ++i) {
    if (tile[i].size() < need) tile[i].resize(need);
    if (bounds[i].size() < 2 * R) bounds[i].resize(2 * R);
  }
}

size_t tile_scratch_floats(int head_dim_k, int head_dim_v) {
  // q, qt and o of a block (kTileRows x head), mx and l, the K and V tile as floats (tile_keys()
  // keeps each within max(4096, 16 x head) floats) and attn_tile's scratch (the transposed
  // scores and 16 keys of K transposed).
  const size_t hmax = size_t(std::max(head_dim_k, head_dim_v)), R = kTileRows;
  const size_t kv = std::max<size_t>(4096, 16 * hmax);
  return 3 * R * hmax + 2 * R + 2 * kv + (kv / 16 + 1) * R + 16 * hmax + 64;
}

size_t kv_row_bytes(DType t, int64_t n) {
  return row_bytes(t, n);
}

void kv_store(DType t, const float* src, uint8_t* dst, int64_t n) {
  // Q4_0 is no activation format, so the kernel tables have no entry: the reference quantizer
  // (llama.cpp's KV cache uses its reference Q4_0 quantizer as well).
  const auto f = kernels::active().quantize_row[uint32_t(t)];
  if (f)
    f(src, dst, n);
  else
    type_traits(t).quantize_row(src, dst, n);
}

namespace {

// The positions [first, last] a query at `pos` attends to.
void key_range(const AttnParams& p, int64_t pos0, int64_t n_tokens, int64_t pos, int64_t& first,
               int64_t& last) {
  if (!p.causal) {  // every row up to the call's last
    first = 0;
    last = pos0 + n_tokens - 1;
    if (p.window > 0) {  // symmetric: |j - pos| <= window / 2
      first = std::max<int64_t>(first, pos - p.window / 2);
      last = std::min<int64_t>(last, pos + p.window / 2);
    }
    return;
  }
  first = p.window > 0 ? std::max<int64_t>(0, pos - p.window + 1) : 0;
  if (p.chunk > 0) first = std::max<int64_t>(first, pos / p.chunk * p.chunk);
  last = pos;
}

inline void prefetch(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i += 64) __builtin_prefetch(p + i);
}

// Keys per tile: K or V of a tile within 4096 floats (16 KiB: both stay in L1), 16 to 64.
int tile_keys(int hd, int hdv) {
  return std::clamp(4096 / std::max(hd, hdv), 16, 64) & ~15;
}

// Flash-attention style: per (block of query tokens, KV head), the rows are the block's tokens x
// the group's heads, and the K/V rows they attend to are streamed once per block in tiles,
// dequantized to floats, with a running max and sum per row (KernelTable::attn_tile). Scores
// therefore see Q as the cache's dot product would (rounded to F16, or through Q8_0 for a
// quantized cache, as llama.cpp does), but the softmax is summed per tile, in a different order
// from llama.cpp's non-flash path (see docs/testing.md).
void attention_tiled(int ith, int nth, const AttnParams& p, const float* q, int64_t q_stride,
                     int64_t n_tokens, int64_t pos0, const uint8_t* k_cache, const uint8_t* v_cache,
                     float* out, int64_t out_stride, AttnScratch& scratch) {
  const auto& kt = kernels::active();
  const TypeTraits& tt = type_traits(p.kv_type);
  const int hd = p.head_dim_k, hdv = p.head_dim_v;
  const int group = p.n_head / p.n_head_kv;
  const size_t k_row = row_bytes(tt, int64_t(p.n_head_kv) * hd);
  const size_t v_row = row_bytes(tt, int64_t(p.n_head_kv) * hdv);
  const size_t k_head = row_bytes(tt, hd), v_head = row_bytes(tt, hdv);
  const auto to_f32 = kt.to_f32[uint32_t(p.kv_type)];
  // Q as the cache's dot product sees it: F16 for an F16 cache, Q8_0 for the quantized ones.
  const bool q_f16 = p.kv_type == DType::F16;
  const bool q_q8 = tt.quantized;
  const DType q_as = q_f16 ? DType::F16 : DType::Q8_0;
  const auto q_round = kt.quantize_row[uint32_t(q_as)];
  const auto q_back = kt.to_f32[uint32_t(q_as)];

  const int tpb = std::max(1, kTileRows / group);  // tokens per block
  const int m_max = tpb * group, mp_max = (m_max + 15) & ~15;
  const int nt = tile_keys(hd, hdv);
  const size_t hmax = size_t(std::max(hd, hdv));
  float* base = scratch.tile[ith].data();
  float* qr = base;
  float* qt = qr + size_t(mp_max) * hmax;
  float* o = qt + size_t(mp_max) * hmax;
  float* mx = o + size_t(mp_max) * hmax;
  float* l = mx + mp_max;
  float* kf = l + mp_max;
  float* vf = kf + size_t(nt) * hd;
  float* st = vf + size_t(nt) * hdv;
  int32_t* lo = scratch.bounds[ith].data();
  int32_t* hi = lo + kTileRows;
  auto* qc = scratch.qconv[ith].data();

  // The block of tokens [t0, t1) for KV head hk: its rows' queries and a fresh running state;
  // returns the keys [F, L] any row sees.
  auto begin_block = [&](int64_t t0, int64_t t1, int hk, int64_t& F, int64_t& L) {
    const int m = int(t1 - t0) * group, mp = (m + 15) & ~15;
    F = INT64_MAX;
    L = -1;
    for (int64_t t = t0; t < t1; ++t) {
      int64_t f, e;
      key_range(p, pos0, n_tokens, pos0 + t, f, e);
      F = std::min(F, f);
      L = std::max(L, e);
    }
    for (int64_t t = t0; t < t1; ++t)
      for (int i = 0; i < group; ++i) {
        const int r = int(t - t0) * group + i;
        const float* src = q + t * q_stride + int64_t(hk * group + i) * hd;
        float* dst = qr + size_t(r) * hd;
        if (q_q8 || q_f16) {  // through the level's conversions (fp16's in software cost ~8%
                              // of a 512-token prefill)
          q_round(src, qc, hd);
          q_back(qc, dst, hd);
          for (int d = 0; d < hd; ++d) dst[d] *= p.scale;
        } else {
          for (int d = 0; d < hd; ++d) dst[d] = src[d] * p.scale;
        }
        for (int d = 0; d < hd; ++d) qt[size_t(d) * mp + r] = dst[d];
        mx[r] = -std::numeric_limits<float>::infinity();
        l[r] = 0;
        std::fill_n(o + size_t(r) * hdv, hdv, 0.0f);
      }
    for (int d = 0; d < hd; ++d) std::fill(qt + size_t(d) * mp + m, qt + size_t(d) * mp + mp, 0.0f);
  };
  // Keys [j_begin, j_end] of the block's range [F, L], tile by tile.
  auto run_tiles = [&](int64_t t0, int64_t t1, int hk, int64_t F, int64_t j_begin, int64_t j_end) {
    const int m = int(t1 - t0) * group;
    const auto from_cache = m <= kernels::KernelTable::kAttnCacheRows
                                ? kt.attn_tile_cache[uint32_t(p.kv_type)]
                                : nullptr;
    // Positions F..L sit at consecutive rows from row0 (a ring keeps any window contiguous).
    const int64_t row0 = p.ring > 0 ? F % p.ring : F;
    for (int64_t j0 = j_begin; j0 <= j_end; j0 += nt) {
      const int n = int(std::min<int64_t>(nt, j_end - j0 + 1)), np = (n + 15) & ~15;
      bool any = false;
      for (int64_t t = t0; t < t1; ++t) {
        int64_t f, e;
        key_range(p, pos0, n_tokens, pos0 + t, f, e);
        const int a = int(std::clamp<int64_t>(f - j0, 0, n));
        const int b = int(std::clamp<int64_t>(e - j0 + 1, 0, n));
        for (int i = 0; i < group; ++i) {
          const int r = int(t - t0) * group + i;
          lo[r] = a < b ? a : 0;
          hi[r] = a < b ? b : 0;
        }
        any |= a < b;
      }
      if (!any) continue;
      const size_t row = size_t(row0 + (j0 - F));
      // The next tile's rows, fetched while this one is converted: one head's slice of each row
      // is a short piece every k_row bytes, which the hardware prefetchers follow poorly (decode
      // at depth streams the whole cache from memory).
      const int n_next = int(std::clamp<int64_t>(j_end - (j0 + nt) + 1, 0, nt));
      for (int j = 0; j < n_next; ++j) {
        prefetch(k_cache + (row + size_t(nt + j)) * k_row + size_t(hk) * k_head, k_head);
        prefetch(v_cache + (row + size_t(nt + j)) * v_row + size_t(hk) * v_head, v_head);
      }
      if (from_cache) {  // decode: no F32 copy of the tile
        from_cache(hd, hdv, m, qr, k_cache + row * k_row + size_t(hk) * k_head, k_row,
                   v_cache + row * v_row + size_t(hk) * v_head, v_row, n, lo, hi, p.softcap, mx, l,
                   o, st);
        continue;
      }
      for (int j = 0; j < n; ++j) {
        to_f32(k_cache + (row + size_t(j)) * k_row + size_t(hk) * k_head, kf + size_t(j) * hd, hd);
        to_f32(v_cache + (row + size_t(j)) * v_row + size_t(hk) * v_head, vf + size_t(j) * hdv,
               hdv);
      }
      std::fill(kf + size_t(n) * hd, kf + size_t(np) * hd, 0.0f);
      std::fill(vf + size_t(n) * hdv, vf + size_t(np) * hdv, 0.0f);
      kt.attn_tile(hd, hdv, m, qr, qt, kf, vf, n, lo, hi, p.softcap, mx, l, o, st);
    }
  };

  const int64_t n_blocks = (n_tokens + tpb - 1) / tpb;
  const int64_t n_items = n_blocks * p.n_head_kv;
  // Decode with fewer (block, KV head) items than threads (one sequence of a model with one or
  // few KV heads): the keys of each item are split across threads, each keeps its own running
  // (max, sum, out), and the item's first thread merges them. Two barriers, so only where the
  // keys are long enough to pay for them; the merge sums in another order than one pass, so
  // there decode no longer equals prefill bit for bit.
  if (p.pool && n_items < nth && nth / n_items >= 2 && n_blocks == 1) {
    int64_t F0, L0;
    key_range(p, pos0, n_tokens, pos0, F0, L0);
    if (L0 - F0 + 1 >= int64_t(4) * nt * (nth / n_items)) {
      const int parts = int(nth / n_items);
      const int64_t item = ith % n_items, part = ith / n_items;
      const int hk = int(item);
      const int m = int(n_tokens) * group;
      if (part < parts) {
        int64_t F, L;
        begin_block(0, n_tokens, hk, F, L);
        const int64_t per = ((L - F + 1 + parts - 1) / parts + nt - 1) / nt * nt;
        const int64_t jb = F + part * per, je = std::min(L, jb + per - 1);
        if (jb <= je) run_tiles(0, n_tokens, hk, F, jb, je);
      }
      p.pool->barrier();
      if (part == 0) {
        for (int r = 0; r < m; ++r) {
          float M = -std::numeric_limits<float>::infinity();
          for (int q2 = 0; q2 < parts; ++q2) {
            const float* b2 = scratch.tile[size_t(item + q2 * n_items)].data();
            M = std::max(M, b2[size_t(3) * mp_max * hmax + size_t(r)]);
          }
          float* dst = out + (r / group) * out_stride + int64_t(hk * group + r % group) * hdv;
          std::fill_n(dst, hdv, 0.0f);
          double sum = 0;
          for (int q2 = 0; q2 < parts; ++q2) {
            const float* b2 = scratch.tile[size_t(item + q2 * n_items)].data();
            const float mxq = b2[size_t(3) * mp_max * hmax + size_t(r)];
            const float lq = b2[size_t(3) * mp_max * hmax + size_t(mp_max) + size_t(r)];
            if (lq == 0) continue;  // this share saw no keys
            const float w = std::exp(mxq - M);
            sum += double(lq) * w;
            const float* oq = b2 + size_t(2) * mp_max * hmax + size_t(r) * hdv;
            for (int d = 0; d < hdv; ++d) dst[d] += w * oq[d];
          }
          const float inv = sum > 0 ? float(1.0 / sum) : 0.0f;
          for (int d = 0; d < hdv; ++d) dst[d] *= inv;
        }
      }
      p.pool->barrier();  // the shares stay in the threads' scratch until merged
      return;
    }
  }

  for (int64_t item = ith; item < n_items; item += nth) {
    // Later blocks see more keys: blocks are dealt from the end so both threads finish together.
    const int64_t blk = n_blocks - 1 - item / p.n_head_kv;
    const int hk = int(item % p.n_head_kv);
    const int64_t t0 = blk * tpb, t1 = std::min(n_tokens, t0 + tpb);
    int64_t F, L;
    begin_block(t0, t1, hk, F, L);
    run_tiles(t0, t1, hk, F, F, L);
    for (int64_t t = t0; t < t1; ++t)
      for (int i = 0; i < group; ++i) {
        const int r = int(t - t0) * group + i;
        const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
        float* dst = out + t * out_stride + int64_t(hk * group + i) * hdv;
        for (int d = 0; d < hdv; ++d) dst[d] = o[size_t(r) * hdv + d] * inv;
      }
  }
}

}  // namespace

bool attention_tiled_supported(const AttnParams& p) {
  const auto& kt = kernels::active();
  return !p.exact && kt.attn_tile && kt.to_f32[uint32_t(p.kv_type)] && p.head_dim_k % 16 == 0 &&
         p.head_dim_v % 16 == 0 && p.n_head / p.n_head_kv <= kTileRows;
}

void attention_in_run(int ith, int nth, const AttnParams& p, const float* q, int64_t q_stride,
                      int64_t n_tokens, int64_t pos0, const uint8_t* k_cache,
                      const uint8_t* v_cache, float* out, int64_t out_stride,
                      AttnScratch& scratch) {
  if (attention_tiled_supported(p)) {
    attention_tiled(ith, nth, p, q, q_stride, n_tokens, pos0, k_cache, v_cache, out, out_stride,
                    scratch);
    return;
  }
  const auto& kt = kernels::active();
  const TypeTraits& cache_tt = type_traits(p.kv_type);
  // Q is converted to the cache's activation format; for an F16 cache that is F16 (llama.cpp
  // rounds Q to F16 for K·Q), whatever F16 weights use.
  const bool f16 = p.kv_type == DType::F16;
  const DType q_type = f16 ? DType::F16 : cache_tt.vec_dot_type;
  const auto q_convert = kt.quantize_row[uint32_t(q_type)];
  const auto dot = f16 ? kt.dot_f16 : kt.vec_dot[uint32_t(p.kv_type)];
  const size_t k_row = row_bytes(cache_tt, int64_t(p.n_head_kv) * p.head_dim_k);
  const size_t v_row = row_bytes(cache_tt, int64_t(p.n_head_kv) * p.head_dim_v);
  const size_t k_head = row_bytes(cache_tt, p.head_dim_k);
  const size_t v_head = row_bytes(cache_tt, p.head_dim_v);
  const int group = p.n_head / p.n_head_kv;

  float* scores = scratch.scores[ith].data();
  uint8_t* qc = scratch.qconv[ith].data();
  float* vtmp = scratch.vrow[ith].data();

  // F16 cache: one kernel call per (token, KV head) serves the group of query heads sharing it.
  // Where consecutive tokens attend to the same keys (bidirectional attention, as encoders use),
  // up to 16 / group of them go into one call as one larger group, so each key and value row is
  // converted once for all of them instead of once per token: prefill of an encoder is then
  // bound by FMAs, not conversions. Heads are independent in the kernel, so each token's result
  // is bit-identical either way.
  if (f16 && kt.attn_f16 && p.head_dim_k == p.head_dim_v && p.head_dim_k % 16 == 0 &&
      p.head_dim_k <= 256 && group <= 16) {
    const int hd = p.head_dim_k;
    auto* q16 = reinterpret_cast<uint16_t*>(qc);
    const int64_t per_call = p.causal ? 1 : std::max(1, 16 / group);
    const int64_t n_blocks = (n_tokens + per_call - 1) / per_call;
    const int64_t n_items = n_blocks * p.n_head_kv;
    float* obuf = scratch.obuf[ith].data();
    for (int64_t item = ith; item < n_items; item += nth) {
      const int64_t blk = item / p.n_head_kv;
      const int hk = int(item % p.n_head_kv);
      const int64_t t_end = std::min(n_tokens, (blk + 1) * per_call);
      for (int64_t t0 = blk * per_call; t0 < t_end;) {
        int64_t first, last;
        key_range(p, pos0, n_tokens, pos0 + t0, first, last);
        int64_t t1 = t0 + 1;  // the run of tokens with the same keys (a window moves them)
        for (int64_t f, l; t1 < t_end; ++t1) {
          key_range(p, pos0, n_tokens, pos0 + t1, f, l);
          if (f != first || l != last) break;
        }
        const int64_t row0 = p.ring > 0 ? first % p.ring : first;
        for (int64_t t = t0; t < t1; ++t)
          for (int i = 0; i < group; ++i)
            q_convert(q + t * q_stride + int64_t(hk * group + i) * hd,
                      q16 + ((t - t0) * group + i) * hd, hd);
        const bool direct = t1 - t0 == 1;
        float* dst = direct ? out + t0 * out_stride + int64_t(hk * group) * hd : obuf;
        kt.attn_f16(hd, int((t1 - t0) * group), q16, k_cache + size_t(row0) * k_row + hk * k_head,
                    k_row, v_cache + size_t(row0) * v_row + hk * v_head, v_row, last - first + 1,
                    first, p.scale, p.softcap, scores, scratch.lanes[ith].data(), dst);
        if (!direct)
          for (int64_t t = t0; t < t1; ++t)
            std::copy_n(obuf + (t - t0) * group * hd, group * hd,
                        out + t * out_stride + int64_t(hk * group) * hd);
        t0 = t1;
      }
    }
    return;
  }

  // Items are dealt round-robin: later tokens attend to more keys, so contiguous ranges would
  // leave one thread waiting at the barrier.
  const int64_t n_items = n_tokens * p.n_head;
  for (int64_t item = ith; item < n_items; item += nth) {
    const int64_t t = item / p.n_head;
    const int h = int(item % p.n_head);
    const int hk = h / group;
    int64_t first, last;
    key_range(p, pos0, n_tokens, pos0 + t, first, last);
    // Rows first..last sit at row (j - first) + row0 (ring: see AttnParams::ring); `scores` is
    // indexed by position.
    const int64_t shift = (p.ring > 0 ? first % p.ring : first) - first;
    q_convert(q + t * q_stride + int64_t(h) * p.head_dim_k, qc, p.head_dim_k);

    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = first; j <= last; ++j) {
      float s = dot(p.head_dim_k, k_cache + size_t(j + shift) * k_row + hk * k_head, qc) * p.scale;
      if (p.softcap > 0) s = p.softcap * std::tanh(s / p.softcap);
      scores[j] = s;
      mx = std::max(mx, s);
    }
    double sum = 0;
    for (int64_t j = first; j <= last; ++j) {
      const float ex = std::exp(scores[j] - mx);
      scores[j] = ex;
      sum += ex;
    }
    const float inv = float(1.0 / sum);

    float* o = out + t * out_stride + int64_t(h) * p.head_dim_v;
    for (int d = 0; d < p.head_dim_v; ++d) o[d] = 0;
    if (p.kv_type == DType::F16) {
      for (int64_t j = first; j <= last; ++j) {
        const float w = round_fp16(scores[j] * inv);
        const uint16_t* vr =
            reinterpret_cast<const uint16_t*>(v_cache + size_t(j + shift) * v_row + hk * v_head);
        kt.mad_f16(p.head_dim_v, o, vr, w);
      }
    } else {
      for (int64_t j = first; j <= last; ++j) {
        const float w = scores[j] * inv;
        cache_tt.dequantize_row(v_cache + size_t(j + shift) * v_row + hk * v_head, vtmp,
                                p.head_dim_v);
        for (int d = 0; d < p.head_dim_v; ++d) o[d] += w * vtmp[d];
      }
    }
  }
}

}  // namespace hearth::ops
