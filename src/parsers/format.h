// parsers/format.h — how a model family writes thinking and tool calls in its output: one small
// descriptor per format (the markers and the syntax of a call's body), read by the one streaming
// engine in output_parser.h.
//
// The format of a model is chosen from its Modelfile PARSER (Ollama's names), then its GGUF
// architecture, then fingerprints of its chat template — never from the model's name.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hearth::parsers {

enum class CallSyntax {
  kNone,
  kHermesJson,  // <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Qwen 2.5/3, Hermes)
  kQwenXml,     // <tool_call><function=NAME><parameter=P>value</parameter></function></tool_call>
  kGemma4,      // <|tool_call>call:NAME{key:<|"|>v<|"|>,...}<tool_call|>
  kLlamaJson,   // {"name": ..., "parameters": {...}} as the whole reply, or after <|python_tag|>
  kPythonic,    // [f(a=1), g(b="x")] as the whole reply (Llama 4, pythonic templates)
  kDeepSeek,  // <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>...<｜tool▁calls▁end｜>
  kMistral,   // [TOOL_CALLS]NAME[ARGS]{...} repeated, or [TOOL_CALLS][{...}, ...]
};

struct Format {
  std::string name;  // Ollama's parser name where there is one ("qwen3", "qwen3.5", "gemma4", ...)
  // Thinking: the block between think_open and think_close. think_label is a word the model
  // writes right after think_open that is not part of the thought (Gemma 4's "thought").
  std::string think_open, think_close, think_label;
  CallSyntax syntax = CallSyntax::kNone;
  // Tagged syntaxes: a call's body lies between call_open and call_close. The untagged ones
  // (kLlamaJson, kPythonic, kMistral) take the rest of the reply from call_open (if any) or from a
  // reply that starts with a JSON object / list.
  std::string call_open, call_close;
  bool call_ends_thinking = false;       // a call opened inside thinking closes it (Qwen)
  std::vector<std::string> after_call;   // noise swallowed right after a call (Gemma 4)
  std::vector<std::string> extra_stops;  // text that ends generation for this format

  bool has_thinking() const { return !think_open.empty(); }
  bool has_tools() const { return syntax != CallSyntax::kNone; }
  // Every marker string, for finding the ones that are single vocabulary tokens.
  std::vector<std::string> markers() const;
};

// Ollama's parser names (Modelfile PARSER): qwen3, qwen3-thinking, qwen3.5, qwen3-coder, gemma4,
// llama3 / llama3-json, llama4, pythonic, deepseek, mistral, hermes, none. nullptr if unknown.
const Format* format_by_name(std::string_view name);

// The format for a model: `parser` (Modelfile PARSER, may be empty) wins, then the architecture,
// then the chat template's text. A model with none of them gets the plain format (no thinking,
// no tools), whose output is all content.
Format select_format(std::string_view parser, std::string_view arch,
                     std::string_view chat_template);

// Whether a chat template (Jinja or Go) renders tool definitions — Ollama's `tools` capability:
// requests with tools on a model whose template cannot show them are refused, as Ollama does.
bool template_supports_tools(std::string_view chat_template);

}  // namespace hearth::parsers
