#include "smtp/data_codec.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::smtp {
namespace {

struct Decoded {
  std::string content;
  DataError error = DataError::kNone;
  bool done = false;
  std::string rest;  // input bytes after the end marker
};

// Feeds `wire` to a decoder in pieces of `step` bytes.
Decoded decode(const std::string& wire, size_t step = SIZE_MAX, uint64_t max_size = 0) {
  DataDecoder d(max_size);
  Decoded out;
  size_t pos = 0;
  while (pos < wire.size() && !out.done) {
    const std::string_view piece = std::string_view(wire).substr(pos, step);
    const auto s = d.decode(piece, &out.content);
    pos += s.consumed;
    out.done = s.done;
    if (!s.done) {
      EXPECT_EQ(s.consumed, piece.size());
    }
  }
  out.rest = wire.substr(pos);
  out.error = d.error();
  return out;
}

std::string encode(const std::string& content, size_t step = SIZE_MAX) {
  DataEncoder e;
  std::string out;
  for (size_t i = 0; i < content.size(); i += step)
    e.encode(std::string_view(content).substr(i, step), &out);
  e.finish(&out);
  return out;
}

TEST(DataDecoder, UnstuffsLeadingDotsAsRfc5321Section4_5_2) {
  const auto d = decode("Subject: x\r\n\r\n..leading dot\r\n...two\r\nmid.dot\r\n.\r\n");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.error, DataError::kNone);
  EXPECT_EQ(d.content, "Subject: x\r\n\r\n.leading dot\r\n..two\r\nmid.dot\r\n");
}

TEST(DataDecoder, EmptyMessage) {
  const auto d = decode(".\r\n");
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.content, "");
}

TEST(DataDecoder, StopsExactlyAtTheMarkerAndLeavesPipelinedBytes) {
  for (size_t step : {1, 2, 3, 5, 1000}) {
    const auto d = decode("a\r\nb\r\n.\r\nQUIT\r\n", step);
    EXPECT_TRUE(d.done);
    EXPECT_EQ(d.content, "a\r\nb\r\n");
    EXPECT_EQ(d.rest, "QUIT\r\n") << step;
  }
}

TEST(DataDecoder, PieceSizeNeverChangesTheResult) {
  std::string wire;
  for (int i = 0; i < 200; ++i)
    wire += (i % 7 == 0 ? ".." : "") + std::string(i % 90, 'x') + "\r\n";
  wire += ".\r\n";
  const auto whole = decode(wire);
  for (size_t step = 1; step < 40; ++step) EXPECT_EQ(decode(wire, step).content, whole.content);
}

TEST(DataDecoder, SmugglingEndMarkersNeverEndTheMessage) {
  // Each of these is an end-of-data marker some server once accepted. sluice reads on to the
  // strict CRLF.CRLF, refuses the whole message, and never sees the smuggled MAIL as a command.
  const std::string smuggled = "MAIL FROM:<evil@x>\r\nRCPT TO:<v@y>\r\nDATA\r\nforged\r\n";
  struct Case {
    const char* marker;
    DataError error;
  } cases[] = {{"\n.\n", DataError::kBareLf},   {"\n.\r\n", DataError::kBareLf},
               {"\r\n.\n", DataError::kBareLf}, {"\r.\r", DataError::kBareCr},
               {"\r.\r\n", DataError::kBareCr}, {"\r\n.\r", DataError::kBareCr}};
  for (const auto& c : cases) {
    const std::string marker = c.marker;
    for (size_t step : {1, 3, 4096}) {
      const auto d = decode("hello" + marker + smuggled + ".\r\nQUIT\r\n", step);
      EXPECT_TRUE(d.done);
      EXPECT_EQ(d.rest, "QUIT\r\n");
      EXPECT_EQ(d.error, c.error) << step;
      EXPECT_EQ(d.content.find("MAIL FROM"), std::string::npos) << "content is discarded";
    }
  }
}

TEST(DataDecoder, BareLineEndingsAreRefusedWithAClearReply) {
  const auto lf = decode("line one\nline two\r\n.\r\n");
  EXPECT_EQ(lf.error, DataError::kBareLf);
  DataDecoder d;
  std::string out;
  (void)d.decode("x\ny\r\n.\r\n", &out);
  EXPECT_EQ(d.error_reply().code, 550);
  EXPECT_EQ(d.error_reply().enhanced->str(), "5.6.0");
  EXPECT_NE(d.error_reply().text().find("bare LF"), std::string::npos);
  EXPECT_EQ(decode("a\rb\r\n.\r\n").error, DataError::kBareCr);
  EXPECT_EQ(decode("a\r\r\n.\r\n").error, DataError::kBareCr);
  EXPECT_EQ(decode(".\rx\r\n.\r\n").error, DataError::kBareCr);
}

TEST(DataDecoder, NulOctetsAreRefusedAndTheMarkerStillEndsTheMessage) {
  // (Built with append: GCC 12 warns wrongly about "literal" + std::string here.)
  for (const char* around : {"a|b", "|", ".|"}) {
    std::string wire = around;
    wire.replace(wire.find('|'), 1, 1, '\0');
    wire.append("\r\n.\r\nMAIL");
    for (size_t step : {size_t{1}, size_t{3}, SIZE_MAX}) {
      const auto d = decode(wire, step);
      EXPECT_EQ(d.error, DataError::kNul);
      EXPECT_TRUE(d.done);
      EXPECT_EQ(d.rest, "MAIL");
    }
  }
  DataDecoder d;
  std::string out;
  std::string wire = "x|y\r\n.\r\n";
  wire[1] = '\0';
  (void)d.decode(wire, &out);
  EXPECT_EQ(d.error_reply().code, 550);
  EXPECT_EQ(d.error_reply().enhanced->str(), "5.6.0");
}

TEST(DataDecoder, LineLimitIs1000OctetsIncludingCrlf) {
  EXPECT_EQ(decode(std::string(998, 'x') + "\r\n.\r\n").error, DataError::kNone);
  EXPECT_EQ(decode(std::string(999, 'x') + "\r\n.\r\n").error, DataError::kLineTooLong);
  // The stuffed dot counts: it is on the wire.
  EXPECT_EQ(decode(std::string(".").append(998, 'x').append("\r\n.\r\n")).error, DataError::kLineTooLong);
  EXPECT_EQ(decode(std::string(".").append(997, 'x').append("\r\n.\r\n")).error, DataError::kNone);
  const auto d = decode(std::string(5000, 'x') + "\r\nQUIT\r\n.\r\nNOOP\r\n", 7);
  EXPECT_TRUE(d.done);
  EXPECT_EQ(d.rest, "NOOP\r\n");
}

TEST(DataDecoder, SizeLimitStopsStoringButReadsToTheEnd) {
  const std::string body = std::string(100, 'x') + "\r\n";
  const auto ok = decode(body + ".\r\n", SIZE_MAX, body.size());
  EXPECT_EQ(ok.error, DataError::kNone);
  DataDecoder d(50);
  std::string out;
  const auto s = d.decode(body + body + ".\r\nNEXT", &out);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(d.error(), DataError::kTooBig);
  EXPECT_EQ(d.size(), 2 * body.size());
  EXPECT_LE(out.size(), 50u);
  EXPECT_EQ(d.error_reply().code, 552);
  EXPECT_EQ(d.error_reply().enhanced->str(), "5.3.4");
}

TEST(DataEncoder, StuffsDotsAndTerminates) {
  EXPECT_EQ(encode("a\r\n.b\r\n..c\r\n.\r\n"), "a\r\n..b\r\n...c\r\n..\r\n.\r\n");
  EXPECT_EQ(encode(""), ".\r\n");
  EXPECT_EQ(encode("no newline"), "no newline\r\n.\r\n");
  EXPECT_EQ(encode(".x"), "..x\r\n.\r\n");
}

TEST(DataEncoder, NormalisesBareLineEndingsToCrlf) {
  EXPECT_EQ(encode("a\nb\rc\r\n"), "a\r\nb\r\nc\r\n.\r\n");
  EXPECT_EQ(encode("a\n.\nb"), "a\r\n..\r\nb\r\n.\r\n");
  for (size_t step : {1, 2, 3}) {
    EXPECT_EQ(encode("a\r\n.b\r\rc\n", step), "a\r\n..b\r\n\r\nc\r\n.\r\n") << step;
  }
}

TEST(DataCodec, RoundTrip) {
  const std::string content = "From: a@b\r\nSubject: dots\r\n\r\n.\r\n..\r\n. \r\nend.\r\n.x\r\n";
  for (size_t step : {1, 2, 5, 100}) {
    const auto d = decode(encode(content, step), step);
    EXPECT_TRUE(d.done);
    EXPECT_EQ(d.error, DataError::kNone);
    EXPECT_EQ(d.content, content);
  }
}

}  // namespace
}  // namespace sluice::smtp
