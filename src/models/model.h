// models/model.h — the model contract: what a loaded model is, what goes in and what comes out.
//
// `Model` owns the immutable part: the config read from GGUF metadata and weight views into the
// mmapped file (shared by every context). `Context` owns the mutable part for up to n_seq
// sequences: the per-layer caches (models/cache.h) and scratch buffers sized once at creation, so
// the per-token path does not allocate. A batch may mix tokens of several sequences (continuous
// batching); matmuls run on the whole batch, attention per sequence.
//
// Inputs are token ids or embedding rows (a vision encoder's output); outputs are logits, the
// final hidden states, or one pooled embedding per sequence (none/mean/cls/last, as an embedding
// model declares). Encoders attend bidirectionally (`ModelConfig::causal` false) and keep no
// cache between calls.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/thread_pool.h"
#include "gguf/gguf.h"
#include "ops/matmul.h"
#include "ops/rope.h"
#include "quant/types.h"

namespace hearth::models {

// How an embedding model turns a sequence's hidden states into one vector (`<arch>.pooling_type`,
// llama.cpp's numbering: 0 none, 1 mean, 2 cls, 3 last, 4 rank). Rank is a reranker's: the
// sequence's first row (BERT; the last for a decoder) through the classifier head, giving
// n_cls_out scores instead of a vector.
enum class Pooling { kNone = 0, kMean = 1, kCls = 2, kLast = 3, kRank = 4 };
const char* pooling_name(Pooling p);

// Hyperparameters common to decoder-only transformers; each architecture file fills it from
// `<arch>.*` GGUF keys and may keep extra fields of its own.
struct ModelConfig {
  std::string arch;
  std::string name;                  // general.name
  int64_t n_vocab = 0;               // rows of token_embd
  int64_t n_embd = 0;                // %s.embedding_length
  int64_t n_layer = 0;               // %s.block_count
  int64_t n_head = 0;                // %s.attention.head_count
  int64_t n_head_kv = 0;             // %s.attention.head_count_kv
  int64_t head_dim = 0;              // %s.attention.key_length (default n_embd / n_head)
  int64_t head_dim_v = 0;            // %s.attention.value_length (default head_dim)
  int64_t n_ff = 0;                  // %s.feed_forward_length (the largest, when per layer)
  std::vector<int64_t> n_ff_layers;  // per-layer FFN sizes when the key is an array
  int64_t n_ctx_train = 0;           // %s.context_length
  float norm_eps = 1e-5f;            // %s.attention.layer_norm_rms_epsilon
  ops::RopeParams rope;              // mode, n_rot, base, scaling
  bool causal = true;                // %s.attention.causal (false: encoders)
  Pooling pooling = Pooling::kNone;  // %s.pooling_type (embedding models)
  // Outputs of the classifier head (%s.classifier.output_labels, default 1); 0 when the model
  // has no head. A model with a head can rank (Pooling::kRank), whatever its pooling_type says.
  int64_t n_cls_out = 0;
  bool rank_last = false;  // kRank reads the sequence's last row (Qwen3 rerankers), else its first
  // Floats per sequence of a kPooled output with pooling p.
  int64_t pooled_width(Pooling p) const { return p == Pooling::kRank ? n_cls_out : n_embd; }
};

struct ContextParams {
  int n_ctx = 4096;   // positions per sequence
  int n_seq = 1;      // sequences held at once
  int n_batch = 512;  // largest number of tokens evaluated in one forward call
  DType kv_type = DType::F16;
};

struct BatchToken {
  int32_t token = 0;
  int32_t pos = 0;      // position in its sequence
  int32_t seq = 0;      // sequence slot, < n_seq
  bool logits = false;  // return this token's logits
};

// One forward call's input: the tokens (position, sequence, output flag) and, optionally, rows of
// n_embd floats that replace the token embeddings (vision: image patches projected into the text
// model's space, used as given: no embedding scale). Token ids must still be valid ids: models
// with per-layer token inputs (Gemma 4) read them.
class LoraAdapter;
// LoRA adapters for one forward call (models/lora.h): the adapters, bound to this model, and
// each sequence slot's user scale for each of them (0: not applied), scales[seq * n + i] for
// n = adapters.size(). Rows of different sequences may use different adapters in one batch.
struct LoraBatch {
  std::span<const LoraAdapter* const> adapters;
  std::span<const float> scales;
};

struct ForwardInput {
  std::span<const BatchToken> tokens;
  const float* embeddings = nullptr;  // tokens.size() rows of n_embd, or null
  const LoraBatch* lora = nullptr;    // null: the base model alone
};

// What a forward call writes. kLogits: one n_vocab row per token with `logits` set, in batch
// order. kHidden: one n_embd row (after the final norm) per such token. kPooled: one row per
// sequence in the batch, in order of first appearance, pooled over that sequence's tokens in
// this batch with `pooling` (kNone is refused): n_embd floats, or for kRank the n_cls_out
// outputs of the classifier head (ModelConfig::pooled_width; a model without a head refuses it).
enum class OutputKind { kLogits, kHidden, kPooled };
struct ForwardOutput {
  OutputKind kind = OutputKind::kLogits;
  float* data = nullptr;
  Pooling pooling = Pooling::kNone;  // kPooled only
};

class Context {
 public:
  virtual ~Context() = default;
  const ContextParams& params() const { return params_; }
  ThreadPool& pool() { return *pool_; }
  // Positions sequence `seq` can hold (params().n_ctx at creation).
  virtual int seq_capacity(int seq) const = 0;
  // Gives sequence `seq` room for n_ctx positions. Growing drops what the sequence held;
  // shrinking frees memory. Other sequences are untouched: a request with a larger num_ctx
  // changes its own cache, never the weights or its neighbours.
  virtual Status reserve_sequence(int seq, int n_ctx) = 0;
  // The longest prefix (<= want) of a sequence holding n_past positions that can be kept and
  // continued. Sliding-window layers keep only a ring of recent positions, so an old prefix may
  // be gone from them; then 0 (start over).
  virtual int64_t reusable_prefix(int seq, int64_t n_past, int64_t want) const { return want; }
  // Mixture-of-experts diagnostics for the last forward batch, one value per token: the smallest
  // router-logit gap, over the MoE layers, between the last expert chosen and the best one left
  // out. A gap near zero means float noise could change which experts run (tests use it to tell
  // such near-ties from errors). Empty for models without experts.
  virtual std::span<const float> router_margins() const { return {}; }

 protected:
  Context(const ContextParams& p, ThreadPool& pool) : params_(p), pool_(&pool) {}
  ContextParams params_;
  ThreadPool* pool_;
};

class Model {
 public:
  virtual ~Model() = default;
  const ModelConfig& config() const { return config_; }
  const gguf::GgufFile& file() const { return *file_; }

  virtual Result<std::unique_ptr<Context>> new_context(const ContextParams& p,
                                                       ThreadPool& pool) const = 0;
  // Evaluates a batch (at most n_batch tokens; positions of a sequence must be consecutive and
  // follow what the cache holds) and writes what `out` asks for (see ForwardOutput).
  virtual Status eval(Context& ctx, const ForwardInput& in, const ForwardOutput& out) const = 0;
  // The common case: token ids in, one n_vocab row of logits per token with `logits` set.
  Status forward(Context& ctx, std::span<const BatchToken> batch, float* logits) const {
    return eval(ctx, ForwardInput{batch}, ForwardOutput{OutputKind::kLogits, logits});
  }
  // Bytes of KV cache / state per sequence for a context length (memory estimates).
  virtual size_t state_bytes(const ContextParams& p) const = 0;
  // Every weight matrix the forward pass multiplies by (named ones are what LoRA adapters can
  // adapt; see ops::WeightMatrix::name). `pool` sizes nothing: it is only the blocks' API.
  virtual std::vector<const ops::WeightMatrix*> matrices(ThreadPool& pool) const { return {}; }

 protected:
  std::shared_ptr<gguf::GgufFile> file_;
  ModelConfig config_;
};

struct LoadOptions {
  bool repack = true;  // allow load-time repacking of weights for the active kernels
  ops::Placement placement = ops::Placement::kAuto;  // where weight bytes live (ops/matmul.h)
};

// Reads `general.architecture`, finds the architecture in the registry and loads it.
Result<std::unique_ptr<Model>> load_model(std::shared_ptr<gguf::GgufFile> file, ThreadPool& pool,
                                          const LoadOptions& opt = {});
// Bytes of KV cache and recurrent state one sequence of p.n_ctx positions needs, from the file's
// metadata alone (per architecture: sliding-window rings, fixed-size DeltaNet state); what the
// scheduler's memory check uses before loading a model.
Result<size_t> estimate_state_bytes(const gguf::GgufFile& file, const ContextParams& p);
struct ArchInfo;
// The config and cache layout `file`'s architecture reads from its metadata (no weights touched).
Result<ArchInfo> describe_file(const gguf::GgufFile& file);
// Names of the architectures hearth can run (from the registry).
std::vector<std::string> supported_architectures();

}  // namespace hearth::models
