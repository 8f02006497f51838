#include "ops/matmul.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "base/huge_pages.h"

namespace hearth::ops {

Result<WeightMatrix> WeightMatrix::make(const char* name, DType type, int64_t n_out, int64_t n_in,
                                        const void* data, size_t nbytes) {
  const TypeTraits* tt = find_type(uint32_t(type));
  if (!tt || !tt->storable)
    return unsupported(std::string("[ops] weight ") + name + " has an unsupported type");
  if (n_in <= 0 || n_out <= 0 || n_in % tt->block_elems != 0)
    return invalid_argument(std::string("[ops] weight ") + name + ": row length " +
                            std::to_string(n_in) + " is not a multiple of the " + tt->name +
                            " block size " + std::to_string(tt->block_elems));
  const size_t stride = row_bytes(*tt, n_in);
  if (nbytes < stride * size_t(n_out))
    return corrupt(std::string("[ops] weight ") + name + ": data too short");
  const TypeTraits& act = type_traits(tt->vec_dot_type);
  const kernels::KernelTable& kt = kernels::active();
  if (!kt.gemm[uint32_t(type)] || !kt.quantize_row[uint32_t(act.type)])
    return unsupported(std::string("[ops] no kernels for weight type ") + tt->name);
  if (n_in % act.block_elems != 0)
    return invalid_argument(std::string("[ops] weight ") + name + ": row length " +
                            std::to_string(n_in) + " is not a multiple of the activation block " +
                            std::to_string(act.block_elems));
  WeightMatrix w;
  w.type_ = type;
  w.n_out_ = n_out;
  w.n_in_ = n_in;
  w.data_ = static_cast<const uint8_t*>(data);
  w.row_stride_ = stride;
  w.gemm_ = kt.gemm[uint32_t(type)];
  w.quant_ = kt.quantize_row[uint32_t(act.type)];
  return w;
}

void WeightMatrix::prepare(ThreadPool& pool, Placement placement, bool repack, HugeArena* arena) {
  const auto& kt = kernels::active();
  const auto& rp = kt.repack[uint32_t(type_)];
  // Rows in whole groups are repacked; a tail of n_out % row_group rows stays in the file's
  // layout and runs on the plain gemm (gemm_rows).
  const int64_t n_packed =
      repack && rp.row_group > 0 && rp.pack && !owned_ ? n_out_ / rp.row_group * rp.row_group : 0;
  if (n_packed > 0) {
    // The packed copy replaces the packed rows' file pages (released below), so the weights are
    // not held twice; huge pages as for resident copies (fewer TLB misses while streaming).
    const size_t bytes = rp.packed_bytes(n_in_, n_packed);
    packed_ = arena ? arena->alloc(bytes) : alloc_huge_pages(bytes);
    if (!packed_)
      packed_ = std::shared_ptr<uint8_t[]>(
          new (std::align_val_t(64)) uint8_t[bytes],
          [](uint8_t* p) { operator delete[](p, std::align_val_t(64)); });
    const int g = rp.row_group;
    pool.run([&](int ith, int nth) {
      int64_t b, e;
      ThreadPool::split(n_packed, ith, nth, b, e, g);
      if (b < e)
        rp.pack(n_in_, data_ + size_t(b) * row_stride_, row_stride_, e - b,
                packed_.get() + rp.packed_bytes(n_in_, b));
    });
    release_mapped_range(data_, size_t(n_packed) * row_stride_);
    row_group_ = g;
    n_packed_ = n_packed;
    repack_ = &rp;
    return;  // the tail (if any) stays mapped
  }
  const bool resident = placement == Placement::kResident ||
                        (placement == Placement::kAuto && kt.prefer_resident[uint32_t(type_)]);
  if (resident && !owned_) {
    const size_t bytes = size_t(n_out_) * row_stride_;
    if (auto buf = arena ? arena->alloc(bytes) : alloc_huge_pages(bytes)) {
      const uint8_t* src = data_;
      pool.run([&](int ith, int nth) {
        int64_t b, e;
        ThreadPool::split(n_out_, ith, nth, b, e, 1);
        if (b < e)
          std::memcpy(buf.get() + size_t(b) * row_stride_, src + size_t(b) * row_stride_,
                      size_t(e - b) * row_stride_);
      });
      release_mapped_range(src, bytes);
      owned_ = std::move(buf);
      data_ = owned_.get();
    }  // else: stay mapped (correct, only slower)
  }
}

size_t activation_bytes(DType t, int64_t n_in, int64_t M) {
  const TypeTraits& act = type_traits(type_traits(t).vec_dot_type);
  return row_bytes(act, n_in) * size_t(M);
}

namespace {

// Converts X rows into the activation format; rows split across threads. Ends with a barrier.
void convert_activations(ThreadPool& pool, int ith, int nth, const WeightMatrix& W, const float* X,
                         int64_t M, int64_t n_in, uint8_t* out) {
  const TypeTraits& act = type_traits(type_traits(W.type()).vec_dot_type);
  const auto quant = W.quantize_act();
  const size_t stride = row_bytes(act, n_in);
  if (M >= nth) {
    int64_t b, e;
    ThreadPool::split(M, ith, nth, b, e);
    for (int64_t m = b; m < e; ++m) quant(X + m * n_in, out + m * stride, n_in);
  } else {
    // Few rows (decode): split each row by blocks so both threads share the work.
    const int64_t be = act.block_elems;
    const int64_t nb = n_in / be;
    for (int64_t m = 0; m < M; ++m) {
      int64_t b, e;
      ThreadPool::split(nb, ith, nth, b, e);
      if (b < e)
        quant(X + m * n_in + b * be, out + m * stride + size_t(b) * act.block_bytes, (e - b) * be);
    }
  }
  pool.barrier();
}

void gemm_rows(int ith, int nth, const WeightMatrix& W, const uint8_t* A, size_t a_stride,
               int64_t M, float* Y, size_t ldy) {
  int64_t b, e;
  if (W.packed()) {
    ThreadPool::split(W.n_out(), ith, nth, b, e, W.row_group());
    const int64_t np = W.n_packed(), pe = std::min(e, np), tb = std::max(b, np);
    if (b < pe)
      W.repack()->gemm(W.n_in(), W.packed_data() + W.repack()->packed_bytes(W.n_in(), b), pe - b, A,
                       a_stride, M, Y + b, ldy);
    if (tb < e) W.gemm()(W.n_in(), W.row(tb), W.row_stride(), e - tb, A, a_stride, M, Y + tb, ldy);
    return;
  }
  ThreadPool::split(W.n_out(), ith, nth, b, e, 16);
  if (b < e) W.gemm()(W.n_in(), W.row(b), W.row_stride(), e - b, A, a_stride, M, Y + b, ldy);
}

}  // namespace

void matmul_in_run(ThreadPool& pool, int ith, int nth, const WeightMatrix& W, const float* X,
                   int64_t M, float* Y, size_t ldy, MatmulScratch& scratch) {
  uint8_t* A = scratch.act.data();
  convert_activations(pool, ith, nth, W, X, M, W.n_in(), A);
  const size_t a_stride = activation_bytes(W.type(), W.n_in(), 1);
  gemm_rows(ith, nth, W, A, a_stride, M, Y, ldy);
  pool.barrier();
  if (scratch.hook) scratch.hook->after(pool, ith, nth, W, X, M, Y, ldy);
}

void matmul(ThreadPool& pool, const WeightMatrix& W, const float* X, int64_t M, float* Y,
            MatmulScratch& scratch) {
  scratch.reserve(activation_bytes(W.type(), W.n_in(), M));
  pool.run([&](int ith, int nth) {
    matmul_in_run(pool, ith, nth, W, X, M, Y, size_t(W.n_out()), scratch);
  });
}

void matmul_multi_in_run(ThreadPool& pool, int ith, int nth, const WeightMatrix* const* Ws,
                         float* const* Ys, int n, const float* X, int64_t M,
                         MatmulScratch& scratch) {
  const WeightMatrix& W0 = *Ws[0];
  const DType act0 = type_traits(W0.type()).vec_dot_type;
  bool same = true;
  for (int i = 1; i < n; ++i) same = same && type_traits(Ws[i]->type()).vec_dot_type == act0;
  if (!same) {  // e.g. Q8_0 v with Q4_K q/k: convert per weight
    for (int i = 0; i < n; ++i)
      matmul_in_run(pool, ith, nth, *Ws[i], X, M, Ys[i], size_t(Ws[i]->n_out()), scratch);
    return;
  }
  uint8_t* A = scratch.act.data();
  convert_activations(pool, ith, nth, W0, X, M, W0.n_in(), A);
  const size_t a_stride = activation_bytes(W0.type(), W0.n_in(), 1);
  for (int i = 0; i < n; ++i) gemm_rows(ith, nth, *Ws[i], A, a_stride, M, Ys[i], Ws[i]->n_out());
  pool.barrier();
  if (scratch.hook)
    for (int i = 0; i < n; ++i)
      scratch.hook->after(pool, ith, nth, *Ws[i], X, M, Ys[i], size_t(Ws[i]->n_out()));
}

void matmul_shared_input(ThreadPool& pool, const WeightMatrix* const* Ws, float* const* Ys, int n,
                         const float* X, int64_t M, MatmulScratch& scratch) {
  size_t need = 0;
  for (int i = 0; i < n; ++i)
    need = std::max(need, activation_bytes(Ws[i]->type(), Ws[i]->n_in(), M));
  scratch.reserve(need);
  pool.run(
      [&](int ith, int nth) { matmul_multi_in_run(pool, ith, nth, Ws, Ys, n, X, M, scratch); });
}

}  // namespace hearth::ops
