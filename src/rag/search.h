// rag/search.h — hybrid retrieval: the passages of some documents that best answer a query.
//
// Keyword ranking (FTS5's BM25) and vector ranking (cosine over each embedding model's chunks;
// documents embedded with different models each get their own ranking) are fused by reciprocal
// rank fusion, optionally re-scored by a rerank model, and the best passages that fit a token
// budget are returned, best first. Modes "keyword" and "vector" use one side only (for the
// retrieval-quality comparison, tools/eval_retrieval).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "rag/library.h"

namespace hearth::rag {

struct SearchOptions {
  int k = 5;                    // passages returned at most
  int candidates = 40;          // taken from each ranking before fusion (and reranked)
  size_t budget_tokens = 0;     // 0: no token budget
  std::string mode = "hybrid";  // hybrid, keyword, vector
};

struct SearchHooks {
  // Normalized embeddings of `texts` by `model` (null: no vector ranking).
  std::function<Result<std::vector<std::vector<float>>>(const std::string& model,
                                                        const std::vector<std::string>& texts)>
      embed;
  // Relevance of each text to the query, higher is better (null: no reranking).
  std::function<Result<std::vector<double>>(const std::string& query,
                                            const std::vector<std::string>& texts)>
      rerank;
  // Tokens of a passage as the chat model counts them (null: the chunk's stored count).
  std::function<size_t(std::string_view)> count;
};

struct SearchResult {
  std::vector<Passage> passages;     // best first; tokens by `count`
  std::string mode;                  // what ran: "hybrid", "keyword", "vector", "+rerank" appended
  std::vector<std::string> pending;  // documents in scope not ready yet (left out)
};

Result<SearchResult> search(Library& lib, const std::string& query,
                            const std::vector<std::string>& doc_ids, const SearchOptions& opt,
                            const SearchHooks& hooks);

}  // namespace hearth::rag
