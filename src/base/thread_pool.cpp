#include "base/thread_pool.h"

#include <immintrin.h>

namespace hearth {

namespace {
// Spin this many rounds before sleeping: long enough to cover the gap between two ops of a
// decode step, short enough not to burn a core when the server is idle.
constexpr int kSpinRounds = 1 << 17;
// Waits inside a run (a barrier, the caller waiting for the workers) spin this many rounds
// (tens of microseconds, more than the usual imbalance between threads), then sleep on the
// futex. Spinning on: when the machine is busier than its cores (a build, a browser), the thread
// being waited for may be the one descheduled, and a spinner burning its time slice kept it so:
// with 2 threads on 2 busy cores a decode pass took 6x as long as with one thread.
constexpr int kWaitSpin = 1 << 12;
inline void cpu_relax() {
  _mm_pause();
}
}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_(n_threads < 1 ? 1 : n_threads) {
  for (int i = 1; i < n_; ++i) threads_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::run_impl(Thunk thunk, void* ctx) {
  if (n_ == 1) {
    thunk(ctx, 0, 1);
    return;
  }
  thunk_ = thunk;
  ctx_ = ctx;
  pending_.store(n_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  thunk(ctx, 0, n_);
  int left = pending_.load(std::memory_order_acquire);
  for (int spin = 0; left != 0 && spin < kWaitSpin; ++spin) {
    cpu_relax();
    left = pending_.load(std::memory_order_acquire);
  }
  while (left != 0) {
    pending_.wait(left, std::memory_order_acquire);
    left = pending_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker(int ith) {
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = generation_.load(std::memory_order_acquire);
    for (int spin = 0; g == seen && spin < kSpinRounds; ++spin) {
      cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    while (g == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      g = generation_.load(std::memory_order_acquire);
    }
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    thunk_(ctx_, ith, n_);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

void ThreadPool::barrier() {
  if (n_ == 1) return;
  const uint32_t gen = barrier_gen_.load(std::memory_order_acquire);
  if (barrier_count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
    barrier_count_.store(0, std::memory_order_relaxed);
    barrier_gen_.fetch_add(1, std::memory_order_acq_rel);
    barrier_gen_.notify_all();  // an atomic load when nobody sleeps
    return;
  }
  for (int spin = 0; spin < kWaitSpin; ++spin) {
    if (barrier_gen_.load(std::memory_order_acquire) != gen) return;
    cpu_relax();
  }
  while (barrier_gen_.load(std::memory_order_acquire) == gen)
    barrier_gen_.wait(gen, std::memory_order_acquire);
}

void ThreadPool::split(int64_t n, int ith, int nth, int64_t& begin, int64_t& end, int64_t align) {
  const int64_t units = (n + align - 1) / align;
  const int64_t per = units / nth, extra = units % nth;
  const int64_t ub = ith * per + (ith < extra ? ith : extra);
  const int64_t ue = ub + per + (ith < extra ? 1 : 0);
  begin = ub * align < n ? ub * align : n;
  end = ue * align < n ? ue * align : n;
}

}  // namespace hearth
