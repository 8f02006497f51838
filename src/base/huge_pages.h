// base/huge_pages.h — anonymous memory backed by 2 MiB transparent huge pages.
//
// Streaming weights from huge pages costs fewer TLB misses than from the page cache's small
// folios; bandwidth-bound decode measurably gains (docs/PERFORMANCE.md, "Weight placement").
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace hearth {

// 2 MiB-aligned, zero-filled, MADV_HUGEPAGE; nullptr if the mapping fails.
std::shared_ptr<uint8_t[]> alloc_huge_pages(size_t bytes);

// Hands out 64-byte-aligned pieces of large huge-page chunks, so many weight matrices share 2 MiB
// pages instead of each rounding up to its own (a 16-layer model would waste ~200 MiB).
// Pieces keep their chunk alive. Not thread-safe: used while loading.
class HugeArena {
 public:
  explicit HugeArena(size_t chunk_bytes = size_t(64) << 20) : chunk_bytes_(chunk_bytes) {}
  std::shared_ptr<uint8_t[]> alloc(size_t bytes);

 private:
  size_t chunk_bytes_;
  std::shared_ptr<uint8_t[]> chunk_;
  size_t used_ = 0, cap_ = 0;
};

// Drops the pages wholly inside [p, p + n) of a read-only file mapping from this process (they
// are refetched from the file if touched again), so a copied range does not count twice in RSS.
void release_mapped_range(const void* p, size_t n);

}  // namespace hearth
