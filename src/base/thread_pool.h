// base/thread_pool.h — one persistent pool of worker threads for all compute.
//
// `run(fn)` calls fn(ith, nth) on every thread (the caller is thread 0) and returns when all have
// finished; ops split their work by (ith, nth) as ggml does. Workers spin briefly and then sleep,
// so a decode loop pays no thread creation and no allocation per op. `barrier()` may be called by
// all threads inside one `run` to sequence phases without returning to the caller.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace hearth {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_; }

  template <typename F>
  void run(F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run_impl([](void* ctx, int ith, int nth) { (*static_cast<Fn*>(ctx))(ith, nth); },
             const_cast<void*>(static_cast<const void*>(&fn)));
  }

  // All `nth` threads of the current run() must call this the same number of times.
  void barrier();

  // Split [0, n) into nth nearly equal contiguous ranges, aligned to `align`.
  static void split(int64_t n, int ith, int nth, int64_t& begin, int64_t& end, int64_t align = 1);

 private:
  using Thunk = void (*)(void*, int, int);
  void run_impl(Thunk thunk, void* ctx);
  void worker(int ith);

  int n_;
  std::vector<std::thread> threads_;
  Thunk thunk_ = nullptr;
  void* ctx_ = nullptr;
  alignas(64) std::atomic<uint32_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  alignas(64) std::atomic<int> barrier_count_{0};
  alignas(64) std::atomic<uint32_t> barrier_gen_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace hearth
