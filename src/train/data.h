// train/data.h — training text as one token stream with a loss weight per token.
//
// Plain text trains on every token. Chat data (JSON lines of {"messages": [...]}) is rendered
// through the model's own chat template one turn at a time, so the tokens are exactly those the
// model sees when it serves that chat, and only the assistant turns (with their end-of-turn
// marker) carry loss. Documents are packed back to back, each ended by end-of-sequence, and a
// fixed share of them is held back for evaluation.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "gguf/gguf.h"
#include "templates/chat.h"
#include "tokenizer/tokenizer.h"
#include "train/decoder.h"
#include "train/params.h"

namespace hearth::train {

struct TokenStream {
  std::vector<int32_t> tokens;
  std::vector<float> weights;  // weights[i]: loss weight of predicting tokens[i]
  size_t documents = 0;
  void append(const std::vector<int32_t>& t, float w);
};

struct DataOptions {
  std::vector<std::string> text_files;  // documents separated by form-feed lines ("\f")
  std::vector<std::string> chat_files;  // JSON lines: {"messages": [{"role", "content"}...]}
  int chat_repeat = 1;                  // each conversation appears this many times
  int eval_every = 50;                  // every n-th document is held back (0: none)
};

struct Dataset {
  TokenStream train, eval;
};

// What data is rendered and tokenized with: a model's (or tokenizer file's) tokenizer and its
// chat template. `hearth train`, `hearth finetune` and POST /api/finetune open it the same way.
struct DataFormat {
  std::shared_ptr<const tokenizer::Tokenizer> tok;
  std::optional<templates::JinjaChatTemplate> tmpl;  // none: the file has no chat template
};
// `template_file`, when not empty, is a Jinja file replacing the GGUF's own template.
Result<DataFormat> open_data_format(const gguf::GgufFile& f, const std::string& template_file = "");

// Reads and tokenizes everything. `tmpl` is needed only for chat files.
Result<Dataset> build_dataset(const tokenizer::Tokenizer& tok,
                              const templates::JinjaChatTemplate* tmpl, const DataOptions& o);

// The same from conversations already in memory: a JSON array of {"messages": [...]} (the
// fine-tuning API's inline data).
Result<Dataset> build_chat_dataset(const tokenizer::Tokenizer& tok,
                                   const templates::JinjaChatTemplate& tmpl,
                                   const nlohmann::ordered_json& conversations, int eval_every);

// One chat rendered turn by turn: its tokens and their weights (1 on assistant turns).
Result<TokenStream> render_conversation(const tokenizer::Tokenizer& tok,
                                        const templates::JinjaChatTemplate& tmpl,
                                        const nlohmann::ordered_json& messages);

// Fills a batch of n_seq windows of n_tok tokens (targets: the next token) drawn from `s` at
// positions given by `rng`. The vectors are resized as needed.
struct BatchBuffers {
  std::vector<int32_t> tokens, targets;
  std::vector<float> weights;
  Batch batch(int64_t n_seq, int64_t n_tok) const {
    return Batch{n_seq, n_tok, tokens.data(), targets.data(), weights.data()};
  }
};
Status sample_batch(const TokenStream& s, int64_t n_seq, int64_t n_tok, Rng& rng,
                    BatchBuffers& out);
// The i-th of the consecutive windows covering `s` (evaluation walks the stream in order).
void window_batch(const TokenStream& s, int64_t n_seq, int64_t n_tok, int64_t first_window,
                  BatchBuffers& out);

}  // namespace hearth::train
