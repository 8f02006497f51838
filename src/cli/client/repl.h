// cli/client/repl.h — the interactive chat's input language, separate from I/O so it can be
// tested: plain lines are messages, """ opens and closes a multi-line message, and slash
// commands (/set, /show, /clear, /load, /save, /bye, /?) act on the session.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace hearth::cli {

struct ReplAction {
  enum class Kind {
    kNone,      // nothing to do yet (inside a multi-line message), or an empty line
    kMessage,   // text: send it
    kSetParam,  // name, value (already typed in params)
    kSetSystem,
    kSetFormat,   // text: "json" or "" (noformat)
    kSetVerbose,  // flag
    kSetThink,    // text: "" (thinking off), "true", or a level (low, medium, high)
    kShow,        // text: info, modelfile, parameters, template, system, license
    kClear,
    kLoad,  // text: model
    kSave,  // text: model
    kBye,
    kHelp,
    kError,  // text: what to print
  };
  Kind kind = Kind::kNone;
  std::string text, name;
  bool flag = false;
};

class ReplInput {
 public:
  // One line of input (without the newline).
  ReplAction feed(const std::string& line);
  // True inside a """ message: the prompt shows "... ".
  bool continuing() const { return in_multiline_; }

 private:
  ReplAction command(const std::string& line);
  bool in_multiline_ = false;
  std::string buffer_;
  std::string multiline_target_;  // "" (message) or "system" (/set system """...""")
};

// Session state the actions change.
struct ReplSession {
  std::string model;
  std::optional<std::string> system;
  nlohmann::ordered_json params = nlohmann::ordered_json::object();
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  std::string format;
  bool verbose = false;
  std::optional<std::string> think;  // unset: the model's default; "false", "true" or a level
  // Applies a /set parameter; returns the message to print.
  std::string set_parameter(const std::string& name, const std::string& value);
};

std::string repl_help();

}  // namespace hearth::cli
