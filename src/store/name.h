// store/name.h — model names as Ollama parses them: [host/][namespace/]model[:tag].
//
// Defaults: host registry.ollama.ai, namespace library, tag latest. Each part has Ollama's
// character rules and length limits; anything else is an invalid name (HTTP 400 upstream).
// Names compare case-insensitively (ASCII letters only, as Ollama's do); the store keeps the
// spelling a model was first written with (Store::canonical).
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace hearth::store {

inline constexpr const char* kDefaultHost = "registry.ollama.ai";
inline constexpr const char* kDefaultNamespace = "library";
inline constexpr const char* kDefaultTag = "latest";

struct ModelName {
  std::string host, ns, model, tag;

  // Parses and validates; missing parts take the defaults. An optional scheme ("https://") is
  // accepted and dropped.
  static Result<ModelName> parse(std::string_view s);

  // What the API shows: host and namespace left out when default ("llama3.2:latest",
  // "me/m:latest", "hf.co/org/repo:Q4_K_M"); the tag is always there.
  std::string display() const;
  // host/namespace/model/tag: the manifest's path below manifests/.
  std::string path() const;
  bool operator==(const ModelName&) const = default;
  // Equal ignoring the case of ASCII letters ("Llama3" and "llama3:LATEST" name one model).
  bool equal_fold(const ModelName& o) const;
};

// a == b ignoring the case of ASCII letters.
bool equal_fold(std::string_view a, std::string_view b);

}  // namespace hearth::store
