// libFuzzer target: the GGUF reader on arbitrary bytes. Every metadata value and tensor view the
// reader accepts is touched, so an out-of-bounds view shows up under ASan.
#include <cstddef>
#include <cstdint>

#include "gguf/gguf.h"
#include "models/model.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = hearth::gguf::GgufFile::parse(data, size, "fuzz");
  if (!f) return 0;
  uint64_t sink = 0;
  for (const auto& e : (*f)->metadata()) {
    const auto& v = e.value;
    sink += e.key.size() + v.s.size() + size_t(v.i);
    for (auto s : v.strs) sink += s.size() ? uint8_t(s[0]) : 0;
    if (v.type == hearth::gguf::ValueType::ARRAY &&
        v.elem_type != hearth::gguf::ValueType::STRING) {
      if (auto a = (*f)->get_float_array(e.key)) sink += a->size();
    }
  }
  for (const auto& t : (*f)->tensors()) {
    if (t.nbytes) sink += t.data[0] + t.data[t.nbytes - 1];
  }
  // Model loading on top of a parsed file must also fail cleanly.
  hearth::ThreadPool pool(1);
  auto m = hearth::models::load_model(*f, pool, {false});
  (void)m;
  // And the scheduler's memory estimate from metadata alone.
  hearth::models::ContextParams cp;
  if (auto est = hearth::models::estimate_state_bytes(**f, cp); est.is_ok()) sink += *est;
  // So must building a tokenizer from hostile tokenizer.ggml.* metadata, and using it.
  if (auto t = hearth::tokenizer::Tokenizer::from_gguf(**f); t.is_ok()) {
    const auto ids = (*t)->encode("Hello <|im_start|> world 123 ", true, true);
    sink += (*t)->decode(ids).size();
  }
  return int(sink & 0);
}
