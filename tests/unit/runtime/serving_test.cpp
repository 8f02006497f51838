// Serving helpers: Ollama options and keep_alive, prompt shortening, and prompts built for chat,
// generate and fill-in-the-middle (with a real Qwen vocabulary that has FIM tokens).
#include <gtest/gtest.h>

#include "gguf/gguf.h"
#include "runtime/options.h"
#include "runtime/prompt.h"
#include "tokenizer/tokenizer.h"

namespace hearth::runtime {
namespace {

using ojson = nlohmann::ordered_json;
using std::chrono::nanoseconds;

TEST(Options, DefaultsModelfileThenRequest) {
  auto o = merge_options(ojson::object(), ojson::object());
  ASSERT_TRUE(o.is_ok());
  EXPECT_FLOAT_EQ(o->sampler.temperature, 0.8f);
  EXPECT_EQ(o->sampler.top_k, 40);
  EXPECT_FLOAT_EQ(o->sampler.repeat_penalty, 1.0f);
  EXPECT_EQ(o->num_predict, -1);
  EXPECT_EQ(o->num_keep, 4);
  o = merge_options({{"temperature", 0.2}, {"stop", {"a", "b"}}, {"num_ctx", 1024}},
                    {{"temperature", 0.5}, {"stop", "c"}, {"mirostat", 2}, {"seed", 7}});
  ASSERT_TRUE(o.is_ok());
  EXPECT_FLOAT_EQ(o->sampler.temperature, 0.5f);
  EXPECT_EQ(o->stop, std::vector<std::string>{"c"});  // replaced, not merged
  EXPECT_EQ(o->num_ctx, 1024);
  EXPECT_EQ(o->sampler.seed, 7);
  auto bad = merge_options(ojson::object(), {{"top_k", "many"}});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("top_k"), std::string::npos);
  EXPECT_FALSE(merge_options(ojson::object(), {{"num_ctx", 1.5}}).is_ok());
  EXPECT_FALSE(merge_options(ojson::object(), ojson::array()).is_ok());
}

// Values that would size a buffer or poison sampling are refused with the option's name.
TEST(Options, OutOfRangeValuesNameTheOption) {
  for (const auto& [key, value] :
       std::vector<std::pair<std::string, ojson>>{{"repeat_last_n", 2000000000},
                                                  {"repeat_last_n", -5},
                                                  {"num_ctx", 1e12},
                                                  {"num_ctx", -1},
                                                  {"num_predict", -3},
                                                  {"top_p", 1.5},
                                                  {"min_p", -0.1},
                                                  {"temperature", -1},
                                                  {"num_keep", -2}}) {
    auto r = merge_options(ojson::object(), {{key, value}});
    ASSERT_FALSE(r.is_ok()) << key << "=" << value.dump();
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(key), std::string::npos) << r.status().message();
  }
  // In range (and Ollama's special values) still pass.
  auto ok = merge_options(ojson::object(), {{"repeat_last_n", -1},
                                            {"num_predict", -2},
                                            {"num_keep", -1},
                                            {"top_p", 1.0},
                                            {"temperature", 0}});
  EXPECT_TRUE(ok.is_ok()) << ok.status().message();
}

TEST(Options, KeepAliveAsOllamaParsesIt) {
  EXPECT_EQ(*parse_keep_alive(ojson("5m")), nanoseconds(300'000'000'000));
  EXPECT_EQ(*parse_keep_alive(ojson("1h30m")), nanoseconds(5'400'000'000'000));
  EXPECT_EQ(*parse_keep_alive(ojson("1.5s")), nanoseconds(1'500'000'000));
  EXPECT_EQ(*parse_keep_alive(ojson(300)), nanoseconds(300'000'000'000));
  EXPECT_EQ(*parse_keep_alive(ojson("300")), nanoseconds(300'000'000'000));
  EXPECT_EQ(*parse_keep_alive(ojson(0)), nanoseconds(0));
  EXPECT_LT(parse_keep_alive(ojson("-1m"))->count(), 0);
  EXPECT_LT(parse_keep_alive(ojson(-1))->count(), 0);
  EXPECT_FALSE(parse_keep_alive(ojson("soon")).is_ok());
  EXPECT_FALSE(parse_keep_alive(ojson("5 parsecs")).is_ok());
  EXPECT_FALSE(parse_keep_alive(ojson::array()).is_ok());
}

TEST(Prompt, ShortenKeepsHeadAndRecentTail) {
  std::vector<int32_t> t(100);
  for (int i = 0; i < 100; ++i) t[size_t(i)] = i;
  auto u = t;
  EXPECT_EQ(shorten_prompt(u, 200, 4), 0);
  EXPECT_EQ(u, t);
  EXPECT_EQ(shorten_prompt(u, 64, 4), 100 - 4 - 30);
  ASSERT_EQ(u.size(), 34u);
  EXPECT_EQ(u[3], 3);
  EXPECT_EQ(u[4], 70);  // the most recent 30 follow the kept head
  EXPECT_EQ(u.back(), 99);
}

class PromptWithVocab : public ::testing::Test {
 protected:
  void SetUp() override {
    auto f = gguf::GgufFile::open(std::string(HEARTH_SHARED_DIR) + "/fixtures/vocab-qwen3.gguf");
    ASSERT_TRUE(f.is_ok()) << f.status().message();
    file_ = *f;
    auto t = tokenizer::Tokenizer::from_gguf(*file_);
    ASSERT_TRUE(t.is_ok());
    tok_ = *t;
  }
  std::shared_ptr<gguf::GgufFile> file_;
  std::shared_ptr<const tokenizer::Tokenizer> tok_;
};

TEST_F(PromptWithVocab, FimUsesTheModelsTokens) {
  store::ModelRecord rec;
  PromptSpec p;
  p.prompt = "def add(a, b):\n    ";
  p.suffix = "\n    return c";
  auto b = build_prompt(p, rec, std::nullopt, *tok_);
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  const auto& sp = tok_->special();
  std::vector<int32_t> want = {sp.fim_pre};
  for (int32_t x : tok_->encode(p.prompt, false, false)) want.push_back(x);
  want.push_back(sp.fim_suf);
  for (int32_t x : tok_->encode(p.suffix, false, false)) want.push_back(x);
  want.push_back(sp.fim_mid);
  EXPECT_EQ(b->tokens, want);
  EXPECT_EQ(tok_->decode(b->tokens),
            "<|fim_prefix|>" + p.prompt + "<|fim_suffix|>" + p.suffix + "<|fim_middle|>");
}

TEST_F(PromptWithVocab, ChatPrependsModelfileSystemAndMessages) {
  store::ModelRecord rec;
  rec.template_text =
      "{{ range .Messages }}<{{ .Role }}>{{ .Content }}</{{ .Role }}>{{ end }}<assistant>";
  rec.system = "Be kind.";
  rec.messages = ojson::array(
      {{{"role", "user"}, {"content", "Hi"}}, {{"role", "assistant"}, {"content", "Hello"}}});
  PromptSpec p;
  p.kind = PromptSpec::Kind::kChat;
  p.messages = ojson::array({{{"role", "USER"}, {"content", "How are you?"}}});
  auto b = build_prompt(p, rec, std::nullopt, *tok_);
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_EQ(b->text,
            "<system>Be kind.</system><user>Hi</user><assistant>Hello</assistant>"
            "<user>How are you?</user><assistant>");
  EXPECT_EQ(b->tokens, tok_->encode(b->text, true, true));
  // The conversation's own system message replaces the Modelfile's.
  p.messages = ojson::array(
      {{{"role", "system"}, {"content", "Be terse."}}, {{"role", "user"}, {"content", "Q"}}});
  b = build_prompt(p, rec, std::nullopt, *tok_);
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->text.rfind("<user>Hi</user>", 0), 0u);
  EXPECT_NE(b->text.find("<system>Be terse.</system>"), std::string::npos);
  EXPECT_EQ(b->text.find("Be kind."), std::string::npos);
}

TEST_F(PromptWithVocab, GenerateWithSystemAndRaw) {
  store::ModelRecord rec;
  rec.template_text = "{{ if .System }}[{{ .System }}]{{ end }}{{ .Prompt }}=>";
  PromptSpec p;
  p.prompt = "2+2";
  p.system = "math";
  auto b = build_prompt(p, rec, std::nullopt, *tok_);
  ASSERT_TRUE(b.is_ok()) << b.status().message();
  EXPECT_EQ(b->text, "[math]2+2=>");
  p.system.reset();
  p.raw = true;
  b = build_prompt(p, rec, std::nullopt, *tok_);
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(b->text, "2+2");
}

}  // namespace
}  // namespace hearth::runtime
