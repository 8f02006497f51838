// hearth — a local LLM runtime. Entry point: parses the verb and hands over to its command.
#include <cstdio>

#include "base/version.h"
#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"hearth — run open-weight LLMs locally"};
  app.set_version_flag("-v,--version", std::string("hearth version ") + hearth::kVersion);
  app.require_subcommand(1);
  hearth::cli::add_engine_commands(app);
  hearth::cli::add_bench_command(app);
  hearth::cli::add_spec_bench_command(app);
  hearth::cli::add_quantize_command(app);
  hearth::cli::add_train_command(app);
  hearth::cli::add_perplexity_command(app);
  hearth::cli::add_lora_command(app);
  hearth::cli::add_text_commands(app);
  hearth::cli::add_render_command(app);
  hearth::cli::add_serve_command(app);
  hearth::cli::add_key_command(app);
  hearth::cli::add_client_commands(app);
  hearth::cli::add_fit_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
