#include <atomic>
#include <cstdlib>
#include <cstring>

#include "base/cpu_features.h"
#include "kernels/generic/generic.h"
#include "kernels/kernels.h"

namespace hearth::kernels {
namespace {

struct Tables {
  KernelTable t[kNumIsa];
  Tables() {
    fill_generic(t[0]);
    const Isa best = detected_isa();
    for (int i = 1; i <= int(best); ++i) {
      t[i] = t[i - 1];
      t[i].isa = Isa(i);
      if (i == int(Isa::kAvx2)) register_avx2(t[i]);
      if (i == int(Isa::kAvxVnni)) register_avxvnni(t[i]);
      if (i == int(Isa::kAvx512)) register_avx512(t[i]);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

// HEARTH_ISA, read once (active() must stay cheap: attention looks it up per call).
Isa env_cap() {
  static const Isa cap = [] {
    const char* s = std::getenv("HEARTH_ISA");
    Isa isa;
    return s && parse_isa(s, isa) ? isa : Isa::kAvx512;
  }();
  return cap;
}

std::atomic<int> g_cap{-1};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kGeneric:
      return "generic";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvxVnni:
      return "avxvnni";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

bool parse_isa(const char* s, Isa& out) {
  for (int i = 0; i < kNumIsa; ++i)
    if (std::strcmp(s, isa_name(Isa(i))) == 0) {
      out = Isa(i);
      return true;
    }
  return false;
}

Isa detected_isa() {
  const auto& f = cpu_features();
  if (f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx512vnni && f.avx2 && f.fma &&
      f.f16c)
    return Isa::kAvx512;
  if (!(f.avx2 && f.fma && f.f16c)) return Isa::kGeneric;
  // The AVX-VNNI level runs on AVX-VNNI CPUs, and on AVX-512 VNNI CPUs through the EVEX encoding.
  if (f.avx_vnni || (f.avx512vnni && f.avx512vl)) return Isa::kAvxVnni;
  return Isa::kAvx2;
}

const KernelTable& table(Isa isa) {
  int i = int(isa);
  if (i > int(detected_isa())) i = int(detected_isa());
  return tables().t[i];
}

void set_isa_cap(Isa cap) {
  g_cap.store(int(cap));
}

const KernelTable& active() {
  int cap = g_cap.load();
  if (cap < 0) cap = int(env_cap());
  return table(Isa(cap));
}

}  // namespace hearth::kernels
