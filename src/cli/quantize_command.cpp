// `hearth quantize IN.gguf OUT.gguf TYPE`: llama-quantize's job, with its per-tensor type mixes.
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "quantize/quantize.h"

namespace hearth::cli {
namespace {

struct QuantOpts {
  std::string in, out, type;
  int threads = 0;
  bool allow_requantize = false;
  bool quiet = false;
};

int run_quantize(const QuantOpts& o) {
  const quantize::FTypeInfo* ft = quantize::find_ftype(o.type);
  if (!ft) {
    std::fprintf(stderr, "hearth: unknown quantization type '%s'; choose one of: %s\n",
                 o.type.c_str(), quantize::ftype_names().c_str());
    return 1;
  }
  if (o.in == o.out) {
    std::fprintf(stderr, "hearth: input and output must be different files\n");
    return 1;
  }
  ThreadPool pool(o.threads > 0 ? o.threads : int(std::thread::hardware_concurrency()));
  quantize::QuantizeOptions qo;
  qo.ftype = ft->ftype;
  qo.allow_requantize = o.allow_requantize;
  size_t in_total = 0, out_total = 0;
  auto progress = [&](size_t i, size_t n, const quantize::TensorReport& r) {
    in_total += r.bytes_in;
    out_total += r.bytes_out;
    if (!o.quiet)
      std::fprintf(stderr, "[%4zu/%4zu] %-40s %6s -> %-6s %9.2f MiB\n", i, n, r.name.c_str(),
                   type_traits(r.from).name, type_traits(r.to).name, r.bytes_out / 1048576.0);
  };
  Status st = quantize::quantize_file(o.in, o.out, qo, pool, nullptr, progress);
  if (!st) {
    std::fprintf(stderr, "hearth: %s\n", st.message().c_str());
    return 1;
  }
  std::fprintf(stderr, "quantized %s -> %s as %s: %.2f MiB -> %.2f MiB\n", o.in.c_str(),
               o.out.c_str(), ft->name, in_total / 1048576.0, out_total / 1048576.0);
  return 0;
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  static QuantOpts o;
  auto* c = app.add_subcommand("quantize", "convert a GGUF model to another quantization type");
  c->add_option("input", o.in, "source GGUF file")->required();
  c->add_option("output", o.out, "destination GGUF file")->required();
  c->add_option("type", o.type, "target type: " + quantize::ftype_names())->required();
  c->add_option("-t,--threads", o.threads, "threads (default: all cores)");
  c->add_flag("--allow-requantize", o.allow_requantize, "allow input tensors that are quantized");
  c->add_flag("-q,--quiet", o.quiet, "no per-tensor lines");
  c->callback([] { std::exit(run_quantize(o)); });
}

}  // namespace hearth::cli
