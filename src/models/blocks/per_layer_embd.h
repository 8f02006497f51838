// models/blocks/per_layer_embd.h — Gemma 4 (E2B/E4B) per-layer embeddings.
//
// PerLayerInputs, once per batch: every token gets an input of width P for every layer,
//   in[l] = (rms(proj(x) [l] / √n_embd) + tok_embd[token][l] · √P) / √2
// from per_layer_token_embd and per_layer_model_proj of the token embeddings x.
// PerLayerGate, in every layer after the FFN:
//   x += post_norm(Wproj · (gelu(Wgate · x) ⊙ in[l]))   (then × the layer's output scale)
#pragma once

#include <optional>
#include <vector>

#include "models/blocks/step.h"
#include "models/weights.h"
#include "ops/matmul.h"

namespace hearth::models {

struct PerLayerScratch {
  FloatScratch inputs, proj, gated;  // [token][layer][P], [token][layer][P], [token][P]
};

class PerLayerInputs {
 public:
  Status load(WeightLoader& w, int64_t n_vocab, int64_t n_embd, int64_t n_layer, int64_t width,
              float norm_eps);
  void reserve(PerLayerScratch& s, int64_t n_batch) const;
  void weights(std::vector<const ops::WeightMatrix*>& out) const { out.push_back(&proj_); }
  // From the token embeddings x (T rows). Inside pool.run; ends with a barrier.
  void forward(const Step& s, const float* x, PerLayerScratch& sc, ops::MatmulScratch& ms) const;
  int64_t width() const { return P_; }
  int64_t n_layer() const { return n_layer_; }

 private:
  int64_t n_embd_ = 0, n_layer_ = 0, P_ = 0;
  float eps_ = 1e-6f;
  const gguf::TensorInfo* tok_ = nullptr;
  ops::WeightMatrix proj_;
  std::vector<float> norm_;
};

class PerLayerGate {
 public:
  Status load(WeightLoader& w, int il, int64_t n_embd, int64_t width, float norm_eps);
  void weights(std::vector<const ops::WeightMatrix*>& out) const;
  // x (T rows) += this layer's gated per-layer input, then x *= out_scale when given; tmp: T
  // rows of n_embd scratch. Inside pool.run; ends with a barrier.
  void forward(const Step& s, int layer, int64_t n_layer, float* x, float* tmp,
               const std::optional<float>& out_scale, PerLayerScratch& sc,
               ops::MatmulScratch& ms) const;

 private:
  int64_t n_embd_ = 0, P_ = 0;
  float eps_ = 1e-6f;
  ops::WeightMatrix gate_, proj_;
  std::vector<float> post_norm_;
};

}  // namespace hearth::models
