#include "runtime/runner.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "grammar/json_schema.h"
#include "grammar/tool_grammar.h"
#include "runtime/prompt.h"

namespace hearth::runtime {
namespace {

// The longest draft a step verifies (draft_num_predict is capped here), and the n-grams prompt
// lookup matches: a single token repeats too often by chance to be worth a draft.
constexpr int kMaxDraft = 16;
constexpr int kLookupMin = 2, kLookupMax = 4;

int64_t ns_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t).count();
}

size_t common_prefix(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

}  // namespace

Result<std::shared_ptr<Runner>> Runner::load(Scheduler* owner, const std::string& model_path,
                                             const SchedulerOptions& o,
                                             const std::string& draft_path,
                                             std::shared_ptr<gguf::GgufFile> file) {
  const auto t0 = Clock::now();
  auto r = std::shared_ptr<Runner>(new Runner());
  r->owner_ = owner;
  r->model_path_ = model_path;
  r->opt_ = o;
  EngineOptions eo;
  eo.n_threads = o.n_threads;
  if (!file) {
    HEARTH_ASSIGN_OR_RETURN(file, gguf::GgufFile::open(model_path));
  }
  HEARTH_ASSIGN_OR_RETURN(r->engine_, Engine::load(std::move(file), eo));
  HEARTH_ASSIGN_OR_RETURN(r->tok_, tokenizer::Tokenizer::from_gguf(r->engine_->file()));
  if (auto j = templates::jinja_chat_template(r->engine_->file()); j.is_ok()) r->jinja_ = *j;
  const auto& cfg = r->engine_->model().config();
  r->n_ctx_train_ = int(std::min<int64_t>(cfg.n_ctx_train > 0 ? cfg.n_ctx_train : 4096, 1 << 30));
  models::ContextParams cp;
  cp.n_ctx = 16;  // every slot grows to its request's num_ctx when first used
  cp.n_seq = std::max(1, o.num_parallel);
  cp.n_batch = std::max(o.n_batch, cp.n_seq);
  cp.kv_type = o.kv_type;
  HEARTH_ASSIGN_OR_RETURN(r->ctx_, r->engine_->model().new_context(cp, r->engine_->pool()));
  r->slots_.resize(size_t(cp.n_seq));
  for (int i = 0; i < cp.n_seq; ++i) {
    r->slots_[size_t(i)].id = i;
    r->slots_[size_t(i)].draft.resize(kMaxDraft);
  }
  r->batch_.reserve(size_t(cp.n_batch));
  r->logits_.resize(size_t(cp.n_seq) * size_t(cfg.n_vocab));
  r->file_bytes_ = int64_t(r->engine_->file().file_size());  // every part of a split model
  // Speculation verifies drafts in the cache and drops the rejected positions: attention caches
  // just overwrite them later (sliding-window rings keep n_batch positions more than their window,
  // far more than a draft), but a recurrent state (Qwen 3.5's DeltaNet layers) has absorbed them
  // for good. Such models decode without speculation.
  r->spec_ok_ = r->ctx_->reusable_prefix(0, 2, 1) == 1;
  if (!draft_path.empty()) {
    if (!r->spec_ok_)
      return invalid_argument("draft model " + draft_path + ": " + model_path +
                              " has recurrent layers; it cannot decode speculatively");
    HEARTH_ASSIGN_OR_RETURN(r->draft_, DraftModel::load(draft_path, r->engine_->pool(), cp.n_seq,
                                                        cp.n_batch, cfg.n_vocab));
    r->file_bytes_ += r->draft_->file_bytes();
    r->draft_reqs_.reserve(size_t(cp.n_seq));
  }
  r->load_ns_ = ns_since(t0);
  r->thread_ = std::thread([p = r.get()] { p->loop(); });
  return r;
}

Runner::~Runner() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Runner::enqueue(Job j) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    incoming_.push_back(std::move(j));
  }
  cv_.notify_all();
}

int64_t Runner::memory_bytes() const {
  return file_bytes_ + cache_bytes_.load() + lora_bytes_.load();
}

Result<size_t> Runner::lora_index(const std::string& path) {
  for (size_t i = 0; i < lora_owned_.size(); ++i)
    if (lora_owned_[i]->path() == path) return i;
  const auto t0 = Clock::now();
  HEARTH_ASSIGN_OR_RETURN(auto ad, engine_->load_lora(path));
  std::fprintf(stderr, "hearth: LoRA adapter %s loaded for %s in %.1f ms (%zu matrices)\n",
               path.c_str(), model_path_.c_str(), double(ns_since(t0)) / 1e6, ad->pairs().size());
  lora_bytes_ += int64_t(ad->file_bytes());
  const size_t n_old = lora_list_.size(), n_new = n_old + 1;
  lora_list_.push_back(ad.get());
  lora_owned_.push_back(std::move(ad));
  // Each slot's row widens by one (a zero scale for the new adapter).
  std::vector<float> wide(slots_.size() * n_new, 0.0f);
  for (size_t q = 0; q < slots_.size(); ++q)
    std::copy_n(lora_scales_.begin() + q * n_old, n_old, wide.begin() + q * n_new);
  lora_scales_ = std::move(wide);
  return n_old;
}

Result<std::vector<float>> Runner::job_lora(const Job& j) {
  std::vector<float> sc;
  for (const AdapterUse& a : j.adapters) {
    if (a.scale == 0) continue;
    HEARTH_ASSIGN_OR_RETURN(size_t i, lora_index(a.path));
    if (sc.size() < lora_list_.size()) sc.resize(lora_list_.size(), 0.0f);
    sc[i] += a.scale;
  }
  return sc;
}

void Runner::loop() {
  for (;;) {
    std::deque<Job> admitted;
    {
      std::unique_lock<std::mutex> lk(mu_);
      auto busy = [&] {
        return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.busy; });
      };
      auto free_slots = [&] {
        return std::count_if(slots_.begin(), slots_.end(), [](const Slot& s) { return !s.busy; });
      };
      cv_.wait(lk, [&] { return stop_ || busy() || !incoming_.empty(); });
      if (stop_) {
        // Answered after mu_ is released: job_finished takes the scheduler's lock, which is
        // held while this runner's lock is taken (submit), never the other way round.
        admitted.swap(incoming_);
        lk.unlock();
        for (auto& j : admitted) {
          j.sink->on_error(Status(StatusCode::kUnavailable, "the model was unloaded"));
          owner_->job_finished(model_path_);
        }
        break;
      }
      // Admit as many waiting jobs as there are free slots (load-only and embedding jobs need
      // none: they are answered before the next decode step).
      auto n_free = free_slots();
      auto slotless = [](const Job& j) {
        return j.prompt.kind == PromptSpec::Kind::kLoadOnly ||
               j.prompt.kind == PromptSpec::Kind::kEmbed ||
               j.prompt.kind == PromptSpec::Kind::kRerank;
      };
      while (!incoming_.empty() && (n_free > 0 || slotless(incoming_.front()))) {
        if (!slotless(incoming_.front())) --n_free;
        admitted.push_back(std::move(incoming_.front()));
        incoming_.pop_front();
      }
    }
    // Embedding requests that arrived together run together: their inputs share forward passes;
    // so do rerank requests (their documents pooled by the classifier head instead).
    std::vector<Job> embeds, reranks;
    for (auto it = admitted.begin(); it != admitted.end();)
      if (it->prompt.kind == PromptSpec::Kind::kEmbed ||
          it->prompt.kind == PromptSpec::Kind::kRerank) {
        (it->prompt.kind == PromptSpec::Kind::kEmbed ? embeds : reranks).push_back(std::move(*it));
        it = admitted.erase(it);
      } else {
        ++it;
      }
    // Each answers every one of its jobs, whatever happens.
    if (!embeds.empty()) embed(embeds);
    if (!reranks.empty()) embed(reranks);
    for (auto& j : admitted) {
      // Per-request buffers (prompt, sampler, stop strings) come from the request: if one cannot
      // be allocated, that request fails and the others go on.
      std::shared_ptr<Sink> sink = j.sink;
      try {
        admit(std::move(j));
      } catch (const std::bad_alloc&) {
        abandon(sink, Status(StatusCode::kResourceExhausted, "out of memory for this request"));
      } catch (const std::length_error&) {
        abandon(sink, Status(StatusCode::kResourceExhausted, "out of memory for this request"));
      } catch (const std::exception& e) {  // the model's tokenizer and template run here
        abandon(sink, internal_error(std::string("preparing the request failed: ") + e.what()));
      }
    }
    if (std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.busy; })) step();
  }
  for (auto& s : slots_)
    if (s.busy) fail(s, Status(StatusCode::kUnavailable, "the model was unloaded"));
}

void Runner::admit(Job j) {
  if (j.prompt.kind == PromptSpec::Kind::kLoadOnly) {
    Stats st;
    st.done_reason = "load";
    st.load_ns = j.load_ns;
    st.total_ns = ns_since(j.t_submit);
    j.sink->on_done(st);
    owner_->job_finished(model_path_);
    return;
  }
  if (j.sink->cancelled()) {
    owner_->job_finished(model_path_);
    return;
  }
  // An encoder (BERT and the like) has no vocabulary head: it embeds, it does not generate.
  if (!engine_->model().config().causal) {
    j.sink->on_error(
        invalid_argument("\"" + j.model.name.display() + "\" does not support " +
                         (j.prompt.kind == PromptSpec::Kind::kChat ? "chat" : "generate")));
    owner_->job_finished(model_path_);
    return;
  }
  auto built = build_prompt(j.prompt, j.model, jinja_, *tok_);
  if (!built) {
    j.sink->on_error(built.status());
    owner_->job_finished(model_path_);
    return;
  }
  std::vector<int32_t> prompt = std::move(built->tokens);
  std::vector<std::pair<int32_t, std::string>> marker_ids;
  std::unique_ptr<parsers::OutputParser> parser = make_parser(j, built->text, marker_ids);
  if (j.prompt.think && *j.prompt.think && j.prompt.kind != PromptSpec::Kind::kLoadOnly &&
      (!parser || !parser->format().has_thinking())) {
    j.sink->on_error(
        invalid_argument("\"" + j.model.name.display() + "\" does not support thinking"));
    owner_->job_finished(model_path_);
    return;
  }
  // As Ollama: tools for a model whose template cannot show them are an error, not ignored.
  if (j.prompt.kind == PromptSpec::Kind::kChat && j.prompt.tools && j.prompt.tools->is_array() &&
      !j.prompt.tools->empty() && (!parser || !parser->format().has_tools())) {
    j.sink->on_error(invalid_argument("\"" + j.model.name.display() + "\" does not support tools"));
    owner_->job_finished(model_path_);
    return;
  }
  auto grammar = job_grammar(j, parser.get());
  if (!grammar) {
    j.sink->on_error(grammar.status());
    owner_->job_finished(model_path_);
    return;
  }
  if (prompt.empty()) {
    j.sink->on_error(invalid_argument("the prompt is empty after templating"));
    owner_->job_finished(model_path_);
    return;
  }
  // A vocabulary larger than the model's embedding: refuse this request here rather than fail
  // the forward pass of every sequence batched with it.
  const int64_t n_vocab_model = engine_->model().config().n_vocab;
  for (int32_t t : prompt)
    if (t < 0 || t >= n_vocab_model) {
      j.sink->on_error(corrupt("token id " + std::to_string(t) +
                               " of the prompt is outside the model's vocabulary of " +
                               std::to_string(n_vocab_model) + " (tokenizer.ggml.tokens has " +
                               std::to_string(tok_->n_vocab()) + ")"));
      owner_->job_finished(model_path_);
      return;
    }
  const int n_ctx = std::min(j.opt.num_ctx > 0 ? j.opt.num_ctx : opt_.default_ctx, n_ctx_train_);
  const int dropped = shorten_prompt(prompt, n_ctx, j.opt.num_keep);
  if (int(prompt.size()) >= n_ctx) {
    j.sink->on_error(invalid_argument("the prompt does not fit in the context window of " +
                                      std::to_string(n_ctx) + " tokens"));
    owner_->job_finished(model_path_);
    return;
  }

  auto lora = job_lora(j);
  if (!lora) {
    j.sink->on_error(lora.status());
    owner_->job_finished(model_path_);
    return;
  }
  auto same_lora = [](std::vector<float> a, std::vector<float> b) {
    const size_t n = std::max(a.size(), b.size());
    a.resize(n, 0.0f);
    b.resize(n, 0.0f);
    return a == b;
  };

  // The free slot whose cache shares the longest prefix with this prompt (computed with the same
  // adapters); else the least recently used one.
  Slot* best = nullptr;
  size_t best_lcp = 0;
  for (auto& s : slots_) {
    if (s.busy) continue;
    const size_t l = same_lora(s.cached_lora, *lora) ? common_prefix(s.cached, prompt) : 0;
    if (!best || l > best_lcp || (l == best_lcp && s.last_used < best->last_used)) {
      best = &s;
      best_lcp = l;
    }
  }
  Slot& s = *best;
  if (ctx_->seq_capacity(s.id) < n_ctx) {
    if (auto st = ctx_->reserve_sequence(s.id, n_ctx); !st) {
      j.sink->on_error(st);
      owner_->job_finished(model_path_);
      return;
    }
    s.cached.clear();
    best_lcp = 0;
    int64_t total = 0;
    models::ContextParams cp = ctx_->params();
    for (const auto& x : slots_) {
      cp.n_ctx = ctx_->seq_capacity(x.id);
      total += int64_t(engine_->model().state_bytes(cp));
    }
    cache_bytes_ = total;
  }
  // Keep the shared prefix; at least the last prompt token is evaluated, for its logits.
  size_t reuse = std::min(best_lcp, prompt.size() - 1);
  // Sliding-window layers may no longer hold what an old prefix needs.
  reuse = size_t(ctx_->reusable_prefix(s.id, int64_t(s.cached.size()), int64_t(reuse)));
  s.cached.resize(reuse);

  s.lora = std::move(*lora);
  s.lora.resize(lora_list_.size(), 0.0f);
  s.cached_lora = s.lora;
  std::copy(s.lora.begin(), s.lora.end(),
            lora_scales_.begin() + ptrdiff_t(size_t(s.id) * lora_list_.size()));
  s.busy = true;
  s.job = std::move(j);
  s.prompt = std::move(prompt);
  s.n_fed = reuse;
  s.n_ctx = n_ctx;
  s.num_predict = s.job->opt.num_predict;
  s.next = -1;
  s.logits_row = -1;
  s.stats = Stats();
  s.stats.prompt_eval_count = int(s.prompt.size());
  s.stats.prompt_cached = int(reuse);
  s.stats.prompt_truncated = dropped;
  s.stats.load_ns = s.job->load_ns;
  s.t_start = Clock::now();
  const int n_vocab = int(engine_->model().config().n_vocab);
  // The penalty window never needs more than the context (its buffer is sized from it).
  sampling::SamplerParams sp = s.job->opt.sampler;
  sp.repeat_last_n = std::min(sp.repeat_last_n, n_ctx);
  s.sampler = std::make_unique<sampling::Sampler>(sp, n_vocab);
  for (int32_t t : s.prompt) s.sampler->accept(t);  // penalties see the prompt, as in llama.cpp
  s.stream = std::make_unique<tokenizer::TextStream>(*tok_, s.job->opt.stop);
  s.parser = std::move(parser);
  s.marker_ids = std::move(marker_ids);
  s.grammar = std::move(*grammar);
  s.matcher.reset();
  s.call_grammar = s.grammar ? nullptr : call_body_grammar(*s.job, s.parser.get());
  s.call_matcher.reset();
  s.call_unconstrained = false;
  s.forced.clear();
  s.thinking_tokens = 0;
  s.grammar_ns = 0;
  s.grammar_steps = s.grammar_masks = s.grammar_forced = 0;
  s.ff.clear();
  // Speculative decoding (see step): Ollama's draft_num_predict defaults to 4 with a drafter.
  s.lookup = s.job->opt.lookup_decoding.value_or(lookup_env_);
  s.draft_max = 0;
  if (spec_ok_ && (draft_ || s.lookup)) {
    const int dnp = s.job->opt.draft_num_predict;
    s.draft_max = std::min(kMaxDraft, dnp >= 0 ? dnp : 4);
  }
  s.draft_k = s.draft_max;
  s.n_draft = 0;
  if (s.draft_max > 0) {  // logits for every draft position of every slot (grown once)
    const size_t rows =
        size_t(std::min(ctx_->params().n_batch, int(slots_.size()) * (1 + s.draft_max) + 1));
    if (logits_.size() < rows * size_t(n_vocab)) logits_.resize(rows * size_t(n_vocab));
  }
  s.thinking_budget = s.job->opt.thinking_budget;
  // think: true on a template that leaves opening the block to the model: opened for it.
  if (s.job->prompt.think && *s.job->prompt.think && s.parser &&
      s.parser->state() == parsers::OutputParser::State::kContent) {
    const auto& f = s.parser->format();
    s.forced = tok_->encode(f.think_open + f.think_label + "\n", false, true);
  }
  if (s.thinking_budget < 0) {
    if (s.num_predict > 0)
      s.thinking_budget = s.num_predict / 2;
    else if (s.grammar)
      s.thinking_budget = 1024;
  }
  if (s.parser) s.stats.output_format = s.parser->format().name;
  s.job->sink->on_start();
}

std::unique_ptr<parsers::OutputParser> Runner::make_parser(
    const Job& j, const std::string& prompt_text,
    std::vector<std::pair<int32_t, std::string>>& ids) {
  const PromptSpec& p = j.prompt;
  if (p.kind == PromptSpec::Kind::kLoadOnly || (p.kind == PromptSpec::Kind::kGenerate && p.raw))
    return nullptr;
  const std::string& tmpl = j.model.template_text ? *j.model.template_text
                            : jinja_              ? jinja_->source
                                                  : std::string();
  parsers::Format f =
      parsers::select_format(j.model.parser.value_or(""), engine_->model().config().arch, tmpl);
  if (!f.has_thinking() && !f.has_tools()) return nullptr;
  parsers::ParserOptions o;
  if (p.kind == PromptSpec::Kind::kChat && p.tools && p.tool_choice != "none") o.tools = *p.tools;
  // The template pre-opened thinking: the prompt ends with the opening marker.
  if (f.has_thinking()) {
    size_t e = prompt_text.size();
    while (e > 0 && std::isspace(static_cast<unsigned char>(prompt_text[e - 1]))) --e;
    o.starts_in_thinking =
        e >= f.think_open.size() &&
        prompt_text.compare(e - f.think_open.size(), f.think_open.size(), f.think_open) == 0;
  }
  for (const auto& m : f.markers()) {
    const int32_t id = tok_->find(m);
    if (id < 0) continue;
    o.token_markers.push_back(m);
    ids.emplace_back(id, m);
  }
  return std::make_unique<parsers::OutputParser>(std::move(f), std::move(o));
}

// The tools a call may name under tool_choice: all of them, or the named one.
static Result<nlohmann::ordered_json> chosen_tools(const PromptSpec& p) {
  if (!p.tools || !p.tools->is_array()) return invalid_argument("tool_choice needs tools");
  if (p.tool_choice == "auto" || p.tool_choice == "required" || p.tool_choice == "none")
    return *p.tools;
  nlohmann::ordered_json one = nlohmann::ordered_json::array();
  for (const auto& t : *p.tools) {
    const auto& f = t.is_object() && t.contains("function") ? t["function"] : t;
    if (f.is_object() && f.value("name", "") == p.tool_choice) one.push_back(t);
  }
  if (one.empty())
    return invalid_argument("tool_choice names '" + p.tool_choice + "', which is not in tools");
  return one;
}

std::shared_ptr<const grammar::Grammar> Runner::call_body_grammar(const Job& j,
                                                                  const parsers::OutputParser* p) {
  if (!p || !p->calls_enabled() || j.prompt.tool_choice != "auto") return nullptr;
  grammar::ToolGrammarOptions o;
  o.tools = *j.prompt.tools;
  o.whole = false;
  o.marker_token = [&](const std::string& m) { return tok_->find(m); };
  auto text = grammar::tool_call_grammar(p->format(), o);
  if (!text) return nullptr;  // this format's calls are parsed, not constrained
  auto g = grammar::Grammar::parse(*text);
  if (!g) {
    std::fprintf(stderr, "hearth: tool-call grammar: %s\n", g.status().message().c_str());
    return nullptr;
  }
  return *g;
}

Result<std::shared_ptr<const grammar::Grammar>> Runner::job_grammar(
    const Job& j, const parsers::OutputParser* p) {
  std::string text;
  const std::string& choice = j.prompt.tool_choice;
  const bool tools = j.prompt.tools && j.prompt.tools->is_array() && !j.prompt.tools->empty();
  if (tools && choice != "auto" && choice != "none") {
    if (!p || !p->calls_enabled())
      return invalid_argument("this model's output format has no tool calls to require");
    grammar::ToolGrammarOptions o;
    HEARTH_ASSIGN_OR_RETURN(o.tools, chosen_tools(j.prompt));
    o.whole = true;
    o.parallel = j.prompt.parallel_tool_calls;
    o.marker_token = [&](const std::string& m) { return tok_->find(m); };
    auto g = grammar::tool_call_grammar(p->format(), o);
    if (!g) return invalid_argument("tool_choice: " + g.status().message());
    text = std::move(*g);
  } else if (!j.prompt.grammar.empty()) {
    text = j.prompt.grammar;
  } else if (j.prompt.format) {
    auto g = grammar::json_schema_grammar(*j.prompt.format);
    if (!g) return invalid_argument("format: " + g.status().message());
    text = std::move(*g);
  } else {
    return std::shared_ptr<const grammar::Grammar>();
  }
  auto g = grammar::Grammar::parse(text);
  if (!g) return invalid_argument(g.status().message());
  return *g;
}

const std::vector<std::string>& Runner::token_bytes() {
  if (token_bytes_.empty()) {
    const int32_t n = tok_->n_vocab();
    token_bytes_.resize(size_t(n));
    token_plain_.assign(size_t(n), 0);
    for (int32_t id = 0; id < n; ++id) {
      const auto ty = tok_->token_type(id);
      if (ty == tokenizer::TokenType::kControl || ty == tokenizer::TokenType::kUnused) continue;
      token_bytes_[size_t(id)] = tok_->decode(std::span<const int32_t>(&id, 1), false);
      token_plain_[size_t(id)] = !token_bytes_[size_t(id)].empty();
    }
  }
  return token_bytes_;
}

// A format's grammar holds for the answer: armed once the output is past any thinking.
bool Runner::grammar_armed(const Slot& s) const {
  if (!s.grammar) return false;
  return !s.parser || s.parser->state() != parsers::OutputParser::State::kThinking;
}

grammar::Matcher* Runner::step_matcher(Slot& s) {
  if (grammar_armed(s)) {
    if (!s.matcher) s.matcher = std::make_unique<grammar::Matcher>(s.grammar);
    return s.matcher.get();
  }
  if (!s.call_grammar || !s.parser || s.parser->state() != parsers::OutputParser::State::kCall) {
    s.call_matcher.reset();
    s.call_unconstrained = false;
    return nullptr;
  }
  if (s.call_unconstrained) return nullptr;
  if (!s.call_matcher) {
    s.call_matcher = std::make_unique<grammar::Matcher>(s.call_grammar);
    // The token that opened the call may have carried the body's first bytes.
    if (!s.call_matcher->accept_bytes(s.parser->call_body())) {
      s.call_matcher.reset();
      s.call_unconstrained = true;
      return nullptr;
    }
  }
  return s.call_matcher.get();
}

namespace {

class GrammarFilter final : public sampling::TokenFilter {
 public:
  GrammarFilter(grammar::Matcher& m, const tokenizer::Tokenizer& tok, grammar::TokenChecker& check)
      : m_(m), tok_(tok), check_(check) {
    check_.begin_step(m);
  }
  bool allowed(int32_t t) override {
    if (tok_.is_eog(t)) return m_.accepting();
    return check_.allowed(t);
  }
  bool candidates(std::vector<int32_t>& out) override {
    check_.candidates(out);
    if (m_.accepting())
      for (int32_t e : tok_.eog_ids())
        if (!check_.is_candidate(e)) out.push_back(e);
    return true;
  }

 private:
  grammar::Matcher& m_;
  const tokenizer::Tokenizer& tok_;
  grammar::TokenChecker& check_;
};

}  // namespace

bool Runner::send(Slot& s, const std::string& text, const std::string* marker) {
  if (!s.parser) return text.empty() || s.job->sink->on_text(text);
  parsers::Parsed out;
  if (!text.empty()) s.parser->add(text, out);
  if (marker) s.parser->add_special(*marker, out);
  return out.empty() || s.job->sink->on_output(out);
}

void Runner::step() {
  const int n_batch = ctx_->params().n_batch;
  batch_.clear();
  int rows = 0;
  // Drop sequences whose client went away.
  for (auto& s : slots_)
    if (s.busy && s.job->sink->cancelled())
      fail(s, Status(StatusCode::kCancelled, "request canceled"));
  // Every generating sequence: the tokens the grammar forced (fast_forward), its pending token
  // and, when it speculates, draft tokens after it, all with logits but the forced ones.
  for (auto& s : slots_) {
    s.logits_row = -1;
    s.n_draft = 0;
    s.generating = s.busy && s.n_fed >= s.prompt.size();
    if (!s.generating) continue;
    s.gen_begin = s.cached.size();
    s.cached.insert(s.cached.end(), s.ff.begin(), s.ff.end());
    s.ff.clear();
    s.cached.push_back(s.next);
  }
  draft_tokens(n_batch);
  for (auto& s : slots_) {
    if (!s.generating) continue;
    for (size_t p = s.gen_begin; p < s.cached.size(); ++p)
      batch_.push_back({s.cached[p], int32_t(p), int32_t(s.id), p + 1 == s.cached.size()});
    s.logits_row = rows;
    rows += 1 + s.n_draft;
    for (int i = 0; i < s.n_draft; ++i) {
      batch_.push_back({s.draft[size_t(i)], int32_t(s.cached.size()), int32_t(s.id), true});
      s.cached.push_back(s.draft[size_t(i)]);
    }
    s.stats.draft_count += s.n_draft;
  }
  // ...then prompt chunks of new ones, in slot order, within the batch budget.
  for (auto& s : slots_) {
    if (!s.busy || s.n_fed >= s.prompt.size()) continue;
    const int budget = n_batch - int(batch_.size());
    if (budget <= 0) break;
    const size_t take = std::min(size_t(budget), s.prompt.size() - s.n_fed);
    for (size_t i = 0; i < take; ++i) {
      const size_t p = s.n_fed + i;
      const bool last = p == s.prompt.size() - 1;
      batch_.push_back({s.prompt[p], int32_t(p), int32_t(s.id), last});
      s.cached.push_back(s.prompt[p]);
      if (last) s.logits_row = rows++;
    }
    s.n_fed += take;
  }
  if (batch_.empty()) return;
  // Adapters: each row's scales come from its slot's row of lora_scales_ (zeros: the base).
  const models::LoraBatch lb{lora_list_, lora_scales_};
  models::ForwardInput in{batch_};
  if (!lora_list_.empty()) in.lora = &lb;
  if (auto st = engine_->model().eval(*ctx_, in, {models::OutputKind::kLogits, logits_.data()});
      !st) {
    for (auto& s : slots_)
      if (s.busy) {
        s.cached.clear();
        fail(s, st);
      }
    return;
  }
  const int64_t n_vocab = engine_->model().config().n_vocab;
  for (auto& s : slots_) {
    if (!s.busy || s.logits_row < 0) continue;
    if (s.next < 0) {  // the prompt is done: this is the first generated token
      s.t_prompt_done = Clock::now();
      s.stats.prompt_eval_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(s.t_prompt_done - s.t_start).count();
    }
    // Verification: row j holds the model's logits after the pending token and drafts 0..j-1.
    // Each position is chosen exactly as without speculation; while the choice equals the
    // draft token, the next row still conditions on the right prefix and is used too. The first
    // choice that differs (or the one after the last draft) becomes the pending token, and the
    // rejected drafts' positions are dropped from the cache.
    const size_t base = s.cached.size() - size_t(s.n_draft);  // just past the pending token
    const int n_draft = s.n_draft;
    int accepted = 0;
    s.cached.resize(base);  // the drafts come back one by one as they are accepted
    for (int j = 0; j <= n_draft; ++j) {
      if (j > 0) s.cached.push_back(s.draft[size_t(j - 1)]);  // within capacity: no allocation
      const float* row = logits_.data() + int64_t(s.logits_row + j) * n_vocab;
      int32_t t;
      bool armed = false;
      if (!choose(s, row, t, armed)) break;
      const bool hit = j < n_draft && t == s.draft[size_t(j)];
      if (hit) {
        ++accepted;
        ++s.stats.draft_accepted;
      }
      if (!take(s, t, row, armed)) break;
      // Stop at a miss, and wherever a grammar holds the next token: fast_forward may force
      // bytes there, as it would have without speculation.
      if (!hit || step_matcher(s)) break;
    }
    if (!s.busy) continue;
    if (n_draft > 0)  // adaptive length: back to what was accepted, then up by one per success
      s.draft_k =
          accepted == n_draft ? std::min(s.draft_max, s.draft_k + 1) : std::max(1, accepted + 1);
    fast_forward(s);
  }
}

// Drafts for the generating slots that speculate: prompt lookup first, else the draft model (all
// such slots in one batched run). Never where a grammar holds the next token or tokens are
// forced, never past the window, num_predict or the slot's share of the batch.
void Runner::draft_tokens(int n_batch) {
  draft_reqs_.clear();
  const int share = n_batch / int(slots_.size());
  for (auto& s : slots_) {
    if (!s.generating || s.draft_k <= 0 || !s.forced.empty()) continue;
    int k = std::min(s.draft_k, share - int(s.cached.size() - s.gen_begin));
    k = std::min(k, s.n_ctx - 2 - int(s.cached.size()));
    if (s.num_predict > 0) k = std::min(k, s.num_predict - s.stats.eval_count - 1);
    if (k <= 0 || step_matcher(s)) continue;
    if (s.lookup) s.n_draft = lookup_draft(s.cached, k, kLookupMin, kLookupMax, s.draft.data());
    if (s.n_draft == 0 && draft_) {
      DraftModel::Request r;
      r.seq = s.id;
      r.history = s.cached;
      r.n_ctx = s.n_ctx;
      r.k = k;
      r.out = s.draft.data();
      draft_reqs_.push_back(r);
    }
  }
  if (draft_reqs_.empty()) return;
  const auto t0 = Clock::now();
  if (auto st = draft_->draft(draft_reqs_); !st) {
    // Only speed is lost: decode on without the draft model.
    std::fprintf(stderr, "hearth: draft model %s failed (%s); decoding without it\n",
                 draft_->path().c_str(), st.message().c_str());
    draft_.reset();
    return;
  }
  const int64_t dt = ns_since(t0);
  for (const auto& r : draft_reqs_) {
    slots_[size_t(r.seq)].n_draft = r.n_out;
    slots_[size_t(r.seq)].stats.draft_ns += dt;
  }
}

bool Runner::choose(Slot& s, const float* row, int32_t& t, bool& armed) {
  grammar::Matcher* m = step_matcher(s);
  armed = m == s.matcher.get() && m;
  if (!s.forced.empty()) {
    t = s.forced.front();
    s.forced.erase(s.forced.begin());
    if (m && !m->accept_token(uint32_t(t))) m->accept_bytes(token_bytes()[size_t(t)]);
  } else if (m) {
    if (!checker_) checker_ = std::make_unique<grammar::TokenChecker>(token_bytes(), token_plain_);
    const auto g0 = Clock::now();
    const int masks0 = checker_->masks_built();
    GrammarFilter f(*m, *tok_, *checker_);
    t = s.sampler->sample(row, &f);
    s.grammar_masks += checker_->masks_built() - masks0;
    if (t < 0) {  // nothing the grammar allows is in the vocabulary: end with what exists
      std::fprintf(stderr, "hearth: %s: no token satisfies the grammar here; stopping\n",
                   s.job->model.name.display().c_str());
      finish(s, "stop");
      return false;
    }
    if (!tok_->is_eog(t) && !m->accept_token(uint32_t(t)))
      m->accept_bytes(token_bytes()[size_t(t)]);
    s.grammar_ns += ns_since(g0);
    ++s.grammar_steps;
  } else {
    t = s.sampler->sample(row);
    // The answer must follow a grammar (a format, a required or named tool call): an end of
    // generation while still thinking would end the request without it. The thinking block is
    // closed instead, as at the thinking budget, and the grammar takes over.
    if (tok_->is_eog(t) && s.grammar && s.parser &&
        s.parser->state() == parsers::OutputParser::State::kThinking) {
      const auto close = tok_->encode("\n" + s.parser->format().think_close + "\n\n", false, true);
      if (!close.empty()) {
        t = close.front();
        s.forced.assign(close.begin() + 1, close.end());
        std::fprintf(stderr, "hearth: %s: end of generation while thinking; closing it\n",
                     s.job->model.name.display().c_str());
      }
    }
  }
  return true;
}

// Everything a chosen token does: the sampler's history, log-probabilities, the output stream and
// parser, stop strings and limits. false: the sequence ended (finished or failed).
bool Runner::take(Slot& s, int32_t t, const float* row, bool armed) {
  const int64_t n_vocab = engine_->model().config().n_vocab;
  s.sampler->accept(t);
  if (row && (s.job->opt.logprobs || s.job->opt.top_logprobs > 0)) {
    // log-softmax of the raw logits: the model's distribution, before sampling settings.
    const float mx = *std::max_element(row, row + n_vocab);
    double sum = 0;
    for (int64_t i = 0; i < n_vocab; ++i) sum += std::exp(double(row[i] - mx));
    const float log_z = mx + float(std::log(sum));
    auto text = [&](int32_t id) { return tok_->decode(std::span<const int32_t>(&id, 1), true); };
    TokenLogprob lp;
    lp.token = text(t);
    lp.logprob = row[t] - log_z;
    const int k = std::min<int>(s.job->opt.top_logprobs, int(n_vocab));
    if (k > 0) {
      std::vector<int32_t>& idx = lp_order_;  // reused: no allocation per token
      idx.resize(static_cast<size_t>(n_vocab));
      for (int32_t i = 0; i < int32_t(n_vocab); ++i) idx[size_t(i)] = i;
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
        return row[a] > row[b] || (row[a] == row[b] && a < b);
      });
      for (int i = 0; i < k; ++i)
        lp.top.push_back({text(idx[size_t(i)]), row[idx[size_t(i)]] - log_z});
    }
    s.job->sink->on_logprob(lp);
  }
  s.stats.eval_count++;
  s.stats.context.push_back(t);
  if (tok_->is_eog(t)) {
    finish(s, "stop");
    return false;
  }
  const std::string* marker = nullptr;
  for (const auto& [id, m] : s.marker_ids)
    if (id == t) marker = &m;
  // A marker token ends the text before it (it cannot continue a character or a stop string).
  const std::string piece = marker ? s.stream->drain() : s.stream->push(t);
  if (!send(s, piece, marker)) {
    fail(s, Status(StatusCode::kCancelled, "request canceled"));
    return false;
  }
  // Thinking past its budget: the format's closing marker comes next, unsampled.
  if (s.parser && s.parser->state() == parsers::OutputParser::State::kThinking &&
      s.thinking_budget >= 0 && ++s.thinking_tokens >= s.thinking_budget && s.forced.empty()) {
    s.forced = tok_->encode("\n" + s.parser->format().think_close + "\n\n", false, true);
    std::fprintf(stderr, "hearth: %s: thinking budget of %d tokens reached; closing it\n",
                 s.job->model.name.display().c_str(), s.thinking_budget);
  }
  if (s.stream->stopped() || (armed && s.matcher->finished())) {
    finish(s, "stop");
    return false;
  }
  if ((s.num_predict > 0 && s.stats.eval_count >= s.num_predict) ||
      int(s.cached.size() + s.ff.size()) + 1 >= s.n_ctx) {
    finish(s, "length");
    return false;
  }
  s.next = t;
  return true;
}

// Where the grammar leaves no choice (a schema's keys and punctuation: `", "name": "`), those
// bytes are appended without sampling: tokenized, taken like sampled tokens and fed together in
// the next step's batch, one forward pass for all of them instead of one each. The run's last
// token is left to the sampler, which the grammar still holds to the run: the text after the run
// may join it into one token the model prefers (`"` + `name`). Not with log-probabilities, which
// only sampled tokens have.
void Runner::fast_forward(Slot& s) {
  if (!s.busy || !s.forced.empty() || s.job->opt.logprobs || s.job->opt.top_logprobs > 0) return;
  grammar::Matcher* m = step_matcher(s);
  if (!m) return;
  const bool armed = m == s.matcher.get();
  // At most 16 tokens, and within this sequence's share of the batch.
  const size_t cap = size_t(std::clamp(ctx_->params().n_batch / int(slots_.size()) - 1, 0, 16));
  const auto g0 = Clock::now();
  m->forced_bytes(ff_text_, 256);
  if (ff_text_.size() < 2 || cap == 0) return;
  const std::vector<int32_t> toks = tok_->encode(ff_text_, false, false);
  s.grammar_ns += ns_since(g0);
  for (size_t i = 0; i + 1 < toks.size() && s.ff.size() < cap; ++i) {
    const int32_t t = toks[i];
    if (tok_->is_eog(t) || !m->accept_bytes(token_bytes()[size_t(t)])) break;
    s.ff.push_back(s.next);  // fed before it, no logits needed
    ++s.grammar_forced;
    if (log_forced_) std::fprintf(stderr, "hearth: forced token %d at %d\n", t, s.stats.eval_count);
    if (!take(s, t, nullptr, armed)) return;
  }
}

void Runner::finish(Slot& s, const std::string& reason) {
  if (!s.stream->stopped()) send(s, s.stream->flush(), nullptr);
  if (s.parser) {
    parsers::Parsed out;
    s.parser->finish(reason == "length", out);
    for (const auto& w : s.parser->warnings)
      std::fprintf(stderr, "hearth: %s: %s\n", s.job->model.name.display().c_str(), w.c_str());
    if (!out.empty()) s.job->sink->on_output(out);
  }
  Stats st = std::move(s.stats);
  st.done_reason = reason;
  if (s.next >= 0 || st.eval_count > 0)
    st.eval_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - s.t_prompt_done)
            .count();
  // context = prompt + generated tokens
  std::vector<int32_t> ctx = s.prompt;
  ctx.insert(ctx.end(), st.context.begin(), st.context.end());
  st.context = std::move(ctx);
  st.total_ns = ns_since(s.job->t_submit);
  std::fprintf(
      stderr, "hearth: %s: %d prompt tokens (%d cached%s), %d generated, %s, %.1f ms\n",
      s.job->model.name.display().c_str(), st.prompt_eval_count, st.prompt_cached,
      st.prompt_truncated ? (", " + std::to_string(st.prompt_truncated) + " cut").c_str() : "",
      st.eval_count, reason.c_str(), double(st.total_ns) / 1e6);
  if (st.draft_count > 0)
    std::fprintf(stderr, "hearth: %s: speculative: %d drafted, %d accepted (%.1f%%)\n",
                 s.job->model.name.display().c_str(), st.draft_count, st.draft_accepted,
                 100.0 * st.draft_accepted / st.draft_count);
  if (s.grammar_steps > 0)
    std::fprintf(stderr,
                 "hearth: %s: grammar: %d constrained steps, %.3f ms per step, %d full masks, "
                 "%d tokens forced\n",
                 s.job->model.name.display().c_str(), s.grammar_steps,
                 double(s.grammar_ns) / 1e6 / s.grammar_steps, s.grammar_masks, s.grammar_forced);
  s.job->sink->on_done(st);
  release(s);
}

void Runner::fail(Slot& s, const Status& error) {
  std::fprintf(
      stderr, "hearth: %s: %s after %d generated tokens\n", s.job->model.name.display().c_str(),
      error.code() == StatusCode::kCancelled ? "canceled by the client" : error.message().c_str(),
      s.stats.eval_count);
  s.job->sink->on_error(error);
  // A half-fed prompt leaves the cache consistent up to what was evaluated.
  release(s);
}

void Runner::abandon(const std::shared_ptr<Sink>& sink, const Status& error) {
  for (auto& s : slots_)
    if (s.busy && s.job && s.job->sink == sink) return fail(s, error);
  sink->on_error(error);
  owner_->job_finished(model_path_);
}

void Runner::release(Slot& s) {
  s.busy = false;
  s.job.reset();
  s.sampler.reset();
  s.stream.reset();
  s.parser.reset();
  s.marker_ids.clear();
  s.grammar.reset();
  s.matcher.reset();
  s.next = -1;
  s.ff.clear();
  s.last_used = Clock::now();
  owner_->job_finished(model_path_);
}

}  // namespace hearth::runtime
