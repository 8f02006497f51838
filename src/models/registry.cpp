// The architecture registry: one line per architecture. Each file in models/ provides a loader.
#include <string>

#include "models/loaders.h"
#include "models/model.h"

namespace hearth::models {
namespace {

struct Entry {
  const char* arch;
  LoaderFn load;
};

// clang-format off
const Entry kArchitectures[] = {
    {"llama", load_llama},
    {"qwen2", load_qwen2},
    {"qwen3", load_qwen3},
    {"qwen3moe", load_qwen3moe},
    {"gemma3", load_gemma3},
    {"llama4", load_llama4},
    {"gemma4", load_gemma4},
};
// clang-format on

}  // namespace

std::vector<std::string> supported_architectures() {
  std::vector<std::string> v;
  for (const auto& e : kArchitectures) v.push_back(e.arch);
  return v;
}

Result<std::unique_ptr<Model>> load_model(std::shared_ptr<gguf::GgufFile> file, ThreadPool& pool,
                                          const LoadOptions& opt) {
  auto arch = file->get_string("general.architecture");
  if (!arch) return arch.status();
  for (const auto& e : kArchitectures)
    if (*arch == e.arch) return e.load(std::move(file), pool, opt);
  std::string list;
  for (const auto& a : supported_architectures()) list += (list.empty() ? "" : ", ") + a;
  return unsupported("[model] unknown architecture '" + *arch + "' in " + file->name() +
                     "; supported: " + list);
}

}  // namespace hearth::models
