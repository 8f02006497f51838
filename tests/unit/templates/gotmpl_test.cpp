// Go text/template engine and Ollama's prompt rendering. The Ollama templates below are the
// shapes of Ollama's library TEMPLATEs for the seed families (ChatML/Qwen, Llama 3, Gemma,
// Mistral); the expected prompts follow Ollama's documented rendering (docs/template.md and
// ../shared/design/ollama-api.md section 3.3): messages mode when .Messages is used, otherwise one
// execution per turn with the last turn cut after {{ .Response }}.
#include "templates/gotmpl/gotmpl.h"

#include <gtest/gtest.h>

#include "templates/chat.h"
#include "templates/ollama_prompt.h"

namespace hearth::templates {
namespace {

using ojson = nlohmann::ordered_json;

std::string go(const std::string& src, const ojson& data) {
  auto t = gotmpl::Template::parse(src);
  if (!t.is_ok()) return "PARSE ERROR: " + t.status().message();
  auto r = t->render(data);
  return r.is_ok() ? *r : "RENDER ERROR: " + r.status().message();
}

std::string ollama(const std::string& src, const ojson& messages,
                   const ojson& tools = ojson::array()) {
  auto t = parse_ollama_template(src);
  if (!t.is_ok()) return "PARSE ERROR: " + t.status().message();
  OllamaPromptInput in;
  in.messages = messages;
  in.tools = tools;
  auto r = render_ollama(*t, in);
  return r.is_ok() ? *r : "RENDER ERROR: " + r.status().message();
}

TEST(GoTemplate, Language) {
  const ojson d = {{"Name", "Ann"},   {"N", 3},          {"F", 0.5},
                   {"L", {"a", "b"}}, {"M", {{"k", 1}}}, {"E", ""}};
  EXPECT_EQ(go("Hi {{ .Name }}!", d), "Hi Ann!");
  EXPECT_EQ(go("{{ .Missing }}|{{ .N }}|{{ .F }}|{{ .L }}|{{ .M }}", d),
            "<no value>|3|0.5|[a b]|map[k:1]");
  EXPECT_EQ(go("a  {{- .Name -}}  b", d), "aAnnb");
  EXPECT_EQ(go("{{ if .E }}x{{ else if .N }}n{{ else }}z{{ end }}", d), "n");
  EXPECT_EQ(go("{{ range $i, $v := .L }}{{ $i }}={{ $v }};{{ end }}", d), "0=a;1=b;");
  EXPECT_EQ(go("{{ range .L }}[{{ . }}]{{ else }}empty{{ end }}{{ range .Missing }}{{ else "
               "}}none{{ end }}",
               d),
            "[a][b]none");
  EXPECT_NE(go("{{ range .E }}{{ end }}", d).find("can't iterate"), std::string::npos);
  EXPECT_EQ(go("{{ with .Name }}<{{ . }}>{{ end }}{{ with .E }}x{{ else }}y{{ end }}", d),
            "<Ann>y");
  EXPECT_EQ(go("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", d), "2");
  EXPECT_EQ(go("{{ and .N .Name }}|{{ or .E .Name }}|{{ not .E }}|{{ eq .N 3 }}|{{ eq .Name \"x\" "
               "\"Ann\" }}",
               d),
            "Ann|Ann|true|true|true");
  EXPECT_EQ(
      go("{{ len .L }}{{ index .L 1 }}{{ slice .Name 1 }}{{ lt 1 2 }}{{ ne .Name \"Bo\" }}", d),
      "2bnntruetrue");
  EXPECT_EQ(
      go("{{ .M | json }}|{{ json .Name }}|{{ printf \"%s-%d\" .Name .N }}|{{ print 1 2 }}", d),
      "{\"k\":1}|\"Ann\"|Ann-3|1 2");
  EXPECT_EQ(go("{{/* comment */}}x{{- /* trimmed */ -}} y", d), "xy");
  EXPECT_EQ(go("{{ range .L }}{{ if eq . \"b\" }}{{ break }}{{ end }}{{ . }}{{ end }}", d), "a");
  EXPECT_EQ(go("{{ $.Name }}{{ range .L }}{{ $.N }}{{ end }}", d), "Ann33");
  EXPECT_EQ(go("{{ json \"<&>\" }}", d), "\"\\u003c\\u0026\\u003e\"");
}

TEST(GoTemplate, ErrorsNameTheLine) {
  for (const auto& [src, want] : std::vector<std::pair<std::string, std::string>>{
           {"a\n{{ if .X }}", "line 2: unclosed {{if}}"},
           {"{{ frob .X }}", "line 1: function \"frob\" not defined"},
           {"x\n\n{{ .X", "line 3"},
           {"{{ end }}", "unexpected {{end}}"},
           {"{{ break }}", "outside {{range}}"},
           {"{{ template \"x\" }}", "not supported"},
           {"{{ eq 1 \"a\" }}", "incompatible types"},
       }) {
    const std::string out = go(src, {{"X", 1}});
    EXPECT_NE(out.find("[gotmpl]"), std::string::npos) << src << " -> " << out;
    EXPECT_NE(out.find(want), std::string::npos) << src << " -> " << out;
  }
}

const char* kChatML =
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end "
    "}}<|im_start|>assistant\n";

const char* kLlama3 =
    "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
    "{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>";

const char* kGemma =
    "{{- range $i, $_ := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
    "{{- if or (eq .Role \"user\") (eq .Role \"system\") }}<start_of_turn>user\n"
    "{{ .Content }}<end_of_turn>\n"
    "{{ if $last }}<start_of_turn>model\n"
    "{{ end }}\n"
    "{{- else if eq .Role \"assistant\" }}<start_of_turn>model\n"
    "{{ .Content }}{{ if not $last }}<end_of_turn>\n"
    "{{ end }}\n"
    "{{- end }}\n"
    "{{- end }}";

const char* kQwenTools =
    "{{- if or .System .Tools }}<|im_start|>system\n"
    "{{- if .System }}\n{{ .System }}\n{{- end }}\n"
    "{{- if .Tools }}\n\n<tools>\n"
    "{{- range .Tools }}\n{\"type\": \"function\", \"function\": {{ .Function }}}\n{{- end }}\n"
    "</tools>\n{{- end }}<|im_end|>\n{{ end }}\n"
    "{{- range $i, $_ := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
    "{{- if eq .Role \"user\" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n"
    "{{ else if eq .Role \"assistant\" }}<|im_start|>assistant\n"
    "{{ if .Content }}{{ .Content }}\n"
    "{{- else if .ToolCalls }}<tool_call>\n"
    "{{ range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": {{ "
    ".Function.Arguments }}}\n"
    "{{ end }}</tool_call>\n"
    "{{- end }}{{ if not $last }}<|im_end|>\n{{ end }}\n"
    "{{- else if eq .Role \"tool\" }}<|im_start|>user\n<tool_response>\n{{ .Content "
    "}}\n</tool_response><|im_end|>\n"
    "{{ end }}\n"
    "{{- if and (ne .Role \"assistant\") $last }}<|im_start|>assistant\n{{ end }}\n"
    "{{- end }}";

const char* kMistral =
    "{{- range $i, $_ := .Messages }}\n"
    "{{- if eq .Role \"user\" }}[INST] {{ if and (eq (len (slice $.Messages $i)) 1) $.System }}{{ "
    "$.System }}\n\n"
    "{{ end }}{{ .Content }}[/INST]\n"
    "{{- else if eq .Role \"assistant\" }} {{ .Content }}</s>\n"
    "{{- end }}\n"
    "{{- end }}";

const ojson kSingle = ojson::array({{{"role", "user"}, {"content", "Hello"}}});
const ojson kMulti = ojson::array({{{"role", "system"}, {"content", "Be brief."}},
                                   {{"role", "user"}, {"content", "Hi"}},
                                   {{"role", "assistant"}, {"content", "Hello!"}},
                                   {{"role", "user"}, {"content", "Bye"}}});

TEST(OllamaPrompt, ChatMLMessagesMode) {
  EXPECT_EQ(ollama(kChatML, kSingle), "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ollama(kChatML, kMulti),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>"
            "assistant\n");
  // Consecutive messages of one role are merged with a blank line.
  EXPECT_EQ(ollama(kChatML, ojson::array({{{"role", "user"}, {"content", "a"}},
                                          {{"role", "user"}, {"content", "b"}}})),
            "<|im_start|>user\na\n\nb<|im_end|>\n<|im_start|>assistant\n");
}

TEST(OllamaPrompt, Llama3LegacyModeCutsTheLastTurnAfterResponse) {
  EXPECT_EQ(ollama(kLlama3, kSingle),
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>"
            "assistant<|end_header_id|>\n\n");
  EXPECT_EQ(ollama(kLlama3, kMulti),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  // A template with neither .Messages nor .Response gets {{ .Response }} appended.
  EXPECT_EQ(ollama("{{ .System }} {{ .Prompt }}", kMulti), "Be brief. HiHello! Bye");
}

TEST(OllamaPrompt, GemmaTurns) {
  EXPECT_EQ(ollama(kGemma, kSingle),
            "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(ollama(kGemma, kMulti),
            "<start_of_turn>user\nBe brief.<end_of_turn>\n<start_of_turn>user\nHi<end_of_turn>\n"
            "<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n"
            "<start_of_turn>model\n");
}

TEST(OllamaPrompt, MistralSystemGoesToTheLastUserTurn) {
  // The system message itself is not a user turn: only the last [INST] carries .System.
  EXPECT_EQ(ollama(kMistral, kMulti), "[INST] Hi[/INST] Hello!</s>[INST] Be brief.\n\nBye[/INST]");
}

TEST(OllamaPrompt, QwenToolsCallsAndResults) {
  const ojson tools = ojson::array({{{"type", "function"},
                                     {"function",
                                      {{"name", "get_weather"},
                                       {"description", "Get weather"},
                                       {"parameters",
                                        {{"type", "object"},
                                         {"properties", {{"city", {{"type", "string"}}}}},
                                         {"required", {"city"}}}}}}}});
  const ojson msgs = ojson::array(
      {{{"role", "system"}, {"content", "S"}},
       {{"role", "user"}, {"content", "Weather?"}},
       {{"role", "assistant"},
        {"content", ""},
        {"tool_calls",
         {{{"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}}}}}}},
       {{"role", "tool"}, {"content", "18C"}}});
  EXPECT_EQ(ollama(kQwenTools, msgs, tools),
            "<|im_start|>system\nS\n\n<tools>\n"
            "{\"type\": \"function\", \"function\": "
            "{\"name\":\"get_weather\",\"description\":\"Get weather\","
            "\"parameters\":{\"type\":\"object\",\"required\":[\"city\"],\"properties\":{\"city\":{"
            "\"type\":\"string\"}}}}}\n"
            "</tools><|im_end|>\n"
            "<|im_start|>user\nWeather?<|im_end|>\n"
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
            "{\"city\":\"Paris\"}}\n"
            "</tool_call><|im_end|>\n"
            "<|im_start|>user\n<tool_response>\n18C\n</tool_response><|im_end|>\n"
            "<|im_start|>assistant\n");
}

// The examples of Ollama's docs/template.md.
TEST(OllamaPrompt, DocsExamples) {
  EXPECT_EQ(ollama("{{- range .Messages }}\n{{ .Role }}: {{ .Content }}\n{{- end }}", kMulti),
            "\nsystem: Be brief.\nuser: Hi\nassistant: Hello!\nuser: Bye");
  const char* llama3 =
      "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>\n{{- "
      "end }}\n"
      "{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content "
      "}}<|eot_id|>\n{{- end }}"
      "<|start_header_id|>assistant<|end_header_id|>\n\n";
  EXPECT_EQ(ollama(llama3, kMulti),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  const char* mistral =
      "{{- range $index, $_ := .Messages }}\n"
      "{{- if eq .Role \"user\" }}\n"
      "{{- if and (le (len (slice $.Messages $index)) 2) $.Tools }}[AVAILABLE_TOOLS] {{ json "
      "$.Tools }}[/AVAILABLE_TOOLS]\n"
      "{{- end }}[INST] {{ if and (eq (len (slice $.Messages $index)) 1) $.System }}{{ $.System "
      "}}\n\n"
      "{{ end }}{{ .Content }}[/INST]\n"
      "{{- else if eq .Role \"assistant\" }}\n"
      "{{- if .Content }} {{ .Content }}</s>\n"
      "{{- else if .ToolCalls }}[TOOL_CALLS] [\n"
      "{{- range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": {{ json "
      ".Function.Arguments }}}\n"
      "{{- end }}]</s>\n"
      "{{- end }}\n"
      "{{- else if eq .Role \"tool\" }}[TOOL_RESULTS] {\"content\": {{ .Content "
      "}}}[/TOOL_RESULTS]\n"
      "{{- end }}\n"
      "{{- end }}";
  const ojson tools = ojson::array({{{"type", "function"},
                                     {"function",
                                      {{"name", "get_weather"},
                                       {"description", "Get weather"},
                                       {"parameters",
                                        {{"type", "object"},
                                         {"properties", {{"city", {{"type", "string"}}}}},
                                         {"required", {"city"}}}}}}}});
  EXPECT_EQ(ollama(mistral, ojson::array({{{"role", "user"}, {"content", "Weather?"}}}), tools),
            "[AVAILABLE_TOOLS] "
            "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
            "\"Get "
            "weather\",\"parameters\":{\"type\":\"object\",\"required\":[\"city\"],\"properties\":{"
            "\"city\":"
            "{\"type\":\"string\"}}}}}][/AVAILABLE_TOOLS][INST] Weather?[/INST]");
  const ojson call = ojson::array(
      {{{"role", "user"}, {"content", "Weather?"}},
       {{"role", "assistant"},
        {"content", ""},
        {"tool_calls",
         {{{"function", {{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}}}}}}},
       {{"role", "tool"}, {"content", "18C"}}});
  EXPECT_EQ(ollama(mistral, call, tools),
            "[INST] Weather?[/INST][TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": "
            "{\"city\":\"Paris\"}}]</s>"
            "[TOOL_RESULTS] {\"content\": 18C}[/TOOL_RESULTS]");
  for (const auto& [src, want] : std::vector<std::pair<std::string, std::string>>{
           {"<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>", "<PRE> def f( <SUF>    return x <MID>"},
           {"[SUFFIX]{{ .Suffix }}[PREFIX] {{ .Prompt }}",
            "[SUFFIX]    return x[PREFIX] def f("}}) {
    auto t = parse_ollama_template(src);
    ASSERT_TRUE(t.is_ok());
    OllamaPromptInput in;
    in.prompt = "def f(";
    in.suffix = "    return x";
    EXPECT_EQ(*render_ollama(*t, in), want);
  }
}

// A model with a TEMPLATE uses it; one without uses its GGUF Jinja template; with neither,
// the prompt is the last user message as is ("{{ .Prompt }}").
TEST(OllamaPrompt, ModelTemplateChoice) {
  ChatInput in;
  in.messages = kSingle;
  ModelTemplates jinja_only;
  jinja_only.jinja = JinjaChatTemplate{
      "{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}", "", ""};
  EXPECT_EQ(*render_chat_prompt(jinja_only, in), "[user:Hello]");
  ModelTemplates both = jinja_only;
  both.go_template = kChatML;
  EXPECT_EQ(*render_chat_prompt(both, in),
            "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(*render_chat_prompt(ModelTemplates{}, in), "Hello");
}

TEST(OllamaPrompt, FillInTheMiddle) {
  auto t = parse_ollama_template(
      "{{- if .Suffix }}<PRE> {{ .Prompt }} <SUF>{{ .Suffix }} <MID>{{ else }}{{ .Prompt }}{{ end "
      "}}");
  ASSERT_TRUE(t.is_ok());
  EXPECT_TRUE(t->uses("Suffix"));
  OllamaPromptInput in;
  in.prompt = "def f(";
  in.suffix = "    return x";
  EXPECT_EQ(*render_ollama(*t, in), "<PRE> def f( <SUF>    return x <MID>");
}

}  // namespace
}  // namespace hearth::templates
