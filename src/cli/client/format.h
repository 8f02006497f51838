// cli/client/format.h — how the client prints things the way Ollama's CLI does: sizes, times,
// tables, progress bars.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hearth::cli {

// 1000-based, one decimal below 10: "4.7 GB", "26 MB", "512 B".
std::string human_bytes(int64_t n);
// Seconds relative to now: "2 minutes ago", "4 minutes from now", "Less than a second ago".
std::string human_since(int64_t unix_seconds, int64_t now_unix);
// RFC 3339 ("2026-11-24T12:04:33.5Z" or with an offset) -> unix seconds; 0 if malformed.
int64_t parse_rfc3339(const std::string& s);
// Columns padded to the widest cell plus 4 spaces (the last column is not padded).
std::string table(const std::vector<std::vector<std::string>>& rows);
// "label  NN% ▕████    ▏ cur/total" on one line (for \r updates).
std::string progress_bar(const std::string& label, int64_t done, int64_t total, int width = 25);

// Streamed text wrapped at word boundaries to `width` columns (characters, not bytes); width <= 0
// passes text through. A word longer than the line is not broken.
class WordWrapper {
 public:
  explicit WordWrapper(int width) : width_(width) {}
  std::string feed(const std::string& text);  // what can be printed now
  std::string flush();                        // the word still held
  void reset_column() { col_ = 0; }           // something else was printed on its own line

 private:
  int width_;
  int col_ = 0;
  std::string word_;
  int word_cols_ = 0;
};

}  // namespace hearth::cli
