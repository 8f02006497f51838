// cli/text_commands.cpp — text in and out: tokenize, detokenize (JSON shaped like the oracle's),
// and extract-text (a document's text as the web UI indexes it; the server runs it as a child to
// keep parser crashes out of its own process, rag/isolate.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "gguf/gguf.h"
#include "rag/extract.h"
#include "rag/ingest.h"
#include "rag/isolate.h"
#include "tokenizer/tokenizer.h"

namespace hearth::cli {

namespace {

using json = nlohmann::json;  // sorted keys, as the oracle prints them

int fail(const std::string& msg) {
  std::fprintf(stderr, "hearth: %s\n", msg.c_str());
  return 1;
}

void print(const json& j) {
  // Pieces that split a UTF-8 character print as U+FFFD, as the oracle's do.
  std::printf("%s\n", j.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
}

Result<std::shared_ptr<const tokenizer::Tokenizer>> load_tokenizer(const std::string& path) {
  HEARTH_ASSIGN_OR_RETURN(auto f, gguf::GgufFile::open(path));
  return tokenizer::Tokenizer::from_gguf(*f);
}

Result<std::vector<int32_t>> parse_ids(const std::string& s, int32_t n_vocab) {
  std::vector<int32_t> ids;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, ',')) {
    size_t a = cur.find_first_not_of(" \t"), b = cur.find_last_not_of(" \t");
    if (a == std::string::npos) continue;
    cur = cur.substr(a, b - a + 1);
    char* end = nullptr;
    const long v = std::strtol(cur.c_str(), &end, 10);
    if (*end || v < 0 || v >= n_vocab)
      return invalid_argument("bad token id '" + cur + "' (vocabulary has " +
                              std::to_string(n_vocab) + " tokens)");
    ids.push_back(int32_t(v));
  }
  return ids;
}

}  // namespace

void add_text_commands(CLI::App& app) {
  struct TokOpts {
    std::string model, text, texts_file, file;
    bool no_special = false, no_bos = false, stats = false;
    int reps = 3;
  };
  auto to = std::make_shared<TokOpts>();
  auto* tc = app.add_subcommand("tokenize", "text -> token ids (JSON)");
  tc->add_option("-m,--model", to->model, "GGUF model (or vocab-only) file")->required();
  tc->add_option("--text", to->text, "text to tokenize");
  tc->add_option("--texts-file", to->texts_file, "JSON array of strings: tokenize them all");
  tc->add_flag("--no-special", to->no_special, "tokenize special-token text as plain text");
  tc->add_flag("--no-bos", to->no_bos, "do not add BOS/EOS even if the model asks for them");
  tc->add_option("--file", to->file, "tokenize the contents of this file");
  tc->add_flag("--stats", to->stats,
               "print size, token count and throughput (best of --reps) instead of the ids");
  tc->add_option("--reps", to->reps, "timed repetitions for --stats (default 3)");
  tc->callback([to]() {
    auto tk = load_tokenizer(to->model);
    if (!tk) std::exit(fail(tk.status().message()));
    const auto& t = **tk;
    const bool add = !to->no_bos, special = !to->no_special;
    const bool bos_added = add && t.add_bos() && t.special().bos >= 0;
    if (!to->texts_file.empty()) {
      std::ifstream in(to->texts_file);
      if (!in) std::exit(fail("cannot read " + to->texts_file));
      json texts = json::parse(in, nullptr, false);
      if (!texts.is_array()) std::exit(fail(to->texts_file + " is not a JSON array of strings"));
      json results = json::array();
      for (const auto& s : texts) {
        if (!s.is_string()) std::exit(fail(to->texts_file + " is not a JSON array of strings"));
        const std::string text = s.get<std::string>();
        results.push_back({{"text", text}, {"tokens", t.encode(text, add, special)}});
      }
      print({{"results", results}, {"bos_added", bos_added}, {"eog", t.eog_ids()}});
      std::exit(0);
    }
    std::string text = to->text;
    if (!to->file.empty()) {
      std::ifstream in(to->file, std::ios::binary);
      if (!in) std::exit(fail("cannot read " + to->file));
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    if (to->stats) {
      double best = 1e30;
      size_t n = 0;
      for (int r = 0; r < std::max(1, to->reps); ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        n = t.encode(text, add, special).size();
        best = std::min(
            best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      print({{"bytes", text.size()},
             {"tokens", n},
             {"seconds", best},
             {"mb_per_s", double(text.size()) / 1e6 / best}});
      std::exit(0);
    }
    const auto ids = t.encode(text, add, special);
    print({{"tokens", ids}, {"n", ids.size()}, {"bos_added", bos_added}});
    std::exit(0);
  });

  struct DetokOpts {
    std::string model, tokens, tokens_file;
    bool no_special = false;
  };
  auto dopt = std::make_shared<DetokOpts>();
  auto* dc = app.add_subcommand("detokenize", "token ids -> text (JSON)");
  dc->add_option("-m,--model", dopt->model, "GGUF model (or vocab-only) file")->required();
  dc->add_option("--tokens", dopt->tokens, "comma-separated token ids");
  dc->add_option("--tokens-file", dopt->tokens_file,
                 "JSON array of id arrays: detokenize them all ({results:[{text}]})");
  dc->add_flag("--no-special", dopt->no_special, "leave control tokens out of the text");
  dc->callback([dopt]() {
    auto tk = load_tokenizer(dopt->model);
    if (!tk) std::exit(fail(tk.status().message()));
    if (!dopt->tokens_file.empty()) {
      std::ifstream in(dopt->tokens_file);
      if (!in) std::exit(fail("cannot read " + dopt->tokens_file));
      json lists = json::parse(in, nullptr, false);
      const std::string bad = dopt->tokens_file + " is not a JSON array of token id arrays";
      if (!lists.is_array()) std::exit(fail(bad));
      json results = json::array();
      for (const auto& l : lists) {
        if (!l.is_array()) std::exit(fail(bad));
        std::vector<int32_t> ids;
        for (const auto& v : l) {
          if (!v.is_number_integer() || v.get<int64_t>() < 0 ||
              v.get<int64_t>() >= (*tk)->n_vocab())
            std::exit(fail(bad + " in range"));
          ids.push_back(v.get<int32_t>());
        }
        results.push_back({{"text", (*tk)->decode(ids, !dopt->no_special)}});
      }
      print({{"results", results}});
      std::exit(0);
    }
    if (dopt->tokens.empty()) std::exit(fail("detokenize: --tokens or --tokens-file is required"));
    auto ids = parse_ids(dopt->tokens, (*tk)->n_vocab());
    if (!ids) std::exit(fail(ids.status().message()));
    print({{"text", (*tk)->decode(*ids, !dopt->no_special)}});
    std::exit(0);
  });

  struct ExtractOpts {
    std::string file, kind;
  };
  auto xopt = std::make_shared<ExtractOpts>();
  auto* xc = app.add_subcommand(
      "extract-text", "a document's text as the web UI indexes it (PDF, HTML, Markdown, code)");
  xc->add_option("file", xopt->file, "the document (default: stdin, with --kind)");
  xc->add_option("--kind", xopt->kind,
                 "text, markdown, html, pdf or code:<lang> (default: by name)");
  xc->callback([xopt]() {
    rag::DocKind kind = rag::DocKind::kText;
    std::string lang;
    if (!xopt->kind.empty()) {
      if (!rag::parse_kind(xopt->kind, &kind, &lang))
        std::exit(fail("unknown --kind " + xopt->kind));
    } else if (!xopt->file.empty()) {
      kind = rag::kind_of(xopt->file, "", &lang);
    }
    std::string bytes;
    if (xopt->file.empty()) {
      // Reading untrusted bytes from a parent (the server): limits first.
      rag::limit_extractor();
      bytes.assign(std::istreambuf_iterator<char>(std::cin), {});
    } else {
      std::ifstream in(xopt->file, std::ios::binary);
      if (!in) std::exit(fail("cannot read " + xopt->file));
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    if (bytes.size() > rag::kMaxDocumentBytes)
      std::exit(fail("the document is larger than " + std::to_string(rag::kMaxDocumentBytes >> 20) +
                     " MiB"));
    auto text = rag::extract_text(kind, bytes, lang);
    if (!text) std::exit(fail(text.status().message()));
    std::fwrite(text->data(), 1, text->size(), stdout);
    std::exit(std::fflush(stdout) == 0 ? 0 : 1);
  });
}

}  // namespace hearth::cli
