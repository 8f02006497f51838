// gguf/gguf.h — bounds-checked GGUF (v2, v3) reader over a memory map, and a writer.
//
// Byte layout (all little-endian):
//   "GGUF" u32 version, u64 n_tensors, u64 n_kv,
//   n_kv  x { string key, u32 value_type, value }          string = u64 length + bytes
//   n_tensors x { string name, u32 n_dims, u64 ne[n_dims] (innermost first), u32 ggml_type, u64
//   offset } padding to `general.alignment` (default 32), then tensor data; each tensor at
//   data_start + offset.
// Value types: 0 u8, 1 i8, 2 u16, 3 i16, 4 u32, 5 i32, 6 f32, 7 bool, 8 string, 9 array
// (u32 elem_type, u64 count, elements), 10 u64, 11 i64, 12 f64.
//
// The reader never trusts the file: every count, size, offset and string is checked against the
// mapping before use, and a bad file is refused with a message naming the problem. Tensor data is
// not copied: TensorInfo::data points into the mapping. Shapes are exposed outermost-first (a
// weight of torch shape [out, in] has shape {out, in}); this is the one place the ggml order flips.
//
// Split models (llama.cpp's gguf-split: keys split.no, split.count, split.tensors.count in every
// part; the metadata in the first, the tensors spread over all): open() of the first part maps
// every part and serves their tensors as one file's. The other parts are found by name
// (<prefix>-00001-of-00003.gguf beside <prefix>-00002-of-00003.gguf, ...) or, for files whose
// names say nothing (store blobs), from set_split_parts(). A missing or mismatched part is an
// error naming it; opening a later part alone is refused.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/mmap_file.h"
#include "base/status.h"
#include "quant/types.h"

namespace hearth::gguf {

enum class ValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
const char* value_type_name(ValueType t);

// A metadata value. Scalars are widened; strings view the mapping. Arrays keep their element type
// and are decoded on demand from `raw` (a view of the element bytes in the mapping).
struct MetaValue {
  ValueType type = ValueType::U8;
  ValueType elem_type = ValueType::U8;  // arrays only
  uint64_t count = 0;                   // arrays only
  int64_t i = 0;                        // integer types and bool
  uint64_t u = 0;                       // u64 (exact)
  double f = 0;                         // f32 / f64
  std::string_view s;                   // string
  std::vector<std::string_view> strs;   // array of strings
  const uint8_t* raw = nullptr;         // array of numbers: first element
  bool is_integer() const;
  bool is_float() const;
};

struct MetaEntry {
  std::string_view key;
  MetaValue value;
};

struct TensorInfo {
  std::string_view name;
  DType type = DType::F32;
  std::vector<int64_t> shape;  // outermost-first
  int64_t n_elements = 0;
  uint64_t offset = 0;  // relative to the data section
  size_t nbytes = 0;
  const uint8_t* data = nullptr;  // into the mapping
  // Row = innermost dimension.
  int64_t row_len() const { return shape.empty() ? 1 : shape.back(); }
  int64_t n_rows() const { return row_len() ? n_elements / row_len() : 0; }
};

// What gguf/ollama_compat.cpp changed to present a file written in Ollama's library layout as the
// llama.cpp layout the models read. Empty for every other file.
struct LayoutFixes {
  std::string family;              // the architecture whose fixes applied ("" = untouched)
  std::vector<std::string> fixes;  // one line per change, for logs and tests
  size_t ignored_tensors = 0;      // tensors hidden from tensors() (vision/audio/projector, MTP)
  uint64_t ignored_bytes = 0;      // their data size (not part of the text model's memory)
  bool applied() const { return !fixes.empty(); }
};

// kNormalized (the default): a file in Ollama's library layout is presented as the llama.cpp
// layout (gguf/ollama_compat.h); any other file is left exactly as read. kRaw: as written.
enum class Layout { kNormalized, kRaw };

class GgufFile {
 public:
  static Result<std::shared_ptr<GgufFile>> open(const std::string& path,
                                                Layout layout = Layout::kNormalized);
  // Registers where the parts of the split model whose first part is `first` live (in order,
  // `first` included), for open(first). An empty list forgets it.
  static void set_split_parts(const std::string& first, std::vector<std::string> parts);
  // The paths of a split model's parts, found by name from its first part's path (empty if the
  // name does not look like <prefix>-00001-of-<N>.gguf).
  static std::vector<std::string> split_paths_by_name(const std::string& first);
  // Parses a buffer the caller keeps alive (tests, fuzzing). Never copies tensor data.
  static Result<std::shared_ptr<GgufFile>> parse(const uint8_t* data, size_t size,
                                                 std::string name = "<memory>",
                                                 Layout layout = Layout::kNormalized);
  // The header alone: the first bytes of a file of `file_size` bytes (a ranged read of a blob
  // in a registry). Metadata and tensor infos as open() gives them, every tensor checked against
  // file_size; tensor data pointers are null. Fails (Corrupt, "runs past the end") when the
  // header does not fit in `data`: read more and try again.
  static Result<std::shared_ptr<GgufFile>> parse_header(const uint8_t* data, size_t size,
                                                        uint64_t file_size,
                                                        std::string name = "<header>");
  bool header_only() const { return header_only_; }

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  const std::string& name() const { return name_; }
  // Bytes of the file (of all parts for a split model).
  size_t file_size() const { return size_t(full_size_ + parts_size_); }
  // 1 for a single file; the number of parts for a split model opened whole.
  int split_count() const { return int(parts_.size()) + 1; }

  const std::vector<MetaEntry>& metadata() const { return meta_; }
  const MetaValue* find(std::string_view key) const;

  // Typed access. Missing key -> NotFound; wrong type -> InvalidArgument; both name the key.
  // Integers of any width (and bool) convert to int64 if they fit; f32/f64 convert to double.
  Result<int64_t> get_int(std::string_view key) const;
  Result<double> get_float(std::string_view key) const;  // also accepts integers
  Result<bool> get_bool(std::string_view key) const;
  Result<std::string> get_string(std::string_view key) const;
  Result<std::vector<int64_t>> get_int_array(std::string_view key) const;
  Result<std::vector<double>> get_float_array(std::string_view key) const;
  Result<std::vector<std::string_view>> get_string_array(std::string_view key) const;
  // Missing -> fallback; present with the wrong type -> error.
  Result<int64_t> get_int_or(std::string_view key, int64_t fallback) const;
  Result<double> get_float_or(std::string_view key, double fallback) const;
  Result<bool> get_bool_or(std::string_view key, bool fallback) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

  // What the layout normalisation changed (empty: the file is read as written).
  const LayoutFixes& layout_fixes() const { return fixes_; }

 private:
  friend class LayoutEditor;  // gguf/ollama_compat.cpp
  GgufFile() = default;
  Status parse_impl();
  static Result<std::shared_ptr<GgufFile>> open_one(const std::string& path);
  Status add_splits(const std::string& path);
  Status finish(Layout layout);

  std::shared_ptr<MappedFile> file_;  // keeps the mapping alive (null for parse())
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;         // bytes at base_
  uint64_t full_size_ = 0;  // the whole file's (== size_ unless header-only)
  bool header_only_ = false;
  std::string name_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<MetaEntry> meta_;
  std::unordered_map<std::string_view, size_t> meta_index_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
  std::vector<std::shared_ptr<GgufFile>> parts_;  // a split model's later parts (kept mapped)
  uint64_t parts_size_ = 0;
  // Keys, names and values the layout normalisation made (stable addresses: views point here).
  std::deque<std::string> owned_;
  LayoutFixes fixes_;
};

// Writes GGUF v3. Values and tensors are kept in insertion order. write() goes to a temporary
// file beside `path`, fsyncs and renames, so a crash never leaves a half-written file.
class GgufWriter {
 public:
  void set_u8(std::string key, uint8_t v);
  void set_i8(std::string key, int8_t v);
  void set_u16(std::string key, uint16_t v);
  void set_i16(std::string key, int16_t v);
  void set_u32(std::string key, uint32_t v);
  void set_i32(std::string key, int32_t v);
  void set_u64(std::string key, uint64_t v);
  void set_i64(std::string key, int64_t v);
  void set_f32(std::string key, float v);
  void set_f64(std::string key, double v);
  void set_bool(std::string key, bool v);
  void set_string(std::string key, std::string v);
  void set_array_strings(std::string key, const std::vector<std::string>& v);
  void set_array_i32(std::string key, const std::vector<int32_t>& v);
  void set_array_u32(std::string key, const std::vector<uint32_t>& v);
  void set_array_f32(std::string key, const std::vector<float>& v);
  // Copies a metadata entry (any type, incl. arrays) from a file being read.
  void copy_value(std::string key, const MetaValue& v);
  void remove(std::string_view key);

  // shape outermost-first; data must hold row_bytes * rows bytes and stay alive until write().
  Status add_tensor(std::string name, DType type, std::vector<int64_t> shape, const void* data,
                    size_t nbytes);
  Status write(const std::string& path, uint32_t alignment = 32) const;
  // Serialise to memory (tests, fuzz seeds).
  std::vector<uint8_t> to_bytes(uint32_t alignment = 32) const;

 private:
  struct Entry {
    std::string key;
    std::vector<uint8_t> encoded;  // u32 type + value bytes
  };
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> shape;
    const void* data;
    size_t nbytes;
  };
  void set_raw(std::string key, std::vector<uint8_t> encoded);
  std::vector<Entry> kv_;
  std::vector<Tensor> tensors_;
};

}  // namespace hearth::gguf
