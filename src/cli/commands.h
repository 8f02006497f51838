// cli/commands.h — every `hearth` verb registers itself on the CLI11 app here.
#pragma once

#include <CLI/CLI.hpp>

namespace hearth::cli {

// Engine tools (run in-process, no server): logits, greedy, bench, quantize, info.
void add_engine_commands(CLI::App& app);
void add_bench_command(CLI::App& app);
// Speculative decoding on and off, alternating (bench-spec).
void add_spec_bench_command(CLI::App& app);
void add_quantize_command(CLI::App& app);
// Training: hearth train (from scratch) and hearth finetune (LoRA adapters).
void add_train_command(CLI::App& app);
// Perplexity and KL divergence of a model on a text.
void add_perplexity_command(CLI::App& app);
// A random LoRA adapter for a base model (tests): lora-random.
void add_lora_command(CLI::App& app);
// Text in and out: tokenize, detokenize.
void add_text_commands(CLI::App& app);
// A conversation through a chat template.
void add_render_command(CLI::App& app);
// The hardware-fit advisor (asks the server, or works in-process when none runs).
void add_fit_command(CLI::App& app);
// The Ollama-compatible HTTP server.
void add_serve_command(CLI::App& app);
// The registry signing key: hearth key.
void add_key_command(CLI::App& app);
// Clients of the server: list, ps, show, cp, rm, stop, create, run.
void add_client_commands(CLI::App& app);

}  // namespace hearth::cli
