// runtime/runner.h — one loaded model serving requests: a thread that admits jobs into sequence
// slots and decodes every active sequence together, one forward pass per step (continuous
// batching). See scheduler.h for the overall design.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/matcher.h"
#include "runtime/scheduler.h"
#include "runtime/session.h"
#include "runtime/speculative.h"
#include "sampling/sampler.h"
#include "templates/chat.h"
#include "tokenizer/stream.h"
#include "tokenizer/tokenizer.h"

namespace hearth::runtime {

class Runner {
 public:
  // `draft_path`: a draft model for speculative decoding (empty: none). `file`: model_path
  // already opened (null: opened here).
  static Result<std::shared_ptr<Runner>> load(Scheduler* owner, const std::string& model_path,
                                              const SchedulerOptions& o,
                                              const std::string& draft_path = {},
                                              std::shared_ptr<gguf::GgufFile> file = nullptr);
  ~Runner();  // stops the thread; jobs still queued get an error

  void enqueue(Job j);
  // Bytes this model holds: weights (file size) plus allocated caches.
  int64_t memory_bytes() const;
  int context_length() const { return n_ctx_train_; }
  int64_t load_ns() const { return load_ns_; }

 private:
  struct Slot {
    int id = 0;
    std::vector<int32_t> cached;  // tokens whose K/V the cache holds, position by position
    Clock::time_point last_used{};
    bool busy = false;
    // The job being served.
    std::optional<Job> job;
    std::vector<int32_t> prompt;
    size_t n_fed = 0;  // prompt tokens in the cache
    int n_ctx = 0;     // this request's window (<= the slot's capacity)
    int num_predict = -1;
    std::unique_ptr<sampling::Sampler> sampler;
    std::unique_ptr<tokenizer::TextStream> stream;
    // Chat and generate: the output split into content, thinking and tool calls. Its markers
    // that are single tokens, by id (they bypass the text stream, which may not print them).
    std::unique_ptr<parsers::OutputParser> parser;
    std::vector<std::pair<int32_t, std::string>> marker_ids;
    // The grammar the answer must follow, armed once the parser leaves thinking (so a model
    // thinks freely, then answers in the format), and the matcher walking it.
    std::shared_ptr<const grammar::Grammar> grammar;
    std::unique_ptr<grammar::Matcher> matcher;
    // tool_choice "auto": the body of each call the model opens is held to the tools' schemas.
    std::shared_ptr<const grammar::Grammar> call_grammar;
    std::unique_ptr<grammar::Matcher> call_matcher;
    bool call_unconstrained = false;  // this call started in a way the grammar cannot follow
    // Tokens appended without sampling (a thinking block closed at its budget), and the budget.
    std::vector<int32_t> forced;
    int thinking_budget = -1, thinking_tokens = 0;
    // Time spent choosing constrained tokens (sampler filter and matcher), for the log line.
    // LoRA: the scale of each of the runner's adapters for the job (lora_list_ order), and the
    // adapters the cache's positions were computed with (a prefix is reused only under the same).
    std::vector<float> lora, cached_lora;
    int64_t grammar_ns = 0;
    int grammar_steps = 0, grammar_masks = 0, grammar_forced = 0;
    int32_t next = -1;        // sampled, not yet fed
    std::vector<int32_t> ff;  // forced by the grammar, fed before `next` (see fast_forward)
    int logits_row = -1;
    // Speculative decoding: tokens drafted this step (after `next` in the batch, with logits),
    // the current and the largest draft length, and whether prompt lookup drafts.
    bool generating = false;     // this step feeds ff + next (not a prompt chunk)
    size_t gen_begin = 0;        // where in `cached` this step's tokens start
    std::vector<int32_t> draft;  // kMaxDraft entries
    int n_draft = 0, draft_k = 0, draft_max = 0;
    bool lookup = false;
    Stats stats;
    Clock::time_point t_start{}, t_prompt_done{};
  };

  Runner() = default;
  void loop();
  void admit(Job j);
  // Embedding jobs (runner_embed.cpp): every input of all of them tokenized, packed whole into
  // forward batches of many sequences, pooled by the model; answered in one go each.
  void embed(std::vector<Job>& jobs);
  void step();
  bool take(Slot& s, int32_t t, const float* row, bool armed);
  // The token at a position from its logits row: forced, chosen under a grammar, or sampled.
  // false: the sequence ended.
  bool choose(Slot& s, const float* row, int32_t& t, bool& armed);
  // Fills s.draft / s.n_draft for the generating slots that speculate this step.
  void draft_tokens(int n_batch);
  void fast_forward(Slot& s);
  void finish(Slot& s, const std::string& reason);
  void fail(Slot& s, const Status& error);
  // A job whose admission threw: fails it, releasing its slot if it got one.
  void abandon(const std::shared_ptr<Sink>& sink, const Status& error);
  void release(Slot& s);
  // The index of the adapter at `path` in lora_list_, loading it (checked against the model) on
  // first use; the base weights are untouched.
  Result<size_t> lora_index(const std::string& path);
  // The job's scale of every loaded adapter (lora_list_ order).
  Result<std::vector<float>> job_lora(const Job& j);
  // The grammar a job asks for (nullptr if none); InvalidArgument for a schema or grammar that
  // cannot be enforced.
  Result<std::shared_ptr<const grammar::Grammar>> job_grammar(const Job& j,
                                                              const parsers::OutputParser* p);
  std::shared_ptr<const grammar::Grammar> call_body_grammar(const Job& j,
                                                            const parsers::OutputParser* p);
  // The matcher that constrains this step (nullptr: none).
  grammar::Matcher* step_matcher(Slot& s);
  // Bytes of every token for grammar checks; built on first use.
  const std::vector<std::string>& token_bytes();
  bool grammar_armed(const Slot& s) const;
  // Sends parsed output (or plain text) to the sink; false if the client went away.
  bool send(Slot& s, const std::string& text, const std::string* marker);
  // The output parser for a job whose prompt rendered to `prompt_text`.
  std::unique_ptr<parsers::OutputParser> make_parser(
      const Job& j, const std::string& prompt_text,
      std::vector<std::pair<int32_t, std::string>>& ids);

  Scheduler* owner_ = nullptr;
  std::string model_path_;
  SchedulerOptions opt_;
  std::unique_ptr<Engine> engine_;
  std::shared_ptr<const tokenizer::Tokenizer> tok_;
  std::optional<templates::JinjaChatTemplate> jinja_;
  std::unique_ptr<models::Context> ctx_;
  std::unique_ptr<models::Context> embed_ctx_;  // embedding batches (created on first use)
  int n_ctx_train_ = 0;
  int64_t file_bytes_ = 0, load_ns_ = 0;
  std::atomic<int64_t> cache_bytes_{0};

  std::vector<Slot> slots_;
  std::vector<std::string> token_bytes_;
  std::vector<uint8_t> token_plain_;  // 1: an ordinary token whose bytes a grammar may check
  std::unique_ptr<grammar::TokenChecker> checker_;
  std::string ff_text_;  // fast_forward scratch
  // HEARTH_LOG_FORCED=1: each forced token and its index among the generated ones (for tests).
  const bool log_forced_ = [] {
    const char* e = std::getenv("HEARTH_LOG_FORCED");
    return e && *e == '1';
  }();
  std::vector<int32_t>
      lp_order_;  // top_logprobs scratch  // over token_bytes_ (one step at a time)
  std::vector<models::BatchToken> batch_;
  std::vector<float> logits_;
  // LoRA adapters loaded for this model, and each slot's scales (n_seq rows of lora_list_.size()).
  std::vector<std::shared_ptr<const models::LoraAdapter>> lora_owned_;
  std::vector<const models::LoraAdapter*> lora_list_;
  std::vector<float> lora_scales_;
  std::atomic<int64_t> lora_bytes_{0};
  // Speculative decoding: the draft model (or none), whether this model's cache can drop
  // rejected positions (not recurrent layers), and the default of prompt lookup.
  std::unique_ptr<DraftModel> draft_;
  std::vector<DraftModel::Request> draft_reqs_;
  bool spec_ok_ = false;
  const bool lookup_env_ = [] {
    const char* e = std::getenv("HEARTH_LOOKUP_DECODING");
    return e && *e == '1';
  }();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> incoming_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace hearth::runtime
