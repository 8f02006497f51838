// The architecture registry: one line per architecture. Each file in models/ provides a loader.
#include <string>

#include "models/loaders.h"
#include "models/model.h"

namespace hearth::models {
namespace {

struct Entry {
  const char* arch;
  DescribeFn describe;
};

// clang-format off
const Entry kArchitectures[] = {
    {"llama", describe_llama},
    {"qwen2", describe_qwen2},
    {"qwen3", describe_qwen3},
    {"qwen3moe", describe_qwen3moe},
    {"gemma3", describe_gemma3},
    {"llama4", describe_llama4},
    {"gemma4", describe_gemma4},
    {"qwen35", describe_qwen35},
    {"qwen35moe", describe_qwen35moe},
};
// clang-format on

}  // namespace

std::vector<std::string> supported_architectures() {
  std::vector<std::string> v;
  for (const auto& e : kArchitectures) v.push_back(e.arch);
  return v;
}

Result<ArchSpec> describe(const gguf::GgufFile& file) {
  HEARTH_ASSIGN_OR_RETURN(std::string arch, file.get_string("general.architecture"));
  for (const auto& e : kArchitectures)
    if (arch == e.arch) return e.describe(file);
  std::string list;
  for (const auto& a : supported_architectures()) list += (list.empty() ? "" : ", ") + a;
  return unsupported("[model] unknown architecture '" + arch + "' in " + file.name() +
                     "; supported: " + list);
}

Result<std::unique_ptr<Model>> load_model(std::shared_ptr<gguf::GgufFile> file, ThreadPool& pool,
                                          const LoadOptions& opt) {
  HEARTH_ASSIGN_OR_RETURN(ArchSpec spec, describe(*file));
  return load_dense_decoder(std::move(file), pool, opt, std::move(spec.cfg), std::move(spec.flags));
}

Result<size_t> estimate_state_bytes(const gguf::GgufFile& file, const ContextParams& p) {
  HEARTH_ASSIGN_OR_RETURN(ArchSpec spec, describe(file));
  return decoder_state_bytes(spec.cfg, spec.flags, p);
}

}  // namespace hearth::models
