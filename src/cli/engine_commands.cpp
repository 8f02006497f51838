#include "cli/commands.h"

namespace hearth::cli {

void add_engine_commands(CLI::App& app) {
  // Filled in as the engine lands (logits, greedy, bench, quantize).
  (void)app;
}

}  // namespace hearth::cli
