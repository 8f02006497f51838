// models/context.h — the mutable state of a model for up to n_seq sequences: the per-layer caches
// (one CacheStore, from the architecture's cache layout), the residual stream, RoPE tables and
// each block kind's scratch, all sized at creation from the blocks' own shapes.
#pragma once

#include <memory>
#include <vector>

#include "models/blocks/attention.h"
#include "models/blocks/delta_net.h"
#include "models/blocks/ffn.h"
#include "models/blocks/moe.h"
#include "models/blocks/per_layer_embd.h"
#include "models/blocks/step.h"
#include "models/cache.h"
#include "models/lora.h"
#include "models/model.h"

namespace hearth::models {

class ModelContext final : public Context {
 public:
  ModelContext(const ContextParams& p, ThreadPool& pool) : Context(p, pool) {}
  // Allocates the caches and the residual stream for n_embd-wide rows; `ropes` are the RoPE
  // variants the layers use (cos/sin computed once per token and batch for each).
  Status init(const CacheLayout& layout, int64_t n_embd, std::vector<const ops::RopeParams*> ropes);
  // After every block reserved its scratch: sizes the matmul scratch for these weights and the
  // attention scratch for the context length.
  void finish(const std::vector<const ops::WeightMatrix*>& weights);

  int seq_capacity(int seq) const override { return cache.capacity(seq); }
  Status reserve_sequence(int seq, int n_ctx) override;
  int64_t reusable_prefix(int seq, int64_t n_past, int64_t want) const override {
    return cache.reusable_prefix(seq, n_past, want);
  }
  std::span<const float> router_margins() const override;

  // Checks a batch against the context (ids, sequences, positions, recurrent continuation),
  // plans the output rows and resets per-batch diagnostics. Before pool.run.
  Status begin(const ForwardInput& in, const ForwardOutput& out, int64_t n_vocab, bool has_moe);
  // The RoPE cos/sin of this thread's tokens for every variant (no barrier).
  void rope_tables(const Step& s);
  const float* rope_cs(int variant) const { return rope_cs_[size_t(variant)].data(); }

  CacheStore cache;
  FloatScratch x, xn, xg;  // residual stream, normed/branch rows, head input (n_batch rows each)
  FloatScratch aux;        // rows a family needs besides these (it reserves them)
  std::vector<int64_t> out_rows;  // tokens whose rows are written (logits / hidden)
  std::vector<int32_t> out_seqs;  // pooled output: sequences in order of first appearance
  ops::MatmulScratch ms;
  AttentionScratch attn;
  FfnScratch ffn;
  MoeScratch moe;
  DeltaNetScratch delta;
  PerLayerScratch ple;
  LoraRunner lora;           // the batch's adapters (ForwardInput::lora), set up by begin
  bool lora_active = false;  // some row of this batch uses an adapter

 private:
  int64_t n_embd_ = 0;
  bool has_moe_ = false;
  std::vector<const ops::RopeParams*> ropes_;
  std::vector<std::vector<float>> rope_cs_;
};

}  // namespace hearth::models
