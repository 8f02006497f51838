#include "parsers/output_parser.h"

#include <algorithm>

namespace hearth::parsers {
namespace {

bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

void strip_leading_ws(std::string& s) {
  size_t i = 0;
  while (i < s.size() && is_space(s[i])) ++i;
  s.erase(0, i);
}

// Untagged syntaxes: a reply that starts with one of these is read as calls.
bool starts_untagged_call(CallSyntax syntax, char c) {
  if (syntax == CallSyntax::kLlamaJson) return c == '{' || c == '[';
  if (syntax == CallSyntax::kPythonic) return c == '[';
  return false;
}

}  // namespace

void Parsed::append(Parsed&& o) {
  content += o.content;
  thinking += o.thinking;
  for (auto& c : o.calls) calls.push_back(std::move(c));
}

OutputParser::OutputParser(Format format, ParserOptions options)
    : f_(std::move(format)), o_(std::move(options)) {
  calls_on_ = f_.has_tools() && o_.tools.is_array() && !o_.tools.empty();
  if (o_.starts_in_thinking && f_.has_thinking()) {
    state_ = State::kThinking;
    skip_ws_ = true;
    label_ = !f_.think_label.empty();
  }
}

bool OutputParser::is_text_marker(const std::string& m) const {
  return !m.empty() &&
         std::find(o_.token_markers.begin(), o_.token_markers.end(), m) == o_.token_markers.end();
}

std::vector<const std::string*> OutputParser::awaited() const {
  std::vector<const std::string*> m;
  const bool call = calls_on_ && !f_.call_open.empty();
  switch (state_) {
    case State::kContent:
      if (f_.has_thinking()) m.push_back(&f_.think_open);
      if (call) m.push_back(&f_.call_open);
      break;
    case State::kThinking:
      m.push_back(&f_.think_close);
      if (call && f_.call_ends_thinking) m.push_back(&f_.call_open);
      break;
    case State::kCall:
      if (!f_.call_close.empty()) m.push_back(&f_.call_close);
      break;
    case State::kRest:
      break;
  }
  return m;
}

// Content and thinking out, with their trailing whitespace held back: dropped before a thinking
// block closes or a call opens (whitespace around markup is not part of the answer), kept
// otherwise.
void OutputParser::emit(Parsed& out, std::string_view text, bool final) {
  if (text.empty() && !final) return;
  std::string s = held_ws_;
  s += text;
  held_ws_.clear();
  const bool hold = state_ == State::kThinking || calls_on_;
  if (hold && !final) {
    size_t e = s.size();
    while (e > 0 && is_space(s[e - 1])) --e;
    held_ws_ = s.substr(e);
    s.resize(e);
  }
  if (state_ == State::kThinking) {
    out.thinking += s;
  } else {
    for (char c : s)
      if (!is_space(c)) seen_text_ = true;
    out.content += s;
  }
}

void OutputParser::eat(Parsed& out, bool flush) {
  for (;;) {
    if (state_ == State::kRest) {
      body_ += buf_;
      buf_.clear();
      return;
    }
    if (state_ == State::kCall) {
      const std::string& close = f_.call_close;
      if (is_text_marker(close)) {
        const size_t p = buf_.find(close);
        if (p != std::string::npos) {
          body_.append(buf_, 0, p);
          buf_.erase(0, p + close.size());
          end_call(out, false);
          continue;
        }
        size_t hold = 0;
        if (!flush)
          for (size_t k = std::min(close.size() - 1, buf_.size()); k > 0; --k)
            if (buf_.compare(buf_.size() - k, k, close, 0, k) == 0) {
              hold = k;
              break;
            }
        body_.append(buf_, 0, buf_.size() - hold);
        buf_.erase(0, buf_.size() - hold);
      } else {
        body_ += buf_;
        buf_.clear();
      }
      return;
    }
    // Content or thinking. First what may come right after a marker.
    if (label_) {
      const std::string& l = f_.think_label;
      if (!flush && buf_.size() < l.size() && starts_with(l, buf_)) return;  // undecided
      if (starts_with(buf_, l)) {
        buf_.erase(0, l.size());
        skip_ws_ = true;
      }
      label_ = false;
    }
    if (after_call_ && state_ == State::kContent) {
      strip_leading_ws(buf_);
      bool again = false, wait = false;
      for (const auto& n : f_.after_call) {
        if (starts_with(buf_, n)) {
          buf_.erase(0, n.size());
          again = true;
          break;
        }
        if (!buf_.empty() && starts_with(n, buf_)) wait = true;
      }
      if (again) continue;
      if (buf_.empty() || (wait && !flush)) return;
      after_call_ = false;
    }
    if (skip_ws_) {
      strip_leading_ws(buf_);
      if (buf_.empty()) return;
      skip_ws_ = false;
    }
    if (state_ == State::kContent && calls_on_ && !seen_text_ && held_ws_.empty()) {
      size_t i = 0;
      while (i < buf_.size() && is_space(buf_[i])) ++i;
      if (i == buf_.size() && !flush) return;  // only whitespace so far: undecided
      if (i < buf_.size() && starts_untagged_call(f_.syntax, buf_[i])) {
        state_ = State::kRest;
        call_open_.clear();
        body_.clear();
        continue;
      }
    }
    // The earliest marker in the text (the longest on a tie).
    size_t best = std::string::npos;
    const std::string* marker = nullptr;
    const auto markers = awaited();
    for (const std::string* m : markers) {
      if (!is_text_marker(*m)) continue;
      const size_t p = buf_.find(*m);
      if (p != std::string::npos && (p < best || (p == best && m->size() > marker->size()))) {
        best = p;
        marker = m;
      }
    }
    if (marker) {
      emit(out, std::string_view(buf_).substr(0, best), false);
      buf_.erase(0, best + marker->size());
      enter(*marker, out);
      continue;
    }
    // Hold back a tail that may still become a marker.
    size_t hold = 0;
    if (!flush)
      for (const std::string* m : markers) {
        if (!is_text_marker(*m)) continue;
        for (size_t k = std::min(m->size() - 1, buf_.size()); k > hold; --k)
          if (buf_.compare(buf_.size() - k, k, *m, 0, k) == 0) {
            hold = k;
            break;
          }
      }
    emit(out, std::string_view(buf_).substr(0, buf_.size() - hold), false);
    buf_.erase(0, buf_.size() - hold);
    return;
  }
}

void OutputParser::enter(const std::string& marker, Parsed& out) {
  const bool call = calls_on_ && !f_.call_open.empty() && marker == f_.call_open;
  if (state_ == State::kContent && f_.has_thinking() && marker == f_.think_open) {
    held_ws_.clear();
    state_ = State::kThinking;
    skip_ws_ = true;
    label_ = !f_.think_label.empty();
  } else if (state_ == State::kThinking && marker == f_.think_close) {
    held_ws_.clear();
    state_ = State::kContent;
    skip_ws_ = true;
  } else if (call && (state_ == State::kContent || state_ == State::kThinking)) {
    held_ws_.clear();
    call_open_ = marker;
    body_.clear();
    state_ = f_.call_close.empty() ? State::kRest : State::kCall;
  } else if (state_ == State::kCall && marker == f_.call_close) {
    end_call(out, false);
  }
}

void OutputParser::end_call(Parsed& out, bool truncated) {
  const bool closed = state_ == State::kCall && !truncated;
  std::vector<ToolCall> calls;
  std::string err;
  bool ok = !truncated && parse_calls(f_.syntax, body_, o_.tools, calls, &err);
  if (ok)
    for (const auto& c : calls) {
      bool known = false;
      for (const auto& t : o_.tools) {
        const auto* fn = t.is_object() && t.contains("function") ? &t["function"] : &t;
        if (fn->is_object() && fn->contains("name") && (*fn)["name"] == c.name) known = true;
      }
      if (!known) {
        ok = false;
        err = "the model called '" + c.name + "', which the request did not offer";
        break;
      }
    }
  const State was = state_;
  state_ = State::kContent;
  if (ok) {
    for (auto& c : calls) out.calls.push_back(std::move(c));
    after_call_ = !f_.after_call.empty();
    skip_ws_ = true;
  } else {
    std::string text = call_open_ + body_;
    if (closed && was == State::kCall) text += f_.call_close;
    warnings.push_back(truncated ? "a tool call was cut off; returned as content"
                                 : "a malformed tool call was returned as content: " + err);
    emit(out, text, true);
  }
  body_.clear();
  call_open_.clear();
}

void OutputParser::add(std::string_view text, Parsed& out) {
  buf_.append(text);
  eat(out, false);
}

void OutputParser::add_special(std::string_view text, Parsed& out) {
  eat(out, true);
  const std::string t(text);
  const auto is = [&](const std::string& m) { return !m.empty() && t == m; };
  switch (state_) {
    case State::kContent:
      if ((f_.has_thinking() && is(f_.think_open)) || (calls_on_ && is(f_.call_open))) {
        enter(t, out);
        eat(out, false);
        return;
      }
      if (after_call_ &&
          std::find(f_.after_call.begin(), f_.after_call.end(), t) != f_.after_call.end())
        return;
      if (is(f_.think_close) || is(f_.call_close)) return;  // stray closers
      break;
    case State::kThinking:
      if (is(f_.think_close) || (calls_on_ && f_.call_ends_thinking && is(f_.call_open))) {
        enter(t, out);
        eat(out, false);
        return;
      }
      if (is(f_.think_open)) return;  // a stray second opener (Qwen 3.5)
      break;
    case State::kCall:
      if (is(f_.call_close)) {
        enter(t, out);
        eat(out, false);
        return;
      }
      body_ += t;
      return;
    case State::kRest:
      body_ += t;
      return;
  }
  // Any other special token is text where it stands.
  label_ = after_call_ = skip_ws_ = false;
  emit(out, t, false);
}

void OutputParser::finish(bool truncated, Parsed& out) {
  eat(out, true);
  if (state_ == State::kCall || state_ == State::kRest) {
    end_call(out, truncated);
    eat(out, true);
  }
  if (!buf_.empty()) {  // only what waited on a decision (a label, noise after a call)
    label_ = after_call_ = skip_ws_ = false;
    emit(out, buf_, false);
    buf_.clear();
  }
  if (state_ == State::kContent) emit(out, "", true);
  held_ws_.clear();
}

}  // namespace hearth::parsers
