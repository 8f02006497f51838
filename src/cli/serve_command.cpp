// cli/serve_command.cpp — `hearth serve`: the Ollama-compatible HTTP server.
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "runtime/scheduler.h"
#include "server/api.h"
#include "server/http.h"
#include "server/listen.h"
#include "store/store.h"

namespace hearth::cli {

namespace {
server::HttpServer* g_server = nullptr;
extern "C" void on_signal(int) {
  if (g_server) g_server->stop();
}
}  // namespace

void add_serve_command(CLI::App& app) {
  auto* c = app.add_subcommand("serve",
                               "start the server (HEARTH_HOST / OLLAMA_HOST, default "
                               "127.0.0.1:11434; models in HEARTH_MODELS)");
  c->callback([] {
    auto addr = server::listen_address_from_env();
    if (!addr) {
      std::fprintf(stderr, "hearth: %s\n", addr.status().message().c_str());
      std::exit(1);
    }
    int rc = 0;
    {
      store::Store st(store::Store::default_root());
      std::error_code ec;
      std::filesystem::create_directories(st.root() + "/blobs", ec);
      auto sched = std::make_unique<runtime::Scheduler>(runtime::SchedulerOptions::from_env());
      server::Api api(st, sched.get());
      server::ServerOptions o;
      o.host = addr->host;
      o.port = addr->port;
      o.file_body_prefixes = {"/api/blobs/"};
      o.upload_dir = st.root() + "/blobs";
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
      sched.reset();  // stop generations while the server's sockets still exist
    }
    std::exit(rc);
  });
}

}  // namespace hearth::cli
