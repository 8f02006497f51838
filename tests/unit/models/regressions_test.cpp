// Replays tests/fuzz/regressions/: inputs that once crashed the engine or corrupted its memory.
// Each file is parsed and loaded; when it loads, a small context runs a full batch and a decode
// step. Nothing may crash (the sanitizer build turns memory errors into failures). Files named in
// expect.json must instead be refused at load time with an error naming the bad key. See the
// folder's README.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "models/model.h"

namespace hearth::models {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = fs::path(HEARTH_SOURCE_DIR) / "tests" / "fuzz" / "regressions";

// Every input in the folder, sorted: all files except the README, the expectations table and
// generator scripts.
std::vector<fs::path> inputs() {
  std::vector<fs::path> v;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kDir, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (name == "README.md" || name == "expect.json" || e.path().extension() == ".py") continue;
    v.push_back(e.path());
  }
  std::sort(v.begin(), v.end());
  return v;
}

// expect.json: file name -> substring the load error must contain.
std::map<std::string, std::string> expected_load_errors() {
  std::map<std::string, std::string> m;
  std::ifstream in(kDir / "expect.json");
  if (!in) return m;
  const auto j = nlohmann::json::parse(in);
  for (const auto& [name, e] : j.items()) m[name] = e.at("load_error").get<std::string>();
  return m;
}

// A parsed input and the bytes behind it (parse() does not copy).
struct Input {
  std::vector<uint8_t> bytes;
  Result<std::shared_ptr<gguf::GgufFile>> file = internal_error("not read");
};

Input read_input(const fs::path& p) {
  Input in;
  if (p.extension() == ".gguf") {
    in.file = gguf::GgufFile::open(p.string());
  } else {  // raw bytes, e.g. a libFuzzer artifact
    std::ifstream f(p, std::ios::binary);
    in.bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    in.file = gguf::GgufFile::parse(in.bytes.data(), in.bytes.size(), p.filename().string());
  }
  return in;
}

// Context (n_ctx 32, n_seq 2, n_batch 16), a full batch of 16 tokens of sequence 0 with logits
// of the last, then one decode step, reading the router margins after each. Errors are allowed
// (printed); crashes are not.
void run_forward(const Model& m, const gguf::GgufFile& f, ThreadPool& pool,
                 const std::string& name) {
  ContextParams cp;
  cp.n_ctx = 32;
  cp.n_seq = 2;
  cp.n_batch = 16;
  if (auto est = estimate_state_bytes(f, cp); est.is_ok() && *est > (size_t(256) << 20)) {
    ADD_FAILURE() << name << ": state of " << *est << " bytes; regression inputs should be tiny";
    return;
  }
  auto ctx = m.new_context(cp, pool);
  if (!ctx) {
    std::printf("  %s: new_context: %s\n", name.c_str(), ctx.status().message().c_str());
    return;
  }
  const int64_t nv = m.config().n_vocab;
  ASSERT_GT(nv, 0) << name;
  std::vector<BatchToken> batch;
  for (int i = 0; i < cp.n_batch; ++i)
    batch.push_back({int32_t((7 * i + 1) % nv), i, 0, i == cp.n_batch - 1});
  std::vector<float> logits(static_cast<size_t>(nv));
  // Reads every router margin after each forward (ASan: the buffer is as long as it says).
  auto touch_margins = [&] {
    float sum = 0;
    for (float x : (*ctx)->router_margins()) sum += x;
    return sum;
  };
  auto st = m.forward(**ctx, batch, logits.data());
  if (!st) {
    std::printf("  %s: forward: %s\n", name.c_str(), st.message().c_str());
    return;
  }
  (void)touch_margins();
  const BatchToken next{int32_t(3 % nv), cp.n_batch, 0, true};
  st = m.forward(**ctx, std::span<const BatchToken>(&next, 1), logits.data());
  if (!st) std::printf("  %s: decode step: %s\n", name.c_str(), st.message().c_str());
  if (st) (void)touch_margins();
}

// The folder must exist and hold inputs: an empty or missing folder would make the replay pass
// without checking anything.
TEST(Regressions, FolderHasInputs) {
  ASSERT_TRUE(fs::is_directory(kDir)) << kDir << " is missing";
  EXPECT_FALSE(inputs().empty()) << "no regression inputs in " << kDir;
  // Every expectation names a file that exists.
  for (const auto& [name, sub] : expected_load_errors())
    EXPECT_TRUE(fs::is_regular_file(kDir / name)) << "expect.json names missing file " << name;
}

// Every input: parse and load without crashing; when it loads, a context, a full batch and a
// decode step without crashing. Files in expect.json are loaded but never run: while their bug is
// open they load, and their forward pass would corrupt this process's heap (that they must not
// load is Regressions.ExpectedLoadErrors).
TEST(Regressions, ReplayDoesNotCrash) {
  const auto files = inputs();
  ASSERT_FALSE(files.empty()) << "no regression inputs in " << kDir;
  const auto expect = expected_load_errors();
  ThreadPool pool(2);
  int parsed = 0, loaded = 0, ran = 0;
  for (const auto& p : files) {
    const std::string name = p.filename().string();
    SCOPED_TRACE(name);
    auto in = read_input(p);
    if (!in.file) continue;  // a clean parse error is a pass
    ++parsed;
    auto m = load_model(*in.file, pool);
    if (!m) continue;  // so is a clean load error
    ++loaded;
    if (expect.count(name)) continue;
    ++ran;
    run_forward(**m, **in.file, pool, name);
  }
  std::printf("  %zu inputs: %d parsed, %d loaded, %d run through a forward pass\n", files.size(),
              parsed, loaded, ran);
}

// Inputs named in expect.json must be refused at load time, with an error that contains the
// given substring. Until the loader checks them, this test fails (by design): such a file loads
// and its first forward corrupts memory.
TEST(Regressions, ExpectedLoadErrors) {
  const auto expect = expected_load_errors();
  ThreadPool pool(1);
  for (const auto& [name, sub] : expect) {
    SCOPED_TRACE(name);
    auto in = read_input(kDir / name);
    ASSERT_TRUE(in.file.is_ok()) << "does not even parse: " << in.file.status().message();
    auto m = load_model(*in.file, pool);
    EXPECT_FALSE(m.is_ok()) << name << " loads, but must be refused with an error naming '" << sub
                            << "'";
    if (!m) {
      EXPECT_NE(m.status().message().find(sub), std::string::npos) << m.status().message();
    }
  }
}

}  // namespace
}  // namespace hearth::models
