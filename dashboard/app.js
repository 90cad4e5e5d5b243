// sluice's live dashboard. Every second it reads /metrics (Prometheus text), /api/v1/sites (the
// shaping keys), /api/v1/replies (the latest refusals per provider) and the operators'
// suspensions, and redraws. Totals are the sums of /metrics' series, so the page and a
// Prometheus scrape agree; rates are the differences between two reads.
"use strict";

const POLL_MS = 1000;
const WINDOW = 600; // points kept in the charts: ten minutes at one per second

// The API token, when the server has one: /dashboard/#token=TOKEN, kept for this tab only.
const token = (() => {
  const m = /token=([^&]+)/.exec(location.hash);
  if (m) {
    sessionStorage.setItem("sluice-token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem("sluice-token");
})();

async function get(path, as) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const r = await fetch(path, { headers, cache: "no-store" });
  if (!r.ok) throw new Error(path + ": HTTP " + r.status);
  return as === "text" ? r.text() : r.json();
}

// Prometheus text format 0.0.4 → [{name, labels, value}] (comments skipped).
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
      let l;
      while ((l = re.exec(m[3]))) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

// The sum of a metric's series whose labels match `where`.
function sum(samples, name, where = {}) {
  let total = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

function figures(samples) {
  return {
    received: sum(samples, "sluice_messages_received_total"),
    delivered: sum(samples, "sluice_recipients_delivered_total"),
    deferred: sum(samples, "sluice_recipients_deferred_total"),
    deferred_connection_limit: sum(samples, "sluice_recipients_deferred_total", { category: "connection-limit" }),
    deferred_rate_limit: sum(samples, "sluice_recipients_deferred_total", { category: "rate-limit" }),
    bounced: sum(samples, "sluice_recipients_bounced_total"),
    queue_scheduled: sum(samples, "sluice_queue_messages", { state: "scheduled" }),
    queue_in_flight: sum(samples, "sluice_queue_messages", { state: "in_flight" }),
    queue_cadence: sum(samples, "sluice_queue_messages", { state: "cadence" }),
    connections_open: sum(samples, "sluice_connections_open"),
  };
}

// ---- charts (uPlot) ----

function chart(el, labels, colours) {
  const data = [[], ...labels.map(() => [])];
  const plot = new uPlot(
    {
      width: Math.max(400, el.clientWidth || 440),
      height: 200,
      series: [{}, ...labels.map((label, i) => ({ label, stroke: colours[i], width: 2 }))],
      axes: [{}, { size: 50 }],
      scales: { x: { time: true } },
    },
    data,
    el,
  );
  return {
    push(t, values) {
      data[0].push(t);
      values.forEach((v, i) => data[i + 1].push(v));
      if (data[0].length > WINDOW) data.forEach((d) => d.shift());
      plot.setData(data);
    },
  };
}

const charts = {
  throughput: chart(document.getElementById("chart-throughput"), ["delivered/s", "received/s"], ["#2ca02c", "#1f77b4"]),
  deferrals: chart(document.getElementById("chart-deferrals"), ["connection-limit/s", "rate-limit/s", "other/s"], ["#d62728", "#ff7f0e", "#7f7f7f"]),
  queue: chart(document.getElementById("chart-queue"), ["scheduled", "in flight", "cadence"], ["#9467bd", "#17becf", "#bcbd22"]),
};

let previous = null; // {t, figures}

function rate(now, before, key, seconds) {
  return seconds > 0 ? Math.max(0, (now[key] - before[key]) / seconds) : 0;
}

// ---- tables ----

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function drawLanes(sites) {
  const body = document.querySelector("#lanes tbody");
  body.replaceChildren();
  sites.sort((a, b) => (a.provider || a.site).localeCompare(b.provider || b.site) || a.source.localeCompare(b.source));
  for (const l of sites) {
    const tr = document.createElement("tr");
    tr.dataset.key = l.key;
    if (l.suspended) tr.className = "suspended";
    else if (l.held) tr.className = "held";
    const signal = l.last_signal ? `${l.last_category}: ${l.last_signal}` : "";
    for (const v of [l.provider || "—", l.site, l.source, l.open_connections, l.connection_limit,
                     l.learned_connection_limit || "—", l.configured_connection_limit,
                     l.message_rate_per_hour || "∞", l.ready, l.delivered, l.throttled, signal]) {
      tr.appendChild(cell(String(v)));
    }
    tr.children[3].dataset.field = "open_connections";
    tr.children[4].dataset.field = "connection_limit";
    body.appendChild(tr);
  }
}

function drawSuspensions(sites, rules) {
  const ul = document.getElementById("suspensions");
  ul.replaceChildren();
  for (const l of sites.filter((l) => l.suspended)) {
    const li = document.createElement("li");
    li.dataset.kind = "receiver";
    li.textContent = `${l.provider || l.site} from ${l.source} until ${l.suspended_until}: ${l.suspend_reason}`;
    ul.appendChild(li);
  }
  for (const r of rules) {
    const li = document.createElement("li");
    li.dataset.kind = "operator";
    const what = [r.domain && "domain " + r.domain, r.tenant && "tenant " + r.tenant, r.campaign && "campaign " + r.campaign].filter(Boolean).join(", ");
    li.textContent = `operator #${r.id}: ${what} until ${r.until}: ${r.reason}`;
    ul.appendChild(li);
  }
  if (!ul.children.length) ul.innerHTML = '<li class="none">none</li>';
}

function drawReplies(providers) {
  const div = document.getElementById("replies");
  div.replaceChildren();
  for (const p of providers) {
    const box = document.createElement("div");
    box.className = "provider";
    box.dataset.provider = p.provider;
    const h = document.createElement("h3");
    h.textContent = p.provider || "(no provider)";
    box.appendChild(h);
    for (const r of p.replies) {
      const line = document.createElement("div");
      line.className = "reply";
      const c = document.createElement("span");
      c.className = "category";
      c.textContent = r.category;
      line.append(c, `${r.ts.slice(11, 19)} ${r.source} ${r.stage}: ${r.reply}`);
      box.appendChild(line);
    }
    div.appendChild(box);
  }
  if (!div.children.length) div.innerHTML = '<p class="none">none yet</p>';
}

// ---- the loop ----

async function poll() {
  const status = document.getElementById("status");
  try {
    const [text, sites, replies, rules] = await Promise.all([
      get("/metrics", "text"), get("/api/v1/sites"), get("/api/v1/replies"), get("/api/admin/suspend/v1"),
    ]);
    const now = figures(parseMetrics(text));
    for (const el of document.querySelectorAll("[data-figure]")) {
      el.textContent = now[el.dataset.figure].toLocaleString("en-US");
      el.dataset.value = String(now[el.dataset.figure]);
    }
    const t = Date.now() / 1000;
    if (previous) {
      const dt = t - previous.t;
      const before = previous.figures;
      const other = rate(now, before, "deferred", dt) - rate(now, before, "deferred_connection_limit", dt) - rate(now, before, "deferred_rate_limit", dt);
      charts.throughput.push(t, [rate(now, before, "delivered", dt), rate(now, before, "received", dt)]);
      charts.deferrals.push(t, [rate(now, before, "deferred_connection_limit", dt), rate(now, before, "deferred_rate_limit", dt), Math.max(0, other)]);
    }
    charts.queue.push(t, [now.queue_scheduled, now.queue_in_flight, now.queue_cadence]);
    previous = { t, figures: now };
    drawLanes(sites);
    drawSuspensions(sites, rules);
    drawReplies(replies);
    status.textContent = "live";
    status.className = "status ok";
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
    document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
  } catch (e) {
    status.textContent = String(e.message || e);
    status.className = "status error";
  }
  setTimeout(poll, POLL_MS);
}

poll();
