// server/api_request.h — what every inference endpoint does first (api_inference.cpp): resolve
// the model, merge its parameters with the request's options, read keep_alive; and the job the
// scheduler runs for it. Shared by generate/chat (api_inference.cpp) and embed (api_embed.cpp).
#pragma once

#include <chrono>
#include <memory>
#include <optional>

#include "runtime/scheduler.h"
#include "server/api_util.h"
#include "server/http.h"
#include "store/model.h"
#include "store/store.h"

namespace hearth::server {

struct InferenceRequest {
  store::ModelRecord model;
  std::vector<runtime::AdapterUse> adapters;  // the LoRA adapters the request runs with
  runtime::GenOptions opt;
  std::optional<std::chrono::nanoseconds> keep_alive;
};

// Resolves `model`, merges options, reads logprobs and keep_alive; on failure answers `res`
// (OpenAI's error shape when `oai`) and returns false.
bool prepare(store::Store& st, runtime::Scheduler* sched, const json& j, Responder& res, bool oai,
             const json& options, InferenceRequest& out);

// The LoRA adapters a request runs with: its `lora` field ([{"id", "scale"}], unlisted ids at
// 0), else the model's ADAPTER scales (or those set by POST /lora-adapters). api_lora.cpp.
Status select_adapters(const json& j, const store::ModelRecord& rec,
                       std::vector<runtime::AdapterUse>& out);

// The scheduler's job for a prepared request.
runtime::Job make_job(InferenceRequest r, runtime::PromptSpec p,
                      std::shared_ptr<runtime::Sink> sink);

}  // namespace hearth::server
