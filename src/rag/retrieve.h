// rag/retrieve.h — hybrid retrieval's arithmetic: vector similarity over stored embeddings,
// reciprocal rank fusion of several rankings, and the passages that fit a prompt's token budget.
// The keyword ranking (BM25) comes from SQLite's FTS5 where the chunks are stored; this file only
// combines rankings, so it is exact and testable without a database or a model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace hearth::rag {

struct Hit {
  int64_t id;    // a chunk's id
  double score;  // higher is better
};

// The k rows of `vectors` (n rows of `dim` floats, each L2-normalized, as /api/embed returns them)
// most similar to `query` (normalized too): cosine = dot product. Best first; ties by lower id.
std::vector<Hit> top_k_cosine(std::span<const float> query, std::span<const float> vectors,
                              std::span<const int64_t> ids, size_t dim, size_t k);

// Reciprocal rank fusion (Cormack et al. 2009): score(d) = sum over rankings of 1 / (k + rank),
// rank from 1; a document missing from a ranking gets nothing from it. k = 60 as in the paper and
// as Open WebUI uses. Best first; ties by lower id.
std::vector<Hit> fuse_rrf(const std::vector<std::vector<int64_t>>& rankings, double k = 60.0);

// The longest prefix of `ranked` whose token counts sum to at most `budget` (a passage that does
// not fit is skipped and later, shorter ones still considered), at most `max_passages`. Returns
// indices into `ranked`, in rank order.
std::vector<size_t> fit_budget(std::span<const size_t> tokens, size_t budget, size_t max_passages);

}  // namespace hearth::rag
