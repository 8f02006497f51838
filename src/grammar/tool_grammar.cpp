#include "grammar/tool_grammar.h"

#include <algorithm>
#include <vector>

#include "grammar/grammar.h"
#include "grammar/json_schema.h"

namespace hearth::grammar {
namespace {

using ojson = nlohmann::ordered_json;
using parsers::CallSyntax;

struct Tool {
  std::string name;
  ojson params;  // the parameters schema (an object schema)
};

Result<std::vector<Tool>> tools_of(const ojson& tools) {
  std::vector<Tool> out;
  if (!tools.is_array() || tools.empty()) return invalid_argument("no tools to call");
  for (const auto& t : tools) {
    const ojson& f = t.is_object() && t.contains("function") ? t["function"] : t;
    if (!f.is_object() || !f.contains("name") || !f["name"].is_string())
      return invalid_argument("each tool needs function.name");
    Tool x;
    x.name = f["name"].get<std::string>();
    x.params = f.contains("parameters") && f["parameters"].is_object()
                   ? f["parameters"]
                   : ojson{{"type", "object"}, {"properties", ojson::object()}};
    out.push_back(std::move(x));
  }
  return out;
}

// The properties of an object schema: required first (in `required` order), then the others.
void ordered_props(const ojson& schema, std::vector<std::pair<std::string, ojson>>& req,
                   std::vector<std::pair<std::string, ojson>>& opt) {
  const ojson props = schema.contains("properties") && schema["properties"].is_object()
                          ? schema["properties"]
                          : ojson::object();
  std::vector<std::string> r;
  if (schema.contains("required") && schema["required"].is_array())
    for (const auto& x : schema["required"])
      if (x.is_string() && props.contains(x.get<std::string>())) r.push_back(x.get<std::string>());
  for (const auto& k : r) req.push_back({k, props[k]});
  for (const auto& [k, v] : props.items())
    if (std::find(r.begin(), r.end(), k) == r.end()) opt.push_back({k, v});
}

bool is_string_schema(const ojson& s) {
  if (!s.is_object() || !s.contains("type")) return false;
  return s["type"].is_string() && s["type"] == "string" && !s.contains("enum") &&
         !s.contains("pattern") && !s.contains("format");
}

// Raw text up to the next '<' (Qwen XML string values, Gemma 4 strings), bounded by maxLength.
std::string raw_text(const ojson& s, const std::string& excluded) {
  std::string rep = "*";
  if (s.is_object() && s.contains("maxLength") && s["maxLength"].is_number_integer()) {
    const int64_t lo = s.contains("minLength") && s["minLength"].is_number_integer()
                           ? s["minLength"].get<int64_t>()
                           : 0;
    rep = "{" + std::to_string(lo) + "," + std::to_string(s["maxLength"].get<int64_t>()) + "}";
  }
  return "[^" + excluded + "\\x00]" + rep;
}

class Builder {
 public:
  Builder(const parsers::Format& f, const ToolGrammarOptions& o) : f_(f), o_(o), sc_("t-") {}

  Result<std::string> build() {
    HEARTH_ASSIGN_OR_RETURN(std::vector<Tool> tools, tools_of(o_.tools));
    std::string body;
    switch (f_.syntax) {
      case CallSyntax::kHermesJson:
      case CallSyntax::kLlamaJson: {
        const char* args = f_.syntax == CallSyntax::kHermesJson ? "arguments" : "parameters";
        const std::string w = sc_.ws();
        for (const auto& t : tools) {
          HEARTH_ASSIGN_OR_RETURN(std::string a, sc_.value(t.params));
          body += std::string(body.empty() ? "" : " | ") + "(" +
                  gbnf_literal(ojson(t.name).dump()) + " " + w + " \",\" " + w + " " +
                  gbnf_literal(std::string("\"") + args + "\"") + " " + w + " \":\" " + w + " " +
                  a + ")";
        }
        body = "\"{\" " + w + " \"\\\"name\\\"\" " + w + " \":\" " + w + " (" + body + ") " + w +
               " \"}\"";
        if (f_.syntax == CallSyntax::kHermesJson) body = "\"\\n\"? " + body + " \"\\n\"?";
        break;
      }
      case CallSyntax::kQwenXml: {
        for (const auto& t : tools) {
          HEARTH_ASSIGN_OR_RETURN(std::string params, qwen_params(t));
          body += std::string(body.empty() ? "" : " | ") + "(" +
                  gbnf_literal("<function=" + t.name + ">\n") + " " + params + " " +
                  gbnf_literal("</function>") + ")";
        }
        body = "\"\\n\"? (" + body + ") \"\\n\"?";
        break;
      }
      case CallSyntax::kGemma4: {
        for (const auto& t : tools) {
          HEARTH_ASSIGN_OR_RETURN(std::string args, gemma_object(t.params, 0));
          body += std::string(body.empty() ? "" : " | ") + "(" + gbnf_literal(t.name) + " " + args +
                  ")";
        }
        body = "\"call:\" (" + body + ")";
        break;
      }
      default:
        return invalid_argument("tool calls of the '" + f_.name +
                                "' format cannot be enforced; use tool_choice \"auto\"");
    }
    const std::string open = marker(f_.call_open), close = marker(f_.call_close);
    std::string root;
    if (!o_.whole) {
      if (f_.call_close.empty()) return invalid_argument("untagged calls have no body grammar");
      root = "root ::= call-body " + close + "\n";
    } else {
      const std::string one =
          (open.empty() ? "" : open + " ") + "call-body" + (close.empty() ? "" : " " + close);
      root = "root ::= " + one + (o_.parallel ? " (\"\\n\"? " + one + ")*" : "") + "\n";
    }
    return root + "call-body ::= " + body + "\n" + sc_.rules() + extra_;
  }

 private:
  std::string marker(const std::string& m) {
    if (m.empty()) return "";
    const int32_t id = o_.marker_token ? o_.marker_token(m) : -1;
    return id >= 0 ? "<[" + std::to_string(id) + "]>" : gbnf_literal(m);
  }

  // <parameter=P>\nVALUE\n</parameter>\n for each property (required ones, then optional ones).
  Result<std::string> qwen_params(const Tool& t) {
    std::vector<std::pair<std::string, ojson>> req, opt;
    ordered_props(t.params, req, opt);
    std::string r;
    auto one = [&](const std::string& name, const ojson& s) -> Result<std::string> {
      std::string v;
      if (is_string_schema(s)) {
        v = raw_text(s, "<");
      } else if (s.is_object() && s.contains("enum") && s["enum"].is_array()) {
        // Values are raw text: strings without quotes.
        for (const auto& e : s["enum"])
          v += (v.empty() ? "" : " | ") +
               gbnf_literal(e.is_string() ? e.get<std::string>() : e.dump());
        v = "(" + v + ")";
      } else {
        HEARTH_ASSIGN_OR_RETURN(v, sc_.value(s));
      }
      return gbnf_literal("<parameter=" + name + ">\n") + " " + v + " " +
             gbnf_literal("\n</parameter>\n");
    };
    for (const auto& [k, s] : req) {
      HEARTH_ASSIGN_OR_RETURN(std::string x, one(k, s));
      r += (r.empty() ? "" : " ") + x;
    }
    for (const auto& [k, s] : opt) {
      HEARTH_ASSIGN_OR_RETURN(std::string x, one(k, s));
      r += (r.empty() ? "" : " ") + ("(" + x + ")?");
    }
    return r.empty() ? std::string("\"\"") : r;
  }

  // Gemma 4's argument syntax: {key:value,...} with <|"|>-quoted strings and bare keys.
  Result<std::string> gemma_object(const ojson& s, int depth) {
    if (depth > 16) return invalid_argument("tool parameters nest too deeply");
    std::vector<std::pair<std::string, ojson>> req, opt;
    ordered_props(s, req, opt);
    std::vector<std::string> items;
    for (const auto& [k, v] : req) {
      HEARTH_ASSIGN_OR_RETURN(std::string x, gemma_value(v, depth + 1));
      items.push_back(gbnf_literal(k + ":") + " " + x);
    }
    std::string r = "\"{\"";
    for (size_t i = 0; i < items.size(); ++i) r += (i ? " \",\" " : " ") + items[i];
    for (const auto& [k, v] : opt) {
      HEARTH_ASSIGN_OR_RETURN(std::string x, gemma_value(v, depth + 1));
      const std::string kv = gbnf_literal(k + ":") + " " + x;
      // Optional keys after others need a comma; a first optional key does not (both allowed).
      r += items.empty() ? " (" + kv + " \",\"?)?" : " (\",\" " + kv + ")?";
    }
    return r + " \"}\"";
  }

  Result<std::string> gemma_value(const ojson& s, int depth) {
    const std::string q = marker("<|\"|>");
    if (is_string_schema(s)) return q + " " + raw_text(s, "<") + " " + q;
    if (s.is_object() && s.contains("type") && s["type"] == "object" && s.contains("properties"))
      return gemma_object(s, depth);
    if (s.is_object() && s.contains("enum") && s["enum"].is_array()) {
      std::string r;
      for (const auto& e : s["enum"])
        r += (r.empty() ? "" : " | ") +
             (e.is_string() ? q + " " + gbnf_literal(e.get<std::string>()) + " " + q
                            : gbnf_literal(e.dump()));
      return "(" + r + ")";
    }
    return sc_.value(s);  // numbers, booleans, arrays: JSON, which the parser also reads
  }

  const parsers::Format& f_;
  const ToolGrammarOptions& o_;
  SchemaCompiler sc_;
  std::string extra_;
};

}  // namespace

Result<std::string> tool_call_grammar(const parsers::Format& format, const ToolGrammarOptions& o) {
  return Builder(format, o).build();
}

}  // namespace hearth::grammar
