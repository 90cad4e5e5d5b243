#include "observe/metrics.h"

#include <gtest/gtest.h>

namespace sluice::observe {
namespace {

TEST(Metrics, CountersAndHistogramsInTheTextFormat) {
  Metrics m;
  m.counter("sluice_messages_received_total", "Messages accepted.");
  m.histogram("sluice_spool_sync_duration_seconds", "Synced spool writes.", {0.01, 0.001});
  m.inc("sluice_messages_received_total", {{"tenant", "acme"}});
  m.inc("sluice_messages_received_total", {{"tenant", "acme"}}, 2);
  m.inc("sluice_messages_received_total", {{"tenant", "we\"ird\\"}});
  m.inc("sluice_not_declared_total");
  m.observe("sluice_spool_sync_duration_seconds", 0.0005);
  m.observe("sluice_spool_sync_duration_seconds", 0.005);
  m.observe("sluice_spool_sync_duration_seconds", 2.5);
  EXPECT_EQ(m.render(),
            "# HELP sluice_messages_received_total Messages accepted.\n"
            "# TYPE sluice_messages_received_total counter\n"
            "sluice_messages_received_total{tenant=\"acme\"} 3\n"
            "sluice_messages_received_total{tenant=\"we\\\"ird\\\\\"} 1\n"
            "# HELP sluice_spool_sync_duration_seconds Synced spool writes.\n"
            "# TYPE sluice_spool_sync_duration_seconds histogram\n"
            "sluice_spool_sync_duration_seconds_bucket{le=\"0.001\"} 1\n"
            "sluice_spool_sync_duration_seconds_bucket{le=\"0.01\"} 2\n"
            "sluice_spool_sync_duration_seconds_bucket{le=\"+Inf\"} 3\n"
            "sluice_spool_sync_duration_seconds_sum 2.5055\n"
            "sluice_spool_sync_duration_seconds_count 3\n");
}

TEST(Metrics, GaugesAreWrittenByTheirOwner) {
  Gauges g;
  g.family("sluice_connections_open", "Outbound connections open.");
  g.sample("sluice_connections_open", {{"source", "ip1"}, {"site", "mx.test"}}, 3);
  EXPECT_EQ(g.take(),
            "# HELP sluice_connections_open Outbound connections open.\n"
            "# TYPE sluice_connections_open gauge\n"
            "sluice_connections_open{source=\"ip1\",site=\"mx.test\"} 3\n");
}

}  // namespace
}  // namespace sluice::observe
