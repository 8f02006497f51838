// models/blocks/step.h — what every block's forward gets: one thread's share of a batch, and
// scratch buffers that check their size.
//
// A forward pass runs inside one ThreadPool::run; each block splits its work by (ith, nth) and
// ends with a barrier, so blocks compose without waking threads. Scratch is sized once per
// context from the shapes each block was loaded with (its `reserve`), and every access states
// how much it needs: a block can never write past a buffer it sized itself.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <vector>

#include "base/thread_pool.h"
#include "models/model.h"

namespace hearth::models {

struct Step {
  ThreadPool& pool;
  int ith, nth;
  std::span<const BatchToken> batch;
  int64_t T;       // tokens in the batch
  int64_t tb, te;  // this thread's token range
  void barrier() const { pool.barrier(); }
};

// The end of the run of consecutive positions of one sequence that starts at s.
inline int64_t run_end(std::span<const BatchToken> batch, int64_t s) {
  int64_t e = s + 1;
  while (e < int64_t(batch.size()) && batch[e].seq == batch[s].seq &&
         batch[e].pos == batch[e - 1].pos + 1)
    ++e;
  return e;
}

// A scratch buffer: grown by `need` while a context is created, read with `at(n)` which checks
// that n elements fit. The check is one comparison per block per batch, so it stays on in
// release builds: an overrun is an engine bug, and stopping beats corrupting the heap.
template <class T>
class Scratch {
 public:
  void need(size_t n) {
    if (v_.size() < n) v_.resize(n);
  }
  T* at(size_t n) {
    if (n > v_.size()) overrun(n);
    return v_.data();
  }
  const T* data() const { return v_.data(); }
  size_t size() const { return v_.size(); }

 private:
  [[noreturn]] void overrun(size_t n) const {
    std::fprintf(stderr, "hearth: internal error: scratch of %zu elements asked for %zu\n",
                 v_.size(), n);
    std::abort();
  }
  std::vector<T> v_;
};
using FloatScratch = Scratch<float>;

}  // namespace hearth::models
