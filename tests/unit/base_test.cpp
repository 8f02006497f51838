#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "base/fp16.h"
#include "base/json_depth.h"
#include "base/thread_pool.h"
#include "base/utf8.h"

namespace hearth {

// JSON from outside: nesting up to the limit parses as usual; one level more is refused (and
// flagged as too deep, not as invalid); a 40 KB body of brackets is refused without recursion.
TEST(JsonDepth, RefusesNestingBeyondTheLimit) {
  auto nested = [](int n) { return std::string(size_t(n), '[') + std::string(size_t(n), ']'); };
  bool deep = true;
  auto ok = parse_json_bounded<nlohmann::json>(nested(kMaxJsonDepth + 1), &deep);
  EXPECT_FALSE(ok.is_discarded());  // depth 0 is the outermost value: 129 brackets = depth 128
  EXPECT_FALSE(deep);
  auto bad = parse_json_bounded<nlohmann::json>(nested(kMaxJsonDepth + 2), &deep);
  EXPECT_TRUE(bad.is_discarded());
  EXPECT_TRUE(deep);
  std::string objs;
  for (int i = 0; i < 20000; ++i) objs += "{\"a\":";
  objs += "1" + std::string(20000, '}');
  EXPECT_TRUE(parse_json_bounded<nlohmann::ordered_json>(objs, &deep).is_discarded());
  EXPECT_TRUE(deep);
  EXPECT_TRUE(parse_json_bounded<nlohmann::json>("{\"a\": [1, 2", &deep).is_discarded());
  EXPECT_FALSE(deep);  // invalid, not too deep
  auto j = parse_json_bounded<nlohmann::json>(R"({"a": {"b": [1, {"c": null}]}})", &deep);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["a"]["b"][1]["c"], nullptr);
}

TEST(Fp16, RoundTripsEveryHalf) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(uint16_t(h));
    if (std::isnan(f)) continue;
    EXPECT_EQ(fp32_to_fp16(f), h) << "half bits " << h;
  }
}

TEST(Fp16, RoundsToNearestEven) {
  // 1 + 2^-11 is exactly halfway between 1 and the next half (1 + 2^-10): ties to even -> 1.
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(fp32_to_fp16(70000.0f), 0x7c00);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);
}

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(bits_f32(0x3f808000)), 0x3f80);  // tie -> even
  EXPECT_EQ(fp32_to_bf16(bits_f32(0x3f818000)), 0x3f82);  // tie -> even (up)
  EXPECT_EQ(bf16_to_fp32(0x4049), bits_f32(0x40490000));
}

TEST(ThreadPool, EveryThreadRunsAndBarrierOrders) {
  ThreadPool pool(3);
  std::vector<int> hits(3, 0);
  std::atomic<int> phase1{0};
  bool ordered = true;
  for (int iter = 0; iter < 200; ++iter) {
    phase1 = 0;
    pool.run([&](int ith, int nth) {
      hits[ith]++;
      phase1.fetch_add(1);
      pool.barrier();
      if (phase1.load() != nth) ordered = false;
    });
  }
  EXPECT_TRUE(ordered);
  for (int h : hits) EXPECT_EQ(h, 200);
}

// More threads than cores: waits outlast the spin and sleep on the futex, so every wake-up path
// (barrier release, the caller waiting for the last worker) is exercised; phases must stay
// ordered and every run must see every thread's work.
TEST(ThreadPool, OversubscribedWaitsSleepAndWake) {
  const int n = 4 * int(std::max(2u, std::thread::hardware_concurrency()));
  ThreadPool pool(n);
  std::atomic<int> phase{0};
  std::atomic<bool> ordered{true};
  std::atomic<long> total{0};
  for (int iter = 0; iter < 100; ++iter) {
    phase = 0;
    pool.run([&](int ith, int nth) {
      // Uneven work, so some threads always wait for others.
      volatile long x = 0;
      for (int i = 0; i < (ith % 3) * 20000; ++i) x = x + i;
      phase.fetch_add(1);
      pool.barrier();
      if (phase.load() != nth) ordered = false;
      pool.barrier();
      phase.fetch_add(1);
      pool.barrier();
      if (phase.load() != 2 * nth) ordered = false;
      total.fetch_add(1);
    });
    ASSERT_EQ(total.load(), long(iter + 1) * n) << "run returned before every thread finished";
  }
  EXPECT_TRUE(ordered.load());
}

TEST(ThreadPool, SplitCoversRangeAligned) {
  for (int nth = 1; nth <= 4; ++nth) {
    int64_t covered = 0, prev_end = 0;
    for (int ith = 0; ith < nth; ++ith) {
      int64_t b, e;
      ThreadPool::split(1000, ith, nth, b, e, 16);
      EXPECT_EQ(b, prev_end);
      if (e < 1000) {
        EXPECT_EQ(e % 16, 0);
      }
      covered += e - b;
      prev_end = e;
    }
    EXPECT_EQ(covered, 1000);
  }
}

}  // namespace hearth

namespace hearth {
namespace {

TEST(Utf8, WellFormedAsRfc3629) {
  size_t bad = 0;
  EXPECT_TRUE(utf8_well_formed("plain ascii"));
  EXPECT_TRUE(utf8_well_formed("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(utf8_well_formed("ab\xFF", &bad));
  EXPECT_EQ(bad, 2u);
  EXPECT_FALSE(utf8_well_formed("x\xC3", &bad));  // truncated
  EXPECT_EQ(bad, 1u);
  EXPECT_FALSE(utf8_well_formed("\xC0\xAF"));          // overlong
  EXPECT_FALSE(utf8_well_formed("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(utf8_well_formed("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(utf8_well_formed("\x80"));              // lone continuation
}

}  // namespace
}  // namespace hearth
