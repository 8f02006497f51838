// Every kernel of every ISA level this CPU supports against the scalar references in quant/,
// driven by the type registry so a new type or kernel is covered without touching this file.
#include "kernels/kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/fp16.h"
#include "kernels/x86_avx512/x86_avx512.h"
#include "quant/blocks.h"
#include "quant/types.h"

namespace hearth::kernels {
namespace {

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  // A few outliers, as real activations have.
  for (size_t i = 0; i < n; i += 97) v[i] *= 6.0f;
  return v;
}

std::vector<const TypeTraits*> weight_types() {
  std::vector<const TypeTraits*> v;
  for (uint32_t id = 0; id < kMaxTypeId; ++id)
    if (const TypeTraits* t = find_type(id); t && t->storable && t->vec_dot) v.push_back(t);
  return v;
}

std::vector<Isa> levels() {
  std::vector<Isa> v;
  for (int i = 0; i <= int(detected_isa()); ++i) v.push_back(Isa(i));
  return v;
}

struct Quantized {
  std::vector<uint8_t> w, a;
  size_t w_stride, a_stride;
};

// n_rows weight rows and M activation rows of K elements, quantized by the references.
Quantized make(const TypeTraits& tt, int64_t K, int64_t n_rows, int64_t M, uint32_t seed) {
  const TypeTraits& at = type_traits(tt.vec_dot_type);
  Quantized q;
  q.w_stride = row_bytes(tt, K);
  q.a_stride = row_bytes(at, K);
  q.w.resize(q.w_stride * n_rows);
  q.a.resize(q.a_stride * M);
  auto wf = randn(size_t(K * n_rows), seed);
  auto af = randn(size_t(K * M), seed + 1);
  for (int64_t r = 0; r < n_rows; ++r)
    tt.quantize_row(wf.data() + r * K, q.w.data() + r * q.w_stride, K);
  for (int64_t m = 0; m < M; ++m)
    act_quantizer(at)(af.data() + m * K, q.a.data() + m * q.a_stride, K);
  return q;
}

TEST(Kernels, DetectsThisCpu) {
  std::printf("detected ISA level: %s\n", isa_name(detected_isa()));
  EXPECT_EQ(table(Isa::kGeneric).isa, Isa::kGeneric);
}

TEST(Kernels, VecDotAndGemmMatchReference) {
  // 96 and 640: rows that are not whole 256-element super-blocks (a tail only, and whole
  // super-blocks plus a tail, as in Q5_0/Q8_0 fallback tensors of Q4_K_M files)
  for (int64_t K : {512, 96, 640})
    for (const TypeTraits* tt : weight_types()) {
      if (K % tt->block_elems != 0 || K % type_traits(tt->vec_dot_type).block_elems != 0) continue;
      for (Isa isa : levels()) {
        const KernelTable& kt = table(isa);
        ASSERT_TRUE(kt.vec_dot[uint32_t(tt->type)]) << tt->name;
        for (int64_t M : {1, 2, 3, 5, 8, 17, 33}) {
          const int64_t R = 7;
          auto q = make(*tt, K, R, M, uint32_t(31 * M + uint32_t(tt->type)));
          std::vector<float> y(size_t(M * R), NAN);
          kt.gemm[uint32_t(tt->type)](K, q.w.data(), q.w_stride, R, q.a.data(), q.a_stride, M,
                                      y.data(), R);
          for (int64_t m = 0; m < M; ++m)
            for (int64_t r = 0; r < R; ++r) {
              const float ref =
                  tt->vec_dot(K, q.w.data() + r * q.w_stride, q.a.data() + m * q.a_stride);
              const float got = y[m * R + r];
              const float fast = kt.vec_dot[uint32_t(tt->type)](K, q.w.data() + r * q.w_stride,
                                                                q.a.data() + m * q.a_stride);
              const float tol = 1e-4f * (1.0f + std::fabs(ref)) + 1e-3f;
              EXPECT_NEAR(got, ref, tol) << tt->name << " " << isa_name(isa) << " gemm M=" << M;
              EXPECT_NEAR(fast, ref, tol) << tt->name << " " << isa_name(isa) << " vec_dot";
            }
        }
      }
    }
}

// Prefill shapes: many rows (whole and partial 16-row groups, several row blocks), K over several
// of the prefill GEMMs' K chunks, and column counts that leave partial column tiles. Y gets a
// stride wider than the rows so a kernel writing past its rows is caught.
TEST(Kernels, PrefillGemmShapesMatchReference) {
  for (int64_t K : {1536, 4096})
    for (const TypeTraits* tt : weight_types()) {
      if (K % tt->block_elems != 0 || K % type_traits(tt->vec_dot_type).block_elems != 0) continue;
      for (int64_t R : {16, 45, 96})
        for (int64_t M : {16, 23, 40}) {
          if (K == 4096 && (R != 45 || M != 23)) continue;  // one large case per type is enough
          auto q = make(*tt, K, R, M, uint32_t(7 * R + M + uint32_t(tt->type)));
          const size_t ldy = size_t(R + 3);
          std::vector<double> ref(size_t(M * R));
          for (int64_t m = 0; m < M; ++m)
            for (int64_t r = 0; r < R; ++r)
              ref[size_t(m * R + r)] =
                  tt->vec_dot(K, q.w.data() + r * q.w_stride, q.a.data() + m * q.a_stride);
          for (Isa isa : levels()) {
            const KernelTable& kt = table(isa);
            std::vector<float> y(size_t(M) * ldy, -7.0f);
            kt.gemm[uint32_t(tt->type)](K, q.w.data(), q.w_stride, R, q.a.data(), q.a_stride, M,
                                        y.data(), ldy);
            for (int64_t m = 0; m < M; ++m) {
              for (int64_t r = 0; r < R; ++r) {
                const double want = ref[size_t(m * R + r)];
                const double tol = 1e-4 * (1.0 + std::fabs(want)) + 2e-3;
                ASSERT_NEAR(y[size_t(m) * ldy + size_t(r)], want, tol)
                    << tt->name << " " << isa_name(isa) << " K=" << K << " R=" << R << " M=" << M
                    << " row " << r << " col " << m;
              }
              for (size_t r = size_t(R); r < ldy; ++r)
                ASSERT_EQ(y[size_t(m) * ldy + r], -7.0f) << tt->name << " wrote past its rows";
            }
          }
        }
    }
}

// Load-time repacked weights (KernelTable::repack) against dequantize + dot in double, at every
// level that registers an entry: every M path (decode, small batches, prefill through the column
// GEMM), several row groups, K from one super-block to thousands. The packed K-quant kernels sum
// the integer products exactly and round once per super-block (Q4_0: once per block and 4-element
// lane, llama.cpp's order), so they stay within float rounding of the exact dot: tolerance 1e-5
// of sum |w * a| (float epsilon is 6e-8; the slack covers the float steps of long rows).
TEST(Kernels, RepackedGemmMatchesDoubleReference) {
  int checked = 0;
  for (const TypeTraits* tt : weight_types())
    for (Isa isa : levels()) {
      const RepackEntry& rp = table(isa).repack[uint32_t(tt->type)];
      if (rp.row_group <= 0) continue;
      const TypeTraits& at = type_traits(tt->vec_dot_type);
      // 96 and 1184: rows that are not whole 256-element super-blocks (32-wide types only; the
      // small-batch kernels serve every M there).
      for (int64_t K : {256, 768, 4096, 96, 1184}) {
        if (K % tt->block_elems != 0 || K % at.block_elems != 0) continue;
        const int64_t R = 3 * rp.row_group;
        for (int64_t M : {1, 2, 3, 4, 5, 6, 7, 8, 15, 16, 17, 33}) {
          auto q = make(*tt, K, R, M, uint32_t(7 * M + K + uint32_t(tt->type)));
          std::vector<float> wf(size_t(K * R)), af(size_t(K * M));
          for (int64_t r = 0; r < R; ++r)
            tt->dequantize_row(q.w.data() + r * q.w_stride, wf.data() + r * K, K);
          for (int64_t m = 0; m < M; ++m)
            at.dequantize_row(q.a.data() + m * q.a_stride, af.data() + m * K, K);
          std::vector<uint8_t> packed(rp.packed_bytes(K, R) + 1, 0xA5);
          rp.pack(K, q.w.data(), q.w_stride, R, packed.data());
          ASSERT_EQ(packed.back(), 0xA5) << tt->name << ": pack wrote past packed_bytes";
          // Rows are linear in the packed copy: pack the second group alone, compare the bytes.
          std::vector<uint8_t> part(rp.packed_bytes(K, rp.row_group));
          rp.pack(K, q.w.data() + rp.row_group * q.w_stride, q.w_stride, rp.row_group, part.data());
          ASSERT_EQ(std::memcmp(part.data(), packed.data() + rp.packed_bytes(K, rp.row_group),
                                part.size()),
                    0)
              << tt->name;
          // ldy > R: the kernels must not write outside their rows.
          const int64_t ldy = R + 5;
          std::vector<float> y(size_t(M * ldy), NAN);
          rp.gemm(K, packed.data(), R, q.a.data(), q.a_stride, M, y.data(), size_t(ldy));
          for (int64_t m = 0; m < M; ++m) {
            for (int64_t r = 0; r < R; ++r) {
              double ref = 0, mag = 0;
              for (int64_t k = 0; k < K; ++k) {
                const double p = double(wf[r * K + k]) * double(af[m * K + k]);
                ref += p;
                mag += std::fabs(p);
              }
              EXPECT_NEAR(y[m * ldy + r], ref, 1e-5 * mag + 1e-6)
                  << tt->name << " " << isa_name(isa) << " K=" << K << " M=" << M << " r=" << r;
            }
            for (int64_t r = R; r < ldy; ++r) EXPECT_TRUE(std::isnan(y[m * ldy + r]));
          }
          ++checked;
        }
      }
    }
  std::printf("repacked (type, level, K, M) cases checked: %d\n", checked);
  if (detected_isa() >= Isa::kAvx512) EXPECT_GT(checked, 0);
}

// Below the prefill GEMM (M < 16 for the K-quants) a row's result must not depend on the batch
// around it: the tiles of 1 to 8 activation rows sum the same integers in the same float order,
// so one sequence's logits in a continuous-batching step equal its logits decoded alone, bit for
// bit. (Repacked Q4_0 hands M >= 8 to the rows-16 GEMM, which rounds differently: checked below 8.)
TEST(Kernels, RepackedSmallBatchRowsEqualSingleRow) {
  int checked = 0;
  for (const TypeTraits* tt : weight_types())
    for (Isa isa : levels()) {
      const RepackEntry& rp = table(isa).repack[uint32_t(tt->type)];
      if (rp.row_group <= 0) continue;
      const int64_t K = 768, R = 2 * rp.row_group;
      if (K % tt->block_elems != 0) continue;
      std::vector<uint8_t> packed;
      const int64_t small = tt->type == DType::Q4_0 ? 8 : 16;
      for (int64_t M : {2, 3, 4, 5, 7, 8, 9, 12, 15}) {
        if (M >= small) continue;
        auto q = make(*tt, K, R, M, uint32_t(11 * M + uint32_t(tt->type)));
        packed.assign(rp.packed_bytes(K, R), 0);
        rp.pack(K, q.w.data(), q.w_stride, R, packed.data());
        std::vector<float> y(size_t(M * R)), y1(static_cast<size_t>(R));
        rp.gemm(K, packed.data(), R, q.a.data(), q.a_stride, M, y.data(), size_t(R));
        for (int64_t m = 0; m < M; ++m) {
          rp.gemm(K, packed.data(), R, q.a.data() + m * q.a_stride, q.a_stride, 1, y1.data(),
                  size_t(R));
          ASSERT_EQ(std::memcmp(y1.data(), y.data() + m * R, sizeof(float) * size_t(R)), 0)
              << tt->name << " " << isa_name(isa) << " M=" << M << " m=" << m;
        }
        ++checked;
      }
    }
  if (detected_isa() >= Isa::kAvx512) EXPECT_GT(checked, 0);
}

// The packed layouts of kernels/x86_avx512/repacked.cpp, written byte by byte from the layout
// its header describes: dword k of a row's field goes to lane i (bytes 4i .. 4i + 3) of vector k.
void put_dwords(uint8_t* dst, const uint8_t* src, int n_dwords, int i) {
  for (int k = 0; k < n_dwords; ++k) std::memcpy(dst + 64 * k + 4 * i, src + 4 * k, 4);
}

// Q4_0 (kernels/x86_avx512/repacked_q4_0.cpp): chunks of up to 8 blocks per group of 16 rows;
// a chunk of n blocks holds the qs (vector 4b + k = dword k of block b's qs), then 16 f16 d per
// block.
std::vector<uint8_t> reference_pack_q4_0(int64_t K, const uint8_t* W, size_t w_stride,
                                         int64_t n_rows) {
  const int64_t nb = K / QK4_0;
  std::vector<uint8_t> out(size_t(n_rows / 16 * nb) * 16 * sizeof(block_q4_0));
  uint8_t* p = out.data();
  for (int64_t g = 0; g < n_rows / 16; ++g)
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
      const int n = int(std::min<int64_t>(8, nb - b0));
      for (int i = 0; i < 16; ++i)
        for (int b = 0; b < n; ++b) {
          const auto& x =
              reinterpret_cast<const block_q4_0*>(W + size_t(g * 16 + i) * w_stride)[b0 + b];
          put_dwords(p + 256 * b, x.qs, 4, i);
          std::memcpy(p + 256 * n + 32 * b + 2 * i, &x.d, 2);
        }
      p += size_t(n) * 16 * sizeof(block_q4_0);
    }
  return out;
}

std::vector<uint8_t> reference_pack(DType type, int64_t K, const uint8_t* W, size_t w_stride,
                                    int64_t n_rows) {
  if (type == DType::Q4_0) return reference_pack_q4_0(K, W, w_stride, n_rows);
  const int64_t nsb = K / QK_K;
  const size_t bytes = type == DType::Q6_K   ? 16 * sizeof(block_q6_K)
                       : type == DType::Q5_K ? 16 * sizeof(block_q5_K)
                                             : 16 * sizeof(block_q4_K);
  std::vector<uint8_t> out(size_t(n_rows / 16 * nsb) * bytes);
  for (int64_t g = 0; g < n_rows / 16; ++g)
    for (int64_t sb = 0; sb < nsb; ++sb) {
      uint8_t* p = out.data() + size_t(g * nsb + sb) * bytes;
      for (int i = 0; i < 16; ++i) {
        const uint8_t* row = W + size_t(g * 16 + i) * w_stride;
        if (type == DType::Q6_K) {
          const auto& b = reinterpret_cast<const block_q6_K*>(row)[sb];
          put_dwords(p, b.ql, 32, i);
          put_dwords(p + 2048, b.qh, 16, i);
          for (int j = 0; j < 8; ++j) std::memcpy(p + 3072 + 32 * j + 2 * i, b.scales + 2 * j, 2);
          std::memcpy(p + 3328 + 2 * i, &b.d, 2);
        } else if (type == DType::Q5_K) {
          const auto& b = reinterpret_cast<const block_q5_K*>(row)[sb];
          put_dwords(p, b.qs, 32, i);
          put_dwords(p + 2048, b.qh, 8, i);
          put_dwords(p + 2560, b.scales, 3, i);
          std::memcpy(p + 2752 + 2 * i, &b.d, 2);
          std::memcpy(p + 2784 + 2 * i, &b.dmin, 2);
        } else {
          const auto& b = reinterpret_cast<const block_q4_K*>(row)[sb];
          put_dwords(p, b.qs, 32, i);
          put_dwords(p + 2048, b.scales, 3, i);
          std::memcpy(p + 2240 + 2 * i, &b.d, 2);
          std::memcpy(p + 2272 + 2 * i, &b.dmin, 2);
        }
      }
    }
  return out;
}

// The (vectorised) packers against the byte-by-byte reference: several groups and super-blocks,
// the weights at the very end of their buffer (the packer must not read past the last block).
TEST(Kernels, RepackedLayoutMatchesScalarReference) {
  int checked = 0;
  for (DType type : {DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::Q4_0})
    for (Isa isa : levels()) {
      const RepackEntry& rp = table(isa).repack[uint32_t(type)];
      if (rp.row_group <= 0) continue;
      ASSERT_EQ(rp.row_group, 16);
      // Q4_0 also rows that end in a partial chunk (of 8 blocks): 1, 3 and 5 blocks past it.
      for (int64_t K : {256, 1280, 32, 352, 1184}) {
        if (K % type_traits(type).block_elems != 0) continue;
        const int64_t R = 48;
        auto q = make(type_traits(type), K, R, 1, uint32_t(K + uint32_t(type)));
        const auto want = reference_pack(type, K, q.w.data(), q.w_stride, R);
        ASSERT_EQ(want.size(), rp.packed_bytes(K, R));
        std::vector<uint8_t> got(want.size() + 1, 0xA5);
        rp.pack(K, q.w.data(), q.w_stride, R, got.data());
        EXPECT_EQ(got.back(), 0xA5) << "pack wrote past packed_bytes";
        got.pop_back();
        EXPECT_EQ(got, want) << type_traits(type).name << " " << isa_name(isa) << " K=" << K;
        ++checked;
      }
    }
  if (detected_isa() >= Isa::kAvx512) EXPECT_GT(checked, 0);
}

// Prefill (M >= 16; Q4_0: 8) on repacked weights runs the file layout's rows-16 GEMM on the packed
// groups expanded in place of the per-row unpack: the same bytes, scales and sums, so the two must
// agree bit for bit. Row counts that leave partial register tiles (1, 4, 5 groups against tiles of
// 3), partial column tiles (M % 4 != 0) and K over several 512-element chunks (and a partial one).
TEST(Kernels, RepackedPrefillEqualsFileLayoutPrefill) {
  int checked = 0;
  for (const TypeTraits* tt : weight_types())
    for (Isa isa : levels()) {
      const KernelTable& kt = table(isa);
      const RepackEntry& rp = kt.repack[uint32_t(tt->type)];
      if (rp.row_group <= 0) continue;
      for (int64_t K : {256, 1280, 2048})
        for (int64_t groups : {1, 4, 5})
          for (int64_t M : {16, 19, 64}) {
            if (K == 2048 && M != 19) continue;
            const int64_t R = groups * rp.row_group;
            auto q = make(*tt, K, R, M, uint32_t(11 * M + K + groups + uint32_t(tt->type)));
            std::vector<uint8_t> packed(rp.packed_bytes(K, R));
            rp.pack(K, q.w.data(), q.w_stride, R, packed.data());
            const int64_t ldy = R + 3;
            std::vector<float> want(size_t(M * ldy), NAN), got(size_t(M * ldy), NAN);
            kt.gemm[uint32_t(tt->type)](K, q.w.data(), q.w_stride, R, q.a.data(), q.a_stride, M,
                                        want.data(), size_t(ldy));
            rp.gemm(K, packed.data(), R, q.a.data(), q.a_stride, M, got.data(), size_t(ldy));
            for (int64_t m = 0; m < M; ++m) {
              for (int64_t r = 0; r < R; ++r)
                ASSERT_EQ(got[size_t(m * ldy + r)], want[size_t(m * ldy + r)])
                    << tt->name << " " << isa_name(isa) << " K=" << K << " R=" << R << " M=" << M
                    << " row " << r << " col " << m;
              for (int64_t r = R; r < ldy; ++r) ASSERT_TRUE(std::isnan(got[size_t(m * ldy + r)]));
            }
            ++checked;
          }
    }
  std::printf("repacked prefill (type, level, K, R, M) cases checked: %d\n", checked);
  if (detected_isa() >= Isa::kAvx512) EXPECT_GT(checked, 0);
}

TEST(Kernels, ActivationQuantizersAreBitIdentical) {
  for (DType at : {DType::Q8_0, DType::Q8_1, DType::Q8_K, DType::F16, DType::BF16}) {
    const TypeTraits* tt = find_type(uint32_t(at));
    if (!tt) continue;
    const int64_t K = 1024;
    auto x = randn(size_t(K), 77);
    x[5] = -x[5];  // mix signs of the extremes
    // One block of exact halves (amax 127, so the multiplier is 1): ties, which the activation
    // quantizers of Q8_0/Q8_1 round to even, as llama.cpp's x86 backend does.
    for (int j = 0; j < 32; ++j) x[size_t(64 + j)] = j == 0 ? 127.0f : float(j % 7) - 3.5f;
    std::vector<uint8_t> ref(row_bytes(*tt, K)), got(row_bytes(*tt, K));
    act_quantizer (*tt)(x.data(), ref.data(), K);
    if (tt->quantize_act) {  // differs from the weight quantizer (round half away from zero)
      tt->quantize_row(x.data(), got.data(), K);
      EXPECT_NE(std::memcmp(ref.data(), got.data(), ref.size()), 0) << tt->name;
    }
    for (Isa isa : levels()) {
      std::fill(got.begin(), got.end(), 0xAB);
      table(isa).quantize_row[uint32_t(at)](x.data(), got.data(), K);
      EXPECT_EQ(std::memcmp(ref.data(), got.data(), ref.size()), 0)
          << tt->name << " " << isa_name(isa);
    }
    // All-zero rows take the zero-scale path.
    std::vector<float> zeros(size_t(K), 0.0f);
    act_quantizer (*tt)(zeros.data(), ref.data(), K);
    for (Isa isa : levels()) {
      table(isa).quantize_row[uint32_t(at)](zeros.data(), got.data(), K);
      EXPECT_EQ(std::memcmp(ref.data(), got.data(), ref.size()), 0)
          << tt->name << " zeros " << isa_name(isa);
    }
  }
}

// llama.cpp's x86 Q8_0 dot: per 4-byte lane of a block one float accumulator over the blocks,
// acc = fma(dx * dy, lane_dot, acc), then lanes (0+4, 1+5, 2+6, 3+7), (a0+a2, a1+a3), b0+b1.
float q8_0_dot_llama_order(int64_t K, const uint8_t* wx, const uint8_t* wy) {
  const auto* x = reinterpret_cast<const block_q8_0*>(wx);
  const auto* y = reinterpret_cast<const block_q8_0*>(wy);
  float acc[8] = {};
  for (int64_t b = 0; b < K / 32; ++b) {
    const float d = fp16_to_fp32(x[b].d) * fp16_to_fp32(y[b].d);
    for (int l = 0; l < 8; ++l) {
      int32_t s = 0;
      for (int i = 4 * l; i < 4 * l + 4; ++i) s += int32_t(x[b].qs[i]) * y[b].qs[i];
      acc[l] = std::fma(d, float(s), acc[l]);
    }
  }
  float a[4], c[2];
  for (int i = 0; i < 4; ++i) a[i] = acc[i + 4] + acc[i];
  for (int i = 0; i < 2; ++i) c[i] = a[i] + a[i + 2];
  return c[0] + c[1];
}

// The Q8_0 kernels that sum in llama.cpp's order do so exactly, on every path: decode (M = 1),
// small batches, prefill (M >= 16, K a multiple of 256, and not), odd row counts, vec_dot; on
// the AVX-512 level (the llama-order kernel; the faster order is only close), AVX-VNNI and AVX2.
TEST(Kernels, Q8_0SumsInLlamaCppOrder) {
  if (detected_isa() < Isa::kAvx2) GTEST_SKIP() << "no AVX2 on this CPU";
  const bool avx512 = detected_isa() >= Isa::kAvx512;
  const TypeTraits& tt = type_traits(DType::Q8_0);
  for (int64_t K : {512, 96, 640})
    for (int64_t M : {1, 2, 3, 5, 8, 9, 16, 17, 33}) {
      const int64_t R = 13;
      auto q = make(tt, K, R, M, uint32_t(7 * M + K));
      std::vector<float> y(size_t(M * R), NAN), fast(size_t(M * R), NAN), y2(size_t(M * R), NAN);
      if (avx512) {
        gemm_q8_0_avx512(true, K, q.w.data(), q.w_stride, R, q.a.data(), q.a_stride, M, y.data(),
                         R);
        gemm_q8_0_avx512(false, K, q.w.data(), q.w_stride, R, q.a.data(), q.a_stride, M,
                         fast.data(), R);
      }
      table(Isa::kAvx2)
          .gemm[uint32_t(DType::Q8_0)](K, q.w.data(), q.w_stride, R, q.a.data(), q.a_stride, M,
                                       y2.data(), R);
      std::vector<float> y3(size_t(M * R), NAN);  // the AVX-VNNI level (EVEX form on AVX-512)
      const bool vnni = detected_isa() >= Isa::kAvxVnni;
      if (vnni)
        table(Isa::kAvxVnni)
            .gemm[uint32_t(DType::Q8_0)](K, q.w.data(), q.w_stride, R, q.a.data(), q.a_stride, M,
                                         y3.data(), R);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t r = 0; r < R; ++r) {
          const uint8_t* w = q.w.data() + r * q.w_stride;
          const uint8_t* a = q.a.data() + m * q.a_stride;
          const float want = q8_0_dot_llama_order(K, w, a);
          ASSERT_EQ(y2[m * R + r], want) << "avx2 K " << K << " M " << M << " row " << r;
          ASSERT_EQ(table(Isa::kAvx2).vec_dot[uint32_t(DType::Q8_0)](K, w, a), want);
          if (vnni) ASSERT_EQ(y3[m * R + r], want) << "avxvnni K " << K << " M " << M;
          if (!avx512) continue;
          ASSERT_EQ(y[m * R + r], want) << "K " << K << " M " << M << " row " << r;
          ASSERT_EQ(table(Isa::kAvx512).vec_dot[uint32_t(DType::Q8_0)](K, w, a), want);
          EXPECT_NEAR(fast[m * R + r], want, 1e-4f * (1.0f + std::fabs(want))) << "fast order";
        }
    }
}

// The AVX-512 prefill tile (16 interleaved weight rows x 3 columns, K in chunks whose lane sums
// go through a scratch): several row groups and a partial one, column counts that leave 1 or 2
// over, K of one chunk, of whole chunks and of whole chunks plus a block, Y with padding; raw
// bytes over the whole int8 range (-128 included) as well as quantized rows.
TEST(Kernels, Q8_0PrefillTileSumsInLlamaCppOrder) {
  if (detected_isa() < Isa::kAvx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  const TypeTraits& tt = type_traits(DType::Q8_0);
  for (bool raw : {false, true})
    for (int64_t K : {512, 2048, 1056})
      for (int64_t M : {16, 17, 33, 50}) {
        const int64_t R = 37;
        const size_t ldy = size_t(R) + 3;
        auto q = make(tt, K, R, M, uint32_t(11 * M + K + raw));
        if (raw) {  // every qs byte random, scales of both signs
          std::mt19937 rng(uint32_t(K + M));
          for (auto* v : {&q.w, &q.a})
            for (size_t i = 0; i < v->size(); i += sizeof(block_q8_0)) {
              auto* b = reinterpret_cast<block_q8_0*>(v->data() + i);
              b->d = fp32_to_fp16(std::uniform_real_distribution<float>(-0.05f, 0.05f)(rng));
              for (auto& x : b->qs) x = int8_t(rng());
            }
        }
        std::vector<float> y(size_t(M) * ldy, NAN);
        gemm_q8_0_avx512(true, K, q.w.data(), q.w_stride, R, q.a.data(), q.a_stride, M, y.data(),
                         ldy);
        for (int64_t m = 0; m < M; ++m) {
          for (int64_t r = 0; r < R; ++r) {
            const float want =
                q8_0_dot_llama_order(K, q.w.data() + r * q.w_stride, q.a.data() + m * q.a_stride);
            ASSERT_EQ(y[size_t(m) * ldy + r], want)
                << "raw " << raw << " K " << K << " M " << M << " row " << r << " col " << m;
          }
          for (size_t r = size_t(R); r < ldy; ++r)
            ASSERT_TRUE(std::isnan(y[size_t(m) * ldy + r])) << "padding written, col " << m;
        }
      }
}

// Q4_0 and Q5_0 on the x86 levels sum as llama.cpp's AVX2 code (which its AVX-512 builds use for
// these types too) does: per block the signed values (q - 8, q - 16) times the activation bytes in
// 8 lanes of 4, one FMA of dx * dy per lane, then the hsum fold (decode and small batches;
// vec_dot).
float q4_q5_dot_llama_order(DType t, int64_t K, const uint8_t* wx, const uint8_t* wy) {
  const auto* y = reinterpret_cast<const block_q8_0*>(wy);
  float acc[8] = {};
  for (int64_t b = 0; b < K / 32; ++b) {
    int8_t v[32];
    float dx;
    if (t == DType::Q4_0) {
      const auto& x = reinterpret_cast<const block_q4_0*>(wx)[b];
      for (int i = 0; i < 16; ++i) {
        v[i] = int8_t((x.qs[i] & 15) - 8);
        v[i + 16] = int8_t((x.qs[i] >> 4) - 8);
      }
      dx = fp16_to_fp32(x.d);
    } else {
      const auto& x = reinterpret_cast<const block_q5_0*>(wx)[b];
      uint32_t qh;
      std::memcpy(&qh, x.qh, 4);
      for (int i = 0; i < 16; ++i) {
        v[i] = int8_t(((x.qs[i] & 15) | (((qh >> i) & 1) << 4)) - 16);
        v[i + 16] = int8_t(((x.qs[i] >> 4) | (((qh >> (i + 16)) & 1) << 4)) - 16);
      }
      dx = fp16_to_fp32(x.d);
    }
    const float d = dx * fp16_to_fp32(y[b].d);
    for (int l = 0; l < 8; ++l) {
      int32_t s = 0;
      for (int i = 4 * l; i < 4 * l + 4; ++i) s += int32_t(v[i]) * y[b].qs[i];
      acc[l] = std::fma(d, float(s), acc[l]);
    }
  }
  float a[4], c[2];
  for (int i = 0; i < 4; ++i) a[i] = acc[i + 4] + acc[i];
  for (int i = 0; i < 2; ++i) c[i] = a[i] + a[i + 2];
  return c[0] + c[1];
}

TEST(Kernels, Q4_0AndQ5_0SumInLlamaCppAvx2Order) {
  if (detected_isa() < Isa::kAvx2) GTEST_SKIP() << "no AVX2 on this CPU";
  for (Isa isa : levels()) {
    if (isa == Isa::kGeneric) continue;  // the references sum per block
    const KernelTable& kt = table(isa);
    for (DType t : {DType::Q4_0, DType::Q5_0})
      for (int64_t K : {512, 96, 640})
        for (int64_t M : {1, 2, 3, 5}) {
          const int64_t R = 9;
          auto q = make(type_traits(t), K, R, M, uint32_t(5 * M + K + int(t)));
          std::vector<float> y(size_t(M * R), NAN);
          kt.gemm[uint32_t(t)](K, q.w.data(), q.w_stride, R, q.a.data(), q.a_stride, M, y.data(),
                               R);
          for (int64_t m = 0; m < M; ++m)
            for (int64_t r = 0; r < R; ++r) {
              const uint8_t* w = q.w.data() + r * q.w_stride;
              const uint8_t* a = q.a.data() + m * q.a_stride;
              const float want = q4_q5_dot_llama_order(t, K, w, a);
              ASSERT_EQ(y[m * R + r], want)
                  << isa_name(isa) << " " << int(t) << " K " << K << " M " << M << " row " << r;
              ASSERT_EQ(kt.vec_dot[uint32_t(t)](K, w, a), want) << isa_name(isa);
            }
        }
  }
}

// Repacked Q4_0 (kernels/x86_avx512/repacked_q4_0.cpp) sums as the file layout's kernels do at
// every M: in llama.cpp's order below 8 activation rows and wherever K is not whole 256-element
// chunks, in the rows-16 GEMM's from 8 rows on. So repacking changes no Q4_0 result bit. Row
// counts of 1 and 3 groups, K with partial chunks, every small-batch column tile.
TEST(Kernels, RepackedQ4_0EqualsFileLayout) {
  int checked = 0;
  const TypeTraits& tt = type_traits(DType::Q4_0);
  for (Isa isa : levels()) {
    const KernelTable& kt = table(isa);
    const RepackEntry& rp = kt.repack[uint32_t(DType::Q4_0)];
    if (rp.row_group <= 0) continue;
    for (int64_t K : {256, 2048, 96, 608})
      for (int64_t groups : {1, 3})
        for (int64_t M : {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 19}) {
          const int64_t R = groups * rp.row_group;
          auto q = make(tt, K, R, M, uint32_t(13 * M + K + groups));
          std::vector<uint8_t> packed(rp.packed_bytes(K, R));
          rp.pack(K, q.w.data(), q.w_stride, R, packed.data());
          const int64_t ldy = R + 3;
          std::vector<float> want(size_t(M * ldy), NAN), got(size_t(M * ldy), NAN);
          kt.gemm[uint32_t(DType::Q4_0)](K, q.w.data(), q.w_stride, R, q.a.data(), q.a_stride, M,
                                         want.data(), size_t(ldy));
          rp.gemm(K, packed.data(), R, q.a.data(), q.a_stride, M, got.data(), size_t(ldy));
          const bool llama_order = M < 8 || K % QK_K != 0;
          for (int64_t m = 0; m < M; ++m) {
            for (int64_t r = 0; r < R; ++r) {
              const float v = got[size_t(m * ldy + r)];
              ASSERT_EQ(v, want[size_t(m * ldy + r)]) << isa_name(isa) << " K=" << K << " R=" << R
                                                      << " M=" << M << " row " << r << " col " << m;
              if (llama_order)
                ASSERT_EQ(v, q4_q5_dot_llama_order(DType::Q4_0, K, q.w.data() + r * q.w_stride,
                                                   q.a.data() + m * q.a_stride))
                    << "K=" << K << " M=" << M << " row " << r << " col " << m;
            }
            for (int64_t r = R; r < ldy; ++r) ASSERT_TRUE(std::isnan(got[size_t(m * ldy + r)]));
          }
          ++checked;
        }
  }
  std::printf("repacked Q4_0 (level, K, R, M) cases checked: %d\n", checked);
  if (detected_isa() >= Isa::kAvx512) {
    EXPECT_GT(checked, 0);
  }
}

// The float gemms block rows and columns for prefill; each output must still be summed exactly as
// the ISA's vec_dot sums it, so prefill and decode agree bit for bit.
TEST(Kernels, FloatGemmEqualsVecDotExactly) {
  for (DType t : {DType::F16, DType::BF16, DType::F32})
    for (Isa isa : levels()) {
      const KernelTable& kt = table(isa);
      const TypeTraits& tt = type_traits(t);
      for (int64_t K : {768, 104, 101})
        for (int64_t M : {4, 7, 64, 70, 131}) {
          const int64_t R = 13;
          auto q = make(tt, K, R, M, uint32_t(7 * M + K));
          std::vector<float> y(size_t(M * R), NAN);
          kt.gemm[uint32_t(t)](K, q.w.data(), q.w_stride, R, q.a.data(), q.a_stride, M, y.data(),
                               R);
          int bad = 0;
          for (int64_t m = 0; m < M; ++m)
            for (int64_t r = 0; r < R; ++r) {
              const float v = kt.vec_dot[uint32_t(t)](K, q.w.data() + r * q.w_stride,
                                                      q.a.data() + m * q.a_stride);
              bad += std::memcmp(&v, &y[size_t(m * R + r)], sizeof v) != 0;
            }
          EXPECT_EQ(bad, 0) << tt.name << " " << isa_name(isa) << " K=" << K << " M=" << M;
        }
    }
}

TEST(Kernels, MadF16MatchesReference) {
  std::vector<uint16_t> x(77);
  auto f = randn(77, 5);
  for (size_t i = 0; i < x.size(); ++i) x[i] = uint16_t(i * 811 % 30000);
  for (Isa isa : levels()) {
    std::vector<float> y(f), ref(f);
    table(isa).mad_f16(77, y.data(), x.data(), 0.37f);
    table(Isa::kGeneric).mad_f16(77, ref.data(), x.data(), 0.37f);
    for (size_t i = 0; i < y.size(); ++i)
      EXPECT_NEAR(y[i], ref[i], 1e-5f * (1 + std::fabs(ref[i])));
  }
}

}  // namespace
}  // namespace hearth::kernels

namespace hearth::kernels {
namespace {

// Every level sums in llama.cpp's order (KernelTable::attn_f16), so they agree bit for bit; and
// the result is the attention formula (double reference) to F16 rounding of the probabilities.
TEST(Kernels, GroupedF16AttentionMatchesReference) {
  for (int hd : {64, 128}) {
    for (int g : {1, 4, 7}) {
      for (int64_t key0 : {0, 5, 16, 29}) {
        const int64_t n_keys = 37;
        std::mt19937 gen(uint32_t(hd * 10 + g));
        std::normal_distribution<float> d(0.0f, 1.0f);
        std::vector<uint16_t> q(size_t(g * hd)), k(size_t(n_keys * hd)), v(size_t(n_keys * hd));
        for (auto* vec : {&q, &k, &v})
          for (auto& x : *vec) x = fp32_to_fp16(d(gen));
        std::vector<float> ref(size_t(g * hd)), got(size_t(g * hd)), scratch(size_t(g * n_keys));
        std::vector<float> lanes(size_t(g) * 16 * hd);
        const float scale = 1.0f / std::sqrt(float(hd));
        table(Isa::kGeneric)
            .attn_f16(hd, g, q.data(), reinterpret_cast<uint8_t*>(k.data()), hd * 2,
                      reinterpret_cast<uint8_t*>(v.data()), hd * 2, n_keys, key0, scale, 0,
                      scratch.data(), lanes.data(), ref.data());
        for (int h = 0; h < g; ++h) {  // the formula in double
          std::vector<double> p(static_cast<size_t>(n_keys));
          double mx = -1e300, sum = 0;
          for (int64_t j = 0; j < n_keys; ++j) {
            double s = 0;
            for (int i = 0; i < hd; ++i)
              s += double(fp16_to_fp32(k[j * hd + i])) * fp16_to_fp32(q[h * hd + i]);
            p[j] = s * scale;
            mx = std::max(mx, p[j]);
          }
          for (auto& x : p) sum += (x = std::exp(x - mx));
          for (int i = 0; i < hd; ++i) {
            double o = 0;
            for (int64_t j = 0; j < n_keys; ++j) o += p[j] / sum * fp16_to_fp32(v[j * hd + i]);
            EXPECT_NEAR(ref[h * hd + i], o, 2e-3) << "hd " << hd << " g " << g;
          }
        }
        for (Isa isa : levels()) {
          table(isa).attn_f16(hd, g, q.data(), reinterpret_cast<uint8_t*>(k.data()), hd * 2,
                              reinterpret_cast<uint8_t*>(v.data()), hd * 2, n_keys, key0, scale, 0,
                              scratch.data(), lanes.data(), got.data());
          for (size_t i = 0; i < ref.size(); ++i)
            ASSERT_EQ(got[i], ref[i])
                << isa_name(isa) << " hd " << hd << " g " << g << " key0 " << key0 << " at " << i;
        }
      }
    }
  }
}

// The tiled attention step (online softmax) at every level against the scalar reference, and the
// reference against the formula in double: several tiles in a row carry the running state; rows
// see arbitrary key ranges of each tile (empty ones included, as masks leave them); few rows take
// the decode kernel, many the prefill one; softcap on and off.
TEST(Kernels, AttnTileMatchesReference) {
  for (int hd : {64, 128}) {
    for (int hdv : {hd, 256}) {
      for (int m : {1, 3, 4, 8, 9, 17, 40, 64}) {
        for (float softcap : {0.0f, 20.0f}) {
          const int n_tiles = 3, n = 37;  // n not a multiple of 16: the tile is padded
          const int np = (n + 15) & ~15, mp = (m + 15) & ~15;
          std::mt19937 gen(uint32_t(hd * 1000 + hdv * 10 + m));
          std::normal_distribution<float> d(0.0f, 1.0f);
          std::uniform_int_distribution<int> key(0, n);
          std::vector<float> q(size_t(m) * hd), qt(size_t(hd) * mp, 0.0f);
          for (int r = 0; r < m; ++r)
            for (int i = 0; i < hd; ++i)
              qt[size_t(i) * mp + r] = q[size_t(r) * hd + i] = d(gen) * 0.3f;
          std::vector<std::vector<float>> k(n_tiles), v(n_tiles);
          std::vector<std::vector<int32_t>> lo(n_tiles), hi(n_tiles);
          for (int t = 0; t < n_tiles; ++t) {
            k[t].assign(size_t(np) * hd, 0.0f);
            v[t].assign(size_t(np) * hdv, 0.0f);
            for (int j = 0; j < n; ++j) {
              for (int i = 0; i < hd; ++i) k[t][size_t(j) * hd + i] = d(gen);
              for (int i = 0; i < hdv; ++i) v[t][size_t(j) * hdv + i] = d(gen);
            }
            for (int r = 0; r < m; ++r) {
              int a = key(gen), b = key(gen);
              if (a > b) std::swap(a, b);
              if (r % 5 == 1) a = b = 0;  // sees nothing in this tile
              if (t == 0 && r % 5 == 2) a = 0, b = n;
              lo[t].push_back(a);
              hi[t].push_back(b);
            }
          }
          auto run = [&](const KernelTable& kt, std::vector<float>& out) {
            std::vector<float> mx(size_t(mp), -INFINITY), l(size_t(mp), 0.0f);
            std::vector<float> o(size_t(m) * hdv, 0.0f), s(size_t(np + 1) * mp + 16 * hd);
            for (int t = 0; t < n_tiles; ++t)
              kt.attn_tile(hd, hdv, m, q.data(), qt.data(), k[t].data(), v[t].data(), n,
                           lo[t].data(), hi[t].data(), softcap, mx.data(), l.data(), o.data(),
                           s.data());
            out.assign(o.size(), 0.0f);
            for (int r = 0; r < m; ++r)
              for (int i = 0; i < hdv; ++i)
                out[size_t(r) * hdv + i] = l[r] > 0 ? o[size_t(r) * hdv + i] / l[r] : 0.0f;
          };
          std::vector<float> ref, got;
          run(table(Isa::kGeneric), ref);
          for (int r = 0; r < m; ++r) {  // the formula in double
            std::vector<double> sc;
            std::vector<const float*> vr;
            double mxd = -1e300, sum = 0;
            for (int t = 0; t < n_tiles; ++t)
              for (int j = lo[t][r]; j < hi[t][r]; ++j) {
                double x = 0;
                for (int i = 0; i < hd; ++i)
                  x += double(q[size_t(r) * hd + i]) * k[t][size_t(j) * hd + i];
                if (softcap > 0) x = softcap * std::tanh(x / softcap);
                sc.push_back(x);
                vr.push_back(v[t].data() + size_t(j) * hdv);
                mxd = std::max(mxd, x);
              }
            for (double& x : sc) sum += (x = std::exp(x - mxd));
            for (int i = 0; i < hdv; ++i) {
              double o = 0;
              for (size_t j = 0; j < sc.size(); ++j) o += sc[j] / sum * vr[j][i];
              ASSERT_NEAR(ref[size_t(r) * hdv + i], o, 2e-5)
                  << "hd " << hd << " m " << m << " r " << r << " softcap " << softcap;
            }
          }
          for (Isa isa : levels()) {
            run(table(isa), got);
            for (size_t i = 0; i < ref.size(); ++i)
              ASSERT_NEAR(got[i], ref[i], 1e-5f * (1 + std::fabs(ref[i])))
                  << isa_name(isa) << " hd " << hd << " hdv " << hdv << " m " << m << " softcap "
                  << softcap << " at " << i;
          }
        }
      }
    }
  }
}

// A row's result of attn_tile does not depend on how many rows the call has: decode (few rows,
// keys in the lanes on AVX-512) equals prefill (many rows) bit for bit; and attn_tile_cache,
// reading K and V straight from cache rows (strided, exactly n rows allocated, n odd), equals
// attn_tile on the rows to_f32 gives. Two tiles in a row carry the running state; rows see
// arbitrary key ranges (empty ones included); softcap on and off.
TEST(Kernels, AttnTileFewRowsEqualManyRowsAndCacheRows) {
  const int big = 20;  // rows of the reference call (the rows-in-lanes kernel)
  for (Isa isa : levels()) {
    const KernelTable& kt = table(isa);
    for (DType type : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0})
      for (int hd : {64, 128})
        for (int hdv : {hd, 256})
          for (int n : {1, 13, 37, 64})
            for (float softcap : {0.0f, 20.0f}) {
              const int np = (n + 15) & ~15, n_tiles = 2;
              const TypeTraits& tt = type_traits(type);
              const size_t kh = row_bytes(tt, hd), vh = row_bytes(tt, hdv);
              const size_t ks = 3 * kh, vs = 2 * vh;  // other heads around this one's slice
              std::mt19937 gen(uint32_t(hd * 7 + hdv * 3 + n) + uint32_t(type) * 100);
              std::normal_distribution<float> d(0.0f, 1.0f);
              std::uniform_int_distribution<int> key(0, n);
              std::vector<float> q(size_t(big) * hd);
              for (auto& x : q) x = d(gen) * 0.3f;
              std::vector<float> qt(size_t(hd) * 32, 0.0f);  // big rounded up to 16
              for (int r = 0; r < big; ++r)
                for (int i = 0; i < hd; ++i) qt[size_t(i) * 32 + r] = q[size_t(r) * hd + i];
              std::vector<std::vector<uint8_t>> kc(n_tiles), vc(n_tiles);
              std::vector<std::vector<float>> kf(n_tiles), vf(n_tiles);
              std::vector<std::vector<int32_t>> lo(n_tiles), hi(n_tiles);
              std::vector<float> x(std::max(hd, hdv));
              for (int t = 0; t < n_tiles; ++t) {
                kc[t].assign(size_t(n) * ks, 0);
                vc[t].assign(size_t(n) * vs, 0);
                kf[t].assign(size_t(np) * hd, 0.0f);
                vf[t].assign(size_t(np) * hdv, 0.0f);
                for (int j = 0; j < n; ++j) {
                  uint8_t* kr = kc[t].data() + size_t(j) * ks + kh;
                  uint8_t* vr = vc[t].data() + size_t(j) * vs + vh;
                  for (int i = 0; i < hd; ++i) x[i] = d(gen);
                  tt.quantize_row(x.data(), kr, hd);
                  for (int i = 0; i < hdv; ++i) x[i] = d(gen);
                  tt.quantize_row(x.data(), vr, hdv);
                  kt.to_f32[uint32_t(type)](kr, kf[t].data() + size_t(j) * hd, hd);
                  kt.to_f32[uint32_t(type)](vr, vf[t].data() + size_t(j) * hdv, hdv);
                }
                for (int r = 0; r < big; ++r) {
                  int a = key(gen), b = key(gen);
                  if (a > b) std::swap(a, b);
                  if (r % 5 == 1) a = b = 0;
                  if (r % 5 == 2) a = 0, b = n;
                  lo[t].push_back(a);
                  hi[t].push_back(b);
                }
              }
              // Runs m rows through the tiles; out: o / l per row.
              auto run = [&](int m, bool cache, std::vector<float>& out) {
                std::vector<float> mx(32, -INFINITY), l(32, 0.0f), o(size_t(m) * hdv, 0.0f);
                std::vector<float> sc(size_t(np + 1) * 32 + 16 * hd);
                for (int t = 0; t < n_tiles; ++t) {
                  if (cache)
                    kt.attn_tile_cache[uint32_t(type)](hd, hdv, m, q.data(), kc[t].data() + kh, ks,
                                                       vc[t].data() + vh, vs, n, lo[t].data(),
                                                       hi[t].data(), softcap, mx.data(), l.data(),
                                                       o.data(), sc.data());
                  else
                    kt.attn_tile(hd, hdv, m, q.data(), qt.data(), kf[t].data(), vf[t].data(), n,
                                 lo[t].data(), hi[t].data(), softcap, mx.data(), l.data(), o.data(),
                                 sc.data());
                }
                out.assign(o.size(), 0.0f);
                for (int r = 0; r < m; ++r)
                  for (int i = 0; i < hdv; ++i)
                    out[size_t(r) * hdv + i] = l[r] > 0 ? o[size_t(r) * hdv + i] / l[r] : 0.0f;
              };
              // qt is laid out for mp = 32 (the big call); few-row calls take q only, but
              // attn_tile's contract has qt with mp = m rounded up to 16: give them their own.
              std::vector<float> ref, got;
              run(big, false, ref);
              for (int m : {1, 3, 4, 8}) {
                std::vector<float> qt_m(size_t(hd) * 16, 0.0f);
                for (int r = 0; r < m; ++r)
                  for (int i = 0; i < hd; ++i) qt_m[size_t(i) * 16 + r] = q[size_t(r) * hd + i];
                std::swap(qt, qt_m);
                run(m, false, got);
                std::swap(qt, qt_m);
                for (size_t i = 0; i < got.size(); ++i)
                  ASSERT_EQ(got[i], ref[i])
                      << isa_name(isa) << " " << tt.name << " hd " << hd << " hdv " << hdv << " n "
                      << n << " m " << m << " softcap " << softcap << " at " << i;
                if (!kt.attn_tile_cache[uint32_t(type)]) continue;
                run(m, true, got);
                for (size_t i = 0; i < got.size(); ++i)
                  ASSERT_EQ(got[i], ref[i])
                      << isa_name(isa) << " cache " << tt.name << " hd " << hd << " hdv " << hdv
                      << " n " << n << " m " << m << " softcap " << softcap << " at " << i;
              }
            }
  }
}

// KV rows as floats (the tiled attention's tile loads) equal the type's reference dequantizer.
TEST(Kernels, KvRowsToF32MatchReference) {
  const int64_t n = 256;
  std::mt19937 gen(5);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(n), ref(n), got(n);
  for (auto& e : x) e = d(gen);
  for (DType t : {DType::F16, DType::Q8_0, DType::Q4_0, DType::F32}) {
    const TypeTraits& tt = type_traits(t);
    std::vector<uint8_t> row(row_bytes(tt, n));
    tt.quantize_row(x.data(), row.data(), n);
    tt.dequantize_row(row.data(), ref.data(), n);
    for (Isa isa : levels()) {
      ASSERT_TRUE(table(isa).to_f32[uint32_t(t)]) << tt.name;
      std::fill(got.begin(), got.end(), NAN);
      table(isa).to_f32[uint32_t(t)](row.data(), got.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(got[i], ref[i]) << isa_name(isa) << " " << tt.name << " at " << i;
    }
  }
}

// SwiGLU's activation at every level against silu(g) * u in double precision: the vector levels'
// e^x (exp_neg, degree-6 polynomial) keeps the result within a few float ulp over the range FFN
// gates take, and far out (|g| up to 200, where e^-|g| underflows) stays finite and exact enough.
TEST(Kernels, SwigluMatchesReference) {
  std::vector<float> g, u;
  std::mt19937 gen(11);
  std::normal_distribution<float> d(0.0f, 3.0f);
  for (int i = 0; i < 1000; ++i) g.push_back(d(gen)), u.push_back(d(gen));
  for (float x : {0.0f, -0.0f, 1e-30f, -1e-30f, 20.0f, -20.0f, 87.0f, -87.0f, 88.5f, -88.5f, 100.0f,
                  -100.0f, 200.0f, -200.0f})
    g.push_back(x), u.push_back(1.5f);
  g.push_back(-3.25f), u.push_back(2.0f);  // a tail past the last full vector
  const int64_t n = int64_t(g.size());
  std::vector<float> out(g.size());
  for (Isa isa : levels()) {
    ASSERT_TRUE(table(isa).swiglu) << isa_name(isa);
    std::fill(out.begin(), out.end(), NAN);
    table(isa).swiglu(g.data(), u.data(), out.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double x = g[size_t(i)];
      const double want = x / (1.0 + std::exp(-x)) * double(u[size_t(i)]);
      ASSERT_TRUE(std::isfinite(out[size_t(i)])) << isa_name(isa) << " g " << x;
      // 4 ulp of the result, or an absolute 1e-30 where e^-|g| is below the float range.
      ASSERT_NEAR(out[size_t(i)], want, 4.8e-7 * std::fabs(want) + 1e-30)
          << isa_name(isa) << " g " << x << " u " << u[size_t(i)];
    }
  }
}

// The peak probes behind `hearth bench --peak` run on every level this CPU has and count what
// they do (the x86 levels all have int8 and F32 probes; BF16 only with AVX512-BF16).
TEST(Kernels, PeakProbesRun) {
  for (Isa isa : levels()) {
    const KernelTable& kt = table(isa);
    if (isa == Isa::kGeneric) continue;
    ASSERT_TRUE(kt.peak_int8 && kt.peak_f32) << isa_name(isa);
    EXPECT_EQ(kt.peak_int8(1000) % 1000, 0u);
    EXPECT_GE(kt.peak_int8(1000), 1000u * 32);
    EXPECT_GE(kt.peak_f32(1000), 1000u * 8);
    if (kt.peak_bf16) EXPECT_GE(kt.peak_bf16(1000), 1000u * 32);
  }
}

}  // namespace
}  // namespace hearth::kernels
