// `hearth train`: a small llama-family model trained from scratch on this machine, from plain
// text and chat data, exported as a GGUF any llama.cpp-compatible runtime loads.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <thread>

#include "cli/commands.h"
#include "gguf/gguf.h"
#include "train/data.h"
#include "train/finetune.h"
#include "train/trainer.h"

namespace hearth::cli {
namespace {

struct TrainOpts {
  std::string tokenizer, chat_template_file, out, name = "hearth-trained", resume;
  train::DataOptions data;
  train::DecoderConfig model;
  train::TrainOptions train;
  int threads = 0;
  uint64_t init_seed = 1;
};

std::string fmt_time(double s) {
  char b[32];
  if (s >= 3600)
    std::snprintf(b, sizeof b, "%dh%02dm", int(s / 3600), int(s / 60) % 60);
  else
    std::snprintf(b, sizeof b, "%dm%02ds", int(s / 60), int(s) % 60);
  return b;
}

bool print_progress(const train::Progress& p) {
  if (p.step % 10 == 0 || p.eval_loss >= 0 || p.step == p.steps || p.step <= 3) {
    std::fprintf(stderr, "step %6lld/%lld  loss %.4f", (long long)p.step, (long long)p.steps,
                 p.loss);
    if (p.eval_loss >= 0) std::fprintf(stderr, "  eval %.4f", p.eval_loss);
    std::fprintf(stderr, "  lr %.2e  |g| %.2f  %.0f tok/s  ETA %s\n", double(p.lr),
                 double(p.grad_norm), p.tokens_per_s, fmt_time(p.eta_s).c_str());
  }
  return true;
}

struct FinetuneOpts {
  std::string base, out, resume;
  train::DataOptions data;
  train::LoraOptions lora;
  train::TrainOptions train;
  std::string targets = "q,k,v,o,gate,up,down";
  double epochs = 1;
  int threads = 0;
  int64_t stop_at = 0;
};

int run_finetune(FinetuneOpts& o) {
  auto fail = [](const Status& st) {
    std::fprintf(stderr, "hearth: %s\n", st.message().c_str());
    return 1;
  };
  auto bf = gguf::GgufFile::open(o.base);
  if (!bf) return fail(bf.status());
  auto fmt = train::open_data_format(**bf);
  if (!fmt) return fail(fmt.status());
  auto data = train::build_dataset(*fmt->tok, fmt->tmpl ? &*fmt->tmpl : nullptr, o.data);
  if (!data) return fail(data.status());
  size_t weighted = 0;
  for (float w : data->train.weights) weighted += w > 0;
  std::fprintf(stderr, "data: %zu tokens (%zu with loss) in %zu documents, %zu held back\n",
               data->train.tokens.size(), weighted, data->train.documents, data->eval.documents);
  o.lora.targets.clear();
  for (size_t p = 0; p <= o.targets.size();) {
    size_t c = o.targets.find(',', p);
    if (c == std::string::npos) c = o.targets.size();
    if (c > p) o.lora.targets.push_back(o.targets.substr(p, c - p));
    p = c + 1;
  }
  train::FinetuneOptions fo;
  fo.lora = o.lora;
  fo.train = o.train;
  fo.epochs = o.epochs;
  fo.threads = o.threads;
  fo.resume = o.resume;
  Status st = train::finetune(
      *bf, *data, fo, o.out,
      [&](const train::FinetuneInfo& i) {
        std::fprintf(stderr,
                     "LoRA rank %lld alpha %g on %s: %zu trainable parameters, %lld steps\n",
                     (long long)o.lora.rank, double(o.lora.alpha), o.targets.c_str(), i.trainable,
                     (long long)i.steps);
        if (i.start_step > 0)
          std::fprintf(stderr, "resumed from %s at step %lld\n", o.resume.c_str(),
                       (long long)i.start_step);
      },
      [&](const train::Progress& p) {
        print_progress(p);
        return o.stop_at <= 0 || p.step < o.stop_at;
      });
  if (st.code() == StatusCode::kCancelled) {
    std::fprintf(stderr, "stopped at step %lld%s\n", (long long)o.stop_at,
                 o.train.checkpoint.empty() ? "" : "; continue with --resume (the checkpoint)");
    return 0;
  }
  if (!st) return fail(st);
  std::fprintf(stderr, "wrote %s (load it with a Modelfile ADAPTER line or llama.cpp --lora)\n",
               o.out.c_str());
  return 0;
}

int run_train(TrainOpts& o) {
  auto fail = [](const Status& st) {
    std::fprintf(stderr, "hearth: %s\n", st.message().c_str());
    return 1;
  };
  auto tf = gguf::GgufFile::open(o.tokenizer);
  if (!tf) return fail(tf.status());
  auto fmt = train::open_data_format(**tf, o.chat_template_file);
  if (!fmt) return fail(fmt.status());
  // A template file given on the command line goes into the model; else the tokenizer file's.
  const std::string template_text = o.chat_template_file.empty() ? "" : fmt->tmpl->source;
  auto data = train::build_dataset(*fmt->tok, fmt->tmpl ? &*fmt->tmpl : nullptr, o.data);
  if (!data) return fail(data.status());
  std::fprintf(stderr, "data: %zu training tokens in %zu documents, %zu held back in %zu\n",
               data->train.tokens.size(), data->train.documents, data->eval.tokens.size(),
               data->eval.documents);

  o.model.n_vocab = fmt->tok->n_vocab();
  if (o.model.head_dim == 0 && o.model.n_head > 0)
    o.model.head_dim = o.model.n_embd / o.model.n_head;
  if (o.model.n_head_kv == 0) o.model.n_head_kv = o.model.n_head;
  if (o.model.n_ctx == 0) o.model.n_ctx = o.train.n_tok;
  auto m = train::Decoder::create(o.model, o.init_seed);
  if (!m) return fail(m.status());
  std::fprintf(
      stderr, "model: %zu parameters (%lld layers, n_embd %lld, %lld heads, ff %lld, vocab %lld)\n",
      (*m)->params().total(), (long long)o.model.n_layer, (long long)o.model.n_embd,
      (long long)o.model.n_head, (long long)o.model.n_ff, (long long)o.model.n_vocab);
  ThreadPool pool(o.threads > 0 ? o.threads : int(std::thread::hardware_concurrency()));
  train::Trainer tr(**m, o.train);
  if (!o.resume.empty()) {
    if (Status st = tr.resume(o.resume); !st) return fail(st);
    std::fprintf(stderr, "resumed from %s at step %lld\n", o.resume.c_str(), (long long)tr.step());
  }
  Status st = tr.run(pool, *data, print_progress);
  if (!st) return fail(st);
  if (Status e = (*m)->export_gguf(o.out, o.tokenizer, o.name, template_text); !e) return fail(e);
  std::fprintf(stderr, "wrote %s\n", o.out.c_str());
  return 0;
}

}  // namespace

void add_train_command(CLI::App& app) {
  static TrainOpts o;
  auto* c = app.add_subcommand("train", "train a small llama-family model from scratch");
  c->add_option("--tokenizer", o.tokenizer,
                "GGUF whose tokenizer (and chat template) the model uses")
      ->required();
  c->add_option("--chat-template", o.chat_template_file,
                "Jinja chat template file (replaces the tokenizer file's)");
  c->add_option("--text", o.data.text_files,
                "plain text file (documents split at form-feed lines)");
  c->add_option("--chat", o.data.chat_files, "chat data: JSON lines of {\"messages\": [...]}");
  c->add_option("--chat-repeat", o.data.chat_repeat, "times each conversation is repeated");
  c->add_option("--eval-every-doc", o.data.eval_every, "hold back every n-th document (0: none)");
  c->add_option("--layers", o.model.n_layer, "layers")->default_val(6);
  c->add_option("--embd", o.model.n_embd, "embedding width")->default_val(256);
  c->add_option("--heads", o.model.n_head, "attention heads")->default_val(8);
  c->add_option("--kv-heads", o.model.n_head_kv, "key/value heads (default: --heads)");
  c->add_option("--head-dim", o.model.head_dim, "head size (default: embd / heads)");
  c->add_option("--ff", o.model.n_ff, "feed-forward width")->default_val(768);
  c->add_option("--ctx", o.model.n_ctx, "context length written to the model (default: --tokens)");
  c->add_option("--rope-base", o.model.rope_base, "RoPE frequency base");
  c->add_flag(
      "--untied", [&](int64_t) { o.model.tied_output = false; }, "separate output matrix");
  c->add_option("--seqs", o.train.n_seq, "sequences per micro-batch")->default_val(8);
  c->add_option("--tokens", o.train.n_tok, "tokens per sequence")->default_val(256);
  c->add_option("--accum", o.train.grad_accum, "micro-batches per step")->default_val(1);
  c->add_option("--steps", o.train.steps, "optimiser steps")->default_val(1000);
  c->add_option("--lr", o.train.adam.lr, "peak learning rate")->default_val(3e-3);
  c->add_option("--warmup", o.train.warmup, "warm-up steps")->default_val(100);
  c->add_option("--min-lr", o.train.min_lr_ratio, "final learning rate / peak")->default_val(0.1);
  c->add_option("--wd", o.train.adam.weight_decay, "AdamW weight decay")->default_val(0.1);
  c->add_option("--seed", o.train.seed, "data order seed")->default_val(1);
  c->add_option("--init-seed", o.init_seed, "weight initialisation seed")->default_val(1);
  c->add_option("--eval-every", o.train.eval_every, "steps between evaluations");
  c->add_option("--checkpoint", o.train.checkpoint, "checkpoint file (written periodically)");
  c->add_option("--checkpoint-every", o.train.checkpoint_every, "steps between checkpoints");
  c->add_option("--resume", o.resume, "continue from this checkpoint");
  c->add_option("--name", o.name, "general.name of the model");
  c->add_option("-t,--threads", o.threads, "threads (default: all cores)");
  c->add_option("-o,--output", o.out, "output GGUF")->required();
  c->callback([] { std::exit(run_train(o)); });

  static FinetuneOpts f;
  auto* ft = app.add_subcommand(
      "finetune", "train a LoRA adapter on a frozen (quantized) base model, QLoRA-style");
  ft->add_option("base", f.base, "base model GGUF (llama, qwen2 or qwen3 architecture)")
      ->required();
  ft->add_option("--data", f.data.chat_files, "chat data: JSON lines of {\"messages\": [...]}");
  ft->add_option("--text", f.data.text_files, "plain text (documents split at form-feed lines)");
  ft->add_option("--eval-every-doc", f.data.eval_every, "hold back every n-th document (0: none)")
      ->default_val(0);
  ft->add_option("--rank", f.lora.rank, "LoRA rank")->default_val(16);
  ft->add_option("--alpha", f.lora.alpha, "LoRA alpha (scale = alpha / rank)")->default_val(32);
  ft->add_option("--targets", f.targets, "matrices to adapt: q,k,v,o,gate,up,down,output");
  ft->add_option("--epochs", f.epochs, "passes over the training tokens")->default_val(1);
  ft->add_option("--lr", f.train.adam.lr, "peak learning rate")->default_val(2e-4);
  ft->add_option("--warmup", f.train.warmup, "warm-up steps (at most a tenth of the run)")
      ->default_val(20);
  ft->add_option("--ctx", f.train.n_tok, "tokens per sequence")->default_val(512);
  ft->add_option("--seqs", f.train.n_seq, "sequences per micro-batch")->default_val(1);
  ft->add_option("--accum", f.train.grad_accum, "micro-batches per step")->default_val(4);
  ft->add_option("--wd", f.train.adam.weight_decay, "AdamW weight decay")->default_val(0);
  ft->add_option("--seed", f.train.seed, "data order seed")->default_val(1);
  ft->add_option("--checkpoint", f.train.checkpoint, "checkpoint file (written periodically)");
  ft->add_option("--checkpoint-every", f.train.checkpoint_every, "steps between checkpoints");
  ft->add_option("--resume", f.resume, "continue from this checkpoint");
  ft->add_option("--stop-at", f.stop_at,
                 "stop after this step (the checkpoint is written; --resume continues)");
  ft->add_option("-t,--threads", f.threads, "threads (default: all cores)");
  ft->add_option("-o,--output", f.out, "adapter GGUF to write")->required();
  ft->callback([] { std::exit(run_finetune(f)); });
}

}  // namespace hearth::cli
