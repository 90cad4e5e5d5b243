// `sluice classify`: classifies SMTP replies as sluice does while delivering (doc/classify.md).
//   sluice classify "421 4.7.0 Too many connections" [--stage banner] [--provider gmail]
//   printf 'banner\t421 4.7.0 …\n' | sluice classify --json
// One reply as an argument, or one per line on standard input, optionally "stage<TAB>reply".
#pragma once

#include <string>

namespace sluice {

struct ClassifyOptions {
  std::string reply;              // "" or "-" = read standard input, one reply per line
  std::string stage = "unknown";  // for replies without their own stage
  std::string provider;
  bool others_open = false;
  std::string rules;  // "" = the built-in rules
  bool json = false;
  bool evidence = false;  // with json: the phrases' weights per category and the model's guess
};

// 0 when every reply was read, 65 (EX_DATAERR) when a line was not a reply, 78 for bad rules.
int classify_replies(const ClassifyOptions& options);

}  // namespace sluice
