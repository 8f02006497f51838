#include "store/model.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "base/json_depth.h"
#include "gguf/gguf.h"

namespace hearth::store {
namespace {

Result<std::string> slurp(const std::string& path, size_t limit) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return not_found("cannot read " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  if (s.size() > limit)
    return corrupt(path + " is larger than " + std::to_string(limit) + " bytes");
  return s;
}

}  // namespace

Result<ModelRecord> resolve_model(const Store& s, const ModelName& n) {
  const std::string mpath = s.manifest_path(n);
  auto bytes = slurp(mpath, size_t(16) << 20);
  if (!bytes) return Status(StatusCode::kNotFound, "model '" + n.display() + "' not found");
  auto m = Manifest::parse(*bytes);
  if (!m) return corrupt("model '" + n.display() + "': " + m.status().message());
  ModelRecord r;
  r.name = s.canonical(n);  // as stored: what /api/ps and responses show
  r.manifest = *m;
  Sha256 h;
  h.update(bytes->data(), bytes->size());
  r.digest = h.hex();
  r.size = m->config.size;
  struct stat st {};
  if (::stat(mpath.c_str(), &st) == 0) r.modified_unix = st.st_mtime;
  auto layer_text = [&](const Layer& l) -> Result<std::string> {
    HEARTH_ASSIGN_OR_RETURN(std::string hex, digest_hex(l.digest));
    auto t = slurp(s.blob_path(hex), size_t(64) << 20);
    if (!t)
      return corrupt("model '" + n.display() + "': layer " + l.digest + " (" + l.media_type +
                     ") is missing");
    return t;
  };
  // The config carries PARSER / RENDERER (Ollama's fields); older configs have neither.
  if (auto c = layer_text(m->config); c.is_ok()) {
    auto j = parse_json_bounded<nlohmann::ordered_json>(*c);
    if (j.is_object()) {
      if (j.contains("parser") && j["parser"].is_string())
        r.parser = j["parser"].get<std::string>();
      if (j.contains("renderer") && j["renderer"].is_string())
        r.renderer = j["renderer"].get<std::string>();
    }
  }
  for (const Layer& l : m->layers) {
    r.size += l.size;
    const std::string& mt = l.media_type;
    if (mt == kMediaModel) {
      HEARTH_ASSIGN_OR_RETURN(std::string hex, digest_hex(l.digest));
      r.model_parts.push_back(s.blob_path(hex));
      if (!s.has_blob(l.digest))
        return corrupt("model '" + n.display() + "': model blob " + l.digest + " is missing");
    } else if (mt == kMediaDraft) {
      HEARTH_ASSIGN_OR_RETURN(std::string hex, digest_hex(l.digest));
      if (!s.has_blob(l.digest))
        return corrupt("model '" + n.display() + "': draft blob " + l.digest + " is missing");
      r.draft_path = s.blob_path(hex);
    } else if (mt == kMediaAdapter) {
      HEARTH_ASSIGN_OR_RETURN(std::string hex, digest_hex(l.digest));
      if (!s.has_blob(l.digest))
        return corrupt("model '" + n.display() + "': adapter blob " + l.digest + " is missing");
      r.adapters.push_back({s.blob_path(hex), l.digest, l.scale});
    } else if (mt == kMediaTemplate) {
      HEARTH_ASSIGN_OR_RETURN(r.template_text, layer_text(l));
    } else if (mt == kMediaSystem) {
      HEARTH_ASSIGN_OR_RETURN(r.system, layer_text(l));
    } else if (mt == kMediaLicense) {
      HEARTH_ASSIGN_OR_RETURN(std::string t, layer_text(l));
      r.licenses.push_back(std::move(t));
    } else if (mt == kMediaParams || mt == kMediaMessages) {
      HEARTH_ASSIGN_OR_RETURN(std::string t, layer_text(l));
      auto j = parse_json_bounded<nlohmann::ordered_json>(t);
      const bool ok = mt == kMediaParams ? j.is_object() : j.is_array();
      if (!ok) return corrupt("model '" + n.display() + "': malformed " + mt + " layer");
      (mt == kMediaParams ? r.params : r.messages) = std::move(j);
    }
  }
  if (!r.model_parts.empty()) r.model_path = r.model_parts.front();
  // A split model (several model layers, in order): opening the first part maps them all.
  if (r.model_parts.size() > 1) gguf::GgufFile::set_split_parts(r.model_path, r.model_parts);
  if (r.model_path.empty())
    return corrupt("model '" + n.display() + "' has no model layer (" + kMediaModel + ")");
  return r;
}

}  // namespace hearth::store
