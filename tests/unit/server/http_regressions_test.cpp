// Replays tests/fuzz/regressions/http/: raw HTTP requests that once crashed the server, threw out
// of Api::handle or broke an answer's shape (fuzz_http findings). Each file goes through the same
// harness as the fuzz target (tests/fuzz/http_harness.h: Beast parsing as the server does, a real
// store with the tiny fixture model and a real scheduler, a fake client checking every answer);
// every check must pass. Under the sanitizer build, memory errors and undefined behaviour fail
// the run too. See tests/fuzz/regressions/README.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "../../fuzz/http_harness.h"

namespace hearth::fuzz_http {
namespace {

const fs::path kDir = fs::path(HEARTH_SOURCE_DIR) / "tests" / "fuzz" / "regressions" / "http";

std::vector<fs::path> inputs() {
  std::vector<fs::path> v;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kDir, ec))
    if (e.is_regular_file()) v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}

TEST(HttpRegressions, ReplayPassesEveryCheck) {
  const auto files = inputs();
  ASSERT_FALSE(files.empty()) << "no regression inputs in " << kDir;
  std::string err;
  Harness h(HEARTH_SHARED_DIR, &err);
  ASSERT_EQ(err, "");
  for (const auto& p : files) {
    std::ifstream f(p, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_EQ(h.run(bytes), "") << p.filename().string();
  }
}

}  // namespace
}  // namespace hearth::fuzz_http
