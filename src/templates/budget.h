// templates/budget.h — the execution budget both template engines (Go and Jinja) render under.
//
// A template is code written by whoever packaged the model (a GGUF chat_template, a Modelfile
// TEMPLATE); a tiny hostile one must not hang the server or exhaust its memory. Every render
// therefore spends from two budgets, and overrunning either is a render error naming it:
//
// * steps: nodes evaluated, loop iterations and list elements visited by filters and functions,
//   so time is bounded even where no node is evaluated (an empty loop body, `unique` on a list);
// * bytes: the output plus every string and list built or copied while rendering, counted
//   cumulatively (never credited back when freed). That bounds peak memory and the time spent
//   copying, e.g. a string doubled in a loop or a large string looked up a million times.
//
// Both scale with the input, since a request may legitimately carry megabytes of messages that a
// template copies several times over (each `message.content` lookup, `|trim`, `+`, a macro's
// output are all charged):
//
//   steps: max(20 M, 8 × input bytes)     20 M steps take about 0.3 to 2 s of CPU
//   bytes: max(64 MiB, 64 × input bytes)
//
// Input bytes are the context's size as JSON text. Measured on the 47 chat templates in
// ../shared/templates over tests/data/conversations.json, also scaled to 64 KiB contents and to
// hundreds of turns (tests/unit/templates/budget_test.cpp keeps this true): a normal
// conversation takes a few thousand steps and well under 1 MiB; the costliest template charges
// about 21 bytes per input byte on long messages, and linear ones take under 3 steps per input
// byte on many short ones. So a real template has at least 3x headroom, and a hostile one can
// amplify a request by at most these factors (64 MiB of allocations for a normal request, 640
// MiB for a 10 MB one). Templates that are quadratic in the number of messages (Gemma 4's and
// Cohere's scan all messages for each message) reach the floors at about 3000 messages.
//
// Recursion is bounded separately, by depth: Jinja's nested evaluation (macros calling
// themselves) at 400 levels, Go's block nesting at 256; the errors say "recursion deeper than N
// levels". Budget errors say "template exceeded its budget of N steps" or "... of N MiB of
// output/allocations". Running out of memory anyway (std::bad_alloc, std::length_error) is a
// render error too, never an exception leaving the engine.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace hearth::templates {

struct Budget {
  static constexpr int64_t kMinSteps = 20'000'000;
  static constexpr int64_t kStepsPerInputByte = 8;
  static constexpr int64_t kMinBytes = int64_t(64) << 20;
  static constexpr int64_t kBytesPerInputByte = 64;

  int64_t max_steps = kMinSteps;
  int64_t max_bytes = kMinBytes;
  // Spent so far. One budget may span several renders (Ollama's per-turn executions of a legacy
  // template share one, or the request could be multiplied by its number of turns).
  int64_t steps = 0;
  int64_t bytes = 0;

  // The default budget for a render whose context is `input_bytes` of JSON.
  static Budget for_input(uint64_t input_bytes);

  // Each returns false once the budget is overrun (the engine then throws its own error).
  bool spend_steps(uint64_t n) {
    steps = add(steps, n);
    return steps <= max_steps;
  }
  bool spend_bytes(uint64_t n) {
    bytes = add(bytes, n);
    return bytes <= max_bytes;
  }
  // True if `n` more bytes would still fit: checked before an allocation whose size is known in
  // advance, so that a single huge string (indent(10**9)) is refused before it is allocated.
  bool has_room(uint64_t n) const { return add(bytes, n) <= max_bytes; }

  // "template exceeded its budget of 20000000 steps"
  std::string steps_message() const;
  // "template exceeded its budget of 64 MiB of output/allocations"
  std::string bytes_message() const;

 private:
  static int64_t add(int64_t a, uint64_t n) {
    return n > uint64_t(INT64_MAX - a) ? INT64_MAX : a + int64_t(n);
  }
};

// The size of `j` as compact JSON text, computed without serialising it.
uint64_t json_size(const nlohmann::ordered_json& j);

// "recursion deeper than N levels"
std::string recursion_message(int max_depth);

}  // namespace hearth::templates
