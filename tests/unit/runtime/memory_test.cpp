// Weights stay in the file mapping: loading a model and running it adds file-backed pages, and
// the anonymous memory it adds is bounded by the KV cache and scratch buffers, not the weights.
#include <gtest/gtest.h>

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
  // Anonymous growth: KV cache + scratch + norms; far below the 7.4 MB of weights.
  const long kv_kb = long((*eng)->model().state_bytes(cp) / 1024);
  EXPECT_LT(anon1 - anon0, kv_kb + 2048)
      << "anonymous memory grew by " << (anon1 - anon0) << " kB; weights must not be copied";
}

}  // namespace
}  // namespace hearth::runtime
