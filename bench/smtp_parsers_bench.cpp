// Throughput of the sans-I/O SMTP core: replies parsed, commands parsed, DATA octets coded per
// second. Run: build/release/bench/smtp_parsers_bench (see bench/README.md for recorded figures).
#include <benchmark/benchmark.h>

#include <string>

#include "smtp/command.h"
#include "smtp/data_codec.h"
#include "smtp/reply_parser.h"

namespace {

using namespace sluice::smtp;

void parse_replies(benchmark::State& state, const std::string& one) {
  // A pipelined stream of 64 replies, as a client reads them from one socket buffer.
  std::string stream;
  for (int i = 0; i < 64; ++i) stream += one;
  ReplyParser parser;
  size_t replies = 0;
  for (auto _ : state) {
    std::string_view in = stream;
    while (auto r = parser.next(in)) {
      benchmark::DoNotOptimize(r->ok());
      ++replies;
    }
  }
  state.counters["replies/s"] = benchmark::Counter(double(replies), benchmark::Counter::kIsRate);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(stream.size()));
}

void BM_ReplySingleLine(benchmark::State& state) {
  parse_replies(state, "250 2.0.0 Ok: queued as 4Xk2Lq0bVHz1\r\n");
}
BENCHMARK(BM_ReplySingleLine);

void BM_ReplyThrottle(benchmark::State& state) {
  parse_replies(state,
                "421-4.7.0 Try again later, closing connection. (EHLO)\r\n"
                "421-4.7.0 For more information, go to\r\n"
                "421 4.7.0  https://support.google.com/a/answer/3221692 - gsmtp\r\n");
}
BENCHMARK(BM_ReplyThrottle);

void BM_ReplyEhlo(benchmark::State& state) {
  parse_replies(state,
                "250-mx.example.com at your service\r\n250-SIZE 35882577\r\n250-8BITMIME\r\n"
                "250-STARTTLS\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n"
                "250-CHUNKING\r\n250 SMTPUTF8\r\n");
}
BENCHMARK(BM_ReplyEhlo);

void parse_commands(benchmark::State& state, const std::string& line) {
  size_t n = 0;
  for (auto _ : state) {
    auto r = parse_command(line);
    benchmark::DoNotOptimize(r.ok());
    ++n;
  }
  state.counters["commands/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsRate);
}

void BM_CommandMail(benchmark::State& state) {
  parse_commands(
      state,
      "MAIL FROM:<bounce-1234@news.example.com> SIZE=4096 BODY=8BITMIME RET=HDRS ENVID=abc123");
}
BENCHMARK(BM_CommandMail);

void BM_CommandRcpt(benchmark::State& state) {
  parse_commands(state,
                 "RCPT TO:<someone.else@example.org> NOTIFY=FAILURE,DELAY "
                 "ORCPT=rfc822;someone.else@example.org");
}
BENCHMARK(BM_CommandRcpt);

std::string sample_message(size_t size) {
  std::string m = "From: a@example.com\r\nTo: b@example.org\r\nSubject: bench\r\n\r\n";
  while (m.size() < size)
    m += (m.size() % 5 == 0
              ? ".dotted line of text\r\n"
              : "a line of ordinary body text, about seventy octets long, as mail is.\r\n");
  return m;
}

void BM_DataDecode(benchmark::State& state) {
  DataEncoder enc;
  std::string wire;
  enc.encode(sample_message(size_t(state.range(0))), &wire);
  enc.finish(&wire);
  std::string out;
  for (auto _ : state) {
    DataDecoder dec;
    out.clear();
    auto s = dec.decode(wire, &out);
    benchmark::DoNotOptimize(s.done);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(wire.size()));
}
BENCHMARK(BM_DataDecode)->Arg(4 << 10)->Arg(100 << 10);

void BM_DataEncode(benchmark::State& state) {
  const std::string msg = sample_message(size_t(state.range(0)));
  std::string out;
  for (auto _ : state) {
    DataEncoder enc;
    out.clear();
    enc.encode(msg, &out);
    enc.finish(&out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(msg.size()));
}
BENCHMARK(BM_DataEncode)->Arg(4 << 10)->Arg(100 << 10);

}  // namespace

BENCHMARK_MAIN();
