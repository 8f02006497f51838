// parsers/output_parser.h — a model's output, as it streams, split into content, thinking and
// tool calls, for every format (format.h) by one engine.
//
// Text arrives piece by piece in any split; the result is the same as if it came at once (tested
// byte by byte). Content and thinking leave as soon as they cannot be the start of a marker; a
// tool call leaves whole when its closing marker arrives. Markers that are single vocabulary tokens
// are matched only as tokens (add_special), so a reply that merely spells "<tool_call>" in text is
// content. A call that does not parse, or names a tool the request did not offer, becomes content
// (with a warning), never an error.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "parsers/calls.h"
#include "parsers/format.h"

namespace hearth::parsers {

struct Parsed {
  std::string content, thinking;
  std::vector<ToolCall> calls;
  bool empty() const { return content.empty() && thinking.empty() && calls.empty(); }
  void append(Parsed&& o);
};

struct ParserOptions {
  // The request's tools (an array, or null). Calls are recognised only when it is not empty.
  nlohmann::ordered_json tools;
  // The prompt ends inside an open thinking block (the template pre-opened it).
  bool starts_in_thinking = false;
  // Markers that are one vocabulary token for this model: they arrive through add_special only.
  std::vector<std::string> token_markers;
};

class OutputParser {
 public:
  OutputParser(Format format, ParserOptions options);

  // Text of ordinary tokens.
  void add(std::string_view text, Parsed& out);
  // The text of one special token: a marker if it is one of the format's, else ordinary text.
  void add_special(std::string_view text, Parsed& out);
  // The end of the output. truncated: generation was cut off (a call still open is content).
  void finish(bool truncated, Parsed& out);

  enum class State { kContent, kThinking, kCall, kRest };
  State state() const { return state_; }
  bool calls_enabled() const { return calls_on_; }
  // The body of the call being read so far (state kCall), for a grammar armed mid-call.
  const std::string& call_body() const { return body_; }
  const Format& format() const { return f_; }
  // Calls that became content, with the reason (for the server's log).
  std::vector<std::string> warnings;

 private:
  void eat(Parsed& out, bool final);
  void emit(Parsed& out, std::string_view text, bool final);
  void enter(const std::string& marker, Parsed& out);
  void end_call(Parsed& out, bool truncated);
  bool is_text_marker(const std::string& m) const;
  std::vector<const std::string*> awaited() const;

  Format f_;
  ParserOptions o_;
  bool calls_on_ = false;
  State state_ = State::kContent;
  std::string buf_;        // text not yet consumed
  std::string held_ws_;    // trailing whitespace of content / thinking, held back
  std::string body_;       // the call being read
  std::string call_open_;  // the text that opened it (given back as content if it fails)
  bool skip_ws_ = false;   // drop leading whitespace (after a thinking block or a call)
  bool label_ = false;     // the format's think label may follow
  bool after_call_ = false;
  bool seen_text_ = false;  // any non-whitespace content yet (untagged calls start the reply)
};

}  // namespace hearth::parsers
