#include "store/create.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>

#include "base/json_depth.h"
#include "base/thread_pool.h"
#include "gguf/lora_format.h"
#include "quant/types.h"
#include "quantize/quantize.h"

namespace hearth::store {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

// Go's %q for the parameters text: double-quoted with escapes.
std::string go_quote(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        o += "\\\"";
        break;
      case '\\':
        o += "\\\\";
        break;
      case '\n':
        o += "\\n";
        break;
      case '\t':
        o += "\\t";
        break;
      case '\r':
        o += "\\r";
        break;
      default:
        if (c < 0x20) {
          char b[8];
          std::snprintf(b, sizeof b, "\\x%02x", c);
          o += b;
        } else {
          o += char(c);
        }
    }
  }
  return o + "\"";
}

}  // namespace

std::string human_parameter_count(int64_t n) {
  char b[32];
  if (n >= 1000000000) {
    std::snprintf(b, sizeof b, "%.1fB", double(n) / 1e9);
  } else if (n >= 1000000) {
    std::snprintf(b, sizeof b, "%.0fM", double(n) / 1e6);
  } else if (n >= 1000) {
    std::snprintf(b, sizeof b, "%.0fK", double(n) / 1e3);
  } else {
    std::snprintf(b, sizeof b, "%lld", (long long)n);
  }
  return b;
}

std::string file_type_name(int64_t ft) {
  for (const auto& i : quantize::ftypes())
    if (int64_t(i.ftype) == ft) return i.name;
  return "";
}

ojson model_config(const ModelDetails& det) {
  return {{"model_format", "gguf"},
          {"model_family", det.family},
          {"model_families", det.families},
          {"model_type", det.parameter_size},
          {"file_type", det.quantization_level},
          {"architecture", "amd64"},
          {"os", "linux"}};
}

ModelDetails model_details(const gguf::GgufFile& f) {
  ModelDetails d;
  auto arch = f.get_string("general.architecture");
  d.family = arch.is_ok() ? *arch : "";
  if (!d.family.empty()) d.families = {d.family};
  for (const auto& t : f.tensors()) d.parameter_count += t.n_elements;
  d.parameter_size = human_parameter_count(d.parameter_count);
  auto ft = f.get_int_or("general.file_type", -1);
  if (ft.is_ok() && *ft >= 0) d.quantization_level = file_type_name(*ft);
  if (d.quantization_level.empty()) {
    // No file type: name it after the most common matrix type.
    std::map<std::string, int> count;
    for (const auto& t : f.tensors())
      if (t.shape.size() == 2)
        if (const TypeTraits* tt = find_type(uint32_t(t.type))) {
          std::string n = tt->name;
          for (auto& c : n) c = char(std::toupper(uint8_t(c)));
          count[n]++;
        }
    int best = 0;
    for (const auto& [k, n] : count)
      if (n > best) {
        best = n;
        d.quantization_level = k;
      }
  }
  auto ctx = f.get_int_or(d.family + ".context_length", 0);
  d.context_length = ctx.is_ok() ? *ctx : 0;
  auto emb = f.get_int_or(d.family + ".embedding_length", 0);
  d.embedding_length = emb.is_ok() ? *emb : 0;
  return d;
}

namespace {
ojson meta_to_json(const gguf::GgufFile& f, const std::string& key, const gguf::MetaValue& v,
                   bool verbose) {
  using VT = gguf::ValueType;
  switch (v.type) {
    case VT::STRING:
      return std::string(v.s);
    case VT::BOOL:
      return v.i != 0;
    case VT::F32:
    case VT::F64:
      return v.f;
    case VT::U64:
      return v.u;
    case VT::ARRAY: {
      if (!verbose && v.count > 5) return nullptr;
      ojson a = ojson::array();
      if (v.elem_type == VT::STRING) {
        for (auto x : v.strs) a.push_back(std::string(x));
      } else if (v.elem_type == VT::F32 || v.elem_type == VT::F64) {
        if (auto r = f.get_float_array(key); r.is_ok())
          for (double x : *r) a.push_back(x);
      } else if (auto r = f.get_int_array(key); r.is_ok()) {
        for (int64_t x : *r) a.push_back(x);
      }
      return a;
    }
    default:
      return v.i;
  }
}
}  // namespace

ojson model_info(const gguf::GgufFile& f, bool verbose) {
  ojson j = ojson::object();
  for (const auto& e : f.metadata()) {
    if (e.key == "general.name" || e.key == "tokenizer.chat_template") continue;
    j[std::string(e.key)] = meta_to_json(f, std::string(e.key), e.value, verbose);
  }
  int64_t n = 0;
  for (const auto& t : f.tensors()) n += t.n_elements;
  if (!j.contains("general.parameter_count")) j["general.parameter_count"] = n;
  return j;
}

std::string parameters_text(const ojson& params) {
  std::string out;
  auto line = [&](const std::string& k, const std::string& v) {
    std::string key = k;
    if (key.size() < 30)
      key.resize(30, ' ');
    else
      key += ' ';
    out += key + v + "\n";
  };
  // Go prints float64 1.0 as "1" and 0.8 as "0.8".
  auto value = [](const ojson& x) {
    if (x.is_string()) return go_quote(x.get<std::string>());
    if (x.is_number_float()) {  // shortest of 15 or 17 digits that reads back exactly
      const double d = x.get<double>();
      char b[40];
      std::snprintf(b, sizeof b, "%.15g", d);
      if (std::strtod(b, nullptr) != d) std::snprintf(b, sizeof b, "%.17g", d);
      return std::string(b);
    }
    return x.dump();
  };
  for (const auto& [k, v] : params.items()) {
    if (v.is_array()) {
      for (const auto& x : v) line(k, value(x));
    } else {
      line(k, value(v));
    }
  }
  if (!out.empty()) out.pop_back();
  return out;
}

StoredDetails stored_model_details(const Store& s, const Manifest& m) {
  StoredDetails d;
  // The config: a small blob, read on every call (create and a pull write these fields).
  if (auto hex = digest_hex(m.config.digest); hex.is_ok()) {
    std::ifstream f(s.blob_path(*hex), std::ios::binary);
    std::string text;
    if (f) {
      text.resize(size_t(64) << 10);  // a config is a few hundred bytes
      f.read(text.data(), std::streamsize(text.size()));
      text.resize(size_t(f.gcount()));
    }
    auto c = parse_json_bounded<ojson>(text);
    if (c.is_object()) {
      auto str = [&](const char* k, std::string& out) {
        if (c.contains(k) && c[k].is_string() && !c[k].get<std::string>().empty())
          out = c[k].get<std::string>();
      };
      str("model_format", d.format);
      str("model_family", d.family);
      str("model_type", d.parameter_size);
      str("file_type", d.quantization_level);
      if (c.contains("model_families") && c["model_families"].is_array())
        for (const auto& x : c["model_families"])
          if (x.is_string()) d.families.push_back(x.get<std::string>());
    }
  }
  const bool complete =
      !d.family.empty() && !d.parameter_size.empty() && !d.quantization_level.empty();
  std::vector<std::string> parts;  // the model blob (a split model's parts, in order)
  for (const auto& l : m.layers)
    if (l.media_type == kMediaModel)
      if (auto hex = digest_hex(l.digest); hex.is_ok()) parts.push_back(*hex);
  if (!complete && !parts.empty()) {
    // The header's details, cached by the blobs' digests: content-addressed, so they never
    // change under a digest. Failures are not cached (a blob may arrive later).
    static std::mutex mu;
    static std::unordered_map<std::string, ModelDetails> cache;
    std::string key;
    for (const auto& p : parts) key += p;
    std::optional<ModelDetails> det;
    {
      std::lock_guard<std::mutex> lk(mu);
      if (auto it = cache.find(key); it != cache.end()) det = it->second;
    }
    std::error_code ec;
    if (!fs::is_regular_file(s.blob_path(parts[0]), ec)) {
      det.reset();  // gone since: nothing to show
    } else if (!det) {
      try {
        const std::string first = s.blob_path(parts[0]);
        if (parts.size() > 1) {
          std::vector<std::string> paths;
          for (const auto& p : parts) paths.push_back(s.blob_path(p));
          gguf::GgufFile::set_split_parts(first, paths);
        }
        if (auto g = gguf::GgufFile::open(first); g.is_ok()) {
          det = model_details(**g);
          std::lock_guard<std::mutex> lk(mu);
          if (cache.size() >= 4096) cache.clear();  // stale digests of deleted models
          cache.emplace(key, *det);
        }
      } catch (const std::exception&) {
        // an unreadable blob: the config's details only
      }
    }
    if (det) {
      if (d.family.empty()) d.family = det->family;
      if (d.parameter_size.empty()) d.parameter_size = det->parameter_size;
      if (d.quantization_level.empty()) d.quantization_level = det->quantization_level;
    }
  }
  if (d.families.empty() && !d.family.empty()) d.families = {d.family};
  return d;
}

namespace {

// `pin` keeps every blob this creation uses from collection until it is done; `added` lists the
// blobs it wrote, removed again if it fails.
Status create_pinned(Store& s, const ModelName& name, const CreateSpec& spec,
                     const StatusFn& status, Pin& pin, std::vector<std::string>& added) {
  auto say = [&](const std::string& m) {
    if (status) status(m);
  };
  std::vector<Layer> layers;
  std::optional<Layer> model_layer, draft_layer;
  std::vector<Layer> adapter_layers;
  std::vector<Layer> more_parts;  // a split model's parts after the first
  std::optional<std::string> tmpl, system, parser, renderer;
  ojson params = ojson::object(), messages = ojson::array();
  std::vector<std::string> licenses;
  if (spec.from_model) {
    auto base = resolve_model(s, *spec.from_model);
    if (!base) return base.status();
    for (const auto& l : base->manifest.layers)
      if (l.media_type == kMediaModel) {
        if (model_layer)
          more_parts.push_back(l);
        else
          model_layer = l;
        pin.add(l.digest);
      } else if (l.media_type == kMediaDraft) {
        draft_layer = l;
        pin.add(l.digest);
      } else if (l.media_type == kMediaAdapter) {
        adapter_layers.push_back(l);
        pin.add(l.digest);
      }
    tmpl = base->template_text;
    system = base->system;
    parser = base->parser;
    renderer = base->renderer;
    params = base->params;
    messages = base->messages;
    licenses = base->licenses;
  }
  if (spec.gguf_blob) {
    if (!s.has_blob(*spec.gguf_blob))
      return not_found("blob " + *spec.gguf_blob + " not found; upload it with POST /api/blobs");
    HEARTH_ASSIGN_OR_RETURN(std::string hex, digest_hex(*spec.gguf_blob));
    pin.add("sha256:" + hex);
    if (!s.has_blob(*spec.gguf_blob))  // collected between the check and the pin
      return not_found("blob " + *spec.gguf_blob + " not found; upload it with POST /api/blobs");
    model_layer = Layer{kMediaModel, "sha256:" + hex, 0, ""};
    std::vector<std::string> blob_paths{s.blob_path(hex)};
    for (const std::string& more : spec.gguf_more_blobs) {
      HEARTH_ASSIGN_OR_RETURN(std::string mh, digest_hex(more));
      pin.add("sha256:" + mh);
      if (!s.has_blob("sha256:" + mh))
        return not_found("blob " + more + " not found; upload it with POST /api/blobs");
      more_parts.push_back(Layer{kMediaModel, "sha256:" + mh, 0, ""});
      blob_paths.push_back(s.blob_path(mh));
    }
    if (blob_paths.size() > 1) gguf::GgufFile::set_split_parts(blob_paths[0], blob_paths);
  } else if (spec.gguf_path) {
    // A file on the server's machine: only a GGUF that parses, checked before anything is
    // copied, and one answer for every way that fails (missing, unreadable, not a GGUF), so
    // the API tells a caller nothing else about the server's files.
    const Status refused =
        invalid_argument("'" + *spec.gguf_path + "' is not a GGUF model file the server can read");
    std::error_code ec;
    if (!fs::is_regular_file(*spec.gguf_path, ec)) return refused;
    if (!gguf::GgufFile::open(*spec.gguf_path).is_ok()) return refused;
    // A split model's first part (opened whole just now): every part, in order, each a layer.
    std::vector<std::string> files = gguf::GgufFile::split_paths_by_name(*spec.gguf_path);
    {  // (the mapping is released before the copy)
      auto whole = gguf::GgufFile::open(*spec.gguf_path);
      if (!whole || (*whole)->split_count() == 1) files = {*spec.gguf_path};
    }
    say("copying file");
    std::vector<std::string> blob_paths;
    for (const std::string& f : files) {
      auto d = s.add_blob_from_file(f, {}, &pin, "GGUF");
      if (!d) return d.status().code() == StatusCode::kNoSpace ? d.status() : refused;
      added.push_back(*d);
      const Layer part{kMediaModel, *d, 0, ""};
      if (model_layer)
        more_parts.push_back(part);
      else
        model_layer = part;
      HEARTH_ASSIGN_OR_RETURN(std::string hex, digest_hex(*d));
      blob_paths.push_back(s.blob_path(hex));
    }
    if (blob_paths.size() > 1) gguf::GgufFile::set_split_parts(blob_paths[0], blob_paths);
  }
  if (!model_layer) return invalid_argument("neither 'from' nor 'files' was specified");
  HEARTH_ASSIGN_OR_RETURN(std::string mhex, digest_hex(model_layer->digest));
  std::string mpath = s.blob_path(mhex);
  say("parsing GGUF");
  auto g = gguf::GgufFile::open(mpath);
  if (!g) return invalid_argument(g.status().message());

  if (!spec.quantize.empty()) {
    const quantize::FTypeInfo* ft =
        quantize::find_ftype(spec.quantize == "q4_K" ? "q4_K_M" : spec.quantize);
    if (!ft)
      return invalid_argument("unsupported quantization type " + spec.quantize +
                              " - supported types are " + quantize::ftype_names());
    const std::string from = model_details(**g).quantization_level;
    if (from != "F16" && from != "BF16" && from != "F32")
      return invalid_argument("quantization is only supported for F16, BF16 and F32 models");
    say(std::string("quantizing ") + from + " model to " + ft->name);
    const std::string tmp =
        s.root() + "/blobs/.quantize-" + std::to_string(::getpid()) + "-" + mhex.substr(0, 12);
    ThreadPool pool(int(std::max(1u, std::thread::hardware_concurrency())));
    quantize::QuantizeOptions qo;
    qo.ftype = ft->ftype;
    g->reset();  // drop the mapping before writing
    Status qs = quantize::quantize_file(mpath, tmp, qo, pool);
    if (!qs) {
      ::unlink(tmp.c_str());
      return qs;
    }
    auto d = s.add_blob_from_file(tmp, {}, &pin);
    ::unlink(tmp.c_str());
    if (!d) return d.status();
    added.push_back(*d);
    model_layer = Layer{kMediaModel, *d, 0, ""};
    more_parts.clear();  // a split model quantizes into one file
    HEARTH_ASSIGN_OR_RETURN(mhex, digest_hex(*d));
    mpath = s.blob_path(mhex);
    g = gguf::GgufFile::open(mpath);
    if (!g) return g.status();
  }
  model_layer->size = int64_t(fs::file_size(mpath));
  const ModelDetails det = model_details(**g);
  say("using existing layer " + model_layer->digest);
  layers.push_back(*model_layer);
  for (Layer& l : more_parts) {
    HEARTH_ASSIGN_OR_RETURN(std::string hex, digest_hex(l.digest));
    l.size = int64_t(fs::file_size(s.blob_path(hex)));
    say("using existing layer " + l.digest);
    layers.push_back(l);
  }

  // The draft model: one GGUF that parses, with the model's vocabulary size (checked again when
  // both are loaded).
  if (spec.draft_blob || spec.draft_path) {
    const Status refused = invalid_argument("DRAFT: not a GGUF model file the server can read");
    std::string d;
    if (spec.draft_blob) {
      HEARTH_ASSIGN_OR_RETURN(std::string hex, digest_hex(*spec.draft_blob));
      d = "sha256:" + hex;
      pin.add(d);
      if (!s.has_blob(d))
        return not_found("blob " + *spec.draft_blob + " not found; upload it with POST /api/blobs");
    } else {
      std::error_code ec;
      if (!fs::is_regular_file(*spec.draft_path, ec) ||
          !gguf::GgufFile::open(*spec.draft_path).is_ok())
        return refused;
      auto a = s.add_blob_from_file(*spec.draft_path, {}, &pin, "GGUF");
      if (!a) return a.status().code() == StatusCode::kNoSpace ? a.status() : refused;
      added.push_back(*a);
      d = *a;
    }
    if (d == model_layer->digest) return invalid_argument("DRAFT must differ from FROM");
    HEARTH_ASSIGN_OR_RETURN(std::string dhex, digest_hex(d));
    auto dg = gguf::GgufFile::open(s.blob_path(dhex));
    if (!dg) return refused;
    auto vocab = [](const gguf::GgufFile& f) -> int64_t {
      const auto* v = f.find("tokenizer.ggml.tokens");
      return v ? int64_t(v->count) : -1;
    };
    if (vocab(**dg) != vocab(**g))
      return invalid_argument("DRAFT: the draft model's vocabulary (" +
                              std::to_string(vocab(**dg)) + " tokens) differs from the model's (" +
                              std::to_string(vocab(**g)) + ")");
    draft_layer = Layer{kMediaDraft, d, int64_t(fs::file_size(s.blob_path(dhex))), ""};
  }
  if (draft_layer) {
    say("using existing layer " + draft_layer->digest);
    layers.push_back(*draft_layer);
  }

  // LoRA adapters: each checked against the model (keys, architecture, every pair's shapes).
  if (spec.adapters) {
    adapter_layers.clear();
    for (const CreateSpec::Adapter& a : *spec.adapters) {
      std::string d;
      if (a.blob) {
        HEARTH_ASSIGN_OR_RETURN(std::string hex, digest_hex(*a.blob));
        d = "sha256:" + hex;
        pin.add(d);
        if (!s.has_blob(d))
          return not_found("blob " + *a.blob + " not found; upload it with POST /api/blobs");
      } else if (a.path) {
        std::error_code ec;
        if (!fs::is_regular_file(*a.path, ec))
          return invalid_argument("ADAPTER: " + *a.path + " is not a file");
        auto added_blob = s.add_blob_from_file(*a.path, {}, &pin, "GGUF");
        if (!added_blob) return added_blob.status();
        added.push_back(*added_blob);
        d = *added_blob;
      } else {
        return invalid_argument("ADAPTER: no file given");
      }
      HEARTH_ASSIGN_OR_RETURN(std::string ahex, digest_hex(d));
      auto ag = gguf::GgufFile::open(s.blob_path(ahex), gguf::Layout::kRaw);
      if (!ag) return invalid_argument("ADAPTER: not a GGUF file: " + ag.status().message());
      if (auto chk = lora::check_lora_file(**ag, **g); !chk)
        return invalid_argument("ADAPTER: " + chk.status().message());
      Layer l{kMediaAdapter, d, int64_t(fs::file_size(s.blob_path(ahex))), ""};
      l.scale = a.scale;
      adapter_layers.push_back(l);
    }
  }
  for (const Layer& l : adapter_layers) {
    say("using existing layer " + l.digest);
    layers.push_back(l);
  }

  if (spec.template_text) tmpl = spec.template_text;
  if (spec.system) system = spec.system;
  if (spec.parser) parser = spec.parser;
  if (spec.renderer) renderer = spec.renderer;
  if (spec.params)
    for (const auto& [k, v] : spec.params->items()) params[k] = v;
  if (spec.messages) messages = *spec.messages;
  if (spec.licenses) licenses = *spec.licenses;

  auto add_text = [&](const char* media, const std::string& text) -> Status {
    HEARTH_ASSIGN_OR_RETURN(std::string d, s.add_blob(text, {}, &pin));
    say("creating new layer " + d);
    layers.push_back(Layer{media, d, int64_t(text.size()), ""});
    return Status::ok();
  };
  if (tmpl) HEARTH_RETURN_IF_ERROR(add_text(kMediaTemplate, *tmpl));
  if (system) HEARTH_RETURN_IF_ERROR(add_text(kMediaSystem, *system));
  if (!params.empty()) HEARTH_RETURN_IF_ERROR(add_text(kMediaParams, params.dump()));
  if (!messages.empty()) HEARTH_RETURN_IF_ERROR(add_text(kMediaMessages, messages.dump()));
  for (const auto& l : licenses) HEARTH_RETURN_IF_ERROR(add_text(kMediaLicense, l));

  ojson config = model_config(det);
  if (renderer) config["renderer"] = *renderer;
  if (parser) config["parser"] = *parser;
  // The family comes from the file's general.architecture, which may be any bytes.
  const std::string cfg = config.dump(-1, ' ', false, ojson::error_handler_t::replace);
  HEARTH_ASSIGN_OR_RETURN(std::string cd, s.add_blob(cfg, {}, &pin));
  Manifest m;
  m.config = Layer{kMediaConfig, cd, int64_t(cfg.size()), ""};
  m.layers = std::move(layers);

  // Replacing a model: its old layers that nothing else uses go after the new manifest is in.
  std::optional<Manifest> old;
  if (auto om = s.read_manifest(name); om.is_ok()) old = *om;
  say("writing manifest");
  HEARTH_RETURN_IF_ERROR(s.write_manifest(name, m));
  if (old) {
    std::set<std::string> digests{old->config.digest};
    for (const auto& l : old->layers) digests.insert(l.digest);
    HEARTH_RETURN_IF_ERROR(s.prune(std::vector<std::string>(digests.begin(), digests.end())));
  }
  say("success");
  return Status::ok();
}

}  // namespace

Status create_model(Store& s, const ModelName& name, const CreateSpec& spec,
                    const StatusFn& status) {
  std::vector<std::string> added;
  Status st;
  {
    Pin pin(s);
    st = create_pinned(s, name, spec, status, pin, added);
  }
  if (!st.is_ok() && !added.empty()) (void)s.prune(added);  // nothing of a failed create stays
  return st;
}

}  // namespace hearth::store
