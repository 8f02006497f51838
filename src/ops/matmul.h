// ops/matmul.h — the matmul front end: Y = X · Wᵀ for a weight matrix and a batch of activations.
//
// Activations are converted once per call into the weight type's activation format (Q8_0, Q8_1,
// Q8_K, F16, BF16 — what llama.cpp does, so results match it), then the kernel table's gemm runs on
// disjoint row ranges per thread. Weights stay in the mmapped file unless the active ISA has a
// load-time repack for their type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "base/huge_pages.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "kernels/kernels.h"
#include "quant/types.h"

namespace hearth::ops {

// Where a weight's bytes live while the model runs. kMapped: read in place from the file mapping
// (file-backed, shared, no copy). kResident: copied at load into anonymous 2 MiB pages (faster
// to stream; costs anonymous memory, the mapped pages are released). kAuto: resident for the
// types the active kernel table marks bandwidth-bound (`prefer_resident`), mapped otherwise.
enum class Placement { kAuto, kMapped, kResident };

// A 2-D weight of shape (n_out, n_in): n_out rows of n_in elements.
class WeightMatrix {
 public:
  WeightMatrix() = default;
  // `data` must outlive the matrix (it is the mapping). Checks type and row geometry.
  static Result<WeightMatrix> make(const char* name, DType type, int64_t n_out, int64_t n_in,
                                   const void* data, size_t nbytes);
  // Load-time preparation. If `repack` and the active kernel table has a repack entry for this
  // type, the rows in whole row groups are repacked into huge-page memory and their file pages
  // released (the packed copy replaces them; `placement` is then moot for those rows, a tail of
  // n_out % row_group rows stays mapped). Otherwise copies the rows into huge-page memory when
  // `placement` asks for it (kAuto: when the active kernels prefer it for this type).
  // Resident and packed copies come from `arena` when given.
  void prepare(ThreadPool& pool, Placement placement, bool repack, HugeArena* arena = nullptr);
  bool resident() const { return owned_ != nullptr; }

  DType type() const { return type_; }
  int64_t n_out() const { return n_out_; }
  int64_t n_in() const { return n_in_; }
  const uint8_t* data() const { return data_; }
  size_t row_stride() const { return row_stride_; }
  const uint8_t* row(int64_t r) const { return data_ + size_t(r) * row_stride_; }
  bool packed() const { return packed_ != nullptr; }
  const uint8_t* packed_data() const { return packed_.get(); }
  int row_group() const { return row_group_; }
  int64_t n_packed() const { return n_packed_; }  // rows [0, n_packed) are in the packed copy
  const kernels::RepackEntry* repack() const { return repack_; }
  // The kernels of this weight, bound from the active table when the matrix is made (once per
  // model load, not looked up per matmul).
  kernels::GemmFn gemm() const { return gemm_; }
  kernels::QuantizeRowFn quantize_act() const { return quant_; }
  // The GGUF tensor this matrix was loaded from (a view into the file's metadata; empty for
  // matrices without one, e.g. single experts): what LoRA adapters name (models/lora.h).
  std::string_view name() const { return name_; }
  void set_name(std::string_view n) { name_ = n; }

 private:
  DType type_ = DType::F32;
  int64_t n_out_ = 0, n_in_ = 0;
  const uint8_t* data_ = nullptr;
  size_t row_stride_ = 0;
  std::shared_ptr<uint8_t[]> owned_;  // resident copy of the rows (data_ points into it)
  std::shared_ptr<uint8_t[]> packed_;
  int row_group_ = 0;
  int64_t n_packed_ = 0;
  const kernels::RepackEntry* repack_ = nullptr;
  kernels::GemmFn gemm_ = nullptr;
  kernels::QuantizeRowFn quant_ = nullptr;
  std::string_view name_;
};

// Work added to a matmul's output after the base product, inside the same pool.run: LoRA
// adapters (models/lora.h) add their low-rank update Y += s·B(A·X) to the rows that use them.
// Called by every thread with the same arguments, after the base product's barrier; it must end
// with a barrier when it writes anything.
class MatmulHook {
 public:
  virtual ~MatmulHook() = default;
  virtual void after(ThreadPool& pool, int ith, int nth, const WeightMatrix& W, const float* X,
                     int64_t M, float* Y, size_t ldy) = 0;
};

// Scratch for activation conversion; sized once (no allocation per token).
struct MatmulScratch {
  std::vector<uint8_t> act;
  MatmulHook* hook = nullptr;  // set for a batch by the model context (null: plain matmuls)
  void reserve(size_t bytes) {
    if (act.size() < bytes) act.resize(bytes);
  }
};

// Bytes of converted activations needed for M rows of n_in elements for weight type `t`.
size_t activation_bytes(DType t, int64_t n_in, int64_t M);

// Y (M, n_out) = X (M, n_in) · Wᵀ. Runs on all pool threads.
void matmul(ThreadPool& pool, const WeightMatrix& W, const float* X, int64_t M, float* Y,
            MatmulScratch& scratch);

// The same, from inside a pool.run() body (ith/nth given); ends with a barrier.
void matmul_in_run(ThreadPool& pool, int ith, int nth, const WeightMatrix& W, const float* X,
                   int64_t M, float* Y, size_t ldy, MatmulScratch& scratch);

// Several weights sharing one input, from inside a pool.run() body; ends with a barrier.
// Falls back to one conversion per weight when their activation formats differ.
void matmul_multi_in_run(ThreadPool& pool, int ith, int nth, const WeightMatrix* const* Ws,
                         float* const* Ys, int n, const float* X, int64_t M,
                         MatmulScratch& scratch);

// Several weights that share one input (Q/K/V, gate/up): the activations are converted once.
// All weights must have the same n_in and the same activation type.
void matmul_shared_input(ThreadPool& pool, const WeightMatrix* const* Ws, float* const* Ys, int n,
                         const float* X, int64_t M, MatmulScratch& scratch);

}  // namespace hearth::ops
