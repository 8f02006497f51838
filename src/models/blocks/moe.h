// models/blocks/moe.h — a mixture of experts in place of (or beside) the dense FFN:
//   out = Σ_{e ∈ topk(router · r)} w_e · expert_e(x)  [+ shared(x) (× σ(g · x))]
// Experts are gated (Wdown · (act(Wgate · x) ⊙ Wup · x)) or, without ffn_gate_exps, plain
// (Wdown · act(Wup · x): nomic-bert-moe's GELU experts).
// Routing variants: softmax probabilities (optionally renormalised over the chosen experts), or
// a sigmoid of the logit that scales the expert's input (Llama 4). Tokens are grouped by expert,
// so each chosen expert's weights are read once per batch and unchosen experts not at all.
#pragma once

#include <optional>
#include <vector>

#include "models/blocks/ffn.h"
#include "models/blocks/step.h"
#include "models/weights.h"

namespace hearth::models {

struct MoeOptions {
  int n_expert = 0, n_used = 0;
  int64_t n_ff_exp = 0;
  Activation act = Activation::kSwiGLU;  // the experts' (the shared expert is SwiGLU)
  bool gated = true;                     // false: no gate, act (SiLU or GELU) on Wup · x
  bool norm_topk = true;                 // softmax router: renormalise over the chosen ones
  bool sigmoid_router = false;           // weight = σ(logit), applied to the expert's input
  int64_t n_ff_shared = 0;               // shared expert width (0: none)
  bool shared_gate = false;              // shared expert × σ(ffn_gate_inp_shexp · x)
};

struct MoeScratch {
  FloatScratch probs, sel_w, gathered, gate, up, exp_out, out, margin;
  Scratch<int32_t> sel_id, rows, count;
  FloatScratch row_w;
  int64_t n_margin = 0;
  // Resets the routing-margin diagnostics for a batch of T tokens (before pool.run).
  void begin(int64_t T);
};

class Moe {
 public:
  Status load(WeightLoader& w, int il, int64_t n_embd, const MoeOptions& opt);
  void reserve(MoeScratch& s, FfnScratch& fs, int64_t n_batch) const;
  void weights(std::vector<const ops::WeightMatrix*>& out) const;
  // The mixture of xin, routed from rin (both T rows of n_embd). The result is added to add_to
  // when given, else left in s.out (T rows). Inside pool.run; ends with a barrier.
  void forward(const Step& s, const float* xin, const float* rin, float* add_to, MoeScratch& sc,
               FfnScratch& fs, ops::MatmulScratch& ms) const;

 private:
  int64_t n_embd_ = 0;
  MoeOptions opt_;
  ops::WeightMatrix router_;
  std::vector<ops::WeightMatrix> gate_, up_, down_;
  std::optional<DenseFfn> shared_;
  std::optional<std::vector<float>> shared_gate_;
};

}  // namespace hearth::models
