// The document library (rag/library.h), the ingest worker (rag/ingest.h), hybrid search
// (rag/search.h) and extraction in a child process (rag/isolate.h), with a deterministic fake
// embedding (hashed bag of words) in place of a model. Each test has its own database.
#include "rag/library.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "rag/ingest.h"
#include "rag/isolate.h"
#include "rag/search.h"

namespace hearth::rag {
namespace {

namespace fs = std::filesystem;

class Temp {
 public:
  Temp() {
    char tmpl[] = "/tmp/hearth-rag-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  ~Temp() { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

 private:
  std::string dir_;
};

// A stand-in embedding: each lower-cased word adds 1 to one of 64 buckets. Texts sharing words
// are similar, so vector ranking is meaningful and deterministic.
std::vector<float> bag(const std::string& text) {
  std::vector<float> v(64, 0.0f);
  std::string w;
  auto flush = [&] {
    if (!w.empty()) v[std::hash<std::string>{}(w) % 64] += 1.0f;
    w.clear();
  };
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      w += char(std::tolower(c));
    else
      flush();
  }
  flush();
  v[63] += 0.01f;  // never the zero vector
  return v;
}

struct FakeEmbed {
  std::atomic<int> calls{0};
  std::atomic<int> texts{0};
  Result<std::vector<std::vector<float>>> operator()(const std::string& model,
                                                     const std::vector<std::string>& t) {
    EXPECT_EQ(model, "bag");
    ++calls;
    texts += int(t.size());
    std::vector<std::vector<float>> out;
    for (const auto& s : t) out.push_back(bag(s));
    return out;
  }
};

const char* kGuide =
    "# Garden guide\n\nTomatoes need full sun and deep watering twice a week.\n\n"
    "## Pests\n\nAphids on roses are washed off with soapy water. Ladybirds eat aphids.\n\n"
    "## Soil\n\nCompost improves clay soil; add it every autumn before the frost.\n";

TEST(Library, CollectionsAreMadeOncePerChatAndNamedOnesAreUnique) {
  Temp t;
  auto lib = Library::open(t.path("d.sqlite"));
  ASSERT_TRUE(lib) << lib.status().message();
  auto a = (*lib)->chat_collection("chat-1");
  auto b = (*lib)->chat_collection("chat-1");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->id, b->id);
  EXPECT_NE((*lib)->chat_collection("chat-2")->id, a->id);
  // Looking one up never makes one.
  EXPECT_EQ(*(*lib)->find_chat_collection("chat-1"), std::optional<std::string>(a->id));
  EXPECT_FALSE((*lib)->find_chat_collection("chat-3")->has_value());
  EXPECT_FALSE((*lib)->find_chat_collection("chat-3")->has_value());
  ASSERT_TRUE((*lib)->create_collection("manuals"));
  auto dup = (*lib)->create_collection("manuals");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.status().code(), StatusCode::kInvalidArgument);
  auto named = (*lib)->named_collections();
  ASSERT_TRUE(named);
  ASSERT_EQ(named->size(), 1u);  // the chats' own are not listed
  EXPECT_EQ((*named)[0].name, "manuals");
  EXPECT_FALSE((*lib)->create_collection(""));
  struct stat st {};
  ASSERT_EQ(::stat(t.path("d.sqlite").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Ingest, MarkdownIsChunkedIndexedAndEmbeddedInBatches) {
  Temp t;
  auto lib = Library::open(t.path("d.sqlite"));
  ASSERT_TRUE(lib);
  auto c = (*lib)->chat_collection("chat");
  ASSERT_TRUE(c);
  FakeEmbed fe;
  IngestHooks h;
  h.embed = std::ref(fe);
  h.batch = 2;
  h.chunking.max_tokens = 20;  // several chunks from a small document
  h.chunking.overlap_tokens = 0;
  Ingestor ing(**lib, h);
  ASSERT_TRUE(ing.start());
  auto d = (*lib)->add_document(c->id, "guide.md", "markdown", kGuide, "bag");
  ASSERT_TRUE(d) << d.status().message();
  EXPECT_EQ(d->status, "queued");
  ing.enqueue(d->id);
  ing.wait_idle();
  auto done = (*lib)->document(d->id);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->status, "ready") << done->error;
  ASSERT_GE(done->chunks, 3);
  EXPECT_EQ(done->embedded, done->chunks);
  EXPECT_EQ(done->dim, 64);
  EXPECT_EQ(fe.texts.load(), done->chunks);
  EXPECT_EQ(fe.calls.load(), (done->chunks + 1) / 2);  // batches of two
  // Keyword search finds a stemmed word ("watered" ~ "watering") in the right chunk only.
  std::vector<std::string> ids = {d->id};
  auto kw = (*lib)->keyword("how often are tomatoes watered?", ids, 10);
  ASSERT_TRUE(kw);
  ASSERT_FALSE(kw->empty());
  auto p = (*lib)->passages(std::vector<int64_t>{(*kw)[0].id});
  ASSERT_TRUE(p);
  EXPECT_NE((*p)[0].text.find("Tomatoes need full sun"), std::string::npos);
  EXPECT_EQ((*p)[0].doc_name, "guide.md");
  // Vector search: the chunk about aphids is nearest to a query made of its words.
  auto qv = bag("aphids roses soapy water ladybirds");
  double n = 0;
  for (float x : qv) n += double(x) * x;
  for (float& x : qv) x = float(x / std::sqrt(n));
  auto sim = (*lib)->similar("bag", qv, ids, 3);
  ASSERT_TRUE(sim);
  ASSERT_FALSE(sim->empty());
  auto top = (*lib)->passages(std::vector<int64_t>{(*sim)[0].id});
  EXPECT_NE((*top)[0].text.find("Aphids"), std::string::npos);
  EXPECT_NE((*top)[0].headings.find("Pests"), std::string::npos);
  // Deleting the document removes its chunks from both indexes.
  ASSERT_TRUE((*lib)->delete_document(d->id));
  EXPECT_TRUE((*lib)->keyword("tomatoes", ids, 10)->empty());
  EXPECT_TRUE((*lib)->similar("bag", qv, ids, 3)->empty());
  EXPECT_EQ((*lib)->document(d->id).status().code(), StatusCode::kNotFound);
}

TEST(Ingest, WithoutAnEmbeddingModelTheDocumentIsKeywordOnly) {
  Temp t;
  auto lib = Library::open(t.path("d.sqlite"));
  auto c = (*lib)->create_collection("k");
  IngestHooks h;  // no embed
  Ingestor ing(**lib, h);
  ASSERT_TRUE(ing.start());
  auto d = (*lib)->add_document(c->id, "guide.md", "markdown", kGuide);
  ing.enqueue(d->id);
  ing.wait_idle();
  auto done = (*lib)->document(d->id);
  EXPECT_EQ(done->status, "ready");
  EXPECT_EQ(done->embedded, 0);
  EXPECT_EQ(done->embed_model, "");
  std::vector<std::string> ids = {d->id};
  EXPECT_FALSE((*lib)->keyword("compost", ids, 5)->empty());
}

TEST(Ingest, BadDocumentsFailWithAReasonAndKeepNoUpload) {
  Temp t;
  auto lib = Library::open(t.path("d.sqlite"));
  auto c = (*lib)->create_collection("k");
  IngestHooks h;
  Ingestor ing(**lib, h);
  ASSERT_TRUE(ing.start());
  auto pdf = (*lib)->add_document(c->id, "x.pdf", "pdf", "%PDF-1.4 this is not a pdf");
  auto empty = (*lib)->add_document(c->id, "blank.txt", "text", "   \n\n  ");
  ing.enqueue(pdf->id);
  ing.enqueue(empty->id);
  ing.wait_idle();
  auto a = (*lib)->document(pdf->id);
  EXPECT_EQ(a->status, "error");
  EXPECT_FALSE(a->error.empty());
  auto b = (*lib)->document(empty->id);
  EXPECT_EQ(b->status, "error");
  EXPECT_NE(b->error.find("no text"), std::string::npos) << b->error;
  EXPECT_EQ((*lib)->take_upload(pdf->id).status().code(), StatusCode::kNotFound);
}

TEST(Ingest, AnInterruptedIngestResumesAfterARestart) {
  Temp t;
  std::string id;
  {
    auto lib = Library::open(t.path("d.sqlite"));
    auto c = (*lib)->create_collection("k");
    auto d = (*lib)->add_document(c->id, "guide.md", "markdown", kGuide, "bag");
    id = d->id;
    auto up = (*lib)->take_upload(id);  // as if the server died while extracting
    ASSERT_TRUE(up);
    EXPECT_EQ((*lib)->document(id)->status, "extracting");
  }
  // The upload was taken but not yet replaced by chunks: it must still be there.
  auto lib = Library::open(t.path("d.sqlite"));
  ASSERT_TRUE(lib);
  auto un = (*lib)->unfinished();
  ASSERT_TRUE(un);
  ASSERT_EQ(un->size(), 1u);
  FakeEmbed fe;
  IngestHooks h;
  h.embed = std::ref(fe);
  h.chunking.max_tokens = 20;
  Ingestor ing(**lib, h);
  ASSERT_TRUE(ing.start());  // picks it up without an enqueue
  ing.wait_idle();
  auto d = (*lib)->document(id);
  EXPECT_EQ(d->status, "ready") << d->error;
  EXPECT_EQ(d->embedded, d->chunks);
}

TEST(Ingest, EmbeddingResumesFromTheFirstChunkWithoutAVector) {
  Temp t;
  auto lib = Library::open(t.path("d.sqlite"));
  auto c = (*lib)->create_collection("k");
  auto d = (*lib)->add_document(c->id, "guide.md", "markdown", kGuide, "bag");
  ChunkOptions co;
  co.max_tokens = 20;
  co.overlap_tokens = 0;
  ASSERT_TRUE((*lib)->take_upload(d->id));
  const auto chunks = chunk_document(kGuide, co);
  ASSERT_GE(chunks.size(), 3u);
  ASSERT_TRUE((*lib)->set_chunks(d->id, chunks, "bag"));
  // One chunk embedded before the "crash".
  auto first = (*lib)->unembedded(d->id, 1);
  ASSERT_TRUE(first);
  std::vector<int64_t> one = {(*first)[0].first};
  ASSERT_TRUE((*lib)->set_vectors(d->id, one, {bag((*first)[0].second)}));
  EXPECT_EQ((*lib)->document(d->id)->embedded, 1);
  FakeEmbed fe;
  IngestHooks h;
  h.embed = std::ref(fe);
  Ingestor ing(**lib, h);
  ASSERT_TRUE(ing.start());
  ing.wait_idle();
  auto done = (*lib)->document(d->id);
  EXPECT_EQ(done->status, "ready");
  EXPECT_EQ(done->embedded, int(chunks.size()));
  EXPECT_EQ(fe.texts.load(), int(chunks.size()) - 1);  // the embedded one was not redone
}

TEST(Search, HybridFusesBothRankingsAndFitsTheBudget) {
  Temp t;
  auto lib = Library::open(t.path("d.sqlite"));
  auto c = (*lib)->create_collection("k");
  FakeEmbed fe;
  IngestHooks h;
  h.embed = std::ref(fe);
  h.chunking.max_tokens = 20;
  h.chunking.overlap_tokens = 0;
  Ingestor ing(**lib, h);
  ASSERT_TRUE(ing.start());
  auto d = (*lib)->add_document(c->id, "guide.md", "markdown", kGuide, "bag");
  auto pending = (*lib)->add_document(c->id, "later.md", "markdown", "# Later\n\nText.", "bag");
  ing.enqueue(d->id);
  ing.wait_idle();  // `pending` was never enqueued: it stays queued
  SearchHooks sh;
  sh.embed = [&](const std::string& m, const std::vector<std::string>& x) {
    auto r = fe(m, x);
    for (auto& v : *r) {
      double n = 0;
      for (float f : v) n += double(f) * f;
      for (float& f : v) f = float(f / std::sqrt(n));
    }
    return r;
  };
  SearchOptions o;
  o.k = 2;
  const std::vector<std::string> ids = {d->id, pending->id};
  auto r = search(**lib, "aphids on roses", ids, o, sh);
  ASSERT_TRUE(r) << r.status().message();
  EXPECT_EQ(r->mode, "hybrid");
  ASSERT_EQ(r->pending, std::vector<std::string>{pending->id});
  ASSERT_FALSE(r->passages.empty());
  EXPECT_LE(r->passages.size(), 2u);
  EXPECT_NE(r->passages[0].text.find("Aphids"), std::string::npos);
  for (size_t i = 1; i < r->passages.size(); ++i)
    EXPECT_GE(r->passages[i - 1].score, r->passages[i].score);
  // A budget smaller than any passage leaves nothing; one that fits the best passage keeps it.
  o.budget_tokens = 1;
  EXPECT_TRUE(search(**lib, "aphids on roses", ids, o, sh)->passages.empty());
  o.budget_tokens = size_t(r->passages[0].tokens);
  o.k = 5;
  auto b = search(**lib, "aphids on roses", ids, o, sh);
  size_t sum = 0;
  for (const auto& p : b->passages) sum += size_t(p.tokens);
  EXPECT_LE(sum, o.budget_tokens);
  ASSERT_FALSE(b->passages.empty());
  // Keyword-only and vector-only modes run one side.
  o.budget_tokens = 0;
  o.mode = "keyword";
  EXPECT_EQ(search(**lib, "compost", ids, o, sh)->mode, "keyword");
  o.mode = "vector";
  EXPECT_EQ(search(**lib, "compost", ids, o, sh)->mode, "vector");
  o.mode = "both";
  EXPECT_FALSE(search(**lib, "compost", ids, o, sh));
  // A reranker's scores decide the final order.
  o.mode = "hybrid";
  sh.rerank = [](const std::string&, const std::vector<std::string>& texts) {
    std::vector<double> s;
    for (const auto& x : texts) s.push_back(x.find("Compost") != std::string::npos ? 10.0 : 0.0);
    return Result<std::vector<double>>(s);
  };
  auto rr = search(**lib, "aphids on roses", ids, o, sh);
  ASSERT_TRUE(rr);
  EXPECT_EQ(rr->mode, "hybrid+rerank");
  ASSERT_FALSE(rr->passages.empty());
  EXPECT_NE(rr->passages[0].text.find("Compost"), std::string::npos);
}

TEST(Search, FtsQueriesFromHostileTextAreQuotedWords) {
  EXPECT_EQ(fts_any("what's NEAR(a b)* \"x\" OR -y"),
            "\"s\" OR \"NEAR\" OR \"b\" OR \"x\" OR \"y\"");
  // Function words are dropped, unless they are all there is.
  EXPECT_EQ(fts_any("Where does THE keeper keep it?"), "\"keeper\" OR \"keep\"");
  EXPECT_EQ(fts_any("who is it"), "\"who\" OR \"is\" OR \"it\"");
  EXPECT_EQ(fts_any("  ?!  "), "");
  std::string many;
  for (int i = 0; i < 100; ++i) many += "w" + std::to_string(i) + " ";
  const std::string q = fts_any(many);
  EXPECT_EQ(std::count(q.begin(), q.end(), '"'), 128);  // 64 words
}

// ---- Extraction in a child process, with scripts standing in for `hearth extract-text`.

std::string script(const Temp& t, const std::string& name, const std::string& body) {
  const std::string p = t.path(name);
  std::ofstream(p) << "#!/bin/sh\n" << body << "\n";
  ::chmod(p.c_str(), 0755);
  return p;
}

TEST(Isolate, TheChildsOutputIsTheTextAndItsFailuresAreErrors) {
  Temp t;
  // Echoes its input (big enough to need several pipe round trips both ways).
  std::string big(3 << 20, 'x');
  auto echo = extract_in_child(
      script(t, "echo", "[ \"$1 $2 $3\" = \"extract-text --kind pdf\" ] && exec cat"),
      DocKind::kPdf, big, "");
  ASSERT_TRUE(echo) << echo.status().message();
  EXPECT_EQ(echo->size(), big.size());
  auto refused =
      extract_in_child(script(t, "no", "cat >/dev/null; echo 'hearth: not a PDF' >&2; exit 1"),
                       DocKind::kPdf, "abc", "");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), "not a PDF");
  auto crash = extract_in_child(script(t, "crash", "kill -SEGV $$"), DocKind::kPdf, "abc", "");
  ASSERT_FALSE(crash);
  EXPECT_EQ(crash.status().code(), StatusCode::kInternal);
  EXPECT_NE(crash.status().message().find("signal 11"), std::string::npos)
      << crash.status().message();
  IsolateLimits quick;
  quick.timeout_seconds = 1;
  auto slow =
      extract_in_child(script(t, "slow", "exec sleep 30"), DocKind::kText, "abc", "", quick);
  ASSERT_FALSE(slow);
  EXPECT_NE(slow.status().message().find("longer than 1 s"), std::string::npos);
  IsolateLimits small;
  small.max_output = 1000;
  auto flood = extract_in_child(script(t, "flood", "head -c 100000 /dev/zero"), DocKind::kText,
                                "abc", "", small);
  ASSERT_FALSE(flood);
  EXPECT_NE(flood.status().message().find("larger than"), std::string::npos);
  // A child that stops reading at once: the writes get EPIPE, never a SIGPIPE ending this process.
  auto closed = extract_in_child(script(t, "closed", "exec 0<&-; sleep 0.2; exit 3"),
                                 DocKind::kText, big, "");
  ASSERT_FALSE(closed);
  EXPECT_EQ(closed.status().code(), StatusCode::kInvalidArgument);
  auto missing = extract_in_child(t.path("nope"), DocKind::kText, "abc", "");
  EXPECT_FALSE(missing);
}

TEST(Isolate, KindNamesRoundTrip) {
  for (auto [k, lang] : std::vector<std::pair<DocKind, std::string>>{{DocKind::kText, ""},
                                                                     {DocKind::kMarkdown, ""},
                                                                     {DocKind::kHtml, ""},
                                                                     {DocKind::kPdf, ""},
                                                                     {DocKind::kCode, "cpp"}}) {
    DocKind back;
    std::string l;
    ASSERT_TRUE(parse_kind(kind_name(k, lang), &back, &l));
    EXPECT_EQ(back, k);
    EXPECT_EQ(l, lang);
  }
  DocKind k;
  std::string l;
  EXPECT_FALSE(parse_kind("exe", &k, &l));
}

}  // namespace
}  // namespace hearth::rag
