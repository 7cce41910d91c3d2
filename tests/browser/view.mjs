// Drives a page written by `rlm view` in headless Chromium (tests/view_browser.rs).
// Environment: RLM_NODE_MODULES, PAGE_URL, EXPECT_COST, SCREENSHOT, and for
// watch mode WATCH_URL, TRACE and APPEND (lines to append to TRACE).
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const require = createRequire(path.join(process.env.RLM_NODE_MODULES, "x.js"));
const { chromium } = require("playwright-core");

function check(ok, what) {
  if (!ok) throw new Error("check failed: " + what);
  console.log("ok: " + what);
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "rlm-chromium-"));
// An empty profile of our own: playwright takes it as launchPersistentContext's
// userDataDir rather than as a --user-data-dir flag.
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
try {
  const page = browser.pages()[0] || (await browser.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // The page must fetch nothing but its own file (and, live, its own server).
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));

  if (process.env.PAGE_URL) {
    await page.goto(process.env.PAGE_URL);
    check((await page.evaluate(() => window.pwned)) === undefined, "the HTML a cell printed did not run");
    check((await page.textContent("#total-cost")) === process.env.EXPECT_COST, "the total cost is the trace's " + process.env.EXPECT_COST);
    check((await page.textContent("#status")) === "submitted", "the status is shown");
    // Nothing under the top run is built until it is opened.
    check((await page.locator("[data-kind^='turn']").count()) === 0, "the tree starts collapsed");
    await page.locator("[data-kind='run 0'] > .row").click();
    await page.locator("[data-kind='turn 1'] > .row").first().click();
    await page.locator("[data-kind='run 0'] [data-kind^='cell'] > .row").first().click();
    const out = await page.locator("[data-kind='run 0'] [data-kind^='cell'] pre.output").first().textContent();
    check(out.includes("child said seven words"), "the cell's output is shown");
    check(out.includes("</script><script>window.pwned=1</script>"), "the printed HTML is shown as text");
    check((await page.evaluate(() => window.pwned)) === undefined, "and still did not run");
    // Down the recursion: the child run under the cell, its turn and cell, the grandchild.
    await page.locator("[data-kind='run 0.1'] > .row").click();
    await page.locator("[data-kind='run 0.1'] [data-kind='turn 1'] > .row").first().click();
    await page.locator("[data-kind='run 0.1'] [data-kind^='cell'] > .row").first().click();
    await page.locator("[data-kind='run 0.1.1'] > .row").click();
    await page.locator("[data-kind='run 0.1.1'] [data-kind='turn 1'] > .row").first().click();
    await page.locator("[data-kind='run 0.1.1'] [data-kind^='cell'] > .row").first().click();
    await page.locator("[data-kind='run 0.1.1'] [data-kind='sub-call'] > .row").first().click();
    check((await page.locator("[data-kind='run 0.1.1'] [data-kind='sub-call'] pre").last().textContent()) === "seven words", "the grandchild's sub-call answer is shown");
    check(requests.every((u) => u === process.env.PAGE_URL), "the page fetched nothing else: " + requests.join(", "));
    await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  }

  if (process.env.WATCH_URL) {
    requests.length = 0;
    await page.goto(process.env.WATCH_URL);
    await page.waitForSelector("#status");
    check((await page.textContent("#status")) === "running", "a trace still being written shows as running");
    const before = Number(await page.textContent("#sub-calls"));
    fs.appendFileSync(process.env.TRACE, fs.readFileSync(process.env.APPEND));
    await page.waitForFunction(() => document.querySelector("#status") && document.querySelector("#status").textContent === "submitted", null, { timeout: 30000 });
    const after = Number(await page.textContent("#sub-calls"));
    check(after > before, "the page took in the appended events (" + before + " -> " + after + " sub-calls)");
    check(requests.length > 1 && requests.every((u) => u.startsWith(process.env.WATCH_URL)), "watch mode asked only its own server: " + [...new Set(requests.map((u) => u.replace(/\?.*/, "")))].join(", "));
  }
  check(errors.length === 0, "no script errors: " + errors.join("; "));
} finally {
  await browser.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
