// Store layer: Ollama-style names, the Modelfile parser, and the on-disk store (atomic writes,
// digest checks, blobs shared between models removed only with the last one).
#include "store/store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "gguf/gguf.h"
#include "store/create.h"
#include "store/model.h"
#include "store/modelfile.h"
#include "store/name.h"

namespace hearth::store {
namespace {

namespace fs = std::filesystem;

TEST(ModelName, DefaultsAndDisplay) {
  auto n = ModelName::parse("llama3.2");
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(n->host, "registry.ollama.ai");
  EXPECT_EQ(n->ns, "library");
  EXPECT_EQ(n->model, "llama3.2");
  EXPECT_EQ(n->tag, "latest");
  EXPECT_EQ(n->display(), "llama3.2:latest");
  EXPECT_EQ(n->path(), "registry.ollama.ai/library/llama3.2/latest");
  EXPECT_EQ(ModelName::parse("me/m:v1")->display(), "me/m:v1");
  EXPECT_EQ(ModelName::parse("hf.co/bartowski/Foo-GGUF:Q4_K_M")->display(),
            "hf.co/bartowski/Foo-GGUF:Q4_K_M");
  auto port = ModelName::parse("localhost:5000/ns/m");  // ':' before the last '/' is a port
  ASSERT_TRUE(port.is_ok());
  EXPECT_EQ(port->host, "localhost:5000");
  EXPECT_EQ(port->tag, "latest");
  EXPECT_EQ(ModelName::parse("https://example.com/ns/m:t")->host, "example.com");
}

TEST(ModelName, InvalidNamesAreRejected) {
  for (const char* bad : {"", ":tag", "m:", "-m", "a/b/c/d", "m:ta/g", ".hidden", "m:-t",
                          "ns.dot/m", "a b", "m!", "../../etc/passwd", "m:..", "/m"}) {
    auto n = ModelName::parse(bad);
    EXPECT_FALSE(n.is_ok()) << "accepted '" << bad << "'";
    if (!n.is_ok()) {
      EXPECT_NE(n.status().message().find("invalid model name"), std::string::npos);
    }
  }
}

TEST(Modelfile, ParsesEveryInstruction) {
  const char* text = R"(# a comment
FROM ./model.gguf
PARAMETER temperature 0.6
parameter stop "<|im_end|>"
PARAMETER stop <|endoftext|>
PARAMETER num_ctx 8192
PARAMETER use_mmap false
TEMPLATE """{{ if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}{{ .Prompt }}"""
SYSTEM "You are \"helpful\"."
MESSAGE user hi
MESSAGE assistant "hello
there"
LICENSE """MIT"""
PARAMETER mirostat 1
)";
  auto mf = Modelfile::parse(text);
  ASSERT_TRUE(mf.is_ok()) << mf.status().message();
  EXPECT_EQ(mf->from, "./model.gguf");
  EXPECT_DOUBLE_EQ(mf->params["temperature"].get<double>(), 0.6);
  EXPECT_EQ(mf->params["stop"], nlohmann::ordered_json::array({"<|im_end|>", "<|endoftext|>"}));
  EXPECT_EQ(mf->params["num_ctx"].get<int>(), 8192);
  EXPECT_EQ(mf->params["use_mmap"].get<bool>(), false);
  EXPECT_FALSE(mf->params.contains("mirostat"));
  EXPECT_EQ(mf->warnings.size(), 1u);
  ASSERT_TRUE(mf->template_text.has_value());
  EXPECT_EQ(*mf->template_text,
            "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}{{ .Prompt }}");
  EXPECT_EQ(*mf->system, "You are \"helpful\".");
  ASSERT_EQ(mf->messages.size(), 2u);
  EXPECT_EQ(mf->messages[1]["content"], "hello\nthere");
  EXPECT_EQ(mf->licenses, std::vector<std::string>{"MIT"});
  // to_text() is a Modelfile that parses back to the same fields.
  auto again = Modelfile::parse(mf->to_text());
  ASSERT_TRUE(again.is_ok()) << again.status().message() << "\n" << mf->to_text();
  EXPECT_EQ(again->from, mf->from);
  EXPECT_EQ(again->params, mf->params);
  EXPECT_EQ(again->template_text, mf->template_text);
  EXPECT_EQ(again->system, mf->system);
  EXPECT_EQ(again->messages, mf->messages);
  EXPECT_EQ(again->licenses, mf->licenses);
}

TEST(Modelfile, FloatParametersPrintBackExactly) {
  // Found by fuzz_modelfile: 15 significant digits do not read back every double.
  for (const char* v :
       {"0.011111111111111111111111111115", "0.8", "0", "1e-7", "3.14159265358979"}) {
    auto a = Modelfile::parse(std::string("FROM m\nPARAMETER temperature ") + v + "\n");
    ASSERT_TRUE(a.is_ok()) << v;
    auto b = Modelfile::parse(a->to_text());
    ASSERT_TRUE(b.is_ok()) << a->to_text();
    EXPECT_EQ(a->params, b->params) << v << " -> " << a->to_text();
  }
  auto z = Modelfile::parse("FROM m\nPARAMETER temperature 0.0\n");
  EXPECT_NE(z->to_text().find("PARAMETER temperature 0\n"), std::string::npos) << z->to_text();
}

TEST(Modelfile, ParserAndRendererRoundTrip) {
  auto a = Modelfile::parse("FROM m\nRENDERER qwen3.5\nPARSER qwen3.5\n");
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  EXPECT_EQ(a->parser, "qwen3.5");
  EXPECT_EQ(a->renderer, "qwen3.5");
  auto b = Modelfile::parse(a->to_text());
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->parser, a->parser);
  EXPECT_EQ(b->renderer, a->renderer);
}

TEST(Modelfile, ErrorsNameTheLine) {
  struct Case {
    const char* text;
    const char* want;
  };
  for (const Case& c : std::vector<Case>{
           {"FROM m\nPARAMETER foo 1\n", "(line 2): unknown parameter 'foo'"},
           {"FROM m\n\nPARAMETER temperature hot\n", "(line 3): invalid float value [hot]"},
           {"FROM m\nPARAMETER num_ctx 1.5\n", "(line 2): invalid int value"},
           {"FROM m\nFROB x\n", "(line 2): command must be one of"},
           {"FROM m\nMESSAGE tool hi\n", "(line 2): message role must be one of"},
           {"FROM m\nADAPTER\n", "(line 2): ADAPTER needs a GGUF adapter file path"},
           {"FROM m\nADAPTER ./a.gguf inf\n", "(line 2): ADAPTER scale must be a finite number"},
           // found by fuzz_modelfile: a quoted path over two lines with a trailing scale
           {"FROM m\nADAPTER \"\"\"a\nb 0.5\"\"\"\n",
            "(line 2): ADAPTER path must be one line without control characters"},
           {"FROM m\nSYSTEM \"\"\"never closed\n", "(line 2): unexpected end of file"},
           {"FROM m\nSYSTEM \"open\n", "(line 2): unexpected end of file"},
           {"PARAMETER temperature 1\n", "no FROM line"},
           // Not UTF-8: refused with its line (the CLI used to abort serializing it to JSON).
           {"FROM m\nSYSTEM \"caf\xff\"\n", "(line 2): invalid UTF-8"},
           {"FROM m\n\nTEMPLATE x\xc3\n", "(line 3): invalid UTF-8"},
       }) {
    auto mf = Modelfile::parse(c.text);
    ASSERT_FALSE(mf.is_ok()) << c.text;
    EXPECT_NE(mf.status().message().find(c.want), std::string::npos)
        << "got: " << mf.status().message();
  }
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() /
             ("hearth-store-" + std::to_string(::getpid()) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }
  Manifest make(Store& s, const std::string& model_bytes, const std::string& system) {
    Manifest m;
    auto cfg = s.add_blob("{\"model_format\":\"gguf\"}");
    EXPECT_TRUE(cfg.is_ok());
    m.config = {kMediaConfig, *cfg, 22, ""};
    auto mb = s.add_blob(model_bytes);
    auto sb = s.add_blob(system);
    m.layers.push_back({kMediaModel, *mb, int64_t(model_bytes.size()), ""});
    m.layers.push_back({kMediaSystem, *sb, int64_t(system.size()), ""});
    return m;
  }
  std::string root_;
};

TEST_F(StoreTest, BlobsAreContentAddressedAndChecked) {
  Store s(root_);
  auto d = s.add_blob("hello");
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(*d, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  EXPECT_TRUE(s.has_blob(*d));
  auto bad = s.add_blob("hello!", *d);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("digest mismatch"), std::string::npos);
  // Nothing half-written is left behind: only the one good blob.
  int files = 0;
  for (auto& e : fs::directory_iterator(root_ + "/blobs")) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1);
  EXPECT_FALSE(s.add_blob("x", "sha256:XYZ").is_ok());
  // From a file, hashed while copied.
  const std::string f = root_ + "-src.bin";
  std::ofstream(f) << "hello";
  auto d2 = s.add_blob_from_file(f);
  ASSERT_TRUE(d2.is_ok());
  EXPECT_EQ(*d2, *d);
  fs::remove(f);
}

TEST_F(StoreTest, ListCopyAndRefcountedDelete) {
  Store s(root_);
  auto a = *ModelName::parse("alpha");
  auto b = *ModelName::parse("me/beta:v2");
  ASSERT_TRUE(s.write_manifest(a, make(s, "MODEL-BYTES", "sys A")).is_ok());
  ASSERT_TRUE(fs::exists(root_ + "/manifests/registry.ollama.ai/library/alpha/latest"));
  ASSERT_TRUE(s.copy(a, b).is_ok());
  auto list = s.list();
  ASSERT_TRUE(list.is_ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].digest, (*list)[1].digest);  // a copy is the same manifest bytes
  const auto model_digest = s.read_manifest(a)->find(kMediaModel)->digest;
  // Deleting one keeps the shared blobs; deleting the last removes them.
  ASSERT_TRUE(s.remove(a).is_ok());
  EXPECT_FALSE(s.exists(a));
  EXPECT_TRUE(s.has_blob(model_digest));
  ASSERT_TRUE(s.remove(b).is_ok());
  EXPECT_FALSE(s.has_blob(model_digest));
  EXPECT_FALSE(fs::exists(root_ + "/manifests/registry.ollama.ai"));  // empty dirs pruned
  auto missing = s.remove(a);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
}

TEST_F(StoreTest, ManifestNeedsItsBlobs) {
  Store s(root_);
  Manifest m = make(s, "M", "S");
  m.layers[0].digest = "sha256:" + std::string(64, 'a');
  auto st = s.write_manifest(*ModelName::parse("x"), m);
  ASSERT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("missing"), std::string::npos);
  EXPECT_FALSE(s.exists(*ModelName::parse("x")));
}

TEST(ModelName, ComparesIgnoringCase) {
  EXPECT_TRUE(ModelName::parse("Llama3")->equal_fold(*ModelName::parse("llama3:LATEST")));
  EXPECT_TRUE(ModelName::parse("HF.co/Org/Repo:Q4_K_M")
                  ->equal_fold(*ModelName::parse("hf.co/org/repo:q4_k_m")));
  EXPECT_FALSE(ModelName::parse("llama3")->equal_fold(*ModelName::parse("llama3:8b")));
  EXPECT_FALSE(ModelName::parse("me/llama3")->equal_fold(*ModelName::parse("llama3")));
  EXPECT_FALSE(equal_fold("ab", "abc"));
  EXPECT_TRUE(equal_fold("a-B_1.x", "A-b_1.X"));
}

TEST_F(StoreTest, NamesFindModelsWhateverTheirCase) {
  Store s(root_);
  const auto stored = *ModelName::parse("Me/Llama3:Q4");
  ASSERT_TRUE(s.write_manifest(stored, make(s, "M1", "sys")).is_ok());
  for (const char* other : {"me/llama3:q4", "ME/LLAMA3:Q4", "Me/Llama3:Q4", "mE/lLaMa3:q4"}) {
    const auto n = *ModelName::parse(other);
    EXPECT_TRUE(s.exists(n)) << other;
    EXPECT_TRUE(s.read_manifest(n).is_ok()) << other;
    EXPECT_EQ(s.canonical(n), stored) << other;
    EXPECT_EQ(s.manifest_path(n), s.manifest_path(stored)) << other;
    auto rec = resolve_model(s, n);
    ASSERT_TRUE(rec.is_ok()) << other;
    EXPECT_EQ(rec->name.display(), "Me/Llama3:Q4");  // the stored spelling, for /api/ps
  }
  EXPECT_FALSE(s.exists(*ModelName::parse("me/llama3:q5")));
  EXPECT_FALSE(s.exists(*ModelName::parse("llama3:q4")));  // another namespace
  // A new tag of that model goes into its directory, spelled as stored.
  EXPECT_EQ(s.canonical(*ModelName::parse("me/llama3:new")).display(), "Me/Llama3:new");
  EXPECT_EQ(s.canonical(*ModelName::parse("me/other")).display(), "Me/other:latest");
  EXPECT_EQ(s.canonical(*ModelName::parse("fresh")).display(), "fresh:latest");
}

TEST_F(StoreTest, DifferentlyCasedWritesReplaceTheModel) {
  Store s(root_);
  const auto stored = *ModelName::parse("Llama3");
  ASSERT_TRUE(s.write_manifest(stored, make(s, "OLD", "old")).is_ok());
  const auto old_model = s.read_manifest(stored)->find(kMediaModel)->digest;
  // Writing (create, pull) under another case replaces the manifest instead of adding one.
  ASSERT_TRUE(s.write_manifest(*ModelName::parse("LLAMA3:Latest"), make(s, "NEW", "new")).is_ok());
  auto list = s.list();
  ASSERT_TRUE(list.is_ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name.display(), "Llama3:latest");  // the listing keeps the stored name
  EXPECT_NE(s.read_manifest(stored)->find(kMediaModel)->digest, old_model);
  // A copy onto a differently cased existing name replaces it too.
  ASSERT_TRUE(s.write_manifest(*ModelName::parse("other"), make(s, "OTHER", "o")).is_ok());
  ASSERT_TRUE(s.copy(*ModelName::parse("OTHER"), *ModelName::parse("llama3")).is_ok());
  list = s.list();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].digest, (*list)[1].digest);
  for (const auto& e : *list)
    EXPECT_TRUE(e.name.display() == "Llama3:latest" || e.name.display() == "other:latest");
  // Deleting under any case removes the stored model.
  ASSERT_TRUE(s.remove(*ModelName::parse("LLAMA3")).is_ok());
  EXPECT_FALSE(s.exists(stored));
  EXPECT_FALSE(fs::exists(root_ + "/manifests/registry.ollama.ai/library/Llama3"));
  EXPECT_TRUE(s.exists(*ModelName::parse("Other")));
}

TEST_F(StoreTest, TwoSpellingsOnDiskPreferTheExactOneThenAFullMatch) {
  Store s(root_);
  // Left by hand (or by an older hearth): one model under two spellings of its directory.
  ASSERT_TRUE(s.write_manifest(*ModelName::parse("llama3:v1"), make(s, "A", "a")).is_ok());
  const std::string dir = root_ + "/manifests/registry.ollama.ai/library/";
  fs::create_directories(dir + "Llama3");
  fs::copy_file(dir + "llama3/v1", dir + "Llama3/latest");
  fs::copy_file(dir + "llama3/v1", dir + "Llama3/v1");
  // The exact spelling wins; a tag only the other directory has is found there.
  EXPECT_EQ(s.canonical(*ModelName::parse("llama3:v1")).display(), "llama3:v1");
  EXPECT_EQ(s.canonical(*ModelName::parse("Llama3:v1")).display(), "Llama3:v1");
  EXPECT_EQ(s.canonical(*ModelName::parse("LLAMA3:V1")).display(), "Llama3:v1");  // "L" < "l"
  EXPECT_EQ(s.canonical(*ModelName::parse("llama3:LATEST")).display(), "Llama3:latest");
  EXPECT_TRUE(s.exists(*ModelName::parse("llama3")));
}

class DetailsTest : public StoreTest {
 protected:
  // A model whose config has none of the details (a store laid out by hand).
  Manifest bare(Store& s, const std::string& gguf, const std::string& config) {
    Manifest m;
    auto cfg = s.add_blob(config);
    EXPECT_TRUE(cfg.is_ok());
    m.config = {kMediaConfig, *cfg, int64_t(config.size()), ""};
    auto mb = s.add_blob_from_file(gguf);
    EXPECT_TRUE(mb.is_ok()) << mb.status().message();
    m.layers.push_back({kMediaModel, *mb, int64_t(fs::file_size(gguf)), ""});
    return m;
  }
  const std::string fixture_ = std::string(HEARTH_SHARED_DIR) + "/fixtures/llama-Q4_K_M.gguf";
};

TEST_F(DetailsTest, ComeFromTheHeaderWhenTheConfigLacksThem) {
  Store s(root_);
  const Manifest m = bare(s, fixture_, R"({"model_format":"gguf"})");
  const StoredDetails d = stored_model_details(s, m);
  EXPECT_EQ(d.format, "gguf");
  EXPECT_EQ(d.family, "llama");
  EXPECT_EQ(d.families, std::vector<std::string>{"llama"});
  EXPECT_EQ(d.quantization_level, "Q4_K_M");
  auto g = gguf::GgufFile::open(fixture_);
  ASSERT_TRUE(g.is_ok());
  int64_t params = 0;
  for (const auto& t : (*g)->tensors()) params += t.n_elements;
  ASSERT_GT(params, 0);
  EXPECT_EQ(d.parameter_size, human_parameter_count(params));
}

TEST_F(DetailsTest, TheConfigsFieldsWin) {
  Store s(root_);
  const Manifest m = bare(s, fixture_,
                          R"({"model_format":"gguf","model_family":"fam","model_type":"8.0B",)"
                          R"("model_families":["fam","clip"]})");
  const StoredDetails d = stored_model_details(s, m);
  EXPECT_EQ(d.family, "fam");
  EXPECT_EQ(d.families, (std::vector<std::string>{"fam", "clip"}));
  EXPECT_EQ(d.parameter_size, "8.0B");
  EXPECT_EQ(d.quantization_level, "Q4_K_M");  // the one field the config lacks
}

TEST_F(DetailsTest, AreCachedPerBlobAndEmptyWhenTheBlobIsGone) {
  Store s(root_);
  const Manifest m = bare(s, fixture_, R"({"model_format":"gguf"})");
  ASSERT_EQ(stored_model_details(s, m).family, "llama");
  // The blob's bytes no longer parse: the cached header details are what is shown (the header
  // is not read again).
  const std::string blob = s.blob_path(*digest_hex(m.layers[0].digest));
  fs::permissions(blob, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(blob, std::ios::trunc) << "not a gguf";
  ASSERT_FALSE(gguf::GgufFile::open(blob).is_ok());
  EXPECT_EQ(stored_model_details(s, m).quantization_level, "Q4_K_M");
  // Missing: nothing but the config's (here: the format).
  fs::remove(blob);
  const StoredDetails d = stored_model_details(s, m);
  EXPECT_EQ(d.format, "gguf");
  EXPECT_EQ(d.family, "");
  EXPECT_EQ(d.parameter_size, "");
  EXPECT_EQ(d.quantization_level, "");
  EXPECT_TRUE(d.families.empty());
  // A blob that never parsed gives empty details too.
  Manifest junk = make(s, "JUNK-MODEL", "s");
  EXPECT_EQ(stored_model_details(s, junk).family, "");
}

}  // namespace
}  // namespace hearth::store

namespace hearth::store {
namespace {

// DRAFT (speculative decoding): parsed, printed back, must differ from FROM.
// ADAPTER: several lines, in order, each with an optional trailing scale; to_text reads back.
TEST(Modelfile, AdapterLines) {
  auto a = Modelfile::parse(
      "FROM ./big.gguf\nADAPTER ./sql.gguf\nadapter ./style.gguf 0.5\nADAPTER ./neg.gguf -1.25\n"
      "ADAPTER \"./with space.gguf\"\n");
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  ASSERT_EQ(a->adapters.size(), 4u);
  EXPECT_EQ(a->adapters[0].path, "./sql.gguf");
  EXPECT_EQ(a->adapters[0].scale, 1.0f);
  EXPECT_EQ(a->adapters[1].path, "./style.gguf");
  EXPECT_EQ(a->adapters[1].scale, 0.5f);
  EXPECT_EQ(a->adapters[2].scale, -1.25f);
  EXPECT_EQ(a->adapters[3].path, "./with space.gguf");
  auto b = Modelfile::parse(a->to_text());
  ASSERT_TRUE(b.is_ok()) << a->to_text();
  ASSERT_EQ(b->adapters.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(b->adapters[i].path, a->adapters[i].path);
    EXPECT_EQ(b->adapters[i].scale, a->adapters[i].scale);
  }
}

TEST(Modelfile, DraftRoundTrip) {
  auto a = Modelfile::parse(
      "FROM ./big.gguf\nDRAFT ./small.gguf\nPARAMETER draft_num_predict 6\n"
      "PARAMETER lookup_decoding true\n");
  ASSERT_TRUE(a.is_ok()) << a.status().message();
  EXPECT_EQ(a->draft, "./small.gguf");
  EXPECT_EQ(a->params["draft_num_predict"].get<int>(), 6);
  EXPECT_EQ(a->params["lookup_decoding"].get<bool>(), true);
  auto b = Modelfile::parse(a->to_text());
  ASSERT_TRUE(b.is_ok()) << a->to_text();
  EXPECT_EQ(b->draft, a->draft);
  auto same = Modelfile::parse("FROM ./m.gguf\nDRAFT ./m.gguf\n");
  ASSERT_FALSE(same.is_ok());
  EXPECT_NE(same.status().message().find("DRAFT must differ from FROM"), std::string::npos);
}

// create: the draft becomes a layer of Ollama's draft media type, inherited by models made FROM
// this one, resolved to its blob; a draft with another vocabulary is refused.
TEST(Create, DraftLayer) {
  namespace fs = std::filesystem;
  const std::string root =
      (fs::temp_directory_path() / ("hearth-draft-" + std::to_string(::getpid()))).string();
  fs::remove_all(root);
  {
    Store s(root);
    const std::string fx = std::string(HEARTH_SHARED_DIR) + "/fixtures/";
    CreateSpec spec;
    spec.gguf_path = fx + "llama-F16.gguf";
    spec.draft_path = fx + "llama-Q4_0.gguf";
    const auto name = *ModelName::parse("spec");
    ASSERT_TRUE(create_model(s, name, spec).is_ok());
    auto r = resolve_model(s, name);
    ASSERT_TRUE(r.is_ok()) << r.status().message();
    ASSERT_FALSE(r->draft_path.empty());
    EXPECT_EQ(fs::file_size(r->draft_path), fs::file_size(fx + "llama-Q4_0.gguf"));
    int drafts = 0;
    for (const auto& l : r->manifest.layers) drafts += l.media_type == kMediaDraft;
    EXPECT_EQ(drafts, 1);
    CreateSpec child;
    child.from_model = name;
    child.system = "be brief";
    const auto name2 = *ModelName::parse("spec-child");
    ASSERT_TRUE(create_model(s, name2, child).is_ok());
    EXPECT_EQ(resolve_model(s, name2)->draft_path, r->draft_path);
    CreateSpec bad;
    bad.gguf_path = fx + "llama-F16.gguf";
    bad.draft_path = fx + "qwen3-F16.gguf";
    auto st = create_model(s, *ModelName::parse("bad"), bad);
    ASSERT_FALSE(st.is_ok());
    EXPECT_NE(st.message().find("vocabulary"), std::string::npos) << st.message();
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace hearth::store
