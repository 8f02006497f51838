// train/layers.h — forward and backward passes of the pieces a decoder layer is made of, in F32.
//
// Conventions: a batch is n_seq sequences of n_tok tokens each, laid out as n_seq * n_tok rows;
// positions restart at 0 in every sequence. Backward functions take the forward pass's saved
// values and the gradient of the output, write the gradient of the input, and add parameter
// gradients into their accumulators (so micro-batches accumulate).
#pragma once

#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
#include "ops/rope.h"

namespace hearth::train {

// y = x / rms(x) · g per row; rinv[r] = 1 / sqrt(mean(x²) + eps) is saved for the backward pass.
void rmsnorm_forward(ThreadPool& pool, const float* x, const float* g, int64_t rows, int64_t n,
                     float eps, float* y, float* rinv);
// dx = ∂/∂x (overwritten), dg += ∂/∂g.
void rmsnorm_backward(ThreadPool& pool, const float* x, const float* g, const float* rinv,
                      const float* dy, int64_t rows, int64_t n, float* dx, float* dg);

// h = silu(gate) · up.
void swiglu_forward(ThreadPool& pool, const float* gate, const float* up, int64_t count, float* h);
void swiglu_backward(ThreadPool& pool, const float* gate, const float* up, const float* dh,
                     int64_t count, float* dgate, float* dup);

// RoPE tables for positions 0..n_tok-1: forward rotation and its inverse (the backward pass of a
// rotation is the rotation by the opposite angle).
struct RopeTables {
  ops::RopeParams params;
  int64_t n_tok = 0;
  std::vector<float> fwd, inv;  // n_tok rows of n_rot floats (cos, sin pairs)
  void build(const ops::RopeParams& p, int64_t n_tok);
};
// Rotates rows (n_seq * n_tok rows of n_heads * head_dim) in place; inverse = backward pass.
void rope_rows(ThreadPool& pool, const RopeTables& t, bool inverse, float* x, int64_t n_seq,
               int n_heads, int head_dim);

// Causal grouped-query attention, one sequence at a time. q: rows of n_head * hd, k and v: rows
// of n_head_kv * hd (after RoPE). o: rows of n_head * hd. p: the softmax probabilities, saved
// (n_seq * n_head * n_tok * n_tok floats; the upper triangle is left zero).
struct AttentionShape {
  int64_t n_seq = 1, n_tok = 1;
  int n_head = 1, n_head_kv = 1, head_dim = 1;
  float scale = 1;
  size_t p_floats() const { return size_t(n_seq) * n_head * n_tok * n_tok; }
  // Per-thread scratch the backward pass needs.
  size_t scratch_floats() const;
};
void attention_forward(ThreadPool& pool, const AttentionShape& s, const float* q, const float* k,
                       const float* v, float* p, float* o, std::vector<std::vector<float>>& tmp);
// dq, dk, dv are overwritten.
void attention_backward(ThreadPool& pool, const AttentionShape& s, const float* q, const float* k,
                        const float* v, const float* p, const float* d_o, float* dq, float* dk,
                        float* dv, std::vector<std::vector<float>>& tmp);

// Mean cross-entropy over the rows with weight > 0: loss = Σ w_r · (logsumexp(l_r) − l_r[t_r]) /
// Σ w_r. Overwrites logits with ∂(Σ w_r · ce_r)/∂logits · grad_scale. Returns Σ w_r · ce_r (the
// un-normalised sum, so micro-batches add up) and Σ w_r in *weight_sum.
double cross_entropy(ThreadPool& pool, float* logits, const int32_t* targets, const float* weights,
                     int64_t rows, int64_t n_vocab, float grad_scale, double* weight_sum);

}  // namespace hearth::train
