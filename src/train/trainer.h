// train/trainer.h — the training loop shared by `hearth train` and `hearth finetune`: batches
// drawn from a token stream, gradient accumulation, AdamW with warm-up and cosine decay,
// periodic evaluation, progress reports and resumable checkpoints.
#pragma once

#include <functional>
#include <string>

#include "base/status.h"
#include "base/thread_pool.h"
#include "train/adamw.h"
#include "train/data.h"
#include "train/decoder.h"

namespace hearth::train {

struct TrainOptions {
  int64_t n_seq = 8, n_tok = 256;  // one micro-batch
  int grad_accum = 1;              // micro-batches per optimiser step
  int64_t steps = 1000;
  int64_t warmup = 100;
  float min_lr_ratio = 0.1f;  // cosine decay ends at lr · this
  AdamWOptions adam;
  uint64_t seed = 1;
  int64_t eval_every = 0;     // steps between evaluations (0: only at the end)
  int64_t eval_windows = 32;  // windows of n_tok per evaluation
  std::string checkpoint;     // path written every checkpoint_every steps and at the end
  int64_t checkpoint_every = 0;
};

struct Progress {
  int64_t step = 0, steps = 0;
  double loss = 0;        // mean over this step's weighted tokens
  double eval_loss = -1;  // when evaluated this step
  float lr = 0, grad_norm = 0;
  double tokens_per_s = 0, eta_s = 0, elapsed_s = 0;
  int64_t tokens = 0;  // tokens processed so far (all positions of every window)
};

// Learning rate at `step` (0-based): linear warm-up, then cosine down to lr · min_lr_ratio.
float learning_rate(const TrainOptions& o, int64_t step);

// Mean weighted loss over up to o.eval_windows consecutive windows of `s`.
Result<double> evaluate(ThreadPool& pool, Decoder& m, const TokenStream& s, int64_t n_seq,
                        int64_t n_tok, int64_t max_windows);

class Trainer {
 public:
  Trainer(Decoder& m, const TrainOptions& o) : m_(m), o_(o), opt_(m.params()) {}
  // Continues from a checkpoint written by save() for the same model shape.
  Status resume(const std::string& path);
  Status save(const std::string& path) const;
  // Runs until o.steps; `report` is called after every step (return false to stop early, a
  // checkpoint is then written).
  Status run(ThreadPool& pool, const Dataset& data,
             const std::function<bool(const Progress&)>& report);
  int64_t step() const { return step_; }

 private:
  Decoder& m_;
  TrainOptions o_;
  AdamW opt_;
  int64_t step_ = 0;
};

}  // namespace hearth::train
