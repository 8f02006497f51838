// models/blocks/io.h — where a model's rows come from and where they go.
//
// Embeddings: token ids looked up in token_embd (or rows given by the caller, e.g. image patches
// projected by a vision encoder), optionally × √n_embd (Gemma).
// OutputHead: the final RMSNorm, then per ForwardOutput: logits through `output` (or the tied
// embedding table) with an optional final softcap, the normed hidden rows, or one pooled row per
// sequence (mean / first (cls) / last token of the sequence in the batch; rank: the first (last
// for Qwen3) row through the classifier head).
// ClassifierHead: a reranker's head, as llama.cpp's rank pooling computes it: the optional dense
// `cls` (+ bias) and tanh (RoBERTa's classification head), then the optional projection
// `cls.output` (+ bias) to n_cls_out scores (BertForSequenceClassification's classifier has only
// the projection; Qwen3 rerankers too, the "yes"/"no" rows of the vocabulary projection, whose
// softmax is the score).
#pragma once

#include <cmath>
#include <optional>
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
  // What each row is multiplied by after the lookup (√n_embd or 1).
  float row_scale() const { return scale_ ? std::sqrt(float(n_embd_)) : 1.0f; }
  // x rows tb..te of the batch (no barrier).
  void forward(const Step& s, const ForwardInput& in, float* x) const;

 private:
  const gguf::TensorInfo* table_ = nullptr;
  const OutputHead* head_ = nullptr;
  int64_t n_embd_ = 0;
  bool scale_ = false;
};

class ClassifierHead {
 public:
  // Reads cls.{weight,bias} and cls.output.{weight,bias}, each optional; sets cfg.n_cls_out
  // (`<arch>.classifier.output_labels`' length, default 1) when there is a head, else 0.
  Status load(WeightLoader& w, ModelConfig& cfg, bool softmax);
  bool present() const { return dense_ || out_; }
  void weights(std::vector<const ops::WeightMatrix*>& out) const;
  // S pooled rows of n_embd in `in` (overwritten) -> S rows of n_cls_out in `out`; tmp: S rows
  // of n_embd. Inside pool.run; ends with a barrier.
  void forward(const Step& s, float* in, int64_t S, float* tmp, float* out,
               ops::MatmulScratch& ms) const;

 private:
  int64_t n_embd_ = 0, n_out_ = 0;
  bool softmax_ = false;
  std::optional<ops::WeightMatrix> dense_, out_;
  std::vector<float> dense_b_, out_b_;
};

class OutputHead {
 public:
  // output_norm.weight and output.weight, or the embedding table when there is none (tied).
  Status load(WeightLoader& w, ThreadPool& pool, const LoadOptions& opt, const ModelConfig& cfg,
              const gguf::TensorInfo& tok_embd, float final_softcap);
  // An embedding model's head: no vocabulary projection (hidden and pooled rows only). `norm`:
  // the final RMSNorm's weight, or empty when the last layer already ends in a norm (BERT).
  void load_encoder(const ModelConfig& cfg, std::vector<float> norm = {});
  // The reranker head, when the file has one (rank pooling).
  Status load_classifier(WeightLoader& w, ModelConfig& cfg);
  bool has_logits() const { return has_logits_; }
  bool tied() const { return tied_; }
  const ops::WeightMatrix& output() const { return output_; }
  void weights(std::vector<const ops::WeightMatrix*>& out) const {
    if (has_logits_) out.push_back(&output_);
    cls_.weights(out);
  }
  // From the residual rows x of the batch to what `out` asks for; `rows`: the tokens whose rows
  // are written (logits / hidden), `seqs`: the sequences pooled. xg, xt: n_batch rows of n_embd
  // scratch each. Inside pool.run; ends with a barrier.
  void forward(const Step& s, const float* x, const ForwardOutput& out,
               const std::vector<int64_t>& rows, const std::vector<int32_t>& seqs, float* xg,
               float* xt, ops::MatmulScratch& ms) const;

 private:
  int64_t n_embd_ = 0, n_vocab_ = 0;
  float eps_ = 1e-6f, softcap_ = 0;
  bool tied_ = false, has_logits_ = false, rank_last_ = false;
  std::vector<float> norm_;  // empty: no final norm
  ops::WeightMatrix output_;
  ClassifierHead cls_;
};

}  // namespace hearth::models
