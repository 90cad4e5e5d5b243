#include "app/classify_cmd.h"

#include <cstdio>
#include <iostream>

#include "classify/classifier.h"
#include "core/json.h"
#include "core/text.h"

namespace sluice {
namespace {

// Prints one verdict; false when the line is not a reply.
bool classify_line(const classify::Classifier& c, const ClassifyOptions& o, std::string_view line,
                   classify::Stage default_stage) {
  classify::Stage stage = default_stage;
  if (const size_t tab = line.find('\t'); tab != std::string_view::npos) {
    auto s = classify::parse_stage(trim(line.substr(0, tab)));
    if (!s) {
      std::fprintf(stderr, "sluice classify: unknown stage '%.*s'\n", static_cast<int>(tab),
                   line.data());
      return false;
    }
    stage = *s;
    line = line.substr(tab + 1);
  }
  auto reply = classify::parse_reply_line(line);
  if (!reply) {
    std::fprintf(stderr, "sluice classify: %s\n", reply.error().message.c_str());
    return false;
  }
  classify::Input in;
  in.stage = stage;
  in.reply = &*reply;
  in.provider = o.provider;
  in.others_open = o.others_open;
  const classify::Verdict v = c.classify(in);
  const std::string_view severity = v.category == classify::Category::kDelivered ? "none"
                                    : v.hard                                      ? "hard"
                                                                                  : "soft";
  if (o.json) {
    JsonLine j;
    j.str("category", classify::category_name(v.category))
        .str("severity", severity)
        .str("action", classify::action_name(v.action))
        .str("provider", o.provider)
        .str("rule", v.rule)
        .str("stage", classify::stage_name(stage))
        .num("code", reply->code)
        .str("enhanced", reply->enhanced ? reply->enhanced->str() : std::string())
        .str("text", reply->text());
    std::fputs(j.finish().c_str(), stdout);
  } else {
    std::printf("%s %s %s provider=%s rule=%s stage=%s\n",
                std::string(classify::category_name(v.category)).c_str(),
                std::string(severity).c_str(), std::string(classify::action_name(v.action)).c_str(),
                o.provider.empty() ? "-" : o.provider.c_str(), std::string(v.rule).c_str(),
                std::string(classify::stage_name(stage)).c_str());
  }
  return true;
}

}  // namespace

int classify_replies(const ClassifyOptions& o) {
  classify::Classifier loaded;
  const classify::Classifier* c = &classify::Classifier::builtin();
  if (!o.rules.empty()) {
    auto r = classify::Classifier::load(o.rules);
    if (!r) {
      std::fprintf(stderr, "sluice classify: %s\n", r.error().message.c_str());
      return 78;
    }
    loaded = std::move(*r);
    c = &loaded;
  }
  auto stage = classify::parse_stage(o.stage);
  if (!stage) {
    std::fprintf(stderr,
                 "sluice classify: --stage: expected dns, connect, banner, ehlo, starttls, mail, "
                 "rcpt, data or end-of-data\n");
    return 64;
  }
  if (!o.reply.empty()) return classify_line(*c, o, o.reply, *stage) ? 0 : 65;
  int rc = 0;
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    if (!classify_line(*c, o, line, *stage)) rc = 65;
    std::fflush(stdout);
  }
  return rc;
}

}  // namespace sluice
