// grammar/matcher.h — where a generation stands in a grammar, and which tokens may come next.
//
// The state is a set of parse stacks (a pushdown automaton run on all alternatives at once, as
// llama.cpp's grammar engine does), kept as persistent linked lists in one node arena so that
// trying a token shares every node below the top and costs nothing to undo. Checking a token
// walks its bytes; the sampler asks only about the likeliest candidates (sampling/sampler.h), so a
// step costs tens of checks, not one per vocabulary entry.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "grammar/grammar.h"

namespace hearth::grammar {

class Matcher {
 public:
  explicit Matcher(std::shared_ptr<const Grammar> g);

  // Advance over bytes of ordinary tokens, or over one special token; false (and the state
  // unchanged) if the grammar does not allow them here.
  bool accept_bytes(std::string_view bytes);
  bool accept_token(uint32_t id);
  // The same without moving.
  bool allows_bytes(std::string_view bytes);
  bool allows_token(uint32_t id);

  // The bytes that may come next (bit b: byte b). A token whose first byte is not among them is
  // rejected without walking it — most of the vocabulary, wherever the grammar is narrow.
  void first_bytes(uint64_t out[4]);
  // The bytes that may follow byte b (all zero if b may not come next); state unchanged.
  void bytes_after(unsigned char b, uint64_t out[4]);
  // The tokens <[id]> elements at the stack tops allow.
  void top_tokens(std::vector<uint32_t>& out) const;
  // The bytes the grammar forces from here (one possible byte at each step, no way to end before
  // them, no token element), at most `max`; state unchanged. A JSON schema forces its keys and
  // punctuation: `{"name": "` is one such run.
  void forced_bytes(std::string& out, size_t max);

  // Trials from an explicit state, for walking many tokens that share prefixes: stacks() is the
  // current state; step() advances `in` by one byte into `out` (nodes made after mark() are
  // dropped by release(mark)).
  const std::vector<uint32_t>& stacks() const { return stacks_; }
  bool step(const std::vector<uint32_t>& in, unsigned char b, std::vector<uint32_t>& out) {
    bool accept = false;
    return step_byte(in, b, out, accept);
  }
  size_t mark() const { return nodes_.size(); }
  void release(size_t mark) { nodes_.resize(mark); }

  bool accepting() const { return accept_; }  // what came so far is a complete sentence
  bool finished() const { return accept_ && stacks_.empty(); }  // and nothing more may follow
  bool failed() const { return !accept_ && stacks_.empty(); }   // no way on (a bug upstream)
  void reset();

 private:
  static constexpr uint32_t kNone = 0xFFFFFFFFu;
  struct Node {
    uint32_t pos, parent;  // pos: a terminal element (stack top) or a continuation
  };
  // Expands (pos, parent) to stacks whose top is a terminal; false if the expansion ran away
  // (a left-recursive grammar).
  bool expand(uint32_t pos, uint32_t parent, std::vector<uint32_t>& out, bool& accept);
  bool step_byte(const std::vector<uint32_t>& in, unsigned char b, std::vector<uint32_t>& out,
                 bool& accept);
  void compact();
  // The union of the byte classes at the tops of `stacks`.
  void top_bytes(const std::vector<uint32_t>& stacks, uint64_t out[4]) const;

  std::shared_ptr<const Grammar> g_;
  std::vector<Node> nodes_;
  std::vector<uint32_t> stacks_;
  bool accept_ = false;
  // Scratch reused by every check (no allocation once warm).
  std::vector<uint32_t> a_, b_;
  std::vector<std::pair<uint32_t, uint32_t>> work_;
  // (pos, parent) pairs seen in one expansion: open addressing, cleared by bumping the epoch.
  bool seen(uint64_t key);
  std::vector<uint64_t> seen_keys_;
  std::vector<uint32_t> seen_epoch_;
  uint32_t epoch_ = 0;
};

// Which vocabulary tokens the matcher allows at the current step, for a sampler that asks about
// candidates one by one. Most candidates are rejected on their first two bytes by tables built
// for this step (the bytes that may follow each first byte, one matcher step each), so a narrow
// point of the grammar — ":" after a key, where every token starting with a space would otherwise
// be walked — costs table lookups, not a walk per token.
class TokenChecker {
 public:
  // bytes[id]: the token's bytes; plain[id]: 1 if the bytes may be checked (0: a control or
  // empty token, which only a <[id]> element can allow).
  TokenChecker(const std::vector<std::string>& bytes, const std::vector<uint8_t>& plain);
  void begin_step(Matcher& m);  // once per step, before allowed()
  bool allowed(int32_t token);
  int masks_built() const { return masks_built_; }  // whole-vocabulary walks so far
  // Every token allowed() may accept at this step, each once: the tokens whose first byte may
  // come next, and those a token element allows. At a narrow point a small part of the vocabulary.
  // Where few first bytes fit, only the tokens whose second byte may follow theirs are named.
  void candidates(std::vector<int32_t>& out);
  bool is_candidate(int32_t t) const;

 private:
  static bool has(const uint64_t* set, unsigned b) { return set[b >> 6] >> (b & 63) & 1; }
  const std::vector<std::string>& bytes_;
  // Per token, packed so a scan of the whole vocabulary stays in cache: first byte (256: not
  // checkable by bytes), second byte (256: none).
  std::vector<uint16_t> b0_, b1_;
  // The checkable tokens in byte order, and each one's common prefix with the one before: a walk
  // in this order shares every prefix's matcher steps and skips all tokens under a rejected one.
  std::vector<int32_t> order_;
  std::vector<uint16_t> lcp_;
  size_t bucket_[257] = {};  // order_[bucket_[b], bucket_[b + 1]): the tokens starting with byte b
  // Within bucket b: the one-byte token first, then order_[sub_[257b + c], sub_[257b + c + 1]):
  // the tokens whose second byte is c.
  std::vector<uint32_t> sub_;
  bool narrow_ = false;        // candidates() filtered by second bytes this step
  std::vector<uint8_t> mask_;  // the whole vocabulary's verdicts, once a step asks about many
  bool mask_ready_ = false;
  int masks_built_ = 0;
  size_t walked_ = 0;                         // tokens this step checked by a walk of their own
  std::vector<std::vector<uint32_t>> depth_;  // walk scratch: the state after each prefix length
  std::vector<size_t> depth_mark_;
  void build_mask();
  std::vector<uint32_t> token_tops_;  // tokens a <[id]> element at a stack top allows
  Matcher* m_ = nullptr;
  uint64_t first_[4] = {};
  uint64_t second_[256][4];
  bool second_ready_[256] = {};
  uint8_t seen_[256] = {};
  // The matcher's state after each one- and two-byte prefix asked about this step, so a walk
  // starts at the token's third byte: most of a step's walks share their first two bytes. States
  // live in `pool_` (their nodes stay in the matcher's arena until the step ends); slot per
  // prefix: 0 unknown, -1 rejected, else 1 + index into `spans_`.
  const std::vector<uint32_t>* prefix_state(unsigned c0, int c1);
  std::vector<uint32_t> pool_;
  std::vector<std::pair<uint32_t, uint32_t>> spans_;  // (offset, length) in pool_
  std::vector<int32_t> slot_;                         // 256 one-byte + 65536 two-byte prefixes
  std::vector<uint32_t> slot_epoch_;
  uint32_t epoch_ = 0;
  std::vector<uint32_t> from_, walk_a_, walk_b_;
};

}  // namespace hearth::grammar
