#include "templates/gotmpl/gotmpl.h"

namespace hearth::templates::gotmpl {

struct Template::Impl {};

Result<Template> Template::parse(std::string_view) {
  return unsupported("[gotmpl] not implemented yet");
}

Result<std::string> Template::render(const nlohmann::ordered_json&) const {
  return unsupported("[gotmpl] not implemented yet");
}

bool Template::uses(std::string_view) const {
  return false;
}

}  // namespace hearth::templates::gotmpl
