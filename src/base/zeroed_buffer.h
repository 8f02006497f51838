// base/zeroed_buffer.h — zero-filled memory whose pages the kernel supplies on first touch.
//
// KV caches are sized for a whole context window but filled one position at a time. Zeroing them
// up front (std::vector) wrote every page of a slot's window when the slot grew — 128 MiB for a
// 1B model at 4096 tokens, on the runner thread, while other requests waited. Anonymous mappings
// cost nothing until a row is written.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hearth {

class ZeroedBuffer {
 public:
  ZeroedBuffer() = default;
  // Throws std::bad_alloc if the memory cannot be mapped.
  explicit ZeroedBuffer(size_t bytes);
  ~ZeroedBuffer() { release(); }
  ZeroedBuffer(ZeroedBuffer&& o) noexcept : p_(o.p_), n_(o.n_), mapped_(o.mapped_) {
    o.p_ = nullptr;
    o.n_ = 0;
  }
  ZeroedBuffer& operator=(ZeroedBuffer&& o) noexcept;
  ZeroedBuffer(const ZeroedBuffer&) = delete;
  ZeroedBuffer& operator=(const ZeroedBuffer&) = delete;

  uint8_t* data() { return p_; }
  const uint8_t* data() const { return p_; }
  size_t size() const { return n_; }

 private:
  void release();
  uint8_t* p_ = nullptr;
  size_t n_ = 0;
  bool mapped_ = false;
};

}  // namespace hearth
