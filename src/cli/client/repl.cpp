#include "cli/client/repl.h"

#include <sstream>

#include "store/modelfile.h"

namespace hearth::cli {
namespace {

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream is(s);
  std::vector<std::string> w;
  std::string x;
  while (is >> x) w.push_back(x);
  return w;
}

// Text after the first n words.
std::string rest_after(const std::string& s, int n) {
  size_t i = 0;
  for (int k = 0; k < n; ++k) {
    i = s.find_first_not_of(" \t", i);
    if (i == std::string::npos) return "";
    i = s.find_first_of(" \t", i);
    if (i == std::string::npos) return "";
  }
  return trim(s.substr(i));
}

}  // namespace

ReplAction ReplInput::feed(const std::string& raw) {
  ReplAction a;
  if (in_multiline_) {
    const size_t end = raw.find("\"\"\"");
    if (end == std::string::npos) {
      buffer_ += raw + "\n";
      return a;
    }
    buffer_ += raw.substr(0, end);
    in_multiline_ = false;
    a.kind =
        multiline_target_ == "system" ? ReplAction::Kind::kSetSystem : ReplAction::Kind::kMessage;
    a.text = buffer_;
    buffer_.clear();
    return a;
  }
  const std::string line = trim(raw);
  if (line.empty()) return a;
  if (line.rfind("\"\"\"", 0) == 0) {
    const std::string after = line.substr(3);
    const size_t end = after.find("\"\"\"");
    if (end != std::string::npos) {  // """one line"""
      a.kind = ReplAction::Kind::kMessage;
      a.text = after.substr(0, end);
      return a;
    }
    in_multiline_ = true;
    multiline_target_.clear();
    buffer_ = after.empty() ? "" : after + "\n";
    return a;
  }
  if (line[0] == '/') return command(line);
  a.kind = ReplAction::Kind::kMessage;
  a.text = line;
  return a;
}

ReplAction ReplInput::command(const std::string& line) {
  ReplAction a;
  const auto w = words(line);
  const std::string& c = w[0];
  auto err = [&](const std::string& m) {
    a.kind = ReplAction::Kind::kError;
    a.text = m;
    return a;
  };
  if (c == "/bye" || c == "/exit") {
    a.kind = ReplAction::Kind::kBye;
  } else if (c == "/?" || c == "/help") {
    a.kind = ReplAction::Kind::kHelp;
  } else if (c == "/clear") {
    a.kind = ReplAction::Kind::kClear;
  } else if (c == "/load" || c == "/save") {
    if (w.size() != 2) return err("Usage:\n  " + c + " <modelname>");
    a.kind = c == "/load" ? ReplAction::Kind::kLoad : ReplAction::Kind::kSave;
    a.text = w[1];
  } else if (c == "/show") {
    static const char* what[] = {"info",     "modelfile", "parameters",
                                 "template", "system",    "license"};
    if (w.size() == 2)
      for (const char* x : what)
        if (w[1] == x) {
          a.kind = ReplAction::Kind::kShow;
          a.text = x;
          return a;
        }
    return err(
        "Available Commands:\n  /show info\n  /show license\n  /show modelfile\n"
        "  /show parameters\n  /show system\n  /show template");
  } else if (c == "/set") {
    if (w.size() < 2)
      return err(
          "Available Commands:\n  /set parameter <name> <value>\n  /set system <string>\n"
          "  /set format json\n  /set noformat\n  /set verbose\n  /set quiet\n"
          "  /set think [low|medium|high]\n  /set nothink");
    const std::string& what = w[1];
    if (what == "parameter") {
      if (w.size() < 4) return err("Usage:\n  /set parameter <name> <value>");
      a.kind = ReplAction::Kind::kSetParam;
      a.name = w[2];
      a.text = rest_after(line, 3);
    } else if (what == "system") {
      const std::string text = rest_after(line, 2);
      if (text.rfind("\"\"\"", 0) == 0) {
        const std::string after = text.substr(3);
        const size_t end = after.find("\"\"\"");
        if (end == std::string::npos) {
          in_multiline_ = true;
          multiline_target_ = "system";
          buffer_ = after.empty() ? "" : after + "\n";
          return ReplAction{};
        }
        a.text = after.substr(0, end);
      } else {
        a.text = text;
      }
      a.kind = ReplAction::Kind::kSetSystem;
    } else if (what == "format") {
      if (w.size() != 3 || w[2] != "json")
        return err("Invalid or missing format. For 'json' mode use '/set format json'");
      a.kind = ReplAction::Kind::kSetFormat;
      a.text = "json";
    } else if (what == "noformat") {
      a.kind = ReplAction::Kind::kSetFormat;
    } else if (what == "think") {
      if (w.size() > 3 || (w.size() == 3 && w[2] != "low" && w[2] != "medium" && w[2] != "high"))
        return err("Usage:\n  /set think [low|medium|high]");
      a.kind = ReplAction::Kind::kSetThink;
      a.text = w.size() == 3 ? w[2] : "true";
    } else if (what == "nothink") {
      a.kind = ReplAction::Kind::kSetThink;
      a.text = "false";
    } else if (what == "verbose" || what == "quiet") {
      a.kind = ReplAction::Kind::kSetVerbose;
      a.flag = what == "verbose";
    } else {
      return err("Unknown command '/set " + what + "'. Type /? for help");
    }
  } else {
    return err("Unknown command '" + c + "'. Type /? for help");
  }
  return a;
}

std::string ReplSession::set_parameter(const std::string& name, const std::string& value) {
  bool dep = false;
  if (name == "stop") {
    nlohmann::ordered_json stops = nlohmann::ordered_json::array();
    for (const auto& s : words(value)) stops.push_back(s);
    params["stop"] = stops;
    return "Set parameter 'stop' to '" + value + "'";
  }
  auto v = store::parse_parameter(name, value, &dep);
  if (!v) return "Couldn't set parameter: " + v.status().message();
  if (dep) return "Parameter '" + name + "' is deprecated and was ignored";
  params[name] = *v;
  return "Set parameter '" + name + "' to '" + value + "'";
}

std::string repl_help() {
  return "Available Commands:\n"
         "  /set            Set session variables\n"
         "  /show           Show model information\n"
         "  /load <model>   Load a session or model\n"
         "  /save <model>   Save your current session\n"
         "  /clear          Clear session context\n"
         "  /bye            Exit\n"
         "  /?, /help       Help for a command\n"
         "\n"
         "Use \"\"\" to begin a multi-line message.\n";
}

}  // namespace hearth::cli
