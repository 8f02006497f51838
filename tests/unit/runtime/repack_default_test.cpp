// HEARTH_REPACK: load-time repacking is on unless the variable turns it off.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "runtime/session.h"

namespace hearth::runtime {
namespace {

TEST(RepackDefault, OnUnlessTurnedOff) {
  const char* prev = std::getenv("HEARTH_REPACK");
  const std::string saved = prev ? prev : "";
  ::unsetenv("HEARTH_REPACK");
  EXPECT_TRUE(repack_by_default());
  EXPECT_TRUE(EngineOptions().repack);
  for (const char* off : {"0", "false", "off", "no"}) {
    ::setenv("HEARTH_REPACK", off, 1);
    EXPECT_FALSE(repack_by_default()) << off;
    EXPECT_FALSE(EngineOptions().repack) << off;
  }
  for (const char* on : {"1", "true"}) {
    ::setenv("HEARTH_REPACK", on, 1);
    EXPECT_TRUE(repack_by_default()) << on;
  }
  if (prev)
    ::setenv("HEARTH_REPACK", saved.c_str(), 1);
  else
    ::unsetenv("HEARTH_REPACK");
}

}  // namespace
}  // namespace hearth::runtime
