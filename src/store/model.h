// store/model.h — what a stored model resolves to: its GGUF blob and the Modelfile layers
// (template, system, parameters, messages, licenses), read from the manifest. The scheduler
// loads `model_path`; /api/show and `hearth show` print the rest.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/store.h"

namespace hearth::store {

struct ModelRecord {
  ModelName name;
  Manifest manifest;
  std::string digest;      // sha256 hex of the manifest bytes (/api/tags, /api/ps)
  std::string model_path;  // the GGUF blob (a split model's first part)
  // Every model layer's blob in order: one, or a split model's parts (registered with
  // gguf::GgufFile::set_split_parts, so opening model_path maps them all).
  std::vector<std::string> model_parts;
  // A draft model for speculative decoding (Modelfile DRAFT), or empty.
  std::string draft_path;
  // LoRA adapters (Modelfile ADAPTER lines, in order: the `id`s of a request's `lora` field).
  struct Adapter {
    std::string path, digest;
    float scale = 1;
  };
  std::vector<Adapter> adapters;
  std::optional<std::string> template_text, system;
  std::optional<std::string> parser, renderer;  // Modelfile PARSER / RENDERER (Ollama's config)
  nlohmann::ordered_json params = nlohmann::ordered_json::object();
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  std::vector<std::string> licenses;
  int64_t size = 0;  // sum of layer sizes
  int64_t modified_unix = 0;
};

// Reads the manifest of `n` and the small layers it references. NotFound if the model does not
// exist; Corrupt if a layer is missing or malformed.
Result<ModelRecord> resolve_model(const Store& s, const ModelName& n);

}  // namespace hearth::store
