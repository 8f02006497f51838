// registry/hf.h — `hearth pull hf.co/<org>/<repo>[:<quant>]`: a GGUF model from a Hugging Face
// repository, named as Ollama names them (hf.co/... or huggingface.co/...).
//
// The name resolves client-side through the Hub's API: the repository's file list
// (GET <endpoint>/api/models/<org>/<repo>/tree/main?recursive=true, following its Link pages)
// gives every file's path, size and, for files stored with LFS, `lfs.oid` — the SHA-256 of its
// bytes. The GGUF is chosen by quant: `<quant>` matched case-insensitively in the file name,
// followed by '.' or '-' (as llama.cpp's -hf matches it); no tag (or `latest`) picks Q4_K_M, then
// Q8_0, then the first GGUF. mmproj files are never the model. A split model's parts
// (<prefix>-00001-of-0000N.gguf, ...) are gathered in order. Each file becomes the blob
// sha256-<oid>, fetched from <endpoint>/<org>/<repo>/resolve/main/<path> (redirects to storage
// followed) through the registry pull's machinery (registry/pull.h: parallel ranged parts hashed
// while they arrive, resumable, nothing unverified entering the store). hearth then writes the
// manifest itself — the model layer(s) and a config blob, under manifests/hf.co/<org>/<repo>/<tag>
// — last and atomically. The chat template comes from the GGUF.
//
// Environment: HF_ENDPOINT (default https://huggingface.co), HF_TOKEN (a bearer token, sent only
// to the endpoint's host, never to a storage host a download is redirected to).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "registry/pull.h"
#include "store/name.h"
#include "store/store.h"

namespace hearth::registry {

// hf.co or huggingface.co (any case, any port-less form Ollama accepts).
bool is_hf_host(std::string_view host);

// One file of a repository as the tree API lists it. `sha256` is lfs.oid ("" for a file not
// stored with LFS: its oid is a git blob hash, which cannot verify the bytes).
struct HfFile {
  std::string path, sha256;
  int64_t size = 0;
};

// Parses one page of the tree API's JSON (an array of {"type","path","size","oid","lfs":{...}}).
// Directories are skipped.
Result<std::vector<HfFile>> parse_hf_tree(std::string_view json);

// The GGUF file(s) `tag` names among `files`, in order (one, or every part of a split model).
// `repo` ("hf.co/org/repo") is for messages. NotFound, listing the quants there are, when none
// matches.
Result<std::vector<HfFile>> choose_hf_gguf(const std::vector<HfFile>& files, std::string_view tag,
                                           const std::string& repo);

// The quant a GGUF file name carries ("Llama-3.2-1B-Q4_K_M.gguf" -> "Q4_K_M"), upper-cased.
std::string hf_quant_label(std::string_view path);

// $HF_ENDPOINT without a trailing '/', or https://huggingface.co.
std::string hf_endpoint();

// Pulls the Hugging Face model `name` (host hf.co or huggingface.co) into `store`, reporting
// progress as pull() does.
Status pull_hf(store::Store& store, const store::ModelName& name, const ProgressFn& progress);

}  // namespace hearth::registry
