#include "rag/ingest.h"

#include <cstdio>

#include "rag/chunker.h"

namespace hearth::rag {

std::string kind_name(DocKind k, std::string_view lang) {
  switch (k) {
    case DocKind::kMarkdown:
      return "markdown";
    case DocKind::kHtml:
      return "html";
    case DocKind::kPdf:
      return "pdf";
    case DocKind::kCode:
      return "code:" + std::string(lang);
    case DocKind::kText:
      break;
  }
  return "text";
}

bool parse_kind(std::string_view name, DocKind* k, std::string* lang) {
  lang->clear();
  if (name == "text")
    *k = DocKind::kText;
  else if (name == "markdown")
    *k = DocKind::kMarkdown;
  else if (name == "html")
    *k = DocKind::kHtml;
  else if (name == "pdf")
    *k = DocKind::kPdf;
  else if (name.rfind("code:", 0) == 0) {
    *k = DocKind::kCode;
    *lang = std::string(name.substr(5));
  } else {
    return false;
  }
  return true;
}

Ingestor::Ingestor(Library& lib, IngestHooks hooks) : lib_(lib), hooks_(std::move(hooks)) {
  if (hooks_.batch == 0) hooks_.batch = 32;
}

Ingestor::~Ingestor() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

Status Ingestor::start() {
  HEARTH_ASSIGN_OR_RETURN(auto ids, lib_.unfinished());
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& id : ids) queue_.push_back(std::move(id));
  }
  worker_ = std::thread([this] { run(); });
  return Status::ok();
}

void Ingestor::enqueue(const std::string& doc_id) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    queue_.push_back(doc_id);
  }
  cv_.notify_one();
}

void Ingestor::wait_idle() {
  std::unique_lock<std::mutex> lk(mu_);
  idle_cv_.wait(lk, [&] { return (queue_.empty() && !busy_) || stop_; });
}

void Ingestor::run() {
  std::unique_lock<std::mutex> lk(mu_);
  while (true) {
    cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
    if (stop_) break;
    const std::string id = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lk.unlock();
    process(id);
    lk.lock();
    busy_ = false;
    if (queue_.empty()) idle_cv_.notify_all();
  }
  idle_cv_.notify_all();
}

void Ingestor::process(const std::string& doc_id) {
  auto doc = lib_.document(doc_id);
  if (!doc) return;  // deleted meanwhile
  auto failed = [&](const Status& s) {
    if (s.code() == StatusCode::kNotFound) return;  // deleted while in work
    if (Status f = lib_.fail(doc_id, s.message()); !f)
      std::fprintf(stderr, "hearth: documents: %s\n", f.message().c_str());
  };
  if (doc->status == "queued" || doc->status == "extracting") {
    DocKind kind;
    std::string lang;
    if (!parse_kind(doc->kind, &kind, &lang))
      return failed(invalid_argument("unknown document kind '" + doc->kind + "'"));
    auto bytes = lib_.take_upload(doc_id);
    if (!bytes) return failed(bytes.status());
    auto text =
        hooks_.extract ? hooks_.extract(kind, *bytes, lang) : extract_text(kind, *bytes, lang);
    bytes->clear();
    bytes->shrink_to_fit();
    if (!text) return failed(text.status());
    std::string model = doc->embed_model;
    if (model.empty() && hooks_.embed_model) model = hooks_.embed_model();
    if (!hooks_.embed) model.clear();
    ChunkOptions co = hooks_.chunking;
    if (hooks_.counter && !model.empty())
      if (auto c = hooks_.counter(model)) co.count = std::move(c);
    const auto chunks = chunk_document(*text, co);
    if (chunks.empty() && text->find_first_not_of(" \t\r\n") == std::string::npos)
      return failed(invalid_argument("the document has no text" +
                                     std::string(kind == DocKind::kPdf
                                                     ? " (a scanned PDF needs OCR, which hearth "
                                                       "does not do)"
                                                     : "")));
    if (Status s = lib_.set_chunks(doc_id, chunks, model); !s) return failed(s);
    doc = lib_.document(doc_id);
    if (!doc) return;
  }
  if (doc->status != "embedding") return;
  if (!hooks_.embed) return failed(Status(StatusCode::kUnavailable, "no embedding path"));
  while (true) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_) return;  // resumed at the next start
    }
    auto todo = lib_.unembedded(doc_id, int(hooks_.batch));
    if (!todo) return failed(todo.status());
    if (todo->empty()) return;
    std::vector<int64_t> ids;
    std::vector<std::string> texts;
    for (auto& [id, t] : *todo) {
      ids.push_back(id);
      texts.push_back(std::move(t));
    }
    auto vecs = hooks_.embed(doc->embed_model, texts);
    if (!vecs) return failed(vecs.status());
    if (Status s = lib_.set_vectors(doc_id, ids, *vecs); !s) return failed(s);
  }
}

}  // namespace hearth::rag
