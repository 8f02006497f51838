// models/blocks/ffn.h — the gated feed-forward block:
//   out = Wdown · (act(Wgate · x) ⊙ Wup · x),  act = SiLU (SwiGLU) or tanh-GELU (GeGLU)
// Also the shared expert of a mixture (tensor names with a suffix such as "_shexp").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "models/blocks/step.h"
#include "models/weights.h"
#include "ops/matmul.h"

namespace hearth::models {

enum class Activation { kSwiGLU, kGeGLU };

struct FfnScratch {
  FloatScratch gate, up;
};

class DenseFfn {
 public:
  // blk.<il>.ffn_{gate,up,down}<suffix>.weight for a width of n_ff.
  Status load(WeightLoader& w, int il, int64_t n_embd, int64_t n_ff, Activation act,
              const std::string& suffix = "");
  void reserve(FfnScratch& s, int64_t n_batch) const;
  void weights(std::vector<const ops::WeightMatrix*>& out) const;
  // out (T rows of n_embd) = the FFN of in (T rows of n_embd); out may alias in. Inside
  // pool.run; ends with a barrier.
  void forward(const Step& s, const float* in, float* out, FfnScratch& sc,
               ops::MatmulScratch& ms) const;
  int64_t n_ff() const { return n_ff_; }

 private:
  int64_t n_embd_ = 0, n_ff_ = 0;
  Activation act_ = Activation::kSwiGLU;
  ops::WeightMatrix gate_, up_, down_;
};

// The ungated feed-forward block of BERT-style encoders:
//   out = Wdown · gelu(Wup · x + b_up) + b_down
class PlainFfn {
 public:
  Status load(WeightLoader& w, int il, int64_t n_embd, int64_t n_ff);
  void reserve(FfnScratch& s, int64_t n_batch) const { s.up.need(size_t(n_batch * n_ff_)); }
  void weights(std::vector<const ops::WeightMatrix*>& out) const {
    out.push_back(&up_);
    out.push_back(&down_);
  }
  // out (T rows of n_embd) = the FFN of in; out must not alias in. Inside pool.run; ends with a
  // barrier.
  void forward(const Step& s, const float* in, float* out, FfnScratch& sc,
               ops::MatmulScratch& ms) const;

 private:
  int64_t n_embd_ = 0, n_ff_ = 0;
  ops::WeightMatrix up_, down_;
  std::optional<std::vector<float>> b_up_, b_down_;
};

}  // namespace hearth::models
