// hearth-attn-bench — attention alone at a context depth, tiled path against HEARTH_ATTN=exact's
// (not a test). Llama-3.2-1B's attention shape (32 query heads, 8 KV heads, head size 64) on one
// thread; the figure is the thread's CPU time, so other load on the machine changes it little.
//   usage: hearth-attn-bench [DEPTH...]   (default 4096 16384 32768)
// Per depth: pp = 512 query tokens at positions depth..depth+511 (one call); tg = 1 token at
// position depth; for F16 (tiled and exact), Q8_0 and Q4_0 caches.
#include "ops/attention.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

using namespace hearth;

namespace {

double thread_cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> depths;
  for (int i = 1; i < argc; ++i) depths.push_back(std::atoi(argv[i]));
  if (depths.empty()) depths = {4096, 16384, 32768};
  const int nh = 32, nkv = 8, hd = 64, pp = 512;
  std::mt19937 g(1);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::printf(
      "| depth | cache | pp512 ms (one layer) | tg ms (one layer) |\n|---:|---|---:|---:|\n");
  for (int depth : depths) {
    const int n_pos = depth + pp;
    std::vector<float> kv(size_t(nkv) * hd), q(size_t(pp) * nh * hd), out(q.size());
    for (auto& x : q) x = d(g);
    struct Variant {
      const char* name;
      DType type;
      bool exact;
    };
    for (Variant var : {Variant{"f16 exact", DType::F16, true}, Variant{"f16", DType::F16, false},
                        Variant{"q8_0", DType::Q8_0, false}, Variant{"q4_0", DType::Q4_0, false}}) {
      const size_t row = ops::kv_row_bytes(var.type, nkv * hd);
      std::vector<uint8_t> kc(size_t(n_pos) * row), vc(size_t(n_pos) * row);
      for (int j = 0; j < n_pos; ++j) {
        for (auto& x : kv) x = d(g);
        ops::kv_store(var.type, kv.data(), kc.data() + size_t(j) * row, nkv * hd);
        for (auto& x : kv) x = d(g);
        ops::kv_store(var.type, kv.data(), vc.data() + size_t(j) * row, nkv * hd);
      }
      ops::AttnParams p;
      p.n_head = nh;
      p.n_head_kv = nkv;
      p.head_dim_k = p.head_dim_v = hd;
      p.scale = 0.125f;
      p.kv_type = var.type;
      p.exact = var.exact;
      ops::AttnScratch sc;
      sc.reserve(1, n_pos, hd, hd);
      double t0 = thread_cpu_s();
      ops::attention_in_run(0, 1, p, q.data(), nh * hd, pp, depth, kc.data(), vc.data(), out.data(),
                            nh * hd, sc);
      const double t_pp = thread_cpu_s() - t0;
      double t_tg = 1e30;
      for (int r = 0; r < 5; ++r) {
        t0 = thread_cpu_s();
        ops::attention_in_run(0, 1, p, q.data(), nh * hd, 1, depth, kc.data(), vc.data(),
                              out.data(), nh * hd, sc);
        t_tg = std::min(t_tg, thread_cpu_s() - t0);
      }
      std::printf("| %d | %s | %.1f | %.3f |\n", depth, var.name, 1e3 * t_pp, 1e3 * t_tg);
      std::fflush(stdout);
    }
  }
  return 0;
}
