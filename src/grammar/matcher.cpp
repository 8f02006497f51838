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
  sub_.assign(256 * 257, 0);
  for (unsigned b = 0; b < 256; ++b) {
    size_t j = bucket_[b];
    while (j < bucket_[b + 1] && bytes[size_t(order_[j])].size() == 1) ++j;
    for (unsigned c = 0; c <= 256; ++c) {
      while (c < 256 && j < bucket_[b + 1] && b1_[size_t(order_[j])] < c) ++j;
      sub_[257 * b + c] = uint32_t(c == 256 ? bucket_[b + 1] : j);
    }
  }
}

bool TokenChecker::is_candidate(int32_t t) const {
  if (size_t(t) < b0_.size() && b0_[size_t(t)] != 256 && has(first_, b0_[size_t(t)]) &&
      (!narrow_ || b1_[size_t(t)] == 256 || has(second_[b0_[size_t(t)]], b1_[size_t(t)])))
    return true;
  for (uint32_t x : token_tops_)
    if (x == uint32_t(t)) return true;
  return false;
}

void TokenChecker::candidates(std::vector<int32_t>& out) {
  out.clear();
  int n_first = 0;
  for (int i = 0; i < 4; ++i) n_first += __builtin_popcountll(first_[i]);
  // A narrow point (after a value: a comma, a bracket or whitespace) admits a few first bytes,
  // yet tokens starting with a space are a third of a BPE vocabulary: the second byte (one matcher
  // step per first byte) cuts them to the few that can follow.
  narrow_ = n_first <= 16;
  for (unsigned b = 0; b < 256; ++b) {
    if (!has(first_, b)) continue;
    if (!narrow_) {
      out.insert(out.end(), order_.begin() + long(bucket_[b]),
                 order_.begin() + long(bucket_[b + 1]));
      continue;
    }
    if (!second_ready_[b]) {
      m_->bytes_after(static_cast<unsigned char>(b), second_[b]);
      second_ready_[b] = true;
    }
    out.insert(out.end(), order_.begin() + long(bucket_[b]),
               order_.begin() + long(sub_[257 * b]));  // the one-byte token
    for (unsigned c = 0; c < 256; ++c)
      if (has(second_[b], c))
        out.insert(out.end(), order_.begin() + long(sub_[257 * b + c]),
                   order_.begin() + long(sub_[257 * b + c + 1]));
  }
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
  // (The last step's prefix states are garbage in the arena now; accepting a token compacts it.)
  m_ = &m;
  pool_.clear();
  spans_.clear();
  if (slot_.empty()) {
    slot_.assign(256 + 65536, 0);
    slot_epoch_.assign(256 + 65536, 0);
  }
  if (++epoch_ == 0) {
    std::fill(slot_epoch_.begin(), slot_epoch_.end(), 0);
    epoch_ = 1;
  }
  m.first_bytes(first_);
  m.top_tokens(token_tops_);
  std::fill(std::begin(second_ready_), std::end(second_ready_), false);
  std::fill(std::begin(seen_), std::end(seen_), 0);
  mask_ready_ = false;
  narrow_ = false;
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
  const std::vector<uint32_t>* st = prefix_state(c0, int(c1));
  if (!st) return false;
  if (b.size() == 2) return true;
  // The rest of the token from the two-byte prefix's state; its nodes are dropped afterwards.
  const size_t mark = m_->mark();
  const std::vector<uint32_t>* cur = st;
  bool ok = true;
  for (size_t i = 2; i < b.size() && ok; ++i) {
    std::vector<uint32_t>& next = (i % 2 == 0) ? walk_a_ : walk_b_;
    ok = m_->step(*cur, static_cast<unsigned char>(b[i]), next);
    cur = &next;
  }
  m_->release(mark);
  return ok;
}

// The state after c0 (c1 < 0) or c0 c1, computed once per step; nullptr if the grammar rejects
// the prefix. Called outside any trial walk, so the nodes it makes stay until the next step.
const std::vector<uint32_t>* TokenChecker::prefix_state(unsigned c0, int c1) {
  const size_t key = c1 < 0 ? c0 : 256 + (size_t(c0) << 8) + size_t(c1);
  if (slot_epoch_[key] != epoch_) {
    slot_epoch_[key] = epoch_;
    const std::vector<uint32_t>* in = &m_->stacks();
    if (c1 >= 0) {
      in = prefix_state(c0, -1);  // (&from_)
      if (!in) return slot_[key] = -1, nullptr;
    }
    std::vector<uint32_t>& out = c1 < 0 ? walk_a_ : walk_b_;
    if (!m_->step(*in, static_cast<unsigned char>(c1 < 0 ? c0 : unsigned(c1)), out)) {
      slot_[key] = -1;
    } else {
      spans_.push_back({uint32_t(pool_.size()), uint32_t(out.size())});
      pool_.insert(pool_.end(), out.begin(), out.end());
      slot_[key] = int32_t(spans_.size());
    }
  }
  if (slot_[key] < 0) return nullptr;
  const auto [off, len] = spans_[size_t(slot_[key] - 1)];
  from_.assign(pool_.begin() + off, pool_.begin() + off + len);
  return &from_;
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
