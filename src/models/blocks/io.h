// models/blocks/io.h — where a model's rows come from and where they go.
//
// Embeddings: token ids looked up in token_embd (or rows given by the caller, e.g. image patches
// projected by a vision encoder), optionally × √n_embd (Gemma).
// OutputHead: the final RMSNorm, then per ForwardOutput: logits through `output` (or the tied
// embedding table) with an optional final softcap, the normed hidden rows, or one pooled row per
// sequence (mean / first (cls) / last token of the sequence in the batch).
#pragma once

#include <vector>

#include "models/blocks/step.h"
#include "models/model.h"
#include "models/weights.h"
#include "ops/matmul.h"

namespace hearth::models {

class OutputHead;

class Embeddings {
 public:
  // Reads token_embd.weight ({n_vocab, n_embd}); sets cfg.n_vocab.
  Status load(const gguf::GgufFile& f, ModelConfig& cfg, bool scale_by_sqrt_width);
  // Reads rows from the output head's resident copy when the two are tied, so the mapped table
  // (released after the copy) is not faulted back in.
  void tie(const OutputHead& head) { head_ = &head; }
  const gguf::TensorInfo* table() const { return table_; }
  // x rows tb..te of the batch (no barrier).
  void forward(const Step& s, const ForwardInput& in, float* x) const;

 private:
  const gguf::TensorInfo* table_ = nullptr;
  const OutputHead* head_ = nullptr;
  int64_t n_embd_ = 0;
  bool scale_ = false;
};

class OutputHead {
 public:
  // output_norm.weight and output.weight, or the embedding table when there is none (tied).
  Status load(WeightLoader& w, ThreadPool& pool, const LoadOptions& opt, const ModelConfig& cfg,
              const gguf::TensorInfo& tok_embd, float final_softcap);
  // An embedding model's head: no vocabulary projection (hidden and pooled rows only). `norm`:
  // the final RMSNorm's weight, or empty when the last layer already ends in a norm (BERT).
  void load_encoder(const ModelConfig& cfg, std::vector<float> norm = {});
  bool has_logits() const { return has_logits_; }
  bool tied() const { return tied_; }
  const ops::WeightMatrix& output() const { return output_; }
  void weights(std::vector<const ops::WeightMatrix*>& out) const {
    if (has_logits_) out.push_back(&output_);
  }
  // From the residual rows x of the batch to what `out` asks for; `rows`: the tokens whose rows
  // are written (logits / hidden), `seqs`: the sequences pooled. xg: n_batch rows of scratch.
  // Inside pool.run; ends with a barrier.
  void forward(const Step& s, const float* x, const ForwardOutput& out,
               const std::vector<int64_t>& rows, const std::vector<int32_t>& seqs, float* xg,
               ops::MatmulScratch& ms) const;

 private:
  int64_t n_embd_ = 0, n_vocab_ = 0;
  float eps_ = 1e-6f, softcap_ = 0;
  bool tied_ = false, has_logits_ = false;
  std::vector<float> norm_;  // empty: no final norm
  ops::WeightMatrix output_;
};

}  // namespace hearth::models
