#include "models/weights.h"

namespace hearth::models {

std::string blk(int layer, const char* suffix) {
  return "blk." + std::to_string(layer) + "." + suffix;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "{";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "}";
}

Status WeightLoader::check_shape(const gguf::TensorInfo& t,
                                 const std::vector<int64_t>& shape) const {
  if (t.shape != shape)
    return corrupt("[model] tensor '" + std::string(t.name) + "' has shape " + shape_str(t.shape) +
                   ", expected " + shape_str(shape) + " for " + arch_);
  return Status::ok();
}

Result<const gguf::TensorInfo*> WeightLoader::tensor(const std::string& name,
                                                     std::vector<int64_t> shape) {
  const gguf::TensorInfo* t = f_.find_tensor(name);
  if (!t) return corrupt("[model] missing tensor '" + name + "' (required by " + arch_ + ")");
  HEARTH_RETURN_IF_ERROR(check_shape(*t, shape));
  return t;
}

Result<ops::WeightMatrix> WeightLoader::matrix(const std::string& name, int64_t n_out,
                                               int64_t n_in) {
  HEARTH_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, tensor(name, {n_out, n_in}));
  HEARTH_ASSIGN_OR_RETURN(ops::WeightMatrix w, ops::WeightMatrix::make(name.c_str(), t->type, n_out,
                                                                       n_in, t->data, t->nbytes));
  w.set_name(t->name);
  w.prepare(pool_, placement_, repack_, &arena_);
  return w;
}

Result<std::vector<ops::WeightMatrix>> WeightLoader::experts(const std::string& name,
                                                             int64_t n_expert, int64_t n_out,
                                                             int64_t n_in) {
  HEARTH_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, tensor(name, {n_expert, n_out, n_in}));
  const size_t per = t->nbytes / size_t(n_expert);
  std::vector<ops::WeightMatrix> out;
  out.reserve(size_t(n_expert));
  for (int64_t e = 0; e < n_expert; ++e) {
    const std::string en = name + "[" + std::to_string(e) + "]";
    HEARTH_ASSIGN_OR_RETURN(
        ops::WeightMatrix w,
        ops::WeightMatrix::make(en.c_str(), t->type, n_out, n_in,
                                static_cast<const uint8_t*>(t->data) + size_t(e) * per, per));
    w.prepare(pool_, placement_, repack_, &arena_);
    out.push_back(std::move(w));
  }
  return out;
}

Result<std::vector<std::vector<ops::WeightMatrix>>> WeightLoader::experts_split(
    const std::string& name, int64_t n_expert, int parts, int64_t n_out, int64_t n_in) {
  HEARTH_ASSIGN_OR_RETURN(const gguf::TensorInfo* t,
                          tensor(name, {n_expert, int64_t(parts) * n_out, n_in}));
  const size_t per = t->nbytes / size_t(n_expert), part = per / size_t(parts);
  std::vector<std::vector<ops::WeightMatrix>> out(static_cast<size_t>(parts));
  for (int p = 0; p < parts; ++p) {
    out[size_t(p)].reserve(size_t(n_expert));
    for (int64_t e = 0; e < n_expert; ++e) {
      const std::string en = name + "[" + std::to_string(e) + "][" + std::to_string(p) + "]";
      HEARTH_ASSIGN_OR_RETURN(
          ops::WeightMatrix w,
          ops::WeightMatrix::make(
              en.c_str(), t->type, n_out, n_in,
              static_cast<const uint8_t*>(t->data) + size_t(e) * per + size_t(p) * part, part));
      w.prepare(pool_, placement_, repack_, &arena_);
      out[size_t(p)].push_back(std::move(w));
    }
  }
  return out;
}

Result<std::optional<ops::WeightMatrix>> WeightLoader::optional_matrix(const std::string& name,
                                                                       int64_t n_out,
                                                                       int64_t n_in) {
  if (!has(name)) return std::optional<ops::WeightMatrix>();
  HEARTH_ASSIGN_OR_RETURN(ops::WeightMatrix w, matrix(name, n_out, n_in));
  return std::optional<ops::WeightMatrix>(std::move(w));
}

Result<std::vector<float>> WeightLoader::vector(const std::string& name, int64_t n) {
  HEARTH_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, tensor(name, {n}));
  const TypeTraits& tt = type_traits(t->type);
  if (tt.quantized)
    return unsupported("[model] tensor '" + name + "' is quantized (" + tt.name +
                       "); expected a float type");
  std::vector<float> v(static_cast<size_t>(n));
  tt.dequantize_row(t->data, v.data(), n);
  return v;
}

Result<std::optional<std::vector<float>>> WeightLoader::optional_vector(const std::string& name,
                                                                        int64_t n) {
  if (!has(name)) return std::optional<std::vector<float>>();
  HEARTH_ASSIGN_OR_RETURN(std::vector<float> v, vector(name, n));
  return std::optional<std::vector<float>>(std::move(v));
}

void dequantize_row_of(const gguf::TensorInfo& t, int64_t r, float* out) {
  const TypeTraits& tt = type_traits(t.type);
  const int64_t n = t.row_len();
  tt.dequantize_row(t.data + size_t(r) * row_bytes(tt, n), out, n);
}

}  // namespace hearth::models
