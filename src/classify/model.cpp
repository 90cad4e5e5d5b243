#include "classify/model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "core/text.h"

namespace sluice::classify {
namespace {

// The categories in the model's order: alphabetical by name (the training script's order).
constexpr std::array<Category, 12> kOrder = {
    Category::kAuthentication, Category::kConnectionLimit, Category::kDns,
    Category::kGreylist,       Category::kMailboxFull,     Category::kNetwork,
    Category::kOther,          Category::kPolicy,          Category::kRateLimit,
    Category::kReputation,     Category::kTls,             Category::kUserUnknown};

bool digit(char c) {
  return c >= '0' && c <= '9';
}

// The first reply code standing alone in s: [245]dd not next to a digit or a dot.
std::optional<std::string_view> find_code(std::string_view s) {
  for (size_t i = 0; i + 3 <= s.size(); ++i) {
    if ((s[i] != '2' && s[i] != '4' && s[i] != '5') || !digit(s[i + 1]) || !digit(s[i + 2]))
      continue;
    if (i > 0 && (digit(s[i - 1]) || s[i - 1] == '.')) continue;
    if (i + 3 < s.size() && (digit(s[i + 3]) || s[i + 3] == '.')) continue;
    return s.substr(i, 3);
  }
  return std::nullopt;
}

// The first enhanced code: [245].d{1,3}.d{1,3}, not after a digit or a dot, not before a digit.
std::optional<std::string_view> find_enhanced(std::string_view s, size_t* subject_end) {
  for (size_t i = 0; i + 5 <= s.size(); ++i) {
    if ((s[i] != '2' && s[i] != '4' && s[i] != '5') || s[i + 1] != '.') continue;
    if (i > 0 && (digit(s[i - 1]) || s[i - 1] == '.')) continue;
    size_t j = i + 2, k = j;
    while (k < s.size() && digit(s[k])) ++k;
    if (k == j || k - j > 3 || k >= s.size() || s[k] != '.') continue;
    const size_t sub_end = k;
    j = k + 1;
    k = j;
    while (k < s.size() && digit(s[k])) ++k;
    if (k == j || k - j > 3) continue;
    *subject_end = sub_end - i;
    return s.substr(i, k - i);
  }
  return std::nullopt;
}

}  // namespace

std::vector<std::string> WordModel::features(std::string_view text, std::string_view stage) {
  std::vector<std::string> out;
  std::vector<std::string> tokens;
  std::string cur;
  auto flush = [&] {
    if (cur.size() >= 2) tokens.push_back(cur);
    cur.clear();
  };
  for (char ch : text) {
    auto b = static_cast<unsigned char>(ch);
    if (b >= 'A' && b <= 'Z') b = static_cast<unsigned char>(b + 0x20);
    if ((b >= 'a' && b <= 'z') || b >= 0x80) {
      cur.push_back(static_cast<char>(b));
    } else {
      flush();
    }
  }
  flush();
  for (const auto& t : tokens) out.push_back("w:" + t);
  for (size_t i = 0; i + 1 < tokens.size(); ++i)
    out.push_back("b:" + tokens[i] + "_" + tokens[i + 1]);
  if (auto c = find_code(text)) {
    out.push_back("c:" + std::string(*c));
    out.push_back("c1:" + std::string(c->substr(0, 1)));
  }
  size_t subject_end = 0;
  if (auto e = find_enhanced(text, &subject_end)) {
    out.push_back("e:" + std::string(*e));
    out.push_back("es:" + std::string(e->substr(0, subject_end)));
  }
  out.push_back("s:" + std::string(stage.empty() ? "unknown" : stage));
  return out;
}

Guess WordModel::predict(std::string_view text, std::string_view stage) const {
  std::array<double, kN> score{};
  for (const auto& f : features(text, stage)) {
    auto it = weights_.find(f);
    if (it == weights_.end()) continue;
    for (size_t c = 0; c < kN; ++c) score[c] += it->second[c];
  }
  size_t best = 0;
  for (size_t c = 1; c < kN; ++c) {
    if (score[c] > score[best]) best = c;
  }
  double z = 0;
  for (double s : score) z += std::exp(s - score[best]);
  return {kOrder[best], 1.0 / z};
}

Result<WordModel> WordModel::parse(std::string_view text, const std::string& name) {
  WordModel m;
  size_t line_no = 0;
  while (!text.empty()) {
    std::string_view line = take_line(text);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;
    const size_t t1 = line.find('\t');
    const size_t t2 = t1 == std::string_view::npos ? t1 : line.find('\t', t1 + 1);
    auto bad = [&](const std::string& why) {
      return error(name + ":" + std::to_string(line_no) + ": " + why);
    };
    if (t2 == std::string_view::npos) return bad("expected FEATURE<TAB>CATEGORY<TAB>WEIGHT");
    const auto category = parse_category(line.substr(t1 + 1, t2 - t1 - 1));
    if (!category || *category == Category::kDelivered) return bad("unknown category");
    const std::string weight(line.substr(t2 + 1));
    char* end = nullptr;
    const double w = std::strtod(weight.c_str(), &end);
    if (weight.empty() || end != weight.c_str() + weight.size()) return bad("bad weight");
    const auto at = std::find(kOrder.begin(), kOrder.end(), *category) - kOrder.begin();
    m.weights_[std::string(line.substr(0, t1))][static_cast<size_t>(at)] = w;
  }
  return m;
}

}  // namespace sluice::classify
