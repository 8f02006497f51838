#include "quantize/ftype.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <numeric>

namespace hearth::quantize {
namespace {

enum class Cat {
  kTokenEmbd,
  kAttnQ,
  kAttnV,
  kAttnK,
  kAttnQkv,
  kAttnKvB,
  kAttnOut,
  kFfnUp,
  kFfnGate,
  kFfnDown,
  kOutput,
  kOther
};

bool contains(const std::string& s, const char* sub) {
  return s.find(sub) != std::string::npos;
}

Cat category(const std::string& n) {
  if (n == "output.weight") return Cat::kOutput;
  if (n == "token_embd.weight" || n == "per_layer_token_embd.weight") return Cat::kTokenEmbd;
  if (contains(n, "attn_qkv.weight")) return Cat::kAttnQkv;
  if (contains(n, "attn_kv_b.weight")) return Cat::kAttnKvB;
  if (contains(n, "attn_v.weight")) return Cat::kAttnV;
  if (contains(n, "attn_k.weight")) return Cat::kAttnK;
  if (contains(n, "attn_q.weight")) return Cat::kAttnQ;
  if (contains(n, "attn_output.weight")) return Cat::kAttnOut;
  if (contains(n, "ffn_up")) return Cat::kFfnUp;
  if (contains(n, "ffn_gate")) return Cat::kFfnGate;
  if (contains(n, "ffn_down")) return Cat::kFfnDown;
  return Cat::kOther;
}

bool is_attn_v_like(Cat c) {
  return c == Cat::kAttnV || c == Cat::kAttnQkv || c == Cat::kAttnKvB;
}

// The layers that get more bits in the *_M mixes: the first and last eighth, and every third
// layer in between.
bool use_more_bits(int i, int n) {
  return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

int layer_of(const std::string& name) {
  int l = -1;
  if (std::sscanf(name.c_str(), "blk.%d.", &l) != 1) return -1;
  return l;
}

int block_elems(DType t) {
  return type_traits(t).block_elems;
}

// A type whose block does not divide the row length falls back to a 32-wide type (or F16).
DType fallback(DType t, int64_t ncols) {
  if (ncols % block_elems(t) == 0) return t;
  DType r;
  switch (t) {
    case DType::IQ4_XS:
      r = DType::IQ4_NL;
      break;
    case DType::Q2_K:
    case DType::Q3_K:
      r = DType::Q4_0;
      break;
    case DType::Q4_K:
      r = DType::Q5_0;
      break;
    case DType::Q5_K:
      r = DType::Q5_1;
      break;
    case DType::Q6_K:
      r = DType::Q8_0;
      break;
    default:
      r = DType::F16;
      break;
  }
  if (ncols % block_elems(r) != 0) r = DType::F16;
  return r;
}

struct Counters {
  int n_attn_wv = 0, i_attn_wv = 0;
  int i_ffn_down = 0, i_ffn_gate = 0, i_ffn_up = 0;
  bool tied = true;
};

DType mix_rule(const ModelFacts& m, Counters& cs, const TensorDesc& t, Cat cat, FType f, DType nt) {
  const int n_layer = m.n_layer;
  auto layer = [&](int counter) {
    return m.n_expert > 1 ? layer_of(t.name) : counter;  // experts: parse the name
  };
  if (cat == Cat::kOutput || (cs.tied && cat == Cat::kTokenEmbd)) {
    if (t.shape.back() % block_elems(nt) != 0) return DType::Q8_0;
    return nt != DType::Q8_0 ? DType::Q6_K : nt;
  }
  if (cat == Cat::kTokenEmbd) return nt;
  if (is_attn_v_like(cat)) {
    const int i = cs.i_attn_wv, n = cs.n_attn_wv;
    if (f == FType::Q2_K)
      nt = m.n_gqa >= 4 ? DType::Q4_K : DType::Q3_K;
    else if (f == FType::Q3_K_M)
      nt = i < 2 ? DType::Q5_K : DType::Q4_K;
    else if (f == FType::Q3_K_L)
      nt = DType::Q5_K;
    else if ((f == FType::IQ4_NL || f == FType::IQ4_XS) && m.n_gqa >= 4)
      nt = DType::Q5_K;
    else if ((f == FType::Q4_K_M || f == FType::Q5_K_M) && use_more_bits(i, n))
      nt = DType::Q6_K;
    else if (f == FType::Q4_K_S && i < 4)
      nt = DType::Q5_K;
    if (m.is_70b && (nt == DType::Q3_K || nt == DType::Q4_K)) nt = DType::Q5_K;
    if (m.n_expert == 8) nt = DType::Q8_0;
    ++cs.i_attn_wv;
    return nt;
  }
  if (cat == Cat::kAttnK) return m.n_expert == 8 ? DType::Q8_0 : nt;
  if (cat == Cat::kFfnDown) {
    const int i = layer(cs.i_ffn_down), n = n_layer;
    if (f == FType::Q2_K)
      nt = DType::Q3_K;
    else if (f == FType::Q3_K_M)
      nt = i < n / 16 ? DType::Q5_K : DType::Q4_K;
    else if (f == FType::Q3_K_L)
      nt = DType::Q5_K;
    else if (f == FType::Q4_K_M) {
      if (use_more_bits(i, n)) nt = DType::Q6_K;
    } else if (i < n / 8 && (f == FType::IQ4_NL || f == FType::IQ4_XS))
      nt = DType::Q5_K;
    else if (f == FType::Q5_K_M && use_more_bits(i, n))
      nt = DType::Q6_K;
    else if (f == FType::Q4_K_S && i < n / 8)
      nt = DType::Q5_K;
    ++cs.i_ffn_down;
    return nt;
  }
  if (cat == Cat::kAttnOut) {
    if (m.n_expert == 8) {
      if (f == FType::Q2_K || f == FType::Q3_K_S || f == FType::Q3_K_M || f == FType::IQ4_NL ||
          f == FType::Q4_K_S || f == FType::Q4_K_M || f == FType::IQ4_XS)
        nt = DType::Q5_K;
    } else {
      if (f == FType::Q2_K)
        nt = DType::Q3_K;
      else if (f == FType::Q3_K_M)
        nt = DType::Q4_K;
      else if (f == FType::Q3_K_L)
        nt = DType::Q5_K;
    }
    return nt;
  }
  if (cat == Cat::kFfnGate) ++cs.i_ffn_gate;
  if (cat == Cat::kFfnUp) ++cs.i_ffn_up;
  return nt;
}

}  // namespace

const std::vector<FTypeInfo>& ftypes() {
  static const std::vector<FTypeInfo> v = {
      {FType::ALL_F32, "F32", DType::F32},      {FType::F16, "F16", DType::F16},
      {FType::BF16, "BF16", DType::BF16},       {FType::Q8_0, "Q8_0", DType::Q8_0},
      {FType::Q6_K, "Q6_K", DType::Q6_K},       {FType::Q5_K_M, "Q5_K_M", DType::Q5_K},
      {FType::Q5_K_S, "Q5_K_S", DType::Q5_K},   {FType::Q5_1, "Q5_1", DType::Q5_1},
      {FType::Q5_0, "Q5_0", DType::Q5_0},       {FType::Q4_K_M, "Q4_K_M", DType::Q4_K},
      {FType::Q4_K_S, "Q4_K_S", DType::Q4_K},   {FType::Q4_1, "Q4_1", DType::Q4_1},
      {FType::Q4_0, "Q4_0", DType::Q4_0},       {FType::IQ4_XS, "IQ4_XS", DType::IQ4_XS},
      {FType::IQ4_NL, "IQ4_NL", DType::IQ4_NL}, {FType::Q3_K_L, "Q3_K_L", DType::Q3_K},
      {FType::Q3_K_M, "Q3_K_M", DType::Q3_K},   {FType::Q3_K_S, "Q3_K_S", DType::Q3_K},
      {FType::Q2_K, "Q2_K", DType::Q2_K},
  };
  return v;
}

const FTypeInfo* find_ftype(std::string_view name) {
  for (const auto& f : ftypes()) {
    std::string_view n = f.name;
    if (n.size() == name.size() && std::equal(n.begin(), n.end(), name.begin(), [](char a, char b) {
          return std::toupper(a) == std::toupper(b);
        }))
      return &f;
  }
  return nullptr;
}

std::string ftype_names() {
  std::string s;
  for (const auto& f : ftypes()) s += (s.empty() ? "" : ", ") + std::string(f.name);
  return s;
}

bool tensor_allows_quantization(const TensorDesc& t) {
  if (t.shape.size() < 2) return false;
  const std::string& n = t.name;
  if (n.size() < 6 || n.compare(n.size() - 6, 6, "weight") != 0) return false;
  static const char* const kNever[] = {"_norm.weight",
                                       "ffn_gate_inp.weight",
                                       "ffn_gate_tid2eid.weight",
                                       "altup",
                                       "laurel",
                                       "per_layer_model_proj",
                                       "ssm_conv1d",
                                       "shortconv.conv.weight",
                                       "indexer.k_proj.weight",
                                       "indexer.q_proj.weight",
                                       "time_mix_",
                                       "attn_rel_b.weight",
                                       ".position_embd",
                                       ".rel_pos",
                                       ".patch_embd",
                                       ".patch_merger"};
  for (const char* s : kNever)
    if (contains(n, s)) return false;
  if (n == "position_embd.weight" || n == "token_types.weight") return false;
  return true;
}

std::vector<size_t> llama_tensor_order(const std::vector<std::string>& names) {
  std::vector<size_t> idx(names.size());
  std::iota(idx.begin(), idx.end(), size_t(0));
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) {
    const int la = layer_of(names[a]), lb = layer_of(names[b]);
    if (la != lb) return la < lb;
    return names[a] < names[b];
  });
  return idx;
}

std::vector<DType> plan_types(const ModelFacts& m, const std::vector<TensorDesc>& tensors,
                              FType ftype) {
  const FTypeInfo* fi = nullptr;
  for (const auto& f : ftypes())
    if (f.ftype == ftype) fi = &f;
  const DType def = fi ? fi->default_type : DType::F16;
  const bool quantized_default = type_traits(def).quantized;

  std::vector<std::string> names;
  for (const auto& t : tensors) names.push_back(t.name);
  Counters cs;
  for (const auto& t : tensors) {
    const Cat c = category(t.name);
    if (is_attn_v_like(c)) ++cs.n_attn_wv;
    if (c == Cat::kOutput) cs.tied = false;
  }
  std::vector<DType> out(tensors.size());
  for (size_t i : llama_tensor_order(names)) {
    const TensorDesc& t = tensors[i];
    if (!tensor_allows_quantization(t)) {
      out[i] = t.type;
      continue;
    }
    DType nt = def;
    if (quantized_default) {
      nt = mix_rule(m, cs, t, category(t.name), ftype, nt);
      nt = fallback(nt, t.shape.back());
    }
    out[i] = nt;
  }
  return out;
}

}  // namespace hearth::quantize
