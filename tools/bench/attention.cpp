// hearth-attn-bench — attention alone at a context depth, tiled path against HEARTH_ATTN=exact's
// (not a test). Llama-3.2-1B's attention shape (32 query heads, 8 KV heads, head size 64) on one
// thread; the figure is the thread's CPU time, so other load on the machine changes it little.
//   usage: hearth-attn-bench [--tg] [--only CACHE] [DEPTH...]   (default 4096 16384 32768; --tg:
//   decode only; --only: one variant, e.g. f16)
// Per depth: pp = 512 query tokens at positions depth..depth+511 (one call, best of 3); tg = 1
// token at position depth; for F16 and Q8_0 (tiled and exact) and Q4_0 caches. The variants'
// calls alternate (decode: best of 5, or of 20 with --tg).
#include "ops/attention.h"

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
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
  bool tg_only = false;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--tg")
      tg_only = true;
    else if (std::string(argv[i]) == "--only" && i + 1 < argc)
      only = argv[++i];
    else
      depths.push_back(std::atoi(argv[i]));
  }
  if (depths.empty()) depths = {4096, 16384, 32768};
  const int nh = 32, nkv = 8, hd = 64, pp = 512;
  std::mt19937 g(1);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::printf(
      "| depth | cache | pp512 ms (one layer) | tg ms (one layer) |\n|---:|---|---:|---:|\n");
  struct Variant {
    const char* name;
    DType type;
    bool exact;
  };
  const Variant variants[] = {{"f16 exact", DType::F16, true},
                              {"f16", DType::F16, false},
                              {"q8_0 exact", DType::Q8_0, true},
                              {"q8_0", DType::Q8_0, false},
                              {"q4_0", DType::Q4_0, false}};
  std::vector<Variant> vs;
  for (const Variant& v : variants)
    if (only.empty() || only == v.name) vs.push_back(v);
  const int nv = int(vs.size());
  for (int depth : depths) {
    const int n_pos = depth + pp;
    std::vector<float> kv(size_t(nkv) * hd), q(size_t(pp) * nh * hd), out(q.size());
    for (auto& x : q) x = d(g);
    std::vector<std::vector<uint8_t>> kc(nv), vc(nv);
    std::vector<ops::AttnParams> ps(nv);
    std::vector<ops::AttnScratch> sc(nv);
    for (int v = 0; v < nv; ++v) {
      const Variant& var = vs[size_t(v)];
      const size_t row = ops::kv_row_bytes(var.type, nkv * hd);
      kc[v].resize(size_t(n_pos) * row);
      vc[v].resize(size_t(n_pos) * row);
      for (int j = 0; j < n_pos; ++j) {
        for (auto& x : kv) x = d(g);
        ops::kv_store(var.type, kv.data(), kc[v].data() + size_t(j) * row, nkv * hd);
        for (auto& x : kv) x = d(g);
        ops::kv_store(var.type, kv.data(), vc[v].data() + size_t(j) * row, nkv * hd);
      }
      ops::AttnParams& p = ps[v];
      p.n_head = nh;
      p.n_head_kv = nkv;
      p.head_dim_k = p.head_dim_v = hd;
      p.scale = 0.125f;
      p.kv_type = var.type;
      p.exact = var.exact;
      sc[v].reserve(1, n_pos, hd, hd);
    }
    std::vector<double> t_pp(nv, 1e30), t_tg(nv, 1e30);
    for (int r = 0; r < (tg_only ? 0 : 3); ++r)
      for (int v = 0; v < nv; ++v) {
        const double t0 = thread_cpu_s();
        ops::attention_in_run(0, 1, ps[v], q.data(), nh * hd, pp, depth, kc[v].data(), vc[v].data(),
                              out.data(), nh * hd, sc[v]);
        t_pp[v] = std::min(t_pp[v], thread_cpu_s() - t0);
      }
    // Decode: the variants take turns, so a change of load on the machine hits them alike.
    for (int r = 0; r < (tg_only ? 20 : 5); ++r)
      for (int v = 0; v < nv; ++v) {
        const double t0 = thread_cpu_s();
        ops::attention_in_run(0, 1, ps[v], q.data(), nh * hd, 1, depth, kc[v].data(), vc[v].data(),
                              out.data(), nh * hd, sc[v]);
        t_tg[v] = std::min(t_tg[v], thread_cpu_s() - t0);
      }
    for (int v = 0; v < nv; ++v)
      std::printf("| %d | %s | %.1f | %.3f |\n", depth, vs[size_t(v)].name, 1e3 * t_pp[v],
                  1e3 * t_tg[v]);
    std::fflush(stdout);
  }
  return 0;
}
