#include "models/blocks/ffn.h"

#include "ops/elementwise.h"

namespace hearth::models {

Status DenseFfn::load(WeightLoader& w, int il, int64_t n_embd, int64_t n_ff, Activation act,
                      const std::string& suffix) {
  n_embd_ = n_embd;
  n_ff_ = n_ff;
  act_ = act;
  const std::string g = "ffn_gate" + suffix + ".weight", u = "ffn_up" + suffix + ".weight",
                    d = "ffn_down" + suffix + ".weight";
  HEARTH_ASSIGN_OR_RETURN(gate_, w.matrix(blk(il, g.c_str()), n_ff, n_embd));
  HEARTH_ASSIGN_OR_RETURN(up_, w.matrix(blk(il, u.c_str()), n_ff, n_embd));
  HEARTH_ASSIGN_OR_RETURN(down_, w.matrix(blk(il, d.c_str()), n_embd, n_ff));
  return Status::ok();
}

void DenseFfn::reserve(FfnScratch& s, int64_t B) const {
  s.gate.need(size_t(B * n_ff_));
  s.up.need(size_t(B * n_ff_));
}

void DenseFfn::weights(std::vector<const ops::WeightMatrix*>& out) const {
  for (const auto* W : {&gate_, &up_, &down_}) out.push_back(W);
}

void DenseFfn::forward(const Step& s, const float* in, float* out, FfnScratch& sc,
                       ops::MatmulScratch& ms) const {
  const int64_t T = s.T, NF = n_ff_;
  float* G = sc.gate.at(size_t(T * NF));
  float* U = sc.up.at(size_t(T * NF));
  {
    const ops::WeightMatrix* Ws[2] = {&gate_, &up_};
    float* Ys[2] = {G, U};
    ops::matmul_multi_in_run(s.pool, s.ith, s.nth, Ws, Ys, 2, in, T, ms);
  }
  for (int64_t t = s.tb; t < s.te; ++t) {
    float* g = G + t * NF;
    if (act_ == Activation::kGeGLU)
      ops::geglu(g, U + t * NF, g, NF);
    else
      ops::swiglu(g, U + t * NF, g, NF);
  }
  s.barrier();
  ops::matmul_in_run(s.pool, s.ith, s.nth, down_, G, T, out, size_t(n_embd_), ms);
}

Status PlainFfn::load(WeightLoader& w, int il, int64_t n_embd, int64_t n_ff) {
  n_embd_ = n_embd;
  n_ff_ = n_ff;
  HEARTH_ASSIGN_OR_RETURN(up_, w.matrix(blk(il, "ffn_up.weight"), n_ff, n_embd));
  HEARTH_ASSIGN_OR_RETURN(b_up_, w.optional_vector(blk(il, "ffn_up.bias"), n_ff));
  HEARTH_ASSIGN_OR_RETURN(down_, w.matrix(blk(il, "ffn_down.weight"), n_embd, n_ff));
  HEARTH_ASSIGN_OR_RETURN(b_down_, w.optional_vector(blk(il, "ffn_down.bias"), n_embd));
  return Status::ok();
}

void PlainFfn::forward(const Step& s, const float* in, float* out, FfnScratch& sc,
                       ops::MatmulScratch& ms) const {
  const int64_t T = s.T, NF = n_ff_, E = n_embd_;
  float* U = sc.up.at(size_t(T * NF));
  ops::matmul_in_run(s.pool, s.ith, s.nth, up_, in, T, U, size_t(NF), ms);
  for (int64_t t = s.tb; t < s.te; ++t) {
    float* u = U + t * NF;
    if (b_up_) ops::add(u, b_up_->data(), u, NF);
    for (int64_t i = 0; i < NF; ++i) u[i] = ops::gelu(u[i]);
  }
  s.barrier();
  ops::matmul_in_run(s.pool, s.ith, s.nth, down_, U, T, out, size_t(E), ms);
  if (!b_down_) return;
  for (int64_t t = s.tb; t < s.te; ++t) ops::add(out + t * E, b_down_->data(), out + t * E, E);
  s.barrier();
}

}  // namespace hearth::models
