// registry/header.h — a registry model's GGUF header without downloading its weights: the
// manifest, then ranged reads of the first bytes of the model layer, grown until the header
// (metadata and tensor table) is complete. What the fit advisor sizes a model from before a pull.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"
#include "registry/client.h"
#include "store/store.h"

namespace hearth::registry {

struct RemoteHeader {
  std::shared_ptr<const std::vector<uint8_t>> bytes;  // what `header` points into
  std::shared_ptr<gguf::GgufFile> header;             // header_only(): no tensor data
  std::string digest;                                 // the model layer's
  int64_t size = 0;                                   // the model layer's full size
};

// Reads the header of the model layer of `m` through `client` (its token, its endpoint).
Result<RemoteHeader> fetch_header(Client& client, const Endpoint& ep, const store::Manifest& m);
// The same from a name ([http://][host[:port]/][ns/]model[:tag]): fetches the manifest first.
Result<RemoteHeader> fetch_header(std::string_view name, bool insecure);

}  // namespace hearth::registry

namespace hearth::registry {

// A model's header for sizing, wherever it is: a GGUF file path, a model in `store`, or (when
// neither) a registry name, read remotely. `source` says which: "file", "local", "registry".
struct ModelHeader {
  std::shared_ptr<gguf::GgufFile> file;
  std::shared_ptr<const void> keep;  // what `file` points into
  std::string source, name;
  int64_t size = 0;
};
Result<ModelHeader> open_model_header(const store::Store& store, std::string_view name,
                                      bool insecure);

}  // namespace hearth::registry
