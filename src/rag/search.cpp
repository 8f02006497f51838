#include "rag/search.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

namespace hearth::rag {

Result<SearchResult> search(Library& lib, const std::string& query,
                            const std::vector<std::string>& doc_ids, const SearchOptions& opt,
                            const SearchHooks& hooks) {
  if (opt.mode != "hybrid" && opt.mode != "keyword" && opt.mode != "vector")
    return invalid_argument("mode must be hybrid, keyword or vector");
  SearchResult out;
  std::vector<std::string> ready;
  std::set<std::string> models;
  for (const auto& id : doc_ids) {
    auto d = lib.document(id);
    if (!d) {
      if (d.status().code() == StatusCode::kNotFound) continue;
      return d.status();
    }
    if (d->status == "ready") {
      ready.push_back(id);
      if (!d->embed_model.empty() && d->dim > 0) models.insert(d->embed_model);
    } else if (d->status != "error") {
      out.pending.push_back(id);
    }
  }
  if (ready.empty() || query.find_first_not_of(" \t\r\n") == std::string::npos) {
    out.mode = opt.mode;
    return out;
  }
  const int cand = std::max(opt.candidates, opt.k);
  std::vector<std::vector<int64_t>> rankings;
  bool used_kw = false, used_vec = false;
  if (opt.mode != "vector") {
    HEARTH_ASSIGN_OR_RETURN(auto kw, lib.keyword(query, ready, cand));
    std::vector<int64_t> r;
    for (const auto& h : kw) r.push_back(h.id);
    rankings.push_back(std::move(r));
    used_kw = true;
  }
  if (opt.mode != "keyword" && hooks.embed) {
    for (const auto& m : models) {
      HEARTH_ASSIGN_OR_RETURN(auto qv, hooks.embed(m, {query}));
      if (qv.size() != 1 || qv[0].empty()) return internal_error("no query embedding");
      HEARTH_ASSIGN_OR_RETURN(auto vh, lib.similar(m, qv[0], ready, cand));
      std::vector<int64_t> r;
      for (const auto& h : vh) r.push_back(h.id);
      rankings.push_back(std::move(r));
      used_vec = true;
    }
  }
  out.mode = used_kw && used_vec ? "hybrid" : used_vec ? "vector" : "keyword";
  // One ranking alone keeps its order; RRF of one list preserves it too.
  auto fused = fuse_rrf(rankings);
  if (fused.size() > size_t(cand)) fused.resize(size_t(cand));
  std::vector<int64_t> ids;
  for (const auto& h : fused) ids.push_back(h.id);
  HEARTH_ASSIGN_OR_RETURN(auto ps, lib.passages(ids));
  std::unordered_map<int64_t, double> score;
  for (const auto& h : fused) score[h.id] = h.score;
  for (auto& p : ps) p.score = score[p.chunk_id];
  if (hooks.rerank && !ps.empty()) {
    std::vector<std::string> texts;
    for (const auto& p : ps) texts.push_back(p.text);
    HEARTH_ASSIGN_OR_RETURN(auto s, hooks.rerank(query, texts));
    if (s.size() != ps.size()) return internal_error("rerank returned a wrong number of scores");
    for (size_t i = 0; i < ps.size(); ++i) ps[i].score = s[i];
    std::stable_sort(ps.begin(), ps.end(),
                     [](const Passage& a, const Passage& b) { return a.score > b.score; });
    out.mode += "+rerank";
  }
  std::vector<size_t> tokens;
  for (auto& p : ps) {
    if (hooks.count) p.tokens = int(hooks.count(p.text));
    tokens.push_back(size_t(p.tokens));
  }
  const size_t budget = opt.budget_tokens ? opt.budget_tokens : SIZE_MAX;
  for (size_t i : fit_budget(tokens, budget, size_t(std::max(opt.k, 0))))
    out.passages.push_back(std::move(ps[i]));
  return out;
}

}  // namespace hearth::rag
