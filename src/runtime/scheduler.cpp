#include "runtime/scheduler.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "gguf/gguf.h"
#include "models/cache.h"
#include "models/model.h"
#include "runtime/fit.h"
#include "runtime/runner.h"

namespace hearth::runtime {
namespace {

int env_int(const char* a, const char* b, int def) {
  for (const char* k : {a, b}) {
    const char* v = k ? std::getenv(k) : nullptr;
    if (v && *v) {
      char* end = nullptr;
      const long x = std::strtol(v, &end, 10);
      if (end && *end == 0 && x > 0) return int(x);
    }
  }
  return def;
}

// "16G", "512M", "1073741824" -> bytes; 0 if unset or malformed.
int64_t env_bytes(const char* k) {
  const char* v = std::getenv(k);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  if (!end || x <= 0) return 0;
  double mul = 1;
  switch (*end) {
    case 'k':
    case 'K':
      mul = 1024.0;
      break;
    case 'm':
    case 'M':
      mul = 1024.0 * 1024;
      break;
    case 'g':
    case 'G':
      mul = 1024.0 * 1024 * 1024;
      break;
    case 't':
    case 'T':
      mul = 1024.0 * 1024 * 1024 * 1024;
      break;
    case 0:
      break;
    default:
      return 0;
  }
  return int64_t(x * mul);
}

std::string gib(int64_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f GiB", double(b) / (1024.0 * 1024 * 1024));
  return buf;
}

}  // namespace

SchedulerOptions SchedulerOptions::from_env() {
  SchedulerOptions o;
  o.num_parallel = env_int("HEARTH_NUM_PARALLEL", "OLLAMA_NUM_PARALLEL", o.num_parallel);
  o.max_loaded = env_int("HEARTH_MAX_LOADED_MODELS", "OLLAMA_MAX_LOADED_MODELS", o.max_loaded);
  o.max_queue = size_t(env_int("HEARTH_MAX_QUEUE", "OLLAMA_MAX_QUEUE", int(o.max_queue)));
  o.default_ctx = env_int("HEARTH_CONTEXT_LENGTH", "OLLAMA_CONTEXT_LENGTH", o.default_ctx);
  o.n_threads = env_int("HEARTH_NUM_THREADS", nullptr, 0);
  o.n_batch = std::clamp(env_int("HEARTH_NUM_BATCH", nullptr, o.n_batch), 16, 8192);
  o.memory_limit = env_bytes("HEARTH_MAX_MEMORY");
  for (const char* k : {"HEARTH_KV_CACHE_TYPE", "OLLAMA_KV_CACHE_TYPE"}) {
    const char* v = std::getenv(k);
    if (!v || !*v) continue;
    if (auto t = models::parse_kv_type(v); t.is_ok())
      o.kv_type = *t;
    else  // Ollama, too, falls back to f16 on a type it does not know
      std::fprintf(stderr, "hearth: %s=%s is not f16, q8_0 or q4_0: using f16\n", k, v);
    break;
  }
  for (const char* k : {"HEARTH_KEEP_ALIVE", "OLLAMA_KEEP_ALIVE"}) {
    const char* v = std::getenv(k);
    if (!v || !*v) continue;
    if (auto d = parse_keep_alive(nlohmann::ordered_json(v)); d.is_ok()) o.keep_alive = *d;
    break;
  }
  return o;
}

Result<int64_t> Scheduler::estimate_bytes(const std::string& path, int n_ctx, int n_parallel,
                                          int n_batch, DType kv_type) {
  HEARTH_ASSIGN_OR_RETURN(auto f, gguf::GgufFile::open(path));
  return estimate_bytes(*f, n_ctx, n_parallel, n_batch, kv_type);
}

Result<int64_t> Scheduler::estimate_bytes(const gguf::GgufFile& f, int n_ctx, int n_parallel,
                                          int n_batch, DType kv_type) {
  // The fit advisor's estimate (runtime/fit.h): what `hearth fit` says is what loading checks.
  FitParams p;
  p.n_ctx = n_ctx;
  p.n_seq = std::max(1, n_parallel);
  p.n_batch = n_batch;
  p.kv_type = kv_type;
  HEARTH_ASSIGN_OR_RETURN(MemoryEstimate e, estimate_memory(f, p));
  return e.total();
}

Scheduler::Scheduler(SchedulerOptions o) : opt_(std::move(o)) {
  thread_ = std::thread([this] { loop(); });
}

Scheduler::~Scheduler() {
  std::map<std::string, Entry> doomed;
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
    for (auto& j : pending_)
      j.sink->on_error(Status(StatusCode::kUnavailable, "the server is shutting down"));
    pending_.clear();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lk(mu_);
    doomed.swap(loaded_);
  }
  doomed.clear();  // runner destructors join their threads without holding mu_
}

Status Scheduler::submit(Job j) {
  std::lock_guard<std::mutex> lk(mu_);
  if (stop_) return Status(StatusCode::kUnavailable, "the server is shutting down");
  auto it = loaded_.find(j.model.model_path);
  if (it != loaded_.end() && !it->second.unload_requested) {
    // Requests beyond the model's slots wait in its queue, which is bounded like the load queue.
    if (size_t(it->second.in_flight) >= size_t(opt_.num_parallel) + opt_.max_queue)
      return Status(StatusCode::kUnavailable,
                    "server busy, please try again.  maximum pending requests exceeded");
    dispatch_locked(it->second, std::move(j));
    return Status::ok();
  }
  if (pending_.size() >= opt_.max_queue)
    return Status(StatusCode::kUnavailable,
                  "server busy, please try again.  maximum pending requests exceeded");
  pending_.push_back(std::move(j));
  cv_.notify_all();
  return Status::ok();
}

void Scheduler::dispatch_locked(Entry& e, Job j) {
  e.in_flight++;
  if (j.keep_alive) e.keep_alive = *j.keep_alive;
  e.info.name = j.model.name.display();
  e.info.record = j.model;
  e.info.digest = j.model.digest;
  e.last_used = Clock::now();
  e.runner->enqueue(std::move(j));
}

void Scheduler::job_finished(const std::string& model_path) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    auto it = loaded_.find(model_path);
    if (it == loaded_.end()) return;
    Entry& e = it->second;
    if (e.in_flight > 0) e.in_flight--;
    e.last_used = Clock::now();
    if (e.in_flight == 0) e.expires = e.last_used + e.keep_alive;
  }
  cv_.notify_all();
}

bool Scheduler::unload(const std::string& model_path) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it = loaded_.find(model_path);
  if (it == loaded_.end()) return false;
  it->second.unload_requested = true;
  cv_.notify_all();
  return true;
}

std::vector<LoadedModel> Scheduler::loaded() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<LoadedModel> out;
  const auto now_sys = std::chrono::system_clock::now();
  const auto now = Clock::now();
  for (const auto& [path, e] : loaded_) {
    LoadedModel m = e.info;
    m.model_path = path;
    m.size = e.runner->memory_bytes();
    m.context_length = std::min(opt_.default_ctx, e.runner->context_length());
    m.forever = e.keep_alive.count() < 0;
    if (m.forever) {
      m.expires_at = now_sys + std::chrono::hours(24 * 365 * 100);
    } else {
      const auto exp = e.in_flight > 0 ? now + e.keep_alive : e.expires;
      m.expires_at =
          now_sys + std::chrono::duration_cast<std::chrono::system_clock::duration>(exp - now);
    }
    out.push_back(std::move(m));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.expires_at > b.expires_at; });
  return out;
}

void Scheduler::unload_locked(const std::string& path, std::unique_lock<std::mutex>& lk) {
  auto it = loaded_.find(path);
  if (it == loaded_.end()) return;
  std::shared_ptr<Runner> r = std::move(it->second.runner);
  loaded_.erase(it);
  lk.unlock();
  r.reset();  // joins the runner thread; it may call job_finished, which takes mu_
  lk.lock();
}

Result<bool> Scheduler::load_locked(std::unique_lock<std::mutex>& lk, Job& j) {
  const std::string path = j.model.model_path;
  const int n_ctx = j.opt.num_ctx > 0 ? j.opt.num_ctx : opt_.default_ctx;
  // Opened once: the estimate and the load read the same parsed header (a 128k-token vocabulary
  // takes tens of ms to parse).
  HEARTH_ASSIGN_OR_RETURN(std::shared_ptr<gguf::GgufFile> file, gguf::GgufFile::open(path));
  HEARTH_ASSIGN_OR_RETURN(int64_t need,
                          estimate_bytes(*file, n_ctx, 1, opt_.n_batch, opt_.kv_type));
  // Room: the configured limit minus what loaded models hold, or what the system has free.
  // Idle models are evicted (least recently used first) when that makes the difference.
  for (;;) {
    int64_t held = 0;
    for (const auto& [p, e] : loaded_) held += e.runner->memory_bytes();
    const int64_t avail = opt_.memory_limit > 0 ? opt_.memory_limit - held : memory_available();
    const bool too_many = int(loaded_.size()) >= opt_.max_loaded;
    if (need <= avail && !too_many) break;
    // Evict the least recently used idle model.
    std::string victim;
    Clock::time_point oldest = Clock::time_point::max();
    for (const auto& [p, e] : loaded_)
      if (e.in_flight == 0 && e.last_used < oldest) {
        oldest = e.last_used;
        victim = p;
      }
    if (victim.empty()) {
      if (too_many && need <= avail) return false;
      if (loaded_.empty() || need > avail + held)
        return Status(StatusCode::kResourceExhausted, "model requires more system memory (" +
                                                          gib(need) + ") than is available (" +
                                                          gib(std::max<int64_t>(avail, 0)) + ")");
      return false;  // wait: busy models will free memory
    }
    unload_locked(victim, lk);
  }
  lk.unlock();
  const auto t0 = Clock::now();
  // A model file can ask for absurd sizes (vocabulary, context): an allocation that fails is
  // this request's error, not the process's end.
  Result<std::shared_ptr<Runner>> r = Status(StatusCode::kInternal, "not loaded");
  try {
    r = Runner::load(this, path, opt_, j.model.draft_path, std::move(file));
  } catch (const std::bad_alloc&) {
    r = Status(StatusCode::kResourceExhausted, "out of memory while loading the model");
  } catch (const std::length_error&) {
    r = Status(StatusCode::kResourceExhausted, "out of memory while loading the model");
  } catch (const std::exception& e) {  // the file is read on this thread: nothing may escape it
    r = internal_error(std::string("loading the model failed: ") + e.what());
  }
  lk.lock();
  if (!r) return r.status();
  Entry e;
  e.runner = *r;
  e.keep_alive = opt_.keep_alive;
  e.last_used = Clock::now();
  e.expires = e.last_used + e.keep_alive;
  e.info.model_path = path;
  loaded_.emplace(path, std::move(e));
  j.load_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  return true;
}

void Scheduler::loop() {
  std::unique_lock<std::mutex> lk(mu_);
  while (!stop_) {
    // Unload what expired or was asked to go, once idle.
    const auto now = Clock::now();
    Clock::time_point next_wake = now + std::chrono::seconds(60);
    std::vector<std::string> drop;
    for (auto& [p, e] : loaded_) {
      if (e.in_flight > 0) continue;
      const bool forever = e.keep_alive.count() < 0;
      if (e.unload_requested || (!forever && e.expires <= now))
        drop.push_back(p);
      else if (!forever)
        next_wake = std::min(next_wake, e.expires);
    }
    for (const auto& p : drop) unload_locked(p, lk);
    if (stop_) break;

    // Serve the oldest waiting job: dispatch if its model is loaded, else load it.
    bool progressed = false;
    while (!pending_.empty() && !stop_) {
      Job& j = pending_.front();
      if (j.sink->cancelled()) {
        pending_.pop_front();
        progressed = true;
        continue;
      }
      auto it = loaded_.find(j.model.model_path);
      if (it != loaded_.end()) {
        if (it->second.unload_requested) break;  // wait until it is gone, then reload
        Job job = std::move(j);
        pending_.pop_front();
        dispatch_locked(it->second, std::move(job));
        progressed = true;
        continue;
      }
      Job job = std::move(j);
      pending_.pop_front();
      auto loaded = load_locked(lk, job);
      if (!loaded) {
        job.sink->on_error(loaded.status());
        progressed = true;
        continue;
      }
      if (!*loaded) {
        pending_.push_front(std::move(job));  // retried when a model goes idle
        break;
      }
      auto it2 = loaded_.find(job.model.model_path);
      dispatch_locked(it2->second, std::move(job));
      progressed = true;
    }
    if (progressed) continue;
    cv_.wait_until(lk, next_wake);
  }
}

}  // namespace hearth::runtime
