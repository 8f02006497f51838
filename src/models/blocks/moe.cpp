#include "models/blocks/moe.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "ops/elementwise.h"

namespace hearth::models {

void MoeScratch::begin(int64_t T) {
  float* m = margin.at(size_t(T));
  std::fill(m, m + T, std::numeric_limits<float>::infinity());
  n_margin = T;
}

Status Moe::load(WeightLoader& w, int il, int64_t E, const MoeOptions& opt) {
  n_embd_ = E;
  opt_ = opt;
  const int64_t ne = opt.n_expert, nf = opt.n_ff_exp;
  if (ne <= 0 || opt.n_used <= 0 || opt.n_used > ne || nf <= 0)
    return corrupt("[model] layer " + std::to_string(il) + ": " + std::to_string(opt.n_used) +
                   " of " + std::to_string(ne) + " experts of width " + std::to_string(nf));
  HEARTH_ASSIGN_OR_RETURN(router_, w.matrix(blk(il, "ffn_gate_inp.weight"), ne, E));
  if (opt.gated && w.has(blk(il, "ffn_gate_up_exps.weight"))) {  // fused: gate, then up rows
    HEARTH_ASSIGN_OR_RETURN(auto gu,
                            w.experts_split(blk(il, "ffn_gate_up_exps.weight"), ne, 2, nf, E));
    gate_ = std::move(gu[0]);
    up_ = std::move(gu[1]);
  } else {
    if (opt.gated) {
      HEARTH_ASSIGN_OR_RETURN(gate_, w.experts(blk(il, "ffn_gate_exps.weight"), ne, nf, E));
    }
    HEARTH_ASSIGN_OR_RETURN(up_, w.experts(blk(il, "ffn_up_exps.weight"), ne, nf, E));
  }
  HEARTH_ASSIGN_OR_RETURN(down_, w.experts(blk(il, "ffn_down_exps.weight"), ne, E, nf));
  if (opt.n_ff_shared > 0) {
    shared_.emplace();
    HEARTH_RETURN_IF_ERROR(shared_->load(w, il, E, opt.n_ff_shared, Activation::kSwiGLU, "_shexp"));
    if (opt.shared_gate) {
      HEARTH_ASSIGN_OR_RETURN(shared_gate_, w.vector(blk(il, "ffn_gate_inp_shexp.weight"), E));
    }
  }
  return Status::ok();
}

void Moe::reserve(MoeScratch& s, FfnScratch& fs, int64_t B) const {
  const size_t b = size_t(B), ne = size_t(opt_.n_expert), k = size_t(opt_.n_used);
  const size_t E = size_t(n_embd_);
  s.probs.need(b * ne);
  s.sel_w.need(b * k);
  s.sel_id.need(b * k);
  s.count.need(ne);
  s.rows.need(ne * b);
  s.row_w.need(ne * b);
  s.gathered.need(b * E);
  s.gate.need(b * size_t(opt_.n_ff_exp));
  s.up.need(b * size_t(opt_.n_ff_exp));
  s.exp_out.need(b * E);
  s.out.need(b * E);
  s.margin.need(b);
  if (shared_) shared_->reserve(fs, B);
}

void Moe::weights(std::vector<const ops::WeightMatrix*>& out) const {
  out.push_back(&router_);
  for (size_t e = 0; e < up_.size(); ++e) {
    if (!gate_.empty()) out.push_back(&gate_[e]);
    out.push_back(&up_[e]);
    out.push_back(&down_[e]);
  }
  if (shared_) shared_->weights(out);
}

void Moe::forward(const Step& s, const float* xin, const float* rin, float* add_to, MoeScratch& sc,
                  FfnScratch& fs, ops::MatmulScratch& ms) const {
  ThreadPool& pool = s.pool;
  const int ith = s.ith, nth = s.nth;
  const int64_t T = s.T, E = n_embd_, NF = opt_.n_ff_exp;
  const int ne = opt_.n_expert, k = opt_.n_used;
  float* P = sc.probs.at(size_t(T) * size_t(ne));
  float* SW = sc.sel_w.at(size_t(T * k));
  int32_t* SI = sc.sel_id.at(size_t(T * k));
  int32_t* CNT = sc.count.at(size_t(ne));
  int32_t* ROWS = sc.rows.at(size_t(ne) * size_t(T));
  float* RW = sc.row_w.at(size_t(ne) * size_t(T));
  float* XG = sc.gathered.at(size_t(T * E));
  float* G = sc.gate.at(size_t(T * NF));
  float* U = sc.up.at(size_t(T * NF));
  float* EO = sc.exp_out.at(size_t(T * E));
  float* OUT = sc.out.at(size_t(T * E));
  float* MARGIN = sc.margin.at(size_t(T));
  // Router logits, each token's top k, and their weights: softmax probabilities (renormalised
  // over the chosen ones when norm_topk) or, for a sigmoid router, sigmoid of the logit.
  ops::matmul_in_run(pool, ith, nth, router_, rin, T, P, size_t(ne), ms);
  for (int64_t t = s.tb; t < s.te; ++t) {
    const float* l = P + t * ne;
    int32_t* id = SI + t * k;
    float* w = SW + t * k;
    for (int j = 0; j < k; ++j) {  // k is small: repeated selection, lowest id on ties
      int best = -1;
      for (int e = 0; e < ne; ++e) {
        bool taken = false;
        for (int q = 0; q < j; ++q) taken |= id[q] == e;
        if (!taken && (best < 0 || l[e] > l[best])) best = e;
      }
      id[j] = best;
    }
    if (opt_.sigmoid_router) {
      for (int j = 0; j < k; ++j) w[j] = ops::sigmoid(l[id[j]]);
    } else {
      float mx = l[0];
      for (int e = 1; e < ne; ++e) mx = std::max(mx, l[e]);
      float sum = 0;
      for (int e = 0; e < ne; ++e) sum += std::exp(l[e] - mx);
      float wsum = 0;
      for (int j = 0; j < k; ++j) wsum += (w[j] = std::exp(l[id[j]] - mx) / sum);
      if (opt_.norm_topk)
        for (int j = 0; j < k; ++j) w[j] /= wsum;
    }
    float left = -std::numeric_limits<float>::infinity();  // best logit left out
    for (int e = 0; e < ne; ++e) {
      bool taken = false;
      for (int q = 0; q < k; ++q) taken |= id[q] == e;
      if (!taken) left = std::max(left, l[e]);
    }
    MARGIN[t] = std::min(MARGIN[t], l[id[k - 1]] - left);
    std::fill(OUT + t * E, OUT + (t + 1) * E, 0.0f);
  }
  pool.barrier();
  if (ith == 0) {  // group tokens by expert (small: T * k entries)
    std::fill(CNT, CNT + ne, 0);
    for (int64_t t = 0; t < T; ++t)
      for (int j = 0; j < k; ++j) {
        const int e = SI[t * k + j];
        const int32_t n = CNT[e]++;
        ROWS[size_t(e) * size_t(T) + size_t(n)] = int32_t(t);
        RW[size_t(e) * size_t(T) + size_t(n)] = SW[t * k + j];
      }
  }
  pool.barrier();
  const bool scale_input = opt_.sigmoid_router;
  for (int e = 0; e < ne; ++e) {
    const int64_t n = CNT[e];
    if (n == 0) continue;  // an expert no token chose is never read
    const int32_t* rows = ROWS + size_t(e) * size_t(T);
    const float* wts = RW + size_t(e) * size_t(T);
    int64_t b, en;
    ThreadPool::split(n, ith, nth, b, en);
    for (int64_t i = b; i < en; ++i) {
      std::copy_n(xin + int64_t(rows[i]) * E, E, XG + i * E);
      if (scale_input) ops::scale(XG + i * E, wts[i], E);
    }
    pool.barrier();
    if (gate_.empty()) {  // plain experts: act(Wup · x), in G
      ops::matmul_in_run(pool, ith, nth, up_[size_t(e)], XG, n, G, size_t(NF), ms);
      for (int64_t i = b; i < en; ++i) {
        float* g = G + i * NF;
        if (opt_.act == Activation::kGeGLU)
          for (int64_t j = 0; j < NF; ++j) g[j] = ops::gelu(g[j]);
        else
          for (int64_t j = 0; j < NF; ++j) g[j] = ops::silu(g[j]);
      }
    } else {
      const ops::WeightMatrix* Ws[2] = {&gate_[size_t(e)], &up_[size_t(e)]};
      float* Ys[2] = {G, U};
      ops::matmul_multi_in_run(pool, ith, nth, Ws, Ys, 2, XG, n, ms);
      for (int64_t i = b; i < en; ++i) {
        float* g = G + i * NF;
        if (opt_.act == Activation::kGeGLU)
          ops::geglu(g, U + i * NF, g, NF);
        else
          ops::swiglu(g, U + i * NF, g, NF);
      }
    }
    pool.barrier();
    ops::matmul_in_run(pool, ith, nth, down_[size_t(e)], G, n, EO, size_t(E), ms);
    for (int64_t i = b; i < en; ++i) {
      float* dst = OUT + int64_t(rows[i]) * E;
      const float* src = EO + i * E;
      const float wt = scale_input ? 1.0f : wts[i];
      for (int64_t d = 0; d < E; ++d) dst[d] += wt * src[d];
    }
    pool.barrier();
  }
  if (shared_) {  // the shared expert sees every token
    shared_->forward(s, xin, EO, fs, ms);
    for (int64_t t = s.tb; t < s.te; ++t) {
      float* sh = EO + t * E;
      if (shared_gate_) {
        const float* xt = xin + t * E;
        float z = 0;
        for (int64_t d = 0; d < E; ++d) z += xt[d] * (*shared_gate_)[size_t(d)];
        ops::scale(sh, ops::sigmoid(z), E);
      }
      ops::add(OUT + t * E, sh, OUT + t * E, E);
    }
  }
  if (add_to)
    for (int64_t t = s.tb; t < s.te; ++t) ops::add(add_to + t * E, OUT + t * E, add_to + t * E, E);
  pool.barrier();
}

}  // namespace hearth::models
