// Template budgets (templates/budget.h): real chat templates stay well inside the defaults, also
// on large conversations, and hostile templates in both engines end in an error that names the
// budget (steps, bytes or recursion) instead of hanging or exhausting memory. A few of them are
// also fuzz seeds (tests/fuzz/corpus/*/hostile-*, replayed below).
#include "templates/budget.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "templates/gotmpl/gotmpl.h"
#include "templates/jinja/jinja.h"
#include "templates/ollama_prompt.h"

namespace hearth::templates {
namespace {

using ojson = nlohmann::ordered_json;

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const ojson& conversations() {
  static const ojson c =
      ojson::parse(read(std::string(HEARTH_SOURCE_DIR) + "/tests/data/conversations.json"));
  return c;
}

// A conversation scaled up: every non-empty content (and reasoning) repeated to at least
// `content_bytes`, and the turns between the first and the last repeated `repeat` times.
struct Scale {
  const char* name;
  size_t content_bytes;
  int repeat;
};
const Scale kScales[] = {{"as is", 0, 1},
                         {"64 KiB contents", 64 << 10, 1},
                         {"x100 turns", 0, 100},
                         {"4 KiB contents x30 turns", 4 << 10, 30}};

ojson scaled(const ojson& conv, const Scale& sc) {
  ojson c = conv;
  auto grow = [&](ojson& s) {
    if (!s.is_string() || sc.content_bytes == 0 || s.get<std::string>().empty()) return;
    const std::string base = s.get<std::string>() + "\n";
    std::string r;
    while (r.size() < sc.content_bytes) r += base;
    s = r;
  };
  for (auto& m : c["messages"]) {
    if (m.contains("content")) grow(m["content"]);
    if (m.contains("reasoning_content")) grow(m["reasoning_content"]);
  }
  const ojson& src = conv["messages"];
  if (sc.repeat > 1 && src.size() > 2) {
    ojson msgs = ojson::array({c["messages"][0]});
    for (int r = 0; r < sc.repeat; ++r)
      for (size_t i = 1; i + 1 < src.size(); ++i) msgs.push_back(c["messages"][i]);
    msgs.push_back(c["messages"][src.size() - 1]);
    c["messages"] = msgs;
  }
  return c;
}

// What render_jinja_chat passes to a template.
ojson jinja_context(const ojson& conv) {
  ojson ctx = conv.value("vars", ojson::object());
  ctx["messages"] = conv["messages"];
  if (conv.contains("tools")) ctx["tools"] = conv["tools"];
  ctx["add_generation_prompt"] = conv.value("add_generation_prompt", true);
  ctx["bos_token"] = "<s>";
  ctx["eos_token"] = "</s>";
  return ctx;
}

// What a render spent against the default budget for its input: at least `headroom` times as
// much must be left, so that a template a little costlier than today's still renders.
struct Worst {
  double steps = 0, bytes = 0;  // per input byte
};
void check_spent(const Budget& spent, uint64_t input_bytes, const std::string& what, Worst& worst) {
  constexpr int64_t kHeadroom = 2;
  const Budget dflt = Budget::for_input(input_bytes);
  EXPECT_LT(spent.steps * kHeadroom, dflt.max_steps) << what;
  EXPECT_LT(spent.bytes * kHeadroom, dflt.max_bytes) << what;
  worst.steps = std::max(worst.steps, double(spent.steps) / double(input_bytes));
  worst.bytes = std::max(worst.bytes, double(spent.bytes) / double(input_bytes));
}

TEST(TemplateBudget, RealJinjaTemplatesStayWellInside) {
  const std::string dir = std::string(HEARTH_SHARED_DIR) + "/templates";
  int rendered = 0, templates = 0;
  Worst worst[std::size(kScales)];
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".jinja") continue;
    ++templates;
    auto t = jinja::Template::parse(read(e.path().string()));
    ASSERT_TRUE(t.is_ok()) << e.path() << ": " << t.status().message();
    for (const auto& conv : conversations()) {
      for (size_t si = 0; si < std::size(kScales); ++si) {
        const ojson ctx = jinja_context(scaled(conv, kScales[si]));
        Budget spent;
        spent.max_steps = spent.max_bytes = INT64_MAX;
        auto r = t->render(ctx, spent);
        if (!r.is_ok()) continue;  // the template refuses this conversation (raise_exception)
        ++rendered;
        check_spent(spent, json_size(ctx),
                    e.path().filename().string() + " / " + conv["name"].get<std::string>() + " / " +
                        kScales[si].name,
                    worst[si]);
      }
    }
  }
  for (size_t si = 0; si < std::size(kScales); ++si)
    std::printf("jinja, %s: at most %.2f steps and %.2f bytes per input byte\n", kScales[si].name,
                worst[si].steps, worst[si].bytes);
  EXPECT_GT(templates, 40);
  EXPECT_GT(rendered, 1000);
}

// Ollama library templates of the seed families (as in gotmpl_test.cpp): messages mode, the
// legacy per-turn mode and `slice $.Messages $i` once per message.
const char* kGoTemplates[] = {
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end "
    "}}<|im_start|>assistant\n",
    "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
    "{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>",
    "{{- range $i, $_ := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
    "{{- if or (eq .Role \"user\") (eq .Role \"system\") }}<start_of_turn>user\n"
    "{{ .Content }}<end_of_turn>\n"
    "{{ if $last }}<start_of_turn>model\n{{ end }}\n"
    "{{- else if eq .Role \"assistant\" }}<start_of_turn>model\n"
    "{{ .Content }}{{ if not $last }}<end_of_turn>\n{{ end }}\n"
    "{{- end }}\n"
    "{{- end }}",
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
    "{{- end }}",
};

TEST(TemplateBudget, RealGoTemplatesStayWellInside) {
  Worst worst[std::size(kScales)];
  int rendered = 0;
  for (const char* src : kGoTemplates) {
    auto t = parse_ollama_template(src);
    ASSERT_TRUE(t.is_ok()) << t.status().message();
    for (const auto& conv : conversations()) {
      for (size_t si = 0; si < std::size(kScales); ++si) {
        const ojson c = scaled(conv, kScales[si]);
        OllamaPromptInput in;
        in.messages = c["messages"];
        if (c.contains("tools")) in.tools = c["tools"];
        Budget spent;
        spent.max_steps = spent.max_bytes = INT64_MAX;
        auto r = render_ollama(*t, in, &spent);
        ASSERT_TRUE(r.is_ok()) << r.status().message();
        ++rendered;
        check_spent(spent, json_size(in.messages) + json_size(in.tools),
                    std::string(src).substr(0, 40) + " / " + conv["name"].get<std::string>() +
                        " / " + kScales[si].name,
                    worst[si]);
      }
    }
  }
  for (size_t si = 0; si < std::size(kScales); ++si)
    std::printf("go, %s: at most %.2f steps and %.2f bytes per input byte\n", kScales[si].name,
                worst[si].steps, worst[si].bytes);
  EXPECT_GT(rendered, 100);
}

TEST(TemplateBudget, DefaultsAndMessages) {
  const Budget small = Budget::for_input(1000);
  EXPECT_EQ(small.max_steps, Budget::kMinSteps);
  EXPECT_EQ(small.max_bytes, Budget::kMinBytes);
  const Budget large = Budget::for_input(10'000'000);
  EXPECT_EQ(large.max_steps, 10'000'000 * Budget::kStepsPerInputByte);
  EXPECT_EQ(large.max_bytes, 10'000'000 * Budget::kBytesPerInputByte);
  EXPECT_EQ(Budget::for_input(UINT64_MAX).max_bytes, INT64_MAX);  // saturates
  EXPECT_EQ(small.steps_message(), "template exceeded its budget of 20000000 steps");
  EXPECT_EQ(small.bytes_message(), "template exceeded its budget of 64 MiB of output/allocations");
  EXPECT_EQ(large.bytes_message(),
            "template exceeded its budget of 610.4 MiB of output/allocations");
  EXPECT_EQ(recursion_message(400), "recursion deeper than 400 levels");
  Budget b;
  b.max_steps = 10;
  EXPECT_TRUE(b.spend_steps(10));
  EXPECT_FALSE(b.spend_steps(1));
  EXPECT_FALSE(b.spend_bytes(UINT64_MAX));  // saturates rather than wrapping
  EXPECT_EQ(b.bytes, INT64_MAX);
  EXPECT_EQ(json_size(ojson("xy")), 4u);
  const ojson j = ojson::parse(R"({"key": ["value", 12, null, {"k": "v"}]})");
  EXPECT_NEAR(double(json_size(j)), double(j.dump().size()), 12.0);
}

// ---- hostile templates: each ends in an error (quickly; not asserted) naming what it overran.

std::string go(const std::string& src, const ojson& data = ojson::object()) {
  auto t = gotmpl::Template::parse(src);
  if (!t.is_ok()) return "PARSE ERROR: " + t.status().message();
  auto r = t->render(data);
  return r.is_ok() ? "OK: " + r->substr(0, 100) : "RENDER ERROR: " + r.status().message();
}

std::string jinja(const std::string& src, const ojson& ctx = ojson::object()) {
  auto t = jinja::Template::parse(src);
  if (!t.is_ok()) return "PARSE ERROR: " + t.status().message();
  auto r = t->render(ctx);
  return r.is_ok() ? "OK: " + r->substr(0, 100) : "RENDER ERROR: " + r.status().message();
}

// Markers for the error wanted; anything else is a substring of the message.
constexpr const char* kSteps = "STEPS";    // "template exceeded its budget of N steps"
constexpr const char* kBytes = "BYTES";    // "... of N MiB of output/allocations"
constexpr const char* kBudget = "BUDGET";  // either
constexpr const char* kBudgetText = "exceeded its budget of";

// Checks one hostile case's output; prints (does not assert) how long it took.
void expect_error(const char* name, const std::string& out, const std::string& want,
                  const char* engine, double seconds) {
  if (seconds > 0.5) std::printf("note: %s took %.2f s\n", name, seconds);
  if (want.rfind("OK", 0) == 0) {
    EXPECT_EQ(out.substr(0, want.size()), want) << name;
    return;
  }
  EXPECT_NE(out.find(engine), std::string::npos) << name << " -> " << out;
  const bool steps =
      out.find(kBudgetText) != std::string::npos && out.find(" steps") != std::string::npos;
  const bool bytes = out.find(kBudgetText) != std::string::npos &&
                     out.find(" MiB of output/allocations") != std::string::npos;
  if (want == kSteps)
    EXPECT_TRUE(steps) << name << " -> " << out;
  else if (want == kBytes)
    EXPECT_TRUE(bytes) << name << " -> " << out;
  else if (want == kBudget)
    EXPECT_TRUE(steps || bytes) << name << " -> " << out;
  else
    EXPECT_NE(out.find(want), std::string::npos) << name << " -> " << out.substr(0, 300);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Hostile {
  const char* name;
  std::string src;
  const char* want;  // substring of the error
};

const ojson& data_1mib() {
  static const ojson d = {{"Big", std::string(1 << 20, 'x')},
                          {"big", std::string(1 << 20, 'x')},
                          {"L", ojson::array({1, 2, 3})}};
  return d;
}

TEST(TemplateBudget, HostileGoTemplates) {
  const std::vector<Hostile> cases = {
      {"range over a huge int", "{{range 1000000000}}{{end}}", kSteps},
      {"range over a huge int, declared", "{{range $i := 1000000000}}{{$i}}{{end}}", kBudget},
      {"nested ranges", "{{range 100000}}{{range 100000}}{{end}}{{end}}", kSteps},
      {"nested ranges with output", "{{range 100000}}{{range 100000}}x{{end}}{{end}}", kBudget},
      {"printf doubling", "{{$x := \"ab\"}}{{range 64}}{{$x = printf \"%s%s\" $x $x}}{{end}}{{$x}}",
       kBytes},
      {"print doubling", "{{$x := \"ab\"}}{{range 64}}{{$x = print $x $x}}{{end}}{{len $x}}",
       kBytes},
      {"html amplification",
       "{{$x := \"<<<<<<<<\"}}{{range 64}}{{$x = html $x $x}}{{end}}{{len $x}}", kBytes},
      {"big field looked up in a loop", "{{range 100000000}}{{if $.Big}}{{end}}{{end}}", kBudget},
      {"big field printed in a loop", "{{range 100000000}}{{.}}{{$.Big}}{{end}}", kBudget},
      {"output in a loop", "{{range 1000000000}}0123456789abcdef{{end}}", kBudget},
      {"json in a loop", "{{range 1000000000}}{{json $}}{{end}}", kBudget},
      {"slice past the end", "{{slice .Big 0 1000000000000}}", "slice index out of range"},
      {"slice with negative index", "{{slice .L -1}}", "slice index out of range"},
      {"slice with a string index", "{{slice .L \"a\"}}", "cannot slice with"},
      {"index past the end", "{{index .L 100000000000}}", "index out of range"},
      {"index of a string past the end", "{{index .Big 100000000000}}", "index out of range"},
      {"recursion via define/template",
       "{{define \"r\"}}{{template \"r\"}}{{end}}{{template \"r\"}}", "not supported"},
      {"block", "{{block \"b\" .}}{{end}}", "not supported"},
  };
  for (const Hostile& c : cases) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string out = go(c.src, data_1mib());
    expect_error(c.name, out, c.want, "[gotmpl]", seconds_since(t0));
  }
  // Go 1.22 range over an int, bounded, and break ends it early without spending the rest.
  EXPECT_EQ(go("{{range $i := 3}}{{$i}}{{end}}|{{range 1000000000}}x{{break}}{{end}}"),
            "OK: 012|x");
  // slice shares the list (no copy) and is still a list of the right items.
  EXPECT_EQ(go("{{slice .L 1}}|{{len (slice .L 1 2)}}|{{index (slice .L 1) 1}}", data_1mib()),
            "OK: [2 3]|1|3");
}

TEST(TemplateBudget, HostileOllamaLegacyTemplateSharesOneBudget) {
  // Legacy mode executes the template once per turn; 2000 turns of a template that writes 1 MiB
  // each (every execution alone is within the budget) must still stop at one budget.
  auto t =
      parse_ollama_template("{{range 65536}}0123456789abcdef{{end}}{{ .Prompt }}{{ .Response }}");
  ASSERT_TRUE(t.is_ok());
  OllamaPromptInput in;
  for (int i = 0; i < 2000; ++i) {
    in.messages.push_back({{"role", "user"}, {"content", "q"}});
    in.messages.push_back({{"role", "assistant"}, {"content", "a"}});
  }
  auto r = render_ollama(*t, in);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find(kBudgetText), std::string::npos) << r.status().message();
}

// Jinja cases run with a context holding a 1 MiB string `big` (its budget is still the floor:
// 20 M steps, 64 MiB). Grouped so that ctest runs the groups in parallel.
void expect_jinja_errors(const std::vector<Hostile>& cases, const ojson& extra = {}) {
  ojson ctx = {{"big", std::string(1 << 20, 'x')}};
  for (const auto& [k, v] : extra.items()) ctx[k] = v;
  for (const Hostile& c : cases) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string out = jinja(c.src, ctx);
    expect_error(c.name, out, c.want, "[jinja]", seconds_since(t0));
  }
}

TEST(TemplateBudget, HostileJinjaLoops) {
  expect_jinja_errors({
      {"range(10**12) in a for", "{% for i in range(10**12) %}{% endfor %}", kSteps},
      {"range(10**12) with output", "{% for i in range(10**12) %}x{% endfor %}", kBudget},
      {"range(10**12) as a value", "{% set r = range(10**12) %}{{ r|length }}", kBudget},
      {"range(2**62) with a huge step", "{{ range(0, 2**62, 3)|length }}", kBudget},
      {"range(1e300)", "{{ range(10.0**300) }}", "range() argument too large"},
      {"nested loops",
       "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", kSteps},
      {"nested loops, each building a list",
       "{% for i in range(100000) %}{% set r = range(1000000) %}{% endfor %}", kBudget},
      {"unique of a large list", "{{ range(200000)|unique|length }}", kBudget},
      {"sort in a loop", "{% for i in range(10**6) %}{% set s = range(100000)|sort %}{% endfor %}",
       kBudget},
      {"big string looked up in a loop",
       "{% for i in range(100000000) %}{% if big %}{% endif %}{% endfor %}", kBudget},
      {"big string tested in a loop",
       "{% for i in range(100000000) %}{% if big|length > 0 %}{% endif %}{% endfor %}", kBudget},
      {"slice of a big string", "{% for i in range(10**6) %}{{ big[1:] }}{% endfor %}", kBudget},
      {"string index in a loop",
       "{% for i in range(10**8) %}{% if big[-1] %}{% endif %}{% endfor %}", kBudget},
  });
}

TEST(TemplateBudget, HostileJinjaAllocations) {
  expect_jinja_errors({
      {"string doubling with ~",
       "{% set s = 'x' %}{% for i in range(64) %}{% set s = s ~ s %}{% endfor %}{{ s|length }}",
       kBytes},
      {"namespace string doubling",
       "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
       "{% endfor %}{{ ns.s|length }}",
       kBytes},
      {"namespace append in a loop",
       "{% set ns = namespace(s='') %}{% for i in range(10**9) %}{% set ns.s = ns.s ~ "
       "'0123456789abcdef0123456789abcdef' %}{% endfor %}",
       kBudget},
      {"list doubling",
       "{% set l = [1] %}{% for i in range(64) %}{% set l = l + l %}{% endfor %}{{ l|length }}",
       kBytes},
      {"list of big strings",
       "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [big] %}"
       "{% endfor %}",
       kBudget},
      {"string times int", "{{ 'a' * 10**9 }}", "unknown operator"},
      {"list times int", "{{ [1] * 10**9 }}", "unknown operator"},
      {"join with a long separator", "{{ range(100000)|join('x' ~ big) }}", kBudget},
      {"replace amplification", "{{ big.replace('x', big) }}", kBytes},
      {"replace with an empty pattern", "{{ big.replace('', big) }}", kBytes},
      {"replace filter amplification", "{{ big|replace('x', big) }}", kBytes},
      {"indent with a huge width", "{{ 'a\nb'|indent(10**12) }}", kBytes},
      {"indent of many lines", "{{ big|replace('x', 'x\n')|indent(1000) }}", kBytes},
      {"center (not a filter)", "{{ 'x'|center(10**12) }}", "unknown"},
      {"wordwrap (not a filter)", "{{ big|wordwrap(1) }}", "unknown"},
      {"tojson with a huge indent (clamped)", "{{ [[[[1]]]]|tojson(indent=10**12)|length }}", "OK"},
      {"shared sublists printed",
       "{% set ns = namespace(a=[1, 2]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}"
       "{% endfor %}{{ ns.a }}",
       kBudget},
      {"shared sublists serialised",
       "{% set ns = namespace(a=[1, 2]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}"
       "{% endfor %}{{ ns.a|tojson }}",
       kBudget},
      {"shared sublists concatenated",
       "{% set ns = namespace(a=[1, 2]) %}{% for i in range(40) %}{% set ns.a = [ns.a, ns.a] %}"
       "{% endfor %}{{ 'x' ~ ns.a }}",
       kBudget},
      {"slice with a huge step", "{{ [1, 2, 3][1::9223372036854775807] }}", "OK: [2]"},
  });
}

TEST(TemplateBudget, HostileJinjaRecursion) {
  expect_jinja_errors({
      {"macro recursion", "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
       "recursion deeper than 400 levels"},
      {"mutual macro recursion",
       "{% macro a(n) %}{{ b(n) }}{% endmacro %}{% macro b(n) %}{{ a(n) }}{% endmacro %}{{ a(0) }}",
       "recursion deeper than 400 levels"},
      {"exponential macro recursion",
       "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
       "{{ f(60) }}",
       kSteps},
      {"call block recursion", "{% macro m() %}{% call m() %}{% endcall %}{% endmacro %}{{ m() }}",
       "recursion deeper than 400 levels"},
      {"recursive for loop (not supported)",
       "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}", "ERROR"},
      {"loop() is not callable", "{% for x in [1] %}{{ loop([x]) }}{% endfor %}",
       "cannot call something that is not a function"},
  });
}

TEST(TemplateBudget, HostileJinjaLargeObject) {
  // Objects are searched linearly: lookups and copies of a 20000-key dict in a loop are bounded.
  ojson d = ojson::object();
  for (int i = 0; i < 20000; ++i) d["k" + std::to_string(i)] = i;
  expect_jinja_errors(
      {
          {"namespace from a large dict in a loop",
           "{% for i in range(10**6) %}{% set ns = namespace(d) %}{% endfor %}", kBudget},
          {"lookups in a large dict in a loop",
           "{% for i in range(10**8) %}{% if d.k19999 %}{% endif %}{% endfor %}", kSteps},
          {"** of a large dict in a loop",
           "{% macro m() %}{% endmacro %}{% for i in range(10**6) %}{{ m(**d) }}{% endfor %}",
           "takes no keyword argument"},
      },
      {{"d", d}});
}

TEST(TemplateBudget, JinjaOptionsAndSharedBudget) {
  jinja::Options opt;
  opt.max_steps = 1000;
  opt.max_bytes = 1 << 20;
  auto t = jinja::Template::parse("{% for i in range(10000) %}{{ i }}{% endfor %}", opt);
  ASSERT_TRUE(t.is_ok());
  auto r = t->render(ojson::object());
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("budget of 1000 steps"), std::string::npos);
  auto u = jinja::Template::parse("{% for i in range(100) %}abc{% endfor %}", opt);
  ASSERT_TRUE(u.is_ok());
  EXPECT_TRUE(u->render(ojson::object()).is_ok());
  // A budget passed in accumulates across renders and stops the one that overruns it.
  Budget b;
  b.max_steps = 1000;
  auto v = jinja::Template::parse("{% for i in range(100) %}{{ i }}{% endfor %}");
  int ok = 0;
  while (v->render(ojson::object(), b).is_ok()) ++ok;
  EXPECT_GE(ok, 1);
  EXPECT_LE(ok, 10);
  EXPECT_GT(b.steps, b.max_steps);
}

// The in-place append (`set ns.a = ns.a ~ x`) gives what the general path gives, also when
// evaluating x writes ns.a itself.
TEST(TemplateBudget, JinjaAppendInPlaceKeepsTheSemantics) {
  EXPECT_EQ(jinja("{% set ns = namespace(s='a') %}{% for i in range(3) %}{% set ns.s = ns.s ~ i ~ "
                  "'-' + 'x' %}{% endfor %}{{ ns.s }}"),
            "OK: a0-x1-x2-x");
  EXPECT_EQ(jinja("{% set ns = namespace(s='a') %}{% macro w() %}{% set ns.s = 'W' %}m{% endmacro "
                  "%}{% set ns.s = ns.s ~ w() ~ ns.s %}{{ ns.s }}"),
            "OK: amW");
  EXPECT_EQ(jinja("{% set ns = namespace(s='a') %}{% macro w() %}{% set ns.s = ns.s ~ 'W' %}m{% "
                  "endmacro %}{% set ns.s = ns.s ~ w() %}{{ ns.s }}"),
            "OK: am");
  EXPECT_EQ(jinja("{% set ns = namespace(s='a', t='b') %}{% set ns.s = ns.s ~ ns.t ~ 1 ~ 1.5 ~ "
                  "[1] %}{{ ns.s }}"),
            "OK: ab11.51");
  EXPECT_NE(jinja("{% set ns = namespace(s='a') %}{% set ns.s = ns.s ~ none %}")
                .find("cannot perform '~' on none"),
            std::string::npos);
  EXPECT_NE(jinja("{% set ns = namespace(s='a') %}{% set ns.s = ns.s + nothing %}")
                .find("cannot perform '+' on an undefined value"),
            std::string::npos);
  // Not a string: the general path (numbers add).
  EXPECT_EQ(jinja("{% set ns = namespace(n=1) %}{% set ns.n = ns.n + 2 %}{{ ns.n }}"), "OK: 3");
}

// Hostile templates kept as fuzz seeds (tests/fuzz/corpus/{gotmpl,jinja}/hostile-*), rendered
// as the fuzz targets render them: each must end in a budget or recursion error.
TEST(TemplateBudget, HostileFuzzSeeds) {
  const std::string corpus = std::string(HEARTH_SOURCE_DIR) + "/tests/fuzz/corpus/";
  const ojson msgs = ojson::parse(R"([{"role": "system", "content": "sys"},
    {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
    {"role": "user", "content": "more"}])");
  int n = 0;
  for (const char* engine : {"gotmpl", "jinja"}) {
    for (const auto& e : std::filesystem::directory_iterator(corpus + engine)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("hostile-", 0) != 0) continue;
      ++n;
      const std::string src = read(e.path().string());
      std::string err;
      if (std::string(engine) == "gotmpl") {
        auto t = parse_ollama_template(src);
        ASSERT_TRUE(t.is_ok()) << name << ": " << t.status().message();
        OllamaPromptInput in;
        in.messages = msgs;
        auto r = render_ollama(*t, in);
        ASSERT_FALSE(r.is_ok()) << name;
        err = r.status().message();
      } else {
        auto t = jinja::Template::parse(src);
        ASSERT_TRUE(t.is_ok()) << name << ": " << t.status().message();
        auto r = t->render({{"messages", msgs}, {"add_generation_prompt", true}});
        ASSERT_FALSE(r.is_ok()) << name;
        err = r.status().message();
      }
      EXPECT_TRUE(err.find(kBudgetText) != std::string::npos ||
                  err.find("recursion deeper than") != std::string::npos)
          << name << " -> " << err;
    }
  }
  EXPECT_GE(n, 8);
}

}  // namespace
}  // namespace hearth::templates
