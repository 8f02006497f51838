// runtime/machine.h — what this machine offers a model: memory (physical, available, a cgroup's
// limit), CPU threads and ISA, GPUs the system reports, and a measured memory bandwidth. The fit
// advisor (runtime/fit.h) and the scheduler's memory check read it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hearth::runtime {

struct GpuInfo {
  std::string name;    // e.g. "NVIDIA GeForce RTX 4090", "AMD gpu (card0)"
  int64_t vram = 0;    // bytes, 0 if unknown
  std::string source;  // where it was found (/proc/driver/nvidia, /sys/class/drm)
};

struct MachineInfo {
  int64_t mem_total = 0;      // MemTotal (or the cgroup's memory.max when lower)
  int64_t mem_available = 0;  // MemAvailable (capped by the cgroup's remaining room)
  int64_t cgroup_limit = 0;   // memory.max of this process's cgroup, 0 when unlimited
  int64_t memory_limit = 0;   // HEARTH_MAX_MEMORY, 0 when unset
  int threads = 0;            // threads hearth uses for inference
  std::string cpu;            // model name from /proc/cpuinfo
  std::string isa;            // kernel level in use (kernels::active())
  std::vector<GpuInfo> gpus;  // reported by the system; hearth computes on the CPU
};

// Memory and CPU facts; cheap (reads /proc and /sys). `memory_limit` > 0 (the server's
// HEARTH_MAX_MEMORY) caps both memory figures: what models may use is what the advice is about.
MachineInfo machine_info(int64_t memory_limit = 0);

// Memory the system can give a new model now: MemAvailable, within the cgroup's limit.
int64_t memory_available();

// Measured read bandwidth of main memory in bytes/s: every inference thread streams its share of
// a buffer far larger than the caches, with several loads in flight, best of a few passes (what
// decode, which reads every weight once per token, can hope for). About 0.5 s; the first result is
// kept for the life of the process.
double memory_bandwidth();

}  // namespace hearth::runtime
