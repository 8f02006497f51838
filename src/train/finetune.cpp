#include "train/finetune.h"

#include <algorithm>
#include <cmath>
#include <thread>

namespace hearth::train {

Status finetune(std::shared_ptr<gguf::GgufFile> base, const Dataset& data, FinetuneOptions o,
                const std::string& out, const std::function<void(const FinetuneInfo&)>& started,
                const std::function<bool(const Progress&)>& report) {
  const size_t n = data.train.tokens.size();
  if (n < 2) return invalid_argument("[train] the training data is empty");
  size_t weighted = 0;
  for (float w : data.train.weights) weighted += w > 0;
  if (weighted == 0) return invalid_argument("[train] no token of the data carries loss");
  if (!(o.epochs > 0)) return invalid_argument("[train] epochs must be positive");
  ThreadPool pool(o.threads > 0 ? o.threads : int(std::thread::hardware_concurrency()));
  HEARTH_ASSIGN_OR_RETURN(auto m, Decoder::with_lora(std::move(base), pool, o.lora));
  auto& t = o.train;
  t.n_tok = std::max<int64_t>(1, std::min<int64_t>(t.n_tok, int64_t(n) - 1));
  const double per_step = double(t.n_seq * t.n_tok * t.grad_accum);
  t.steps = std::max<int64_t>(1, int64_t(std::ceil(o.epochs * double(n) / per_step)));
  t.warmup = std::min<int64_t>(t.warmup, t.steps / 10);
  Trainer tr(*m, t);
  if (!o.resume.empty()) HEARTH_RETURN_IF_ERROR(tr.resume(o.resume));
  if (started) started(FinetuneInfo{m->params().total(), t.steps, tr.step()});
  bool stopped = false;
  HEARTH_RETURN_IF_ERROR(tr.run(pool, data, [&](const Progress& p) {
    const bool go = report ? report(p) : true;
    stopped = !go;
    return go;
  }));
  if (stopped) return Status(StatusCode::kCancelled, "[train] fine-tuning stopped");
  return m->export_adapter(out);
}

}  // namespace hearth::train
