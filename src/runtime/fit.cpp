#include "runtime/fit.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

#include "models/arch.h"
#include "models/model.h"
#include "ops/attention.h"
#include "quantize/ftype.h"
#include "store/create.h"

namespace hearth::runtime {

namespace {

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// Tensors of towers the text engine never reads (Ollama's library files carry vision, audio and
// projector weights, some multi-token-prediction heads, in the main file): never touched, never
// resident.
bool ignored_tensor(std::string_view n) {
  return starts_with(n, "v.") || starts_with(n, "mm.") || starts_with(n, "a.") ||
         starts_with(n, "mtp.") || starts_with(n, "s.");
}

// Tensors read a row at a time (one per token), not streamed whole per token.
bool lookup_tensor(std::string_view n, bool tied_output) {
  if (n == "token_embd.weight") return !tied_output;
  return n == "per_layer_token_embd.weight" || n == "token_types.weight" ||
         n == "position_embd.weight";
}

// Bytes of a tensor of `bytes` a decode step reads: all of it, or for a mixture-of-experts
// tensor the routed share (`used` of `experts`).
int64_t read_per_token(std::string_view name, int64_t bytes, int64_t experts, int64_t used) {
  const bool routed = experts > 1 && used > 0 && name.find("_exps") != std::string_view::npos;
  return routed ? bytes * used / experts : bytes;
}

std::string arch_of(const gguf::GgufFile& f) {
  auto a = f.get_string("general.architecture");
  return a ? *a : "";
}

int64_t key_int(const gguf::GgufFile& f, const std::string& k, int64_t fallback = 0) {
  auto v = f.get_int_or(k, fallback);
  return v ? *v : fallback;
}

// Bytes the vocabulary's tables take once loaded: the token strings (kept twice: by id and in
// the lookup map), per-token entries and per-merge entries of the maps (measured with the 151k
// Qwen and 262k Gemma vocabularies, tests/differential/test_fit.py).
int64_t tokenizer_bytes(const gguf::GgufFile& f) {
  int64_t n = 0, text = 0, merges = 0;
  if (auto t = f.get_string_array("tokenizer.ggml.tokens")) {
    n = int64_t(t->size());
    for (auto s : *t) text += int64_t(s.size());
  }
  if (auto m = f.get_string_array("tokenizer.ggml.merges")) {
    merges = int64_t(m->size());
    for (auto s : *m) text += int64_t(s.size());
  }
  return 2 * text + 96 * n + 64 * merges;
}

}  // namespace

double decode_efficiency(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::Q8_0:
      return 0.65;
    default:
      return 0.52;
  }
}

std::string human_bytes(int64_t b) {
  char buf[32];
  const double v = double(b);
  if (v >= 1024.0 * 1024 * 1024)
    std::snprintf(buf, sizeof buf, "%.1f GiB", v / (1024.0 * 1024 * 1024));
  else
    std::snprintf(buf, sizeof buf, "%.0f MiB", v / (1024.0 * 1024));
  return buf;
}

Result<MemoryEstimate> estimate_memory(const gguf::GgufFile& f, const FitParams& p) {
  MemoryEstimate e;
  const std::string arch = arch_of(f);
  const int64_t experts = key_int(f, arch + ".expert_count");
  const int64_t used = key_int(f, arch + ".expert_used_count");
  const bool tied = f.find_tensor("output.weight") == nullptr;
  e.weights = int64_t(f.data_offset());
  // Towers the layout normalisation already hid (gguf/ollama_compat.h) count as never read too.
  e.ignored = int64_t(f.layout_fixes().ignored_bytes);
  for (const auto& t : f.tensors()) {
    if (ignored_tensor(t.name)) {
      e.ignored += int64_t(t.nbytes);
      continue;
    }
    e.weights += int64_t(t.nbytes);
    if (lookup_tensor(t.name, tied)) continue;
    const int64_t b = read_per_token(t.name, int64_t(t.nbytes), experts, used);
    e.decode_bytes += b;
    e.decode_params += read_per_token(t.name, t.n_elements, experts, used);
    if (t.name == "output.weight" || (tied && t.name == "token_embd.weight"))
      e.output_params = t.n_elements;
    e.decode_cost += double(b) / decode_efficiency(t.type);
  }

  models::ContextParams cp;
  cp.n_ctx = p.n_ctx;
  cp.n_batch = p.n_batch;
  cp.kv_type = p.kv_type;
  HEARTH_ASSIGN_OR_RETURN(size_t per_seq, models::estimate_state_bytes(f, cp));
  e.kv_cache = int64_t(per_seq) * std::max(1, p.n_seq);

  // The forward pass's scratch (models/context.cpp and the blocks' reserve()), in floats per
  // batch row, plus the matmul activation buffer, attention's per-thread rows and the logits.
  auto info = models::describe_file(f);
  if (!info) return info.status();
  const auto& c = info->cfg;
  const int64_t B = p.n_batch, E = c.n_embd, H = c.n_head, Hkv = c.n_head_kv;
  const int64_t hd = c.head_dim, hdv = c.head_dim_v ? c.head_dim_v : c.head_dim;
  int64_t row = 3 * E;                                      // x, xn, xg
  row += 3 * H * hd + 2 * Hkv * hd + H * hdv + 2 * H * hd;  // q, k, v, out, fused/gated q
  row += 2 * c.n_ff;                                        // gate, up
  if (experts > 1) {
    const int64_t ff_exp = key_int(f, arch + ".expert_feed_forward_length", c.n_ff);
    row += 3 * experts + 2 * ff_exp + 4 * E + 3 * used;
  }
  row += key_int(f, arch + ".embedding_length_per_layer_input") * c.n_layer * 2;
  int64_t act = 0;
  for (const auto& t : f.tensors())
    if (!ignored_tensor(t.name) && t.shape.size() >= 2 && find_type(uint32_t(t.type)))
      act = std::max<int64_t>(act, int64_t(ops::activation_bytes(t.type, t.row_len(), B)));
  const int64_t threads = std::max(1u, std::thread::hardware_concurrency());
  const int64_t g = Hkv > 0 ? std::max<int64_t>(1, H / Hkv) : 1;
  const int64_t attn = threads *
                       (int64_t(p.n_ctx) * g + g * 16 * std::max(hd, hdv) +
                        int64_t(ops::tile_scratch_floats(int(hd), int(hdv)))) *
                       4;
  const int64_t logits = (int64_t(std::max(1, p.n_seq)) * 3 + 2) * c.n_vocab * 4;
  e.compute = B * row * 4 + act + attn + logits;
  e.tokenizer = tokenizer_bytes(f);
  return e;
}

ModelFacts model_facts(const gguf::GgufFile& f) {
  ModelFacts m;
  m.architecture = arch_of(f);
  for (const auto& t : f.tensors())
    if (!ignored_tensor(t.name)) m.parameters += t.n_elements;
  if (auto ft = f.get_int("general.file_type"); ft && *ft >= 0)
    m.quantization = store::file_type_name(*ft);
  m.context_trained = key_int(f, m.architecture + ".context_length");
  m.experts = key_int(f, m.architecture + ".expert_count");
  m.experts_used = key_int(f, m.architecture + ".expert_used_count");
  return m;
}

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kFits:
      return "fits";
    case Verdict::kTight:
      return "tight";
    default:
      return "too_large";
  }
}

Verdict verdict(int64_t need, const MachineInfo& m) {
  if (need <= m.mem_available) return Verdict::kFits;
  // A memory limit is what models may use; the whole machine also runs everything else.
  if (need <= (m.memory_limit > 0 ? m.mem_total : m.mem_total - kSystemReserve))
    return Verdict::kTight;
  return Verdict::kTooLarge;
}

namespace {

// The longest context (a multiple of 256, at most `cap`) whose estimate fits in `room`; 0 if
// not even 256 positions do. The estimate grows with the context, so a binary search.
int max_context(const gguf::GgufFile& f, FitParams p, int64_t room, int cap) {
  auto need = [&](int ctx) -> int64_t {
    p.n_ctx = ctx;
    auto e = estimate_memory(f, p);
    return e ? e->total() : INT64_MAX;
  };
  int lo = 0, hi = std::max(1, cap / 256);
  if (need(256) > room) return 0;
  lo = 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (need(mid * 256) <= room)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo * 256;
}

}  // namespace

Result<FitReport> fit(const gguf::GgufFile& f, const FitParams& p, const MachineInfo& m,
                      double bandwidth, bool other_quants) {
  FitReport r;
  r.facts = model_facts(f);
  r.params = p;
  HEARTH_ASSIGN_OR_RETURN(r.memory, estimate_memory(f, p));
  const int64_t need = r.memory.total();
  r.verdict = verdict(need, m);
  const int cap = int(std::clamp<int64_t>(
      r.facts.context_trained > 0 ? r.facts.context_trained : 131072, 256, 1 << 20));
  r.max_context = max_context(f, p, m.mem_available, cap);
  switch (r.verdict) {
    case Verdict::kFits:
      r.reason = "needs " + human_bytes(need) + " at " + std::to_string(p.n_ctx) +
                 " tokens of context; " + human_bytes(m.mem_available) + " is available";
      break;
    case Verdict::kTight:
      r.reason = "needs " + human_bytes(need) + " at " + std::to_string(p.n_ctx) +
                 " tokens of context but only " + human_bytes(m.mem_available) +
                 " is available now (" + human_bytes(m.mem_total) +
                 " in all): close other programs or unload models";
      break;
    default:
      r.reason = "needs " + human_bytes(need) + " at " + std::to_string(p.n_ctx) +
                 " tokens of context, more than this machine's " + human_bytes(m.mem_total);
  }
  r.bandwidth = bandwidth;
  if (bandwidth > 0 && r.memory.decode_bytes > 0) {
    r.decode_tps_bound = bandwidth / double(r.memory.decode_bytes);
    r.decode_tps_expected = bandwidth / r.memory.decode_cost;
    // With the context full, every step also reads the sequence's whole cache (F16 rows).
    const double per_seq = double(r.memory.kv_cache) / std::max(1, p.n_seq);
    r.decode_tps_full_ctx =
        bandwidth / (r.memory.decode_cost + per_seq / decode_efficiency(DType::F16));
  }
  for (int ctx = 2048; ctx <= cap; ctx *= 2) {
    FitParams q = p;
    q.n_ctx = ctx;
    auto e = estimate_memory(f, q);
    if (!e) break;
    r.contexts.push_back({ctx, e->total(), verdict(e->total(), m)});
  }
  if (!other_quants) return r;

  // The same tensors at other quantization levels, typed by the rules `hearth quantize` uses.
  quantize::ModelFacts qf;
  qf.arch = r.facts.architecture;
  qf.n_layer = int(key_int(f, qf.arch + ".block_count"));
  qf.n_expert = int(r.facts.experts);
  const int64_t nh = key_int(f, qf.arch + ".attention.head_count", 1);
  auto nkv = f.get_int(qf.arch + ".attention.head_count_kv");
  qf.n_gqa = int(nkv && *nkv > 0 ? std::max<int64_t>(1, nh / *nkv) : 1);
  qf.is_70b = qf.n_layer == 80;
  std::vector<quantize::TensorDesc> descs;
  std::vector<const gguf::TensorInfo*> infos;
  for (const auto& t : f.tensors()) {
    if (ignored_tensor(t.name)) continue;
    descs.push_back({std::string(t.name), t.type, t.shape});
    infos.push_back(&t);
  }
  for (const char* name :
       {"F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "IQ4_XS", "Q3_K_M", "Q2_K"}) {
    const auto* fi = quantize::find_ftype(name);
    if (!fi) continue;
    const auto types = quantize::plan_types(qf, descs, fi->ftype);
    int64_t w = int64_t(f.data_offset());
    double dec = 0;
    const bool tied = f.find_tensor("output.weight") == nullptr;
    for (size_t i = 0; i < infos.size(); ++i) {
      const auto* t = infos[i];
      const TypeTraits* tt = find_type(uint32_t(types[i]));
      if (!tt || t->row_len() % tt->block_elems != 0) {
        w = -1;
        break;
      }
      const int64_t b = int64_t(row_bytes(*tt, t->row_len())) * t->n_rows();
      w += b;
      if (lookup_tensor(t->name, tied)) continue;
      dec += double(read_per_token(t->name, b, qf.n_expert, r.facts.experts_used)) /
             decode_efficiency(types[i]);
    }
    if (w < 0) continue;
    QuantFit q;
    q.quantization = name;
    q.weights = w;
    const int64_t delta = w - r.memory.weights;
    q.total = need + delta;
    q.verdict = verdict(q.total, m);
    q.max_context = max_context(f, p, m.mem_available - delta, cap);
    if (bandwidth > 0 && dec > 0) q.decode_tps = bandwidth / dec;
    r.quantizations.push_back(q);
  }
  return r;
}

}  // namespace hearth::runtime

namespace hearth::runtime {

nlohmann::ordered_json machine_json(const MachineInfo& m, double bandwidth) {
  nlohmann::ordered_json g = nlohmann::ordered_json::array();
  for (const auto& x : m.gpus)
    g.push_back({{"name", x.name}, {"vram", x.vram}, {"source", x.source}, {"used", false}});
  nlohmann::ordered_json j = {{"cpu", m.cpu},
                              {"threads", m.threads},
                              {"isa", m.isa},
                              {"memory_total", m.mem_total},
                              {"memory_available", m.mem_available},
                              {"cgroup_limit", m.cgroup_limit},
                              {"memory_limit", m.memory_limit},
                              {"gpus", g}};
  if (bandwidth > 0) j["memory_bandwidth"] = int64_t(bandwidth);
  return j;
}

nlohmann::ordered_json report_json(const FitReport& r) {
  using J = nlohmann::ordered_json;
  J ctx = J::array(), qs = J::array();
  for (const auto& c : r.contexts)
    ctx.push_back({{"context", c.n_ctx}, {"total", c.total}, {"verdict", verdict_name(c.verdict)}});
  for (const auto& q : r.quantizations) {
    J x = {{"quantization", q.quantization},
           {"weights", q.weights},
           {"total", q.total},
           {"verdict", verdict_name(q.verdict)},
           {"max_context", q.max_context}};
    if (q.decode_tps > 0) x["decode_tokens_per_second"] = std::round(q.decode_tps * 10) / 10;
    qs.push_back(x);
  }
  J j = {{"architecture", r.facts.architecture},
         {"parameters", r.facts.parameters},
         {"quantization", r.facts.quantization},
         {"context_length", r.facts.context_trained},
         {"context", r.params.n_ctx},
         {"parallel", r.params.n_seq},
         {"memory",
          {{"weights", r.memory.weights},
           {"kv_cache", r.memory.kv_cache},
           {"compute", r.memory.compute},
           {"tokenizer", r.memory.tokenizer},
           {"total", r.memory.total()},
           {"not_loaded", r.memory.ignored}}},
         {"verdict", verdict_name(r.verdict)},
         {"fits", r.verdict == Verdict::kFits},
         {"reason", r.reason},
         {"max_context", r.max_context}};
  if (r.facts.experts > 1) {
    j["experts"] = r.facts.experts;
    j["experts_used"] = r.facts.experts_used;
  }
  j["decode_bytes_per_token"] = r.memory.decode_bytes;
  if (r.bandwidth > 0)
    j["decode_tokens_per_second"] = {
        {"bound", std::round(r.decode_tps_bound * 10) / 10},
        {"expected", std::round(r.decode_tps_expected * 10) / 10},
        {"expected_full_context", std::round(r.decode_tps_full_ctx * 10) / 10}};
  j["contexts"] = ctx;
  j["quantizations"] = qs;
  return j;
}

}  // namespace hearth::runtime
