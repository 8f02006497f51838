// gemma-embedding: EmbeddingGemma, Gemma 3's layers as a bidirectional text encoder, as
// llama.cpp runs it.
//
//   x = token_embd[tokens] · √n_embd
//   every layer:  Gemma 3's (models/gemma_decoder.h), attending bidirectionally; a sliding
//                 layer sees the positions within sliding_window / 2 on either side
//   h = rms(x) · output_norm                  per token: the output when nothing is pooled
//   e = pool(h)                               per sequence (`gemma-embedding.pooling_type`: mean)
//   e = dense_3 · (dense_2 · e)               sentence-transformers' Dense modules: no bias, no
//                                             activation; only on pooled rows
//
// The Dense heads are in files converted with --sentence-transformers-dense-modules (the
// `dense_2_feat_in/out`, `dense_3_feat_in/out` keys give their shapes); without them the pooled
// rows are the output. Either way the output is n_embd wide: llama.cpp requires dense_2 to take
// n_embd features and dense_3 to give n_embd. No vocabulary head: embeddings only. Not
// normalized (the server's /api/embed normalizes).
#include <algorithm>
#include <optional>

#include "models/gemma_decoder.h"

namespace hearth::models {
namespace {

Result<ArchInfo> describe(const gguf::GgufFile& f) {
  return describe_gemma(f, GemmaVariant::kEmbedding);
}

class GemmaEmbeddingModel final : public GemmaDecoder {
 public:
  GemmaEmbeddingModel(std::shared_ptr<gguf::GgufFile> f, ArchInfo info)
      : GemmaDecoder(std::move(f), std::move(info)) {}

  Status load(ThreadPool& pool, const LoadOptions& opt) {
    HEARTH_ASSIGN_OR_RETURN(GemmaSpec s, read_gemma_spec(*file_, GemmaVariant::kEmbedding));
    const int64_t E = config_.n_embd;
    WeightLoader w(*file_, pool, opt.repack, opt.placement, config_.arch);
    HEARTH_RETURN_IF_ERROR(embd_.load(*file_, config_, true));
    HEARTH_ASSIGN_OR_RETURN(auto norm, w.vector("output_norm.weight", E));
    head_.load_encoder(config_, std::move(norm));
    HEARTH_RETURN_IF_ERROR(load_layers(w, s));
    return load_dense(w);
  }

  Status eval(Context& base, const ForwardInput& in, const ForwardOutput& out) const override {
    auto& ctx = static_cast<ModelContext&>(base);
    HEARTH_ASSIGN_OR_RETURN(bool any, begin(ctx, in, out, false));
    if (!any) return Status::ok();
    const bool heads = out.kind == OutputKind::kPooled && (dense2_ || dense3_);
    ctx.pool().run([&](int ith, int nth) {
      const Step s = step(ctx, in, ith, nth);
      float* x = embed(s, ctx, in);
      forward_layers(s, ctx, x);
      output(s, ctx, x, out);
      if (heads) dense_heads(s, ctx, out.data);
    });
    return Status::ok();
  }

 private:
  // dense_2.weight (dense_2_feat_out, n_embd) and dense_3.weight (n_embd, dense_3_feat_in), each
  // optional, as llama.cpp reads them.
  Status load_dense(WeightLoader& w) {
    const int64_t E = config_.n_embd;
    const std::string p = config_.arch + ".";
    int64_t dims[4];  // dense_2 in, out, dense_3 in, out
    const char* keys[4] = {"dense_2_feat_in", "dense_2_feat_out", "dense_3_feat_in",
                           "dense_3_feat_out"};
    for (int i = 0; i < 4; ++i) {
      HEARTH_ASSIGN_OR_RETURN(dims[i], file_->get_int_or(p + keys[i], 0));
      if (dims[i] < 0 || dims[i] > (int64_t(1) << 20))
        return corrupt("[model] " + p + keys[i] + " = " + std::to_string(dims[i]));
    }
    if ((dims[0] != 0 && dims[0] != E) || (dims[3] != 0 && dims[3] != E))
      return corrupt("[model] " + p + "dense_2_feat_in (" + std::to_string(dims[0]) +
                     ") and dense_3_feat_out (" + std::to_string(dims[3]) +
                     ") must be 0 or the embedding length " + std::to_string(E));
    int64_t width = E;  // of the rows the next head takes
    if (w.has("dense_2.weight")) {
      if (dims[1] == 0)
        return corrupt("[model] tensor 'dense_2.weight' without " + p + "dense_2_feat_out");
      HEARTH_ASSIGN_OR_RETURN(auto m, w.matrix("dense_2.weight", dims[1], E));
      dense2_ = std::move(m);
      width = dims[1];
    }
    if (w.has("dense_3.weight")) {
      if (dims[2] != width)
        return corrupt("[model] tensor 'dense_3.weight' takes " + p +
                       "dense_3_feat_in = " + std::to_string(dims[2]) +
                       " features, but its input has " + std::to_string(width));
      HEARTH_ASSIGN_OR_RETURN(auto m, w.matrix("dense_3.weight", E, width));
      dense3_ = std::move(m);
      width = E;
    }
    if (width != E)
      return unsupported("[model] dense_2.weight gives " + std::to_string(width) +
                         " features and there is no dense_3.weight to bring them back to " +
                         std::to_string(E));
    return Status::ok();
  }

  // The pooled rows e (one per sequence, n_embd wide) through the Dense heads, in place. Inside
  // pool.run; ends with a barrier.
  void dense_heads(const Step& s, ModelContext& ctx, float* e) const {
    const int64_t R = int64_t(ctx.out_seqs.size()), E = config_.n_embd;
    const float* cur = e;
    if (dense2_) {
      float* mid = ctx.aux.at(size_t(R * dense2_->n_out()));
      ops::matmul_in_run(s.pool, s.ith, s.nth, *dense2_, cur, R, mid, size_t(dense2_->n_out()),
                         ctx.ms);
      cur = mid;
    }
    if (dense3_) {
      float* y = ctx.xg.at(size_t(R * E));  // free again once the head has pooled
      ops::matmul_in_run(s.pool, s.ith, s.nth, *dense3_, cur, R, y, size_t(E), ctx.ms);
      cur = y;
    }
    int64_t rb, re;
    ThreadPool::split(R, s.ith, s.nth, rb, re);
    for (int64_t r = rb; r < re; ++r) std::copy_n(cur + r * E, E, e + r * E);
    s.barrier();
  }

  void reserve(ModelContext& ctx, std::vector<const ops::WeightMatrix*>& ws) const override {
    GemmaDecoder::reserve(ctx, ws);
    // At most one pooled row per sequence, and per token of a batch.
    const int64_t rows = std::min<int64_t>(ctx.params().n_seq, ctx.params().n_batch);
    if (dense2_) {
      ws.push_back(&*dense2_);
      ctx.aux.need(size_t(rows * dense2_->n_out()));
    }
    if (dense3_) {
      ws.push_back(&*dense3_);
      ctx.xg.need(size_t(rows * config_.n_embd));
    }
  }

  std::optional<ops::WeightMatrix> dense2_, dense3_;
};

Result<std::unique_ptr<Model>> load(std::shared_ptr<gguf::GgufFile> f, ThreadPool& pool,
                                    const LoadOptions& opt) {
  return Transformer::build<GemmaEmbeddingModel>(describe, std::move(f), pool, opt);
}

}  // namespace

extern const Architecture kGemmaEmbedding{"gemma-embedding", describe, load};

}  // namespace hearth::models
