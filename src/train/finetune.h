// train/finetune.h — one LoRA fine-tuning run, as `hearth finetune` and POST /api/finetune
// run it: the run's length from epochs, the adapter trained on a frozen base and written out.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "gguf/gguf.h"
#include "train/trainer.h"

namespace hearth::train {

struct FinetuneOptions {
  LoraOptions lora;
  TrainOptions train;  // steps are computed from epochs
  double epochs = 1;
  int threads = 0;  // 0: all cores
  std::string resume;
};

struct FinetuneInfo {
  size_t trainable = 0;  // LoRA parameters
  int64_t steps = 0;
  int64_t start_step = 0;  // > 0 when resumed
};

// Trains and writes the adapter to `out`. `started` is told the run's shape before the first
// step; `report` after every step (false stops the run: the checkpoint, if any, is written and
// the adapter is not).
Status finetune(std::shared_ptr<gguf::GgufFile> base, const Dataset& data, FinetuneOptions o,
                const std::string& out, const std::function<void(const FinetuneInfo&)>& started,
                const std::function<bool(const Progress&)>& report);

}  // namespace hearth::train
