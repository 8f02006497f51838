// models/arch.h — what an architecture file provides to the registry (models/registry.cpp).
//
// `describe` reads the GGUF metadata into the config and the per-layer cache layout without
// touching weights (the scheduler's memory estimate uses only this); `load` builds the model.
#pragma once

#include <memory>

#include "models/cache.h"
#include "models/model.h"

namespace hearth::models {

struct ArchInfo {
  ModelConfig cfg;
  CacheLayout cache;
};

struct Architecture {
  const char* name;
  Result<ArchInfo> (*describe)(const gguf::GgufFile&);
  Result<std::unique_ptr<Model>> (*load)(std::shared_ptr<gguf::GgufFile>, ThreadPool&,
                                         const LoadOptions&);
};

}  // namespace hearth::models
