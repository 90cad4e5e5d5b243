#include "smtp/line_framer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace sluice::smtp {
namespace {

// Feeds `input` in pieces of `step` bytes, as a socket might, and records every frame.
std::vector<std::string> frames(const std::string& input, size_t step, size_t max = 512) {
  LineFramer f(max);
  std::string buffer;
  std::vector<std::string> out;
  for (size_t i = 0; i < input.size(); i += step) {
    buffer += input.substr(i, step);
    for (;;) {
      auto fr = f.next(buffer);
      const std::string line(fr.line);  // fr.line points into buffer: copy before erasing
      buffer.erase(0, fr.consumed);
      if (fr.kind == LineFramer::Kind::kNeedMore) break;
      if (fr.kind == LineFramer::Kind::kLine) out.push_back("line:" + line);
      if (fr.kind == LineFramer::Kind::kTooLong) out.push_back("too-long");
      if (fr.kind == LineFramer::Kind::kBareLf) out.push_back("bare-lf:" + line);
    }
  }
  return out;
}

TEST(LineFramer, SplitsPipelinedCommands) {
  const std::string in = "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n";
  const std::vector<std::string> want = {"line:MAIL FROM:<a@b>", "line:RCPT TO:<c@d>", "line:DATA"};
  for (size_t step : {1, 2, 7, 1000}) EXPECT_EQ(frames(in, step), want) << step;
}

TEST(LineFramer, OverlongLineIsReportedOnceAndSkipped) {
  const std::string in = "NOOP " + std::string(2000, 'x') + "\r\nQUIT\r\n";
  const std::vector<std::string> want = {"too-long", "line:QUIT"};
  for (size_t step : {1, 100, 600, 5000}) EXPECT_EQ(frames(in, step), want) << step;
}

TEST(LineFramer, LimitIsExact) {
  EXPECT_EQ(frames(std::string(10, 'a') + "\r\n", 1, 10),
            std::vector<std::string>{"line:" + std::string(10, 'a')});
  EXPECT_EQ(frames(std::string(11, 'a') + "\r\nX\r\n", 3, 10),
            (std::vector<std::string>{"too-long", "line:X"}));
}

TEST(LineFramer, BareLfIsReported) {
  EXPECT_EQ(frames("NOOP\nQUIT\r\n", 1), (std::vector<std::string>{"bare-lf:NOOP", "line:QUIT"}));
  EXPECT_EQ(frames("\r\n", 1), std::vector<std::string>{"line:"});
}

}  // namespace
}  // namespace sluice::smtp
