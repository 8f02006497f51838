// Weights stay in the file mapping: loading a model and running it adds file-backed pages, and
// the anonymous memory it adds is bounded by the KV cache and scratch buffers, not the weights.
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <fstream>
#include <string>

#include "runtime/session.h"

namespace hearth::runtime {
namespace {

// Resident kB of one kind ("RssAnon:" or "RssFile:") from /proc/self/status.
long rss_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string k;
  long v = -1;
  std::string unit;
  while (f >> k) {
    if (k == key) {
      f >> v >> unit;
      return v;
    }
    std::getline(f, unit);
  }
  return -1;
}

TEST(Memory, WeightsAreFileBackedNotCopied) {
  const std::string model = std::string(HEARTH_SHARED_DIR) + "/fixtures/llama-F16.gguf";
  const long anon0 = rss_kb("RssAnon:"), file0 = rss_kb("RssFile:");
  ASSERT_GT(anon0, 0);
  EngineOptions eo;
  eo.n_threads = 1;
  auto eng = Engine::load(model, eo);
  ASSERT_TRUE(eng.is_ok()) << eng.status().message();
  models::ContextParams cp;
  cp.n_ctx = 64;
  cp.n_batch = 8;
  auto s = Session::create(**eng, cp);
  ASSERT_TRUE(s.is_ok());
  std::vector<int32_t> toks = {1, 2, 3, 4};
  std::vector<float> logits(static_cast<size_t>((*s)->n_vocab()));
  ASSERT_TRUE((*s)->eval(toks, false, logits.data()).is_ok());
  const long anon1 = rss_kb("RssAnon:"), file1 = rss_kb("RssFile:");
  const long file_kb = long((*eng)->file().file_size() / 1024);
  // Every weight was read once, so most of the file is resident — as file pages.
  EXPECT_GT(file1 - file0, file_kb / 2) << "weights do not appear as file-backed pages";
  // Anonymous growth: KV cache + scratch + norms; far below the 7.4 MB of weights. AddressSanitizer
  // adds its shadow and redzones to every allocation (2.1 MB here under clang's): a copy of the
  // weights would still be twice the allowance.
#if defined(__SANITIZE_ADDRESS__)
  constexpr long kSlackKb = 4096;
#elif defined(__has_feature)
  constexpr long kSlackKb = __has_feature(address_sanitizer) ? 4096 : 2048;
#else
  constexpr long kSlackKb = 2048;
#endif
  const long kv_kb = long((*eng)->model().state_bytes(cp) / 1024);
  EXPECT_LT(anon1 - anon0, kv_kb + kSlackKb)
      << "anonymous memory grew by " << (anon1 - anon0) << " kB; weights must not be copied";
}

}  // namespace
}  // namespace hearth::runtime

namespace hearth::runtime {
namespace {

std::vector<float> last_logits(const std::string& model, ops::Placement p) {
  EngineOptions eo;
  eo.n_threads = 2;
  eo.placement = p;
  auto eng = Engine::load(model, eo);
  EXPECT_TRUE(eng.is_ok()) << eng.status().message();
  if (!eng.is_ok()) return {};
  models::ContextParams cp;
  cp.n_ctx = 64;
  cp.n_batch = 8;
  auto s = Session::create(**eng, cp);
  EXPECT_TRUE(s.is_ok());
  std::vector<int32_t> toks = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};  // prefill, then decode
  std::vector<float> logits(static_cast<size_t>((*s)->n_vocab()));
  EXPECT_TRUE((*s)->eval(std::span(toks).first(10), false, logits.data()).is_ok());
  EXPECT_TRUE((*s)->eval(std::span(toks).last(1), false, logits.data()).is_ok());
  return logits;
}

// Resident placement (weights copied into huge pages) must not change a single bit of the
// result: same bytes, same kernels.
TEST(Placement, ResidentEqualsMappedBitForBit) {
  for (const char* f : {"llama-Q8_0.gguf", "qwen3-Q4_K_M.gguf"}) {
    const std::string model = std::string(HEARTH_SHARED_DIR) + "/fixtures/" + f;
    const auto a = last_logits(model, ops::Placement::kMapped);
    const auto b = last_logits(model, ops::Placement::kResident);
    ASSERT_EQ(a.size(), b.size());
    ASSERT_FALSE(a.empty());
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << f;
  }
}

// Resident kB of this process's mappings of `path` (from /proc/self/smaps): unlike RssFile, not
// disturbed by code pages the test itself faults in.
long mapping_rss_kb(const std::string& path) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  bool in = false;
  long total = 0;
  const std::string base = path.substr(path.rfind('/') + 1);
  while (std::getline(f, line)) {
    if (!line.empty() && std::isxdigit(uint8_t(line[0])) && line.find('-') != std::string::npos &&
        line.find(' ') != std::string::npos && line.find(':') != 0) {
      const bool header =
          line.find(" r") != std::string::npos || line.find(" -") != std::string::npos;
      if (header)
        in = line.size() >= base.size() &&
             line.compare(line.size() - base.size(), base.size(), base) == 0;
      continue;
    }
    if (in && line.rfind("Rss:", 0) == 0) total += std::stol(line.substr(4));
  }
  return total;
}

TEST(Placement, ResidentWeightsAreCopiedOnceAndMappedPagesReleased) {
  const std::string model = std::string(HEARTH_SHARED_DIR) + "/fixtures/llama-Q8_0.gguf";
  const long anon0 = rss_kb("RssAnon:");
  EngineOptions eo;
  eo.n_threads = 1;
  eo.placement = ops::Placement::kResident;
  auto eng = Engine::load(model, eo);
  ASSERT_TRUE(eng.is_ok()) << eng.status().message();
  const long anon1 = rss_kb("RssAnon:");
  const long file_kb = long((*eng)->file().file_size() / 1024);
  EXPECT_GT(anon1 - anon0, file_kb / 2) << "weights were not copied";
  // One copy, not two: the arena packs matrices together and the mapped pages are dropped.
  EXPECT_LT(anon1 - anon0, file_kb + 4096);
  const long mapped = mapping_rss_kb(model);
  EXPECT_LT(mapped, file_kb / 4) << "mapped pages of copied weights still resident: " << mapped
                                 << " kB";
  // Control: the same measurement sees the pages when the weights stay mapped and are used.
  eng->reset();
  EngineOptions mo;
  mo.n_threads = 1;
  mo.placement = ops::Placement::kMapped;
  auto m = Engine::load(model, mo);
  ASSERT_TRUE(m.is_ok());
  models::ContextParams cp;
  cp.n_ctx = 16;
  cp.n_batch = 8;
  auto s = Session::create(**m, cp);
  ASSERT_TRUE(s.is_ok());
  std::vector<int32_t> toks = {1, 2, 3};
  std::vector<float> logits(static_cast<size_t>((*s)->n_vocab()));
  ASSERT_TRUE((*s)->eval(toks, false, logits.data()).is_ok());
  EXPECT_GT(mapping_rss_kb(model), file_kb / 2)
      << "the smaps measurement does not see mapped weights";
}

}  // namespace
}  // namespace hearth::runtime
