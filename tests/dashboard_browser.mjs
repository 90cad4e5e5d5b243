// Drives Debian's chromium with playwright-core (dashboard/node_modules) for
// tests/test_dashboard.py. Reads commands, one JSON object per line on stdin, and answers one
// JSON line each on stdout, so that the Python test decides when to look:
//   {"cmd": "open", "url": U}                 load the page, wait for its first poll
//   {"cmd": "figures", "after_polls": N}      wait until the page has polled N more times, then
//                                             {figures: {name: value}, lanes: [{key, open_connections,
//                                             connection_limit}], replies: [provider], suspensions: [text],
//                                             status, polls}
//   {"cmd": "screenshot", "path": P}          a full-page PNG
//   {"cmd": "close"}
// Every wait is bounded (30 s).
import { createRequire } from "node:module";
import readline from "node:readline";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, "../dashboard/package.json"));
const { chromium } = require("playwright-core");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  // No network but loopback here: nothing in the background may try to reach the internet.
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

const polls = () => page.evaluate(() => Number(document.body.dataset.polls || 0));

async function read() {
  return page.evaluate(() => {
    const figures = {};
    for (const el of document.querySelectorAll("[data-figure]"))
      figures[el.dataset.figure] = el.dataset.value === undefined ? null : Number(el.dataset.value);
    const lanes = [...document.querySelectorAll("#lanes tbody tr")].map((tr) => ({
      key: tr.dataset.key,
      site: tr.children[1].textContent,
      source: tr.children[2].textContent,
      open_connections: Number(tr.querySelector('[data-field="open_connections"]').textContent),
      connection_limit: Number(tr.querySelector('[data-field="connection_limit"]').textContent),
    }));
    const replies = [...document.querySelectorAll("#replies .provider")].map((d) => ({
      provider: d.dataset.provider,
      replies: [...d.querySelectorAll(".reply")].map((r) => r.textContent),
    }));
    const suspensions = [...document.querySelectorAll("#suspensions li[data-kind]")].map((li) => li.textContent);
    const charts = document.querySelectorAll(".uplot canvas").length;
    return { figures, lanes, replies, suspensions, charts,
             status: document.getElementById("status").textContent,
             polls: Number(document.body.dataset.polls || 0) };
  });
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  const c = JSON.parse(line);
  let answer = {};
  try {
    if (c.cmd === "open") {
      await page.goto(c.url, { timeout: 30000 });
      await page.waitForFunction(() => Number(document.body.dataset.polls || 0) >= 1, null, { timeout: 30000 });
    } else if (c.cmd === "figures") {
      const target = (await polls()) + (c.after_polls || 1);
      await page.waitForFunction((n) => Number(document.body.dataset.polls || 0) >= n, target, { timeout: 30000 });
      answer = await read();
    } else if (c.cmd === "screenshot") {
      await page.screenshot({ path: c.path, fullPage: true });
    } else if (c.cmd === "close") {
      process.stdout.write("{}\n");
      break;
    }
    answer.errors = errors;
  } catch (e) {
    answer = { error: String(e), errors };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
rl.close();
await browser.close();
process.exit(0);
