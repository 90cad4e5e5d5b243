// Small operator tools of the sluice binary:
//   sluice passwd USER            a credentials-file line for USER (password read from stdin)
//   sluice spool ls [--config F]  one JSON line per spooled message (server stopped: read-only)
#pragma once

#include <string>

namespace sluice {

int passwd(const std::string& user);
int spool_ls(const std::string& config_path);

}  // namespace sluice
