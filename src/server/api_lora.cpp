// LoRA adapter selection (llama-server's shape): a request's `lora: [{"id": N, "scale": S}]`
// (adapters it does not list run at 0; without the field, the model's ADAPTER lines apply at
// their scales, or at the scales last set through POST /lora-adapters), and GET/POST
// /lora-adapters, per model (?model=NAME; the one loaded model when there is a single one).
#include <mutex>

#include "base/json_depth.h"
#include "server/api.h"
#include "server/api_request.h"
#include "server/api_util.h"

namespace hearth::server {
namespace {

// Scales set through POST /lora-adapters, by model name, each tied to an adapter digest (a model
// re-created with other adapters does not inherit them).
struct GlobalScales {
  std::mutex mu;
  std::map<std::string, std::vector<std::pair<std::string, float>>> by_model;
};
GlobalScales& global_scales() {
  static GlobalScales g;
  return g;
}

// The scale of each of the model's adapters when a request says nothing.
std::vector<float> default_scales(const store::ModelRecord& rec) {
  std::vector<float> sc;
  for (const auto& a : rec.adapters) sc.push_back(a.scale);
  auto& g = global_scales();
  std::lock_guard lk(g.mu);
  auto it = g.by_model.find(rec.name.display());
  if (it != g.by_model.end())
    for (size_t i = 0; i < rec.adapters.size() && i < it->second.size(); ++i)
      if (it->second[i].first == rec.adapters[i].digest) sc[i] = it->second[i].second;
  return sc;
}

// [{"id": N, "scale": S}, ...] against a model's adapters; errors name the entry.
Status parse_selection(const json& l, size_t n, std::vector<float>& sc) {
  if (!l.is_array())
    return invalid_argument("field 'lora' must be an array of {\"id\", \"scale\"}");
  for (const json& e : l) {
    if (!e.is_object() || !e.contains("id") || !e["id"].is_number_integer())
      return invalid_argument("each 'lora' entry needs an integer 'id'");
    const int64_t id = e["id"].get<int64_t>();
    if (id < 0 || size_t(id) >= n)
      return invalid_argument("lora: adapter id " + std::to_string(id) + " does not exist (the " +
                              "model has " + std::to_string(n) + " adapter" + (n == 1 ? "" : "s") +
                              ")");
    float s = 1;
    if (e.contains("scale")) {
      if (!e["scale"].is_number()) return invalid_argument("lora: 'scale' must be a number");
      s = e["scale"].get<float>();
    }
    sc[size_t(id)] = s;
  }
  return Status::ok();
}

json adapters_json(const store::ModelRecord& rec) {
  const std::vector<float> sc = default_scales(rec);
  json out = json::array();
  for (size_t i = 0; i < rec.adapters.size(); ++i)
    out.push_back({{"id", i},
                   {"path", rec.adapters[i].path},
                   {"digest", rec.adapters[i].digest},
                   {"scale", sc[i]}});
  return out;
}

}  // namespace

Status select_adapters(const json& j, const store::ModelRecord& rec,
                       std::vector<runtime::AdapterUse>& out) {
  std::vector<float> sc = default_scales(rec);
  if (j.contains("lora") && !j["lora"].is_null()) {
    std::fill(sc.begin(), sc.end(), 0.0f);
    HEARTH_RETURN_IF_ERROR(parse_selection(j["lora"], rec.adapters.size(), sc));
  }
  out.clear();
  for (size_t i = 0; i < rec.adapters.size(); ++i)
    if (sc[i] != 0) out.push_back({rec.adapters[i].path, sc[i]});
  return Status::ok();
}

void Api::lora_adapters(const HttpRequest& req, ResponderP res) {
  std::optional<json> body;
  if (req.method == "POST") {  // an array (llama-server's body) or an object: not body_json
    bool too_deep = false;
    json j = parse_json_bounded<json>(req.body, &too_deep);
    if (too_deep || j.is_discarded() || (!j.is_array() && !j.is_object()))
      return res->send(json_error(400, "the body must be [{\"id\": N, \"scale\": S}, ...]"));
    body = std::move(j);
  }
  std::string name = query_value(req.query, "model");
  if (name.empty() && body && body->is_object() && body->contains("model") &&
      (*body)["model"].is_string())
    name = (*body)["model"].get<std::string>();
  if (name.empty() && sched_) {  // llama-server serves one model: the one loaded, if single
    auto loaded = sched_->loaded();
    if (loaded.size() == 1) name = loaded[0].name;
  }
  if (name.empty())
    return res->send(json_error(400,
                                "model is required (?model=NAME) when not exactly one "
                                "model is loaded"));
  auto n = store::ModelName::parse(name);
  if (!n) return res->send(json_error(400, "invalid model name"));
  auto rec = store::resolve_model(store_, *n);
  if (!rec) {
    if (rec.status().code() == StatusCode::kNotFound)
      return res->send(json_error(404, "model '" + name + "' not found"));
    return res->send(json_error(http_status(rec.status().code()), rec.status().message()));
  }
  if (req.method == "POST") {
    // llama-server's body is the array itself; {"model": ..., "lora": [...]} also works.
    const json& l = body->is_object() && body->contains("lora") ? (*body)["lora"] : *body;
    std::vector<float> sc = default_scales(*rec);
    if (auto st = parse_selection(l, rec->adapters.size(), sc); !st)
      return res->send(json_error(400, st.message()));
    auto& g = global_scales();
    std::lock_guard lk(g.mu);
    auto& v = g.by_model[rec->name.display()];
    v.clear();
    for (size_t i = 0; i < rec->adapters.size(); ++i)
      v.emplace_back(rec->adapters[i].digest, sc[i]);
  }
  res->send(json_ok(adapters_json(*rec)));
}

}  // namespace hearth::server
