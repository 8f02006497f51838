// models/transformer.h — what every architecture's model class shares: token embeddings in, the
// output head out, the cache layout its architecture declared, and context creation from the
// blocks' own scratch declarations. A family file derives from it, loads its layers from blocks
// and writes its forward pass top to bottom (see llama.cpp in this folder for the shortest).
#pragma once

#include <memory>
#include <vector>

#include "models/arch.h"
#include "models/blocks/io.h"
#include "models/context.h"
#include "models/model.h"

namespace hearth::models {

class Transformer : public Model {
 public:
  size_t state_bytes(const ContextParams& p) const override { return sequence_bytes(layout_, p); }
  Result<std::unique_ptr<Context>> new_context(const ContextParams& p,
                                               ThreadPool& pool) const override;

 protected:
  Transformer(std::shared_ptr<gguf::GgufFile> f, ArchInfo info) : layout_(std::move(info.cache)) {
    file_ = std::move(f);
    config_ = std::move(info.cfg);
  }
  // Each block reserves its scratch in ctx and lists its weights (for the matmul scratch).
  virtual void reserve(ModelContext& ctx, std::vector<const ops::WeightMatrix*>& weights) const = 0;
  // The RoPE variants the layers use, in the order their forward passes index them.
  virtual std::vector<const ops::RopeParams*> ropes() const = 0;
  // Loads the embeddings and the head (tied when the file has no output.weight).
  Status load_io(WeightLoader& w, ThreadPool& pool, const LoadOptions& opt, bool scale_embeddings,
                 float final_softcap);
  // Checks the batch and prepares ctx for it (see ModelContext::begin); false: nothing to do.
  Result<bool> begin(ModelContext& ctx, const ForwardInput& in, const ForwardOutput& out,
                     bool has_moe) const;
  Step step(ModelContext& ctx, const ForwardInput& in, int ith, int nth) const;

  Embeddings embd_;
  OutputHead head_;
  CacheLayout layout_;
};

}  // namespace hearth::models
