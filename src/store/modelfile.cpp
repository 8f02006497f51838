#include "store/modelfile.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "base/utf8.h"

namespace hearth::store {

namespace {

using ojson = nlohmann::ordered_json;

enum class Kind { kInt, kFloat, kBool, kStrings };

struct Opt {
  const char* name;
  Kind kind;
};

// Ollama's options (api/types.go): sampling, then load-time ones.
constexpr Opt kOptions[] = {
    {"num_ctx", Kind::kInt},
    {"num_predict", Kind::kInt},
    {"num_keep", Kind::kInt},
    {"temperature", Kind::kFloat},
    {"top_k", Kind::kInt},
    {"top_p", Kind::kFloat},
    {"min_p", Kind::kFloat},
    {"typical_p", Kind::kFloat},
    {"repeat_last_n", Kind::kInt},
    {"repeat_penalty", Kind::kFloat},
    {"presence_penalty", Kind::kFloat},
    {"frequency_penalty", Kind::kFloat},
    {"seed", Kind::kInt},
    {"stop", Kind::kStrings},
    {"num_batch", Kind::kInt},
    {"num_gpu", Kind::kInt},
    {"main_gpu", Kind::kInt},
    {"use_mmap", Kind::kBool},
    {"num_thread", Kind::kInt},
    {"draft_num_predict", Kind::kInt},
    {"lookup_decoding", Kind::kBool},  // hearth: prompt-lookup speculative decoding
};
constexpr const char* kDeprecated[] = {
    "mirostat",  "mirostat_tau", "mirostat_eta", "penalize_newline",
    "low_vram",  "f16_kv",       "logits_all",   "vocab_only",
    "use_mlock", "numa",         "tfs_z",        "num_gqa"};

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = char(std::tolower(uint8_t(c)));
  return r;
}

Status line_error(int line, const std::string& msg) {
  return invalid_argument("(line " + std::to_string(line) + "): " + msg);
}

// Reads one argument starting at text[i] (after leading blanks): """...""", "..." or the rest of
// the line. Advances i past it and counts newlines into `line`.
Result<std::string> read_arg(std::string_view text, size_t& i, int& line, int start_line) {
  while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  if (text.compare(i, 3, "\"\"\"") == 0) {
    const size_t end = text.find("\"\"\"", i + 3);
    if (end == std::string_view::npos)
      return line_error(start_line, "unexpected end of file: unterminated \"\"\"");
    std::string v(text.substr(i + 3, end - i - 3));
    line += int(std::count(v.begin(), v.end(), '\n'));
    i = end + 3;
    return v;
  }
  if (i < text.size() && text[i] == '"') {
    std::string v;
    for (size_t j = i + 1; j < text.size(); ++j) {
      const char c = text[j];
      if (c == '\\' && j + 1 < text.size() && (text[j + 1] == '"' || text[j + 1] == '\\')) {
        v += text[++j];
      } else if (c == '"') {
        i = j + 1;
        return v;
      } else {
        if (c == '\n') ++line;
        v += c;
      }
    }
    return line_error(start_line, "unexpected end of file: unterminated quote");
  }
  const size_t end = std::min(text.find('\n', i), text.size());
  std::string v(text.substr(i, end - i));
  i = end;
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.pop_back();
  return v;
}

// Triple quotes read best for templates; they cannot hold a string that contains """ or starts
// or ends with a quote, which then gets "..." with backslash escapes.
std::string quote(const std::string& s) {
  const bool multi = s.find('\n') != std::string::npos || s.find('"') != std::string::npos;
  if (multi && s.find("\"\"\"") == std::string::npos && s.front() != '"' && s.back() != '"')
    return "\"\"\"" + s + "\"\"\"";
  std::string r = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    r += c;
  }
  return r + "\"";
}

}  // namespace

Result<ojson> parse_parameter(std::string_view name, std::string_view value, bool* deprecated) {
  if (deprecated) *deprecated = false;
  for (const char* d : kDeprecated)
    if (name == d) {
      if (deprecated) *deprecated = true;
      return ojson();
    }
  const Opt* opt = nullptr;
  for (const auto& o : kOptions)
    if (name == o.name) opt = &o;
  if (!opt) return invalid_argument("unknown parameter '" + std::string(name) + "'");
  const std::string v(value);
  switch (opt->kind) {
    case Kind::kInt: {
      char* end = nullptr;
      errno = 0;
      const long long x = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end || errno)
        return invalid_argument("invalid int value [" + v + "] for parameter '" +
                                std::string(name) + "'");
      return ojson(x);
    }
    case Kind::kFloat: {
      char* end = nullptr;
      errno = 0;
      const double x = std::strtod(v.c_str(), &end);
      if (v.empty() || *end || errno)
        return invalid_argument("invalid float value [" + v + "] for parameter '" +
                                std::string(name) + "'");
      return ojson(x);
    }
    case Kind::kBool: {
      const std::string l = lower(v);
      if (l == "true" || l == "1") return ojson(true);
      if (l == "false" || l == "0") return ojson(false);
      return invalid_argument("invalid bool value [" + v + "] for parameter '" + std::string(name) +
                              "'");
    }
    case Kind::kStrings:
      return ojson::array({v});
  }
  return ojson();
}

Result<Modelfile> Modelfile::parse(std::string_view text) {
  Modelfile mf;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM
  // Everything in a Modelfile ends up in JSON (the create request, the layers): refuse bytes
  // that are not UTF-8 here, with their line, rather than fail later without one.
  if (size_t bad = 0; !utf8_well_formed(text, &bad)) {
    const int bad_line = 1 + int(std::count(text.begin(), text.begin() + long(bad), '\n'));
    return invalid_argument("(line " + std::to_string(bad_line) +
                            "): invalid UTF-8 (a Modelfile must be UTF-8 text)");
  }
  size_t i = 0;
  int line = 1;
  bool have_from = false;
  while (i < text.size()) {
    // Skip blank space and newlines between instructions.
    if (text[i] == '\n') {
      ++line;
      ++i;
      continue;
    }
    if (std::isspace(uint8_t(text[i]))) {
      ++i;
      continue;
    }
    const int start = line;
    if (text[i] == '#') {
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && !std::isspace(uint8_t(text[j]))) ++j;
    const std::string cmd = lower(text.substr(i, j - i));
    i = j;
    if (cmd == "parameter" || cmd == "message") {
      while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
      size_t k = i;
      while (k < text.size() && !std::isspace(uint8_t(text[k]))) ++k;
      const std::string key = lower(text.substr(i, k - i));
      i = k;
      if (key.empty())
        return line_error(start, "missing " + std::string(cmd == "parameter" ? "name" : "role"));
      HEARTH_ASSIGN_OR_RETURN(std::string value, read_arg(text, i, line, start));
      if (cmd == "parameter") {
        bool dep = false;
        auto v = parse_parameter(key, value, &dep);
        if (!v) return line_error(start, v.status().message());
        if (dep) {
          mf.warnings.push_back("parameter " + key + " is deprecated and was ignored");
        } else if (key == "stop" && mf.params.contains("stop")) {
          mf.params["stop"].push_back(value);  // repeatable: the values accumulate
        } else {
          mf.params[key] = *v;
        }
      } else {
        if (key != "system" && key != "user" && key != "assistant")
          return line_error(start,
                            "message role must be one of \"system\", \"user\", or \"assistant\"");
        mf.messages.push_back({{"role", key}, {"content", value}});
      }
      continue;
    }
    HEARTH_ASSIGN_OR_RETURN(std::string arg, read_arg(text, i, line, start));
    if (cmd == "from") {
      if (arg.empty()) return line_error(start, "FROM needs a model name or a file path");
      if (!have_from)
        mf.from = arg;  // extra FROM lines (projectors) are not supported yet
      else
        return line_error(start, "more than one FROM (projector models) is not supported yet");
      have_from = true;
    } else if (cmd == "template") {
      mf.template_text = arg;
    } else if (cmd == "system") {
      mf.system = arg;
    } else if (cmd == "license") {
      mf.licenses.push_back(arg);
    } else if (cmd == "requires") {
      mf.requires_version = arg;
    } else if (cmd == "adapter") {
      if (arg.empty()) return line_error(start, "ADAPTER needs a GGUF adapter file path");
      Modelfile::Adapter a{arg, 1.0f};
      // "path 0.5": a trailing number is the scale.
      if (const size_t sp = arg.find_last_of(" \t"); sp != std::string::npos) {
        const std::string tail = arg.substr(sp + 1);
        char* end = nullptr;
        const float v = std::strtof(tail.c_str(), &end);
        if (!tail.empty() && end == tail.c_str() + tail.size()) {
          if (!std::isfinite(v)) return line_error(start, "ADAPTER scale must be a finite number");
          a.scale = v;
          a.path = arg.substr(0, arg.find_last_not_of(" \t", sp) + 1);
        }
      }
      // A path with a line break or another control character is no file name anyone means, and
      // to_text could not print it with a scale (a scale follows a bare path).
      if (std::any_of(a.path.begin(), a.path.end(), [](char c) { return uint8_t(c) < 0x20; }))
        return line_error(start, "ADAPTER path must be one line without control characters");
      mf.adapters.push_back(std::move(a));
    } else if (cmd == "parser") {
      mf.parser = arg;
    } else if (cmd == "renderer") {
      mf.renderer = arg;
    } else if (cmd == "draft") {
      if (arg.empty()) return line_error(start, "DRAFT needs a GGUF file path");
      mf.draft = arg;
    } else {
      return line_error(start,
                        "command must be one of \"from\", \"license\", \"template\", \"system\", "
                        "\"adapter\", \"draft\", \"renderer\", \"parser\", \"parameter\", "
                        "\"message\", or \"requires\"");
    }
  }
  if (!have_from) return invalid_argument("no FROM line");
  if (mf.draft && *mf.draft == mf.from) return invalid_argument("DRAFT must differ from FROM");
  return mf;
}

std::string Modelfile::to_text() const {
  const bool bare = from.find_first_of("\"\n\r") == std::string::npos && !from.empty() &&
                    from.front() != ' ' && from.front() != '\t' && from.back() != ' ' &&
                    from.back() != '\t';
  std::string r = "FROM " + (bare ? from : quote(from)) + "\n";
  if (template_text) r += "TEMPLATE " + quote(*template_text) + "\n";
  if (system) r += "SYSTEM " + quote(*system) + "\n";
  if (renderer) r += "RENDERER " + quote(*renderer) + "\n";
  if (parser) r += "PARSER " + quote(*parser) + "\n";
  for (const auto& [k, v] : params.items()) {
    if (v.is_array()) {
      for (const auto& s : v) r += "PARAMETER " + k + " " + quote(s.get<std::string>()) + "\n";
    } else {
      std::string val = v.dump();
      if (v.is_number_float()) {  // 0.0 -> "0", as Ollama writes it; digits enough to read back
        const double d = v.get<double>();
        char b[40];
        std::snprintf(b, sizeof b, "%.15g", d);
        if (std::strtod(b, nullptr) != d) std::snprintf(b, sizeof b, "%.17g", d);
        val = b;
      }
      r += "PARAMETER " + k + " " + val + "\n";
    }
  }
  for (const auto& m : messages)
    r += "MESSAGE " + m["role"].get<std::string>() + " " + quote(m["content"].get<std::string>()) +
         "\n";
  for (const auto& l : licenses) r += "LICENSE " + quote(l) + "\n";
  if (draft) r += "DRAFT " + quote(*draft) + "\n";
  for (const auto& a : adapters) {
    if (a.scale == 1) {
      r += "ADAPTER " + quote(a.path) + "\n";
    } else {
      char b[40];
      std::snprintf(b, sizeof b, "%.9g", double(a.scale));
      r += "ADAPTER " + a.path + " " + b + "\n";  // bare: a quoted path takes no scale
    }
  }
  if (!requires_version.empty()) r += "REQUIRES " + quote(requires_version) + "\n";
  return r;
}

}  // namespace hearth::store
