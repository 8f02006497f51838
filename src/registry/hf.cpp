#include "registry/hf.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "base/json_depth.h"
#include "gguf/gguf.h"
#include "registry/client.h"
#include "store/create.h"

namespace hearth::registry {
namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = char(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

std::string upper(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = char(std::toupper(static_cast<unsigned char>(c)));
  return r;
}

std::string_view basename(std::string_view p) {
  const size_t s = p.rfind('/');
  return s == std::string_view::npos ? p : p.substr(s + 1);
}

bool ends_with_ci(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && lower(s.substr(s.size() - suffix.size())) == suffix;
}

// A split part's name: <prefix>-NNNNN-of-MMMMM.gguf. Sets the part number (1-based), the count
// and the prefix (the path before "-NNNNN").
bool split_part(std::string_view path, int* no, int* count, std::string* prefix) {
  if (!ends_with_ci(path, ".gguf")) return false;
  std::string_view stem = path.substr(0, path.size() - 5);
  // -NNNNN-of-MMMMM is 15 characters
  if (stem.size() < 16) return false;
  std::string_view tail = stem.substr(stem.size() - 15);
  const auto digits = [](std::string_view d) {
    return std::all_of(d.begin(), d.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (tail[0] != '-' || tail.substr(6, 4) != "-of-" || !digits(tail.substr(1, 5)) ||
      !digits(tail.substr(10, 5)))
    return false;
  *no = std::atoi(std::string(tail.substr(1, 5)).c_str());
  *count = std::atoi(std::string(tail.substr(10, 5)).c_str());
  *prefix = std::string(stem.substr(0, stem.size() - 15));
  return *no >= 1 && *count >= 1 && *no <= *count;
}

bool is_mmproj(std::string_view path) {
  return lower(basename(path)).find("mmproj") != std::string::npos;
}

// llama.cpp's rule: the quant, any case, followed by '.' or '-' — and here also not glued to a
// letter or digit before it (so "Q4_0" does not pick "IQ4_0").
bool matches_quant(std::string_view path, std::string_view quant) {
  const std::string name = lower(basename(path)), q = lower(quant);
  if (q.empty()) return false;
  for (size_t i = name.find(q); i != std::string::npos; i = name.find(q, i + 1)) {
    const size_t end = i + q.size();
    const bool before = i == 0 || !std::isalnum(static_cast<unsigned char>(name[i - 1]));
    const bool after = end < name.size() && (name[end] == '.' || name[end] == '-');
    if (before && after) return true;
  }
  return false;
}

// Percent-encodes a repository path, keeping its '/'s.
std::string escape_path(std::string_view p) {
  std::string out;
  for (unsigned char c : p) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += char(c);
    } else {
      char b[4];
      std::snprintf(b, sizeof b, "%%%02X", c);
      out += b;
    }
  }
  return out;
}

// The rel="next" URL of a Link header ("" if none).
std::string next_link(const std::string& link) {
  size_t pos = 0;
  while (pos < link.size()) {
    const size_t lt = link.find('<', pos);
    if (lt == std::string::npos) break;
    const size_t gt = link.find('>', lt);
    if (gt == std::string::npos) break;
    const size_t end = link.find(',', gt);
    const std::string params = link.substr(gt + 1, end == std::string::npos ? end : end - gt - 1);
    if (params.find("rel=\"next\"") != std::string::npos ||
        params.find("rel=next") != std::string::npos)
      return link.substr(lt + 1, gt - lt - 1);
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return "";
}

}  // namespace

bool is_hf_host(std::string_view host) {
  const std::string h = lower(host);
  return h == "hf.co" || h == "huggingface.co" || h == "www.huggingface.co";
}

std::string hf_endpoint() {
  std::string e = "https://huggingface.co";
  if (const char* v = std::getenv("HF_ENDPOINT"); v && *v) e = v;
  while (!e.empty() && e.back() == '/') e.pop_back();
  return e;
}

std::string hf_quant_label(std::string_view path) {
  std::string_view name = basename(path);
  if (ends_with_ci(name, ".gguf")) name = name.substr(0, name.size() - 5);
  int no = 0, count = 0;
  std::string prefix;
  std::string withext = std::string(name) + ".gguf";
  if (split_part(withext, &no, &count, &prefix)) name = name.substr(0, prefix.size());
  const size_t cut = name.find_last_of("-.");
  return upper(cut == std::string_view::npos ? name : name.substr(cut + 1));
}

Result<std::vector<HfFile>> parse_hf_tree(std::string_view json) {
  auto j = parse_json_bounded<nlohmann::json>(json);
  if (!j.is_array()) return corrupt("Hugging Face file list: not a JSON array");
  std::vector<HfFile> out;
  for (const auto& e : j) {
    if (!e.is_object() || !e.contains("path") || !e["path"].is_string()) continue;
    if (e.value("type", "file") != "file") continue;
    HfFile f;
    f.path = e["path"].get<std::string>();
    if (e.contains("size") && e["size"].is_number_integer()) f.size = e["size"].get<int64_t>();
    if (e.contains("lfs") && e["lfs"].is_object()) {
      const auto& l = e["lfs"];
      if (l.contains("oid") && l["oid"].is_string()) f.sha256 = lower(l["oid"].get<std::string>());
      if (l.contains("size") && l["size"].is_number_integer()) f.size = l["size"].get<int64_t>();
    }
    if (f.size < 0) return corrupt("Hugging Face file list: negative size for " + f.path);
    out.push_back(std::move(f));
  }
  return out;
}

Result<std::vector<HfFile>> choose_hf_gguf(const std::vector<HfFile>& files, std::string_view tag,
                                           const std::string& repo) {
  std::vector<const HfFile*> ggufs;
  for (const auto& f : files)
    if (ends_with_ci(f.path, ".gguf") && !is_mmproj(f.path)) ggufs.push_back(&f);
  std::sort(ggufs.begin(), ggufs.end(),
            [](const HfFile* a, const HfFile* b) { return a->path < b->path; });
  if (ggufs.empty()) return not_found(repo + " has no GGUF model files");
  // Of the files a rule picks, the first whole file or first part of a split model.
  const auto first_of = [&](auto pred) -> const HfFile* {
    for (const HfFile* f : ggufs) {
      int no = 0, count = 0;
      std::string prefix;
      if (pred(*f) && (!split_part(f->path, &no, &count, &prefix) || no == 1)) return f;
    }
    return nullptr;
  };
  const HfFile* pick = nullptr;
  const std::string t(tag);
  if (t.empty() || t == store::kDefaultTag) {
    for (const char* q : {"Q4_K_M", "Q8_0"})
      if (!pick) pick = first_of([&](const HfFile& f) { return matches_quant(f.path, q); });
    if (!pick) pick = first_of([](const HfFile&) { return true; });
  } else {
    pick = first_of([&](const HfFile& f) { return matches_quant(f.path, t); });
  }
  if (!pick) {
    std::set<std::string> quants;
    for (const HfFile* f : ggufs) quants.insert(hf_quant_label(f->path));
    std::string list;
    for (const auto& q : quants) list += (list.empty() ? "" : ", ") + q;
    return not_found("no GGUF file for quant '" + t + "' in " + repo + "; available: " + list);
  }
  int no = 0, count = 0;
  std::string prefix;
  if (!split_part(pick->path, &no, &count, &prefix)) return std::vector<HfFile>{*pick};
  std::vector<HfFile> parts;
  for (int i = 1; i <= count; ++i) {
    char b[32];
    std::snprintf(b, sizeof b, "-%05d-of-%05d.gguf", i, count);
    const std::string want = lower(prefix + b);
    const auto it = std::find_if(ggufs.begin(), ggufs.end(),
                                 [&](const HfFile* f) { return lower(f->path) == want; });
    if (it == ggufs.end())
      return not_found("split model " + pick->path + " in " + repo + ": part " + std::to_string(i) +
                       " of " + std::to_string(count) + " (" + prefix + b +
                       ") is not in the repository");
    parts.push_back(**it);
  }
  return parts;
}

Status pull_hf(store::Store& st, const store::ModelName& name, const ProgressFn& progress) {
  const std::string repo_id = name.ns + "/" + name.model;
  const std::string repo = name.host + "/" + repo_id;
  const std::string base = hf_endpoint();
  if (base.rfind("http://", 0) != 0 && base.rfind("https://", 0) != 0)
    return invalid_argument("HF_ENDPOINT must be an http:// or https:// URL: " + base);
  Endpoint ep;
  ep.scheme = base.substr(0, base.find("://"));
  ep.name = name;
  ep.name.host = url_host(base);  // the host the token goes to
  Client client(ep);
  for (const char* var : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"})
    if (const char* tok = std::getenv(var); tok && *tok) {
      client.set_token(tok);
      break;
    }
  if (!progress({"pulling manifest", "", 0, 0}))
    return Status(StatusCode::kCancelled, "pull cancelled");

  // Every file of the repository, page by page.
  std::vector<HfFile> files;
  std::string url = base + "/api/models/" + repo_id + "/tree/main?recursive=true";
  for (int page = 0; !url.empty(); ++page) {
    if (page >= 200)
      return Status(StatusCode::kUnavailable, repo + ": file list has too many pages");
    HEARTH_ASSIGN_OR_RETURN(Reply r, client.request("GET", url, {"Accept: application/json"}));
    if (r.status == 401 || r.status == 403)
      return Status(StatusCode::kPermissionDenied,
                    "pull model manifest: " + repo + ": access denied (" +
                        std::to_string(r.status) +
                        "); a private or gated repository needs HF_TOKEN set for the server");
    if (r.status == 404)
      return Status(StatusCode::kNotFound, "pull model manifest: model \"" + name.display() +
                                               "\" not found (" + repo +
                                               " is not a Hugging Face model repository)");
    if (r.status != 200)
      return Status(StatusCode::kUnavailable, "pull model manifest: " + repo + ": " +
                                                  std::to_string(r.status) + ": " +
                                                  r.body.substr(0, 512));
    HEARTH_ASSIGN_OR_RETURN(std::vector<HfFile> more, parse_hf_tree(r.body));
    files.insert(files.end(), more.begin(), more.end());
    const auto link = r.headers.find("link");
    const std::string next = link == r.headers.end() ? "" : next_link(link->second);
    url = next.empty() ? "" : resolve_url(url, next);
  }
  HEARTH_ASSIGN_OR_RETURN(std::vector<HfFile> parts, choose_hf_gguf(files, name.tag, repo));
  std::vector<BlobSource> sources;
  for (const HfFile& f : parts) {
    if (f.sha256.size() != 64 ||
        f.sha256.find_first_not_of("0123456789abcdef") != std::string::npos)
      return Status(StatusCode::kCorrupt, repo + ": " + f.path +
                                              " has no LFS sha256 in the file list, so its bytes "
                                              "cannot be verified");
    BlobSource s;
    s.layer = store::Layer{store::kMediaModel, "sha256:" + f.sha256, f.size, ""};
    s.url = base + "/" + repo_id + "/resolve/main/" + escape_path(f.path);
    sources.push_back(std::move(s));
  }

  const std::vector<std::string> old = previous_blobs(st, name);
  std::vector<std::string> fetched;
  Status result = [&]() -> Status {
    store::Pin pin(st);
    HEARTH_RETURN_IF_ERROR(fetch_blobs(st, client, sources, pin, progress));
    for (const auto& s : sources) fetched.push_back(s.layer.digest);
    if (!progress({"verifying sha256 digest", "", 0, 0}))
      return Status(StatusCode::kCancelled, "pull cancelled");
    // The model must open (every part of a split one) before a manifest names it.
    std::vector<std::string> paths;
    for (const HfFile& f : parts) paths.push_back(st.blob_path(f.sha256));
    if (paths.size() > 1) gguf::GgufFile::set_split_parts(paths[0], paths);
    auto g = gguf::GgufFile::open(paths[0]);
    if (!g)
      return Status(StatusCode::kCorrupt,
                    repo + ": " + parts[0].path +
                        " is not a GGUF model hearth can read: " + g.status().message());
    const store::ModelDetails det = store::model_details(**g);
    nlohmann::ordered_json config = store::model_config(det);
    config["rootfs"] = {{"type", "layers"}, {"diff_ids", nlohmann::ordered_json::array()}};
    for (const auto& s : sources) config["rootfs"]["diff_ids"].push_back(s.layer.digest);
    const std::string cfg =
        config.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
    HEARTH_ASSIGN_OR_RETURN(std::string cd, st.add_blob(cfg, {}, &pin));
    store::Manifest m;
    m.config = store::Layer{store::kMediaConfig, cd, int64_t(cfg.size()), ""};
    for (const auto& s : sources) m.layers.push_back(s.layer);
    if (!progress({"writing manifest", "", 0, 0}))
      return Status(StatusCode::kCancelled, "pull cancelled");
    return st.write_manifest(name, m);
  }();
  if (!result.is_ok()) {
    // Verified blobs of a model that cannot be used: nothing else references them.
    if (result.code() != StatusCode::kCancelled && !fetched.empty()) (void)st.prune(fetched);
    return result;
  }
  finish_pull(st, old, progress);
  return Status::ok();
}

}  // namespace hearth::registry
