#include "templates/jinja/jinja.h"

#include <new>
#include <stdexcept>

#include "templates/jinja/ast.h"
#include "templates/jinja/interpreter.h"

namespace hearth::templates::jinja {

struct Template::Impl {
  NodeP program;
  Options opt;
};

namespace {
Status as_status(const JinjaError& e) {
  std::string m = "[jinja] ";
  if (e.line > 0) m += "line " + std::to_string(e.line) + ": ";
  return invalid_argument(m + e.what());
}
}  // namespace

Result<Template> Template::parse(std::string_view source, const Options& opt) {
  if (!opt.trim_blocks || !opt.lstrip_blocks)
    return unsupported(
        "[jinja] only trim_blocks + lstrip_blocks (as Hugging Face sets them) is supported");
  try {
    auto impl = std::make_shared<Impl>();
    impl->program = jinja::parse(tokenize(std::string(source)));
    impl->opt = opt;
    Template t;
    t.impl_ = impl;
    return t;
  } catch (const JinjaError& e) {
    return as_status(e);
  } catch (const std::bad_alloc&) {
    return invalid_argument("[jinja] out of memory while parsing the template");
  } catch (const std::exception& e) {
    return invalid_argument(std::string("[jinja] ") + e.what());
  }
}

Result<std::string> Template::render(const nlohmann::ordered_json& context) const {
  Budget b = Budget::for_input(json_size(context));
  if (impl_ && impl_->opt.max_steps > 0) b.max_steps = impl_->opt.max_steps;
  if (impl_ && impl_->opt.max_bytes > 0) b.max_bytes = impl_->opt.max_bytes;
  return render(context, b);
}

Result<std::string> Template::render(const nlohmann::ordered_json& context, Budget& budget) const {
  if (!impl_) return invalid_argument("[jinja] template not parsed");
  if (!context.is_object()) return invalid_argument("[jinja] the context must be a JSON object");
  try {
    Env globals(nullptr);
    Interpreter in(budget, impl_->opt.max_depth);
    in.setup_globals(globals);
    for (const auto& [k, v] : context.items()) globals.set(k, from_json(v));
    return in.render(impl_->program, globals);
  } catch (const JinjaError& e) {
    return as_status(e);
  } catch (const std::bad_alloc&) {
    // The budget should stop a template long before this; if memory runs out anyway (a budget
    // larger than the machine), the render fails rather than the process.
    return invalid_argument("[jinja] out of memory while rendering the template");
  } catch (const std::length_error&) {
    return invalid_argument("[jinja] a value grew past the largest possible size");
  } catch (const std::exception& e) {
    return invalid_argument(std::string("[jinja] ") + e.what());
  }
}

}  // namespace hearth::templates::jinja
