// models/prenorm.h — the pre-norm decoder shared by the llama family (llama, qwen2, qwen3,
// qwen3moe), llama4 and the Qwen 3.5 hybrids:
//
//   x = token_embd[tokens]
//   every layer:  x += Mixer(rms(x) · attn_norm)     attention, or Gated DeltaNet (hybrids)
//                 x += FFN(rms(x) · ffn_norm)        SwiGLU, or a mixture of experts
//   logits = output · (rms(x) · output_norm)
//
// What differs between these families is only which blocks their layers hold and with which
// options; a family file reads that from metadata and fills `layers_` (see llama.cpp).
#pragma once

#include <optional>
#include <vector>

#include "models/blocks/attention.h"
#include "models/blocks/delta_net.h"
#include "models/transformer.h"

namespace hearth::models {

class PreNormDecoder : public Transformer {
 public:
  PreNormDecoder(std::shared_ptr<gguf::GgufFile> f, ArchInfo info)
      : Transformer(std::move(f), std::move(info)) {}
  Status eval(Context& ctx, const ForwardInput& in, const ForwardOutput& out) const override;

 protected:
  struct Layer {
    std::vector<float> attn_norm, ffn_norm;
    std::optional<Attention> attn;  // the mixer: one of the two
    std::optional<DeltaNet> delta;
    FeedForward ffn;
  };

  void reserve(ModelContext& ctx, std::vector<const ops::WeightMatrix*>& weights) const override;
  std::vector<const ops::RopeParams*> ropes() const override { return {&config_.rope}; }

  std::vector<Layer> layers_;
};

}  // namespace hearth::models
