#include "registry/hf.h"

#include <gtest/gtest.h>

namespace hearth::registry {
namespace {

std::vector<HfFile> files(std::initializer_list<const char*> paths) {
  std::vector<HfFile> out;
  for (const char* p : paths) out.push_back({p, std::string(64, 'a'), 10});
  return out;
}

std::vector<std::string> chosen(const std::vector<HfFile>& fs, std::string_view tag) {
  auto r = choose_hf_gguf(fs, tag, "hf.co/o/r");
  std::vector<std::string> out;
  if (!r.is_ok()) {
    out.push_back("error: " + r.status().message());
    return out;
  }
  for (const auto& f : *r) out.push_back(f.path);
  return out;
}

TEST(RegistryHf, HostsAreHuggingFaces) {
  EXPECT_TRUE(is_hf_host("hf.co"));
  EXPECT_TRUE(is_hf_host("HuggingFace.co"));
  EXPECT_FALSE(is_hf_host("registry.ollama.ai"));
  EXPECT_FALSE(is_hf_host("hf.co:5000"));
}

TEST(RegistryHf, QuantMatchedCaseInsensitively) {
  const auto fs = files({"README.md", "m-Q4_K_M.gguf", "m-q8_0.gguf", "m-IQ4_XS.gguf",
                         "mmproj-m-Q8_0.gguf", "m-Q4_0.gguf"});
  EXPECT_EQ(chosen(fs, "q8_0"), std::vector<std::string>{"m-q8_0.gguf"});
  EXPECT_EQ(chosen(fs, "Q8_0"), std::vector<std::string>{"m-q8_0.gguf"});
  EXPECT_EQ(chosen(fs, "iq4_xs"), std::vector<std::string>{"m-IQ4_XS.gguf"});
  EXPECT_EQ(chosen(fs, "Q4_0"), std::vector<std::string>{"m-Q4_0.gguf"});
  // Default: Q4_K_M, then Q8_0, then the first GGUF; never an mmproj.
  EXPECT_EQ(chosen(fs, "latest"), std::vector<std::string>{"m-Q4_K_M.gguf"});
  EXPECT_EQ(chosen(files({"mmproj-Q4_K_M.gguf", "b-Q8_0.gguf", "a-F16.gguf"}), "latest"),
            std::vector<std::string>{"b-Q8_0.gguf"});
  EXPECT_EQ(chosen(files({"mmproj-Q4_K_M.gguf", "b-F32.gguf", "a-F16.gguf"}), "latest"),
            std::vector<std::string>{"a-F16.gguf"});
  // The quant must be followed by '.' or '-' and not glued to what precedes it.
  EXPECT_EQ(chosen(files({"m-Q4_K_M.gguf"}), "Q4_K")[0].substr(0, 6), "error:");
  const auto missing = chosen(fs, "Q3_K_S");
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_NE(missing[0].find("no GGUF file for quant 'Q3_K_S' in hf.co/o/r"), std::string::npos);
  EXPECT_NE(missing[0].find("available: IQ4_XS, Q4_0, Q4_K_M, Q8_0"), std::string::npos)
      << missing[0];
  EXPECT_EQ(chosen(files({"README.md"}), "latest")[0], "error: hf.co/o/r has no GGUF model files");
}

TEST(RegistryHf, SplitPartsGathered) {
  const auto fs = files({"Q8_0/m-Q8_0-00002-of-00003.gguf", "Q8_0/m-Q8_0-00001-of-00003.gguf",
                         "Q8_0/m-Q8_0-00003-of-00003.gguf", "m-Q4_K_M.gguf"});
  EXPECT_EQ(chosen(fs, "Q8_0"), (std::vector<std::string>{"Q8_0/m-Q8_0-00001-of-00003.gguf",
                                                          "Q8_0/m-Q8_0-00002-of-00003.gguf",
                                                          "Q8_0/m-Q8_0-00003-of-00003.gguf"}));
  EXPECT_EQ(hf_quant_label("Q8_0/m-Q8_0-00002-of-00003.gguf"), "Q8_0");
  EXPECT_EQ(hf_quant_label("Llama-3.2-1B-Instruct-q4_k_m.gguf"), "Q4_K_M");
  const auto gap =
      chosen(files({"m-Q8_0-00001-of-00003.gguf", "m-Q8_0-00003-of-00003.gguf"}), "q8_0");
  EXPECT_NE(gap[0].find("part 2 of 3"), std::string::npos) << gap[0];
}

TEST(RegistryHf, TreeListingParsed) {
  auto t = parse_hf_tree(R"([
    {"type":"directory","oid":"x","size":0,"path":"Q8_0"},
    {"type":"file","oid":"abc","size":12,"path":"README.md"},
    {"type":"file","oid":"def","size":134,
     "lfs":{"oid":"ABCDEF0000000000000000000000000000000000000000000000000000000000",
            "size":1000,"pointerSize":134},"path":"Q8_0/m-Q8_0.gguf"}])");
  ASSERT_TRUE(t.is_ok()) << t.status().message();
  ASSERT_EQ(t->size(), 2u);
  EXPECT_EQ((*t)[0].sha256, "");
  EXPECT_EQ((*t)[1].path, "Q8_0/m-Q8_0.gguf");
  EXPECT_EQ((*t)[1].size, 1000);
  EXPECT_EQ((*t)[1].sha256, "abcdef0000000000000000000000000000000000000000000000000000000000");
  EXPECT_FALSE(parse_hf_tree("{}").is_ok());
}

}  // namespace
}  // namespace hearth::registry
