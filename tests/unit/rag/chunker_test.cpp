// Structure-aware chunking: budgets, heading paths, overlap, code kept whole per line, coverage.
#include "rag/chunker.h"

#include <gtest/gtest.h>

#include <random>
#include <sstream>

using namespace hearth::rag;

namespace {

size_t words(std::string_view s) {
  size_t n = 0;
  bool in = false;
  for (char c : s) {
    const bool sp = c == ' ' || c == '\n' || c == '\t';
    if (!sp && !in) ++n;
    in = !sp;
  }
  return n;
}

ChunkOptions by_words(size_t max, size_t overlap) {
  ChunkOptions o;
  o.max_tokens = max;
  o.overlap_tokens = overlap;
  o.count = words;
  return o;
}

std::string sentences(int n, const char* stem) {
  std::string s;
  for (int i = 0; i < n; ++i)
    s += std::string(stem) + " number " + std::to_string(i) + " ends here. ";
  s.pop_back();
  return s;
}

}  // namespace

TEST(Chunker, SectionsCarryTheirHeadingPath) {
  const std::string doc = "# Guide\n\nIntro paragraph.\n\n## Install\n\n" + sentences(30, "Step") +
                          "\n\n## Use\n\nRun it.\n";
  const auto chunks = chunk_document(doc, by_words(60, 10));
  ASSERT_GE(chunks.size(), 3u);
  for (const auto& c : chunks) {
    EXPECT_LE(c.tokens, 60u) << c.text;
    EXPECT_LE(c.begin, c.end);
  }
  bool install = false, use = false;
  for (const auto& c : chunks) {
    if (c.text.find("Step number 20") != std::string::npos) {
      install = true;
      EXPECT_EQ(c.headings, "# Guide > ## Install");
      EXPECT_EQ(c.text.rfind("# Guide > ## Install", 0), 0u) << c.text;
    }
    if (c.text.find("Run it.") != std::string::npos) use = c.headings == "# Guide > ## Use";
  }
  EXPECT_TRUE(install);
  EXPECT_TRUE(use);
}

TEST(Chunker, OverlapRepeatsTheTailAndEveryByteIsCovered) {
  std::string doc;
  for (int p = 0; p < 20; ++p) doc += sentences(3, ("Para " + std::to_string(p)).c_str()) + "\n\n";
  const auto chunks = chunk_document(doc, by_words(50, 12));
  ASSERT_GE(chunks.size(), 4u);
  // Consecutive chunks share text (the overlap), and passages tile the document in order.
  for (size_t i = 1; i < chunks.size(); ++i) {
    EXPECT_GE(chunks[i].begin, chunks[i - 1].end);
    const std::string prev_tail = chunks[i - 1].text.substr(chunks[i - 1].text.size() - 20);
    EXPECT_NE(chunks[i].text.find(prev_tail), std::string::npos)
        << "chunk " << i << " does not repeat the end of the previous one";
  }
  std::vector<char> covered(doc.size(), 0);
  for (const auto& c : chunks)
    for (size_t k = c.begin; k < c.end; ++k) covered[k] = 1;
  for (size_t k = 0; k < doc.size(); ++k)
    if (doc[k] != ' ' && doc[k] != '\n') ASSERT_TRUE(covered[k]) << "byte " << k << " lost";
}

TEST(Chunker, LongCodeIsSplitOnLinesAndKeepsItsFences) {
  std::string code = "```python\n";
  for (int i = 0; i < 120; ++i)
    code += "value_" + std::to_string(i) + " = compute(" + std::to_string(i) + ")\n";
  code += "```\n";
  const std::string doc = "# Code\n\nBefore.\n\n" + code + "\nAfter.\n";
  const auto chunks = chunk_document(doc, by_words(80, 0));
  int code_chunks = 0;
  for (const auto& c : chunks) {
    EXPECT_LE(c.tokens, 80u) << c.text;
    if (c.text.find("value_") == std::string::npos) continue;
    ++code_chunks;
    EXPECT_NE(c.text.find("```python\n"), std::string::npos) << c.text;
    EXPECT_GE(c.text.find("```", c.text.find("value_")), c.text.find("value_")) << c.text;
    // Whole lines only: every "value_N = compute(N)" present in full.
    std::istringstream in(c.text);
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("value_", 0) == 0) EXPECT_EQ(line.back(), ')') << line;
  }
  EXPECT_GE(code_chunks, 2);
}

TEST(Chunker, OversizeParagraphsAndWordsStillFit) {
  std::string doc = sentences(200, "A very long paragraph without breaks") + "\n\n" +
                    std::string(5000, 'x') + "\n";
  ChunkOptions o;  // the default estimate: 4 bytes per token
  o.max_tokens = 100;
  o.overlap_tokens = 20;
  const auto chunks = chunk_document(doc, o);
  ASSERT_GT(chunks.size(), 20u);
  for (const auto& c : chunks) EXPECT_LE(c.tokens, 100u);
  // Sentence boundaries are preferred: most chunks of the paragraph end with a full stop.
  int ends = 0, para = 0;
  for (const auto& c : chunks)
    if (c.text.find("paragraph") != std::string::npos) {
      ++para;
      ends += c.text.back() == '.';
    }
  EXPECT_GT(ends * 10, para * 8);
}

TEST(Chunker, EmptyAndDegenerateInput) {
  EXPECT_TRUE(chunk_document("", by_words(50, 5)).empty());
  EXPECT_TRUE(chunk_document("\n\n   \n", by_words(50, 5)).empty());
  const auto one = chunk_document("#\n##\n```\nunclosed fence", by_words(50, 5));
  for (const auto& c : one) EXPECT_LE(c.end, std::string("#\n##\n```\nunclosed fence").size());
  std::mt19937 rng(3);
  for (int k = 0; k < 200; ++k) {  // random markdown-ish bytes: ranges valid, budgets kept
    std::string s;
    const char* parts[] = {"# h\n", "text ", "\n\n", "```\n", "~~~~\n", "- li\n", "word. ", "\n"};
    for (int i = 0; i < 60; ++i) s += parts[rng() % 8];
    for (const auto& c : chunk_document(s, by_words(20, 4))) {
      ASSERT_LE(c.begin, c.end);
      ASSERT_LE(c.end, s.size());
      EXPECT_LE(c.tokens, 20u) << c.text;
    }
  }
}
