#include "tokenizer/stream.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace hearth::tokenizer {

TextStream::TextStream(const Tokenizer& t, std::vector<std::string> stops, bool special)
    : tok_(t), special_(special) {
  for (auto& s : stops)
    if (!s.empty()) stops_.push_back(std::move(s));
}

std::string TextStream::take(size_t n) {
  std::string out = sanitize_utf8(std::string_view(pending_).substr(0, n));
  pending_.erase(0, n);
  return out;
}

std::string TextStream::push(int32_t id) {
  if (stopped_) return {};
  // Generated text continues a prompt, so a leading space is kept (unlike decode() of a whole
  // SentencePiece sequence).
  const std::string p = tok_.piece(id, special_);
  pending_ += p;

  // A complete stop string: emit what precedes the earliest one and stop.
  size_t best = std::string::npos;
  for (const auto& s : stops_) {
    const size_t at = pending_.find(s);
    if (at < best) {
      best = at;
      matched_ = s;
    }
  }
  if (best != std::string::npos) {
    stopped_ = true;
    std::string out = take(best);
    pending_.clear();
    return out;
  }
  // Hold the longest tail that is a proper prefix of some stop string, and any partial character.
  size_t hold = incomplete_utf8_tail(pending_);
  for (const auto& s : stops_) {
    const size_t max = std::min(pending_.size(), s.size() - 1);
    for (size_t k = max; k > hold; --k)
      if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
  }
  return take(pending_.size() - hold);
}

std::string TextStream::flush() {
  if (stopped_) return {};
  return take(pending_.size());
}

}  // namespace hearth::tokenizer
