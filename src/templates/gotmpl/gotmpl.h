// templates/gotmpl/gotmpl.h — the Go text/template subset Ollama's Modelfile TEMPLATEs use.
//
// Data is JSON: field access `.Name` looks up the member "Name" of the current object (Ollama
// passes Go structs; tests and the chat renderer build the equivalent JSON: System, Prompt,
// Response, Suffix, Messages[{Role, Content, ToolCalls[{Function{Name, Arguments}}]}], Tools...).
// An object member "__json__" gives the JSON the object prints as (Ollama's tool and argument
// types print themselves as JSON). Errors name the line and the construct; hostile input never
// crashes or hangs: every render runs under a budget of steps and bytes (templates/budget.h).
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"
#include "templates/budget.h"

namespace hearth::templates::gotmpl {

class Template {
 public:
  static Result<Template> parse(std::string_view source);
  // Renders under Budget::for_input(the size of `data`).
  Result<std::string> render(const nlohmann::ordered_json& data) const;
  // Renders spending from `budget`, which may be shared by several renders (and is left holding
  // what was spent).
  Result<std::string> render(const nlohmann::ordered_json& data, Budget& budget) const;
  // Ollama's legacy (per-turn) mode for the last turn: everything after the first {{ .Response }}
  // in the template is dropped, so the prompt ends where the model's answer starts.
  Result<std::string> render_cut_after_response(const nlohmann::ordered_json& data) const;
  Result<std::string> render_cut_after_response(const nlohmann::ordered_json& data,
                                                Budget& budget) const;
  // True if the template refers to the given top-level field anywhere (e.g. "Messages", "Suffix",
  // "Tools"): Ollama picks how to fill the data by what the template uses.
  bool uses(std::string_view field) const;

  struct Impl;

 private:
  Result<std::string> render_impl(const nlohmann::ordered_json& data, bool cut,
                                  Budget& budget) const;
  std::shared_ptr<const Impl> impl_;
};

}  // namespace hearth::templates::gotmpl
