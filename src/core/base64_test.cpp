#include "core/base64.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(Base64, Rfc4648TestVectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (auto [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(plain), encoded);
    EXPECT_EQ(base64_decode(encoded), plain);
  }
}

TEST(Base64, SaslPlainExample) {
  // RFC 4616 section 4: "\0tim\0tanstaaftanstaaf"
  EXPECT_EQ(base64_decode("AHRpbQB0YW5zdGFhZnRhbnN0YWFm"),
            std::string("\0tim\0tanstaaftanstaaf", 21));
}

TEST(Base64, RejectsMalformed) {
  for (auto bad : {"Zg", "Zg=", "Z===", "Zm9v YmFy", "Zg==Zg==", "Zm9*", "=Zm9"}) {
    EXPECT_FALSE(base64_decode(bad)) << bad;
  }
}

}  // namespace
}  // namespace sluice
