// hearth-kernel-bench — the cost of each weight kernel with memory out of the way (not a test).
//
// A weight matrix small enough to stay in L2 is dotted over and over with M activation rows on
// one thread, at every ISA level the CPU has; the figure is nanoseconds per 256 weights per
// activation row, so levels and types compare directly and a change to an inner loop shows up
// without the noise of a whole-model run. M=1 is decode, M=4 a small batch, M>=16 prefill.
//   usage: hearth-kernel-bench [--stream [--rows M] | --prefill] [TYPE...]   (default: the common
//   types; --rows: activation rows of --stream, continuous batching's small batches)
#include "kernels/kernels.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "quant/types.h"

using namespace hearth;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double cpu_s() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// Best of several timed repetitions of fn (each long enough to dwarf the clock's resolution).
template <class F>
double best_seconds(F&& fn, int inner) {
  double best = 1e30;
  for (int rep = 0; rep < 7; ++rep) {
    const double t0 = now_s();
    for (int i = 0; i < inner; ++i) fn();
    best = std::min(best, (now_s() - t0) / inner);
  }
  return best;
}

}  // namespace

// --stream: one activation row (decode) against a matrix far larger than the caches (the
// 128256 x 2048 output head of the bench model), one thread, best of 5: weight GB/s per core of
// the file-layout gemm and of the packed layout, the per-core side of the bandwidth bound; and
// the load-time packing's speed (packed bytes written per second of thread CPU time, best of 3).
int stream(const std::vector<std::string>& names, int M) {
  constexpr int64_t K = 2048, kRows = 128256;
  std::printf("decode (M=%d) streaming a %lld x %lld matrix, 1 thread, best of 5: GB/s\n\n", M,
              (long long)kRows, (long long)K);
  std::printf("| type | level | file layout | packed | packing |\n|---|---|---:|---:|---:|\n");
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> row(K), y(size_t(kRows * M));
  for (const auto& name : names) {
    const TypeTraits* tt = find_type_by_name(name);
    if (!tt || !tt->storable) return 2;
    const TypeTraits& at = type_traits(tt->vec_dot_type);
    const size_t ws = row_bytes(*tt, K), as = row_bytes(at, K);
    std::vector<uint8_t> w(ws * kRows), a(as * size_t(M));
    for (int64_t r = 0; r < kRows; ++r) {
      if (r < 64)
        for (auto& v : row) v = nd(rng);
      tt->quantize_row(row.data(), &w[size_t(r) * ws], K);  // 64 distinct rows, repeated
    }
    for (int m = 0; m < M; ++m) act_quantizer(at)(row.data(), a.data() + size_t(m) * as, K);
    const int l = int(kernels::detected_isa());
    const auto& t = kernels::table(kernels::Isa(l));
    const double gb = double(w.size()) / 1e9;
    const double s0 = best_seconds(
        [&] {
          t.gemm[uint32_t(tt->type)](K, w.data(), ws, kRows, a.data(), as, M, y.data(), kRows);
        },
        1);
    std::printf("| %s | %s | %.1f |", tt->name, kernels::isa_name(kernels::Isa(l)), gb / s0);
    const auto& rp = t.repack[uint32_t(tt->type)];
    if (rp.row_group > 0) {
      std::vector<uint8_t> packed(rp.packed_bytes(K, kRows));
      // Best of 3, in thread CPU time (steadier than wall time on a shared machine); the
      // destination's pages are touched (zeroed) already.
      double tpack = 1e30;
      for (int rep = 0; rep < 3; ++rep) {
        const double tp = cpu_s();
        rp.pack(K, w.data(), ws, kRows, packed.data());
        tpack = std::min(tpack, cpu_s() - tp);
      }
      const double pack_gbs = double(packed.size()) / 1e9 / tpack;
      std::vector<uint8_t>().swap(w);
      const double s1 = best_seconds(
          [&] { rp.gemm(K, packed.data(), kRows, a.data(), as, M, y.data(), kRows); }, 1);
      std::printf(" %.1f | %.1f |\n", double(packed.size()) / 1e9 / s1, pack_gbs);
    } else {
      std::printf(" - | - |\n");
    }
  }
  return 0;
}

// --prefill: M = 512 activation rows against the bench model's matrix shapes (rows x K: attention
// 2048 x 2048, FFN up 8192 x 2048, FFN down 2048 x 8192), one thread, the file-layout gemm and
// the packed one alternating, best of 5 each in thread CPU time (steadier than wall time on a
// shared machine): multiply-adds per ns (higher is better).
int prefill(const std::vector<std::string>& names) {
  constexpr int64_t M = 512;
  const int64_t shapes[][2] = {{2048, 2048}, {8192, 2048}, {2048, 8192}};
  std::printf(
      "prefill (M=%lld), 1 thread, alternating, best of 5 (thread CPU time): "
      "multiply-adds per ns\n\n",
      (long long)M);
  std::printf("| type | rows x K | file layout | packed |\n|---|---|---:|---:|\n");
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const auto& name : names) {
    const TypeTraits* tt = find_type_by_name(name);
    if (!tt || !tt->storable) return 2;
    const TypeTraits& at = type_traits(tt->vec_dot_type);
    const auto& t = kernels::table(kernels::detected_isa());
    const auto& rp = t.repack[uint32_t(tt->type)];
    for (const auto& sh : shapes) {
      const int64_t R = sh[0], K = sh[1];
      const size_t ws = row_bytes(*tt, K), as = row_bytes(at, K);
      std::vector<float> row(static_cast<size_t>(K));
      std::vector<uint8_t> w(ws * size_t(R)), a(as * size_t(M));
      for (int64_t r = 0; r < R; ++r) {
        if (r < 64)
          for (auto& v : row) v = nd(rng);
        tt->quantize_row(row.data(), &w[size_t(r) * ws], K);
      }
      for (int64_t m = 0; m < M; ++m) {
        for (auto& v : row) v = nd(rng);
        act_quantizer(at)(row.data(), &a[size_t(m) * as], K);
      }
      std::vector<float> y(size_t(R * M));
      std::vector<uint8_t> packed;
      if (rp.row_group > 0) {
        packed.resize(rp.packed_bytes(K, R));
        rp.pack(K, w.data(), ws, R, packed.data());
      }
      double b0 = 1e30, b1 = 1e30;
      for (int rep = 0; rep < 5; ++rep) {
        double t0 = cpu_s();
        t.gemm[uint32_t(tt->type)](K, w.data(), ws, R, a.data(), as, M, y.data(), size_t(R));
        b0 = std::min(b0, cpu_s() - t0);
        if (packed.empty()) continue;
        t0 = cpu_s();
        rp.gemm(K, packed.data(), R, a.data(), as, M, y.data(), size_t(R));
        b1 = std::min(b1, cpu_s() - t0);
      }
      const double macs = double(R) * double(K) * double(M) / 1e9;
      std::printf("| %s | %lld x %lld | %.0f |", tt->name, (long long)R, (long long)K, macs / b0);
      if (packed.empty())
        std::printf(" - |\n");
      else
        std::printf(" %.0f |\n", macs / b1);
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  std::vector<std::string> names;
  bool streaming = false, pre = false;
  int stream_rows = 1;
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--stream")
      streaming = true;
    else if (std::string(argv[i]) == "--rows" && i + 1 < argc)
      stream_rows = std::clamp(std::atoi(argv[++i]), 1, 64);
    else if (std::string(argv[i]) == "--prefill")
      pre = true;
    else
      names.push_back(argv[i]);
  if (streaming || pre) {
    if (names.empty()) names = {"q4_K", "q5_K", "q6_K", "q8_0", "q4_0"};
    return streaming ? stream(names, stream_rows) : prefill(names);
  }
  if (names.empty()) names = {"q4_K", "q5_K", "q6_K", "q8_0", "q4_0", "iq4_xs", "q3_K", "q2_K"};
  constexpr int64_t K = 2048, kRows = 64;  // 64 x 2048 Q8_0 = 136 KiB: in L2 everywhere
  const int64_t Ms[] = {1, 2, 4, 8, 16, 32, 64, 256};
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> wf(size_t(K * kRows)), af(size_t(K * 256));
  for (auto& v : wf) v = nd(rng);
  for (auto& v : af) v = nd(rng);
  std::vector<float> y(size_t(kRows * 256));

  std::printf("ns per 256 weights per activation row, 1 thread, %lld x %lld matrix in cache\n\n",
              (long long)kRows, (long long)K);
  std::printf("| type | level |");
  for (int64_t m : Ms) std::printf(" M=%lld |", (long long)m);
  std::printf("\n|---|---|");
  for (size_t i = 0; i < std::size(Ms); ++i) std::printf("---:|");
  std::printf("\n");
  for (const auto& name : names) {
    const TypeTraits* tt = find_type_by_name(name);
    if (!tt || !tt->storable) {
      std::fprintf(stderr, "unknown weight type %s\n", name.c_str());
      return 2;
    }
    const TypeTraits& at = type_traits(tt->vec_dot_type);
    const size_t ws = row_bytes(*tt, K), as = row_bytes(at, K);
    std::vector<uint8_t> w(ws * kRows), a(as * 256);
    for (int64_t r = 0; r < kRows; ++r) tt->quantize_row(&wf[size_t(r * K)], &w[size_t(r) * ws], K);
    for (int64_t m = 0; m < 256; ++m) act_quantizer(at)(&af[size_t(m * K)], &a[size_t(m) * as], K);
    for (int l = 1; l <= int(kernels::detected_isa()); ++l) {
      const auto& t = kernels::table(kernels::Isa(l));
      const auto gemm = t.gemm[uint32_t(tt->type)];
      if (!gemm) continue;
      std::printf("| %s | %s |", tt->name, kernels::isa_name(kernels::Isa(l)));
      for (int64_t m : Ms) {
        const int inner = std::max<int>(1, int(256 / m));
        const double s = best_seconds(
            [&] { gemm(K, w.data(), ws, kRows, a.data(), as, m, y.data(), size_t(kRows)); }, inner);
        std::printf(" %.2f |", s * 1e9 / double(kRows * (K / 256) * m));
      }
      std::printf("\n");
      // The load-time repacked layout of this level, if it has one (ops/ uses it instead).
      const auto& rp = t.repack[uint32_t(tt->type)];
      if (rp.row_group <= 0 || kRows % rp.row_group != 0) continue;
      std::vector<uint8_t> packed(rp.packed_bytes(K, kRows));
      rp.pack(K, w.data(), ws, kRows, packed.data());
      std::printf("| %s | %s packed |", tt->name, kernels::isa_name(kernels::Isa(l)));
      for (int64_t m : Ms) {
        const int inner = std::max<int>(1, int(256 / m));
        const double s = best_seconds(
            [&] { rp.gemm(K, packed.data(), kRows, a.data(), as, m, y.data(), size_t(kRows)); },
            inner);
        std::printf(" %.2f |", s * 1e9 / double(kRows * (K / 256) * m));
      }
      std::printf("\n");
    }
  }
  return 0;
}
