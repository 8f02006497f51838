// store/store.h — the model store, laid out like Ollama's:
//   <root>/manifests/<host>/<namespace>/<model>/<tag>   Docker v2 manifest JSON
//   <root>/blobs/sha256-<hex>                           content-addressed layers
// Every write is atomic (temporary file in the same directory, fsync, rename, directory fsync)
// and every blob is hashed while written, so a crash or kill never leaves a half-written model
// and a blob's name always matches its bytes. Blobs shared by several models are removed only
// with the last manifest that references them.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
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
// A draft model for speculative decoding (Modelfile DRAFT).
inline constexpr const char* kMediaDraft = "application/vnd.ollama.image.draft";
// A LoRA adapter (Modelfile ADAPTER): a GGUF in llama.cpp's adapter format (models/lora.h).
inline constexpr const char* kMediaAdapter = "application/vnd.ollama.image.adapter";

struct Layer {
  std::string media_type, digest;  // digest: "sha256:<64 lowercase hex>"
  int64_t size = 0;
  std::string from;  // optional: where the layer came from
  // Adapter layers: the Modelfile's scale (a hearth field, written only when not 1; Ollama
  // applies its one adapter at 1).
  float scale = 1;
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

class Store;

// Digests a creation in progress is using: garbage collection leaves them alone until the pin
// goes, so a blob written for a manifest that does not exist yet is never collected under it.
class Pin {
 public:
  explicit Pin(Store& s) : s_(&s) {}
  ~Pin();
  Pin(const Pin&) = delete;
  Pin& operator=(const Pin&) = delete;
  void add(const std::string& digest);

 private:
  Store* s_;
  std::vector<std::string> digests_;
};

// A blob being written piece by piece (an upload as it arrives): hashed while written, so the
// digest check needs no second read. Nothing reaches the store unless commit() verifies the
// digest; a writer dropped before that removes its temporary file.
class BlobWriter {
 public:
  ~BlobWriter();
  // Appends bytes; fails once the size limit or the disk is reached (the blob is then dropped).
  Status write(const void* data, size_t n);
  // fsync, verify the digest, rename into place. Returns the "sha256:<hex>" digest. On failure
  // the temporary file is removed before this returns.
  Result<std::string> commit(Pin* pin = nullptr);
  void discard();
  uint64_t bytes() const { return bytes_; }

 private:
  friend class Store;
  BlobWriter() = default;
  Result<std::string> finish(Pin* pin);
  Store* store_ = nullptr;
  std::string expected_hex_, tmp_path_;
  int fd_ = -1;
  uint64_t bytes_ = 0, limit_ = 0;
  StatusCode over_limit_ = StatusCode::kTooLarge;
  std::unique_ptr<Sha256> hash_;
  Status failed_;
};

class Store {
 public:
  // $HEARTH_MODELS, else $OLLAMA_MODELS, else ~/.hearth/models — or, where that does not exist
  // and Ollama's store does, ~/.ollama/models, used in place.
  static std::string default_root();
  explicit Store(std::string root) : root_(std::move(root)) {}
  const std::string& root() const { return root_; }

  std::string blob_path(std::string_view hex) const;
  bool has_blob(std::string_view digest) const;
  // Adds bytes / a file's contents as a blob; returns its "sha256:<hex>" digest. If `expected`
  // is given the content must hash to it (else nothing is kept and the error says so).
  // The digest goes into `pin` (if given) before the blob becomes visible.
  Result<std::string> add_blob(std::string_view bytes, std::string_view expected = {},
                               Pin* pin = nullptr);
  // `magic`: the file must start with these bytes (checked as it is read, so a file swapped
  // after an earlier check still cannot bring other content into the store).
  Result<std::string> add_blob_from_file(const std::string& path, std::string_view expected = {},
                                         Pin* pin = nullptr, std::string_view magic = {});
  // Starts writing a blob that must hash to `expected` and be at most `limit` bytes (0: no
  // limit); the temporary file lives in blobs/ as .tmp-*.
  // `over_limit`: the error a write past the limit gets (TooLarge for a setting, NoSpace for the
  // disk).
  Result<std::unique_ptr<BlobWriter>> begin_blob(std::string_view expected, uint64_t limit = 0,
                                                 StatusCode over_limit = StatusCode::kTooLarge);

  // Moves a file whose content was hashed to `hex` as it was written (a finished download, on
  // the store's file system) into blobs/; fsyncs it and the directory first.
  Status install_blob(const std::string& path, std::string_view hex, Pin* pin = nullptr);

  Result<Manifest> read_manifest(const ModelName& n) const;
  Status write_manifest(const ModelName& n, const Manifest& m);
  // A manifest as its registry sent it, byte for byte (its digest is the registry's), once it
  // parses and every blob it names is present.
  Status write_manifest_bytes(const ModelName& n, std::string_view bytes);
  bool exists(const ModelName& n) const;
  Result<std::vector<ModelEntry>> list() const;
  Status copy(const ModelName& from, const ModelName& to);
  // Removes the manifest, then every blob no other manifest references.
  Status remove(const ModelName& n);
  // Removes those of `digests` that no manifest references and no Pin holds.
  Status prune(const std::vector<std::string>& digests);
  // Where the manifest of `n` lives: the path of canonical(n), so every lookup and every write
  // (create, pull, copy, delete, push) finds a model whatever the case of the name given, and a
  // name differing only in case from a stored model replaces that model.
  std::string manifest_path(const ModelName& n) const;
  // `n` spelled as the store spells it: from the host down, each part that matches an existing
  // manifest directory (the tag: manifest file) ignoring case takes that entry's spelling; an
  // exact match is preferred, then the smallest such spelling; below the first part with no
  // match the rest stays as given (a new model goes into its existing host/namespace).
  ModelName canonical(const ModelName& n) const;
  // Partial downloads (registry/pull.h): <root>/downloads.
  std::string downloads_dir() const { return root_ + "/downloads"; }

  // Garbage collection (at `serve` start, then hourly, and `hearth prune`): temporary files of
  // interrupted writes untouched for `temp_age`, and blobs no manifest references that are older
  // than `blob_age` (an uploaded blob waits that long for the create that uses it).
  struct Collected {
    int temporaries = 0, blobs = 0;
    uint64_t bytes = 0;
    bool unreadable_manifest = false;  // then no blob was collected
  };
  // `keep_blobs`: only temporaries go.
  Result<Collected> collect_garbage(std::chrono::seconds temp_age, std::chrono::seconds blob_age,
                                    bool dry_run = false, bool keep_blobs = false);

  // An exclusive advisory lock on <root>/.lock for the life of the process, if no other process
  // holds it. The holder knows every temporary file of the store left from before it started
  // belongs to a process that died.
  bool try_lock_exclusive();

 private:
  friend class Pin;
  std::string root_;
  std::mutex pin_mu_;
  std::multiset<std::string> pinned_;
  int lock_fd_ = -1;  // held until exit
};

// The Status for a failed system call on `path` (errno): NoSpace for a full disk or quota, Io
// otherwise.
Status io_error(const std::string& what, const std::string& path, int err);

// Writes `bytes` to `path` atomically (temporary file beside it, fsync, rename, directory fsync),
// creating parent directories.
Status write_file_atomic(const std::string& path, std::string_view bytes);

}  // namespace hearth::store
