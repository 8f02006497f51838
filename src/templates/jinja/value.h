// templates/jinja/value.h — run-time values of the Jinja engine.
//
// The value model follows the reference renderer (@huggingface/jinja, which transformers'
// apply_chat_template output is checked against): integers and floats are distinct, lists and
// objects are shared by reference (namespace attributes can be set), objects keep insertion
// order, printing and tojson follow its formatting (floats like JavaScript numbers, "true"/
// "false", "None" is never printed: none and undefined print nothing).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "templates/budget.h"

namespace hearth::templates::jinja {

struct Value;
class Env;

struct Object {
  std::vector<std::pair<std::string, Value>> items;  // insertion order
  Value* find(const std::string& k);
  const Value* find(const std::string& k) const;
  void set(const std::string& k, Value v);
};

// Built-in or macro: positional arguments, then keyword arguments as a trailing Kwargs value.
using Function = std::function<Value(std::vector<Value>& args, Env& env)>;

struct Value {
  enum class K {
    kUndefined,
    kNull,
    kBool,
    kInt,
    kFloat,
    kStr,
    kArray,
    kTuple,
    kObject,
    kNamespace,
    kKwargs,
    kFunc
  };
  K k = K::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;
  std::shared_ptr<std::vector<Value>> arr;  // kArray, kTuple
  std::shared_ptr<Object> obj;              // kObject, kNamespace, kKwargs
  std::shared_ptr<Function> fn;

  static Value undefined() { return Value(); }
  static Value null() {
    Value v;
    v.k = K::kNull;
    return v;
  }
  static Value boolean(bool x) {
    Value v;
    v.k = K::kBool;
    v.b = x;
    return v;
  }
  static Value integer(int64_t x) {
    Value v;
    v.k = K::kInt;
    v.i = x;
    return v;
  }
  static Value number(double x) {
    Value v;
    v.k = K::kFloat;
    v.f = x;
    return v;
  }
  static Value str(std::string x) {
    Value v;
    v.k = K::kStr;
    v.s = std::move(x);
    return v;
  }
  static Value array(std::vector<Value> x = {}, K kind = K::kArray) {
    Value v;
    v.k = kind;
    v.arr = std::make_shared<std::vector<Value>>(std::move(x));
    return v;
  }
  static Value object(K kind = K::kObject) {
    Value v;
    v.k = kind;
    v.obj = std::make_shared<Object>();
    return v;
  }
  static Value function(Function f) {
    Value v;
    v.k = K::kFunc;
    v.fn = std::make_shared<Function>(std::move(f));
    return v;
  }

  bool is_array() const { return k == K::kArray || k == K::kTuple; }
  bool is_object() const { return k == K::kObject || k == K::kKwargs; }
  bool is_attr_container() const { return is_object() || k == K::kNamespace; }
  bool is_number() const { return k == K::kInt || k == K::kFloat; }
  bool none_or_undefined() const { return k == K::kUndefined || k == K::kNull; }
  double num() const { return k == K::kInt ? double(i) : k == K::kBool ? double(b) : f; }
  bool truthy() const;
  const char* type_name() const;
};

// From JSON input (integral floats become integers, as JavaScript numbers would).
Value from_json(const nlohmann::ordered_json& j);

// Printing a list or dict walks all of it, and lists can share sublists (`[a, a]` nested 40 deep
// has 2**40 leaves), so the functions below spend from the render's budget when given one: a
// step per value, the bytes of each string piece. Overrunning it throws std::runtime_error.

// How a value prints in the output (none and undefined print nothing).
std::string to_output(const Value& v, Budget* budget = nullptr);
// The reference's RuntimeValue.toString(): like to_output, but "null" / "undefined".
std::string rt_string(const Value& v, Budget* budget = nullptr);
// JavaScript's String() of the underlying value, as `~` and `+` concatenate: numbers as
// JavaScript prints them, dicts "[object Map]", lists their items' rt_string joined by ",".
std::string js_string(const Value& v, Budget* budget = nullptr);
// JavaScript's Number -> string.
std::string js_number(double d);

struct JsonOptions {
  int indent = 0;  // 0: single line
  bool ensure_ascii = false;
  bool sort_keys = false;
  bool has_separators = false;
  std::string item_sep, key_sep;
  Budget* budget = nullptr;
};
// tojson; `undefined_as_null` false prints "undefined" (as the reference's printing of lists).
std::string to_json(const Value& v, const JsonOptions& o, bool undefined_as_null = true,
                    int depth = 0);

// The == operator (JavaScript loose equality on the underlying values).
bool loose_equals(const Value& a, const Value& b);
// Strict equality of underlying values (`in` on lists, unique).
bool strict_equals(const Value& a, const Value& b);

}  // namespace hearth::templates::jinja
