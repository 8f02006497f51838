// cli/render_command.cpp — `hearth render`: a conversation through a chat template, printed
// exactly (the same options as the oracle's `hf-tokenizer.mjs chat`).
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "gguf/gguf.h"
#include "templates/chat.h"
#include "templates/ollama_prompt.h"

namespace hearth::cli {

namespace {

using ojson = nlohmann::ordered_json;

int fail(const std::string& msg) {
  std::fprintf(stderr, "hearth: %s\n", msg.c_str());
  return 1;
}

Result<std::string> read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(StatusCode::kNotFound, "cannot read '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A JSON argument: literal JSON if it starts with '[' or '{', else a file (optionally "@file").
Result<ojson> json_arg(const std::string& arg, const char* what) {
  std::string text = arg;
  if (arg.empty() || (arg[0] != '[' && arg[0] != '{')) {
    HEARTH_ASSIGN_OR_RETURN(text, read_text(arg[0] == '@' ? arg.substr(1) : arg));
  }
  ojson j = ojson::parse(text, nullptr, false);
  if (j.is_discarded()) return invalid_argument(std::string(what) + " is not valid JSON");
  return j;
}

struct RenderOpts {
  std::string model, template_file, go_template, messages, tools, vars, bos, eos, cases;
  bool no_gen = false, bos_set = false, eos_set = false;
};

int run_render(const RenderOpts& o) {
  if (!o.cases.empty()) {
    // Batch mode for the parity tests: [{template, messages, tools?, vars?,
    // add_generation_prompt?, bos_token?, eos_token?}] -> one JSON line per case.
    auto cases = json_arg(o.cases, "--cases");
    if (!cases) return fail(cases.status().message());
    for (const auto& c : *cases) {
      ojson out;
      auto src = read_text(c.value("template", std::string()));
      if (!src) {
        out["error"] = src.status().message();
      } else {
        templates::JinjaChatTemplate t{*src, c.value("bos_token", std::string()),
                                       c.value("eos_token", std::string())};
        templates::ChatInput in;
        in.messages = c.value("messages", ojson::array());
        if (c.contains("tools") && !c["tools"].is_null()) in.tools = c["tools"];
        in.vars = c.value("vars", ojson::object());
        in.add_generation_prompt = c.value("add_generation_prompt", true);
        auto r = templates::render_jinja_chat(t, in);
        if (r)
          out["text"] = *r;
        else
          out["error"] = r.status().message();
      }
      std::printf("%s\n", out.dump(-1, ' ', false, ojson::error_handler_t::replace).c_str());
    }
    return 0;
  }
  if (!o.go_template.empty()) {
    // An Ollama Modelfile TEMPLATE: rendered as Ollama renders chats.
    auto src = read_text(o.go_template);
    if (!src) return fail(src.status().message());
    auto gt = templates::parse_ollama_template(*src);
    if (!gt) return fail(gt.status().message());
    templates::OllamaPromptInput in;
    auto msgs = json_arg(o.messages, "--messages");
    if (!msgs) return fail(msgs.status().message());
    in.messages = *msgs;
    if (!o.tools.empty()) {
      auto tools = json_arg(o.tools, "--tools");
      if (!tools) return fail(tools.status().message());
      in.tools = *tools;
    }
    auto r = templates::render_ollama(*gt, in);
    if (!r) return fail(r.status().message());
    std::fwrite(r->data(), 1, r->size(), stdout);
    return 0;
  }
  templates::JinjaChatTemplate t;
  if (!o.model.empty()) {
    auto f = gguf::GgufFile::open(o.model);
    if (!f) return fail(f.status().message());
    auto jt = templates::jinja_chat_template(**f);
    if (!jt) return fail(jt.status().message());
    t = *jt;
  } else if (!o.template_file.empty()) {
    auto src = read_text(o.template_file);
    if (!src) return fail(src.status().message());
    t.source = *src;
  } else {
    return fail("give -m MODEL.gguf, --template FILE.jinja or --go-template FILE");
  }
  if (o.bos_set) t.bos_token = o.bos;
  if (o.eos_set) t.eos_token = o.eos;
  templates::ChatInput in;
  auto msgs = json_arg(o.messages, "--messages");
  if (!msgs) return fail(msgs.status().message());
  if (!msgs->is_array()) return fail("--messages must be a JSON array of messages");
  in.messages = *msgs;
  if (!o.tools.empty()) {
    auto tools = json_arg(o.tools, "--tools");
    if (!tools) return fail(tools.status().message());
    in.tools = *tools;
  }
  if (!o.vars.empty()) {
    auto vars = json_arg(o.vars, "--vars");
    if (!vars) return fail(vars.status().message());
    if (!vars->is_object()) return fail("--vars must be a JSON object");
    in.vars = *vars;
  }
  in.add_generation_prompt = !o.no_gen;
  auto r = templates::render_jinja_chat(t, in);
  if (!r) return fail(r.status().message());
  std::fwrite(r->data(), 1, r->size(), stdout);
  return 0;
}

}  // namespace

void add_render_command(CLI::App& app) {
  auto o = std::make_shared<RenderOpts>();
  auto* c =
      app.add_subcommand("render", "print the prompt a chat template makes of a conversation");
  c->add_option("-m,--model", o->model, "GGUF file whose tokenizer.chat_template is used");
  c->add_option("--template", o->template_file, "a Jinja chat template file instead");
  c->add_option(
      "--go-template", o->go_template,
      "an Ollama Modelfile TEMPLATE (Go text/template) file instead, rendered as Ollama does");
  c->add_option("--messages", o->messages, "messages: JSON file (or literal JSON)");
  c->add_option("--tools", o->tools, "tool definitions: JSON file (or literal JSON)");
  c->add_option("--vars", o->vars, "extra template variables, e.g. '{\"enable_thinking\": false}'");
  c->add_flag("--no-generation-prompt", o->no_gen, "add_generation_prompt = false");
  c->add_option("--bos", o->bos, "bos_token text (default: from the model)")
      ->each([o](const std::string&) { o->bos_set = true; });
  c->add_option("--eos", o->eos, "eos_token text (default: from the model)")
      ->each([o](const std::string&) { o->eos_set = true; });
  c->add_option("--cases", o->cases, "batch mode: JSON list of cases, one JSON line out per case");
  c->callback([o] { std::exit(run_render(*o)); });
}

}  // namespace hearth::cli
