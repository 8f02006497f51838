// libFuzzer target: the Modelfile parser and model-name parser on arbitrary text. Whatever parses
// must print (to_text) as a Modelfile that parses back to the same fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "store/modelfile.h"
#include "store/name.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (auto n = hearth::store::ModelName::parse(text); n.is_ok()) {
    auto again = hearth::store::ModelName::parse(n->display());
    if (!again.is_ok() || !(*again == *n)) std::abort();
  }
  auto mf = hearth::store::Modelfile::parse(text);
  if (!mf.is_ok()) return 0;
  auto back = hearth::store::Modelfile::parse(mf->to_text());
  if (!back.is_ok() || back->from != mf->from || back->params != mf->params ||
      back->system != mf->system || back->template_text != mf->template_text ||
      back->messages != mf->messages || back->licenses != mf->licenses ||
      back->parser != mf->parser || back->renderer != mf->renderer ||
      back->requires_version != mf->requires_version)
    std::abort();
  return 0;
}
