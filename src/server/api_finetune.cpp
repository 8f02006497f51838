// POST /api/finetune (a hearth extension): a LoRA adapter trained on a stored model from chat
// data, progress streamed as NDJSON like /api/pull, the adapter kept as a blob and, when `name`
// is given, a new model made of the base and that adapter (Ollama's ADAPTER layer).
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "server/api.h"
#include "server/api_util.h"
#include "store/model.h"
#include "train/data.h"
#include "train/finetune.h"

namespace hearth::server {
namespace {

std::atomic<bool> g_busy{false};  // one run at a time: it takes every core

// Reads an optional number field into `dst` (kept when absent); false: answered 400.
template <typename T>
bool num_field(const json& j, const char* key, T& dst, Responder& res) {
  if (!j.contains(key) || j[key].is_null()) return true;
  if (!j[key].is_number()) {
    res.send(json_error(400, std::string("field '") + key + "' must be a number"));
    return false;
  }
  dst = j[key].get<T>();
  return true;
}

}  // namespace

void Api::finetune(const HttpRequest& req, ResponderP res) {
  auto j = body_json(req, *res);
  if (!j) return;
  bool te;
  auto model = str_field(*j, "model", nullptr, *res, &te);
  if (te) return;
  if (!model || model->empty()) return res->send(json_error(400, "model is required"));
  auto name = str_field(*j, "name", nullptr, *res, &te);
  if (te) return;
  auto base_name = store::ModelName::parse(*model);
  if (!base_name) return res->send(json_error(400, base_name.status().message()));
  std::optional<store::ModelName> out_name;
  if (name && !name->empty()) {
    auto n = store::ModelName::parse(*name);
    if (!n) return res->send(json_error(400, n.status().message()));
    out_name = *n;
  }
  auto rec = store::resolve_model(store_, *base_name);
  if (!rec) return res->send(error_response(rec.status()));
  json data;
  if (j->contains("data")) {
    data = (*j)["data"];
  } else if (j->contains("data_blob") && (*j)["data_blob"].is_string()) {
    // Large data as an uploaded blob (POST /api/blobs/<digest>) of JSON lines.
    const std::string d = (*j)["data_blob"].get<std::string>();
    if (d.rfind("sha256:", 0) != 0 || !store_.has_blob(d))
      return res->send(json_error(400, "data_blob " + d + " is not a blob in the store"));
    std::ifstream in(store_.blob_path(d.substr(7)));
    data = json::array();
    std::string line;
    int no = 0;
    while (std::getline(in, line)) {
      ++no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto c = json::parse(line, nullptr, false);
      if (c.is_discarded())
        return res->send(json_error(400, "data_blob line " + std::to_string(no) + " is not JSON"));
      data.push_back(std::move(c));
    }
  } else {
    return res->send(json_error(400,
                                "data (an array of {\"messages\": [...]}) or data_blob is "
                                "required"));
  }
  train::FinetuneOptions fo;
  fo.train.n_tok = 512;
  fo.train.n_seq = 1;
  fo.train.grad_accum = 4;
  fo.train.adam.lr = 2e-4f;
  fo.train.adam.weight_decay = 0;
  fo.train.warmup = 20;
  if (!num_field(*j, "rank", fo.lora.rank, *res) || !num_field(*j, "alpha", fo.lora.alpha, *res) ||
      !num_field(*j, "epochs", fo.epochs, *res) ||
      !num_field(*j, "learning_rate", fo.train.adam.lr, *res) ||
      !num_field(*j, "ctx", fo.train.n_tok, *res) ||
      !num_field(*j, "accum", fo.train.grad_accum, *res) ||
      !num_field(*j, "seed", fo.train.seed, *res))
    return;
  if (fo.train.n_tok < 8 || fo.train.n_tok > 32768 || fo.train.grad_accum < 1 ||
      fo.train.grad_accum > 1024 || !(fo.epochs > 0) || fo.epochs > 1000)
    return res->send(json_error(400, "ctx must be 8..32768, accum 1..1024, epochs in (0, 1000]"));
  if (j->contains("targets")) {
    const auto& t = (*j)["targets"];
    if (!t.is_array()) return res->send(json_error(400, "targets must be an array of names"));
    fo.lora.targets.clear();
    for (const auto& x : t) {
      if (!x.is_string()) return res->send(json_error(400, "targets must be an array of names"));
      fo.lora.targets.push_back(x.get<std::string>());
    }
  }
  bool stream = true;
  if (j->contains("stream") && (*j)["stream"].is_boolean()) stream = (*j)["stream"].get<bool>();

  auto file = gguf::GgufFile::open(rec->model_path);
  if (!file) return res->send(error_response(file.status()));
  auto fmt = train::open_data_format(**file);
  if (!fmt) return res->send(error_response(fmt.status()));
  if (!fmt->tmpl)
    return res->send(json_error(400, "the model has no chat template to render the data with"));
  auto ds = train::build_chat_dataset(*fmt->tok, *fmt->tmpl, data, 0);
  if (!ds) return res->send(json_error(400, ds.status().message()));
  if (g_busy.exchange(true))
    return res->send(json_error(409, "a fine-tuning run is already in progress on this server"));
  if (!stream) res->watch_disconnect();

  std::thread([this, res, stream, fo, file = *file, ds = std::move(*ds), rec = std::move(*rec),
               out_name, model = *model] {
    std::shared_ptr<Stream> out;
    auto send = [&](const json& line) {
      if (!stream) return !res->closed();
      if (!out) out = res->stream(200, "application/x-ndjson");
      if (!out || out->closed()) return false;
      return out->write(line.dump() + "\n");
    };
    const std::string tmp =
        store_.downloads_dir() + "/finetune-" + std::to_string(::getpid()) + ".gguf";
    std::filesystem::create_directories(store_.downloads_dir());
    send({{"status", "loading " + model}});
    Status st = train::finetune(
        file, ds, fo, tmp,
        [&](const train::FinetuneInfo& i) {
          send({{"status", "training"},
                {"total_steps", i.steps},
                {"trainable_parameters", i.trainable}});
        },
        [&](const train::Progress& p) {
          json line = {{"status", "training"},
                       {"step", p.step},
                       {"total_steps", p.steps},
                       {"loss", p.loss},
                       {"learning_rate", p.lr},
                       {"tokens", p.tokens},
                       {"tokens_per_second", p.tokens_per_s},
                       {"eta_seconds", p.eta_s}};
          return send(line);
        });
    std::string digest;
    if (st.is_ok()) {
      send({{"status", "writing adapter"}});
      auto d = store_.add_blob_from_file(tmp);
      if (d)
        digest = *d;
      else
        st = d.status();
    }
    std::filesystem::remove(tmp);
    if (st.is_ok() && out_name) {
      send({{"status", "creating " + out_name->display()}});
      auto m = store_.read_manifest(rec.name);
      if (!m) {
        st = m.status();
      } else {
        store::Layer l;
        l.media_type = store::kMediaAdapter;
        l.digest = digest;
        l.size = int64_t(std::filesystem::file_size(store_.blob_path(digest.substr(7))));
        m->layers.push_back(l);
        st = store_.write_manifest(*out_name, *m);
      }
    }
    g_busy = false;
    if (!st.is_ok() && st.code() != StatusCode::kCancelled)
      std::fprintf(stderr, "hearth: finetune %s: %s\n", model.c_str(), st.message().c_str());
    json done = {{"status", "success"}, {"adapter", digest}};
    if (out_name) done["model"] = out_name->display();
    if (out) {
      out->write((st.is_ok() ? done : json{{"error", st.message()}}).dump() + "\n");
      out->end();
    } else if (st.is_ok()) {
      res->send(json_ok(done));
    } else {
      res->send(error_response(st));
    }
  }).detach();
}

}  // namespace hearth::server
