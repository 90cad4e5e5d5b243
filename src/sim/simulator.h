// The receiver simulator behind `sluice sim`: every configured provider listens on its own
// address and answers as a real receiving service would, per client IP — concurrent-connection
// limits (said at the banner, after EHLO or at MAIL) that tighten while an IP keeps exceeding
// them and relax as the penalty decays, message and connection rate limits, reputation blocks,
// greylisting, tarpitting, random transient failures, hard bounces, full mailboxes, a server
// that hangs mid-DATA — and counts everything: accepted messages and recipients, unique and
// duplicate Message-IDs, refusals by kind, peak concurrency per client IP, a per-second
// timeline. Stats go to a JSON file every second (and at exit) and to GET /stats.
//
// Threads: one io_context run by one thread (the simulator must not need more than one core);
// all state is touched from that thread only.
#pragma once

#include <memory>

#include "core/status.h"
#include "sim/sim_config.h"

namespace sluice::sim {

// Runs until SIGTERM or SIGINT; returns the exit code.
int run_simulator(const SimConfig& config);

}  // namespace sluice::sim
