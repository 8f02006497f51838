// runtime/session.h — one model loaded with its thread pool, and single-sequence sessions on it.
//
// `Engine` is what a command or the server holds: the mapped file, the model (weights shared by
// all sessions) and the persistent thread pool. A `Session` is one sequence: its own context
// (KV cache), its position, and batched prefill followed by one-token decode steps.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "gguf/gguf.h"
#include "models/lora.h"
#include "models/model.h"

namespace hearth::runtime {

// Load-time repacking of weights into the kernels' interleaved layouts (Q4_K, Q5_K, Q6_K on
// AVX-512): decode ~1.4x faster, prefill unchanged (it reads the packed layout), loading slower by
// the copy into fresh memory (docs/PERFORMANCE.md). On unless HEARTH_REPACK is 0, false, off or no.
bool repack_by_default();

struct EngineOptions {
  int n_threads = 0;  // 0: all cores
  bool repack = repack_by_default();
  ops::Placement placement = ops::Placement::kAuto;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> load(const std::string& path, const EngineOptions& o);
  static Result<std::unique_ptr<Engine>> load(std::shared_ptr<gguf::GgufFile> file,
                                              const EngineOptions& o);
  const models::Model& model() const { return *model_; }
  const gguf::GgufFile& file() const { return *file_; }
  ThreadPool& pool() { return *pool_; }
  // A LoRA adapter for this model (models/lora.h), checked against it; the base is untouched.
  Result<std::shared_ptr<const models::LoraAdapter>> load_lora(const std::string& path);

 private:
  std::shared_ptr<gguf::GgufFile> file_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<models::Model> model_;
};

class Session {
 public:
  static Result<std::unique_ptr<Session>> create(Engine& e, const models::ContextParams& p);

  int64_t n_vocab() const { return engine_->model().config().n_vocab; }
  int n_past() const { return n_past_; }
  int n_ctx() const { return ctx_->params().n_ctx; }

  // Appends tokens; if `all_logits`, writes one n_vocab row per token into out, else only the
  // last token's row. Splits into batches of n_batch.
  Status eval(std::span<const int32_t> tokens, bool all_logits, float* out);
  // Router near-tie margins of every token evaluated by the last eval() (MoE models; see
  // models::Context::router_margins), in order; empty for dense models.
  const std::vector<float>& router_margins() const { return margins_; }
  // Applies `ad` at `scale` to every token evaluated from now on (several adapters add up).
  void add_lora(std::shared_ptr<const models::LoraAdapter> ad, float scale);
  // Drops every position >= n (the cache rows are simply overwritten later).
  void truncate(int n) { n_past_ = n < n_past_ ? (n < 0 ? 0 : n) : n_past_; }

 private:
  Engine* engine_ = nullptr;
  std::unique_ptr<models::Context> ctx_;
  std::vector<models::BatchToken> batch_;
  std::vector<float> margins_;
  std::vector<std::shared_ptr<const models::LoraAdapter>> lora_owned_;
  std::vector<const models::LoraAdapter*> lora_;
  std::vector<float> lora_scales_;  // the one sequence's scale of each adapter
  int n_past_ = 0;
};

}  // namespace hearth::runtime
