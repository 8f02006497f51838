#include "train/data.h"

#include <fstream>
#include <sstream>

namespace hearth::train {

void TokenStream::append(const std::vector<int32_t>& t, float w) {
  tokens.insert(tokens.end(), t.begin(), t.end());
  weights.insert(weights.end(), t.size(), w);
}

namespace {

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("[train] cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> split_documents(const std::string& text) {
  std::vector<std::string> docs;
  std::string cur;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    const std::string_view line(text.data() + pos, nl - pos);
    if (line == "\f") {
      if (!cur.empty()) docs.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.append(line);
      cur.push_back('\n');
    }
    pos = nl + 1;
  }
  if (!cur.empty()) docs.push_back(std::move(cur));
  return docs;
}

int32_t end_token(const tokenizer::Tokenizer& tok) {
  const auto& sp = tok.special();
  return sp.eos >= 0 ? sp.eos : sp.eot;
}

}  // namespace

Result<TokenStream> render_conversation(const tokenizer::Tokenizer& tok,
                                        const templates::JinjaChatTemplate& tmpl,
                                        const nlohmann::ordered_json& messages) {
  if (!messages.is_array() || messages.empty())
    return invalid_argument("[train] a conversation needs a non-empty \"messages\" array");
  TokenStream out;
  std::string done;  // text rendered so far
  auto add_text = [&](const std::string& text, float w) -> Status {
    if (text.compare(0, done.size(), done) != 0)
      return invalid_argument(
          "[train] the chat template does not render conversations as a growing prefix; it "
          "cannot be used to weight assistant turns");
    out.append(tok.encode(std::string_view(text).substr(done.size()), false, true), w);
    done = text;
    return Status::ok();
  };
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      return invalid_argument("[train] message " + std::to_string(i) +
                              " needs string \"role\" and \"content\"");
    templates::ChatInput in;
    in.messages = nlohmann::ordered_json(messages.begin(), messages.begin() + long(i));
    if (m["role"] == "assistant") {
      in.add_generation_prompt = true;  // the prompt the model answers
      HEARTH_ASSIGN_OR_RETURN(std::string prompt, templates::render_jinja_chat(tmpl, in));
      HEARTH_RETURN_IF_ERROR(add_text(prompt, 0.0f));
      in.messages.push_back(m);
      in.add_generation_prompt = false;
      HEARTH_ASSIGN_OR_RETURN(std::string full, templates::render_jinja_chat(tmpl, in));
      HEARTH_RETURN_IF_ERROR(add_text(full, 1.0f));
    } else if (i + 1 == messages.size()) {
      in.messages.push_back(m);
      in.add_generation_prompt = false;
      HEARTH_ASSIGN_OR_RETURN(std::string full, templates::render_jinja_chat(tmpl, in));
      HEARTH_RETURN_IF_ERROR(add_text(full, 0.0f));
    }
  }
  if (tok.add_bos() && tok.special().bos >= 0 &&
      (out.tokens.empty() || out.tokens[0] != tok.special().bos)) {
    out.tokens.insert(out.tokens.begin(), tok.special().bos);
    out.weights.insert(out.weights.begin(), 0.0f);
  }
  return out;
}

Result<Dataset> build_dataset(const tokenizer::Tokenizer& tok,
                              const templates::JinjaChatTemplate* tmpl, const DataOptions& o) {
  Dataset d;
  size_t n_doc = 0;
  auto route = [&]() -> TokenStream& {
    ++n_doc;
    return o.eval_every > 0 && n_doc % size_t(o.eval_every) == 0 ? d.eval : d.train;
  };
  const int32_t end = end_token(tok);
  for (const auto& path : o.text_files) {
    HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(path));
    for (const auto& doc : split_documents(text)) {
      std::vector<int32_t> t = tok.encode(doc, false, false);
      if (tok.add_bos() && tok.special().bos >= 0) t.insert(t.begin(), tok.special().bos);
      if (end >= 0) t.push_back(end);
      TokenStream& s = route();
      s.append(t, 1.0f);
      ++s.documents;
    }
  }
  if (!o.chat_files.empty() && !tmpl)
    return invalid_argument("[train] chat data needs a chat template in the tokenizer's file");
  for (const auto& path : o.chat_files) {
    HEARTH_ASSIGN_OR_RETURN(std::string text, read_file(path));
    std::istringstream lines(text);
    std::string line;
    int line_no = 0;
    while (std::getline(lines, line)) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      auto j = nlohmann::ordered_json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("messages"))
        return invalid_argument("[train] " + path + ":" + std::to_string(line_no) +
                                ": expected a JSON object with \"messages\"");
      auto conv = render_conversation(tok, *tmpl, j["messages"]);
      if (!conv)
        return invalid_argument(path + ":" + std::to_string(line_no) + ": " +
                                conv.status().message());
      TokenStream& s = route();
      const int reps = &s == &d.eval ? 1 : std::max(1, o.chat_repeat);
      for (int r = 0; r < reps; ++r) {
        s.tokens.insert(s.tokens.end(), conv->tokens.begin(), conv->tokens.end());
        s.weights.insert(s.weights.end(), conv->weights.begin(), conv->weights.end());
        ++s.documents;
      }
    }
  }
  return d;
}

Status sample_batch(const TokenStream& s, int64_t n_seq, int64_t n_tok, Rng& rng,
                    BatchBuffers& out) {
  const int64_t n = int64_t(s.tokens.size());
  if (n < n_tok + 1)
    return invalid_argument("[train] the training data has " + std::to_string(n) +
                            " tokens, fewer than one window of " + std::to_string(n_tok + 1));
  const size_t rows = size_t(n_seq * n_tok);
  out.tokens.resize(rows);
  out.targets.resize(rows);
  out.weights.resize(rows);
  for (int64_t q = 0; q < n_seq; ++q) {
    const int64_t start = int64_t(rng.next() % uint64_t(n - n_tok));
    for (int64_t i = 0; i < n_tok; ++i) {
      const size_t r = size_t(q * n_tok + i), at = size_t(start + i);
      out.tokens[r] = s.tokens[at];
      out.targets[r] = s.tokens[at + 1];
      out.weights[r] = s.weights[at + 1];
    }
  }
  return Status::ok();
}

void window_batch(const TokenStream& s, int64_t n_seq, int64_t n_tok, int64_t first_window,
                  BatchBuffers& out) {
  const size_t rows = size_t(n_seq * n_tok);
  out.tokens.assign(rows, 0);
  out.targets.assign(rows, -1);
  out.weights.assign(rows, 0.0f);
  const int64_t n = int64_t(s.tokens.size());
  for (int64_t q = 0; q < n_seq; ++q) {
    const int64_t start = (first_window + q) * n_tok;
    for (int64_t i = 0; i < n_tok && start + i + 1 < n; ++i) {
      const size_t r = size_t(q * n_tok + i), at = size_t(start + i);
      out.tokens[r] = s.tokens[at];
      out.targets[r] = s.tokens[at + 1];
      out.weights[r] = s.weights[at + 1];
    }
  }
}

}  // namespace hearth::train
