#include "runtime/session.h"

#include <cstdlib>
#include <string>
#include <thread>

namespace hearth::runtime {

bool repack_by_default() {
  const char* e = std::getenv("HEARTH_REPACK");
  if (!e) return true;
  const std::string v(e);
  return !(v == "0" || v == "false" || v == "off" || v == "no");
}

Result<std::unique_ptr<Engine>> Engine::load(const std::string& path, const EngineOptions& o) {
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<gguf::GgufFile> f, gguf::GgufFile::open(path));
  return load(std::move(f), o);
}

Result<std::unique_ptr<Engine>> Engine::load(std::shared_ptr<gguf::GgufFile> file,
                                             const EngineOptions& o) {
  auto e = std::unique_ptr<Engine>(new Engine());
  e->file_ = std::move(file);
  int nt = o.n_threads > 0 ? o.n_threads : int(std::thread::hardware_concurrency());
  e->pool_ = std::make_unique<ThreadPool>(nt < 1 ? 1 : nt);
  models::LoadOptions lo;
  lo.repack = o.repack;
  lo.placement = o.placement;
  HEARTH_ASSIGN_OR_RETURN(e->model_, models::load_model(e->file_, *e->pool_, lo));
  return e;
}

Result<std::shared_ptr<const models::LoraAdapter>> Engine::load_lora(const std::string& path) {
  return models::LoraAdapter::load(path, *model_, *pool_);
}

void Session::add_lora(std::shared_ptr<const models::LoraAdapter> ad, float scale) {
  lora_.push_back(ad.get());
  lora_owned_.push_back(std::move(ad));
  lora_scales_.push_back(scale);
}

Result<std::unique_ptr<Session>> Session::create(Engine& e, const models::ContextParams& p) {
  auto s = std::unique_ptr<Session>(new Session());
  s->engine_ = &e;
  HEARTH_ASSIGN_OR_RETURN(s->ctx_, e.model().new_context(p, e.pool()));
  s->batch_.reserve(size_t(p.n_batch));
  return s;
}

Status Session::eval(std::span<const int32_t> tokens, bool all_logits, float* out) {
  const int n = int(tokens.size());
  if (n == 0) return invalid_argument("[session] no tokens to evaluate");
  if (n_past_ + n > n_ctx())
    return Status(StatusCode::kResourceExhausted, "[session] " + std::to_string(n_past_ + n) +
                                                      " tokens exceed the context of " +
                                                      std::to_string(n_ctx()));
  const int nb = ctx_->params().n_batch;
  const int64_t nv = n_vocab();
  float* dst = out;
  margins_.clear();
  for (int s = 0; s < n; s += nb) {
    const int e = std::min(n, s + nb);
    batch_.clear();
    for (int i = s; i < e; ++i)
      batch_.push_back({tokens[i], n_past_ + i - s, 0, all_logits || i == n - 1});
    const models::LoraBatch lb{lora_, lora_scales_};
    models::ForwardInput in{batch_};
    if (!lora_.empty()) in.lora = &lb;
    HEARTH_RETURN_IF_ERROR(
        engine_->model().eval(*ctx_, in, models::ForwardOutput{models::OutputKind::kLogits, dst}));
    const auto m = ctx_->router_margins();
    margins_.insert(margins_.end(), m.begin(), m.end());
    if (all_logits) dst += int64_t(e - s) * nv;
    n_past_ += e - s;
  }
  return Status::ok();
}

}  // namespace hearth::runtime
