// quantize/quantize.h — converting a GGUF model to another file type (`hearth quantize`).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "quantize/ftype.h"

namespace hearth::quantize {

struct QuantizeOptions {
  FType ftype = FType::Q4_K_M;
  bool allow_requantize = false;  // input tensors that are already quantized
};

struct TensorReport {
  std::string name;
  DType from, to;
  size_t bytes_in = 0, bytes_out = 0;
};

// Called after each tensor (index, total, report) — progress output.
using ProgressFn = std::function<void(size_t, size_t, const TensorReport&)>;

// Reads `in`, writes `out` atomically (temp file + rename). Metadata is copied, with
// general.file_type and general.quantization_version set as llama-quantize sets them; tensors are
// written in llama.cpp's order.
Status quantize_file(const std::string& in, const std::string& out, const QuantizeOptions& opt,
                     ThreadPool& pool, std::vector<TensorReport>* report = nullptr,
                     const ProgressFn& progress = nullptr);

}  // namespace hearth::quantize
