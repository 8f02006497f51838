#include "gguf/lora_format.h"

#include <map>

namespace hearth::lora {

namespace {

namespace lf = hearth::lora;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "{";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "}";
}

}  // namespace

const char* lora_target_tensor(std::string_view target) {
  static const std::pair<const char*, const char*> kTargets[] = {
      {"q", "attn_q.weight"},      {"k", "attn_k.weight"},      {"v", "attn_v.weight"},
      {"o", "attn_output.weight"}, {"gate", "ffn_gate.weight"}, {"up", "ffn_up.weight"},
      {"down", "ffn_down.weight"}, {"output", "output.weight"}, {"token_embd", lf::kTokenEmbd}};
  for (const auto& [name, tensor] : kTargets)
    if (target == name) return tensor;
  return nullptr;
}

Status write_lora_adapter(const std::string& path, const LoraFileSpec& spec) {
  if (spec.arch.empty()) return invalid_argument("[lora] an adapter needs the base architecture");
  if (spec.pairs.empty()) return invalid_argument("[lora] an adapter needs at least one pair");
  gguf::GgufWriter w;
  w.set_string(lf::kKeyGeneralType, lf::kGeneralTypeAdapter);
  w.set_string(lf::kKeyArchitecture, spec.arch);
  if (!spec.name.empty()) w.set_string(lf::kKeyName, spec.name);
  w.set_string(lf::kKeyAdapterType, lf::kAdapterTypeLora);
  w.set_f32(lf::kKeyAlpha, spec.alpha);
  for (const LoraPairData& p : spec.pairs) {
    HEARTH_RETURN_IF_ERROR(w.add_tensor(p.base + lf::kSuffixA, p.type, p.a_shape, p.a, p.a_bytes));
    HEARTH_RETURN_IF_ERROR(w.add_tensor(p.base + lf::kSuffixB, p.type, p.b_shape, p.b, p.b_bytes));
  }
  return w.write(path);
}

Result<std::vector<LoraPairInfo>> check_lora_file(const gguf::GgufFile& f,
                                                  const gguf::GgufFile& base) {
  const std::string where = "[lora] adapter " + f.name() + ": ";
  auto need_string = [&](const char* key, const char* want) -> Status {
    auto v = f.get_string(key);
    if (!v)
      return invalid_argument(where + "not a LoRA adapter (" + key + " is missing; expected \"" +
                              want + "\")");
    if (*v != want)
      return invalid_argument(where + "not a LoRA adapter (" + key + " is \"" + *v +
                              "\", expected \"" + want + "\")");
    return Status::ok();
  };
  HEARTH_RETURN_IF_ERROR(need_string(lf::kKeyGeneralType, lf::kGeneralTypeAdapter));
  HEARTH_RETURN_IF_ERROR(need_string(lf::kKeyAdapterType, lf::kAdapterTypeLora));
  auto arch = base.get_string(lf::kKeyArchitecture);
  if (!arch) return invalid_argument("[lora] the base model has no general.architecture");
  auto a_arch = f.get_string(lf::kKeyArchitecture);
  if (!a_arch) return invalid_argument(where + "general.architecture is missing");
  if (*a_arch != *arch)
    return invalid_argument(where + "made for architecture '" + *a_arch +
                            "', but the base model is '" + *arch + "'");
  if (auto alpha = f.get_float_or(lf::kKeyAlpha, 0.0); !alpha)
    return invalid_argument(where + alpha.status().message());

  // Pairs by base name, in file order of their first half.
  std::map<std::string, std::pair<const gguf::TensorInfo*, const gguf::TensorInfo*>> halves;
  std::vector<std::string> order;
  for (const gguf::TensorInfo& t : f.tensors()) {
    const std::string_view n = t.name;
    const bool is_a = ends_with(n, lf::kSuffixA), is_b = ends_with(n, lf::kSuffixB);
    if (!is_a && !is_b) {
      if (ends_with(n, "_norm.weight")) continue;  // llama.cpp skips these too
      return invalid_argument(where + "tensor '" + std::string(n) +
                              "' is not a LoRA tensor (names end in .lora_a or .lora_b)");
    }
    const std::string b(n.substr(0, n.size() - 7));  // both suffixes are 7 characters
    auto [it, fresh] = halves.try_emplace(b, nullptr, nullptr);
    if (fresh) order.push_back(b);
    (is_a ? it->second.first : it->second.second) = &t;
  }
  if (order.empty()) return invalid_argument(where + "has no LoRA tensors");

  std::vector<LoraPairInfo> out;
  for (const std::string& name : order) {
    const auto [ta, tb] = halves[name];
    if (!ta || !tb)
      return invalid_argument(where + "the LoRA pair of '" + name + "' has no " +
                              (ta ? "lora_b" : "lora_a") + " tensor");
    const std::string an = name + lf::kSuffixA, bn = name + lf::kSuffixB;
    if (ta->shape.size() != 2 || tb->shape.size() != 2)
      return invalid_argument(where + "'" + an + "' and '" + bn + "' must be 2-D, they are " +
                              shape_str(ta->shape) + " and " + shape_str(tb->shape));
    const gguf::TensorInfo* bt = base.find_tensor(name);
    if (!bt)
      return invalid_argument(where + "tensor '" + name +
                              "' does not exist in the base model (an adapter for another model?)");
    if (bt->shape.size() != 2)
      return unsupported(where + "'" + name + "' has shape " + shape_str(bt->shape) +
                         ": hearth adapts 2-D matrices only (not expert stacks)");
    const int64_t rank = tb->shape[1];  // B's row length (llama.cpp: b->ne[0])
    if (rank <= 0) return invalid_argument(where + "'" + bn + "' has rank 0");
    const bool embd = name == lf::kTokenEmbd;
    // token_embd is flipped: A (n_vocab, rank) indexed by token, B (n_embd, rank).
    const std::vector<int64_t> want_a =
        embd ? std::vector<int64_t>{bt->shape[0], rank} : std::vector<int64_t>{rank, bt->shape[1]};
    const std::vector<int64_t> want_b =
        embd ? std::vector<int64_t>{bt->shape[1], rank} : std::vector<int64_t>{bt->shape[0], rank};
    if (ta->shape != want_a || tb->shape != want_b)
      return invalid_argument(where + "'" + name + "' (shape " + shape_str(bt->shape) +
                              ") needs lora_a " + shape_str(want_a) + " and lora_b " +
                              shape_str(want_b) + ", the adapter has " + shape_str(ta->shape) +
                              " and " + shape_str(tb->shape) +
                              (!embd && ta->shape == std::vector<int64_t>{bt->shape[1], rank}
                                   ? " (lora_a is transposed)"
                                   : ""));
    out.push_back({name, ta, tb, rank});
  }
  return out;
}

}  // namespace hearth::lora
