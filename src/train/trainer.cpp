#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstring>

#include "gguf/gguf.h"

namespace hearth::train {

float learning_rate(const TrainOptions& o, int64_t step) {
  const float lr = o.adam.lr;
  if (step < o.warmup) return lr * float(step + 1) / float(o.warmup);
  const double span = double(std::max<int64_t>(1, o.steps - o.warmup));
  const double t = std::min(1.0, double(step - o.warmup) / span);
  const double cosine = 0.5 * (1 + std::cos(3.141592653589793 * t));
  return float(lr * (o.min_lr_ratio + (1 - o.min_lr_ratio) * cosine));
}

Result<double> evaluate(ThreadPool& pool, Decoder& m, const TokenStream& s, int64_t n_seq,
                        int64_t n_tok, int64_t max_windows) {
  const int64_t windows =
      std::min<int64_t>(max_windows, (int64_t(s.tokens.size()) - 1) / std::max<int64_t>(1, n_tok));
  if (windows <= 0) return invalid_argument("[train] the evaluation text is shorter than a window");
  BatchBuffers bb;
  double loss = 0, weight = 0;
  for (int64_t w = 0; w < windows; w += n_seq) {
    const int64_t k = std::min(n_seq, windows - w);
    window_batch(s, k, n_tok, w, bb);
    HEARTH_ASSIGN_OR_RETURN(LossSum r, m.run(pool, bb.batch(k, n_tok), false));
    loss += r.loss;
    weight += r.weight;
  }
  if (weight <= 0) return invalid_argument("[train] the evaluation text has no weighted tokens");
  return loss / weight;
}

namespace {
constexpr const char* kStepKey = "hearth.train.step";
constexpr const char* kShapeKey = "hearth.train.params";
}  // namespace

Status Trainer::save(const std::string& path) const {
  const ParamStore& ps = m_.params();
  gguf::GgufWriter w;
  w.set_string("general.type", "hearth-checkpoint");
  w.set_u64(kStepKey, uint64_t(step_));
  w.set_u64("hearth.train.adam_t", uint64_t(opt_.t));
  w.set_u64(kShapeKey, uint64_t(ps.total()));
  for (const auto& p : ps.infos()) {
    HEARTH_RETURN_IF_ERROR(w.add_tensor(p.name, DType::F32, p.shape, ps.values.data() + p.offset,
                                        p.count * sizeof(float)));
    HEARTH_RETURN_IF_ERROR(w.add_tensor("adam.m." + p.name, DType::F32, p.shape,
                                        opt_.m.data() + p.offset, p.count * sizeof(float)));
    HEARTH_RETURN_IF_ERROR(w.add_tensor("adam.v." + p.name, DType::F32, p.shape,
                                        opt_.v.data() + p.offset, p.count * sizeof(float)));
  }
  return w.write(path);
}

Status Trainer::resume(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(auto f, gguf::GgufFile::open(path, gguf::Layout::kRaw));
  HEARTH_ASSIGN_OR_RETURN(int64_t step, f->get_int(kStepKey));
  HEARTH_ASSIGN_OR_RETURN(int64_t t, f->get_int("hearth.train.adam_t"));
  ParamStore& ps = m_.params();
  auto load = [&](const std::string& name, const ParamInfo& p, float* dst) -> Status {
    const gguf::TensorInfo* ti = f->find_tensor(name);
    if (!ti) return corrupt("[train] checkpoint " + path + " has no tensor " + name);
    if (ti->type != DType::F32 || ti->shape != p.shape)
      return corrupt("[train] checkpoint tensor " + name + " does not match the model's shape");
    std::memcpy(dst, ti->data, p.count * sizeof(float));
    return Status::ok();
  };
  for (const auto& p : ps.infos()) {
    HEARTH_RETURN_IF_ERROR(load(p.name, p, ps.values.data() + p.offset));
    HEARTH_RETURN_IF_ERROR(load("adam.m." + p.name, p, opt_.m.data() + p.offset));
    HEARTH_RETURN_IF_ERROR(load("adam.v." + p.name, p, opt_.v.data() + p.offset));
  }
  step_ = step;
  opt_.t = t;
  return Status::ok();
}

Status Trainer::run(ThreadPool& pool, const Dataset& data,
                    const std::function<bool(const Progress&)>& report) {
  BatchBuffers bb;
  m_.params_changed(pool);
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t first = step_;
  Progress pr;
  pr.steps = o_.steps;
  const int64_t tokens_per_step = o_.n_seq * o_.n_tok * o_.grad_accum;
  while (step_ < o_.steps) {
    // Each step's batches depend only on (seed, step): a resumed run sees the same data.
    Rng rng(o_.seed * 0x9E3779B97F4A7C15ull + uint64_t(step_) + 1);
    m_.params().zero_grads();
    // Sum the micro-batches' losses, then scale: the step's gradient is that of the mean loss
    // over every weighted token of the step.
    double loss = 0, weight = 0;
    for (int a = 0; a < o_.grad_accum; ++a) {
      HEARTH_RETURN_IF_ERROR(sample_batch(data.train, o_.n_seq, o_.n_tok, rng, bb));
      HEARTH_ASSIGN_OR_RETURN(LossSum r, m_.run(pool, bb.batch(o_.n_seq, o_.n_tok), true, 1.0f));
      loss += r.loss;
      weight += r.weight;
    }
    if (weight > 0) {
      const float inv = float(1.0 / weight);
      for (auto& g : m_.params().grads) g *= inv;
      pr.lr = learning_rate(o_, step_);
      pr.grad_norm = opt_.step(pool, m_.params(), o_.adam, pr.lr);
      m_.params_changed(pool);
    }
    ++step_;
    pr.step = step_;
    pr.loss = weight > 0 ? loss / weight : 0;
    pr.tokens = step_ * tokens_per_step;
    pr.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    pr.tokens_per_s = double((step_ - first) * tokens_per_step) / std::max(1e-9, pr.elapsed_s);
    pr.eta_s = double(o_.steps - step_) * tokens_per_step / std::max(1e-9, pr.tokens_per_s);
    pr.eval_loss = -1;
    const bool last = step_ == o_.steps;
    if (!data.eval.tokens.empty() && ((o_.eval_every > 0 && step_ % o_.eval_every == 0) || last)) {
      HEARTH_ASSIGN_OR_RETURN(pr.eval_loss,
                              evaluate(pool, m_, data.eval, o_.n_seq, o_.n_tok, o_.eval_windows));
    }
    const bool keep_going = report ? report(pr) : true;
    if (!o_.checkpoint.empty() &&
        (last || !keep_going || (o_.checkpoint_every > 0 && step_ % o_.checkpoint_every == 0)))
      HEARTH_RETURN_IF_ERROR(save(o_.checkpoint));
    if (!keep_going) break;
  }
  return Status::ok();
}

}  // namespace hearth::train
