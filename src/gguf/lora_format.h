// gguf/lora_format.h — llama.cpp's GGUF LoRA adapter format: its names, the scale rule, a check
// of an adapter file against its base model's file, and a writer (tests and the fine-tuner).
//
//   metadata  general.type = "adapter", adapter.type = "lora", general.architecture = the base's,
//             adapter.lora.alpha (f32; 0 or absent: no alpha), general.name (optional)
//   tensors   "<base tensor>.lora_a" / "<base tensor>.lora_b" pairs (llama.cpp
//             src/llama-adapter.cpp). For a base matrix W of shape (n_out, n_in) (ggml ne
//             [n_in, n_out]): A is (rank, n_in) (ne [n_in, rank]) and B is (n_out, rank) (ne
//             [rank, n_out]). token_embd (n_vocab, n_embd) is flipped: A is (n_vocab, rank), a row
//             per token, and B is (n_embd, rank). "*_norm.weight" tensors are skipped.
//   scale     alpha ? user · alpha / rank : user, rank = B's row length (ne[0]).
//
// Shapes here are outermost-first, as gguf::TensorInfo has them. Applying adapters is
// models/lora.h's job; this part needs no model loaded (the store checks uploads with it).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"

namespace hearth::lora {

// The names of the format, for whatever reads or writes adapters.
inline constexpr const char* kKeyGeneralType = "general.type";
inline constexpr const char* kGeneralTypeAdapter = "adapter";
inline constexpr const char* kKeyArchitecture = "general.architecture";
inline constexpr const char* kKeyAdapterType = "adapter.type";
inline constexpr const char* kAdapterTypeLora = "lora";
inline constexpr const char* kKeyAlpha = "adapter.lora.alpha";
inline constexpr const char* kKeyName = "general.name";
inline constexpr const char* kSuffixA = ".lora_a";
inline constexpr const char* kSuffixB = ".lora_b";
inline constexpr const char* kTokenEmbd = "token_embd.weight";

// The tensor a short target name adapts in every layer ("q" -> "attn_q.weight", also k, v, o,
// gate, up, down), or the whole name for "output" and "token_embd"; null for an unknown name.
// What `--targets` lists take (hearth lora-random, the fine-tuner).
const char* lora_target_tensor(std::string_view target);
// llama.cpp's scale rule.
inline float lora_scale(float user_scale, float alpha, int64_t rank) {
  return alpha != 0 ? user_scale * alpha / float(rank) : user_scale;
}

// One pair to write: `base` names the adapted tensor ("blk.0.attn_q.weight"); shapes are
// outermost-first as in gguf::TensorInfo (A (rank, n_in), B (n_out, rank); token_embd flipped,
// see above). Data must stay alive until write_lora_adapter returns.
struct LoraPairData {
  std::string base;
  DType type = DType::F32;
  std::vector<int64_t> a_shape, b_shape;
  const void* a = nullptr;
  const void* b = nullptr;
  size_t a_bytes = 0, b_bytes = 0;
};

struct LoraFileSpec {
  std::string arch;  // the base's general.architecture
  float alpha = 0;   // 0: no alpha (scale = the user's scale)
  std::string name;  // general.name (optional)
  std::vector<LoraPairData> pairs;
};

// Writes an adapter GGUF in llama.cpp's format (atomically, via gguf::GgufWriter).
Status write_lora_adapter(const std::string& path, const LoraFileSpec& spec);

// One checked pair of an adapter file: the base tensor it adapts and its two halves.
struct LoraPairInfo {
  std::string base;
  const gguf::TensorInfo* a = nullptr;
  const gguf::TensorInfo* b = nullptr;
  int64_t rank = 0;
};
// Checks an adapter file against its base model's file alone (no weights loaded: what
// `hearth create` and /api/create check): the keys, the architecture, that every tensor is half
// of a pair, that each pair's base tensor exists and every shape. Errors name the tensor.
Result<std::vector<LoraPairInfo>> check_lora_file(const gguf::GgufFile& adapter,
                                                  const gguf::GgufFile& base);

}  // namespace hearth::lora
