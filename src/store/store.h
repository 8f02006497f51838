// store/store.h — the model store, laid out like Ollama's:
//   <root>/manifests/<host>/<namespace>/<model>/<tag>   Docker v2 manifest JSON
//   <root>/blobs/sha256-<hex>                           content-addressed layers
// Every write is atomic (temporary file in the same directory, fsync, rename, directory fsync)
// and every blob is hashed while written, so a crash or kill never leaves a half-written model
// and a blob's name always matches its bytes. Blobs shared by several models are removed only
// with the last manifest that references them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/name.h"

namespace hearth::store {

// Ollama's media types.
inline constexpr const char* kMediaManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* kMediaConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr const char* kMediaModel = "application/vnd.ollama.image.model";
inline constexpr const char* kMediaTemplate = "application/vnd.ollama.image.template";
inline constexpr const char* kMediaSystem = "application/vnd.ollama.image.system";
inline constexpr const char* kMediaParams = "application/vnd.ollama.image.params";
inline constexpr const char* kMediaMessages = "application/vnd.ollama.image.messages";
inline constexpr const char* kMediaLicense = "application/vnd.ollama.image.license";

struct Layer {
  std::string media_type, digest;  // digest: "sha256:<64 lowercase hex>"
  int64_t size = 0;
  std::string from;  // optional: where the layer came from
};

struct Manifest {
  Layer config;
  std::vector<Layer> layers;
  static Result<Manifest> parse(std::string_view json);
  std::string to_json() const;
  const Layer* find(std::string_view media_type) const;
};

struct ModelEntry {
  ModelName name;
  std::string digest;  // sha256 hex of the manifest bytes (what /api/tags shows)
  int64_t size = 0;    // sum of the layer sizes
  int64_t modified_unix = 0;
};

// "sha256:<hex>" or "sha256-<hex>" -> the 64-char hex; error otherwise.
Result<std::string> digest_hex(std::string_view digest);

// Incremental SHA-256 (OpenSSL).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  std::string hex();  // finishes

 private:
  void* ctx_;
};

class Store {
 public:
  // $HEARTH_MODELS, else ~/.hearth/models.
  static std::string default_root();
  explicit Store(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }

  std::string blob_path(std::string_view hex) const;
  bool has_blob(std::string_view digest) const;
  // Adds bytes / a file's contents as a blob; returns its "sha256:<hex>" digest. If `expected`
  // is given the content must hash to it (else nothing is kept and the error says so).
  Result<std::string> add_blob(std::string_view bytes, std::string_view expected = {});
  Result<std::string> add_blob_from_file(const std::string& path, std::string_view expected = {});

  Result<Manifest> read_manifest(const ModelName& n) const;
  Status write_manifest(const ModelName& n, const Manifest& m);
  bool exists(const ModelName& n) const;
  Result<std::vector<ModelEntry>> list() const;
  Status copy(const ModelName& from, const ModelName& to);
  // Removes the manifest, then every blob no other manifest references.
  Status remove(const ModelName& n);
  // Removes those of `digests` that no manifest references.
  Status prune(const std::vector<std::string>& digests);
  std::string manifest_path(const ModelName& n) const;

 private:
  std::string root_;
};

// Writes `bytes` to `path` atomically (temporary file beside it, fsync, rename, directory fsync),
// creating parent directories.
Status write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace hearth::store
