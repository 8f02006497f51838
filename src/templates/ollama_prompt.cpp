#include "templates/ollama_prompt.h"

#include <algorithm>

#include "base/json_depth.h"

namespace hearth::templates {

namespace {

using ojson = nlohmann::ordered_json;

std::string str_of(const ojson& m, const char* k) {
  return m.contains(k) && m[k].is_string() ? m[k].get<std::string>() : std::string();
}

// m[k] if m is an object that has it, else null. Tools and tool calls come from requests as
// they are: a field of another type (or a tool that is not an object) must not throw here, on
// the runner's thread, where an exception ends the server.
const ojson& field(const ojson& m, const char* k) {
  static const ojson null;
  return m.is_object() && m.contains(k) ? m[k] : null;
}

// A tool call as the template sees it ({ID, Function: {Index, Name, Arguments}}); Arguments
// prints as its JSON.
ojson tool_call_data(const ojson& tc) {
  const ojson& fn = field(tc, "function");
  ojson args = fn.contains("arguments") ? fn["arguments"] : ojson::object();
  if (args.is_string()) {  // OpenAI-style JSON text
    ojson parsed = parse_json_bounded<ojson>(args.get<std::string>());
    if (!parsed.is_discarded()) args = parsed;
  }
  ojson a = args.is_object() ? args : ojson::object();
  ojson arguments = a;
  arguments["__json__"] = a;
  return {{"ID", str_of(tc, "id")},
          {"Function",
           {{"Index", field(fn, "index").is_number_integer() ? field(fn, "index") : ojson(0)},
            {"Name", str_of(fn, "name")},
            {"Arguments", arguments}}}};
}

ojson message_data(const ojson& m) {
  ojson calls = ojson::array();
  if (m.contains("tool_calls") && m["tool_calls"].is_array())
    for (const auto& tc : m["tool_calls"]) calls.push_back(tool_call_data(tc));
  return {{"Role", str_of(m, "role")},
          {"Content", str_of(m, "content")},
          {"Thinking", str_of(m, "thinking")},
          {"Images", m.contains("images") && m["images"].is_array() ? m["images"] : ojson::array()},
          {"ToolCalls", calls},
          {"ToolName", str_of(m, "tool_name")},
          {"ToolCallID", str_of(m, "tool_call_id")}};
}

// Tool JSON in the field order of Ollama's Go structs (what its templates print): function
// {name, description, parameters {type, $defs, items, required, properties (sorted)}},
// property {type, items, description, enum}.
ojson go_order_property(const ojson& p) {
  if (!p.is_object()) return p;
  ojson r = ojson::object();
  for (const char* k : {"type", "items", "description", "enum"})
    if (p.contains(k)) r[k] = p[k];
  return r;
}
ojson go_order_parameters(const ojson& p) {
  ojson r = ojson::object();
  r["type"] = str_of(p, "type");
  for (const char* k : {"$defs", "items", "required"})
    if (p.contains(k)) r[k] = p[k];
  ojson props = ojson::object();
  if (p.contains("properties") && p["properties"].is_object()) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : p["properties"].items()) keys.push_back(k);
    std::sort(keys.begin(), keys.end());  // a Go map marshals in key order
    for (const auto& k : keys) props[k] = go_order_property(p["properties"][k]);
  }
  r["properties"] = props;
  return r;
}
ojson go_order_function(const ojson& fn) {
  ojson r = {{"name", str_of(fn, "name")}};
  if (!str_of(fn, "description").empty()) r["description"] = fn["description"];
  r["parameters"] = go_order_parameters(field(fn, "parameters"));
  return r;
}

// A tool as the template sees it ({Type, Function: {Name, Description, Parameters: {Type,
// Required, Properties}}}); each level prints as JSON.
ojson tool_data(const ojson& t) {
  const ojson fn = go_order_function(field(t, "function"));
  const ojson params = fn["parameters"];
  ojson p = {{"Type", params.value("type", std::string())},
             {"Required", params.value("required", ojson::array())},
             {"Properties", params.value("properties", ojson::object())},
             {"__json__", params}};
  ojson f = {{"Name", str_of(fn, "name")},
             {"Description", str_of(fn, "description")},
             {"Parameters", p},
             {"__json__", fn}};
  const std::string type = field(t, "type").is_string() ? str_of(t, "type") : "function";
  const ojson whole = {{"type", type}, {"function", fn}};
  return {{"Type", type}, {"Function", f}, {"__json__", whole}};
}

}  // namespace

Result<gotmpl::Template> parse_ollama_template(const std::string& source) {
  HEARTH_ASSIGN_OR_RETURN(auto t, gotmpl::Template::parse(source));
  if (!t.uses("Messages") && !t.uses("Response"))
    return gotmpl::Template::parse(source + "{{ .Response }}");
  return t;
}

Result<std::string> render_ollama(const gotmpl::Template& t, const OllamaPromptInput& in,
                                  Budget* budget) {
  // Legacy mode executes the template once per turn: one budget for all of them, sized by the
  // whole conversation (per-turn budgets would multiply by the number of turns).
  Budget own = budget ? Budget()
                      : Budget::for_input(json_size(in.messages) + json_size(in.tools) +
                                          in.prompt.size() + in.suffix.size());
  Budget& b = budget ? *budget : own;
  const bool think = in.think.value_or(false);
  const bool think_set = in.think.has_value();
  if (!in.prompt.empty() && !in.suffix.empty())
    return t.render({{"Prompt", in.prompt},
                     {"Suffix", in.suffix},
                     {"Response", ""},
                     {"Think", think},
                     {"IsThinkSet", think_set}},
                    b);
  // Collate: every system message joins .System; consecutive messages of one role merge
  // (tool results stay separate).
  std::string system;
  std::vector<ojson> msgs;
  for (const auto& m : in.messages) {
    const std::string role = str_of(m, "role");
    if (role == "system") system += (system.empty() ? "" : "\n\n") + str_of(m, "content");
    if (!msgs.empty() && str_of(msgs.back(), "role") == role && role != "tool") {
      msgs.back()["content"] = str_of(msgs.back(), "content") + "\n\n" + str_of(m, "content");
    } else {
      msgs.push_back(m);
    }
  }
  if (t.uses("Messages") || t.uses("Document")) {
    ojson md = ojson::array();
    for (const auto& m : msgs) md.push_back(message_data(m));
    ojson tools = ojson::array();
    if (in.tools.is_array())
      for (const auto& x : in.tools) tools.push_back(tool_data(x));
    return t.render({{"System", system},
                     {"Messages", md},
                     {"Tools", tools},
                     {"Response", ""},
                     {"Think", think},
                     {"IsThinkSet", think_set},
                     {"Query", ""},
                     {"Document", ""},
                     {"Instruction", ""}},
                    b);
  }
  // Legacy mode: one execution per (system, user, assistant) turn.
  std::string out, sys, prompt, response;
  auto data = [&] {
    return ojson{{"System", sys},
                 {"Prompt", prompt},
                 {"Response", response},
                 {"Think", think},
                 {"IsThinkSet", think_set}};
  };
  auto execute = [&]() -> Status {
    HEARTH_ASSIGN_OR_RETURN(std::string s, t.render(data(), b));
    out += s;
    sys.clear();
    prompt.clear();
    response.clear();
    return Status::ok();
  };
  for (const auto& m : msgs) {
    const std::string role = str_of(m, "role");
    if (role == "system") {
      if (!prompt.empty() || !response.empty()) HEARTH_RETURN_IF_ERROR(execute());
      sys = str_of(m, "content");
    } else if (role == "user") {
      if (!response.empty()) HEARTH_RETURN_IF_ERROR(execute());
      prompt = str_of(m, "content");
    } else if (role == "assistant") {
      response = str_of(m, "content");
    }
  }
  HEARTH_ASSIGN_OR_RETURN(std::string last, t.render_cut_after_response(data(), b));
  return out + last;
}

}  // namespace hearth::templates
