// Jinja engine: the language features chat templates use, the reference renderer's output
// conventions, errors that name the line and construct, and limits on hostile templates.
#include "templates/jinja/jinja.h"

#include <gtest/gtest.h>

namespace hearth::templates::jinja {
namespace {

using ojson = nlohmann::ordered_json;

std::string render(const std::string& src, const ojson& ctx = ojson::object()) {
  auto t = Template::parse(src);
  if (!t.is_ok()) return "PARSE ERROR: " + t.status().message();
  auto r = t->render(ctx);
  return r.is_ok() ? *r : "RENDER ERROR: " + r.status().message();
}

TEST(Jinja, ExpressionsAndOutputConventions) {
  EXPECT_EQ(render("{{ 1 + 2 * 3 }}|{{ 7 // 2 }}|{{ 7 / 2 }}|{{ 7 % 3 }}|{{ 2 ** 10 }}"),
            "7|3|3.5|1|1024");
  EXPECT_EQ(render("{{ 1.0 }}|{{ 2.5 }}|{{ 1 is defined }}|{{ -3 }}"), "1.0|2.5|true|-3");
  EXPECT_EQ(render("{{ true }}|{{ none }}|{{ undefined_thing }}|{{ 'a' ~ 1 ~ 2.0 }}"),
            "true|||a12");
  EXPECT_EQ(render("{{ [1, 'a', none] }}|{{ {'k': [true, 1.5]} }}"),
            "[1, \"a\", null]|{\"k\": [true, 1.5]}");
  EXPECT_EQ(render("{{ 'abc'[1] }}{{ 'abcdef'[1:4] }}{{ [1,2,3,4][::-1] }}{{ 'héllo'[-4:] }}"),
            "bbcd[4, 3, 2, 1]éllo");
  EXPECT_EQ(render("{{ x.y.z }}|{{ x is defined }}|{{ 'a' if false else 'b' }}|{{ 'c' if false }}"),
            "|false|b|");
  EXPECT_EQ(render("{{ 1 == 1.0 }}{{ '1' == 1 }}{{ none == undefined_x }}{{ 'a' in 'cat' }}{{ 2 in "
                   "[1, 2] }}"),
            "truetruetruetruetrue");
  EXPECT_EQ(render("{{ not 0 and 'x' or 'y' }}|{{ [] or 'empty' }}|{{ {} and 1 }}"), "x|empty|{}");
}

TEST(Jinja, StatementsLoopsMacrosNamespaces) {
  EXPECT_EQ(
      render(
          "{% for x in xs %}{{ loop.index }}:{{ x }}{% if not loop.last %},{% endif %}{% endfor %}",
          {{"xs", {"a", "b", "c"}}}),
      "1:a,2:b,3:c");
  EXPECT_EQ(render("{% for x in [] %}x{% else %}none{% endfor %}"), "none");
  EXPECT_EQ(render("{% for x in [1,2,3,4,5] if x is odd %}{{ x }}{% endfor %}"), "135");
  EXPECT_EQ(render("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
                   {{"d", {{"b", 1}, {"a", 2}}}}),
            "b=1;a=2;");
  EXPECT_EQ(
      render("{% for x in [1,2,3] %}{% if x == 2 %}{% continue %}{% endif %}{{ x }}{% endfor %}"),
      "13");
  EXPECT_EQ(
      render("{% for x in [1,2,3] %}{% if x == 2 %}{% break %}{% endif %}{{ x }}{% endfor %}"),
      "1");
  // set inside a loop does not leak; a namespace does.
  EXPECT_EQ(render("{% set n = 0 %}{% for x in [1,2] %}{% set n = n + x %}{% endfor %}{{ n }}"),
            "0");
  EXPECT_EQ(render("{% set ns = namespace(n=0) %}{% for x in [1,2] %}{% set ns.n = ns.n + x %}{% "
                   "endfor %}{{ ns.n }}"),
            "3");
  EXPECT_EQ(render("{% macro greet(name, punct='!') %}Hi {{ name }}{{ punct }}{% endmacro %}"
                   "{{ greet('Ann') }} {{ greet('Bo', punct='?') }}"),
            "Hi Ann! Hi Bo?");
  EXPECT_EQ(render("{% set x %}block {{ 1 }}{% endset %}[{{ x }}]"), "[block 1]");
  EXPECT_EQ(render("{% if a %}A{% elif b %}B{% else %}C{% endif %}", {{"b", true}}), "B");
  EXPECT_EQ(render("{% filter upper %}shout{% endfilter %}"), "SHOUT");
  EXPECT_EQ(render("{% macro m() %}[{{ caller() }}]{% endmacro %}{% call m() %}inner{% endcall %}"),
            "[inner]");
}

TEST(Jinja, FiltersTestsAndMethods) {
  EXPECT_EQ(
      render("{{ '  x  '|trim }}|{{ 'ab'|upper }}|{{ [3,1,2]|sort|join(',') }}|{{ [1,2]|length }}"),
      "x|AB|1,2,3|2");
  EXPECT_EQ(render("{{ x|default('d') }}|{{ ''|default('e', true) }}|{{ 'hello world'|title }}"),
            "d|e|Hello World");
  EXPECT_EQ(render("{{ {'b': 1, 'a': 'é'}|tojson }}|{{ {'a': 1}|tojson(indent=2) }}"),
            "{\"b\": 1, \"a\": \"é\"}|{\n  \"a\": 1\n}");
  EXPECT_EQ(
      render("{{ 'é'|tojson(ensure_ascii=true) }}|{{ [1,[2]]|tojson(separators=(',', ':')) }}"),
      "\"\\u00e9\"|[1,[2]]");
  EXPECT_EQ(
      render("{{ items|selectattr('ok')|map(attribute='n')|join('+') }}",
             {{"items", ojson::array({{{"n", "a"}, {"ok", true}}, {{"n", "b"}, {"ok", false}}})}}),
      "a");
  EXPECT_EQ(
      render("{{ 'a,b,,c'.split(',') }}|{{ ' a  b '.split() }}|{{ 'xyx'.replace('x', 'z') }}"),
      "[\"a\", \"b\", \"\", \"c\"]|[\"a\", \"b\"]|zyz");
  EXPECT_EQ(
      render(
          "{{ 'Hello'.startswith('He') }}{{ 'Hello'.endswith(('x', 'lo')) }}{{ '  s '.strip() }}"),
      "truetrues");
  EXPECT_EQ(render("{{ d.get('x', 5) }}{{ d.get('a') }}{{ d.keys() }}", {{"d", {{"a", 1}}}}),
            "51[\"a\"]");
  EXPECT_EQ(render("{{ 'x' is string }}{{ 1 is number }}{{ {} is mapping }}{{ none is none }}{{ [] "
                   "is iterable }}"),
            "truetruetruetruetrue");
  EXPECT_EQ(render("{{ 'l1\nl2\n\nl3'|indent(2) }}"), "l1\n  l2\n\n  l3");
  EXPECT_EQ(render("{{ range(3) }}|{{ range(1, 7, 2)|list }}"), "[0, 1, 2]|[1, 3, 5]");
}

TEST(Jinja, WhitespaceControlAsHuggingFaceSetsIt) {
  // trim_blocks: the newline after a block tag goes; lstrip_blocks: indentation before it goes.
  EXPECT_EQ(render("{% if true %}\n  yes\n{% endif %}\n"), "  yes\n");
  EXPECT_EQ(render("a\n    {% if true %}b{% endif %}\nc"), "a\nbc");
  EXPECT_EQ(render("a   {{- 'b' -}}   c"), "abc");
  EXPECT_EQ(render("a \n{%- if true -%}\n b {%- endif %}"), "ab");
  EXPECT_EQ(render("x {#- comment -#} y"), "xy");
  EXPECT_EQ(render("{{ 'kept' }}\n"), "kept");  // one trailing newline is dropped
  EXPECT_EQ(render("{% generation %}g{% endgeneration %}"), "g");
}

TEST(Jinja, ErrorsNameTheLineAndConstruct) {
  struct Case {
    const char* src;
    const char* want;
  };
  for (const Case& c : std::vector<Case>{
           {"line one\n{{ x|frobnicate }}", "line 2: unknown string filter 'frobnicate'"},
           {"{% if x %}\nno end", "line 1: unclosed 'if' block"},
           {"a\nb\n{% frob %}", "line 3: unknown statement 'frob'"},
           {"{{ 1 +* 2 }}", "line 1"},
           {"{{ 'unterminated }}", "unterminated string"},
           {"{{ raise_exception('bad role') }}", "raise_exception: bad role"},
           {"\n\n{{ x is frob }}", "line 3: unknown test 'frob'"},
           {"{{ undefined_fn() }}", "cannot call something that is not a function"},
           {"{{ 1 ~ }}", "line 1"},
       }) {
    const std::string out = render(c.src, {{"x", "s"}});
    EXPECT_NE(out.find("[jinja]"), std::string::npos) << c.src << " -> " << out;
    EXPECT_NE(out.find(c.want), std::string::npos) << c.src << " -> " << out;
  }
}

TEST(Jinja, HostileTemplatesAreBounded) {
  // A namespace that contains itself: serialising it is an error (as JSON.stringify's cycle
  // check is), and the cycle is freed after the render (LeakSanitizer checks this under ASan).
  EXPECT_NE(
      render("{% set ns = namespace(a=1) %}{% set ns.a = [ns] %}{{ ns.a|tojson }}").find("cyclic"),
      std::string::npos);
  EXPECT_EQ(render("{% set ns = namespace(a=1) %}{% set ns.a = [ns] %}{{ ns.a|length }}"), "1");
  // Unbounded recursion, huge loops and huge output end in an error, not a crash or a hang (more
  // in budget_test.cpp).
  EXPECT_NE(render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")
                .find("recursion deeper than 400 levels"),
            std::string::npos);
  EXPECT_NE(render("{% for i in range(100000000) %}{% endfor %}").find("[jinja]"),
            std::string::npos);
  EXPECT_NE(
      render("{% set s = 'x' %}{% for i in range(40) %}{% set s = s ~ s %}{% endfor %}{{ s }}")
          .find("[jinja]"),
      std::string::npos);
  std::string deep(5000, '(');
  EXPECT_NE(render("{{ " + deep + " }}").find("[jinja]"), std::string::npos);
  std::string nots;
  for (int i = 0; i < 5000; ++i) nots += "not ";
  EXPECT_NE(render("{{ " + nots + "1 }}").find("[jinja]"), std::string::npos);
}

// Integer arithmetic at the edges of int64 (reachable from a model's chat template): no trap, no
// undefined behaviour; results that leave int64 continue as floats, as JavaScript numbers do.
TEST(Jinja, IntegerEdgesNeitherTrapNorOverflow) {
  const std::string min = "(-9223372036854775807 - 1)", max = "9223372036854775807";
  EXPECT_EQ(render("{{ " + min + " % -1 }}"), "0");  // was SIGFPE (x86 idiv INT64_MIN by -1)
  EXPECT_EQ(render("{{ 7 % -3 }}|{{ -7 % 3 }}|{{ -7 // 2 }}|{{ 2 ** 62 }}"),
            "1|-1|-4|4611686018427387904");
  EXPECT_EQ(render("{{ (" + max + " + 1) > 0 }}|{{ (" + min + " - 1) < 0 }}|{{ (" + max +
                   " * 3) > 0 }}|{{ -" + min + " > 0 }}|{{ (" + min + " // -1) > 0 }}|{{ (" + min +
                   " | abs) > 0 }}"),
            "true|true|true|true|true|true");
  EXPECT_EQ(render("{{ " + max + " | int }}|{{ (2 ** 70) > 0 }}|{{ ((2.0 ** 70) | int) > 0 }}"),
            max + "|true|true");
  EXPECT_EQ(render("{{ 'abc'[1::" + max + "] }}|{{ [1, 2, 3][2::" + max + "] }}"), "b|[3]");
}

}  // namespace
}  // namespace hearth::templates::jinja
