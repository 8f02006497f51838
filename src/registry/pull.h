// registry/pull.h — `hearth pull`: a model from an Ollama-protocol registry into the store.
//
// Every blob the store lacks is fetched in ranged parts over parallel connections, all layers at
// once. Each part's bytes go from curl's buffer straight to their offset in the blob's partial
// file (no copy in between, no memory held for parts ahead of the front); a hasher thread feeds
// the SHA-256 with the bytes behind the front (everything from byte 0 on disk), read back from
// the page cache right behind the writes, so the digest is ready as the last byte lands, with no
// pass over the file afterwards, and the network thread never waits for hashing. Beside the
// partial file, `<partial>.ranges` logs the ranges on disk (little-endian int64 start/end pairs,
// one per finished part, and what in-flight parts got at a stop): a pull killed at any point
// resumes without fetching any logged byte again (a partial file without a log is taken as a
// prefix). Nothing unverified enters the store (a blob is renamed into blobs/ only once its
// digest matches) and the manifest is written last, atomically.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"
#include "store/store.h"

namespace hearth::registry {

// One progress report, shaped as Ollama streams them from /api/pull: a status line
// ("pulling manifest", "pulling <12 hex>", "verifying sha256 digest", "writing manifest",
// "success") and, for a blob, its digest and byte counts.
struct Progress {
  std::string status, digest;
  int64_t total = 0, completed = 0;
};
// Returns false to cancel the pull (partial downloads are kept for the next try).
using ProgressFn = std::function<bool(const Progress&)>;

struct PullOptions {
  bool insecure = false;  // plain HTTP
  // Called before any blob is downloaded with the model layer's size and a way to read its GGUF
  // header (ranged requests, only when called); an error ends the pull with that error (the fit
  // advisor refusing a model this machine cannot hold). Skipped when the model layer is already
  // in the store.
  using HeaderFn = std::function<Result<std::shared_ptr<gguf::GgufFile>>()>;
  std::function<Status(int64_t model_size, const HeaderFn& header)> check;
};

// Pulls `name` ([http://][host[:port]/][ns/]model[:tag]) into `store`. Names on hf.co or
// huggingface.co are Hugging Face GGUF repositories (registry/hf.h).
Status pull(store::Store& store, std::string_view name, const PullOptions& opts,
            const ProgressFn& progress);

class Client;

// One blob to fetch: its layer (digest, size) and the URL asked for its bytes, which answers them
// in place or redirects to storage elsewhere (a registry's /v2/.../blobs/<digest>, a Hugging Face
// resolve/<rev>/<file>).
struct BlobSource {
  store::Layer layer;
  std::string url;
};

// Fetches every one of `blobs` the store lacks, as pull() does (parallel ranged parts hashed on
// the way, resumable, verified, installed into blobs/), each pinned in `pin`. `client`'s token
// goes only to its own host. Writes no manifest. `before_first_byte`, when set, runs once the
// disk is known to have room and before any transfer starts; its error ends the pull.
Status fetch_blobs(store::Store& st, Client& client, const std::vector<BlobSource>& blobs,
                   store::Pin& pin, const ProgressFn& progress,
                   const std::function<Status()>& before_first_byte = {});

// Where partial downloads live: <store>/downloads/sha256-<hex>.partial, beside but outside the
// store's blobs (so nothing there is ever taken for a blob, and an Ollama sharing the store
// leaves them alone).
std::string partial_path(const store::Store& store, std::string_view hex);

// The end of every pull, shared by pull() and the Hugging Face pull: the blobs the tag's previous
// manifest used (read before the new one replaces it), pruned once it has, then "success".
std::vector<std::string> previous_blobs(const store::Store& st, const store::ModelName& name);
void finish_pull(store::Store& st, const std::vector<std::string>& previous,
                 const ProgressFn& progress);

}  // namespace hearth::registry
