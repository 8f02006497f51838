#include "templates/jinja/jinja.h"

namespace hearth::templates::jinja {

struct Template::Impl {};

Result<Template> Template::parse(std::string_view, const Options&) {
  return unsupported("[jinja] not implemented yet");
}

Result<std::string> Template::render(const nlohmann::ordered_json&) const {
  return unsupported("[jinja] not implemented yet");
}

}  // namespace hearth::templates::jinja
