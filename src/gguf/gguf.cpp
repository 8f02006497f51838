#include "gguf/gguf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <unordered_set>

#include "gguf/ollama_compat.h"

namespace hearth::gguf {
namespace {

constexpr uint64_t kMaxDims = 4;
constexpr uint32_t kTypeCount = 13;

// Bytes of one element of a fixed-size value type; 0 for string/array/unknown.
size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::BOOL:
      return 1;
    case ValueType::U16:
    case ValueType::I16:
      return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
      return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
      return 8;
    default:
      return 0;
  }
}

// A cursor over the mapping that refuses to read past the end.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return n_ - pos_; }
  bool read(void* dst, size_t k) {
    if (k > remaining()) return false;
    std::memcpy(dst, p_ + pos_, k);
    pos_ += k;
    return true;
  }
  template <typename T>
  bool get(T& v) {
    return read(&v, sizeof v);
  }
  bool skip(size_t k) {
    if (k > remaining()) return false;
    pos_ += k;
    return true;
  }
  bool str(std::string_view& s) {
    uint64_t len;
    if (!get(len) || len > remaining()) return false;
    s = std::string_view(reinterpret_cast<const char*>(p_ + pos_), size_t(len));
    pos_ += size_t(len);
    return true;
  }
  const uint8_t* here() const { return p_ + pos_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
};

std::string q(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 120)) out += (c >= 32 && c < 127) ? c : '?';
  if (s.size() > 120) out += "...";
  return out + "'";
}

}  // namespace

const char* value_type_name(ValueType t) {
  static const char* const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                      "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = uint32_t(t);
  return i < kTypeCount ? names[i] : "unknown";
}

bool MetaValue::is_integer() const {
  switch (type) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::U16:
    case ValueType::I16:
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::BOOL:
      return true;
    default:
      return false;
  }
}
bool MetaValue::is_float() const {
  return type == ValueType::F32 || type == ValueType::F64;
}

namespace {

std::mutex split_mu;
std::map<std::string, std::vector<std::string>>& split_registry() {
  static auto* m = new std::map<std::string, std::vector<std::string>>();
  return *m;
}

// The integer value of a split.* key, -1 if absent or not an integer.
int64_t split_key(const GgufFile& g, std::string_view key) {
  const MetaValue* v = g.find(key);
  return v && v->is_integer() ? v->i : -1;
}

}  // namespace

void GgufFile::set_split_parts(const std::string& first, std::vector<std::string> parts) {
  std::lock_guard<std::mutex> l(split_mu);
  if (parts.empty())
    split_registry().erase(first);
  else
    split_registry()[first] = std::move(parts);
}

std::vector<std::string> GgufFile::split_paths_by_name(const std::string& first) {
  // <prefix>-00001-of-00003.gguf (llama.cpp's llama_split_path: "%s-%05d-of-%05d.gguf").
  constexpr std::string_view kExt = ".gguf";
  // (the shortest: a one-character prefix, then -NNNNN-of-MMMMM.gguf)
  if (first.size() < 1 + 15 + kExt.size() ||
      first.compare(first.size() - kExt.size(), kExt.size(), kExt) != 0)
    return {};
  const std::string stem = first.substr(0, first.size() - kExt.size());
  // stem ends with -NNNNN-of-MMMMM
  const size_t of = stem.rfind("-of-");
  if (of == std::string::npos || of < 6) return {};
  const std::string no = stem.substr(of - 5, 5), count = stem.substr(of + 4);
  const auto digits = [](const std::string& d) {
    return !d.empty() && d.find_first_not_of("0123456789") == std::string::npos;
  };
  if (stem[of - 6] != '-' || !digits(no) || !digits(count) || count.size() != 5) return {};
  if (std::stoi(no) != 1) return {};
  const int n = std::stoi(count);
  if (n < 1) return {};
  const std::string prefix = stem.substr(0, of - 6);
  std::vector<std::string> out;
  for (int i = 1; i <= n; ++i) {
    char b[32];
    std::snprintf(b, sizeof b, "-%05d-of-%05d.gguf", i, n);
    out.push_back(prefix + b);
  }
  return out;
}

Result<std::shared_ptr<GgufFile>> GgufFile::open(const std::string& path, Layout layout) {
  HEARTH_ASSIGN_OR_RETURN(auto g, open_one(path));
  const int64_t count = split_key(*g, "split.count");
  if (count > 1) HEARTH_RETURN_IF_ERROR(g->add_splits(path));
  // The layout is normalised once every part's tensors are in (ollama_compat.h).
  HEARTH_RETURN_IF_ERROR(g->finish(layout));
  return g;
}

// Maps the later parts of the split model whose first part this is, and serves their tensors.
Status GgufFile::add_splits(const std::string& path) {
  const int64_t count = split_key(*this, "split.count"), no = split_key(*this, "split.no");
  if (count > 9999) return corrupt("[gguf] split.count " + std::to_string(count) + " in " + path);
  if (no != 0)
    return invalid_argument(
        "[gguf] " + path + " is part " + std::to_string(no + 1) + " of " + std::to_string(count) +
        " of a split model: open its first part (-00001-of-" + std::to_string(count) + ")");
  std::vector<std::string> paths;
  {
    std::lock_guard<std::mutex> l(split_mu);
    auto it = split_registry().find(path);
    if (it != split_registry().end()) paths = it->second;
  }
  if (paths.empty()) paths = split_paths_by_name(path);
  if (paths.empty()) {
    char like[40];
    std::snprintf(like, sizeof like, "<prefix>-00001-of-%05d.gguf", int(count));
    return not_found("[gguf] " + path + " is the first of " + std::to_string(count) +
                     " parts of a split model, and the others cannot be found (name the parts " +
                     like + ", ...)");
  }
  if (int64_t(paths.size()) != count)
    return corrupt("[gguf] " + path + " says the model has " + std::to_string(count) +
                   " parts, but " + std::to_string(paths.size()) + " are known");
  for (int64_t i = 1; i < count; ++i) {
    const std::string& p = paths[size_t(i)];
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0)
      return not_found("[gguf] split model " + path + ": part " + std::to_string(i + 1) + " of " +
                       std::to_string(count) + " is missing (" + p + ")");
    HEARTH_ASSIGN_OR_RETURN(auto part, open_one(p));
    if (split_key(*part, "split.no") != i || split_key(*part, "split.count") != count)
      return corrupt("[gguf] split model " + path + ": " + p + " is not part " +
                     std::to_string(i + 1) + " of " + std::to_string(count) + " (it says part " +
                     std::to_string(split_key(*part, "split.no") + 1) + " of " +
                     std::to_string(split_key(*part, "split.count")) + ")");
    for (const TensorInfo& t : part->tensors_) {
      if (tensor_index_.count(t.name))
        return corrupt("[gguf] split model " + path + ": tensor '" + std::string(t.name) +
                       "' is in more than one part");
      tensor_index_.emplace(t.name, tensors_.size());
      tensors_.push_back(t);
    }
    parts_size_ += part->full_size_;
    parts_.push_back(std::move(part));
  }
  const int64_t want = split_key(*this, "split.tensors.count");
  if (want >= 0 && want != int64_t(tensors_.size()))
    return corrupt("[gguf] split model " + path + ": the parts hold " +
                   std::to_string(tensors_.size()) + " tensors, split.tensors.count says " +
                   std::to_string(want));
  return Status::ok();
}

Result<std::shared_ptr<GgufFile>> GgufFile::open_one(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(auto mf, MappedFile::open(path));
  auto g = std::shared_ptr<GgufFile>(new GgufFile());
  g->file_ = mf;
  g->base_ = mf->data();
  g->size_ = mf->size();
  g->full_size_ = mf->size();
  g->name_ = path;
  HEARTH_RETURN_IF_ERROR(g->parse_impl());
  return g;
}

Result<std::shared_ptr<GgufFile>> GgufFile::parse(const uint8_t* data, size_t size,
                                                  std::string name, Layout layout) {
  auto g = std::shared_ptr<GgufFile>(new GgufFile());
  g->base_ = data;
  g->size_ = size;
  g->full_size_ = size;
  g->name_ = std::move(name);
  HEARTH_RETURN_IF_ERROR(g->parse_impl());
  HEARTH_RETURN_IF_ERROR(g->finish(layout));
  return g;
}

Result<std::shared_ptr<GgufFile>> GgufFile::parse_header(const uint8_t* data, size_t size,
                                                         uint64_t file_size, std::string name) {
  auto g = std::shared_ptr<GgufFile>(new GgufFile());
  g->base_ = data;
  g->size_ = size_t(std::min<uint64_t>(size, file_size));
  g->full_size_ = file_size;
  g->header_only_ = true;
  g->name_ = std::move(name);
  HEARTH_RETURN_IF_ERROR(g->parse_impl());
  HEARTH_RETURN_IF_ERROR(g->finish(Layout::kNormalized));
  return g;
}

Status GgufFile::parse_impl() {
  const std::string where = " in " + name_;
  auto bad = [&](const std::string& m) { return corrupt("[gguf] " + m + where); };
  Reader r(base_, size_);
  char magic[4];
  if (!r.read(magic, 4))
    return bad("file is too short for a GGUF header (" + std::to_string(size_) + " bytes)");
  if (std::memcmp(magic, "GGUF", 4) != 0) return bad("bad magic: not a GGUF file");
  if (!r.get(version_)) return bad("truncated header");
  if (version_ == 1)
    return unsupported("[gguf] GGUF version 1 is not supported (only 2 and 3)" + where);
  if (version_ != 2 && version_ != 3)
    return unsupported("[gguf] unknown GGUF version " + std::to_string(version_) +
                       " (expected 2 or 3)" + where);
  uint64_t n_tensors, n_kv;
  if (!r.get(n_tensors) || !r.get(n_kv)) return bad("truncated header");
  // Every kv takes at least 8 (key len) + 4 (type) + 1 bytes; every tensor info at least 8+4+8+4+8.
  if (n_kv > r.remaining() / 13)
    return bad("metadata count " + std::to_string(n_kv) + " exceeds the file size");
  if (n_tensors > r.remaining() / 32)
    return bad("tensor count " + std::to_string(n_tensors) + " exceeds the file size");

  meta_.reserve(size_t(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    MetaEntry e;
    if (!r.str(e.key))
      return bad("metadata key " + std::to_string(i) + " runs past the end of the file");
    if (meta_index_.count(e.key)) return bad("duplicate metadata key " + q(e.key));
    uint32_t t;
    if (!r.get(t)) return bad("truncated type of key " + q(e.key));
    if (t >= kTypeCount)
      return bad("key " + q(e.key) + " has unknown value type " + std::to_string(t));
    MetaValue& v = e.value;
    v.type = ValueType(t);
    auto read_scalar = [&](ValueType vt, MetaValue& out) -> bool {
      switch (vt) {
        case ValueType::U8: {
          uint8_t x;
          if (!r.get(x)) return false;
          out.i = x;
          out.u = x;
          return true;
        }
        case ValueType::I8: {
          int8_t x;
          if (!r.get(x)) return false;
          out.i = x;
          return true;
        }
        case ValueType::U16: {
          uint16_t x;
          if (!r.get(x)) return false;
          out.i = x;
          out.u = x;
          return true;
        }
        case ValueType::I16: {
          int16_t x;
          if (!r.get(x)) return false;
          out.i = x;
          return true;
        }
        case ValueType::U32: {
          uint32_t x;
          if (!r.get(x)) return false;
          out.i = x;
          out.u = x;
          return true;
        }
        case ValueType::I32: {
          int32_t x;
          if (!r.get(x)) return false;
          out.i = x;
          return true;
        }
        case ValueType::U64: {
          uint64_t x;
          if (!r.get(x)) return false;
          out.u = x;
          out.i = int64_t(x);
          return true;
        }
        case ValueType::I64: {
          int64_t x;
          if (!r.get(x)) return false;
          out.i = x;
          return true;
        }
        case ValueType::F32: {
          float x;
          if (!r.get(x)) return false;
          out.f = x;
          return true;
        }
        case ValueType::F64: {
          double x;
          if (!r.get(x)) return false;
          out.f = x;
          return true;
        }
        case ValueType::BOOL: {
          uint8_t x;
          if (!r.get(x)) return false;
          out.i = x != 0;
          return true;
        }
        case ValueType::STRING:
          return r.str(out.s);
        default:
          return false;
      }
    };
    if (v.type == ValueType::ARRAY) {
      uint32_t et;
      uint64_t count;
      if (!r.get(et) || !r.get(count)) return bad("truncated array header of key " + q(e.key));
      if (et >= kTypeCount)
        return bad("array " + q(e.key) + " has unknown element type " + std::to_string(et));
      if (ValueType(et) == ValueType::ARRAY)
        return bad("nested arrays are not allowed (key " + q(e.key) + ")");
      v.elem_type = ValueType(et);
      v.count = count;
      if (v.elem_type == ValueType::STRING) {
        if (count > r.remaining() / 8)
          return bad("array " + q(e.key) + " of " + std::to_string(count) +
                     " strings exceeds the file size");
        v.strs.reserve(size_t(count));
        for (uint64_t k = 0; k < count; ++k) {
          std::string_view s;
          if (!r.str(s))
            return bad("string " + std::to_string(k) + " of array " + q(e.key) +
                       " runs past the end of the file");
          v.strs.push_back(s);
        }
      } else {
        const size_t es = scalar_size(v.elem_type);
        if (count > r.remaining() / es)
          return bad("array " + q(e.key) + " of " + std::to_string(count) +
                     " elements runs past the end of the file");
        v.raw = r.here();
        r.skip(size_t(count) * es);
      }
    } else if (!read_scalar(v.type, v)) {
      return bad("value of key " + q(e.key) + " runs past the end of the file");
    }
    meta_index_.emplace(e.key, meta_.size());
    meta_.push_back(std::move(e));
  }

  if (const MetaValue* a = find("general.alignment")) {
    if (!a->is_integer() || a->i <= 0 || a->i > (1 << 24) || (a->i & (a->i - 1)) != 0)
      return bad("general.alignment must be a positive power of two");
    alignment_ = uint64_t(a->i);
  }

  struct Raw {
    uint32_t type;
    uint64_t offset;
  };
  std::vector<Raw> raws;
  tensors_.reserve(size_t(n_tensors));
  raws.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    TensorInfo ti;
    if (!r.str(ti.name))
      return bad("name of tensor " + std::to_string(i) + " runs past the end of the file");
    if (tensor_index_.count(ti.name)) return bad("duplicate tensor name " + q(ti.name));
    uint32_t n_dims;
    if (!r.get(n_dims)) return bad("truncated info of tensor " + q(ti.name));
    if (n_dims == 0 || n_dims > kMaxDims)
      return bad("tensor " + q(ti.name) + " has " + std::to_string(n_dims) +
                 " dimensions (1 to 4 allowed)");
    int64_t ne[kMaxDims];
    int64_t n_el = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t x;
      if (!r.get(x)) return bad("truncated shape of tensor " + q(ti.name));
      if (x == 0 || x > uint64_t(std::numeric_limits<int64_t>::max()))
        return bad("tensor " + q(ti.name) + " has an invalid dimension " + std::to_string(x));
      if (int64_t(x) > std::numeric_limits<int64_t>::max() / n_el)
        return bad("element count of tensor " + q(ti.name) + " overflows");
      ne[d] = int64_t(x);
      n_el *= int64_t(x);
    }
    Raw raw;
    if (!r.get(raw.type) || !r.get(raw.offset))
      return bad("truncated info of tensor " + q(ti.name));
    const TypeTraits* tt = find_type(raw.type);
    if (!tt || !tt->storable)
      return unsupported("[gguf] tensor " + q(ti.name) + " has unsupported type id " +
                         std::to_string(raw.type) + " (supported: " + supported_type_names() + ")" +
                         where);
    ti.type = tt->type;
    if (ne[0] % tt->block_elems != 0)
      return bad("tensor " + q(ti.name) + " row length " + std::to_string(ne[0]) +
                 " is not a multiple of the " + tt->name + " block size " +
                 std::to_string(tt->block_elems));
    // Bytes: n_el / block * block_bytes, checked for overflow.
    const uint64_t blocks = uint64_t(n_el) / uint64_t(tt->block_elems);
    if (blocks > std::numeric_limits<uint64_t>::max() / uint64_t(tt->block_bytes))
      return bad("byte size of tensor " + q(ti.name) + " overflows");
    const uint64_t nbytes = blocks * uint64_t(tt->block_bytes);
    if (nbytes > full_size_)
      return bad("tensor " + q(ti.name) + " needs " + std::to_string(nbytes) +
                 " bytes, more than the whole file");
    ti.nbytes = size_t(nbytes);
    ti.n_elements = n_el;
    for (int d = int(n_dims) - 1; d >= 0; --d) ti.shape.push_back(ne[d]);  // outermost-first
    ti.offset = raw.offset;
    tensor_index_.emplace(ti.name, tensors_.size());
    tensors_.push_back(std::move(ti));
    raws.push_back(raw);
  }

  const uint64_t pos = r.pos();
  data_offset_ = (pos + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data_offset_ > full_size_)
    return bad("data section starts past the end of the file");
  const uint64_t fs = full_size_;
  for (auto& t : tensors_) {
    if (t.offset % alignment_ != 0)
      return bad("tensor " + q(t.name) + " offset " + std::to_string(t.offset) +
                 " is not a multiple of the alignment " + std::to_string(alignment_));
    if (t.offset > fs - data_offset_ || t.nbytes > fs - data_offset_ - t.offset)
      return bad("tensor " + q(t.name) + " data [" + std::to_string(t.offset) + ", +" +
                 std::to_string(t.nbytes) + ") ends past the end of the file (data section is " +
                 std::to_string(fs - data_offset_) + " bytes)");
    t.data = header_only_ ? nullptr : base_ + data_offset_ + t.offset;
  }
  return Status::ok();
}

Status GgufFile::finish(Layout layout) {
  return layout == Layout::kNormalized ? normalize_ollama_layout(*this) : Status::ok();
}

const MetaValue* GgufFile::find(std::string_view key) const {
  auto it = meta_index_.find(key);
  return it == meta_index_.end() ? nullptr : &meta_[it->second].value;
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {
Status missing(std::string_view key) {
  return not_found("[gguf] missing metadata key '" + std::string(key) + "'");
}
Status wrong(std::string_view key, const MetaValue& v, const char* want) {
  return invalid_argument("[gguf] metadata key '" + std::string(key) + "' is " +
                          value_type_name(v.type) + ", expected " + want);
}
}  // namespace

Result<int64_t> GgufFile::get_int(std::string_view key) const {
  const MetaValue* v = find(key);
  if (!v) return missing(key);
  if (!v->is_integer()) return wrong(key, *v, "an integer");
  if (v->type == ValueType::U64 && v->u > uint64_t(std::numeric_limits<int64_t>::max()))
    return invalid_argument("[gguf] metadata key '" + std::string(key) + "' is too large");
  return v->i;
}

Result<double> GgufFile::get_float(std::string_view key) const {
  const MetaValue* v = find(key);
  if (!v) return missing(key);
  if (v->is_float()) return v->f;
  if (v->is_integer() && v->type != ValueType::BOOL) return double(v->i);
  return wrong(key, *v, "a number");
}

Result<bool> GgufFile::get_bool(std::string_view key) const {
  const MetaValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != ValueType::BOOL) return wrong(key, *v, "bool");
  return v->i != 0;
}

Result<std::string> GgufFile::get_string(std::string_view key) const {
  const MetaValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != ValueType::STRING) return wrong(key, *v, "string");
  return std::string(v->s);
}

Result<std::vector<int64_t>> GgufFile::get_int_array(std::string_view key) const {
  const MetaValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != ValueType::ARRAY || v->elem_type == ValueType::STRING ||
      v->elem_type == ValueType::F32 || v->elem_type == ValueType::F64)
    return wrong(key, *v, "an array of integers");
  std::vector<int64_t> out;
  out.reserve(size_t(v->count));
  const size_t es = scalar_size(v->elem_type);
  for (uint64_t i = 0; i < v->count; ++i) {
    const uint8_t* p = v->raw + i * es;
    int64_t x = 0;
    switch (v->elem_type) {
      case ValueType::U8:
      case ValueType::BOOL:
        x = *p;
        break;
      case ValueType::I8:
        x = int8_t(*p);
        break;
      case ValueType::U16: {
        uint16_t t;
        std::memcpy(&t, p, 2);
        x = t;
        break;
      }
      case ValueType::I16: {
        int16_t t;
        std::memcpy(&t, p, 2);
        x = t;
        break;
      }
      case ValueType::U32: {
        uint32_t t;
        std::memcpy(&t, p, 4);
        x = t;
        break;
      }
      case ValueType::I32: {
        int32_t t;
        std::memcpy(&t, p, 4);
        x = t;
        break;
      }
      case ValueType::U64: {
        uint64_t t;
        std::memcpy(&t, p, 8);
        x = int64_t(t);
        break;
      }
      case ValueType::I64: {
        std::memcpy(&x, p, 8);
        break;
      }
      default:
        break;
    }
    out.push_back(x);
  }
  return out;
}

Result<std::vector<double>> GgufFile::get_float_array(std::string_view key) const {
  const MetaValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != ValueType::ARRAY || v->elem_type == ValueType::STRING)
    return wrong(key, *v, "an array of numbers");
  if (v->elem_type != ValueType::F32 && v->elem_type != ValueType::F64) {
    HEARTH_ASSIGN_OR_RETURN(auto ints, get_int_array(key));
    return std::vector<double>(ints.begin(), ints.end());
  }
  std::vector<double> out;
  out.reserve(size_t(v->count));
  for (uint64_t i = 0; i < v->count; ++i) {
    if (v->elem_type == ValueType::F32) {
      float f;
      std::memcpy(&f, v->raw + i * 4, 4);
      out.push_back(f);
    } else {
      double d;
      std::memcpy(&d, v->raw + i * 8, 8);
      out.push_back(d);
    }
  }
  return out;
}

Result<std::vector<std::string_view>> GgufFile::get_string_array(std::string_view key) const {
  const MetaValue* v = find(key);
  if (!v) return missing(key);
  if (v->type != ValueType::ARRAY || v->elem_type != ValueType::STRING)
    return wrong(key, *v, "an array of strings");
  return v->strs;
}

Result<int64_t> GgufFile::get_int_or(std::string_view key, int64_t fallback) const {
  if (!find(key)) return fallback;
  return get_int(key);
}
Result<double> GgufFile::get_float_or(std::string_view key, double fallback) const {
  if (!find(key)) return fallback;
  return get_float(key);
}
Result<bool> GgufFile::get_bool_or(std::string_view key, bool fallback) const {
  if (!find(key)) return fallback;
  return get_bool(key);
}

// ---------------------------------------------------------------------------------------- writer

namespace {
template <typename T>
void put(std::vector<uint8_t>& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof v);
}
void put_str(std::vector<uint8_t>& b, std::string_view s) {
  put<uint64_t>(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}
template <typename T>
std::vector<uint8_t> scalar(ValueType t, T v) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, uint32_t(t));
  put(b, v);
  return b;
}
}  // namespace

void GgufWriter::set_raw(std::string key, std::vector<uint8_t> encoded) {
  for (auto& e : kv_)
    if (e.key == key) {
      e.encoded = std::move(encoded);
      return;
    }
  kv_.push_back({std::move(key), std::move(encoded)});
}

void GgufWriter::set_u8(std::string k, uint8_t v) {
  set_raw(std::move(k), scalar(ValueType::U8, v));
}
void GgufWriter::set_i8(std::string k, int8_t v) {
  set_raw(std::move(k), scalar(ValueType::I8, v));
}
void GgufWriter::set_u16(std::string k, uint16_t v) {
  set_raw(std::move(k), scalar(ValueType::U16, v));
}
void GgufWriter::set_i16(std::string k, int16_t v) {
  set_raw(std::move(k), scalar(ValueType::I16, v));
}
void GgufWriter::set_u32(std::string k, uint32_t v) {
  set_raw(std::move(k), scalar(ValueType::U32, v));
}
void GgufWriter::set_i32(std::string k, int32_t v) {
  set_raw(std::move(k), scalar(ValueType::I32, v));
}
void GgufWriter::set_u64(std::string k, uint64_t v) {
  set_raw(std::move(k), scalar(ValueType::U64, v));
}
void GgufWriter::set_i64(std::string k, int64_t v) {
  set_raw(std::move(k), scalar(ValueType::I64, v));
}
void GgufWriter::set_f32(std::string k, float v) {
  set_raw(std::move(k), scalar(ValueType::F32, v));
}
void GgufWriter::set_f64(std::string k, double v) {
  set_raw(std::move(k), scalar(ValueType::F64, v));
}
void GgufWriter::set_bool(std::string k, bool v) {
  set_raw(std::move(k), scalar(ValueType::BOOL, uint8_t(v)));
}
void GgufWriter::set_string(std::string k, std::string v) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, uint32_t(ValueType::STRING));
  put_str(b, v);
  set_raw(std::move(k), std::move(b));
}
void GgufWriter::set_array_strings(std::string k, const std::vector<std::string>& v) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, uint32_t(ValueType::ARRAY));
  put<uint32_t>(b, uint32_t(ValueType::STRING));
  put<uint64_t>(b, v.size());
  for (const auto& s : v) put_str(b, s);
  set_raw(std::move(k), std::move(b));
}
namespace {
template <typename T>
std::vector<uint8_t> num_array(ValueType et, const std::vector<T>& v) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, uint32_t(ValueType::ARRAY));
  put<uint32_t>(b, uint32_t(et));
  put<uint64_t>(b, v.size());
  for (T x : v) put(b, x);
  return b;
}
}  // namespace
void GgufWriter::set_array_i32(std::string k, const std::vector<int32_t>& v) {
  set_raw(std::move(k), num_array(ValueType::I32, v));
}
void GgufWriter::set_array_u32(std::string k, const std::vector<uint32_t>& v) {
  set_raw(std::move(k), num_array(ValueType::U32, v));
}
void GgufWriter::set_array_f32(std::string k, const std::vector<float>& v) {
  set_raw(std::move(k), num_array(ValueType::F32, v));
}

void GgufWriter::copy_value(std::string key, const MetaValue& v) {
  std::vector<uint8_t> b;
  put<uint32_t>(b, uint32_t(v.type));
  auto put_scalar = [&](ValueType t, const MetaValue& x) {
    switch (t) {
      case ValueType::U8:
      case ValueType::BOOL:
        put<uint8_t>(b, uint8_t(x.i));
        break;
      case ValueType::I8:
        put<int8_t>(b, int8_t(x.i));
        break;
      case ValueType::U16:
        put<uint16_t>(b, uint16_t(x.i));
        break;
      case ValueType::I16:
        put<int16_t>(b, int16_t(x.i));
        break;
      case ValueType::U32:
        put<uint32_t>(b, uint32_t(x.i));
        break;
      case ValueType::I32:
        put<int32_t>(b, int32_t(x.i));
        break;
      case ValueType::U64:
        put<uint64_t>(b, x.u);
        break;
      case ValueType::I64:
        put<int64_t>(b, x.i);
        break;
      case ValueType::F32:
        put<float>(b, float(x.f));
        break;
      case ValueType::F64:
        put<double>(b, x.f);
        break;
      case ValueType::STRING:
        put_str(b, x.s);
        break;
      default:
        break;
    }
  };
  if (v.type == ValueType::ARRAY) {
    put<uint32_t>(b, uint32_t(v.elem_type));
    put<uint64_t>(b, v.count);
    if (v.elem_type == ValueType::STRING) {
      for (auto s : v.strs) put_str(b, s);
    } else {
      b.insert(b.end(), v.raw, v.raw + size_t(v.count) * scalar_size(v.elem_type));
    }
  } else {
    put_scalar(v.type, v);
  }
  set_raw(std::move(key), std::move(b));
}

void GgufWriter::remove(std::string_view key) {
  for (auto it = kv_.begin(); it != kv_.end(); ++it)
    if (it->key == key) {
      kv_.erase(it);
      return;
    }
}

Status GgufWriter::add_tensor(std::string name, DType type, std::vector<int64_t> shape,
                              const void* data, size_t nbytes) {
  const TypeTraits* tt = find_type(uint32_t(type));
  if (!tt) return invalid_argument("[gguf] writer: unsupported tensor type for " + name);
  if (shape.empty() || shape.size() > kMaxDims)
    return invalid_argument("[gguf] writer: bad rank for " + name);
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d <= 0) return invalid_argument("[gguf] writer: bad dimension for " + name);
    n *= d;
  }
  if (shape.back() % tt->block_elems != 0)
    return invalid_argument("[gguf] writer: row of " + name +
                            " is not a multiple of the block size");
  if (size_t(n / tt->block_elems) * size_t(tt->block_bytes) != nbytes)
    return invalid_argument("[gguf] writer: byte size of " + name +
                            " does not match its shape and type");
  for (const auto& t : tensors_)
    if (t.name == name) return invalid_argument("[gguf] writer: duplicate tensor " + name);
  tensors_.push_back({std::move(name), type, std::move(shape), data, nbytes});
  return Status::ok();
}

std::vector<uint8_t> GgufWriter::to_bytes(uint32_t alignment) const {
  std::vector<uint8_t> b;
  b.insert(b.end(), {'G', 'G', 'U', 'F'});
  put<uint32_t>(b, 3);
  put<uint64_t>(b, tensors_.size());
  put<uint64_t>(b, kv_.size());
  for (const auto& e : kv_) {
    put_str(b, e.key);
    b.insert(b.end(), e.encoded.begin(), e.encoded.end());
  }
  auto pad = [&](size_t x) { return (x + alignment - 1) / alignment * alignment; };
  uint64_t off = 0;
  for (const auto& t : tensors_) {
    put_str(b, t.name);
    put<uint32_t>(b, uint32_t(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put<uint64_t>(b, uint64_t(*it));
    put<uint32_t>(b, uint32_t(t.type));
    put<uint64_t>(b, off);
    off += pad(t.nbytes);
  }
  b.resize(pad(b.size()), 0);
  for (const auto& t : tensors_) {
    const auto* p = static_cast<const uint8_t*>(t.data);
    b.insert(b.end(), p, p + t.nbytes);
    b.resize(pad(b.size()), 0);
  }
  return b;
}

Status GgufWriter::write(const std::string& path, uint32_t alignment) const {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return invalid_argument("[gguf] cannot create " + tmp + ": " + std::strerror(errno));
  auto fail = [&](const std::string& what) {
    const std::string msg = "[gguf] " + what + " " + tmp + ": " + std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status(StatusCode::kInternal, msg);
  };
  auto write_all = [&](const void* p, size_t n) {
    const auto* c = static_cast<const uint8_t*>(p);
    while (n > 0) {
      const ssize_t w = ::write(fd, c, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return false;
      }
      c += w;
      n -= size_t(w);
    }
    return true;
  };
  // Header and tensor infos from to_bytes() of a tensor-less copy would lose offsets; build here.
  std::vector<uint8_t> head;
  head.insert(head.end(), {'G', 'G', 'U', 'F'});
  put<uint32_t>(head, 3);
  put<uint64_t>(head, tensors_.size());
  put<uint64_t>(head, kv_.size());
  for (const auto& e : kv_) {
    put_str(head, e.key);
    head.insert(head.end(), e.encoded.begin(), e.encoded.end());
  }
  auto pad = [&](size_t x) { return (x + alignment - 1) / alignment * alignment; };
  uint64_t off = 0;
  for (const auto& t : tensors_) {
    put_str(head, t.name);
    put<uint32_t>(head, uint32_t(t.shape.size()));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put<uint64_t>(head, uint64_t(*it));
    put<uint32_t>(head, uint32_t(t.type));
    put<uint64_t>(head, off);
    off += pad(t.nbytes);
  }
  head.resize(pad(head.size()), 0);
  if (!write_all(head.data(), head.size())) return fail("cannot write");
  static const uint8_t zeros[256] = {};
  for (const auto& t : tensors_) {
    if (!write_all(t.data, t.nbytes)) return fail("cannot write");
    size_t p = pad(t.nbytes) - t.nbytes;
    while (p > 0) {
      const size_t k = std::min(p, sizeof zeros);
      if (!write_all(zeros, k)) return fail("cannot write");
      p -= k;
    }
  }
  if (::fsync(fd) != 0) return fail("cannot fsync");
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return internal_error("[gguf] cannot close " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string msg = std::strerror(errno);
    ::unlink(tmp.c_str());
    return internal_error("[gguf] cannot rename " + tmp + " to " + path + ": " + msg);
  }
  // Make the rename durable.
  std::string dir =
      path.substr(0, path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/'));
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::ok();
}

}  // namespace hearth::gguf
