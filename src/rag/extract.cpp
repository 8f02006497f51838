#include "rag/extract.h"

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <poppler-document.h>
#include <poppler-global.h>
#include <poppler-page.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <memory>

#include "base/utf8.h"

namespace hearth::rag {
namespace {

std::string lower(std::string_view s) {
  std::string r(s);
  for (auto& c : r) c = char(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// Extension -> code language, for fenced blocks.
constexpr std::array<std::pair<std::string_view, std::string_view>, 44> kCode = {{
    {"c", "c"},
    {"h", "c"},
    {"cc", "cpp"},
    {"cpp", "cpp"},
    {"cxx", "cpp"},
    {"hpp", "cpp"},
    {"hh", "cpp"},
    {"py", "python"},
    {"js", "javascript"},
    {"mjs", "javascript"},
    {"cjs", "javascript"},
    {"jsx", "jsx"},
    {"ts", "typescript"},
    {"tsx", "tsx"},
    {"go", "go"},
    {"rs", "rust"},
    {"java", "java"},
    {"kt", "kotlin"},
    {"rb", "ruby"},
    {"php", "php"},
    {"sh", "bash"},
    {"bash", "bash"},
    {"zsh", "bash"},
    {"sql", "sql"},
    {"json", "json"},
    {"yaml", "yaml"},
    {"yml", "yaml"},
    {"toml", "toml"},
    {"css", "css"},
    {"scss", "scss"},
    {"swift", "swift"},
    {"cs", "csharp"},
    {"lua", "lua"},
    {"r", "r"},
    {"scala", "scala"},
    {"zig", "zig"},
    {"hs", "haskell"},
    {"ml", "ocaml"},
    {"ex", "elixir"},
    {"pl", "perl"},
    {"dart", "dart"},
    {"vue", "vue"},
    {"cmake", "cmake"},
    {"xml", "xml"},
}};

// Text files: UTF-8 (a BOM dropped), NUL bytes refused, CRLF made LF.
Result<std::string> plain_text(std::string_view b) {
  if (b.size() >= 3 && b.substr(0, 3) == "\xEF\xBB\xBF") b.remove_prefix(3);
  size_t bad = 0;
  if (!utf8_well_formed(b, &bad))
    return invalid_argument("the document is not UTF-8 text (bad byte at offset " +
                            std::to_string(bad) + ")");
  if (b.find('\0') != std::string_view::npos)
    return invalid_argument("the document holds NUL bytes: not a text file");
  std::string out;
  out.reserve(b.size());
  for (size_t i = 0; i < b.size(); ++i)
    if (!(b[i] == '\r' && i + 1 < b.size() && b[i + 1] == '\n')) out += b[i];
  return out;
}

// HTML: the DOM's visible text with its structure. Block elements end a paragraph, headings
// become `#` lines, <pre> a fence, list items `- ` lines; script, style and other invisible
// elements are skipped. Depth is bounded (the parser's own limit, and ours for the walk).
class HtmlText {
 public:
  std::string run(xmlNode* root) {
    walk(root, 0);
    flush_line();
    // Collapse runs of blank lines.
    std::string out;
    int newlines = 0;
    for (char c : out_) {
      if (c == '\n') {
        if (++newlines > 2) continue;
      } else {
        newlines = 0;
      }
      out += c;
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    while (!out.empty() && out.front() == '\n') out.erase(out.begin());
    return out;
  }

 private:
  static bool is(const xmlNode* n, const char* name) {
    return n->name && xmlStrcasecmp(n->name, reinterpret_cast<const xmlChar*>(name)) == 0;
  }
  static bool skipped(const xmlNode* n) {
    for (const char* s : {"script", "style", "noscript", "template", "head", "svg", "math",
                          "iframe", "object", "canvas", "button", "select", "nav"})
      if (is(n, s)) return true;
    return false;
  }
  static bool block(const xmlNode* n) {
    for (const char* s :
         {"p",          "div",   "section", "article", "header",  "footer",  "main",   "aside",
          "blockquote", "table", "ul",      "ol",      "dl",      "dt",      "dd",     "figure",
          "figcaption", "form",  "hr",      "body",    "address", "details", "summary"})
      if (is(n, s)) return true;
    return false;
  }
  int heading_level(const xmlNode* n) const {
    if (!n->name || std::tolower(n->name[0]) != 'h' || !n->name[1] || n->name[2]) return 0;
    const int l = n->name[1] - '0';
    return l >= 1 && l <= 6 ? l : 0;
  }
  void paragraph_break() {
    flush_line();
    if (!out_.empty() && out_.back() != '\n') out_ += '\n';
    if (!out_.empty() && out_.size() >= 2 && out_[out_.size() - 2] != '\n') out_ += '\n';
  }
  void flush_line() {
    while (!line_.empty() && line_.back() == ' ') line_.pop_back();
    if (!line_.empty()) {
      out_ += line_;
      out_ += '\n';
    }
    line_.clear();
  }
  void text(const char* s) {
    for (const char* p = s; *p; ++p) {
      const char c = *p;
      if (c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f') {
        if (!line_.empty() && line_.back() != ' ') line_ += ' ';
      } else {
        line_ += c;
      }
    }
  }
  void raw_text(const xmlNode* n, std::string& into, int depth) {
    for (const xmlNode* c = n; c && depth < 256; c = c->next) {
      if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
        if (c->content) into += reinterpret_cast<const char*>(c->content);
      } else if (c->type == XML_ELEMENT_NODE) {
        if (is(c, "br")) into += '\n';
        raw_text(c->children, into, depth + 1);
      }
    }
  }
  void walk(xmlNode* n, int depth) {
    for (xmlNode* c = n; c; c = c->next) {
      if (depth > 200) return;  // absurd nesting: the text so far is kept
      if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
        if (c->content) text(reinterpret_cast<const char*>(c->content));
        continue;
      }
      if (c->type != XML_ELEMENT_NODE) continue;
      if (skipped(c)) continue;
      if (is(c, "br")) {
        flush_line();
        continue;
      }
      if (is(c, "pre")) {
        paragraph_break();
        std::string code;
        raw_text(c->children, code, 0);
        while (!code.empty() && code.back() == '\n') code.pop_back();
        out_ += "```\n" + code + "\n```\n\n";
        continue;
      }
      if (const int l = heading_level(c)) {
        paragraph_break();
        line_ = std::string(size_t(l), '#') + " ";
        walk(c->children, depth + 1);
        flush_line();
        out_ += '\n';
        continue;
      }
      if (is(c, "li")) {
        flush_line();
        line_ = "- ";
        walk(c->children, depth + 1);
        flush_line();
        continue;
      }
      if (is(c, "tr")) {  // a table row: one line, its cells separated by bars
        flush_line();
        walk(c->children, depth + 1);
        flush_line();
        continue;
      }
      if (is(c, "td") || is(c, "th")) {
        if (!line_.empty()) line_ += " | ";
        walk(c->children, depth + 1);
        continue;
      }
      const bool b = block(c);
      if (b) paragraph_break();
      walk(c->children, depth + 1);
      if (b) paragraph_break();
    }
  }
  std::string out_, line_;
};

Result<std::string> html_text(std::string_view b) {
  if (b.size() > size_t(INT32_MAX)) return invalid_argument("the HTML document is too large");
  // RECOVER: real-world markup is malformed; NONET: no fetching of anything it names.
  const int opts = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                   HTML_PARSE_NONET | HTML_PARSE_NOBLANKS | HTML_PARSE_COMPACT;
  std::unique_ptr<xmlDoc, void (*)(xmlDocPtr)> doc(
      htmlReadMemory(b.data(), int(b.size()), nullptr, "UTF-8", opts), xmlFreeDoc);
  if (!doc) return invalid_argument("the HTML document could not be parsed");
  xmlNode* root = xmlDocGetRootElement(doc.get());
  if (!root) return std::string();
  std::string title;
  // The <title>, as the document's top heading when the body has none.
  for (xmlNode* c = root->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && xmlStrcasecmp(c->name, BAD_CAST "head") == 0)
      for (xmlNode* h = c->children; h; h = h->next)
        if (h->type == XML_ELEMENT_NODE && xmlStrcasecmp(h->name, BAD_CAST "title") == 0 &&
            h->children && h->children->content)
          title = reinterpret_cast<const char*>(h->children->content);
  std::string body = HtmlText().run(root);
  size_t bad = 0;
  if (!utf8_well_formed(body, &bad))
    body.resize(bad);  // the parser's output is UTF-8; belt and braces
  if (!title.empty() && body.rfind("# ", 0) != 0) {
    std::string t;
    for (char c : title) t += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
    body = "# " + t + "\n\n" + body;
  }
  return body;
}

// PDF: each page's text in reading order (poppler's layout analysis), pages as paragraphs.
Result<std::string> pdf_text(std::string_view b) {
  if (b.size() < 5 || b.substr(0, 5) != "%PDF-")
    return invalid_argument("not a PDF file (no %PDF- header)");
  // poppler keeps a pointer to the bytes: they must outlive the document (they do: `b`).
  std::unique_ptr<poppler::document> doc(poppler::document::load_from_raw_data(
      b.data(), int(std::min<size_t>(b.size(), size_t(INT32_MAX)))));
  if (!doc) return invalid_argument("the PDF file could not be parsed");
  if (doc->is_locked()) return invalid_argument("the PDF file is encrypted");
  const int pages = doc->pages();
  if (pages > 20000) return invalid_argument("the PDF file has too many pages");
  std::string out;
  for (int i = 0; i < pages; ++i) {
    std::unique_ptr<poppler::page> p(doc->create_page(i));
    if (!p) continue;
    const poppler::byte_array u8 = p->text().to_utf8();
    std::string t(u8.begin(), u8.end());
    // Form feeds and CRs from the layout: lines and paragraphs only.
    std::string clean;
    clean.reserve(t.size());
    for (size_t k = 0; k < t.size(); ++k) {
      const char c = t[k];
      if (c == '\r') continue;
      clean += c == '\f' ? '\n' : c;
    }
    size_t bad = 0;
    if (!utf8_well_formed(clean, &bad)) clean.resize(bad);
    while (!clean.empty() && (clean.back() == '\n' || clean.back() == ' ')) clean.pop_back();
    if (clean.empty()) continue;
    if (!out.empty()) out += "\n\n";
    out += clean;
  }
  return out;
}

// poppler prints its parse errors on stderr by default: into the log as one line each instead.
void quiet_poppler() {
  static const bool once = [] {
    poppler::set_debug_error_function([](const std::string&, void*) {}, nullptr);
    return true;
  }();
  (void)once;
}

}  // namespace

DocKind kind_of(std::string_view filename, std::string_view content_type, std::string* lang) {
  const std::string ct = lower(content_type.substr(0, content_type.find(';')));
  const size_t dot = filename.rfind('.');
  const std::string ext = dot == std::string_view::npos ? "" : lower(filename.substr(dot + 1));
  if (ext == "pdf" || ct == "application/pdf") return DocKind::kPdf;
  if (ext == "html" || ext == "htm" || ext == "xhtml" || ct == "text/html" ||
      ct == "application/xhtml+xml")
    return DocKind::kHtml;
  if (ext == "md" || ext == "markdown" || ext == "mdx" || ct == "text/markdown")
    return DocKind::kMarkdown;
  for (const auto& [e, l] : kCode)
    if (ext == e) {
      if (lang) *lang = std::string(l);
      return DocKind::kCode;
    }
  return DocKind::kText;
}

Result<std::string> extract_text(DocKind kind, std::string_view bytes, std::string_view lang) {
  if (bytes.size() > kMaxDocumentBytes)
    return invalid_argument("the document is larger than " +
                            std::to_string(kMaxDocumentBytes >> 20) + " MiB");
  switch (kind) {
    case DocKind::kPdf:
      quiet_poppler();
      return pdf_text(bytes);
    case DocKind::kHtml:
      return html_text(bytes);
    case DocKind::kCode: {
      HEARTH_ASSIGN_OR_RETURN(std::string t, plain_text(bytes));
      // One fence around the file (longer than any backtick run inside it, so nothing in the
      // file can close it): the chunker then splits it on lines, never mid-line.
      size_t run = 0, longest = 0;
      for (char c : t) longest = std::max(longest, run = c == '`' ? run + 1 : 0);
      const std::string f(std::max<size_t>(3, longest + 1), '`');
      return f + std::string(lang) + "\n" + t + (t.empty() || t.back() == '\n' ? "" : "\n") + f +
             "\n";
    }
    case DocKind::kMarkdown:
    case DocKind::kText:
      return plain_text(bytes);
  }
  return plain_text(bytes);
}

}  // namespace hearth::rag
