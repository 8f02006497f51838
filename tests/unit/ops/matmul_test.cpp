// ops::matmul on prepared weights: the load-time repack (whole row groups packed, a tail in the
// file's layout) against dequantize + dot in double, at every ISA level this CPU supports.
#include "ops/matmul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "quant/types.h"

namespace hearth::ops {
namespace {

struct IsaCapReset {
  ~IsaCapReset() { kernels::set_isa_cap(kernels::Isa(-1)); }  // back to HEARTH_ISA / the CPU
};

TEST(Matmul, RepackedWeightsWithTailRowsMatchReference) {
  IsaCapReset reset;
  ThreadPool pool(2);
  int packed_seen = 0;
  for (int lvl = 0; lvl <= int(kernels::detected_isa()); ++lvl) {
    kernels::set_isa_cap(kernels::Isa(lvl));
    for (DType type : {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q4_0}) {
      const TypeTraits& tt = type_traits(type);
      const TypeTraits& at = type_traits(tt.vec_dot_type);
      const int64_t K = 512;
      for (int64_t n_out : {int64_t(37), int64_t(32), int64_t(5)}) {
        std::mt19937 g(uint32_t(n_out * 7 + lvl));
        std::normal_distribution<float> nd(0.0f, 1.0f);
        std::vector<float> wf(size_t(n_out * K));
        for (auto& x : wf) x = nd(g);
        const size_t stride = row_bytes(tt, K);
        std::vector<uint8_t> wq(stride * size_t(n_out));
        for (int64_t r = 0; r < n_out; ++r)
          tt.quantize_row(wf.data() + r * K, wq.data() + r * stride, K);
        // Dequantized before prepare(): releasing the packed rows' pages of this anonymous buffer
        // zeroes them (a file mapping would refault from the file).
        std::vector<float> wd(size_t(n_out * K));
        for (int64_t r = 0; r < n_out; ++r)
          tt.dequantize_row(wq.data() + r * stride, wd.data() + r * K, K);
        auto made = WeightMatrix::make("w", type, n_out, K, wq.data(), wq.size());
        ASSERT_TRUE(bool(made));
        WeightMatrix w = std::move(*made);
        w.prepare(pool, Placement::kMapped, true);
        const auto& rp = kernels::active().repack[uint32_t(type)];
        const int64_t expect_packed = rp.row_group > 0 ? n_out / rp.row_group * rp.row_group : 0;
        EXPECT_EQ(w.n_packed(), expect_packed) << tt.name << " n_out=" << n_out;
        packed_seen += w.packed();
        for (int64_t M : {1, 3, 8, 17}) {
          std::vector<float> x(size_t(M * K));
          for (auto& v : x) v = nd(g);
          std::vector<float> y(size_t(M * n_out), NAN);
          MatmulScratch scratch;
          matmul(pool, w, x.data(), M, y.data(), scratch);
          // The reference sees the activations as the kernels do: quantized (Q8_K, Q8_0).
          std::vector<uint8_t> aq(row_bytes(at, K));
          std::vector<float> ad(static_cast<size_t>(K));
          for (int64_t m = 0; m < M; ++m) {
            act_quantizer(at)(x.data() + m * K, aq.data(), K);
            at.dequantize_row(aq.data(), ad.data(), K);
            for (int64_t r = 0; r < n_out; ++r) {
              double ref = 0, mag = 0;
              for (int64_t k = 0; k < K; ++k) {
                const double p = double(wd[r * K + k]) * double(ad[k]);
                ref += p;
                mag += std::fabs(p);
              }
              EXPECT_NEAR(y[m * n_out + r], ref, 1e-5 * mag + 1e-6)
                  << tt.name << " " << kernels::isa_name(kernels::active().isa)
                  << " n_out=" << n_out << " M=" << M << " r=" << r;
            }
          }
        }
      }
    }
  }
  if (kernels::detected_isa() >= kernels::Isa::kAvx512) {
    EXPECT_GT(packed_seen, 0);
  }
}

}  // namespace
}  // namespace hearth::ops
