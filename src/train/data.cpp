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

namespace {

Status check_messages(const nlohmann::ordered_json& messages) {
  if (!messages.is_array() || messages.empty())
    return invalid_argument("[train] a conversation needs a non-empty \"messages\" array");
  for (size_t i = 0; i < messages.size(); ++i) {
    const auto& m = messages[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      return invalid_argument("[train] message " + std::to_string(i) +
                              " needs string \"role\" and \"content\"");
  }
  return Status::ok();
}

// The prompt an assistant turn answers and the text with that turn: render(messages[:i]) with
// the generation prompt, render(messages[:i+1]) without.
Status render_turn(const templates::JinjaChatTemplate& tmpl, const nlohmann::ordered_json& msgs,
                   size_t i, std::string& prompt, std::string& full) {
  templates::ChatInput in;
  in.messages = nlohmann::ordered_json(msgs.begin(), msgs.begin() + long(i));
  in.add_generation_prompt = true;
  HEARTH_ASSIGN_OR_RETURN(prompt, templates::render_jinja_chat(tmpl, in));
  in.messages.push_back(msgs[i]);
  in.add_generation_prompt = false;
  HEARTH_ASSIGN_OR_RETURN(full, templates::render_jinja_chat(tmpl, in));
  return Status::ok();
}

void add_bos(const tokenizer::Tokenizer& tok, TokenStream& s, size_t at) {
  if (tok.add_bos() && tok.special().bos >= 0 &&
      (s.tokens.size() <= at || s.tokens[at] != tok.special().bos)) {
    s.tokens.insert(s.tokens.begin() + long(at), tok.special().bos);
    s.weights.insert(s.weights.begin() + long(at), 0.0f);
  }
}

}  // namespace

Result<TokenStream> render_conversation(const tokenizer::Tokenizer& tok,
                                        const templates::JinjaChatTemplate& tmpl,
                                        const nlohmann::ordered_json& messages) {
  HEARTH_RETURN_IF_ERROR(check_messages(messages));
  // Most templates render a conversation as a growing prefix: then one sequence holds every
  // turn, tokenized piece by piece as a server sees it (prompt, then generated tokens).
  TokenStream out;
  std::string done;
  bool growing = true;
  for (size_t i = 0; i < messages.size() && growing; ++i) {
    if (messages[i]["role"] != "assistant") continue;
    std::string prompt, full;
    HEARTH_RETURN_IF_ERROR(render_turn(tmpl, messages, i, prompt, full));
    if (prompt.compare(0, done.size(), done) != 0 || full.compare(0, prompt.size(), prompt) != 0) {
      growing = false;
      break;
    }
    out.append(tok.encode(std::string_view(prompt).substr(done.size()), false, true), 0.0f);
    out.append(tok.encode(std::string_view(full).substr(prompt.size()), false, true), 1.0f);
    done = full;
  }
  if (growing) {
    if (done.empty())
      return invalid_argument("[train] a conversation has no assistant turn to learn from");
    add_bos(tok, out, 0);
    return out;
  }
  // Templates that rewrite history (Qwen 3 drops earlier turns' reasoning) give one sequence
  // per assistant turn, each with the history as that template renders it.
  out = TokenStream();
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i]["role"] != "assistant") continue;
    std::string prompt, full;
    HEARTH_RETURN_IF_ERROR(render_turn(tmpl, messages, i, prompt, full));
    if (full.compare(0, prompt.size(), prompt) != 0)
      return invalid_argument(
          "[train] the chat template renders an assistant turn that does not continue its own "
          "prompt; it cannot be used to weight assistant turns");
    const size_t start = out.tokens.size();
    out.append(tok.encode(prompt, false, true), 0.0f);
    out.append(tok.encode(std::string_view(full).substr(prompt.size()), false, true), 1.0f);
    add_bos(tok, out, start);
  }
  return out;
}

Result<DataFormat> open_data_format(const gguf::GgufFile& f, const std::string& template_file) {
  DataFormat d;
  HEARTH_ASSIGN_OR_RETURN(d.tok, tokenizer::Tokenizer::from_gguf(f));
  if (auto t = templates::jinja_chat_template(f); t.is_ok()) d.tmpl = std::move(*t);
  if (!template_file.empty()) {
    HEARTH_ASSIGN_OR_RETURN(std::string src, read_file(template_file));
    if (!d.tmpl) d.tmpl.emplace();
    d.tmpl->source = std::move(src);
  }
  return d;
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

Result<Dataset> build_chat_dataset(const tokenizer::Tokenizer& tok,
                                   const templates::JinjaChatTemplate& tmpl,
                                   const nlohmann::ordered_json& conversations, int eval_every) {
  if (!conversations.is_array() || conversations.empty())
    return invalid_argument("[train] data must be a non-empty array of {\"messages\": [...]}");
  Dataset d;
  size_t n = 0;
  for (const auto& c : conversations) {
    ++n;
    if (!c.is_object() || !c.contains("messages"))
      return invalid_argument("[train] data[" + std::to_string(n - 1) +
                              "] must be an object with \"messages\"");
    auto conv = render_conversation(tok, tmpl, c["messages"]);
    if (!conv)
      return invalid_argument("data[" + std::to_string(n - 1) + "]: " + conv.status().message());
    TokenStream& s = eval_every > 0 && n % size_t(eval_every) == 0 ? d.eval : d.train;
    s.tokens.insert(s.tokens.end(), conv->tokens.begin(), conv->tokens.end());
    s.weights.insert(s.weights.end(), conv->weights.begin(), conv->weights.end());
    ++s.documents;
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
