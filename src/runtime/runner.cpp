#include "runtime/runner.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>

#include "runtime/prompt.h"

namespace hearth::runtime {
namespace {

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
                                             const SchedulerOptions& o) {
  const auto t0 = Clock::now();
  auto r = std::shared_ptr<Runner>(new Runner());
  r->owner_ = owner;
  r->model_path_ = model_path;
  r->opt_ = o;
  EngineOptions eo;
  eo.n_threads = o.n_threads;
  HEARTH_ASSIGN_OR_RETURN(r->engine_, Engine::load(model_path, eo));
  HEARTH_ASSIGN_OR_RETURN(r->tok_, tokenizer::Tokenizer::from_gguf(r->engine_->file()));
  if (auto j = templates::jinja_chat_template(r->engine_->file()); j.is_ok()) r->jinja_ = *j;
  const auto& cfg = r->engine_->model().config();
  r->n_ctx_train_ = int(std::min<int64_t>(cfg.n_ctx_train > 0 ? cfg.n_ctx_train : 4096, 1 << 30));
  models::ContextParams cp;
  cp.n_ctx = 16;  // every slot grows to its request's num_ctx when first used
  cp.n_seq = std::max(1, o.num_parallel);
  cp.n_batch = std::max(o.n_batch, cp.n_seq);
  HEARTH_ASSIGN_OR_RETURN(r->ctx_, r->engine_->model().new_context(cp, r->engine_->pool()));
  r->slots_.resize(size_t(cp.n_seq));
  for (int i = 0; i < cp.n_seq; ++i) r->slots_[size_t(i)].id = i;
  r->batch_.reserve(size_t(cp.n_batch));
  r->logits_.resize(size_t(cp.n_seq) * size_t(cfg.n_vocab));
  struct stat st {};
  if (::stat(model_path.c_str(), &st) == 0) r->file_bytes_ = st.st_size;
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
  return file_bytes_ + cache_bytes_.load();
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
      // Admit as many waiting jobs as there are free slots (load-only jobs need none).
      auto n_free = free_slots();
      while (!incoming_.empty() &&
             (n_free > 0 || incoming_.front().prompt.kind == PromptSpec::Kind::kLoadOnly)) {
        if (incoming_.front().prompt.kind != PromptSpec::Kind::kLoadOnly) --n_free;
        admitted.push_back(std::move(incoming_.front()));
        incoming_.pop_front();
      }
    }
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
  auto built = build_prompt(j.prompt, j.model, jinja_, *tok_);
  if (!built) {
    j.sink->on_error(built.status());
    owner_->job_finished(model_path_);
    return;
  }
  std::vector<int32_t> prompt = std::move(built->tokens);
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

  // The free slot whose cache shares the longest prefix with this prompt; else the least
  // recently used one.
  Slot* best = nullptr;
  size_t best_lcp = 0;
  for (auto& s : slots_) {
    if (s.busy) continue;
    const size_t l = common_prefix(s.cached, prompt);
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
  s.job->sink->on_start();
}

void Runner::step() {
  const int n_batch = ctx_->params().n_batch;
  batch_.clear();
  int rows = 0;
  // Drop sequences whose client went away.
  for (auto& s : slots_)
    if (s.busy && s.job->sink->cancelled())
      fail(s, Status(StatusCode::kCancelled, "request canceled"));
  // One token for every generating sequence...
  for (auto& s : slots_) {
    s.logits_row = -1;
    if (!s.busy || s.n_fed < s.prompt.size()) continue;
    const int32_t pos = int32_t(s.cached.size());
    batch_.push_back({s.next, pos, int32_t(s.id), true});
    s.cached.push_back(s.next);
    s.logits_row = rows++;
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
  if (auto st = engine_->model().forward(*ctx_, batch_, logits_.data()); !st) {
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
    const int32_t t = s.sampler->sample(logits_.data() + int64_t(s.logits_row) * n_vocab);
    s.sampler->accept(t);
    s.stats.eval_count++;
    s.stats.context.push_back(t);
    if (tok_->is_eog(t)) {
      finish(s, "stop");
      continue;
    }
    const std::string piece = s.stream->push(t);
    if (!piece.empty() && !s.job->sink->on_text(piece)) {
      fail(s, Status(StatusCode::kCancelled, "request canceled"));
      continue;
    }
    if (s.stream->stopped()) {
      finish(s, "stop");
      continue;
    }
    if ((s.num_predict > 0 && s.stats.eval_count >= s.num_predict) ||
        int(s.cached.size()) + 1 >= s.n_ctx) {
      finish(s, "length");
      continue;
    }
    s.next = t;
  }
}

void Runner::finish(Slot& s, const std::string& reason) {
  if (!s.stream->stopped()) {
    const std::string rest = s.stream->flush();
    if (!rest.empty()) s.job->sink->on_text(rest);
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
  s.next = -1;
  s.last_used = Clock::now();
  owner_->job_finished(model_path_);
}

}  // namespace hearth::runtime
