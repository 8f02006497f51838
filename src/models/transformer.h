// models/transformer.h — what every architecture's model class shares: token embeddings in, the
// output head out, the cache layout its architecture declared, and context creation from the
// blocks' own scratch declarations. A family file derives from it, loads its layers from blocks
// and writes its forward pass top to bottom (see llama.cpp in this folder for the shortest).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "models/arch.h"
#include "models/blocks/ffn.h"
#include "models/blocks/io.h"
#include "models/blocks/moe.h"
#include "models/context.h"
#include "models/model.h"

namespace hearth::models {

// The feed-forward half of a pre-norm decoder layer: a gated dense FFN or a mixture of experts.
class FeedForward {
 public:
  std::optional<DenseFfn> dense;
  std::optional<Moe> moe;
  // blk.<il>.ffn_* as experts when `experts` is given, else a SwiGLU FFN of width n_ff.
  Status load(WeightLoader& w, int il, int64_t n_embd, int64_t n_ff,
              const std::optional<MoeOptions>& experts);
  void reserve(ModelContext& ctx, std::vector<const ops::WeightMatrix*>& weights) const;
  // x += FFN(xn), xn being the normed input (overwritten). Inside pool.run; ends with a barrier.
  void forward_add(const Step& s, ModelContext& ctx, float* x, float* xn) const;

 private:
  int64_t n_embd_ = 0;
};

class Transformer : public Model {
 public:
  size_t state_bytes(const ContextParams& p) const override { return sequence_bytes(layout_, p); }
  Result<std::unique_ptr<Context>> new_context(const ContextParams& p,
                                               ThreadPool& pool) const override;
  std::vector<const ops::WeightMatrix*> matrices(ThreadPool& pool) const override;
  // Makes an M from the file's description and loads it: M(file, info), then m->load(args...).
  template <class M, class... Args>
  static Result<std::unique_ptr<Model>> build(Result<ArchInfo> (*describe)(const gguf::GgufFile&),
                                              std::shared_ptr<gguf::GgufFile> f, ThreadPool& pool,
                                              const LoadOptions& opt, Args... args) {
    HEARTH_ASSIGN_OR_RETURN(ArchInfo info, describe(*f));
    auto m = std::make_unique<M>(std::move(f), std::move(info));
    HEARTH_RETURN_IF_ERROR(m->load(args..., pool, opt));
    return std::unique_ptr<Model>(std::move(m));
  }

 protected:
  Transformer(std::shared_ptr<gguf::GgufFile> f, ArchInfo info) : layout_(std::move(info.cache)) {
    file_ = std::move(f);
    config_ = std::move(info.cfg);
  }
  // Each block reserves its scratch in ctx and lists its weights (for the matmul scratch).
  virtual void reserve(ModelContext& ctx, std::vector<const ops::WeightMatrix*>& weights) const = 0;
  // The RoPE variants the layers use, in the order their forward passes index them.
  virtual std::vector<const ops::RopeParams*> ropes() const = 0;
  // Loads the embeddings, the head (tied when the file has no output.weight) and the optional
  // rope_freqs (Llama 3 frequency scaling, Gemma 4's proportional RoPE) of config().rope.
  Status load_io(WeightLoader& w, ThreadPool& pool, const LoadOptions& opt, bool scale_embeddings,
                 float final_softcap);
  // The reranker head (cls.*), when the file has one; a rank pooling_type without one is an
  // error. load_io calls it; encoders, which have no load_io, call it themselves.
  Status load_classifier(WeightLoader& w);
  // Checks the batch and prepares ctx for it (see ModelContext::begin); false: nothing to do.
  Result<bool> begin(ModelContext& ctx, const ForwardInput& in, const ForwardOutput& out,
                     bool has_moe) const;
  Step step(ModelContext& ctx, const ForwardInput& in, int ith, int nth) const;
  // The batch's embeddings into ctx.x and its RoPE tables; ends with a barrier. Returns ctx.x.
  float* embed(const Step& s, ModelContext& ctx, const ForwardInput& in) const;
  // The head on the residual rows x: what `out` asks for (the last step of a forward pass).
  void output(const Step& s, ModelContext& ctx, const float* x, const ForwardOutput& out) const;

  Embeddings embd_;
  OutputHead head_;
  CacheLayout layout_;
  std::optional<std::vector<float>> rope_freqs_;
};

}  // namespace hearth::models
