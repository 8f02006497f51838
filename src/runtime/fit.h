// runtime/fit.h — the hardware-fit advisor: how much memory a model needs at a context length,
// whether this machine has it, the longest context that fits, what other quantization levels of
// the same model would need, and the decode speed to expect.
//
// Everything comes from the GGUF header (tensor types and shapes, architecture keys), so a
// registry model is sized from a ranged read of its first bytes, before any download, with the
// same result as the full file. The terms follow what the engine allocates:
//   weights    the tensor bytes the engine maps or copies (towers it never reads — vision,
//              audio, multi-token-prediction heads — are left out: their pages are never touched)
//   kv_cache   per architecture (models::estimate_state_bytes): sliding-window layers capped at
//              the window, DeltaNet layers a fixed state, times the parallel sequences
//   compute    the forward pass's scratch for an n_batch batch and the logits rows
//   tokenizer  vocabulary tables, from the vocabulary's size
// The scheduler's load check uses the same estimate, so advice and refusal agree.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"
#include "quant/types.h"
#include "runtime/machine.h"

namespace hearth::runtime {

struct FitParams {
  int n_ctx = 4096;
  int n_seq = 1;  // sequences decoded in parallel (num_parallel)
  int n_batch = 512;
  DType kv_type = DType::F16;
};

struct MemoryEstimate {
  int64_t weights = 0, kv_cache = 0, compute = 0, tokenizer = 0;
  int64_t ignored = 0;       // tensor bytes in the file the engine never reads
  int64_t decode_bytes = 0;  // bytes read per decoded token at an empty context (MoE: routed share)
  int64_t decode_params = 0;  // the weights those bytes hold: multiply-adds per token
  int64_t output_params = 0;  // of which the output projection (prefill needs it for one token)
  double decode_cost = 0;     // the same, each tensor's bytes divided by its type's efficiency
  int64_t total() const { return weights + kv_cache + compute + tokenizer; }
};

Result<MemoryEstimate> estimate_memory(const gguf::GgufFile& f, const FitParams& p);

// Facts about the model shown beside the estimate.
struct ModelFacts {
  std::string architecture, quantization;  // quantization: "Q4_K_M", "F16", ...
  int64_t parameters = 0;
  int64_t context_trained = 0;  // <arch>.context_length
  int64_t experts = 0, experts_used = 0;
};
ModelFacts model_facts(const gguf::GgufFile& f);

// Whether a need fits: "fits" (in memory available now), "tight" (only once other programs or
// models release memory: more than available, less than the machine's total minus a reserve
// for the system), "too_large".
enum class Verdict { kFits, kTight, kTooLarge };
const char* verdict_name(Verdict v);
Verdict verdict(int64_t need, const MachineInfo& m);
// Memory left to the system when judging against the machine's total.
inline constexpr int64_t kSystemReserve = int64_t(1) << 30;

struct ContextFit {
  int n_ctx = 0;
  int64_t total = 0;
  Verdict verdict = Verdict::kTooLarge;
};

struct QuantFit {
  std::string quantization;
  int64_t weights = 0, total = 0;  // total at the report's context
  Verdict verdict = Verdict::kTooLarge;
  int max_context = 0;  // longest context that fits in available memory (0: none)
  double decode_tps = 0;
};

struct FitReport {
  ModelFacts facts;
  FitParams params;
  MemoryEstimate memory;
  Verdict verdict = Verdict::kTooLarge;
  std::string reason;                   // one sentence: why it fits or not
  int max_context = 0;                  // longest context that fits in available memory
  double bandwidth = 0;                 // bytes/s, measured (0 if not measured)
  double decode_tps_bound = 0;          // bandwidth / bytes read per token, empty context
  double decode_tps_expected = 0;       // the bound times the engine's measured efficiency
  double decode_tps_full_ctx = 0;       // expected, with the whole context in the cache
  std::vector<ContextFit> contexts;     // powers of two from 2048 to the trained context
  std::vector<QuantFit> quantizations;  // the same model at other quantization levels
};

// Share of the measured bandwidth hearth's decode streams a weight type at (measured on a Zen 5
// EPYC, docs/PERFORMANCE.md "Hardware fit"): types that unpack 2-6-bit blocks stay further
// from the bound than 8- and 16-bit ones.
double decode_efficiency(DType t);

// The full report. `bandwidth` in bytes/s (memory_bandwidth(); 0 leaves speeds out).
Result<FitReport> fit(const gguf::GgufFile& f, const FitParams& p, const MachineInfo& m,
                      double bandwidth, bool other_quants = true);

// The JSON /api/fit answers with (and `hearth fit --json` prints).
nlohmann::ordered_json machine_json(const MachineInfo& m, double bandwidth);
nlohmann::ordered_json report_json(const FitReport& r);

// "1.2 GiB", "640 MiB"
std::string human_bytes(int64_t b);

}  // namespace hearth::runtime
