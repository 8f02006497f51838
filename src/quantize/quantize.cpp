#include "quantize/quantize.h"

#include <memory>

#include "gguf/gguf.h"

namespace hearth::quantize {
namespace {

ModelFacts read_facts(const gguf::GgufFile& f) {
  ModelFacts m;
  auto arch = f.get_string("general.architecture");
  m.arch = arch ? *arch : "";
  const std::string p = m.arch + ".";
  if (auto v = f.get_int(p + "block_count")) m.n_layer = int(*v);
  if (auto v = f.get_int(p + "expert_count")) m.n_expert = int(*v);
  auto nh = f.get_int(p + "attention.head_count");
  auto nkv = f.get_int(p + "attention.head_count_kv");
  if (nh && nkv && *nkv > 0) m.n_gqa = int(*nh / *nkv);
  m.is_70b = m.arch == "llama" && m.n_layer == 80;
  return m;
}

}  // namespace

Status quantize_file(const std::string& in, const std::string& out, const QuantizeOptions& opt,
                     ThreadPool& pool, std::vector<TensorReport>* report,
                     const ProgressFn& progress) {
  HEARTH_ASSIGN_OR_RETURN(auto file, gguf::GgufFile::open(in));
  const ModelFacts facts = read_facts(*file);
  if (facts.arch.empty())
    return corrupt("[quantize] " + in + " has no general.architecture; not a model file");

  std::vector<TensorDesc> descs;
  for (const auto& t : file->tensors()) descs.push_back({std::string(t.name), t.type, t.shape});
  const std::vector<DType> types = plan_types(facts, descs, opt.ftype);

  std::vector<std::string> names;
  for (const auto& d : descs) names.push_back(d.name);
  const std::vector<size_t> order = llama_tensor_order(names);

  gguf::GgufWriter w;
  for (const auto& e : file->metadata()) w.copy_value(std::string(e.key), e.value);
  w.set_u32("general.quantization_version", 2);
  w.set_u32("general.file_type", uint32_t(opt.ftype));
  w.remove("split.no");
  w.remove("split.count");
  w.remove("split.tensors.count");

  std::vector<std::unique_ptr<uint8_t[]>> buffers;
  std::vector<float> f32;
  size_t done = 0;
  for (size_t i : order) {
    const gguf::TensorInfo& t = file->tensors()[i];
    const DType to = types[i];
    const TypeTraits& src = type_traits(t.type);
    TensorReport r{std::string(t.name), t.type, to, t.nbytes, t.nbytes};
    if (to == t.type) {
      HEARTH_RETURN_IF_ERROR(w.add_tensor(r.name, t.type, t.shape, t.data, t.nbytes));
    } else {
      if (src.quantized && !opt.allow_requantize)
        return invalid_argument("[quantize] tensor '" + r.name + "' is already " + src.name +
                                "; requantizing loses quality (pass --allow-requantize)");
      const TypeTraits& dst = type_traits(to);
      if (!dst.quantize_row)
        return unsupported(std::string("[quantize] no quantizer for type ") + dst.name);
      const int64_t n = t.row_len(), rows = t.n_rows();
      const size_t in_row = row_bytes(src, n), out_row = row_bytes(dst, n);
      auto buf = std::unique_ptr<uint8_t[]>(new uint8_t[out_row * size_t(rows)]);
      // Each thread converts its rows through a small float buffer.
      std::vector<std::vector<float>> tmp(size_t(pool.size()), std::vector<float>(size_t(n)));
      pool.run([&](int ith, int nth) {
        int64_t b, e;
        ThreadPool::split(rows, ith, nth, b, e);
        float* row = tmp[size_t(ith)].data();
        for (int64_t rr = b; rr < e; ++rr) {
          src.dequantize_row(t.data + size_t(rr) * in_row, row, n);
          dst.quantize_row(row, buf.get() + size_t(rr) * out_row, n);
        }
      });
      r.bytes_out = out_row * size_t(rows);
      HEARTH_RETURN_IF_ERROR(w.add_tensor(r.name, to, t.shape, buf.get(), r.bytes_out));
      buffers.push_back(std::move(buf));
    }
    if (report) report->push_back(r);
    if (progress) progress(++done, order.size(), r);
  }
  auto align = file->get_int_or("general.alignment", 32);
  return w.write(out, uint32_t(align ? *align : 32));
}

}  // namespace hearth::quantize
