// models/gemma_decoder.h — the layer stack the Gemma family files share: gemma.cpp (gemma3,
// gemma4) and gemma_embedding.cpp (EmbeddingGemma). Each layer is Gemma's sandwich of norms
// around both halves:
//
//   x += post_attention_norm(Attention(rms(x) · attn_norm))
//   x += post_ffw_norm(GeGLU(rms(x) · ffn_norm))
//     (26B-A4B: post_ffw_norm(post_ffw_norm_1(GeGLU(..)) + post_ffw_norm_2(MoE(..))))
//   (E2B/E4B: x += the layer's gated per-layer embedding)   (× layer_output_scale)
//
// Sliding-window layers alternate with global ones: Gemma 3 (and EmbeddingGemma) slide in layer
// il iff il % P < P - 1 (P = attention.sliding_window_pattern, default 6; Ollama's converter
// writes a per-layer array instead), Gemma 4 per a per-layer array. Sliding layers use RoPE base
// rope.freq_base_swa without scaling; Gemma 4's also have their own head size
// (attention.key_length_swa) and rotated dims, its global layers use rope_freqs (proportional
// RoPE). q and k are RMS-normed per head; Gemma 4 also norms V without a weight, uses attention
// scale 1, lets a layer without attn_v take V from its K projection, and lets its last
// attention.shared_kv_layers layers read the cache of the last earlier layer of their kind. The
// 26B-A4B adds a GeGLU expert mixture beside every dense FFN, routed from rms(x) / √n_embd ⊙
// ffn_gate_inp.scale. EmbeddingGemma attends bidirectionally, its sliding layers within a
// symmetric window (sliding_window / 2 positions on either side, as llama.cpp runs it).
#pragma once

#include <optional>
#include <vector>

#include "models/blocks/attention.h"
#include "models/blocks/ffn.h"
#include "models/blocks/moe.h"
#include "models/blocks/per_layer_embd.h"
#include "models/transformer.h"

namespace hearth::models {

enum class GemmaVariant { kGemma3, kGemma4, kEmbedding };

struct GemmaLayerSpec {
  bool swa = false;
  AttentionShape shape;
  AttentionOptions attn;
  int64_t n_ff = 0;
};

// What `<arch>.*` metadata says about the layers (no weights touched).
struct GemmaSpec {
  ModelConfig cfg;
  std::vector<GemmaLayerSpec> layers;
  ops::RopeParams rope_swa;
  float final_softcap = 0;
  int64_t per_layer_width = 0;    // Gemma 4 E2B/E4B: per-layer embeddings
  std::optional<MoeOptions> moe;  // Gemma 4 26B-A4B: experts beside every dense FFN
};

Result<GemmaSpec> read_gemma_spec(const gguf::GgufFile& f, GemmaVariant v);
Result<ArchInfo> describe_gemma(const gguf::GgufFile& f, GemmaVariant v);

class GemmaDecoder : public Transformer {
 protected:
  GemmaDecoder(std::shared_ptr<gguf::GgufFile> f, ArchInfo info)
      : Transformer(std::move(f), std::move(info)) {}

  // The sliding layers' RoPE, the per-layer inputs and every layer, as the spec describes them.
  Status load_layers(WeightLoader& w, GemmaSpec& s);
  // Every layer over the residual rows x of the batch (after embed; x is updated in place).
  // Inside pool.run; ends with a barrier.
  void forward_layers(const Step& s, ModelContext& ctx, float* x) const;

  void reserve(ModelContext& ctx, std::vector<const ops::WeightMatrix*>& ws) const override;
  std::vector<const ops::RopeParams*> ropes() const override { return {&config_.rope, &rope_swa_}; }

  bool has_moe_ = false;

 private:
  struct Layer {
    bool swa = false;
    std::vector<float> attn_norm, post_attn_norm, ffn_norm, post_ffn_norm;
    Attention attn;
    DenseFfn ffn;
    std::optional<Moe> moe;  // beside the dense FFN, with its norms and the router's input scale
    std::vector<float> router_scale, pre_ffn_norm2, post_ffn_norm1, post_ffn_norm2;
    std::optional<PerLayerGate> ple;
    std::optional<float> out_scale;
  };

  ops::RopeParams rope_swa_;
  std::optional<PerLayerInputs> ple_;
  std::vector<Layer> layers_;
};

}  // namespace hearth::models
