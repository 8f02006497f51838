// The architecture registry: one line per architecture. Each family file in models/ defines its
// architectures (models/arch.h).
#include <string>

#include "models/arch.h"
#include "models/model.h"

namespace hearth::models {

// Defined at the end of each family file.
extern const Architecture kLlama, kQwen2, kQwen3, kQwen3Moe;  // llama.cpp
extern const Architecture kGemma3, kGemma4;                   // gemma.cpp
extern const Architecture kGemmaEmbedding;                    // gemma_embedding.cpp
extern const Architecture kLlama4;                            // llama4.cpp
extern const Architecture kQwen35, kQwen35Moe;                // qwen35.cpp
extern const Architecture kBert;                              // bert.cpp
extern const Architecture kNomicBert, kNomicBertMoe;          // nomic_bert.cpp

namespace {

// clang-format off
const Architecture* const kArchitectures[] = {
    &kLlama, &kQwen2, &kQwen3, &kQwen3Moe,
    &kGemma3, &kGemma4, &kGemmaEmbedding,
    &kLlama4,
    &kQwen35, &kQwen35Moe,
    &kBert,
    &kNomicBert, &kNomicBertMoe,
};
// clang-format on

Result<const Architecture*> find(const gguf::GgufFile& file) {
  HEARTH_ASSIGN_OR_RETURN(std::string arch, file.get_string("general.architecture"));
  for (const auto* a : kArchitectures)
    if (arch == a->name) return a;
  std::string list;
  for (const auto& a : supported_architectures()) list += (list.empty() ? "" : ", ") + a;
  return unsupported("[model] unknown architecture '" + arch + "' in " + file.name() +
                     "; supported: " + list);
}

}  // namespace

const char* pooling_name(Pooling p) {
  switch (p) {
    case Pooling::kMean:
      return "mean";
    case Pooling::kCls:
      return "cls";
    case Pooling::kLast:
      return "last";
    case Pooling::kRank:
      return "rank";
    default:
      return "none";
  }
}

std::vector<std::string> supported_architectures() {
  std::vector<std::string> v;
  for (const auto* a : kArchitectures) v.push_back(a->name);
  return v;
}

Result<std::unique_ptr<Model>> load_model(std::shared_ptr<gguf::GgufFile> file, ThreadPool& pool,
                                          const LoadOptions& opt) {
  HEARTH_ASSIGN_OR_RETURN(const Architecture* a, find(*file));
  return a->load(std::move(file), pool, opt);
}

Result<ArchInfo> describe_file(const gguf::GgufFile& file) {
  HEARTH_ASSIGN_OR_RETURN(const Architecture* a, find(file));
  return a->describe(file);
}

Result<size_t> estimate_state_bytes(const gguf::GgufFile& file, const ContextParams& p) {
  HEARTH_ASSIGN_OR_RETURN(const Architecture* a, find(file));
  HEARTH_ASSIGN_OR_RETURN(ArchInfo info, a->describe(file));
  return sequence_bytes(info.cache, p);
}

}  // namespace hearth::models
