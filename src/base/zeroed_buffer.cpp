#include "base/zeroed_buffer.h"

#include <sys/mman.h>

#include <cstdlib>
#include <new>

namespace hearth {

namespace {
// Below this, calloc (a heap block; zeroing it is cheap) rather than a mapping of its own.
constexpr size_t kMapMin = size_t(64) << 10;
}  // namespace

ZeroedBuffer::ZeroedBuffer(size_t bytes) : n_(bytes) {
  if (bytes == 0) return;
  if (bytes >= kMapMin) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    p_ = static_cast<uint8_t*>(p);
    mapped_ = true;
  } else {
    p_ = static_cast<uint8_t*>(std::calloc(bytes, 1));
    if (!p_) throw std::bad_alloc();
  }
}

ZeroedBuffer& ZeroedBuffer::operator=(ZeroedBuffer&& o) noexcept {
  if (this != &o) {
    release();
    p_ = o.p_;
    n_ = o.n_;
    mapped_ = o.mapped_;
    o.p_ = nullptr;
    o.n_ = 0;
  }
  return *this;
}

void ZeroedBuffer::release() {
  if (!p_) return;
  if (mapped_)
    munmap(p_, n_);
  else
    std::free(p_);
  p_ = nullptr;
  n_ = 0;
}

}  // namespace hearth
