// The output parser on the exact wire strings of every format (../shared/design/tools-grammar.md
// §1), fed whole, byte by byte and in random splits: all three must give the same result.
#include "parsers/output_parser.h"

#include <gtest/gtest.h>

#include <random>

using namespace hearth::parsers;
using ojson = nlohmann::ordered_json;

namespace {

ojson tool(const std::string& name, ojson props = ojson::object()) {
  return {
      {"type", "function"},
      {"function", {{"name", name}, {"parameters", {{"type", "object"}, {"properties", props}}}}}};
}

const ojson kTools =
    ojson::array({tool("get_weather", {{"city", {{"type", "string"}}},
                                       {"location", {{"type", "string"}}},
                                       {"units", {{"type", "string"}}},
                                       {"days", {{"type", "integer"}}},
                                       {"metric", {{"type", "boolean"}}},
                                       {"tags", {{"type", "array"}}},
                                       {"limit", {{"type", ojson::array({"integer", "string"})}}},
                                       {"ratio", {{"type", "number"}}}}),
                  tool("get_time", {{"tz", {{"type", "string"}}}}),
                  tool("get_current_temperature", {{"location", {{"type", "string"}}}})});

struct Result {
  Parsed p;
  std::vector<std::string> warnings;
};

// Feeds the pieces (a piece starting with '\x01' is a special token) in the given splits.
Result run(const Format& f, ParserOptions o, const std::vector<std::string>& pieces, int mode,
           bool truncated = false, uint32_t seed = 1) {
  OutputParser p(f, o);
  Result r;
  std::mt19937 rng(seed);
  for (const auto& piece : pieces) {
    if (!piece.empty() && piece[0] == '\x01') {
      Parsed x;
      p.add_special(piece.substr(1), x);
      r.p.append(std::move(x));
      continue;
    }
    size_t i = 0;
    while (i < piece.size()) {
      size_t n = mode == 0 ? piece.size() : mode == 1 ? 1 : 1 + rng() % 7;
      n = std::min(n, piece.size() - i);
      Parsed x;
      p.add(std::string_view(piece).substr(i, n), x);
      r.p.append(std::move(x));
      i += n;
    }
  }
  Parsed x;
  p.finish(truncated, x);
  r.p.append(std::move(x));
  r.warnings = p.warnings;
  return r;
}

ojson calls_json(const Parsed& p) {
  ojson a = ojson::array();
  for (const auto& c : p.calls) a.push_back({{"name", c.name}, {"arguments", c.arguments}});
  return a;
}

// Parses in all three modes, checks they agree, returns the whole-text result.
Result parse(const std::string& fmt, const std::vector<std::string>& pieces,
             bool starts_in_thinking = false, ojson tools = kTools, bool truncated = false,
             std::vector<std::string> token_markers = {}) {
  const Format* f = format_by_name(fmt);
  EXPECT_NE(f, nullptr) << fmt;
  ParserOptions o;
  o.tools = tools;
  o.starts_in_thinking = starts_in_thinking;
  o.token_markers = token_markers;
  Result whole = run(*f, o, pieces, 0, truncated);
  for (int mode : {1, 2})
    for (uint32_t seed : {1u, 2u, 3u}) {
      Result r = run(*f, o, pieces, mode, truncated, seed);
      EXPECT_EQ(r.p.content, whole.p.content) << fmt << " mode " << mode;
      EXPECT_EQ(r.p.thinking, whole.p.thinking) << fmt << " mode " << mode;
      EXPECT_EQ(calls_json(r.p), calls_json(whole.p)) << fmt << " mode " << mode;
      if (mode == 1) break;
    }
  return whole;
}

}  // namespace

TEST(OutputParser, QwenHermesThinkingAndParallelCalls) {
  auto r = parse(
      "qwen3",
      {"<think>\nThe user wants weather.\n</think>\n\nLet me check.\n<tool_call>\n"
       "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Z\u00fcrich \u6771\u4eac\"}}\n"
       "</tool_call>\n<tool_call>\n{\"name\": \"get_time\", \"arguments\": "
       "\"{\\\"tz\\\": \\\"Europe/Paris\\\"}\"}\n</tool_call>"});
  EXPECT_EQ(r.p.thinking, "The user wants weather.");
  EXPECT_EQ(r.p.content, "Let me check.");
  ASSERT_EQ(r.p.calls.size(), 2u);
  EXPECT_EQ(r.p.calls[0].name, "get_weather");
  EXPECT_EQ(r.p.calls[0].arguments["city"], "Z\u00fcrich \u6771\u4eac");
  EXPECT_EQ(r.p.calls[1].name, "get_time");  // arguments given as a JSON string
  EXPECT_EQ(r.p.calls[1].arguments["tz"], "Europe/Paris");
  EXPECT_TRUE(r.warnings.empty());
}

TEST(OutputParser, QwenCallInsideThinkingEndsIt) {
  auto r = parse("qwen3",
                 {"I should call it.\n<tool_call>\n{\"name\": \"get_time\", "
                  "\"arguments\": {}}\n</tool_call>"},
                 /*starts_in_thinking=*/true);
  EXPECT_EQ(r.p.thinking, "I should call it.");
  EXPECT_EQ(r.p.content, "");
  ASSERT_EQ(r.p.calls.size(), 1u);
  EXPECT_EQ(r.p.calls[0].arguments, ojson::object());
}

TEST(OutputParser, Qwen35XmlValuesTypedFromTheSchema) {
  auto r =
      parse("qwen3.5",
            {"Checking.\n</think>\n\n<tool_call>\n<function=get_weather>\n<parameter=location>\n"
             "San Francisco\n</parameter>\n<parameter=days>\n3\n</parameter>\n"
             "<parameter=metric>\nTrue\n</parameter>\n<parameter=tags>\n[\"a\", {\"b\": [1]}]\n"
             "</parameter>\n<parameter=limit>\n12\n</parameter>\n<parameter=ratio>\n2.5\n"
             "</parameter>\n<parameter=units>\n123\n</parameter>\n<parameter=extra>\nnull\n"
             "</parameter>\n<parameter=unknown>\n42\n</parameter>\n</function>\n</tool_call>\n"
             "<tool_call>\n<function=get_time>\n<parameter=tz>\nline one\nline two\n</parameter>\n"
             "</function>\n</tool_call>"},
            /*starts_in_thinking=*/true);
  EXPECT_EQ(r.p.thinking, "Checking.");
  ASSERT_EQ(r.p.calls.size(), 2u);
  const auto& a = r.p.calls[0].arguments;
  EXPECT_EQ(a["location"], "San Francisco");
  EXPECT_EQ(a["days"], 3);
  EXPECT_EQ(a["metric"], true);
  EXPECT_EQ(a["tags"], ojson::parse(R"(["a", {"b": [1]}])"));
  EXPECT_EQ(a["limit"], 12);
  EXPECT_EQ(a["ratio"], 2.5);
  EXPECT_EQ(a["units"], "123");  // a string parameter stays a string
  EXPECT_TRUE(a["extra"].is_null());
  EXPECT_EQ(a["unknown"], "42");  // no schema: a string
  EXPECT_EQ(r.p.calls[1].arguments["tz"], "line one\nline two");
}

TEST(OutputParser, Qwen35StrayOpenerInsideThinkingIsDropped) {
  auto r = parse("qwen3.5", {"\x01<think>", "plan\n", "\x01</think>", "\n\nDone."}, true, kTools,
                 false, {"<think>", "</think>"});
  EXPECT_EQ(r.p.thinking, "plan");
  EXPECT_EQ(r.p.content, "Done.");
}

TEST(OutputParser, Gemma4ThoughtChannelCallAndNoise) {
  auto r = parse(
      "gemma4", {"<|channel>thought\nThey want Paris.<channel|>On it."
                 "<|tool_call>call:get_weather{location:<|\"|>Paris<|\"|>,units:<|\"|>metric<|\"|>,"
                 "days:3,metric:true,tags:[<|\"|>a,{\"<|\"|>,{k:null}]}<tool_call|><tool_call|>"
                 "<|tool_response>"});
  EXPECT_EQ(r.p.thinking, "They want Paris.");
  EXPECT_EQ(r.p.content, "On it.");
  ASSERT_EQ(r.p.calls.size(), 1u);
  EXPECT_EQ(r.p.calls[0].arguments,
            ojson::parse(R"({"location":"Paris","units":"metric","days":3,"metric":true,
                             "tags":["a,{\"",{"k":null}]})"));
}

TEST(OutputParser, Gemma4Repairs) {
  // A missing final <|"|> and }: repaired at the end of the output (no close marker either).
  auto r = parse("gemma4", {"<|tool_call>call:get_time{tz:<|\"|>Europe/Paris"});
  ASSERT_EQ(r.p.calls.size(), 1u);
  EXPECT_EQ(r.p.calls[0].arguments["tz"], "Europe/Paris");
  // Single-quoted values.
  r = parse("gemma4", {"<|tool_call>call:get_time{tz:'UTC'}<tool_call|>"});
  ASSERT_EQ(r.p.calls.size(), 1u);
  EXPECT_EQ(r.p.calls[0].arguments["tz"], "UTC");
}

TEST(OutputParser, Llama3JsonAndPythonTag) {
  auto r = parse("llama3", {"{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}"});
  ASSERT_EQ(r.p.calls.size(), 1u);
  EXPECT_EQ(r.p.calls[0].arguments["city"], "Paris");
  EXPECT_EQ(r.p.content, "");
  r = parse("llama3", {"<|python_tag|>{\"type\": \"function\", \"name\": \"get_time\", "
                       "\"parameters\": {\"tz\": \"UTC\"}}; {\"name\": \"get_weather\", "
                       "\"parameters\": {}}"});
  ASSERT_EQ(r.p.calls.size(), 2u);
  EXPECT_EQ(r.p.calls[1].name, "get_weather");
  // Prose that contains braces is content.
  r = parse("llama3", {"Use {\"name\": 1} like this."});
  EXPECT_TRUE(r.p.calls.empty());
  EXPECT_EQ(r.p.content, "Use {\"name\": 1} like this.");
  // A JSON answer that is not a call is content too.
  r = parse("llama3", {"{\"answer\": 42}"});
  EXPECT_TRUE(r.p.calls.empty());
  EXPECT_EQ(r.p.content, "{\"answer\": 42}");
}

TEST(OutputParser, Llama4Pythonic) {
  auto r = parse("llama4", {"[get_weather(location=\"Vancouver\", days=2, metric=True), "
                            "get_time(tz='PST')]"});
  ASSERT_EQ(r.p.calls.size(), 2u);
  EXPECT_EQ(r.p.calls[0].arguments,
            ojson::parse(R"({"location":"Vancouver","days":2,"metric":true})"));
  EXPECT_EQ(r.p.calls[1].arguments["tz"], "PST");
}

TEST(OutputParser, DeepSeekAndMistral) {
  auto r = parse(
      "deepseek",
      {"<think>\nok\n</think>\n\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>"
       "get_weather\n```json\n{\"city\": \"Paris\"}\n```<｜tool▁call▁end｜>"
       "<｜tool▁call▁begin｜>get_time<｜tool▁sep｜>{\"tz\": \"UTC\"}<｜tool▁call▁end｜>"
       "<｜tool▁calls▁end｜>"});
  EXPECT_EQ(r.p.thinking, "ok");
  ASSERT_EQ(r.p.calls.size(), 2u);
  EXPECT_EQ(r.p.calls[0].arguments["city"], "Paris");
  EXPECT_EQ(r.p.calls[1].name, "get_time");
  r = parse("mistral", {"[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_time"
                        "[ARGS]{\"tz\": \"UTC\"}"});
  ASSERT_EQ(r.p.calls.size(), 2u);
  EXPECT_EQ(r.p.calls[1].arguments["tz"], "UTC");
}

TEST(OutputParser, MalformedTruncatedAndUnknownCallsBecomeContent) {
  const std::string bad =
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \n</tool_call>";
  auto r = parse("qwen3", {"Hi. " + bad});
  EXPECT_TRUE(r.p.calls.empty());
  EXPECT_EQ(r.p.content, "Hi." + bad);
  ASSERT_EQ(r.warnings.size(), 1u);
  // Cut off by the length limit inside a call: content, whatever the body holds.
  r = parse("qwen3", {"<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}"}, false, kTools,
            /*truncated=*/true);
  EXPECT_TRUE(r.p.calls.empty());
  EXPECT_EQ(r.p.content, "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {}}");
  // A tool the request did not offer.
  r = parse("qwen3", {"<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>"});
  EXPECT_TRUE(r.p.calls.empty());
  EXPECT_EQ(r.p.content, "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call>");
}

TEST(OutputParser, MarkersThatAreTokensAreNotMatchedInText) {
  const std::vector<std::string> tm = {"<tool_call>", "</tool_call>"};
  // Spelled in ordinary text: content.
  auto r = parse("qwen3", {"Write <tool_call> in your prompt."}, false, kTools, false, tm);
  EXPECT_TRUE(r.p.calls.empty());
  EXPECT_EQ(r.p.content, "Write <tool_call> in your prompt.");
  // As tokens: a call.
  r = parse("qwen3",
            {"\x01<tool_call>", "{\"name\": \"get_time\", \"arguments\": {}}", "\x01</tool_call>"},
            false, kTools, false, tm);
  ASSERT_EQ(r.p.calls.size(), 1u);
  EXPECT_EQ(r.p.content, "");
}

TEST(OutputParser, WithoutToolsCallMarkupIsContent) {
  auto r = parse("qwen3", {"<tool_call>{\"name\": \"get_time\"}</tool_call>"}, false, nullptr);
  EXPECT_TRUE(r.p.calls.empty());
  EXPECT_EQ(r.p.content, "<tool_call>{\"name\": \"get_time\"}</tool_call>");
}

TEST(OutputParser, PlainFormatPassesEverythingThrough) {
  auto r = parse("none", {"  <think>x</think> {\"name\": 1}\n"});
  EXPECT_EQ(r.p.content, "  <think>x</think> {\"name\": 1}\n");
}

TEST(OutputParser, SelectsByParserThenArchThenTemplate) {
  EXPECT_EQ(select_format("gemma4", "qwen3", "").name, "gemma4");
  EXPECT_EQ(select_format("", "qwen35", "").name, "qwen3.5");
  EXPECT_EQ(select_format("", "qwen3", "{{ '<tool_call>' }} think").name, "qwen3");
  EXPECT_EQ(select_format("", "qwen2", "<｜tool▁calls▁begin｜>").name, "deepseek");
  EXPECT_EQ(select_format("", "llama", "[TOOL_CALLS]").name, "mistral");
  EXPECT_EQ(select_format("", "gemma3", "<start_of_turn>").name, "none");
  EXPECT_EQ(select_format("", "llama4", "").name, "llama4");
  // Tools in a syntax no descriptor knows (Phi, Granite, ...): a bare JSON call, as Ollama's
  // generic parser reads it.
  const Format generic = select_format("", "phi3", "{% if tools %}{{ tools | tojson }}{% endif %}");
  EXPECT_EQ(generic.name, "json");
  EXPECT_TRUE(generic.has_tools());
  ParserOptions o;
  o.tools = kTools;
  auto r = run(generic, o, {R"({"name": "get_time", "arguments": {"tz": "UTC"}})"}, 0);
  ASSERT_EQ(r.p.calls.size(), 1u);
  EXPECT_EQ(r.p.calls[0].name, "get_time");
  EXPECT_FALSE(template_supports_tools("<start_of_turn>user\n{{ content }}"));
  EXPECT_TRUE(template_supports_tools("{{ if .Tools }}{{ .Tools }}{{ end }}"));
}
