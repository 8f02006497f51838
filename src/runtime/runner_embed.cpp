// runtime/runner_embed.cpp — embedding requests on a loaded model.
//
// Every input of every embedding job admitted together is tokenized (BOS/EOS as the model's
// metadata says: Qwen3-Embedding-style models end with the EOS their last-token pooling reads),
// cut to the context where `truncate` allows, and packed into forward batches of many sequences.
// Encoders (bidirectional) take each sequence whole in one batch and attend within it
// (models/blocks/attention.cpp runs attention per sequence), so 64 short inputs cost a few
// large matmuls instead of 64 small forward passes — Ollama runs every input as its own request.
// Causal models with a pooling type run through the KV cache: a group of sequences whose
// caches fit a token budget, each fed in chunks, the pooled rows of the chunks combined (last:
// the final chunk's; cls: the first; mean: weighted by chunk length).
//
// Rerank jobs take the same path: each document, paired with the query as llama-server pairs
// them, is one sequence, pooled by the model's classifier head (rank pooling) into its scores.
#include <algorithm>
#include <chrono>
#include <string>

#include "runtime/runner.h"

namespace hearth::runtime {

namespace {

constexpr int kEmbedSeqs = 64;         // sequences per forward batch
constexpr int kEncoderBatch = 8192;    // an encoder's longest input is one batch
constexpr int kCausalCacheBudget = 4;  // causal: cached positions per group, in batches

int64_t ns_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t).count();
}

struct Input {
  size_t job = 0, index = 0;
  std::vector<int32_t> tokens;
};

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
}

// A query-document pair as llama-server's format_prompt_rerank builds it, cut to `limit`
// tokens by shortening the document when `truncate` (else an error past the limit).
// With the model's rerank template (`tokenizer.chat_template.rerank`): {query} and {document}
// replaced in the text, tokenized without added specials, special-token text parsed. Without:
// [BOS] query [EOS] [SEP] document [EOS], each marker as the vocabulary adds it (the EOS falls
// back to SEP when there is none), query and document tokenized plain.
Result<std::vector<int32_t>> rerank_pair(const tokenizer::Tokenizer& tok, const std::string* tmpl,
                                         bool add_sep, const std::string& query,
                                         const std::string& doc, size_t limit, bool truncate,
                                         size_t index, int& truncated) {
  std::vector<int32_t> pre, d, post;
  if (tmpl) {
    std::string text = *tmpl;
    replace_all(text, "{query}", query);
    std::string whole = text;
    replace_all(whole, "{document}", doc);
    auto all = tok.encode(whole, /*add_special=*/false, /*parse_special=*/true);
    if (all.size() <= limit || !truncate) {
      if (all.size() > limit)
        d = std::move(all);  // reported below
      else
        return all;
    } else {
      // Cut the document: the text before its (first) place, the document, the rest.
      const size_t at = text.find("{document}");
      if (at == std::string::npos) {
        d = std::move(all);  // no document in the template: nothing to shorten
      } else {
        std::string rest = text.substr(at + 10);
        replace_all(rest, "{document}", doc);
        pre = tok.encode(text.substr(0, at), false, true);
        d = tok.encode(doc, false, true);
        post = tok.encode(rest, false, true);
      }
    }
  } else {
    const auto& sp = tok.special();
    const int32_t eos = sp.eos >= 0 ? sp.eos : sp.sep;
    if (tok.add_bos() && sp.bos >= 0) pre.push_back(sp.bos);
    auto q = tok.encode(query, false, false);
    pre.insert(pre.end(), q.begin(), q.end());
    if (tok.add_eos() && eos >= 0) pre.push_back(eos);
    if (add_sep && sp.sep >= 0) pre.push_back(sp.sep);
    d = tok.encode(doc, false, false);
    if (tok.add_eos() && eos >= 0) post.push_back(eos);
  }
  const size_t total = pre.size() + d.size() + post.size();
  if (total > limit) {
    const size_t fixed = pre.size() + post.size();
    if (!truncate || fixed >= limit)
      return invalid_argument("request (" + std::to_string(total) +
                              " tokens) exceeds the available context size (" +
                              std::to_string(limit) + " tokens), try increasing it (document " +
                              std::to_string(index) + ")");
    truncated += int(total - limit);
    d.resize(limit - fixed);
  }
  pre.insert(pre.end(), d.begin(), d.end());
  pre.insert(pre.end(), post.begin(), post.end());
  return pre;
}

}  // namespace

void Runner::embed(std::vector<Job>& jobs) {
  const auto t0 = Clock::now();
  const auto& model = engine_->model();
  const auto& cfg = model.config();
  // All jobs here are of one kind (the loop hands embeddings and reranks over separately).
  const bool rank = !jobs.empty() && jobs[0].prompt.kind == PromptSpec::Kind::kRerank;
  // A model without a pooling type (a chat model) embeds as Ollama's runner did: the final
  // hidden state of the last token.
  const models::Pooling pooling = rank                                    ? models::Pooling::kRank
                                  : cfg.pooling == models::Pooling::kNone ? models::Pooling::kLast
                                                                          : cfg.pooling;
  std::vector<bool> answered(jobs.size(), false);
  std::vector<Stats> stats(jobs.size());
  std::vector<std::vector<std::vector<float>>> out(jobs.size());
  auto fail_job = [&](size_t i, const Status& st) {
    if (answered[i]) return;
    answered[i] = true;
    jobs[i].sink->on_error(st);
    owner_->job_finished(model_path_);
  };
  try {
    // A reranker gives scores, not vectors; a model without a classifier head cannot rank.
    std::string refusal;
    if (rank && cfg.n_cls_out <= 0)
      refusal =
          " does not support reranking: it has no classifier head (cls.weight or "
          "cls.output.weight, as bge-reranker models have)";
    else if (!rank && pooling == models::Pooling::kRank)
      refusal =
          " is a reranking model: it scores query-document pairs (/api/rerank, /v1/rerank) and "
          "gives no embeddings";
    if (!refusal.empty()) {
      for (size_t i = 0; i < jobs.size(); ++i)
        fail_job(i, invalid_argument("\"" + jobs[i].model.name.display() + "\"" + refusal));
      return;
    }
    std::optional<std::string> rerank_tmpl;
    bool pair_sep = tok_->add_sep();
    if (rank) {
      const auto& f = model.file();
      if (auto t = f.get_string("tokenizer.chat_template.rerank"); t.is_ok()) rerank_tmpl = *t;
      // llama.cpp's add_sep: the key, else on for WordPiece vocabularies only.
      if (auto a = f.get_bool_or("tokenizer.ggml.add_sep_token", pair_sep); a.is_ok())
        pair_sep = *a;
    }
    // Tokenize and truncate.
    std::vector<Input> inputs;
    const bool causal = cfg.causal;
    for (size_t i = 0; i < jobs.size(); ++i) {
      Job& j = jobs[i];
      int limit = std::min(j.opt.num_ctx > 0 ? j.opt.num_ctx : opt_.default_ctx, n_ctx_train_);
      if (!causal) limit = std::min(limit, kEncoderBatch);
      const size_t n_in =
          j.prompt.input_tokens.empty() ? j.prompt.inputs.size() : j.prompt.input_tokens.size();
      out[i].resize(n_in);
      std::vector<Input> mine;
      Status bad;
      for (size_t k = 0; k < n_in && bad.is_ok(); ++k) {
        Input in{i, k, {}};
        if (rank) {
          auto pair = rerank_pair(*tok_, rerank_tmpl ? &*rerank_tmpl : nullptr, pair_sep,
                                  j.prompt.query, j.prompt.inputs[k], size_t(limit),
                                  j.prompt.truncate, k, stats[i].prompt_truncated);
          if (!pair) {
            bad = pair.status();
            break;
          }
          in.tokens = std::move(*pair);
        } else if (j.prompt.input_tokens.empty()) {
          in.tokens = tok_->encode(j.prompt.inputs[k], /*add_special=*/true,
                                   /*parse_special=*/true);
        } else {
          in.tokens = j.prompt.input_tokens[k];
        }
        for (int32_t t : in.tokens)
          if (t < 0 || t >= cfg.n_vocab) {
            bad = invalid_argument("input " + std::to_string(k) + ": token " + std::to_string(t) +
                                   " is outside the vocabulary of " + std::to_string(cfg.n_vocab));
            break;
          }
        if (!bad.is_ok()) break;
        if (in.tokens.empty()) {
          bad = invalid_argument("input " + std::to_string(k) + " is empty");
          break;
        }
        if (int(in.tokens.size()) > limit) {
          if (!j.prompt.truncate) {
            bad = invalid_argument("the input length exceeds the context length (input " +
                                   std::to_string(k) + ": " + std::to_string(in.tokens.size()) +
                                   " tokens, context " + std::to_string(limit) + ")");
            break;
          }
          // Keep the start; a model that ends inputs with EOS still sees it last.
          const int32_t last = in.tokens.back();
          const bool eos_last = tok_->add_eos() && last == tok_->special().eos;
          stats[i].prompt_truncated += int(in.tokens.size()) - limit;
          in.tokens.resize(size_t(limit));
          if (eos_last) in.tokens.back() = last;
        }
        stats[i].prompt_eval_count += int(in.tokens.size());
        mine.push_back(std::move(in));
      }
      if (!bad.is_ok()) {
        fail_job(i, bad);
        continue;
      }
      for (auto& in : mine) inputs.push_back(std::move(in));
    }
    if (inputs.empty()) {
      for (size_t i = 0; i < jobs.size(); ++i)
        if (!answered[i]) {  // no inputs at all: an empty answer, as Ollama gives
          answered[i] = true;
          stats[i].total_ns = ns_since(jobs[i].t_submit);
          stats[i].load_ns = jobs[i].load_ns;
          jobs[i].sink->on_embeddings({}, stats[i]);
          owner_->job_finished(model_path_);
        }
      return;
    }

    // The context embedding batches run in: many sequences, each given room per call.
    const int B = causal ? std::max(1, opt_.n_batch)
                         : std::min(kEncoderBatch, std::max(opt_.n_batch, n_ctx_train_));
    if (!embed_ctx_) {
      models::ContextParams cp;
      cp.n_ctx = 16;
      cp.n_seq = kEmbedSeqs;
      cp.n_batch = B;
      auto c = model.new_context(cp, engine_->pool());
      if (!c) {
        for (size_t i = 0; i < jobs.size(); ++i) fail_job(i, c.status());
        return;
      }
      embed_ctx_ = std::move(*c);
    }
    models::Context& ctx = *embed_ctx_;
    const int64_t W = cfg.pooled_width(pooling);  // floats per pooled row
    std::vector<float> pooled;
    std::vector<models::BatchToken> batch;
    batch.reserve(size_t(B));

    // Groups of sequences fed together: encoders, whole sequences up to a batch; causal
    // models, sequences whose caches together stay within a few batches of positions.
    const size_t budget = causal ? size_t(B) * kCausalCacheBudget : size_t(B);
    auto fails = [&](const Status& st) {
      for (size_t i = 0; i < jobs.size(); ++i) fail_job(i, st);
    };
    for (size_t g0 = 0; g0 < inputs.size();) {
      size_t g1 = g0, total = 0;
      while (g1 < inputs.size() && int(g1 - g0) < kEmbedSeqs &&
             (g1 == g0 || total + inputs[g1].tokens.size() <= budget)) {
        total += inputs[g1].tokens.size();
        ++g1;
      }
      const int n = int(g1 - g0);
      for (int s = 0; s < n; ++s)
        if (auto st = ctx.reserve_sequence(s, int(inputs[g0 + size_t(s)].tokens.size()));
            !st.is_ok())
          return fails(st);
      std::vector<size_t> fed(static_cast<size_t>(n), 0);
      std::vector<std::vector<float>> acc(static_cast<size_t>(n));
      for (;;) {
        // Fill a batch: each sequence's next tokens as one run (encoders: all of it).
        batch.clear();
        std::vector<int> seqs;
        for (int s = 0; s < n; ++s) {
          const auto& toks = inputs[g0 + size_t(s)].tokens;
          if (fed[size_t(s)] == toks.size()) continue;
          const size_t room = size_t(B) - batch.size();
          const size_t left = toks.size() - fed[size_t(s)];
          if (room == 0 || (!causal && left > room)) break;
          const size_t take = std::min(room, left);
          for (size_t k = 0; k < take; ++k) {
            const size_t pos = fed[size_t(s)] + k;
            batch.push_back({toks[pos], int32_t(pos), s, false});
          }
          fed[size_t(s)] += take;
          seqs.push_back(s);
        }
        if (batch.empty()) break;
        pooled.resize(seqs.size() * size_t(W));
        const models::ForwardOutput fo{models::OutputKind::kPooled, pooled.data(), pooling};
        if (auto st = model.eval(ctx, models::ForwardInput{batch}, fo); !st.is_ok())
          return fails(st);
        // Rows come in order of first appearance: the order `seqs` was filled in.
        for (size_t r = 0; r < seqs.size(); ++r) {
          const int s = seqs[r];
          const float* row = pooled.data() + r * size_t(W);
          auto& a = acc[size_t(s)];
          const auto& toks = inputs[g0 + size_t(s)].tokens;
          size_t in_batch = 0;
          for (const auto& b : batch) in_batch += b.seq == s;
          const bool first = fed[size_t(s)] == in_batch;
          const bool last = fed[size_t(s)] == toks.size();
          switch (pooling) {
            case models::Pooling::kMean:
              if (a.empty()) a.assign(size_t(W), 0.0f);
              for (int64_t d = 0; d < W; ++d) a[size_t(d)] += row[d] * float(in_batch);
              if (last)
                for (auto& v : a) v /= float(toks.size());
              break;
            case models::Pooling::kCls:
              if (first) a.assign(row, row + W);
              break;
            case models::Pooling::kRank:  // the head reads the first row, or Qwen3's last
              if (cfg.rank_last ? last : first) a.assign(row, row + W);
              break;
            default:  // last
              if (last) a.assign(row, row + W);
          }
        }
      }
      for (int s = 0; s < n; ++s) {
        const Input& in = inputs[g0 + size_t(s)];
        out[in.job][in.index] = std::move(acc[size_t(s)]);
        (void)ctx.reserve_sequence(s, 16);  // give back what a long input's cache took
      }
      g0 = g1;
    }
    const int64_t elapsed = ns_since(t0);
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (answered[i]) continue;
      answered[i] = true;
      stats[i].prompt_eval_ns = elapsed;
      stats[i].load_ns = jobs[i].load_ns;
      stats[i].total_ns = ns_since(jobs[i].t_submit);
      stats[i].done_reason = "stop";
      jobs[i].sink->on_embeddings(std::move(out[i]), stats[i]);
      owner_->job_finished(model_path_);
    }
  } catch (const std::bad_alloc&) {
    for (size_t i = 0; i < jobs.size(); ++i)
      fail_job(i, Status(StatusCode::kResourceExhausted, "out of memory for this request"));
  } catch (const std::exception& e) {
    for (size_t i = 0; i < jobs.size(); ++i)
      fail_job(i, internal_error(std::string("embedding failed: ") + e.what()));
  }
}

}  // namespace hearth::runtime
