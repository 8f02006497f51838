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
  const Value* find(const std::string& n) const;  // the same without a copy; null if not found
  void set(const std::string& n, Value v) { vars_[n] = std::move(v); }  // this scope only

 private:
  Env* parent_;
  std::unordered_map<std::string, Value> vars_;
};

// Evaluates under `budget` (steps: nodes evaluated, loop iterations, list elements visited by
// filters; bytes: every string and list built or copied, see templates/budget.h) and a limit on
// nested evaluation (`max_depth`: macro recursion, deeply nested expressions).
class Interpreter {
 public:
  Interpreter(Budget& budget, int max_depth);
  // The built-in globals (range, namespace, ...); range spends from this interpreter's budget.
  void setup_globals(Env& g);
  std::string render(const NodeP& program, Env& env);

 private:
  void tick(int line, uint64_t n = 1);
  void charge(uint64_t bytes, int line);
  void need_room(uint64_t bytes, int line);  // refuses an allocation that could not be charged
  void charge_list(const std::vector<Value>& items, int line);
  Value block(const std::vector<NodeP>& stmts, Env& env);
  Value eval(const Node& n, Env& env);
  Value eval_inner(const Node& n, Env& env);
  std::pair<std::vector<Value>, Value> eval_args(const std::vector<NodeP>& args, Env& env);
  Value eval_binary(const Node& n, Env& env);
  Value eval_test(const Node& n, Env& env);
  Value eval_member(const Node& n, Env& env);
  Value eval_slice(const Value& obj, const Node& sl, Env& env);
  Value eval_set(const Node& n, Env& env);
  bool append_in_place(const Node& n, Env& env);
  void before_ns_write(const Object* ns, const std::string& key);
  Value eval_for(const Node& n, Env& env);
  bool sees_loop(const Node& n);
  Value eval_macro(const Node& n, Env& env);
  Value eval_call_block(const Node& n, Env& env);
  void bind_args(const std::string& display, const std::vector<NodeP>& params,
                 std::vector<Value> args, Env& scope);
  Value apply_filter(const Value& v, const Node& f, Env& env);
  bool test_value(const Value& v, const std::string& t, const Value* arg, int line);
  Value string_method(const Value& s, const std::string& name);
  Value string_replace(const std::string& str, std::vector<Value>& a);
  Value object_method(const Value& o, const std::string& name);
  static int compare_values(const Value& a, const Value& b, bool case_sensitive);
  static Value attribute(const Value& item, const std::string& path);
  std::string join_values(const std::vector<Value>& items, const std::string& sep);
  std::string indent(const std::string& s, int64_t width, bool first, bool blank);

  Budget& budget_;
  int max_depth_;
  // Namespaces written during this render. `set ns.x = [ns]` makes a reference cycle that
  // shared_ptr cannot free; render() empties them at the end to break any such cycle.
  std::unordered_map<const void*, std::shared_ptr<Object>> written_ns_;
  int depth_ = 0;
  std::unordered_map<const Node*, bool> sees_loop_;
  std::shared_ptr<Function> range_fn_;  // the built-in range, which `for` iterates lazily
  // Namespace slots an in-place append is evaluating its right operand for: a write to one
  // during that evaluation keeps the value the append must start from (see append_in_place).
  struct Watch {
    const Object* ns;
    const std::string* key;
    bool hit = false;
    Value old;
  };
  std::vector<Watch*> watches_;
};

}  // namespace hearth::templates::jinja
