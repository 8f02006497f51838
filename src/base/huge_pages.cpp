#include "base/huge_pages.h"

#include <sys/mman.h>
#include <unistd.h>

namespace hearth {

namespace {
constexpr size_t kHuge = size_t(2) << 20;
}

std::shared_ptr<uint8_t[]> alloc_huge_pages(size_t bytes) {
  if (bytes == 0) bytes = 1;
  const size_t len = (bytes + kHuge - 1) / kHuge * kHuge;
  // Over-allocate by one huge page so the start can be aligned, then trim both ends.
  void* raw =
      mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t r = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t a = (r + kHuge - 1) & ~uintptr_t(kHuge - 1);
  if (a > r) munmap(raw, a - r);
  if (r + len + kHuge > a + len)
    munmap(reinterpret_cast<void*>(a + len), r + len + kHuge - (a + len));
  madvise(reinterpret_cast<void*>(a), len, MADV_HUGEPAGE);
  return std::shared_ptr<uint8_t[]>(reinterpret_cast<uint8_t*>(a),
                                    [len](uint8_t* p) { munmap(p, len); });
}

std::shared_ptr<uint8_t[]> HugeArena::alloc(size_t bytes) {
  bytes = (bytes + 63) & ~size_t(63);
  if (bytes > chunk_bytes_ / 2) return alloc_huge_pages(bytes);  // big: its own mapping
  if (!chunk_ || used_ + bytes > cap_) {
    chunk_ = alloc_huge_pages(chunk_bytes_);
    if (!chunk_) return nullptr;
    used_ = 0;
    cap_ = chunk_bytes_;
  }
  std::shared_ptr<uint8_t[]> piece(chunk_, chunk_.get() + used_);  // shares the chunk's lifetime
  used_ += bytes;
  return piece;
}

void release_mapped_range(const void* p, size_t n) {
  const long page = sysconf(_SC_PAGESIZE);
  if (page <= 0) return;
  const uintptr_t b = reinterpret_cast<uintptr_t>(p), e = b + n;
  const uintptr_t ab = (b + uintptr_t(page) - 1) & ~uintptr_t(page - 1);
  const uintptr_t ae = e & ~uintptr_t(page - 1);
  if (ae > ab) madvise(reinterpret_cast<void*>(ab), ae - ab, MADV_DONTNEED);
}

}  // namespace hearth
