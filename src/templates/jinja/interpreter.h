// templates/jinja/interpreter.h — evaluation of a parsed template (internal).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "templates/jinja/ast.h"

namespace hearth::templates::jinja {

class Env {
 public:
  explicit Env(Env* parent);
  Value lookup(const std::string& n) const;  // undefined if not found in this or a parent scope
  void set(const std::string& n, Value v) { vars_[n] = std::move(v); }  // this scope only

 private:
  Env* parent_;
  std::unordered_map<std::string, Value> vars_;
};

struct Limits {
  size_t max_output = size_t(64) << 20;
  int max_depth = 400;             // nested evaluation (macro recursion, deep expressions)
  int64_t max_steps = 20'000'000;  // evaluated nodes: bounds loops such as range(10**9)
};

class Interpreter {
 public:
  explicit Interpreter(const Limits& l);
  static void setup_globals(Env& g);
  std::string render(const NodeP& program, Env& env);

 private:
  void tick(int line);
  Value block(const std::vector<NodeP>& stmts, Env& env);
  Value eval(const Node& n, Env& env);
  Value eval_inner(const Node& n, Env& env);
  std::pair<std::vector<Value>, Value> eval_args(const std::vector<NodeP>& args, Env& env);
  Value eval_binary(const Node& n, Env& env);
  Value eval_test(const Node& n, Env& env);
  Value eval_member(const Node& n, Env& env);
  Value eval_slice(const Value& obj, const Node& sl, Env& env);
  Value eval_set(const Node& n, Env& env);
  Value eval_for(const Node& n, Env& env);
  Value eval_macro(const Node& n, Env& env);
  Value eval_call_block(const Node& n, Env& env);
  void bind_args(const std::string& display, const std::vector<NodeP>& params,
                 std::vector<Value> args, Env& scope);
  Value apply_filter(const Value& v, const Node& f, Env& env);
  bool test_value(const Value& v, const std::string& t, const Value* arg, int line);
  static Value string_method(const Value& s, const std::string& name);
  static Value string_replace(const std::string& str, std::vector<Value>& a);
  static Value object_method(const Value& o, const std::string& name);
  static int compare_values(const Value& a, const Value& b, bool case_sensitive);
  static Value attribute(const Value& item, const std::string& path);
  static std::string join_values(const std::vector<Value>& items, const std::string& sep);
  static std::string indent(const std::string& s, int width, bool first, bool blank);

  Limits limits_;
  // Namespaces written during this render. `set ns.x = [ns]` makes a reference cycle that
  // shared_ptr cannot free; render() empties them at the end to break any such cycle.
  std::unordered_map<const void*, std::shared_ptr<Object>> written_ns_;
  int depth_ = 0;
  int64_t steps_ = 0;
};

}  // namespace hearth::templates::jinja
