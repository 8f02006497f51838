// The per-layer cache kinds and the one allocator (models/cache.h): the bytes the scheduler is
// told are the bytes a context allocates, for every kind; rings, shared layers and recurrent
// state behave as declared.
#include "models/cache.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "models/model.h"

namespace hearth::models {
namespace {

CacheLayout every_kind() {
  return {
      LayerCache::full(2, 64, 64),      // 0
      LayerCache::ring(2, 32, 32, 16),  // 1: sliding window 16
      LayerCache::shared(0),            // 2: reads layer 0
      LayerCache::latent(576 * 2),      // 3: 576 F16 values per position
      LayerCache::recurrent(1000),      // 4
      LayerCache::none(),               // 5
  };
}

TEST(CacheLayout, BytesAreWhatIsAllocatedForEveryKind) {
  const CacheLayout L = every_kind();
  for (int n_ctx : {8, 100, 4096}) {
    ContextParams p;
    p.n_ctx = n_ctx;
    p.n_batch = 32;
    const size_t full = size_t(n_ctx) * 2 * (2 * 64 * 2);  // K and V, F16
    const int64_t R = 16 + 32;                             // window + n_batch
    const size_t ring_rows = n_ctx > 2 * R ? size_t(2 * R) : size_t(n_ctx);
    const size_t ring = ring_rows * 2 * (2 * 32 * 2);
    const size_t latent = size_t(n_ctx) * 576 * 2;
    const size_t rec = 1000 * sizeof(float);
    EXPECT_EQ(sequence_bytes(L, p), full + ring + latent + rec) << n_ctx;

    CacheStore s;
    ASSERT_TRUE(s.init(L, p).is_ok());
    EXPECT_EQ(s.k_row_bytes(0), size_t(2 * 64 * 2));
    EXPECT_EQ(s.k_row_bytes(2), s.k_row_bytes(0));  // shared: the source's rows
    EXPECT_EQ(s.k(2, 0), s.k(0, 0));
    EXPECT_EQ(s.k_row_bytes(3), size_t(576 * 2));
    EXPECT_EQ(s.ring(1, 0), n_ctx > 2 * R ? R : 0);
    EXPECT_TRUE(s.has_recurrent());
  }
}

TEST(CacheLayout, ReservingChangesOnlyThatSequence) {
  ContextParams p;
  p.n_ctx = 40;
  p.n_seq = 2;
  p.n_batch = 8;
  CacheStore s;
  ASSERT_TRUE(s.init(every_kind(), p).is_ok());
  ASSERT_TRUE(s.reserve(1, 1024).is_ok());
  EXPECT_EQ(s.capacity(0), 40);
  EXPECT_EQ(s.capacity(1), 1024);
  EXPECT_EQ(s.ring(1, 0), 0);       // 40 positions: fewer than a ring's 2 x (16 + 8) rows
  EXPECT_EQ(s.ring(1, 1), 16 + 8);  // 1024: a ring of window + n_batch
  EXPECT_FALSE(s.reserve(2, 10).is_ok());
  EXPECT_FALSE(s.reserve(0, 0).is_ok());
}

// Resident anonymous kB from /proc/self/status.
long rss_anon_kb() {
  std::ifstream f("/proc/self/status");
  std::string k, unit;
  long v = -1;
  while (f >> k) {
    if (k == "RssAnon:") {
      f >> v;
      return v;
    }
    std::getline(f, unit);
  }
  return -1;
}

// A slot's window costs memory only as positions are written: growing 8 sequences to 32k
// positions (1 GiB of K/V) must not touch it. Zeroing it up front stalled every request the
// runner was serving while a new one was admitted (issue #19).
TEST(CacheLayout, ReservedWindowsAreNotTouchedUntilWritten) {
  ContextParams p;
  p.n_ctx = 16;
  p.n_seq = 8;
  p.n_batch = 8;
  CacheStore s;
  const CacheLayout L(4, LayerCache::full(2, 64, 64));  // 512 bytes of K and of V per position
  ASSERT_TRUE(s.init(L, p).is_ok());
  const long before = rss_anon_kb();
  ASSERT_GT(before, 0);
  for (int q = 0; q < 8; ++q) ASSERT_TRUE(s.reserve(q, 32768).is_ok());
  const long grown = rss_anon_kb() - before;
  EXPECT_LT(grown, 8 * 1024) << "reserving 1 GiB of windows made " << grown << " kB resident";
  // Written rows read back; unwritten ones read as zero.
  s.k(0, 7)[size_t(32767) * s.k_row_bytes(0)] = 42;
  EXPECT_EQ(s.k(0, 7)[size_t(32767) * s.k_row_bytes(0)], 42);
  EXPECT_EQ(s.v(3, 5)[12345], 0);
}

TEST(CacheLayout, RingsAndRecurrentStateLimitWhatCanBeReused) {
  ContextParams p;
  p.n_ctx = 1024;
  p.n_batch = 8;
  CacheStore ring;
  ASSERT_TRUE(ring.init({LayerCache::ring(1, 32, 32, 16)}, p).is_ok());
  const int64_t R = 16 + 8;
  EXPECT_EQ(ring.reusable_prefix(0, 20, 10), 10);       // nothing overwritten yet
  EXPECT_EQ(ring.reusable_prefix(0, 100, 99), 99);      // the last window is still there
  EXPECT_EQ(ring.reusable_prefix(0, 100, 100 - R), 0);  // its window was overwritten
  CacheStore rec;
  ASSERT_TRUE(rec.init({LayerCache::recurrent(8)}, p).is_ok());
  EXPECT_EQ(rec.reusable_prefix(0, 50, 50), 50);
  EXPECT_EQ(rec.reusable_prefix(0, 50, 49), 0);  // a state cannot be rewound
}

TEST(CacheLayout, RefusesBadLayouts) {
  EXPECT_FALSE(check_layout({LayerCache::shared(0)}, DType::F16).is_ok());  // not earlier
  EXPECT_FALSE(check_layout({LayerCache::recurrent(4), LayerCache::shared(0)}, DType::F16).is_ok());
  EXPECT_FALSE(check_layout({LayerCache::full(1, 40, 40)}, DType::Q8_0).is_ok());  // 40 % 32
  EXPECT_TRUE(check_layout({LayerCache::full(1, 64, 64)}, DType::Q8_0).is_ok());
  EXPECT_TRUE(check_layout({LayerCache::full(1, 64, 64)}, DType::Q4_0).is_ok());
  EXPECT_FALSE(check_layout({LayerCache::full(1, 64, 64)}, DType::Q4_1).is_ok());  // no KV type
}

}  // namespace
}  // namespace hearth::models
