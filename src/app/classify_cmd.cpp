#include "app/classify_cmd.h"

#include <cstdio>
#include <iostream>

#include "classify/classifier.h"
#include "core/json.h"
#include "core/text.h"

namespace sluice {
namespace {

// A stage as operators write it: sluice's names in any case, and the SMTP commands ("RCPT TO",
// "HELO", "end of DATA", "greeting").
std::optional<classify::Stage> stage_named(std::string_view name) {
  std::string n = to_lower(name);
  for (char& c : n) {
    if (c == '_' || c == ' ') c = '-';
  }
  if (auto s = classify::parse_stage(n)) return s;
  static constexpr std::pair<std::string_view, classify::Stage> kAliases[] = {
      {"greeting", classify::Stage::kBanner},
      {"connection", classify::Stage::kConnect},
      {"helo", classify::Stage::kEhlo},
      {"lhlo", classify::Stage::kEhlo},
      {"tls", classify::Stage::kStartTls},
      {"mail-from", classify::Stage::kMail},
      {"rcpt-to", classify::Stage::kRcpt},
      {"bdat", classify::Stage::kEndOfData},
      {"end-of-data", classify::Stage::kEndOfData},
      {"eod", classify::Stage::kEndOfData},
      {"dot", classify::Stage::kEndOfData},
      {"data-end", classify::Stage::kEndOfData},
      {"", classify::Stage::kUnknown},
      {"-", classify::Stage::kUnknown},
  };
  for (const auto& [alias, stage] : kAliases) {
    if (n == alias) return stage;
  }
  return std::nullopt;
}

// What weighed in a verdict: {"evidence":{"policy":6,"reputation":10},"phrase":"…",
// "model":{"category":"…","probability":0.93}} (the model only when it was asked).
void add_evidence(JsonLine& j, const classify::Evidence& why) {
  std::string weights = "{";
  for (size_t c = 0; c < why.weight.size(); ++c) {
    if (why.weight[c] == 0) continue;
    if (weights.size() > 1) weights += ',';
    weights += '"';
    weights += classify::category_name(static_cast<classify::Category>(c));
    weights += "\":";
    weights += std::to_string(static_cast<int64_t>(why.weight[c]));
  }
  weights += '}';
  j.raw("evidence", weights).str("phrase", why.phrase);
  if (why.model) {
    JsonLine m;
    char p[32];
    std::snprintf(p, sizeof p, "%.4f", why.model->probability);
    m.str("category", classify::category_name(why.model->category)).raw("probability", p);
    std::string object = m.finish();
    while (!object.empty() && object.back() == '\n') object.pop_back();
    j.raw("model", object);
  }
}

// Prints one verdict; an error message when the line is not a reply. `line` is "REPLY" or
// "STAGE<TAB>REPLY"; a log that names the stage ("in reply to RCPT TO command") names it when
// the line does not.
std::string classify_line(const classify::Classifier& c, const ClassifyOptions& o,
                          std::string_view line, classify::Stage default_stage) {
  std::optional<classify::Stage> stage;
  if (const size_t tab = line.find('\t'); tab != std::string_view::npos) {
    const std::string_view name = trim(line.substr(0, tab));
    stage = stage_named(name);
    if (!stage) return "unknown stage '" + std::string(name) + "' before the tab";
    line = line.substr(tab + 1);
  }
  auto pasted = classify::parse_pasted_reply(line);
  if (!pasted) return pasted.error().message;
  const smtp::Reply& reply = pasted->reply;
  if (!stage) stage = pasted->stage.value_or(default_stage);
  classify::Input in;
  in.stage = *stage;
  in.reply = &reply;
  in.provider = o.provider;
  in.others_open = o.others_open;
  in.context = pasted->context;
  classify::Evidence why;
  const classify::Verdict v = c.classify(in, o.evidence ? &why : nullptr);
  const std::string_view severity = v.category == classify::Category::kDelivered ? "none"
                                    : v.hard                                     ? "hard"
                                                                                 : "soft";
  if (o.json) {
    JsonLine j;
    j.str("category", classify::category_name(v.category))
        .str("severity", severity)
        .str("action", classify::action_name(v.action))
        .str("provider", o.provider)
        .str("rule", v.rule)
        .str("stage", classify::stage_name(*stage))
        .num("code", reply.code)
        .str("enhanced", reply.enhanced ? reply.enhanced->str() : std::string())
        .str("text", reply.text());
    if (o.evidence) add_evidence(j, why);
    std::fputs(j.finish().c_str(), stdout);
  } else {
    std::printf("%s %s %s provider=%s rule=%s stage=%s\n",
                std::string(classify::category_name(v.category)).c_str(),
                std::string(severity).c_str(), std::string(classify::action_name(v.action)).c_str(),
                o.provider.empty() ? "-" : o.provider.c_str(), std::string(v.rule).c_str(),
                std::string(classify::stage_name(*stage)).c_str());
  }
  return {};
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
  auto stage = stage_named(o.stage);
  if (!stage) {
    std::fprintf(stderr,
                 "sluice classify: --stage: expected dns, connect, banner, ehlo, starttls, mail, "
                 "rcpt, data, end-of-data or unknown\n");
    return 64;
  }
  if (!o.reply.empty() && o.reply != "-") {
    const std::string err = classify_line(*c, o, o.reply, *stage);
    if (err.empty()) return 0;
    std::fprintf(stderr, "sluice classify: %s\n", err.c_str());
    return 65;
  }
  // One reply per line; a bad line is reported with its number and the rest still classified.
  int rc = 0;
  std::string line;
  for (size_t number = 1; std::getline(std::cin, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trim(line).empty()) continue;
    const std::string err = classify_line(*c, o, line, *stage);
    if (!err.empty()) {
      std::fprintf(stderr, "sluice classify: line %zu: %s\n", number, err.c_str());
      rc = 65;
    }
    std::fflush(stdout);
  }
  return rc;
}

}  // namespace sluice
