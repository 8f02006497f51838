// The Gemma family: gemma3 (Gemma 3 text models) and gemma4 (E2B, E4B, 31B, 26B-A4B), as
// llama.cpp implements them.
//
//   x = token_embd[tokens] · √n_embd
//   every layer:  x += post_attention_norm(Attention(rms(x) · attn_norm))
//                 x += post_ffw_norm(GeGLU(rms(x) · ffn_norm))
//                   (26B-A4B: post_ffw_norm(post_ffw_norm_1(GeGLU(..)) + post_ffw_norm_2(MoE(..))))
//                 (E2B/E4B: x += the layer's gated per-layer embedding)   (× layer_output_scale)
//   logits = softcap(output · (rms(x) · output_norm))
//
// The layers (sliding and global, their RoPE, Gemma 4's variants) are models/gemma_decoder.h's,
// shared with EmbeddingGemma (gemma_embedding.cpp).
#include "models/gemma_decoder.h"

namespace hearth::models {
namespace {

template <bool kV4>
Result<ArchInfo> describe(const gguf::GgufFile& f) {
  return describe_gemma(f, kV4 ? GemmaVariant::kGemma4 : GemmaVariant::kGemma3);
}

class GemmaModel final : public GemmaDecoder {
 public:
  GemmaModel(std::shared_ptr<gguf::GgufFile> f, ArchInfo info)
      : GemmaDecoder(std::move(f), std::move(info)) {}

  Status load(bool v4, ThreadPool& pool, const LoadOptions& opt) {
    HEARTH_ASSIGN_OR_RETURN(
        GemmaSpec s, read_gemma_spec(*file_, v4 ? GemmaVariant::kGemma4 : GemmaVariant::kGemma3));
    WeightLoader w(*file_, pool, opt.repack, opt.placement, config_.arch);
    HEARTH_RETURN_IF_ERROR(load_io(w, pool, opt, true, s.final_softcap));
    return load_layers(w, s);
  }

  Status eval(Context& base, const ForwardInput& in, const ForwardOutput& out) const override {
    auto& ctx = static_cast<ModelContext&>(base);
    HEARTH_ASSIGN_OR_RETURN(bool any, begin(ctx, in, out, has_moe_));
    if (!any) return Status::ok();
    ctx.pool().run([&](int ith, int nth) {
      const Step s = step(ctx, in, ith, nth);
      float* x = embed(s, ctx, in);
      forward_layers(s, ctx, x);
      output(s, ctx, x, out);
    });
    return Status::ok();
  }
};

template <bool kV4>
Result<std::unique_ptr<Model>> load(std::shared_ptr<gguf::GgufFile> f, ThreadPool& pool,
                                    const LoadOptions& opt) {
  return Transformer::build<GemmaModel>(describe<kV4>, std::move(f), pool, opt, kV4);
}

}  // namespace

extern const Architecture kGemma3{"gemma3", describe<false>, load<false>};
extern const Architecture kGemma4{"gemma4", describe<true>, load<true>};

}  // namespace hearth::models
