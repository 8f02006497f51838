// runtime/scheduler.h — serving many requests on a few loaded models.
//
// The scheduler loads a model on first use and keeps it for keep_alive (default 5m; 0 unloads
// when idle; negative keeps it), at most max_loaded at once (the least recently used idle one is
// evicted), and refuses a load that would not fit in memory with a clear error. Each loaded
// model is a `Runner`: one thread, the shared (mmapped) weights, and num_parallel sequence slots
// in one context. Requests for the same model are decoded together (continuous batching): every
// step puts one token of each generating sequence, plus prompt chunks of new ones, into a single
// forward pass. A slot keeps the tokens its cache holds, so a follow-up chat turn that shares a
// prefix with an earlier request only evaluates the new tokens (prompt cache).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"
#include "parsers/output_parser.h"
#include "quant/types.h"
#include "runtime/options.h"
#include "store/model.h"

namespace hearth::runtime {

using Clock = std::chrono::steady_clock;

// What to turn into a prompt.
struct PromptSpec {
  enum class Kind { kChat, kGenerate, kLoadOnly, kEmbed, kRerank };
  Kind kind = Kind::kGenerate;
  // chat: Ollama messages and tools.
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  std::optional<nlohmann::ordered_json> tools;
  std::optional<bool> think;
  // Constraints on the answer: Ollama's `format` ("json" or a JSON schema; OpenAI's
  // response_format becomes the same), a raw GBNF grammar (llama-server's `grammar`), and
  // OpenAI's tool_choice ("auto", "none", "required" or a function's name).
  std::optional<nlohmann::ordered_json> format;
  std::string grammar;
  std::string tool_choice = "auto";
  bool parallel_tool_calls = true;  // several calls in one answer (OpenAI's parallel_tool_calls)
  // generate
  std::string prompt, suffix;
  std::optional<std::string> system, template_override;
  bool raw = false;
  std::vector<int32_t> context;  // deprecated /api/generate conversation tokens
  // embed: texts, or token ids (OpenAI's token-array input); each becomes one pooled vector.
  // rerank: the documents, each paired with `query` as llama-server pairs them (the model's
  // `tokenizer.chat_template.rerank`, else [BOS] query [EOS] [SEP] document [EOS] as the
  // vocabulary adds them); each becomes the classifier's scores.
  std::vector<std::string> inputs;
  std::vector<std::vector<int32_t>> input_tokens;
  std::string query;
  bool truncate = true;  // an input longer than the context is cut (false: the request fails;
                         // rerank: the document is cut, keeping the query and the markers)
};

struct Stats {
  std::string done_reason;    // "stop", "length", "load"
  std::string output_format;  // the output parser's format ("qwen3", "gemma4", ...; "" if none)
  int prompt_eval_count = 0;  // prompt tokens (cached ones included, as Ollama counts)
  int prompt_cached = 0;      // of which reused from the slot's cache
  int prompt_truncated = 0;   // tokens dropped from the middle of an over-long prompt (embed: from
                              // the ends of over-long inputs, all inputs together)
  int eval_count = 0;         // generated tokens
  int draft_count = 0;        // speculative decoding: draft tokens proposed and verified
  int draft_accepted = 0;     // of which the model agreed with (each one a generated token)
  int64_t draft_ns = 0;       // time in the draft model (part of eval_ns; shared by the slots
                              // drafting in the same step)
  int64_t total_ns = 0, load_ns = 0, prompt_eval_ns = 0, eval_ns = 0;
  std::vector<int32_t> context;  // prompt + generated tokens (/api/generate's `context`)
};

// One generated token's log probability and the likeliest alternatives (logprobs requests).
struct TokenLogprob {
  struct Alt {
    std::string token;
    float logprob;
  };
  std::string token;  // the token's text (special tokens spelled out)
  float logprob = 0;
  std::vector<Alt> top;
};

// Where a request's output goes; implemented by the API layer (NDJSON, SSE, one JSON body).
// Called from the runner's thread.
class Sink {
 public:
  virtual ~Sink() = default;
  // The rendered prompt is ready and generation starts (streaming answers can begin here).
  virtual void on_start() {}
  // Text that is safe to show (complete UTF-8, stop strings held back). False: client gone.
  virtual bool on_text(const std::string& piece) = 0;
  // Chat and generate output split by the model's output format (content, thinking, whole tool
  // calls). Sinks that know only text get the content.
  // Before the text a token produces, when the request asked for logprobs.
  virtual void on_logprob(const TokenLogprob&) {}
  virtual bool on_output(const parsers::Parsed& p) {
    return p.content.empty() || on_text(p.content);
  }
  virtual void on_done(const Stats& s) = 0;
  // An embedding request's vectors, one per input in order (the model's pooled output, not
  // normalized; rerank: the classifier's raw scores per document), then the request is done.
  virtual void on_embeddings(std::vector<std::vector<float>> vectors, const Stats& s) {
    (void)vectors;
    on_done(s);
  }
  // The request failed; the API maps the code to its HTTP status if nothing was sent yet.
  virtual void on_error(const Status& error) = 0;
  // True once the client went away; generation stops at the next step.
  virtual bool cancelled() const = 0;
};

// A LoRA adapter a request runs with (models/lora.h): its GGUF and the user scale.
struct AdapterUse {
  std::string path;
  float scale = 1;
};

struct Job {
  store::ModelRecord model;
  // The adapters this request applies (resolved by the API from the model's ADAPTER lines, the
  // server's /lora-adapters scales and the request's `lora` field); loaded by the runner on
  // first use, beside the base weights. Requests with different adapters share forward passes.
  std::vector<AdapterUse> adapters;
  PromptSpec prompt;
  GenOptions opt;
  std::optional<std::chrono::nanoseconds> keep_alive;
  std::shared_ptr<Sink> sink;
  Clock::time_point t_submit = Clock::now();
  int64_t load_ns = 0;  // set when this job waited for the model to load
};

struct SchedulerOptions {
  int num_parallel = 4;    // HEARTH_NUM_PARALLEL / OLLAMA_NUM_PARALLEL
  int max_loaded = 3;      // HEARTH_MAX_LOADED_MODELS / OLLAMA_MAX_LOADED_MODELS
  size_t max_queue = 512;  // HEARTH_MAX_QUEUE / OLLAMA_MAX_QUEUE: waiting requests, then 503
  std::chrono::nanoseconds keep_alive = std::chrono::minutes(5);  // HEARTH_KEEP_ALIVE
  int default_ctx = 4096;    // HEARTH_CONTEXT_LENGTH / OLLAMA_CONTEXT_LENGTH
  int64_t memory_limit = 0;  // HEARTH_MAX_MEMORY bytes for loaded models; 0: what is available
  int n_threads = 0;         // 0: all cores
  int n_batch = 512;         // HEARTH_NUM_BATCH: tokens per forward pass (16-8192)
  // HEARTH_KV_CACHE_TYPE / OLLAMA_KV_CACHE_TYPE: f16, q8_0 or q4_0 (f32 too). Unlike Ollama, no
  // flash-attention switch is needed: every cache type goes through the same tiled attention.
  DType kv_type = DType::F16;
  static SchedulerOptions from_env();
};

struct LoadedModel {
  std::string name;  // display name of the model that loaded it last
  std::string digest, model_path;
  int64_t size = 0;  // bytes: weights + allocated caches
  int context_length = 0;
  bool forever = false;
  std::chrono::system_clock::time_point expires_at;
  store::ModelRecord record;
};

class Runner;

class Scheduler {
 public:
  explicit Scheduler(SchedulerOptions o);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job (never blocks). Unavailable if too many requests wait (503); the outcome of an
  // accepted job goes to its sink.
  Status submit(Job j);
  // Unloads the model stored at `model_path` once its requests finish; false if not loaded.
  bool unload(const std::string& model_path);
  std::vector<LoadedModel> loaded() const;
  const SchedulerOptions& options() const { return opt_; }

  // Memory a model needs: the file plus the KV cache for n_ctx x num_parallel plus scratch.
  static Result<int64_t> estimate_bytes(const std::string& model_path, int n_ctx, int n_parallel,
                                        int n_batch = 512, DType kv_type = DType::F16);
  static Result<int64_t> estimate_bytes(const gguf::GgufFile& f, int n_ctx, int n_parallel,
                                        int n_batch = 512, DType kv_type = DType::F16);

 private:
  friend class Runner;
  struct Entry {
    std::shared_ptr<Runner> runner;
    int in_flight = 0;  // jobs given to the runner and not finished
    std::chrono::nanoseconds keep_alive{};
    Clock::time_point last_used, expires;
    bool unload_requested = false;
    LoadedModel info;
  };
  void loop();
  void job_finished(const std::string& model_path);
  void dispatch_locked(Entry& e, Job j);
  // True: loaded. False: must wait for a busy model to go idle. Error: cannot load at all.
  Result<bool> load_locked(std::unique_lock<std::mutex>& lk, Job& j);
  void unload_locked(const std::string& model_path, std::unique_lock<std::mutex>& lk);

  SchedulerOptions opt_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> pending_;
  std::map<std::string, Entry> loaded_;  // by model_path
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace hearth::runtime
