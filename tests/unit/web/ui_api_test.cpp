// The /ui/api routes in-process (src/web/ui_api.h): which paths they own, that the database
// opens only on first use, and that a database that cannot be opened is a 503 on /ui/api only.
// tests/differential/test_ui_history.py drives every endpoint through `hearth serve`.
#include "web/ui_api.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <random>
#include <tuple>
#include <vector>

namespace hearth::web {
namespace {

namespace fs = std::filesystem;

struct Answer : server::Responder {
  std::optional<server::HttpResponse> got;
  void send(server::HttpResponse r) override {
    ASSERT_FALSE(got) << "answered twice";
    got = std::move(r);
  }
  std::shared_ptr<server::Stream> stream(int, const std::string&) override {
    ADD_FAILURE() << "the UI API never streams";
    return nullptr;
  }
};

struct Reply {
  bool owned = false;
  int status = 0;
  json body;
};

Reply call(UiApi& api, const std::string& method, const std::string& path,
           const std::string& body = "", const std::string& query = "") {
  server::HttpRequest req;
  req.method = method;
  req.path = path;
  req.query = query;
  req.body = body;
  auto res = std::make_shared<Answer>();
  Reply r;
  r.owned = api.handle(req, res);
  if (!r.owned) {
    EXPECT_FALSE(res->got) << "answered a path it does not own";
    return r;
  }
  EXPECT_TRUE(res->got) << method << " " << path << " got no answer";
  if (!res->got) return r;
  r.status = res->got->status;
  if (!res->got->body.empty()) r.body = json::parse(res->got->body, nullptr, false);
  bool no_store = false;
  for (auto& [k, v] : res->got->headers) no_store |= k == "Cache-Control" && v == "no-store";
  EXPECT_TRUE(no_store) << path;
  if (r.status >= 400) {
    EXPECT_TRUE(r.body.is_object() && r.body.contains("error")) << res->got->body;
  }
  return r;
}

class UiApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/hearth-uiapi-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(UiApiTest, OwnsOnlyItsPathsAndOpensLazily) {
  const std::string db = dir_ + "/nested/deeper/ui.sqlite";
  UiApi api(db);
  EXPECT_FALSE(call(api, "GET", "/").owned);
  EXPECT_FALSE(call(api, "GET", "/api/tags").owned);
  EXPECT_FALSE(call(api, "GET", "/ui").owned);
  EXPECT_FALSE(call(api, "GET", "/ui/apix").owned);
  EXPECT_FALSE(fs::exists(db));
  // Routing and method errors need no database.
  EXPECT_EQ(call(api, "GET", "/ui/api").status, 404);
  EXPECT_EQ(call(api, "GET", "/ui/api/nope").status, 404);
  EXPECT_EQ(call(api, "GET", "/ui/api/chats/").status, 404);
  EXPECT_EQ(call(api, "PUT", "/ui/api/chats").status, 405);
  EXPECT_EQ(call(api, "GET", "/ui/api/import").status, 405);
  EXPECT_EQ(call(api, "POST", "/ui/api/chats", "{oops").status, 400);
  EXPECT_FALSE(fs::exists(db));
  auto r = call(api, "POST", "/ui/api/chats", "");
  EXPECT_EQ(r.status, 201);
  EXPECT_TRUE(fs::exists(db));
  struct stat st {};
  ASSERT_EQ(::stat((dir_ + "/nested").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  r = call(api, "GET", "/ui/api/chats", "", "limit=abc");
  EXPECT_EQ(r.status, 400);
  r = call(api, "GET", "/ui/api/chats", "", "limit=100000");  // capped, not refused
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body["chats"].size(), 1u);
}

TEST_F(UiApiTest, AnUnopenableDatabaseIs503) {
  // A folder where the file should be, and no path at all.
  fs::create_directories(dir_ + "/taken.sqlite");
  UiApi api(dir_ + "/taken.sqlite");
  for (int i = 0; i < 2; ++i) {  // tried again on each request
    auto r = call(api, "GET", "/ui/api/chats");
    EXPECT_EQ(r.status, 503);
    EXPECT_NE(r.body["error"].get<std::string>().find("taken.sqlite"), std::string::npos);
  }
  EXPECT_EQ(call(api, "GET", "/ui/api/nope").status, 404);
  UiApi none("", "no HOME");
  auto r = call(none, "GET", "/ui/api/export");
  EXPECT_EQ(r.status, 503);
  EXPECT_NE(r.body["error"].get<std::string>().find("HEARTH_UI_DB"), std::string::npos);
}

TEST_F(UiApiTest, RandomRequestsGetJsonAnswersBelow500) {
  // A small deterministic fuzz: paths, methods, queries and bodies assembled from pieces the
  // API gives meaning to (ids that exist, wrong types, hostile text), checked by call().
  UiApi api(dir_ + "/ui.sqlite");
  auto chat = call(api, "POST", "/ui/api/chats", R"({"title":"seed"})");
  const std::string cid = chat.body["id"];
  auto msg = call(api, "POST", "/ui/api/chats/" + cid + "/messages", R"({"role":"user"})");
  const std::string mid = msg.body["id"];
  const std::vector<std::string> ids = {cid, cid,  cid,   mid,   mid,    "",
                                        "x", "..", "%2e", "a b", "\xff", cid + "/"};
  const std::vector<std::string> paths = {"/ui/api/chats",
                                          "/ui/api/chats/$",
                                          "/ui/api/chats/$/messages",
                                          "/ui/api/chats/$/messages/$",
                                          "/ui/api/export",
                                          "/ui/api/import",
                                          "/ui/api/$",
                                          "/ui/api//chats"};
  const std::vector<std::string> methods = {"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD"};
  const std::vector<std::string> queries = {"",
                                            "limit=1",
                                            "limit=-5",
                                            "limit=99999999999",
                                            "cursor=$",
                                            "q=%22",
                                            "q=NEAR(%2A",
                                            "q=a&cursor=WyJyIiwtMSwiYSJd",
                                            "cursor=WyJ1IiwxZTMwMCwiYSJd",
                                            "q=%00%FF",
                                            "limit=&q=&cursor="};
  const std::vector<std::string> values = {"null",
                                           "true",
                                           "1",
                                           "-1",
                                           "1e308",
                                           "\"\"",
                                           "\"$\"",
                                           "[]",
                                           "{}",
                                           "[1,{\"a\":null}]",
                                           "\"\\u0000\"",
                                           "\"user\"",
                                           "\"assistant\"",
                                           "{\"temperature\":0.1}",
                                           "\"NEAR(\\\"\""};
  const std::vector<std::string> keys = {"title",    "model",      "system",    "options",
                                         "role",     "content",    "parent_id", "current_leaf",
                                         "thinking", "tool_calls", "extra",     "version",
                                         "chats",    "messages",   "id"};
  std::mt19937 rng(1234);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  auto fill = [&](std::string s) {
    for (size_t at; (at = s.find('$')) != std::string::npos;) s.replace(at, 1, pick(ids));
    return s;
  };
  std::map<int, int> statuses;
  for (int i = 0; i < 1500; ++i) {
    std::string body;
    switch (rng() % 4) {
      case 0:
        break;
      case 1:
        body = "{";
        for (int k = 0, n = int(rng() % 5); k < n; ++k) {
          if (k) body += ',';
          body += '"';
          body += pick(keys);
          body += "\":";
          body += fill(pick(values));
        }
        body += "}";
        break;
      case 2: {  // an import document with random chats
        body = R"({"version":1,"chats":[{"messages":[{"role":"user","parent_id":)" +
               fill(pick(values)) + "," + "\"" + pick(keys) + "\":" + fill(pick(values)) + "}]}]}";
        break;
      }
      default:
        body = fill(pick(values));
        if (rng() % 2) body.resize(rng() % (body.size() + 1));  // truncated
    }
    // Mostly a route with one of its methods, so the bodies reach the handlers.
    static const std::vector<std::pair<std::string, std::string>> routes = {
        {"GET", "/ui/api/chats"},
        {"POST", "/ui/api/chats"},
        {"GET", "/ui/api/chats/$"},
        {"PATCH", "/ui/api/chats/$"},
        {"PATCH", "/ui/api/chats/$"},
        {"GET", "/ui/api/chats/$"},
        {"POST", "/ui/api/chats/$/messages"},
        {"POST", "/ui/api/chats/$/messages"},
        {"DELETE", "/ui/api/chats/$/messages/$"},
        {"GET", "/ui/api/export"},
        {"POST", "/ui/api/import"},
        {"POST", "/ui/api/import"}};
    std::string method = pick(methods), path = pick(paths);
    if (rng() % 5) std::tie(method, path) = routes[rng() % routes.size()];
    Reply r = call(api, method, fill(path), body, fill(pick(queries)));
    ASSERT_TRUE(r.owned);
    ASSERT_LT(r.status, 500) << "request " << i << " body " << body;
    ++statuses[r.status];
  }
  for (auto [st, n] : statuses) std::printf("[ random requests ] %d: %d\n", st, n);
  EXPECT_EQ(call(api, "GET", "/ui/api/chats").status, 200);
}

}  // namespace
}  // namespace hearth::web
