// cli/serve_command.cpp — `hearth serve`: the Ollama-compatible HTTP server; `hearth prune`: its
// store's garbage collection.
#include <sys/resource.h>
#include <unistd.h>

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "registry/key.h"
#include "runtime/scheduler.h"
#include "server/access.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/http.h"
#include "server/listen.h"
#include "store/store.h"
#include "web/docs_api.h"
#include "web/ui_api.h"

namespace hearth::cli {

namespace {
server::HttpServer* g_server = nullptr;
extern "C" void on_signal(int) {
  if (g_server) g_server->stop();
}

// A server holds a socket per client: use the hard limit, not the (often 1024) soft one.
void raise_fd_limit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &r);
  }
}

// "1000", "512M", "2G", "1.5T" (powers of 1024) -> bytes.
Result<uint64_t> parse_size(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || v < 0) return invalid_argument("invalid size '" + s + "'");
  double mul = 1;
  const std::string unit = end;
  if (unit == "K" || unit == "KB" || unit == "KiB")
    mul = 1024.0;
  else if (unit == "M" || unit == "MB" || unit == "MiB")
    mul = 1024.0 * 1024;
  else if (unit == "G" || unit == "GB" || unit == "GiB")
    mul = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "TB" || unit == "TiB")
    mul = 1024.0 * 1024 * 1024 * 1024;
  else if (!unit.empty())
    return invalid_argument("invalid size unit in '" + s + "'");
  return uint64_t(v * mul);
}

// Store garbage collection: at start and then hourly, temporaries and unreferenced blobs older
// than an hour (an uploaded blob gets that long to be used by a create). HEARTH_NOPRUNE or
// OLLAMA_NOPRUNE keeps unreferenced blobs (temporaries still go).
class GarbageCollector {
 public:
  explicit GarbageCollector(store::Store& s) : s_(s) {
    // The only server on this store: every temporary file there is from a process that died.
    // Otherwise (another server shares it) only those untouched for an hour.
    const bool alone = s_.try_lock_exclusive();
    if (!alone)
      std::fprintf(stderr, "hearth: another process holds %s/.lock; sharing the store with it\n",
                   s_.root().c_str());
    run(alone ? std::chrono::seconds(0) : std::chrono::hours(1));
    thread_ = std::thread([this] {
      std::unique_lock<std::mutex> lk(mu_);
      while (!cv_.wait_for(lk, std::chrono::hours(1), [this] { return stop_; })) {
        lk.unlock();
        run(std::chrono::hours(1));
        lk.lock();
      }
    });
  }
  ~GarbageCollector() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run(std::chrono::seconds temp_age) {
    const bool keep_blobs = env_true("HEARTH_NOPRUNE") || env_true("OLLAMA_NOPRUNE");
    auto r = s_.collect_garbage(temp_age, std::chrono::hours(1), /*dry_run=*/false, keep_blobs);
    if (!r) {
      std::fprintf(stderr, "hearth: store cleanup: %s\n", r.status().message().c_str());
      return;
    }
    if (r->temporaries || r->blobs)
      std::fprintf(
          stderr,
          "hearth: store cleanup: removed %d temporary files and %d unused blobs (%.1f MB)\n",
          r->temporaries, r->blobs, double(r->bytes) / 1e6);
    if (r->unreadable_manifest)
      std::fprintf(stderr,
                   "hearth: store cleanup: a manifest does not parse; no blob was removed\n");
  }
  static bool env_true(const char* k) {
    const char* v = std::getenv(k);
    return v && *v && std::string(v) != "0" && std::string(v) != "false";
  }
  store::Store& s_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

void add_serve_command(CLI::App& app) {
  {
    auto* c = app.add_subcommand(
        "prune",
        "remove temporary files of interrupted writes and blobs no model uses (models in "
        "HEARTH_MODELS); `serve` does this at start and hourly for files older than an hour");
    auto min_age = std::make_shared<double>(0);
    auto dry = std::make_shared<bool>(false);
    c->add_option("--min-age", *min_age, "only files untouched for this many seconds (default 0)");
    c->add_flag("-n,--dry-run", *dry, "only list what would be removed");
    c->callback([min_age, dry] {
      store::Store st(store::Store::default_root());
      // While a server runs on this store, its writes in progress are left alone.
      const auto age = std::chrono::seconds(int64_t(*min_age));
      const bool alone = st.try_lock_exclusive();
      if (!alone)
        std::fprintf(stderr,
                     "hearth: a server is using this store; files younger than an hour are "
                     "kept\n");
      const auto safe = alone ? age : std::max(age, std::chrono::seconds(3600));
      auto r = st.collect_garbage(safe, safe, *dry);
      if (!r) {
        std::fprintf(stderr, "Error: %s\n", r.status().message().c_str());
        std::exit(1);
      }
      std::printf("%s %d temporary files and %d unused blobs (%.1f MB)\n",
                  *dry ? "would remove" : "removed", r->temporaries, r->blobs,
                  double(r->bytes) / 1e6);
      if (r->unreadable_manifest) {
        std::fprintf(stderr, "Error: a manifest does not parse; no blob was removed\n");
        std::exit(1);
      }
    });
  }
  auto* c = app.add_subcommand("serve",
                               "start the server (HEARTH_HOST / OLLAMA_HOST, default "
                               "127.0.0.1:11434; models in HEARTH_MODELS)");
  c->callback([] {
    auto addr = server::listen_address_from_env();
    if (!addr) {
      std::fprintf(stderr, "hearth: %s\n", addr.status().message().c_str());
      std::exit(1);
    }
    // The key that signs registry token requests, generated (and shown) when there is none,
    // as `ollama serve` does; a key that cannot be read only matters for a push or private pull.
    if (auto key = registry::load_or_create_key(); !key) {
      std::fprintf(stderr, "hearth: warning: registry key: %s\n", key.status().message().c_str());
    } else if (key->generated) {
      std::fprintf(stderr,
                   "hearth: couldn't find '%s'. Generated a new private key.\n"
                   "Your new public key is:\n\n%s\n\n",
                   key->path.c_str(), key->key.authorized_key().c_str());
    }
    int rc = 0;
    {
      store::Store st(store::Store::default_root());
      std::error_code ec;
      std::filesystem::create_directories(st.root() + "/blobs", ec);
      raise_fd_limit();
      // What interrupted writes and failed creates left behind, before anything new is written.
      GarbageCollector gc(st);
      auto sched = std::make_unique<runtime::Scheduler>(runtime::SchedulerOptions::from_env());
      server::Api api(st, sched.get());
      if (const char* up = std::getenv("HEARTH_REGISTRY_UPLOADS");
          up && *up && std::string(up) != "0" && std::string(up) != "false")
        api.set_registry_uploads(true);
      if (const char* mu = std::getenv("HEARTH_MAX_UPLOAD"); mu && *mu) {
        auto n = parse_size(mu);
        if (!n) {
          std::fprintf(stderr, "hearth: HEARTH_MAX_UPLOAD: %s\n", n.status().message().c_str());
          std::exit(1);
        }
        api.set_max_upload(*n);
      }
      // The web chat's documents (/ui/api/documents, /collections, /retrieve): ingested by a
      // background worker through this server's models, text extracted by a child process
      // running this binary. A library left with unfinished documents resumes at once.
      char exe[4096];
      const ssize_t exe_len = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
      auto docs = web::DocsApi::from_env(
          web::server_hooks(st, sched.get(), exe_len > 0 ? std::string(exe, size_t(exe_len)) : ""));
      api.add_routes([&docs](const server::HttpRequest& r, server::ResponderP res) {
        return docs->handle(r, std::move(res));
      });
      // The web chat's history API (/ui/api/); its database opens on first use.
      auto ui = web::UiApi::from_env();
      api.add_routes([&ui](const server::HttpRequest& r, server::ResponderP res) {
        return ui->handle(r, std::move(res));
      });
      server::ServerOptions o;
      o.host = addr->host;
      o.port = addr->port;
      // HEARTH_READ_TIMEOUT (seconds): how long a client may stall while sending (default 300;
      // an upload gets at most 60 s between pieces).
      if (const char* t = std::getenv("HEARTH_READ_TIMEOUT"); t && *t) {
        const double sec = std::atof(t);
        if (sec > 0) {
          const auto ms = std::chrono::milliseconds(int64_t(sec * 1000));
          o.idle_timeout = o.body_timeout = ms;
          o.upload_idle_timeout = std::min(o.upload_idle_timeout, ms);
        }
      }
      o.upload = [&api](const server::HttpRequest& head) { return api.start_upload(head); };
      const bool loopback_only = server::is_loopback_host(addr->host);
      o.access =
          std::make_shared<server::AccessPolicy>(server::AccessPolicy::from_env(loopback_only));
      // Beyond loopback the API needs a key (server/auth.h); the key itself is never logged.
      auto auth = server::resolve_api_key(server::AuthEnv::from_env(), loopback_only);
      if (!auth) {
        std::fprintf(stderr, "hearth: %s\n", auth.status().message().c_str());
        std::exit(1);
      }
      if (!auth->warning.empty())
        std::fprintf(stderr, "hearth: warning: %s\n", auth->warning.c_str());
      if (!auth->key.empty()) {
        o.api_key = std::make_shared<server::ApiKey>(auth->key);
        if (auth->source == "HEARTH_API_KEY")
          std::fprintf(stderr, "hearth: API requests need the key in HEARTH_API_KEY\n");
        else
          std::fprintf(stderr,
                       "hearth: API requests need the key in %s%s (send 'Authorization: Bearer "
                       "<key>'; the web UI asks for it, the hearth CLI reads HEARTH_API_KEY)\n",
                       auth->source.c_str(), auth->created ? ", generated now" : "");
      }
      server::HttpServer srv(
          o, [&api](const server::HttpRequest& r, std::shared_ptr<server::Responder> res) {
            api.handle(r, std::move(res));
          });
      if (auto s = srv.start(); !s) {
        std::fprintf(stderr, "hearth: %s\n", s.message().c_str());
        std::exit(1);
      }
      g_server = &srv;
      std::signal(SIGINT, on_signal);
      std::signal(SIGTERM, on_signal);
      std::signal(SIGPIPE, SIG_IGN);
      std::fprintf(stderr, "hearth: listening on %s:%d (models in %s)\n", o.host.c_str(),
                   srv.port(), st.root().c_str());
      srv.run();
      g_server = nullptr;
      docs.reset();   // the ingest worker waits on the scheduler
      sched.reset();  // stop generations while the server's sockets still exist
    }
    std::exit(rc);
  });
}

}  // namespace hearth::cli
