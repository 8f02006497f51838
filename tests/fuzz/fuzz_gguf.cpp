// libFuzzer target: the GGUF reader on arbitrary bytes. Every metadata value and tensor view the
// reader accepts is touched, so an out-of-bounds view shows up under ASan. Every model that loads
// then runs a small forward pass (see run_forward), so a file the loader accepts but the compute
// cannot handle (the qwen35 value_length < key_length overflow) is found too.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "gguf/gguf.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

namespace {

using hearth::models::BatchToken;
using hearth::models::ContextParams;

// Forward-pass budget. A fuzz input is at most -max_len (128 KiB) but its metadata can ask for
// huge contexts, and tensor views may alias each other (nothing forbids two tensors at one
// offset), so a small file can describe a large model. Inputs over these caps only load; their
// forward is skipped so the run stays far below -rss_limit_mb=2048 and -timeout=10 (also under
// ASan):
//  * state: KV cache + recurrent state (estimate_state_bytes) of both sequences <= 32 MiB;
//  * weights: the matrix elements one token goes through, from the config (token embedding /
//    output head n_vocab x n_embd, per layer q(+gate)/k/v/o and the 3 FFN matrices) <= 16 M;
//  * scratch: the per-token activation buffers (n_embd, n_ff, heads x head size) x n_batch,
//    in floats, <= 8 M (32 MiB).
constexpr size_t kMaxStateBytes = size_t(32) << 20;
constexpr double kMaxWeightElems = 16.0 * (1 << 20);
constexpr double kMaxScratchFloats = 8.0 * (1 << 20);

// FUZZ_GGUF_VERBOSE=1 prints how far each input got (to check that the seeds reach the forward
// pass of every architecture: FUZZ_GGUF_VERBOSE=1 fuzz_gguf SEED_FILES...).
const bool kVerbose = std::getenv("FUZZ_GGUF_VERBOSE") != nullptr;

void say(const char* what, const hearth::models::Model& m) {
  if (kVerbose) std::fprintf(stderr, "fuzz_gguf: %s: %s\n", m.config().arch.c_str(), what);
}

// Context n_ctx 16, n_seq 2, n_batch 8. One full batch of 8 tokens: a run of 5 tokens of
// sequence 0 (positions 0..4) then a run of 3 tokens of sequence 1 (positions 0..2), so the
// batch holds two sequences and two attention runs; logits are requested for the last token of
// each run. Then one decode step: sequence 0, position 5. Token ids are fixed values mod n_vocab.
uint64_t run_forward(const hearth::models::Model& m, const hearth::gguf::GgufFile& f,
                     hearth::ThreadPool& pool) {
  ContextParams cp;
  cp.n_ctx = 16;
  cp.n_seq = 2;
  cp.n_batch = 8;
  const auto& c = m.config();
  const double E = double(c.n_embd), nv = double(c.n_vocab);
  const double hd = double(std::max(c.head_dim, c.head_dim_v));
  const double attn = E * (double(c.n_head) * hd * 3 + double(c.n_head_kv) * hd * 2);
  const double weights = nv * E * 2 + double(c.n_layer) * (attn + 3 * E * double(c.n_ff));
  const double scratch =
      double(cp.n_batch) * (8 * E + 4 * double(c.n_ff) + 8 * double(c.n_head) * hd) + 2 * nv;
  if (c.n_vocab <= 0 || weights > kMaxWeightElems || scratch > kMaxScratchFloats)
    return say("loaded; too large to run", m), 0;
  auto est = hearth::models::estimate_state_bytes(f, cp);
  if (!est || *est > kMaxStateBytes / size_t(cp.n_seq))
    return say("loaded; state too large (or no estimate)", m), 0;
  auto ctx = m.new_context(cp, pool);
  if (!ctx) return say("loaded; new_context refused", m), 0;
  const int32_t V = int32_t(c.n_vocab);
  static constexpr int32_t kIds[8] = {1, 17, 255, 3, 1000, 42, 7, 99};
  std::vector<BatchToken> batch;
  for (int i = 0; i < 5; ++i) batch.push_back({kIds[i] % V, i, 0, i == 4});
  for (int i = 0; i < 3; ++i) batch.push_back({kIds[5 + i] % V, i, 1, i == 2});
  std::vector<float> logits(2 * size_t(V));
  uint64_t sink = 0;
  // After each forward, every router margin is read too (the diagnostics buffer must be as long
  // as it says, also for a MoE model whose layers end up without experts).
  auto margins = [&] {
    uint64_t n = 0;
    for (float x : (*ctx)->router_margins()) n += uint64_t(x > 0);
    return n;
  };
  if (!m.forward(**ctx, batch, logits.data())) {
    // An embedding model has no logits: its hidden rows and pooled rows instead (one batch, no
    // decode step: an encoder keeps no cache).
    using hearth::models::ForwardOutput;
    using hearth::models::OutputKind;
    std::vector<float> rows(std::max<size_t>(2, batch.size()) *
                            size_t(std::max<int64_t>(c.n_embd, 1)));
    if (!m.eval(**ctx, {batch}, ForwardOutput{OutputKind::kHidden, rows.data()}))
      return say("batch forward refused", m), 0;
    if (!m.eval(**ctx, {batch},
                ForwardOutput{OutputKind::kPooled, rows.data(), hearth::models::Pooling::kMean}))
      return say("pooled forward refused", m), 0;
    say("hidden and pooled forward ran", m);
    return uint64_t(rows[0] != 0);
  }
  sink += uint64_t(logits[0] != 0) + uint64_t(logits.back() != 0) + margins();
  const BatchToken next{kIds[7] % V, 5, 0, true};
  if (!m.forward(**ctx, std::span<const BatchToken>(&next, 1), logits.data()))
    return say("decode step refused", m), sink;
  say("batch forward and decode step ran", m);
  return sink + uint64_t(logits[0] != 0) + margins();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The header-only reader (a registry blob's first bytes) on the same input, declared as part
  // of a larger file: it may read only what it was given.
  if (size >= 8) {
    uint64_t declared = 0;
    std::memcpy(&declared, data + size - 8, 8);
    auto h = hearth::gguf::GgufFile::parse_header(data, size - 8, declared, "fuzz-header");
    if (h)
      for (const auto& t : (*h)->tensors())
        if (t.data) std::abort();  // header-only: no tensor bytes to point at
  }
  auto f = hearth::gguf::GgufFile::parse(data, size, "fuzz");
  if (!f) return 0;
  uint64_t sink = 0;
  for (const auto& e : (*f)->metadata()) {
    const auto& v = e.value;
    sink += e.key.size() + v.s.size() + size_t(v.i);
    for (auto s : v.strs) sink += s.size() ? uint8_t(s[0]) : 0;
    if (v.type == hearth::gguf::ValueType::ARRAY &&
        v.elem_type != hearth::gguf::ValueType::STRING) {
      if (auto a = (*f)->get_float_array(e.key)) sink += a->size();
    }
  }
  for (const auto& t : (*f)->tensors()) {
    if (t.nbytes) sink += t.data[0] + t.data[t.nbytes - 1];
  }
  // Model loading on top of a parsed file must also fail cleanly; a model that loads must run.
  hearth::ThreadPool pool(1);
  auto m = hearth::models::load_model(*f, pool, {false});
  if (m) sink += run_forward(**m, **f, pool);
  // And the scheduler's memory estimate from metadata alone.
  hearth::models::ContextParams cp;
  if (auto est = hearth::models::estimate_state_bytes(**f, cp); est.is_ok()) sink += *est;
  // So must building a tokenizer from hostile tokenizer.ggml.* metadata, and using it.
  if (auto t = hearth::tokenizer::Tokenizer::from_gguf(**f); t.is_ok()) {
    const auto ids = (*t)->encode("Hello <|im_start|> world 123 ", true, true);
    sink += (*t)->decode(ids).size();
  }
  return int(sink & 0);
}
