// Text extraction for retrieval: HTML structure, PDF pages, code fences, bad input as errors.
#include "rag/extract.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace hearth::rag;

namespace {

// A minimal PDF with one page per entry, each line drawn in Helvetica; xref offsets exact.
std::string make_pdf(const std::vector<std::vector<std::string>>& pages) {
  std::vector<std::string> objs;
  const size_t n = pages.size();
  objs.push_back("<< /Type /Catalog /Pages 2 0 R >>");
  std::string kids;
  for (size_t i = 0; i < n; ++i) kids += std::to_string(4 + 2 * i) + " 0 R ";
  objs.push_back("<< /Type /Pages /Kids [" + kids + "] /Count " + std::to_string(n) + " >>");
  objs.push_back("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
  for (size_t i = 0; i < n; ++i) {
    objs.push_back("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents " +
                   std::to_string(5 + 2 * i) + " 0 R /Resources << /Font << /F1 3 0 R >> >> >>");
    std::string s = "BT /F1 12 Tf 72 720 Td 16 TL\n";
    for (const auto& line : pages[i]) s += "(" + line + ") Tj T*\n";
    s += "ET";
    objs.push_back("<< /Length " + std::to_string(s.size()) + " >>\nstream\n" + s + "\nendstream");
  }
  std::string pdf = "%PDF-1.4\n";
  std::vector<size_t> offs;
  for (size_t i = 0; i < objs.size(); ++i) {
    offs.push_back(pdf.size());
    pdf += std::to_string(i + 1) + " 0 obj\n" + objs[i] + "\nendobj\n";
  }
  const size_t xref = pdf.size();
  pdf += "xref\n0 " + std::to_string(objs.size() + 1) + "\n0000000000 65535 f \n";
  for (size_t o : offs) {
    char b[32];
    std::snprintf(b, sizeof b, "%010zu 00000 n \n", o);
    pdf += b;
  }
  pdf += "trailer\n<< /Size " + std::to_string(objs.size() + 1) + " /Root 1 0 R >>\nstartxref\n" +
         std::to_string(xref) + "\n%%EOF\n";
  return pdf;
}

}  // namespace

TEST(Extract, KindsFromNamesAndTypes) {
  std::string lang;
  EXPECT_EQ(kind_of("notes.MD", "", nullptr), DocKind::kMarkdown);
  EXPECT_EQ(kind_of("page.html", "", nullptr), DocKind::kHtml);
  EXPECT_EQ(kind_of("x", "text/html; charset=utf-8", nullptr), DocKind::kHtml);
  EXPECT_EQ(kind_of("paper.pdf", "", nullptr), DocKind::kPdf);
  EXPECT_EQ(kind_of("main.cpp", "", &lang), DocKind::kCode);
  EXPECT_EQ(lang, "cpp");
  EXPECT_EQ(kind_of("README", "", nullptr), DocKind::kText);
}

TEST(Extract, HtmlKeepsStructureAndDropsTheInvisible) {
  const std::string html = R"(<!doctype html><html><head><title>The Guide</title>
    <style>p{color:red}</style><script>alert("no")</script></head><body>
    <nav>menu menu</nav>
    <h1>Install</h1><p>Run   the <b>installer</b>&nbsp;now &amp; wait.</p>
    <h2>Options</h2><ul><li>fast</li><li>safe<li>small</ul>
    <pre>int main() {
  return 0;
}</pre><table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table>
    <div><p>unclosed <i>markup <p>goes on</div></body></html>)";
  auto t = extract_text(DocKind::kHtml, html);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  const std::string& s = *t;
  EXPECT_NE(s.find("# Install\n\nRun the installer\xC2\xA0now & wait."), std::string::npos) << s;
  EXPECT_NE(s.find("## Options"), std::string::npos) << s;
  EXPECT_NE(s.find("- fast\n- safe\n- small"), std::string::npos) << s;
  EXPECT_NE(s.find("```\nint main() {\n  return 0;\n}\n```"), std::string::npos) << s;
  EXPECT_NE(s.find("k | v\na | 1"), std::string::npos) << s;
  EXPECT_NE(s.find("goes on"), std::string::npos) << s;
  EXPECT_EQ(s.find("alert"), std::string::npos) << s;
  EXPECT_EQ(s.find("color"), std::string::npos) << s;
  EXPECT_EQ(s.find("menu"), std::string::npos) << s;
  // No <h1>: the title becomes the top heading.
  auto u = extract_text(DocKind::kHtml, "<title>Only Title</title><p>body text</p>");
  ASSERT_TRUE(u.is_ok());
  EXPECT_EQ(*u, "# Only Title\n\nbody text");
}

TEST(Extract, PdfPagesInOrder) {
  const std::string pdf = make_pdf({{"Hello PDF world", "Second line here"}, {"Page two text"}});
  auto t = extract_text(DocKind::kPdf, pdf);
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  const std::string& s = *t;
  const size_t a = s.find("Hello PDF world"), b = s.find("Second line here"),
               c = s.find("Page two text");
  ASSERT_NE(a, std::string::npos) << s;
  ASSERT_NE(b, std::string::npos) << s;
  ASSERT_NE(c, std::string::npos) << s;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_NE(s.find("\n\nPage two"), std::string::npos) << s;  // pages are paragraphs
}

TEST(Extract, BadInputIsAnErrorNotACrash) {
  EXPECT_FALSE(extract_text(DocKind::kPdf, "not a pdf at all").is_ok());
  std::string pdf = make_pdf({{"x"}});
  EXPECT_FALSE(extract_text(DocKind::kPdf, pdf.substr(0, 40)).is_ok() &&
               extract_text(DocKind::kPdf, pdf.substr(0, 40))->find('x') != std::string::npos);
  std::string garbage = "%PDF-1.7\n";
  for (int i = 0; i < 2000; ++i) garbage += char(i * 37 % 251);
  (void)extract_text(DocKind::kPdf, garbage);  // whatever poppler makes of it, no crash
  EXPECT_FALSE(extract_text(DocKind::kText, std::string("bad \xFF utf-8")).is_ok());
  EXPECT_FALSE(extract_text(DocKind::kText, std::string("nul\0byte", 8)).is_ok());
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "<div>";
  deep += "deep text";
  auto d = extract_text(DocKind::kHtml, deep);  // nesting beyond any sane page: no stack overflow
  EXPECT_TRUE(d.is_ok());
  EXPECT_FALSE(extract_text(DocKind::kText, std::string(kMaxDocumentBytes + 1, 'a')).is_ok());
}

TEST(Extract, CodeIsFencedAndTextNormalized) {
  auto c = extract_text(DocKind::kCode, "x = 1\ns = '```'\n", "python");
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(*c, "````python\nx = 1\ns = '```'\n````\n");  // longer than the backticks inside
  auto t = extract_text(DocKind::kText, "\xEF\xBB\xBFline one\r\nline two\r\n");
  ASSERT_TRUE(t.is_ok());
  EXPECT_EQ(*t, "line one\nline two\n");
}
