#include "registry/header.h"

#include <algorithm>
#include <filesystem>

#include "store/model.h"

namespace hearth::registry {

Result<RemoteHeader> fetch_header(Client& client, const Endpoint& ep, const store::Manifest& m) {
  const store::Layer* model = m.find(store::kMediaModel);
  if (!model)
    return invalid_argument("the manifest of " + ep.name.display() + " has no model layer");
  RemoteHeader h;
  h.digest = model->digest;
  h.size = model->size;
  // Most headers fit in 4 MiB (a 150k-token vocabulary is ~3 MiB); larger ones are read again
  // with a range four times as long, up to 256 MiB (no real header comes close).
  for (int64_t want = int64_t(4) << 20;; want *= 4) {
    const int64_t n = std::min(want, h.size);
    HEARTH_ASSIGN_OR_RETURN(Reply r, client.request("GET", ep.blob_url(model->digest),
                                                    {"Range: bytes=0-" + std::to_string(n - 1)}));
    if (r.status != 206 && r.status != 200)
      return Status(
          StatusCode::kUnavailable,
          "reading the model's header: HTTP " + std::to_string(r.status) + " for " + model->digest);
    // A server that ignores Range sends the whole blob (200); take the prefix asked for.
    if (int64_t(r.body.size()) > n) r.body.resize(size_t(n));
    auto bytes = std::make_shared<std::vector<uint8_t>>(r.body.begin(), r.body.end());
    auto f = gguf::GgufFile::parse_header(bytes->data(), bytes->size(), uint64_t(h.size),
                                          ep.name.display());
    if (f) {
      h.bytes = bytes;
      h.header = *f;
      return h;
    }
    if (n >= h.size || want >= (int64_t(256) << 20) || int64_t(bytes->size()) < n)
      return Status(f.status().code(), "reading the model's header: " + f.status().message());
  }
}

Result<RemoteHeader> fetch_header(std::string_view name, bool insecure) {
  HEARTH_ASSIGN_OR_RETURN(Endpoint ep, Endpoint::parse(name, insecure));
  Client client(ep);
  HEARTH_ASSIGN_OR_RETURN(
      Reply r,
      client.request("GET", ep.manifest_url(), {std::string("Accept: ") + store::kMediaManifest}));
  if (r.status == 404)
    return Status(StatusCode::kNotFound, "model \"" + ep.name.display() + "\" not found");
  if (r.status != 200)
    return Status(StatusCode::kUnavailable,
                  "model manifest: " + std::to_string(r.status) + ": " + r.body.substr(0, 512));
  HEARTH_ASSIGN_OR_RETURN(store::Manifest m, store::Manifest::parse(r.body));
  return fetch_header(client, ep, m);
}

}  // namespace hearth::registry

namespace hearth::registry {

Result<ModelHeader> open_model_header(const store::Store& st, std::string_view name,
                                      bool insecure) {
  ModelHeader h;
  h.name = std::string(name);
  std::error_code ec;
  const bool is_path = name.find(".gguf") != std::string_view::npos || name.rfind("/", 0) == 0 ||
                       name.rfind("./", 0) == 0;
  if (is_path && std::filesystem::is_regular_file(std::string(name), ec)) {
    HEARTH_ASSIGN_OR_RETURN(h.file, gguf::GgufFile::open(std::string(name)));
    h.source = "file";
    h.size = int64_t(h.file->file_size());
    return h;
  }
  if (auto n = store::ModelName::parse(name); n && st.exists(*n)) {
    HEARTH_ASSIGN_OR_RETURN(store::ModelRecord rec, store::resolve_model(st, *n));
    HEARTH_ASSIGN_OR_RETURN(h.file, gguf::GgufFile::open(rec.model_path));
    h.source = "local";
    h.name = n->display();
    h.size = int64_t(h.file->file_size());
    return h;
  }
  HEARTH_ASSIGN_OR_RETURN(RemoteHeader r, fetch_header(name, insecure));
  h.file = r.header;
  h.keep = r.bytes;
  h.source = "registry";
  h.size = r.size;
  return h;
}

}  // namespace hearth::registry
