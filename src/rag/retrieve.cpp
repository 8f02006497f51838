#include "rag/retrieve.h"

#include <algorithm>
#include <unordered_map>

namespace hearth::rag {
namespace {

bool better(const Hit& a, const Hit& b) {
  return a.score > b.score || (a.score == b.score && a.id < b.id);
}

}  // namespace

std::vector<Hit> top_k_cosine(std::span<const float> query, std::span<const float> vectors,
                              std::span<const int64_t> ids, size_t dim, size_t k) {
  std::vector<Hit> heap;  // the best k so far; front = the worst of them
  if (dim == 0 || query.size() != dim) return heap;
  const size_t n = std::min(ids.size(), vectors.size() / dim);
  heap.reserve(std::min(n, k) + 1);
  for (size_t r = 0; r < n; ++r) {
    const float* v = vectors.data() + r * dim;
    // Four partial sums: the loop vectorizes, and the order is fixed (same result every call).
    float s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= dim; i += 4)
      for (int j = 0; j < 4; ++j) s[j] += query[i + size_t(j)] * v[i + size_t(j)];
    for (; i < dim; ++i) s[0] += query[i] * v[i];
    const Hit h{ids[r], double((s[0] + s[1]) + (s[2] + s[3]))};
    if (heap.size() < k) {
      heap.push_back(h);
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (k > 0 && better(h, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = h;
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort(heap.begin(), heap.end(), better);
  return heap;
}

std::vector<Hit> fuse_rrf(const std::vector<std::vector<int64_t>>& rankings, double k) {
  std::unordered_map<int64_t, double> score;
  for (const auto& r : rankings) {
    std::unordered_map<int64_t, bool> seen;  // a document listed twice counts at its best rank
    for (size_t i = 0; i < r.size(); ++i)
      if (!seen[r[i]]) {
        seen[r[i]] = true;
        score[r[i]] += 1.0 / (k + double(i + 1));
      }
  }
  std::vector<Hit> out;
  out.reserve(score.size());
  for (const auto& [id, s] : score) out.push_back({id, s});
  std::sort(out.begin(), out.end(), better);
  return out;
}

std::vector<size_t> fit_budget(std::span<const size_t> tokens, size_t budget, size_t max_passages) {
  std::vector<size_t> out;
  size_t used = 0;
  for (size_t i = 0; i < tokens.size() && out.size() < max_passages; ++i)
    if (used + tokens[i] <= budget) {
      used += tokens[i];
      out.push_back(i);
    }
  return out;
}

}  // namespace hearth::rag
