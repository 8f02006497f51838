#include "runtime/machine.h"

#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "base/cpu_features.h"
#include "base/thread_pool.h"
#include "kernels/kernels.h"

namespace hearth::runtime {

namespace {

int64_t meminfo(const char* want) {
  std::ifstream f("/proc/meminfo");
  std::string key, unit;
  int64_t kb = 0;
  while (f >> key >> kb >> unit)
    if (key == want) return kb * 1024;
  return 0;
}

std::string read_line(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

// cgroup v2: the memory.max and memory.current of this process's group ("max": no limit).
void cgroup_memory(int64_t& limit, int64_t& used) {
  limit = used = 0;
  std::ifstream f("/proc/self/cgroup");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("0::", 0) != 0) continue;
    const std::string dir = "/sys/fs/cgroup" + line.substr(3);
    const std::string max = read_line(dir + "/memory.max");
    if (max.empty() || max == "max") return;
    try {
      limit = std::stoll(max);
      used = std::stoll(read_line(dir + "/memory.current"));
    } catch (...) {
      limit = used = 0;
    }
  }
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      auto p = line.find(':');
      if (p != std::string::npos) return line.substr(line.find_first_not_of(' ', p + 1));
    }
  return "unknown CPU";
}

std::vector<GpuInfo> gpus() {
  std::vector<GpuInfo> out;
  namespace fs = std::filesystem;
  std::error_code ec;
  // NVIDIA's driver lists each GPU with its model name.
  for (const auto& d : fs::directory_iterator("/proc/driver/nvidia/gpus", ec)) {
    std::ifstream f(d.path() / "information");
    std::string line;
    GpuInfo g{"NVIDIA GPU", 0, "/proc/driver/nvidia"};
    while (std::getline(f, line))
      if (line.rfind("Model:", 0) == 0) g.name = line.substr(line.find_first_not_of(" \t", 6));
    out.push_back(g);
  }
  // amdgpu (and some others) report their VRAM size through DRM sysfs.
  for (const auto& d : fs::directory_iterator("/sys/class/drm", ec)) {
    const std::string n = d.path().filename().string();
    if (n.rfind("card", 0) != 0 || n.find('-') != std::string::npos) continue;
    const std::string vram = read_line((d.path() / "device/mem_info_vram_total").string());
    if (vram.empty()) continue;
    GpuInfo g{"GPU (" + n + ")", 0, "/sys/class/drm"};
    try {
      g.vram = std::stoll(vram);
    } catch (...) {
    }
    out.push_back(g);
  }
  return out;
}

// Sums a slice with several independent 64-byte loads in flight (the widest loads this CPU has):
// a streaming read as a decode step does it.
__attribute__((target("avx512f"))) uint64_t sum_avx512(const uint8_t* p, size_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 256 <= n; i += 256) {
    a0 = _mm512_add_epi64(a0, _mm512_load_si512(p + i));
    a1 = _mm512_add_epi64(a1, _mm512_load_si512(p + i + 64));
    a2 = _mm512_add_epi64(a2, _mm512_load_si512(p + i + 128));
    a3 = _mm512_add_epi64(a3, _mm512_load_si512(p + i + 192));
  }
  a0 = _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3));
  // Lanes summed as unsigned: GCC's _mm512_reduce_add_epi64 adds them as signed long long, which
  // overflows (undefined behaviour, reported by UBSan) on arbitrary data.
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, a0);
  uint64_t s = 0;
  for (uint64_t x : lanes) s += x;
  return s;
}

__attribute__((target("avx2"))) uint64_t sum_avx2(const uint8_t* p, size_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 128 <= n; i += 128) {
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  alignas(32) uint64_t l[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(l), a0);
  return l[0] + l[1] + l[2] + l[3];
}

uint64_t sum_generic(const uint8_t* p, size_t n) {
  uint64_t a[8] = {};
  for (size_t i = 0; i + 64 <= n; i += 64)
    for (int k = 0; k < 8; ++k) {
      uint64_t v;
      std::memcpy(&v, p + i + 8 * k, 8);
      a[k] += v;
    }
  return a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
}

double probe_bandwidth() {
  // Far beyond any cache, small next to what a model needs.
  size_t bytes = size_t(1) << 30;
  if (const int64_t avail = memory_available(); avail > 0)
    bytes = std::min(bytes, size_t(avail / 8) & ~size_t((2 << 20) - 1));
  if (bytes < (size_t(32) << 20)) return 0;
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 0;
  // Huge pages where the kernel gives them, as the engine's resident weights have.
  madvise(mem, bytes, MADV_HUGEPAGE);
  auto* p = static_cast<uint8_t*>(mem);
  const int nt = std::max(1, int(std::thread::hardware_concurrency()));
  ThreadPool pool(nt);
  // Each thread first-touches the part it reads (its NUMA node, its page-table entries).
  pool.run([&](int ith, int nth) {
    int64_t b, e;
    ThreadPool::split(int64_t(bytes >> 12), ith, nth, b, e);
    std::memset(p + (size_t(b) << 12), ith + 1, size_t(e - b) << 12);
  });
  const auto& f = cpu_features();
  auto sum = f.avx512f ? sum_avx512 : f.avx2 ? sum_avx2 : sum_generic;
  double best = 0;
  std::vector<uint64_t> sink(static_cast<size_t>(nt), 0);
  for (int pass = 0; pass < 8; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run([&](int ith, int nth) {
      int64_t b, e;
      ThreadPool::split(int64_t(bytes >> 12), ith, nth, b, e);
      sink[size_t(ith)] += sum(p + (size_t(b) << 12), size_t(e - b) << 12);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (s > 0) best = std::max(best, double(bytes) / s);
  }
  munmap(mem, bytes);
  // The sums are kept alive so the loads cannot be optimised away.
  volatile uint64_t keep = 0;
  for (auto v : sink) keep = keep + v;
  return best;
}

}  // namespace

int64_t memory_available() {
  int64_t avail = meminfo("MemAvailable:");
  int64_t limit, used;
  cgroup_memory(limit, used);
  if (limit > 0) avail = std::min(avail, std::max<int64_t>(0, limit - used));
  return avail;
}

MachineInfo machine_info(int64_t memory_limit) {
  MachineInfo m;
  m.mem_total = meminfo("MemTotal:");
  int64_t used;
  cgroup_memory(m.cgroup_limit, used);
  if (m.cgroup_limit > 0) m.mem_total = std::min(m.mem_total, m.cgroup_limit);
  m.mem_available = memory_available();
  if (memory_limit > 0) {
    m.memory_limit = memory_limit;
    m.mem_total = std::min(m.mem_total, memory_limit);
    m.mem_available = std::min(m.mem_available, memory_limit);
  }
  m.threads = std::max(1, int(std::thread::hardware_concurrency()));
  m.cpu = cpu_model();
  m.isa = kernels::isa_name(kernels::active().isa);
  m.gpus = gpus();
  return m;
}

double memory_bandwidth() {
  static std::once_flag once;
  static double bw = 0;
  std::call_once(once, [] { bw = probe_bandwidth(); });
  return bw;
}

}  // namespace hearth::runtime
