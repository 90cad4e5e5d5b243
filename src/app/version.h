// Build identity, generated at build time by cmake/WriteVersion.cmake.
#pragma once

namespace sluice {
extern const char* const kVersion;  // "0.1.0"
extern const char* const kCommit;   // short git commit, "-dirty" when built from local changes
}  // namespace sluice
