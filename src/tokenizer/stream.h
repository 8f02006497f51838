// tokenizer/stream.h — token ids to text that is safe to show while generating.
//
// Only complete UTF-8 leaves: a character split across tokens is held until its last byte
// arrives. Stop strings are matched across token boundaries: any tail that could still become a
// stop string is held back until it completes (generation stops; the stop text is not emitted)
// or is ruled out (then it is emitted).
#pragma once

#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace hearth::tokenizer {

class TextStream {
 public:
  TextStream(const Tokenizer& t, std::vector<std::string> stops = {}, bool special = false);

  // Adds one token and returns the text that can be shown now (possibly empty). After a stop
  // string completes, stopped() is true and later calls return nothing.
  std::string push(int32_t id);
  // End of generation: everything still held (a dangling partial character becomes U+FFFD).
  std::string flush();
  // The same mid-stream, before a token that is not text (a marker the output parser takes): a
  // held stop-string prefix cannot continue across it, so it is released.
  std::string drain() { return flush(); }

  bool stopped() const { return stopped_; }
  const std::string& stop_matched() const { return matched_; }

 private:
  std::string take(size_t n);
  const Tokenizer& tok_;
  std::vector<std::string> stops_;
  bool special_;
  bool stopped_ = false;
  std::string pending_, matched_;
};

}  // namespace hearth::tokenizer
