// models/loaders.h — internal: the entry point each architecture file provides.
#pragma once

#include <memory>

#include "models/model.h"

namespace hearth::models {

using LoaderFn = Result<std::unique_ptr<Model>> (*)(std::shared_ptr<gguf::GgufFile>, ThreadPool&,
                                                    const LoadOptions&);

Result<std::unique_ptr<Model>> load_llama(std::shared_ptr<gguf::GgufFile>, ThreadPool&,
                                          const LoadOptions&);
Result<std::unique_ptr<Model>> load_qwen2(std::shared_ptr<gguf::GgufFile>, ThreadPool&,
                                          const LoadOptions&);
Result<std::unique_ptr<Model>> load_qwen3(std::shared_ptr<gguf::GgufFile>, ThreadPool&,
                                          const LoadOptions&);
Result<std::unique_ptr<Model>> load_qwen3moe(std::shared_ptr<gguf::GgufFile>, ThreadPool&,
                                             const LoadOptions&);
Result<std::unique_ptr<Model>> load_gemma3(std::shared_ptr<gguf::GgufFile>, ThreadPool&,
                                           const LoadOptions&);
Result<std::unique_ptr<Model>> load_llama4(std::shared_ptr<gguf::GgufFile>, ThreadPool&,
                                           const LoadOptions&);
Result<std::unique_ptr<Model>> load_gemma4(std::shared_ptr<gguf::GgufFile>, ThreadPool&,
                                           const LoadOptions&);

}  // namespace hearth::models
