#include "app/tools.h"

#include <cstdio>
#include <iostream>

#include "config/config.h"
#include "inbound/credentials.h"
#include "spool/rocks_spool.h"

namespace sluice {

int passwd(const std::string& user) {
  if (user.empty() || user.find(':') != std::string::npos) {
    std::fprintf(stderr, "sluice passwd: the user name must be non-empty and without ':'\n");
    return 2;
  }
  std::string password;
  if (!std::getline(std::cin, password) || password.empty()) {
    std::fprintf(stderr, "sluice passwd: expected the password on standard input\n");
    return 2;
  }
  if (!password.empty() && password.back() == '\r') password.pop_back();
  std::printf("%s:%s\n", user.c_str(), inbound::Credentials::hash_password(password).c_str());
  return 0;
}

int spool_ls(const std::string& config_path) {
  auto cfg = config::load_config_file(config_path);
  if (!cfg) {
    for (const auto& e : cfg.error()) std::fprintf(stderr, "sluice: %s\n", e.str().c_str());
    return 78;
  }
  auto spool = spool::RocksSpool::open({cfg->spool.path, /*read_only=*/true});
  if (!spool) {
    std::fprintf(stderr, "sluice: %s\n", spool.error().message.c_str());
    return 1;
  }
  auto n = (*spool)->recover([](spool::MessageMeta m) {
    const std::string line = spool::meta_json(m) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
  });
  if (!n) {
    std::fprintf(stderr, "sluice: %s\n", n.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace sluice
