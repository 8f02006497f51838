// store/create.h — making a model in the store from a GGUF (an uploaded blob or a local file)
// or an existing model, with Modelfile layers, optionally quantized; and what the API shows of
// a model (details, model_info, parameters text, capabilities).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"
#include "store/model.h"
#include "store/store.h"

namespace hearth::store {

struct CreateSpec {
  std::optional<ModelName> from_model;       // inherit this model's layers
  std::optional<std::string> gguf_path;      // a GGUF on this machine (copied into the store)
  std::optional<std::string> gguf_blob;      // "sha256:..." of an uploaded blob
  std::vector<std::string> gguf_more_blobs;  // a split model's later parts, in order
  std::optional<std::string> template_text, system;
  std::optional<std::string> parser, renderer;     // kept in the config, as Ollama does
  std::optional<nlohmann::ordered_json> params;    // merged over the base's
  std::optional<nlohmann::ordered_json> messages;  // replace the base's
  std::optional<std::vector<std::string>> licenses;
  std::string quantize;  // "" or a file type (q4_K_M, q8_0, ...)
  // A draft model for speculative decoding (Modelfile DRAFT / /api/create draft_files): an
  // uploaded GGUF blob or a GGUF on this machine; else the base model's draft, if any.
  std::optional<std::string> draft_blob, draft_path;
  // LoRA adapters (Modelfile ADAPTER / /api/create adapters), in order: each an uploaded blob or
  // a GGUF on this machine, with its scale. Unset: the base model's adapters, if any; set
  // (even empty): these replace them. Checked against the model's GGUF (gguf/lora_format.h).
  struct Adapter {
    std::optional<std::string> blob, path;
    float scale = 1;
  };
  std::optional<std::vector<Adapter>> adapters;
};

// Progress statuses as Ollama streams them ("parsing GGUF", "using existing layer sha256:...",
// "creating new layer sha256:...", "writing manifest", "success").
using StatusFn = std::function<void(const std::string&)>;

// Errors: InvalidArgument (bad input, 400), NotFound (unknown base model or blob, 404 / 400),
// others (500). Nothing is written under the name unless everything succeeded; replacing a model
// removes the old layers no other model uses.
Status create_model(Store& s, const ModelName& name, const CreateSpec& spec,
                    const StatusFn& status = nullptr);

// What /api/tags and /api/show call details: family, parameter_size ("1.2B"),
// quantization_level ("Q4_K_M").
struct ModelDetails {
  std::string family, parameter_size, quantization_level;
  std::vector<std::string> families;
  int64_t parameter_count = 0;
  int64_t context_length = 0, embedding_length = 0;
};
ModelDetails model_details(const gguf::GgufFile& f);
// The config layer Ollama writes for a GGUF model with these details (model_format, family,
// type, file type, platform); callers add what else they record.
nlohmann::ordered_json model_config(const ModelDetails& det);
// The details /api/tags, /api/ps and /api/show give a stored model: the config's fields
// (model_format, model_family, model_families, model_type, file_type) where it has them, as
// create and Ollama write them; the rest from the GGUF header of its model blob (a store laid
// out by hand, an older config). The header is read once per blob digest and cached (safe
// under concurrent callers). A missing or unreadable blob gives what the config has, possibly
// nothing; this never fails.
struct StoredDetails {
  std::string format = "gguf", family, parameter_size, quantization_level;
  std::vector<std::string> families;
};
StoredDetails stored_model_details(const Store& s, const Manifest& m);
// "1.2B", "494M", "26M", "7K".
std::string human_parameter_count(int64_t n);
// llama.cpp's file type name for general.file_type ("Q4_K_M", "F16", ...), "" if unknown.
std::string file_type_name(int64_t ftype);

// GGUF metadata as /api/show's model_info: every key except general.name and
// tokenizer.chat_template; arrays longer than 5 become null unless verbose.
nlohmann::ordered_json model_info(const gguf::GgufFile& f, bool verbose);

// Ollama's `parameters` text: one "key<padding>value" line per value, strings Go-quoted.
std::string parameters_text(const nlohmann::ordered_json& params);

}  // namespace hearth::store
