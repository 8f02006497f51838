#include "models/blocks/per_layer_embd.h"

#include <cmath>

#include "ops/elementwise.h"

namespace hearth::models {

Status PerLayerInputs::load(WeightLoader& w, int64_t n_vocab, int64_t E, int64_t n_layer, int64_t P,
                            float eps) {
  n_embd_ = E;
  n_layer_ = n_layer;
  P_ = P;
  eps_ = eps;
  HEARTH_ASSIGN_OR_RETURN(tok_, w.tensor("per_layer_token_embd.weight", {n_vocab, n_layer * P}));
  HEARTH_ASSIGN_OR_RETURN(proj_, w.matrix("per_layer_model_proj.weight", n_layer * P, E));
  HEARTH_ASSIGN_OR_RETURN(norm_, w.vector("per_layer_proj_norm.weight", P));
  return Status::ok();
}

void PerLayerInputs::reserve(PerLayerScratch& s, int64_t B) const {
  const size_t LP = size_t(n_layer_ * P_);
  s.inputs.need(size_t(B) * LP);
  s.proj.need(size_t(B) * LP);
  s.gated.need(size_t(B * P_));
}

void PerLayerInputs::forward(const Step& s, const float* x, PerLayerScratch& sc,
                             ops::MatmulScratch& ms) const {
  const int64_t T = s.T, E = n_embd_, P = P_, LP = n_layer_ * P;
  float* IN = sc.inputs.at(size_t(T * LP));
  float* PR = sc.proj.at(size_t(T * LP));
  ops::matmul_in_run(s.pool, s.ith, s.nth, proj_, x, T, PR, size_t(LP), ms);
  const float proj_scale = 1.0f / std::sqrt(float(E)), tok_scale = std::sqrt(float(P));
  const float in_scale = 1.0f / std::sqrt(2.0f);
  for (int64_t t = s.tb; t < s.te; ++t) {
    float* dst = IN + t * LP;
    dequantize_row_of(*tok_, s.batch[size_t(t)].token, dst);
    for (int64_t l = 0; l < n_layer_; ++l) {
      float* pr = PR + t * LP + l * P;
      ops::scale(pr, proj_scale, P);
      ops::rms_norm(pr, norm_.data(), pr, P, eps_);
      float* d = dst + l * P;
      for (int64_t i = 0; i < P; ++i) d[i] = (pr[i] + d[i] * tok_scale) * in_scale;
    }
  }
  s.barrier();
}

Status PerLayerGate::load(WeightLoader& w, int il, int64_t E, int64_t P, float eps) {
  n_embd_ = E;
  P_ = P;
  eps_ = eps;
  HEARTH_ASSIGN_OR_RETURN(gate_, w.matrix(blk(il, "inp_gate.weight"), P, E));
  HEARTH_ASSIGN_OR_RETURN(proj_, w.matrix(blk(il, "proj.weight"), E, P));
  HEARTH_ASSIGN_OR_RETURN(post_norm_, w.vector(blk(il, "post_norm.weight"), E));
  return Status::ok();
}

void PerLayerGate::weights(std::vector<const ops::WeightMatrix*>& out) const {
  out.push_back(&gate_);
  out.push_back(&proj_);
}

void PerLayerGate::forward(const Step& s, int il, int64_t n_layer, float* x, float* tmp,
                           const std::optional<float>& out_scale, PerLayerScratch& sc,
                           ops::MatmulScratch& ms) const {
  const int64_t T = s.T, E = n_embd_, P = P_, LP = n_layer * P;
  const float* IN = sc.inputs.at(size_t(T * LP));
  float* G = sc.gated.at(size_t(T * P));
  ops::matmul_in_run(s.pool, s.ith, s.nth, gate_, x, T, G, size_t(P), ms);
  for (int64_t t = s.tb; t < s.te; ++t) {
    float* g = G + t * P;
    const float* in = IN + t * LP + int64_t(il) * P;
    for (int64_t i = 0; i < P; ++i) g[i] = ops::gelu(g[i]) * in[i];
  }
  s.barrier();
  ops::matmul_in_run(s.pool, s.ith, s.nth, proj_, G, T, tmp, size_t(E), ms);
  for (int64_t t = s.tb; t < s.te; ++t) {
    float* o = tmp + t * E;
    float* xr = x + t * E;
    ops::rms_norm(o, post_norm_.data(), o, E, eps_);
    ops::add(xr, o, xr, E);
    if (out_scale) ops::scale(xr, *out_scale, E);
  }
  s.barrier();
}

}  // namespace hearth::models
