#include "core/json.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(Json, BuildsOneLineObjects) {
  const std::string line = JsonLine()
                               .str("event", "Reception")
                               .num("n", -3)
                               .unum("u", 7)
                               .boolean("tls", true)
                               .raw("a", "[1]")
                               .finish();
  EXPECT_EQ(line, "{\"event\":\"Reception\",\"n\":-3,\"u\":7,\"tls\":true,\"a\":[1]}\n");
}

TEST(Json, EscapesEverythingThatMustBe) {
  std::string out;
  append_json_string(out, "q\"b\\n\nr\rt\t\x01\x7f");
  EXPECT_EQ(out, R"("q\"b\\n\nr\rt\t\u0001\u007f")");
  out.clear();
  append_json_string(out, "j\xc3\xb6rg \xff");  // valid UTF-8 kept, invalid octet escaped
  EXPECT_EQ(out, "\"j\xc3\xb6rg \\u00ff\"");
}

TEST(Json, TimestampIsRfc3339Utc) {
  const std::string line = JsonLine().timestamp().finish();
  EXPECT_EQ(line.size(), std::string(R"({"ts":"2026-11-28T10:00:00.000Z"})").size() + 1);
  EXPECT_NE(line.find("Z\"}"), std::string::npos);
}

}  // namespace
}  // namespace sluice
