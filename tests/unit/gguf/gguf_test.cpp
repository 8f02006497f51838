// The GGUF reader on real fixtures, writer round trips, and one case per kind of malformed file:
// each must be refused with a message naming the problem, never crash or read out of bounds.
#include "gguf/gguf.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

namespace hearth::gguf {
namespace {

const std::string kFixtures = std::string(HEARTH_SHARED_DIR) + "/fixtures/";

TEST(Gguf, ReadsFixtures) {
  auto f = GgufFile::open(kFixtures + "llama-F16.gguf");
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  EXPECT_EQ((*f)->version(), 3u);
  EXPECT_EQ(*(*f)->get_string("general.architecture"), "llama");
  EXPECT_EQ(*(*f)->get_int("llama.block_count"), 2);
  EXPECT_EQ(*(*f)->get_int("llama.embedding_length"), 256);
  auto toks = (*f)->get_string_array("tokenizer.ggml.tokens");
  ASSERT_TRUE(toks.is_ok());
  EXPECT_EQ(toks->size(), 4352u);
  const TensorInfo* q = (*f)->find_tensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{256, 256}));  // outermost-first
  EXPECT_EQ(q->type, DType::F16);
  const TensorInfo* k = (*f)->find_tensor("blk.0.attn_k.weight");
  EXPECT_EQ(k->shape, (std::vector<int64_t>{128, 256}));
  const TensorInfo* e = (*f)->find_tensor("token_embd.weight");
  EXPECT_EQ(e->shape, (std::vector<int64_t>{4352, 256}));
  EXPECT_EQ(e->nbytes, size_t(4352) * 256 * 2);
  // Every fixture parses, quantized ones included.
  for (const auto& entry : std::filesystem::directory_iterator(kFixtures)) {
    if (entry.path().extension() != ".gguf") continue;
    auto g = GgufFile::open(entry.path().string());
    EXPECT_TRUE(g.is_ok()) << entry.path() << ": " << g.status().message();
  }
}

TEST(Gguf, TypedAccessorsNameTheKey) {
  auto f = GgufFile::open(kFixtures + "qwen3-F16.gguf");
  ASSERT_TRUE(f.is_ok());
  auto missing = (*f)->get_int("qwen3.no_such_key");
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("qwen3.no_such_key"), std::string::npos);
  auto wrong = (*f)->get_int("general.architecture");
  ASSERT_FALSE(wrong.is_ok());
  EXPECT_NE(wrong.status().message().find("general.architecture"), std::string::npos);
  EXPECT_EQ(*(*f)->get_int_or("qwen3.no_such_key", 7), 7);
}

TEST(Gguf, WriterRoundTripsEveryValueType) {
  GgufWriter w;
  w.set_u8("a.u8", 200);
  w.set_i8("a.i8", -100);
  w.set_u16("a.u16", 60000);
  w.set_i16("a.i16", -30000);
  w.set_u32("a.u32", 4000000000u);
  w.set_i32("a.i32", -2000000000);
  w.set_u64("a.u64", 1ull << 40);
  w.set_i64("a.i64", -(1ll << 40));
  w.set_f32("a.f32", 1.5f);
  w.set_f64("a.f64", -2.25);
  w.set_bool("a.bool", true);
  w.set_string("a.str", "héllo");
  w.set_array_strings("a.strs", {"x", "", "zz"});
  w.set_array_i32("a.i32s", {1, -2, 3});
  w.set_array_f32("a.f32s", {0.5f, 1.5f});
  std::vector<uint16_t> data(4 * 32, 0x3c00);
  ASSERT_TRUE(w.add_tensor("t", DType::F16, {4, 32}, data.data(), data.size() * 2).is_ok());
  auto bytes = w.to_bytes();
  auto f = GgufFile::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  const auto& g = **f;
  EXPECT_EQ(*g.get_int("a.u8"), 200);
  EXPECT_EQ(*g.get_int("a.i8"), -100);
  EXPECT_EQ(*g.get_int("a.u16"), 60000);
  EXPECT_EQ(*g.get_int("a.i16"), -30000);
  EXPECT_EQ(*g.get_int("a.u32"), 4000000000ll);
  EXPECT_EQ(*g.get_int("a.i32"), -2000000000);
  EXPECT_EQ(*g.get_int("a.u64"), 1ll << 40);
  EXPECT_EQ(*g.get_int("a.i64"), -(1ll << 40));
  EXPECT_EQ(*g.get_float("a.f32"), 1.5);
  EXPECT_EQ(*g.get_float("a.f64"), -2.25);
  EXPECT_TRUE(*g.get_bool("a.bool"));
  EXPECT_EQ(*g.get_string("a.str"), "héllo");
  auto strs = g.get_string_array("a.strs");
  ASSERT_TRUE(strs.is_ok());
  EXPECT_EQ(strs->size(), 3u);
  EXPECT_EQ((*strs)[2], "zz");
  EXPECT_EQ(*g.get_int_array("a.i32s"), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(*g.get_float_array("a.f32s"), (std::vector<double>{0.5, 1.5}));
  const TensorInfo* t = g.find_tensor("t");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{4, 32}));
  EXPECT_EQ(std::memcmp(t->data, data.data(), t->nbytes), 0);
  EXPECT_EQ(t->offset % 32, 0u);
}

TEST(Gguf, AtomicWriteLeavesNoTemporary) {
  // A directory of its own: other test processes may run at the same time.
  const auto dir =
      std::filesystem::temp_directory_path() / ("hearth-gguf-write-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  ASSERT_TRUE(w.write((dir / "m.gguf").string()).is_ok());
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 1);
  EXPECT_TRUE(GgufFile::open((dir / "m.gguf").string()).is_ok());
  std::filesystem::remove_all(dir);
}

// A split model (llama.cpp's gguf-split layout): metadata in the first part, tensors spread over
// all; opened from the first part by name or by registered paths, missing parts refused.
TEST(Gguf, SplitModelOpensAsOneFile) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("hearth-gguf-split-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  static std::vector<float> a(64, 1.0f), b(32, 2.0f), c(32, 3.0f);
  const auto part = [&](int no, const std::string& path) {
    GgufWriter w;
    if (no == 0) w.set_string("general.architecture", "llama");
    w.set_u16("split.no", uint16_t(no));
    w.set_u16("split.count", 3);
    w.set_i32("split.tensors.count", 3);
    if (no == 0) EXPECT_TRUE(w.add_tensor("a", DType::F32, {2, 32}, a.data(), 256).is_ok());
    if (no == 1) EXPECT_TRUE(w.add_tensor("b", DType::F32, {32}, b.data(), 128).is_ok());
    if (no == 2) EXPECT_TRUE(w.add_tensor("c", DType::F32, {32}, c.data(), 128).is_ok());
    ASSERT_TRUE(w.write(path).is_ok());
  };
  const std::string first = (dir / "m-00001-of-00003.gguf").string();
  part(0, first);
  part(1, (dir / "m-00002-of-00003.gguf").string());
  part(2, (dir / "m-00003-of-00003.gguf").string());
  auto g = GgufFile::open(first);
  ASSERT_TRUE(g.is_ok()) << g.status().message();
  EXPECT_EQ((*g)->split_count(), 3);
  ASSERT_EQ((*g)->tensors().size(), 3u);
  const TensorInfo* tc = (*g)->find_tensor("c");
  ASSERT_NE(tc, nullptr);
  EXPECT_EQ(reinterpret_cast<const float*>(tc->data)[5], 3.0f);
  EXPECT_EQ(reinterpret_cast<const float*>((*g)->find_tensor("b")->data)[0], 2.0f);
  EXPECT_EQ(*(*g)->get_string("general.architecture"), "llama");
  size_t total = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) total += e.file_size();
  EXPECT_EQ((*g)->file_size(), total);
  // A later part alone is refused, naming what to open.
  auto later = GgufFile::open((dir / "m-00002-of-00003.gguf").string());
  ASSERT_FALSE(later.is_ok());
  EXPECT_NE(later.status().message().find("part 2 of 3"), std::string::npos);
  // Names that say nothing (store blobs): the registered paths.
  std::filesystem::copy(first, dir / "blob-a");
  std::filesystem::copy(dir / "m-00002-of-00003.gguf", dir / "blob-b");
  std::filesystem::copy(dir / "m-00003-of-00003.gguf", dir / "blob-c");
  const std::string ba = (dir / "blob-a").string();
  EXPECT_FALSE(GgufFile::open(ba).is_ok());  // the other parts cannot be found
  GgufFile::set_split_parts(ba, {ba, (dir / "blob-b").string(), (dir / "blob-c").string()});
  auto viab = GgufFile::open(ba);
  ASSERT_TRUE(viab.is_ok()) << viab.status().message();
  EXPECT_EQ((*viab)->tensors().size(), 3u);
  // Parts out of order are refused.
  GgufFile::set_split_parts(ba, {ba, (dir / "blob-c").string(), (dir / "blob-b").string()});
  EXPECT_FALSE(GgufFile::open(ba).is_ok());
  GgufFile::set_split_parts(ba, {});
  // A missing part is named.
  std::filesystem::remove(dir / "m-00003-of-00003.gguf");
  auto missing = GgufFile::open(first);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_NE(missing.status().message().find("part 3 of 3 is missing"), std::string::npos)
      << missing.status().message();
  EXPECT_EQ(GgufFile::split_paths_by_name("/x/y-00001-of-00002.gguf"),
            (std::vector<std::string>{"/x/y-00001-of-00002.gguf", "/x/y-00002-of-00002.gguf"}));
  EXPECT_TRUE(GgufFile::split_paths_by_name("/x/y-00002-of-00002.gguf").empty());
  EXPECT_TRUE(GgufFile::split_paths_by_name("/x/y.gguf").empty());
  std::filesystem::remove_all(dir);
}

// A small valid file to mutate: one key, one F32 tensor of 2 x 32.
std::vector<uint8_t> base_file() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  static std::vector<float> data(64, 1.0f);
  EXPECT_TRUE(w.add_tensor("w", DType::F32, {2, 32}, data.data(), data.size() * 4).is_ok());
  return w.to_bytes();
}

// Byte offsets in base_file(): header 24; key "general.architecture" (8+20) type (4)
// string (8+5) -> 69; tensor name (8+1) n_dims (4) ne (16) type (4) offset (8) -> 110.
constexpr size_t kOffNTensors = 8, kOffNKv = 16, kOffKeyLen = 24, kOffValType = 52;
constexpr size_t kOffTensorName = 69, kOffNDims = 78, kOffNe0 = 82, kOffTType = 98, kOffTOff = 102;

std::string parse_error(const std::vector<uint8_t>& b) {
  auto f = GgufFile::parse(b.data(), b.size(), "test");
  return f.is_ok() ? "" : f.status().message();
}

template <typename T>
void poke(std::vector<uint8_t>& b, size_t off, T v) {
  std::memcpy(b.data() + off, &v, sizeof v);
}

TEST(GgufHostile, BaseFileParsesAndOffsetsAreRight) {
  auto b = base_file();
  ASSERT_EQ(parse_error(b), "");
  uint64_t name_len;
  std::memcpy(&name_len, b.data() + kOffTensorName, 8);
  EXPECT_EQ(name_len, 1u);
  uint32_t ttype;
  std::memcpy(&ttype, b.data() + kOffTType, 4);
  EXPECT_EQ(ttype, 0u);
}

TEST(GgufHostile, EachMalformationIsNamed) {
  struct Case {
    const char* what;
    std::function<void(std::vector<uint8_t>&)> mutate;
    const char* expect;  // substring of the error
  };
  const std::vector<Case> cases = {
      {"bad magic", [](auto& b) { b[0] = 'X'; }, "magic"},
      {"version 1", [](auto& b) { poke<uint32_t>(b, 4, 1); }, "version 1"},
      {"version 99", [](auto& b) { poke<uint32_t>(b, 4, 99); }, "version 99"},
      {"huge kv count", [](auto& b) { poke<uint64_t>(b, kOffNKv, 1ull << 60); }, "metadata count"},
      {"huge tensor count", [](auto& b) { poke<uint64_t>(b, kOffNTensors, 1ull << 60); },
       "tensor count"},
      {"key past end", [](auto& b) { poke<uint64_t>(b, kOffKeyLen, 1ull << 40); }, "past the end"},
      {"unknown value type", [](auto& b) { poke<uint32_t>(b, kOffValType, 77); },
       "unknown value type"},
      {"zero dims", [](auto& b) { poke<uint32_t>(b, kOffNDims, 0); }, "dimensions"},
      {"five dims", [](auto& b) { poke<uint32_t>(b, kOffNDims, 5); }, "dimensions"},
      {"zero dimension", [](auto& b) { poke<uint64_t>(b, kOffNe0, 0); }, "invalid dimension"},
      {"overflowing elements",
       [](auto& b) {
         poke<uint64_t>(b, kOffNe0, 1ull << 62);
         poke<uint64_t>(b, kOffNe0 + 8, 1ull << 62);
       },
       "overflow"},
      {"unknown tensor type", [](auto& b) { poke<uint32_t>(b, kOffTType, 999); },
       "unsupported type id 999"},
      {"row not a block multiple",
       [](auto& b) {
         poke<uint32_t>(b, kOffTType, 2);  // Q4_0 needs rows of 32: 32 is fine, make it 33
         poke<uint64_t>(b, kOffNe0, 33);
       },
       "block size"},
      {"misaligned offset", [](auto& b) { poke<uint64_t>(b, kOffTOff, 3); }, "alignment"},
      {"data past end", [](auto& b) { poke<uint64_t>(b, kOffTOff, 1ull << 32); }, "past the end"},
      {"truncated data", [](auto& b) { b.resize(b.size() - 16); }, "past the end"},
      {"truncated header", [](auto& b) { b.resize(20); }, "truncated"},
      {"empty", [](auto& b) { b.clear(); }, "too short"},
  };
  for (const auto& c : cases) {
    auto b = base_file();
    c.mutate(b);
    const std::string err = parse_error(b);
    EXPECT_NE(err, "") << c.what << ": accepted";
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.what << ": " << err;
    EXPECT_EQ(err.rfind("[gguf]", 0), 0u) << c.what << ": " << err;
  }
}

TEST(GgufHostile, DuplicatesAndNestedArraysAndAlignment) {
  {  // duplicate key: the writer replaces, so build two entries by hand via copy of bytes
    GgufWriter w;
    w.set_u32("k", 1);
    w.set_u32("kk", 2);
    auto b = w.to_bytes();
    // Rename "kk" to "k\0"-less duplicate: make its length 1.
    const size_t second_key = 24 + 8 + 1 + 4 + 4;
    poke<uint64_t>(b, second_key, 1);
    b.erase(b.begin() + long(second_key + 8 + 1));  // drop the second 'k'
    const std::string err = parse_error(b);
    EXPECT_NE(err.find("duplicate metadata key"), std::string::npos) << err;
  }
  {  // duplicate tensor name
    GgufWriter w;
    static std::vector<float> d(32, 0.0f);
    ASSERT_TRUE(w.add_tensor("a", DType::F32, {32}, d.data(), 128).is_ok());
    ASSERT_TRUE(w.add_tensor("b", DType::F32, {32}, d.data(), 128).is_ok());
    auto b = w.to_bytes();
    for (size_t i = 24; i + 9 < b.size(); ++i)
      if (b[i] == 1 && b[i + 8] == 'b' && b[i + 1] == 0) {
        b[i + 8] = 'a';
        break;
      }
    const std::string err = parse_error(b);
    EXPECT_NE(err.find("duplicate tensor name"), std::string::npos) << err;
  }
  {  // nested array
    GgufWriter w;
    w.set_array_i32("arr", {1, 2});
    auto b = w.to_bytes();
    poke<uint32_t>(b, 24 + 8 + 3 + 4, 9);  // element type := ARRAY
    const std::string err = parse_error(b);
    EXPECT_NE(err.find("nested arrays"), std::string::npos) << err;
  }
  {  // alignment that is not a power of two
    GgufWriter w;
    w.set_u32("general.alignment", 48);
    auto b = w.to_bytes();
    const std::string err = parse_error(b);
    EXPECT_NE(err.find("general.alignment"), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace hearth::gguf

namespace hearth::gguf {
namespace {

// A registry blob's first bytes are enough to know the model: the header alone parses to the
// same metadata and tensor table as the whole file; too short a prefix is an error, not a guess.
TEST(GgufHeader, PrefixParsesLikeTheWholeFile) {
  const std::string path = std::string(HEARTH_SHARED_DIR) + "/fixtures/qwen3-Q4_K_M.gguf";
  auto whole = GgufFile::open(path);
  ASSERT_TRUE(whole.is_ok()) << whole.status().message();
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const uint64_t n = (*whole)->data_offset();
  auto head = GgufFile::parse_header(buf.data(), size_t(n), buf.size());
  ASSERT_TRUE(head.is_ok()) << head.status().message();
  EXPECT_TRUE((*head)->header_only());
  EXPECT_EQ((*head)->file_size(), buf.size());
  EXPECT_EQ((*head)->metadata().size(), (*whole)->metadata().size());
  ASSERT_EQ((*head)->tensors().size(), (*whole)->tensors().size());
  for (size_t i = 0; i < (*head)->tensors().size(); ++i) {
    const auto &a = (*head)->tensors()[i], &b = (*whole)->tensors()[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.nbytes, b.nbytes);
    EXPECT_EQ(a.offset, b.offset);
    EXPECT_EQ(a.data, nullptr);
  }
  EXPECT_EQ(*(*head)->get_string("general.architecture"), "qwen3");
  auto cut = GgufFile::parse_header(buf.data(), size_t(n / 2), buf.size());
  ASSERT_FALSE(cut.is_ok());
  EXPECT_NE(cut.status().message().find("past the end"), std::string::npos)
      << cut.status().message();
  // A tensor that would end past the declared size is refused as for a whole file.
  EXPECT_FALSE(GgufFile::parse_header(buf.data(), size_t(n), n + 16).is_ok());
}

}  // namespace
}  // namespace hearth::gguf
