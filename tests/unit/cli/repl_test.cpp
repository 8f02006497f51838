// The interactive chat's input language and the CLI's formatting, without a terminal or server.
#include "cli/client/repl.h"

#include <gtest/gtest.h>

#include "cli/client/format.h"

namespace hearth::cli {
namespace {

using K = ReplAction::Kind;

TEST(Repl, MessagesAndMultiline) {
  ReplInput in;
  EXPECT_EQ(in.feed("").kind, K::kNone);
  auto a = in.feed("  hello there  ");
  EXPECT_EQ(a.kind, K::kMessage);
  EXPECT_EQ(a.text, "hello there");
  EXPECT_EQ(in.feed("\"\"\"first line").kind, K::kNone);
  EXPECT_TRUE(in.continuing());
  EXPECT_EQ(in.feed("  second /line").kind, K::kNone);  // slashes inside are text
  a = in.feed("third\"\"\"");
  EXPECT_FALSE(in.continuing());
  EXPECT_EQ(a.kind, K::kMessage);
  EXPECT_EQ(a.text, "first line\n  second /line\nthird");
  a = in.feed("\"\"\"all on one line\"\"\"");
  EXPECT_EQ(a.kind, K::kMessage);
  EXPECT_EQ(a.text, "all on one line");
}

TEST(Repl, SlashCommands) {
  ReplInput in;
  EXPECT_EQ(in.feed("/bye").kind, K::kBye);
  EXPECT_EQ(in.feed("/exit").kind, K::kBye);
  EXPECT_EQ(in.feed("/?").kind, K::kHelp);
  EXPECT_EQ(in.feed("/clear").kind, K::kClear);
  auto a = in.feed("/set parameter temperature 0.5");
  EXPECT_EQ(a.kind, K::kSetParam);
  EXPECT_EQ(a.name, "temperature");
  EXPECT_EQ(a.text, "0.5");
  a = in.feed("/set system You are a pirate.");
  EXPECT_EQ(a.kind, K::kSetSystem);
  EXPECT_EQ(a.text, "You are a pirate.");
  EXPECT_EQ(in.feed("/set system \"\"\"Line one").kind, K::kNone);
  a = in.feed("line two\"\"\"");
  EXPECT_EQ(a.kind, K::kSetSystem);
  EXPECT_EQ(a.text, "Line one\nline two");
  a = in.feed("/set format json");
  EXPECT_EQ(a.kind, K::kSetFormat);
  EXPECT_EQ(a.text, "json");
  EXPECT_EQ(in.feed("/set noformat").text, "");
  EXPECT_TRUE(in.feed("/set verbose").flag);
  EXPECT_FALSE(in.feed("/set quiet").flag);
  a = in.feed("/show modelfile");
  EXPECT_EQ(a.kind, K::kShow);
  EXPECT_EQ(a.text, "modelfile");
  a = in.feed("/load other:latest");
  EXPECT_EQ(a.kind, K::kLoad);
  EXPECT_EQ(a.text, "other:latest");
  EXPECT_EQ(in.feed("/save mine").kind, K::kSave);
  EXPECT_EQ(in.feed("/show nonsense").kind, K::kError);
  EXPECT_EQ(in.feed("/frobnicate").kind, K::kError);
  EXPECT_EQ(in.feed("/set parameter temperature").kind, K::kError);
  EXPECT_EQ(in.feed("/load").kind, K::kError);
  a = in.feed("/set think");
  EXPECT_EQ(a.kind, K::kSetThink);
  EXPECT_EQ(a.text, "true");
  EXPECT_EQ(in.feed("/set think high").text, "high");
  EXPECT_EQ(in.feed("/set nothink").text, "false");
  EXPECT_EQ(in.feed("/set think hard").kind, K::kError);
}

TEST(Format, WordWrapAtWordBoundaries) {
  // Fed in pieces that split words and characters: lines break between words only.
  WordWrapper w(12);
  std::string out;
  for (const char* piece : {"The quick br", "own fox jum", "ps over the ", "lazy d\xc3",
                            "\xb6g and ", "an extraordinarily long word\nnew line"})
    out += w.feed(piece);
  out += w.flush();
  EXPECT_EQ(out,
            "The quick \nbrown fox \njumps over \nthe lazy d\xc3\xb6g\nand an \n"
            "extraordinarily\nlong word\nnew line");
  WordWrapper off(0);
  EXPECT_EQ(off.feed("no wrapping at all here"), "no wrapping at all here");
}

TEST(Repl, SessionParametersAreTyped) {
  ReplSession s;
  EXPECT_EQ(s.set_parameter("temperature", "0.25"), "Set parameter 'temperature' to '0.25'");
  EXPECT_DOUBLE_EQ(s.params["temperature"].get<double>(), 0.25);
  s.set_parameter("num_ctx", "2048");
  EXPECT_TRUE(s.params["num_ctx"].is_number_integer());
  s.set_parameter("stop", "<|a|> <|b|>");
  EXPECT_EQ(s.params["stop"], nlohmann::ordered_json::array({"<|a|>", "<|b|>"}));
  EXPECT_NE(s.set_parameter("temperature", "hot").find("Couldn't set parameter"),
            std::string::npos);
  EXPECT_NE(s.set_parameter("bogus", "1").find("unknown parameter"), std::string::npos);
}

TEST(Format, SizesTimesTables) {
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(4225280), "4.2 MB");
  EXPECT_EQ(human_bytes(26000000), "26 MB");
  EXPECT_EQ(human_bytes(4700000000), "4.7 GB");
  EXPECT_EQ(human_since(1000, 1000), "Less than a second ago");
  EXPECT_EQ(human_since(1000, 1120), "2 minutes ago");
  EXPECT_EQ(human_since(1300, 1000), "5 minutes from now");
  EXPECT_EQ(human_since(0, 3 * 86400), "3 days ago");
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:01:40.5Z"), 100);
  EXPECT_EQ(parse_rfc3339("1970-01-01T02:00:00+02:00"), 0);
  EXPECT_EQ(parse_rfc3339("garbage"), 0);
  EXPECT_EQ(table({{"NAME", "ID"}, {"tiny:latest", "abc"}}),
            "NAME           ID\ntiny:latest    abc\n");
  const std::string bar = progress_bar("copying", 50, 100, 10);
  EXPECT_NE(bar.find(" 50%"), std::string::npos);
}

}  // namespace
}  // namespace hearth::cli
