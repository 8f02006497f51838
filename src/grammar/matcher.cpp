#include "grammar/matcher.h"

#include <algorithm>

namespace hearth::grammar {

Matcher::Matcher(std::shared_ptr<const Grammar> g) : g_(std::move(g)) {
  reset();
}

void Matcher::reset() {
  nodes_.clear();
  stacks_.clear();
  accept_ = false;
  for (uint32_t a : g_->alts[g_->root]) expand(a, kNone, stacks_, accept_);
}

bool Matcher::seen(uint64_t key) {
  if (seen_keys_.empty()) {
    seen_keys_.resize(1024);
    seen_epoch_.assign(1024, 0);
  }
  const size_t mask = seen_keys_.size() - 1;
  size_t h = size_t((key * 0x9E3779B97F4A7C15ull) >> 20) & mask;
  for (size_t probes = 0; probes <= mask; ++probes, h = (h + 1) & mask) {
    if (seen_epoch_[h] != epoch_) {
      seen_epoch_[h] = epoch_;
      seen_keys_[h] = key;
      return false;
    }
    if (seen_keys_[h] == key) return true;
  }
  return false;  // full: treat as unseen (the budget still bounds the work)
}

bool Matcher::expand(uint32_t pos, uint32_t parent, std::vector<uint32_t>& out, bool& accept) {
  work_.clear();
  if (++epoch_ == 0) {  // wrapped: forget every stamp
    std::fill(seen_epoch_.begin(), seen_epoch_.end(), 0);
    epoch_ = 1;
  }
  work_.push_back({pos, parent});
  size_t budget = 1 << 16;
  while (!work_.empty()) {
    if (--budget == 0) return false;
    auto [p, par] = work_.back();
    work_.pop_back();
    const Elem& e = g_->elems[p];
    // Terminals only yield a stack; rule ends and references are deduplicated (they are what an
    // ambiguous or empty-looping grammar would repeat).
    if (e.kind != Elem::kByte && e.kind != Elem::kToken && seen((uint64_t(p) << 32) | par))
      continue;
    switch (e.kind) {
      case Elem::kEnd:
      case Elem::kAlt:  // the rule is complete: continue after its reference
        if (par == kNone)
          accept = true;
        else
          work_.push_back({nodes_[par].pos, nodes_[par].parent});
        break;
      case Elem::kRef: {
        const uint32_t cont = uint32_t(nodes_.size());
        nodes_.push_back({p + 1, par});
        for (uint32_t a : g_->alts[e.arg]) work_.push_back({a, cont});
        break;
      }
      case Elem::kByte:
      case Elem::kToken:
        out.push_back(uint32_t(nodes_.size()));
        nodes_.push_back({p, par});
        break;
    }
  }
  return true;
}

bool Matcher::step_byte(const std::vector<uint32_t>& in, unsigned char b,
                        std::vector<uint32_t>& out, bool& accept) {
  out.clear();
  accept = false;
  for (uint32_t s : in) {
    const Node n = nodes_[s];
    const Elem& e = g_->elems[n.pos];
    if (e.kind == Elem::kByte && g_->classes[e.arg][b])
      if (!expand(n.pos + 1, n.parent, out, accept)) return false;
  }
  return !out.empty() || accept;
}

bool Matcher::allows_bytes(std::string_view bytes) {
  if (bytes.empty()) return true;
  const size_t mark = nodes_.size();
  const std::vector<uint32_t>* cur = &stacks_;
  bool accept = false, ok = true;
  for (size_t i = 0; i < bytes.size() && ok; ++i) {
    std::vector<uint32_t>& next = (i % 2 == 0) ? a_ : b_;
    ok = step_byte(*cur, static_cast<unsigned char>(bytes[i]), next, accept);
    cur = &next;
  }
  nodes_.resize(mark);  // the trial's nodes are all above the mark
  return ok;
}

bool Matcher::accept_bytes(std::string_view bytes) {
  if (bytes.empty()) return true;
  if (!allows_bytes(bytes)) return false;
  bool accept = accept_;
  for (unsigned char c : bytes) {
    step_byte(stacks_, c, a_, accept);
    stacks_.swap(a_);
  }
  accept_ = accept;
  compact();
  return true;
}

void Matcher::top_bytes(const std::vector<uint32_t>& stacks, uint64_t out[4]) const {
  out[0] = out[1] = out[2] = out[3] = 0;
  for (uint32_t s : stacks) {
    const Elem& e = g_->elems[nodes_[s].pos];
    if (e.kind != Elem::kByte) continue;
    const auto& w = g_->class_words[e.arg];
    for (int i = 0; i < 4; ++i) out[i] |= w[size_t(i)];
  }
}

void Matcher::first_bytes(uint64_t out[4]) {
  top_bytes(stacks_, out);
}

void Matcher::bytes_after(unsigned char b, uint64_t out[4]) {
  const size_t mark = nodes_.size();
  bool accept = false;
  if (step_byte(stacks_, b, a_, accept))
    top_bytes(a_, out);
  else
    out[0] = out[1] = out[2] = out[3] = 0;
  nodes_.resize(mark);
}

void Matcher::forced_bytes(std::string& out, size_t max) {
  out.clear();
  if (accept_) return;
  const size_t mark = nodes_.size();
  const std::vector<uint32_t>* cur = &stacks_;
  while (out.size() < max && !cur->empty()) {
    uint64_t set[4];
    top_bytes(*cur, set);
    int n = 0, b = 0;
    for (int i = 0; i < 4; ++i) {
      n += __builtin_popcountll(set[i]);
      if (set[i]) b = 64 * i + __builtin_ctzll(set[i]);
    }
    if (n != 1) break;
    bool tokens = false;  // a <[id]> element at a top: a special token may come instead
    for (uint32_t st : *cur) tokens |= g_->elems[nodes_[st].pos].kind == Elem::kToken;
    if (tokens) break;
    std::vector<uint32_t>& next = (out.size() % 2 == 0) ? a_ : b_;
    bool accept = false;
    if (!step_byte(*cur, static_cast<unsigned char>(b), next, accept)) break;
    out.push_back(char(b));
    if (accept) break;  // the sentence may end here: what follows is a choice
    cur = &next;
  }
  nodes_.resize(mark);
}

void Matcher::top_tokens(std::vector<uint32_t>& out) const {
  out.clear();
  for (uint32_t s : stacks_) {
    const Elem& e = g_->elems[nodes_[s].pos];
    if (e.kind == Elem::kToken) out.push_back(e.arg);
  }
}

TokenChecker::TokenChecker(const std::vector<std::string>& bytes, const std::vector<uint8_t>& plain)
    : bytes_(bytes), b0_(bytes.size(), 256), b1_(bytes.size(), 256), mask_(bytes.size(), 0) {
  for (size_t t = 0; t < bytes.size(); ++t) {
    if (t >= plain.size() || !plain[t] || bytes[t].empty()) continue;
    b0_[t] = static_cast<unsigned char>(bytes[t][0]);
    if (bytes[t].size() > 1) b1_[t] = static_cast<unsigned char>(bytes[t][1]);
    order_.push_back(int32_t(t));
  }
  std::sort(order_.begin(), order_.end(),
            [&](int32_t a, int32_t b) { return bytes[size_t(a)] < bytes[size_t(b)]; });
  lcp_.assign(order_.size(), 0);
  size_t longest = 0;
  for (size_t i = 0; i < order_.size(); ++i) {
    const std::string& cur = bytes[size_t(order_[i])];
    longest = std::max(longest, cur.size());
    if (i == 0) continue;
    const std::string& prev = bytes[size_t(order_[i - 1])];
    size_t n = 0;
    while (n < cur.size() && n < prev.size() && cur[n] == prev[n]) ++n;
    lcp_[i] = uint16_t(std::min<size_t>(n, 65535));
  }
  depth_.resize(longest + 1);
  depth_mark_.resize(longest + 1);
  size_t i = 0;
  for (unsigned b = 0; b < 256; ++b) {
    bucket_[b] = i;
    while (i < order_.size() && b0_[size_t(order_[i])] == b) ++i;
  }
  bucket_[256] = order_.size();
}

bool TokenChecker::is_candidate(int32_t t) const {
  if (size_t(t) < b0_.size() && b0_[size_t(t)] != 256 && has(first_, b0_[size_t(t)])) return true;
  for (uint32_t x : token_tops_)
    if (x == uint32_t(t)) return true;
  return false;
}

void TokenChecker::candidates(std::vector<int32_t>& out) const {
  out.clear();
  for (unsigned b = 0; b < 256; ++b)
    if (has(first_, b))
      out.insert(out.end(), order_.begin() + long(bucket_[b]),
                 order_.begin() + long(bucket_[b + 1]));
  const size_t tops = out.size();
  for (uint32_t x : token_tops_) {
    const size_t t = x;
    const bool listed = t < b0_.size() && b0_[t] != 256 && has(first_, b0_[t]);
    if (!listed && std::find(out.begin() + long(tops), out.end(), int32_t(x)) == out.end())
      out.push_back(int32_t(x));
  }
}

// Every checkable token's verdict, walking the vocabulary in byte order.
void TokenChecker::build_mask() {
  std::fill(mask_.begin(), mask_.end(), 0);
  Matcher& m = *m_;
  const size_t base = m.mark();
  depth_[0] = m.stacks();
  depth_mark_[0] = base;
  size_t valid = 0;     // depth_[0..valid] hold the states of the current token's prefixes
  size_t rejected = 0;  // > 0: the previous token's prefix of this length is not allowed
  for (size_t i = 0; i < order_.size(); ++i) {
    const int32_t t = order_[i];
    const std::string& b = bytes_[size_t(t)];
    const size_t common = lcp_[i];
    if (rejected > 0 && common >= rejected) continue;  // under a rejected prefix
    rejected = 0;
    if (valid > common) {
      valid = common;
      m.release(depth_mark_[valid]);
    }
    bool ok = true;
    for (size_t d = valid; d < b.size(); ++d) {
      if (!m.step(depth_[d], static_cast<unsigned char>(b[d]), depth_[d + 1])) {
        ok = false;
        rejected = d + 1;
        valid = d;
        m.release(depth_mark_[d]);
        break;
      }
      depth_mark_[d + 1] = m.mark();
      valid = d + 1;
    }
    if (ok) mask_[size_t(t)] = 1;
  }
  m.release(base);
  mask_ready_ = true;
  ++masks_built_;
}

void TokenChecker::begin_step(Matcher& m) {
  m_ = &m;
  m.first_bytes(first_);
  m.top_tokens(token_tops_);
  std::fill(std::begin(second_ready_), std::end(second_ready_), false);
  std::fill(std::begin(seen_), std::end(seen_), 0);
  mask_ready_ = false;
  walked_ = 0;
}

bool TokenChecker::allowed(int32_t t) {
  for (uint32_t x : token_tops_)
    if (x == uint32_t(t)) return true;
  if (size_t(t) >= b0_.size()) return false;
  if (mask_ready_) return mask_[size_t(t)] != 0;
  const unsigned c0 = b0_[size_t(t)];
  if (c0 == 256 || !has(first_, c0)) return false;
  const unsigned c1 = b1_[size_t(t)];
  if (c1 == 256) return true;                    // a one-byte token
  if (!second_ready_[c0] && ++seen_[c0] >= 4) {  // a first byte that keeps coming up: one
    m_->bytes_after(static_cast<unsigned char>(c0), second_[c0]);  // step tabulates what follows
    second_ready_[c0] = true;
  }
  const std::string& b = bytes_[size_t(t)];
  if (second_ready_[c0]) {
    if (!has(second_[c0], c1)) return false;
    if (b.size() == 2) return true;
  }
  // Most tokens are settled by the tables above, even at a narrow point where the sampler asks
  // about the whole vocabulary. A step where many need a walk of their own is one where the
  // walk in byte order, sharing every prefix, answers them all for less.
  if (++walked_ > 4096) {
    build_mask();
    return mask_[size_t(t)] != 0;
  }
  return m_->allows_bytes(b);
}

bool Matcher::allows_token(uint32_t id) {
  for (uint32_t s : stacks_) {
    const Elem& e = g_->elems[nodes_[s].pos];
    if (e.kind == Elem::kToken && e.arg == id) return true;
  }
  return false;
}

bool Matcher::accept_token(uint32_t id) {
  if (!allows_token(id)) return false;
  a_.clear();
  bool accept = false;
  for (uint32_t s : stacks_) {
    const Node n = nodes_[s];
    const Elem& e = g_->elems[n.pos];
    if (e.kind == Elem::kToken && e.arg == id) expand(n.pos + 1, n.parent, a_, accept);
  }
  stacks_.swap(a_);
  accept_ = accept;
  compact();
  return true;
}

// Copies the nodes the stacks reach into a fresh arena once most of it is garbage.
void Matcher::compact() {
  if (nodes_.size() < 4096) return;
  std::vector<Node> fresh;
  std::vector<uint32_t> remap(nodes_.size(), kNone);
  std::vector<uint32_t> order;
  for (uint32_t s : stacks_)
    for (uint32_t n = s; n != kNone && remap[n] == kNone; n = nodes_[n].parent) {
      remap[n] = 0;
      order.push_back(n);
    }
  if (order.size() * 4 > nodes_.size()) {
    for (uint32_t n : order) remap[n] = kNone;
    return;
  }
  // Parents before children keeps the copy a single pass.
  std::sort(order.begin(), order.end());
  for (uint32_t n : order) {
    remap[n] = uint32_t(fresh.size());
    const uint32_t p = nodes_[n].parent;
    fresh.push_back({nodes_[n].pos, p == kNone ? kNone : remap[p]});
  }
  for (auto& s : stacks_) s = remap[s];
  nodes_.swap(fresh);
}

}  // namespace hearth::grammar
