// test_page.js: the results page in a real browser: Debian's Chromium, headless, driven by
// playwright-core (pinned in tests/web/package.json, installed by ./setup.sh test; it never
// downloads a browser) against a real octetd on a free port with a fresh database, training
// for real on a small Fashion-MNIST subset on the CPU.
//
// What is checked:
//   * a small MLP job submitted through the form: its progress bar in the list moves while it
//     runs, the job finishes, its page shows its epoch rows, drawn charts (dygraphs' canvas
//     with the data points; axis titles with units; a legend; values under the pointer) and
//     the memory bars with the ratio to AdamW;
//   * a sweep of two optimizers over two seeds through the form: the sweep view draws two
//     configurations with their seed bands, its table has both, sorting works;
//   * a bad field (a negative learning rate, a negative seed in a sweep) shows the API's
//     message beside that field and creates nothing;
//   * the memory estimate as the form changes (when this octetd has POST /estimate; else the
//     page says "estimate unavailable"), the model presets of GET /models, and a job that
//     would not fit is reported and not sent;
//   * cancelling a running job from its page, then deleting it; a failed job's error with
//     its field;
//   * the token prompt on a server started with --token: asked once, kept for the session;
//   * the keyboard: the menu and the form are reachable and usable with Tab and Enter;
//   * at 390 pixels wide, light and dark, no view scrolls sideways;
//   * 1,000 jobs in the list and a 20,000-point chart: the times are printed and bounded;
//   * no console error and no uncaught exception on any page, besides the browser's own
//     line for an API answer the page asked for and handles (a 422 it shows beside a field,
//     a 401 that opens the token prompt, a 404 of a deleted job).
// Screenshots of the job list, a job page and a sweep view (wide, narrow, dark) are written
// to tests/web/artifacts/ in the build tree.
//
// Prints one line per test and a Check-style summary; exits 0 when all pass, 1 otherwise, 77
// (with a SKIP line) when it cannot run here: no Chromium, no playwright-core, no dygraphs,
// no Fashion-MNIST, no octetd.
"use strict";

const cp = require("child_process");
const fs = require("fs");
const http = require("http");
const os = require("os");
const path = require("path");
const { createRequire } = require("module");

const SRC = process.env.OCTET_SRCDIR || path.resolve(__dirname, "..", "..");
const BUILD = process.env.OCTET_BUILDDIR || process.cwd();
const MODULES = process.env.OCTET_WEB_MODULES || path.join(SRC, "tests", "web", "node_modules");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const JS_DIR = "/usr/share/javascript";
const FASHION = "/usr/share/datasets/fashion-mnist";
const ARTIFACTS = path.join(BUILD, "tests", "web", "artifacts");
const TOKEN = "web-test-token-42";
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync"];

function skip(why) {
  console.log("SKIP: " + why);
  process.exit(77);
}

// ------------------------------------------------------------------ what this test needs

let chromium;
function preflight() {
  if (!fs.existsSync(CHROMIUM)) skip(`no Chromium at ${CHROMIUM} (Debian's chromium package; ./setup.sh test installs it)`);
  try {
    chromium = createRequire(path.join(MODULES, "index.js"))("playwright-core").chromium;
  } catch (e) {
    skip(`no playwright-core in ${MODULES} (./setup.sh test runs npm ci in tests/web): ${e.message.split("\n")[0]}`);
  }
  if (!fs.existsSync(path.join(JS_DIR, "dygraphs", "dygraph.min.js")))
    skip(`no dygraphs in ${JS_DIR} (Debian's libjs-dygraphs; ./setup.sh installs it)`);
  if (!fs.existsSync(FASHION)) skip(`no Fashion-MNIST in ${FASHION} (Debian's dataset-fashion-mnist)`);
  if (!fs.existsSync(path.join(BUILD, "octetd"))) {
    console.log(`FAIL: octetd is not built in ${BUILD}`);
    process.exit(1);
  }
}

// ------------------------------------------------------------------ octetd

class Octetd {
  constructor(name, extra = [], token = null) {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), `octet-web-${name}-`));
    this.extra = extra;
    this.token = token;
  }

  async start() {
    const args = ["--listen", "127.0.0.1", "--port", "0", "--db", path.join(this.root, "octet.db"),
      "--data-dir", path.join(this.root, "data"), "--web-dir", path.join(SRC, "web"),
      "--schema-dir", path.join(SRC, "schema"), "--js-dir", JS_DIR, ...this.extra];
    if (this.token) args.push("--token", this.token);
    const log = fs.openSync(path.join(this.root, "octetd.log"), "a");
    this.proc = cp.spawn(path.join(BUILD, "octetd"), args, { stdio: ["ignore", "pipe", log],
      env: Object.assign({}, process.env, { OMP_NUM_THREADS: "1" }) });
    fs.closeSync(log);
    this.port = await new Promise((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error("octetd did not start: " + out)), 30000);
      this.proc.stdout.on("data", (d) => {
        out += d;
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
        if (m) { clearTimeout(timer); resolve(Number(m[1])); }
      });
      this.proc.on("exit", (code) => { clearTimeout(timer); reject(new Error(`octetd exited ${code}: ${this.log()}`)); });
    });
    this.base = `http://127.0.0.1:${this.port}/`;
    return this;
  }

  log() {
    try { return fs.readFileSync(path.join(this.root, "octetd.log"), "utf8"); } catch { return ""; }
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    const done = new Promise((r) => this.proc.on("exit", r));
    this.proc.kill("SIGTERM");
    const t = setTimeout(() => this.proc.kill("SIGKILL"), 60000);
    await done;
    clearTimeout(t);
  }

  remove() {
    fs.rmSync(this.root, { recursive: true, force: true });
  }

  // An API call: {status, body (parsed JSON or null)}.
  api(method, p, body, headers = {}) {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
      const h = Object.assign({ Accept: "application/json" }, headers);
      if (data) { h["Content-Type"] = "application/json"; h["Content-Length"] = data.length; }
      if (this.token && method !== "GET") h.Authorization = "Bearer " + this.token;
      const req = http.request({ host: "127.0.0.1", port: this.port, method, path: "/api/v1" + p, headers: h }, (r) => {
        let s = "";
        r.setEncoding("utf8");
        r.on("data", (c) => (s += c));
        r.on("end", () => resolve({ status: r.statusCode, body: s ? JSON.parse(s) : null }));
      });
      req.on("error", reject);
      if (data) req.write(data);
      req.end();
    });
  }

  async job(id) {
    const r = await this.api("GET", "/jobs/" + id);
    if (r.status !== 200) throw new Error(`GET /jobs/${id}: ${r.status}`);
    return r.body;
  }

  async countJobs() {
    let n = 0, cursor = null;
    for (;;) {
      const r = await this.api("GET", "/jobs?limit=500" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
      n += r.body.jobs.length;
      cursor = r.body.next_cursor;
      if (!cursor) return n;
    }
  }

  async waitJob(id, statuses = ["succeeded", "failed", "cancelled"], timeoutMs = 300000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const j = await this.job(id);
      if (statuses.includes(j.status)) return j;
      if (Date.now() > end) throw new Error(`job ${id} still ${j.status}`);
      await sleep(200);
    }
  }

  async hasRoute(p, method = "get") {
    const r = await this.api("GET", "/openapi.json");
    return Boolean(r.body.paths[p] && r.body.paths[p][method]);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Layout shifts from now on (the browser's layout-shift entries, as Web Vitals' CLS counts
// them): startShifts(page), then shifts(page) for their sum.
async function startShifts(page) {
  await page.evaluate(() => {
    window.__shift = 0;
    window.__shifts = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        if (e.hadRecentInput) continue;
        window.__shift += e.value;
        window.__shifts.push(e.sources.map((s) => s.node ? (s.node.className || s.node.nodeName) : "?").join(","));
      }
    }).observe({ type: "layout-shift" });
  });
}
async function shifts(page) {
  return page.evaluate(() => ({ sum: window.__shift, what: window.__shifts.slice(0, 8) }));
}
const MAX_SHIFT = 0.01; // "no layout shift while live data arrives"

function assert(cond, msg) {
  if (!cond) throw new Error("assertion failed: " + msg);
}

// ------------------------------------------------------------------ pages

let browser;

// A fresh browser context (its own sessionStorage) with one page that records console errors
// and uncaught exceptions. allow: HTTP statuses of /api/v1 answers the page is expected to
// get and handle (Chromium logs each failed fetch as a console error of its own).
async function openPage(srv, { width = 1280, height = 900, dark = false, allow = [] } = {}) {
  const context = await browser.newContext({ viewport: { width, height }, colorScheme: dark ? "dark" : "light" });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push("uncaught: " + e.message));
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    const url = (m.location() && m.location().url) || "";
    const st = /status of (\d{3})/.exec(m.text());
    if (st && url.includes("/api/v1/") && allow.includes(Number(st[1]))) return;
    problems.push(`console: ${m.text()} (${url})`);
  });
  page.setDefaultTimeout(30000);
  return {
    page,
    async go(hash) {
      await page.goto(srv.base + hash);
      await page.waitForSelector("main h1");
    },
    async close() {
      await context.close();
      assert(problems.length === 0, "the page logged errors:\n  " + problems.join("\n  "));
    },
  };
}

async function shot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, name + ".png"), fullPage: true });
}

// The form, filled: fields by their label; opts: {optimizers: [names], lr, seeds, ...}.
async function fillForm(page, f) {
  await page.waitForSelector("form.submit-form[data-ready='1']");
  const byLabel = (label) => page.getByLabel(label, { exact: true });
  if (f.name !== undefined) await byLabel("Name").fill(f.name);
  if (f.hidden !== undefined) await byLabel("Hidden layer sizes").fill(f.hidden);
  if (f.train !== undefined) await byLabel("Training examples").fill(String(f.train));
  if (f.eval !== undefined) await byLabel("Evaluation examples").fill(String(f.eval));
  if (f.optimizers) {
    for (const c of await page.locator(".checks input[type=checkbox]").all()) {
      const want = f.optimizers.includes(await c.getAttribute("value"));
      if ((await c.isChecked()) !== want) await c.setChecked(want);
    }
  }
  if (f.lr !== undefined) await byLabel("Learning rates").fill(String(f.lr));
  if (f.epochs !== undefined) await byLabel("Epochs").fill(String(f.epochs));
  if (f.batch !== undefined) await byLabel("Batch size").fill(String(f.batch));
  if (f.seeds !== undefined) await byLabel("Seeds").fill(String(f.seeds));
  if (f.logEvery !== undefined) await byLabel("Log the loss every").fill(String(f.logEvery));
  await byLabel("Device").selectOption(f.device || "cpu");
}

// The error shown beside the input labelled `label` ("" when none).
async function errorBeside(page, label) {
  const input = page.getByLabel(label, { exact: true });
  return input.evaluate((i) => {
    const err = i.closest(".field").querySelector(".field-error");
    return err && !err.hidden ? err.textContent : "";
  });
}

// ------------------------------------------------------------------ the tests

const TESTS = [];
const test = (name, f) => TESTS.push({ name, f });
const ctx = {};

test("submit_job_through_form", async () => {
  const srv = ctx.main;
  const p = await openPage(srv, { allow: [422] });
  await p.go("#/new");
  await fillForm(p.page, { name: "web mlp", hidden: "128, 64", train: 6000, eval: 500, epochs: 3, batch: 32,
    logEvery: 5, lr: "0.001", optimizers: ["adamw8bit"] });
  assert((await p.page.locator("button[type=submit]").textContent()) === "Submit job", "the button says one job");
  await p.page.locator("button[type=submit]").click();
  await p.page.waitForURL(/#\/jobs\/\d+$/);
  const id = Number(/#\/jobs\/(\d+)$/.exec(p.page.url())[1]);
  ctx.jobId = id;
  const spec = (await srv.job(id)).spec;
  assert(spec.optimizer.name === "adamw8bit" && spec.optimizer.lr === 0.001 && spec.dataset.train_limit === 6000 &&
    spec.training.epochs === 3 && spec.training.batch_size === 32 && spec.model.hidden.join() === "128,64",
    "the spec is the form's: " + JSON.stringify(spec));

  // the list, live: the progress bar moves, the job finishes, without a reload
  await p.go("#/jobs");
  const row = p.page.locator(`tr[data-id="${id}"]`);
  await row.waitFor();
  await p.page.evaluate(() => (window.__sameDocument = 1));
  await startShifts(p.page);
  const seen = new Set();
  const end = Date.now() + 300000;
  for (;;) {
    const v = Number(await row.locator("progress").evaluate((b) => b.value));
    seen.add(v);
    if ((await row.getAttribute("data-status")) === "succeeded") break;
    assert(Date.now() < end, "the job did not finish in the list");
    await sleep(200);
  }
  const moving = [...seen].filter((v) => v > 0 && v < 1);
  assert(moving.length >= 1, "the progress bar showed no value between 0 and 1: " + [...seen]);
  await p.page.waitForFunction((i) => document.querySelector(`tr[data-id="${i}"] progress`).value === 1, id);
  assert(await p.page.evaluate(() => window.__sameDocument === 1), "the list reloaded the page");
  const listShift = await shifts(p.page);
  console.log(`  layout shift of the list while the job ran: ${listShift.sum.toFixed(4)}`);
  assert(listShift.sum < MAX_SHIFT, "the list moved while the job ran: " + JSON.stringify(listShift));
  assert((await row.locator(".badge").textContent()) === "succeeded", "the row's badge says succeeded");
  assert(/%/.test(await row.locator("td.c-num").first().textContent()), "the row shows the eval accuracy");
  await shot(p.page, "job-list");

  // its page: epochs, charts with data, memory
  await row.getByRole("link", { name: "web mlp" }).click();
  await p.page.waitForURL(new RegExp(`#/jobs/${id}$`));
  await p.page.waitForFunction(() => document.querySelectorAll("table.epochs tbody tr").length === 3);
  const charts = p.page.locator(".chart-plot");
  assert((await charts.count()) === 3, "three charts on the job page");
  await p.page.waitForFunction(() => [...document.querySelectorAll(".chart-plot")].every((c) => c.querySelector("canvas") && Number(c.dataset.rows) > 0));
  const rows = await charts.evaluateAll((cs) => cs.map((c) => Number(c.dataset.rows)));
  assert(rows[0] === 3 && rows[1] === 3 && rows[2] >= 50, "charts hold 3 epochs and the logged steps: " + rows);
  const labels = await p.page.locator(".dygraph-label").allTextContents();
  for (const want of ["epoch", "loss (cross-entropy, nats)", "eval accuracy, F1 (%)", "optimizer step", "learning rate"])
    assert(labels.includes(want), `an axis titled "${want}" (have ${labels})`);
  const legend = p.page.locator(".chart-legend").nth(2);
  assert(/training loss/.test(await legend.textContent()) && /learning rate/.test(await legend.textContent()), "the step chart's legend");
  await charts.nth(2).scrollIntoViewIfNeeded();
  const box = await charts.nth(2).boundingBox();
  await p.page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5);
  await p.page.waitForFunction(() => document.querySelectorAll(".chart-legend")[2].querySelector(".lx"));
  assert(/step \d/.test(await legend.textContent()), "hovering shows the step and the values: " + await legend.textContent());
  const state = await p.page.locator('figure.memory tr[data-key="optimizer_state_bytes"] td.v').textContent();
  const adamw = await p.page.locator('figure.memory tr[data-key="adamw_bytes"] td.v').textContent();
  assert(/KiB|MiB/.test(state) && /KiB|MiB/.test(adamw), `memory bars with figures (${state}, ${adamw})`);
  const ratio = await p.page.locator("figure.memory .ratio").textContent();
  assert(/Optimizer state: 0\.\d+× AdamW's/.test(ratio) && /times smaller/.test(ratio), "the ratio to AdamW: " + ratio);
  const width = await p.page.locator('figure.memory tr[data-key="optimizer_state_bytes"] .fill').evaluate((f) => f.getBoundingClientRect().width);
  assert(width > 0, "the optimizer-state bar is drawn");
  await p.page.mouse.move(0, 0);
  await shot(p.page, "job-page");
  await p.close();
});

test("sweep_through_form", async () => {
  const srv = ctx.main;
  const p = await openPage(srv, { allow: [422] });
  await p.go("#/new");
  await fillForm(p.page, { name: "web sweep", hidden: "32", train: 600, eval: 200, epochs: 2, batch: 32, logEvery: 5,
    optimizers: ["adamw", "adamw8bit"], seeds: "1, 2", lr: "" });
  await p.page.waitForFunction(() => document.querySelector("button[type=submit]").textContent === "Submit a sweep of 4 jobs");
  await p.page.locator("button[type=submit]").click();
  await p.page.waitForURL(/#\/sweeps\/\d+$/);
  const id = Number(/#\/sweeps\/(\d+)$/.exec(p.page.url())[1]);
  ctx.sweepId = id;
  await p.page.waitForSelector("table.groups tbody tr");
  await startShifts(p.page);
  const sw = (await srv.api("GET", "/sweeps/" + id)).body;
  assert(sw.jobs.length === 4 && sw.groups.length === 2, "4 jobs in 2 groups");
  assert(JSON.stringify(sw.grid) === JSON.stringify({ optimizer: [{ name: "adamw" }, { name: "adamw8bit" }], "training.seed": [1, 2] }),
    "the grid is the form's: " + JSON.stringify(sw.grid));
  await p.page.waitForSelector(".sweep .status-slot, .sweep .badge.st-succeeded", { timeout: 300000 });
  await p.page.waitForFunction(() => document.querySelector(".sweep .job-head .badge").textContent === "succeeded", null, { timeout: 300000 });
  const sweepShift = await shifts(p.page);
  console.log(`  layout shift of the sweep view while its jobs ran: ${sweepShift.sum.toFixed(4)}`);
  assert(sweepShift.sum < MAX_SHIFT, "the sweep view moved while its jobs ran: " + JSON.stringify(sweepShift));
  await p.page.waitForFunction(() => { const c = document.querySelector(".sweep .chart-plot"); return c && c.querySelector("canvas") && c.dataset.rows === "2"; });
  const plot = p.page.locator(".sweep .chart-plot");
  await plot.scrollIntoViewIfNeeded();
  assert((await plot.getAttribute("data-bands")) === "1", "the chart draws the seed bands");
  const legend = await p.page.locator(".sweep .chart-legend").textContent();
  assert(/adamw8bit/.test(legend) && /adamw(?!8)/.test(legend), "one curve per configuration: " + legend);
  const box = await plot.boundingBox();
  await p.page.mouse.move(box.x + box.width - 70, box.y + box.height * 0.5);
  await p.page.waitForFunction(() => /seeds .* to /.test(document.querySelector(".sweep .chart-legend").textContent));
  await p.page.mouse.move(0, 0);
  const body = p.page.locator("table.groups tbody tr");
  assert((await body.count()) === 2, "the table has both configurations");
  const cells = await body.first().locator("td").allTextContents();
  assert(cells.some((c) => /±/.test(c)), "final metrics as mean ± std: " + cells);
  const glance = await p.page.locator(".glance").textContent();
  assert(/adamw8bit: accuracy .* against AdamW's/.test(glance) && /0\.\d+× AdamW's/.test(glance), "at a glance: " + glance);
  // sorting: by the optimizer state, smallest first, then largest first
  const sortBy = async (title) => {
    await p.page.locator("table.groups thead button", { hasText: title }).click();
    return p.page.locator("table.groups tbody th").allTextContents();
  };
  let order = await sortBy("Opt. state");
  const sortState = await p.page.locator('table.groups th[data-col="state"]').getAttribute("aria-sort");
  const first = sortState === "ascending" ? "adamw8bit" : "adamw";
  assert(order[0] === first, `sorted ${sortState} by state: ${order}`);
  order = await sortBy("Opt. state");
  assert(order[0] === (first === "adamw" ? "adamw8bit" : "adamw"), "the second click reverses: " + order);
  await p.page.locator("#sw-band").selectOption("std");
  await p.page.waitForFunction(() => document.querySelector(".sweep .chart-plot").dataset.rows === "2");
  await p.page.locator("#sw-band").selectOption("range");
  await p.page.waitForFunction(() => document.querySelector(".sweep .chart-plot").dataset.rows === "2");
  await shot(p.page, "sweep-view");
  await p.close();
});

test("bad_field_beside_it", async () => {
  const srv = ctx.main;
  const before = await srv.countJobs();
  const p = await openPage(srv, { allow: [422] });
  await p.go("#/new");
  await fillForm(p.page, { hidden: "16", train: 100, eval: 50, epochs: 1, lr: "-1" });
  await p.page.locator("button[type=submit]").click();
  await p.page.waitForFunction(() => document.querySelector("[aria-invalid=true]"));
  const msg = await errorBeside(p.page, "Learning rates");
  assert(/must be in \(0, inf\), got -1/.test(msg), "the API's message beside the learning rate: " + msg);
  assert(await p.page.getByLabel("Learning rates", { exact: true }).evaluate((i) => i === document.activeElement),
    "the field at fault has the focus");
  assert(/#\/new$/.test(p.page.url()), "still on the form");
  // a sweep's field: the second seed
  await fillForm(p.page, { lr: "0.001", seeds: "1, -2" });
  await p.page.locator("button[type=submit]").click();
  await p.page.waitForFunction(() => {
    const i = [...document.querySelectorAll("label")].find((l) => l.textContent === "Seeds");
    return i && document.getElementById(i.htmlFor).getAttribute("aria-invalid") === "true";
  });
  const seedMsg = await errorBeside(p.page, "Seeds");
  assert(/training.seed: must be an integer from 0/.test(seedMsg) || /must be an integer from 0/.test(seedMsg), "the seed's message: " + seedMsg);
  assert(await errorBeside(p.page, "Learning rates") === "", "the fixed field is clear again");
  await sleep(300);
  assert(await srv.countJobs() === before, "nothing was submitted");
  await p.close();
});

test("estimate_and_models", async () => {
  const srv = ctx.main;
  const hasEstimate = await srv.hasRoute("/estimate", "post");
  const hasModels = await srv.hasRoute("/models");
  const p = await openPage(srv, { allow: [422] });
  await p.go("#/new");
  await p.page.waitForSelector("form.submit-form[data-ready='1']");
  if (!hasEstimate) {
    await p.page.waitForFunction(() => /Estimate unavailable/.test(document.querySelector(".estimate").textContent));
    await p.close();
    return "SKIP: this octetd has no POST /estimate (the page says \"estimate unavailable\"); the display is checked once it has";
  }
  await fillForm(p.page, { hidden: "64", train: 200, eval: 50, epochs: 1, batch: 16 });
  await p.page.waitForFunction(() => /Fits: peak/.test(document.querySelector(".estimate").textContent));
  const bars = p.page.locator('.estimate figure.memory tr[data-key="peak_bytes"] td.v');
  assert(/B/.test(await bars.textContent()), "the estimate's peak bar");
  assert(/AdamW's/.test(await p.page.locator(".estimate .ratio").textContent()), "the estimate's ratio to AdamW");
  await fillForm(p.page, { optimizers: ["adamw", "adamw8bit"] });
  await p.page.waitForFunction(() => document.querySelectorAll(".estimate .est-table tbody tr").length === 2);
  // an MLP far larger than any machine here: reported, and not sent
  const before = await srv.countJobs();
  await fillForm(p.page, { hidden: "65536, 65536, 65536", optimizers: ["adamw"] });
  await p.page.waitForFunction(() => /Would not fit/.test(document.querySelector(".estimate").textContent));
  await p.page.locator("button[type=submit]").click();
  await p.page.waitForFunction(() => /would not fit/.test(document.querySelector(".form-msg").textContent));
  assert(await srv.countJobs() === before, "a job that would not fit is not sent");
  if (hasModels) {
    await p.page.getByLabel("Architecture", { exact: true }).selectOption("distilbert");
    const opts = await p.page.getByLabel("Preset", { exact: true }).locator("option").allTextContents();
    assert(opts.length >= 2 && opts.every((o) => /parameters\)$/.test(o)), "presets from GET /models with their sizes: " + opts);
  }
  await p.close();
  return hasModels ? "" : "SKIP (part): this octetd has no GET /models";
});

test("cancel_running_job_from_its_page", async () => {
  const srv = ctx.main;
  const r = await srv.api("POST", "/jobs", { name: "long", model: { arch: "mlp", hidden: [512, 256], num_labels: 10 },
    dataset: { name: "fashion-mnist", train_limit: 20000, eval_limit: 500 }, optimizer: { name: "adamw", lr: 1e-3 },
    training: { epochs: 20, batch_size: 32, log_every: 50, device: "cpu" } });
  assert(r.status === 201, "submitted: " + JSON.stringify(r.body));
  const id = r.body.id;
  await srv.waitJob(id, ["running"]);
  const p = await openPage(srv, { allow: [404] });
  p.page.on("dialog", (d) => d.accept());
  await p.go("#/jobs/" + id);
  await p.page.waitForFunction(() => document.querySelector(".job-head .badge").textContent === "running");
  // the page while steps arrive: the step chart grows, the progress moves, nothing shifts
  await p.page.waitForFunction(() => Number(document.querySelectorAll(".chart-plot")[2].dataset.rows) > 0, null, { timeout: 60000 });
  await startShifts(p.page);
  const rows0 = Number(await p.page.locator(".chart-plot").nth(2).getAttribute("data-rows"));
  await p.page.waitForFunction((n) => Number(document.querySelectorAll(".chart-plot")[2].dataset.rows) > n + 2, rows0, { timeout: 60000 });
  const jobShift = await shifts(p.page);
  console.log(`  layout shift of the job page while steps arrived: ${jobShift.sum.toFixed(4)}`);
  assert(jobShift.sum < MAX_SHIFT, "the job page moved while steps arrived: " + JSON.stringify(jobShift));
  await p.page.getByRole("button", { name: "Cancel job" }).click();
  await p.page.waitForFunction(() => document.querySelector(".job-head .badge").textContent === "cancelled", null, { timeout: 120000 });
  assert((await srv.job(id)).status === "cancelled", "the API says cancelled");
  assert(await p.page.getByRole("button", { name: "Cancel job" }).isHidden(), "no cancel button once cancelled");
  await p.page.getByRole("button", { name: "Delete job" }).click();
  await p.page.waitForURL(/#\/jobs$/);
  assert((await srv.api("GET", "/jobs/" + id)).status === 404, "deleted");
  await p.close();
});

test("failed_job_shows_its_error", async () => {
  // a model directory with a config.json and nothing else: the spec is accepted, the job
  // fails when its worker opens the model, naming the field
  const srv = ctx.main;
  const dir = path.join(srv.root, "data", "bare-model");
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ dim: 32, n_layers: 1, n_heads: 2, hidden_dim: 64,
    vocab_size: 300, max_position_embeddings: 64 }));
  const r = await srv.api("POST", "/jobs", { name: "bare model", model: { arch: "distilbert", path: "bare-model" },
    dataset: { name: "fortunes-lang", train_limit: 32, eval_limit: 16, max_length: 16 }, training: { epochs: 1, device: "cpu" } });
  assert(r.status === 201, "submitted: " + JSON.stringify(r.body));
  const j = await srv.waitJob(r.body.id);
  assert(j.status === "failed" && j.error && j.error.field, "the job failed naming a field: " + JSON.stringify(j.error));
  const p = await openPage(srv);
  await p.go("#/jobs/" + j.id);
  const box = p.page.locator(".error-box");
  await box.waitFor();
  const text = await box.textContent();
  assert(text.includes(j.error.code) && text.includes(j.error.message) && text.includes("Field: " + j.error.field),
    "the error with its code, message and field: " + text);
  assert(await p.page.getByRole("button", { name: "Delete job" }).isVisible(), "a failed job can be deleted");
  await p.close();
});

test("keyboard", async () => {
  const p = await openPage(ctx.main);
  await p.go("#/jobs");
  // Tab from the top: the skip link, the brand, then the menu; Enter follows a link
  const focusedText = () => p.page.evaluate(() => document.activeElement.textContent.trim());
  const seen = [];
  for (let i = 0; i < 8; i++) {
    await p.page.keyboard.press("Tab");
    seen.push(await focusedText());
    if (seen[seen.length - 1] === "New job") break;
  }
  assert(seen.includes("Skip to the content") && seen[seen.length - 1] === "New job", "the menu by Tab: " + seen);
  await p.page.keyboard.press("Enter");
  await p.page.waitForURL(/#\/new$/);
  await p.page.waitForSelector("form.submit-form[data-ready='1']");
  assert(await p.page.evaluate(() => document.activeElement.tagName === "H1"), "the new view's heading has the focus");
  // the form: Tab reaches the name field, typing works, space toggles an optimizer
  for (let i = 0; i < 3 && !(await p.page.evaluate(() => document.activeElement.tagName === "INPUT")); i++)
    await p.page.keyboard.press("Tab");
  await p.page.keyboard.type("typed");
  assert(await p.page.getByLabel("Name", { exact: true }).inputValue() === "typed", "typing into the first field");
  await p.page.locator("#opt-sgd").focus();
  await p.page.keyboard.press("Space");
  assert(await p.page.locator("#opt-sgd").isChecked(), "space checks an optimizer");
  assert(await p.page.locator('fieldset.opt-params[data-opt="sgd"]').isVisible(), "its hyper-parameters appear");
  await p.close();
});

test("narrow_and_dark", async () => {
  const views = ["#/jobs", `#/jobs/${ctx.jobId}`, "#/new", `#/sweeps/${ctx.sweepId}`, "#/sweeps", "#/optimizers"];
  for (const dark of [false, true]) {
    for (const width of [390, 1280]) {
      const p = await openPage(ctx.main, { width, height: 844, dark });
      for (const v of views) {
        await p.go(v);
        await p.page.waitForTimeout(700);
        const [scroll, client] = await p.page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
        assert(scroll <= client, `${v} at ${width} px${dark ? " (dark)" : ""} scrolls sideways: ${scroll} > ${client}`);
      }
      if (width === 390) {
        for (const [v, name] of [["#/jobs", "job-list"], [`#/jobs/${ctx.jobId}`, "job-page"], [`#/sweeps/${ctx.sweepId}`, "sweep-view"]]) {
          await p.go(v);
          await p.page.waitForTimeout(700);
          await shot(p.page, `${name}-390${dark ? "-dark" : ""}`);
        }
      } else if (dark) {
        await p.go(`#/jobs/${ctx.jobId}`);
        await p.page.waitForTimeout(700);
        await shot(p.page, "job-page-dark");
      }
      await p.close();
    }
  }
});

test("token_prompt", async () => {
  const srv = await new Octetd("token", [], TOKEN).start();
  try {
    const p = await openPage(srv, { allow: [401, 422] });
    p.page.on("dialog", (d) => d.accept());
    await p.go("#/jobs");
    assert(/Jobs/.test(await p.page.locator("h1").textContent()), "reads work without the token");
    await p.go("#/new");
    await fillForm(p.page, { name: "with token", hidden: "16", train: 200, eval: 50, epochs: 1, batch: 32, logEvery: 5 });
    await p.page.locator("button[type=submit]").click();
    const dialog = p.page.locator("#token-dialog");
    await dialog.waitFor({ state: "visible" });
    await p.page.locator("#token-input").fill("wrong");
    await p.page.getByRole("button", { name: "Use this token" }).click();
    await p.page.waitForFunction(() => document.getElementById("token-dialog").open && !document.getElementById("token-error").hidden);
    await p.page.locator("#token-input").fill(TOKEN);
    await p.page.keyboard.press("Enter");
    await p.page.waitForURL(/#\/jobs\/\d+$/);
    const id = Number(/#\/jobs\/(\d+)$/.exec(p.page.url())[1]);
    assert((await srv.job(id)).name === "with token", "the job was submitted with the token");
    assert(await p.page.evaluate(() => sessionStorage.getItem("octet.token")) === TOKEN, "kept in sessionStorage");
    // a second write asks nothing
    await p.page.waitForFunction(() => document.querySelector(".job-head .badge"));
    const st = (await srv.job(id)).status;
    if (st === "queued" || st === "running") {
      await p.page.getByRole("button", { name: "Cancel job" }).click();
    }
    await p.page.waitForFunction(() => ["succeeded", "cancelled"].includes(document.querySelector(".job-head .badge").textContent), null, { timeout: 120000 });
    await p.page.getByRole("button", { name: "Delete job" }).click();
    await p.page.waitForURL(/#\/jobs$/);
    assert(!(await dialog.isVisible()), "the token was not asked again");
    assert((await srv.api("GET", "/jobs/" + id)).status === 404, "deleted with the kept token");
    await p.close();
  } finally {
    await srv.stop();
    srv.remove();
  }
});

test("a_thousand_jobs_and_twenty_thousand_points", async () => {
  // 1,000 jobs at once: a sweep over 1,000 seeds, cancelled before it runs
  const srv = await new Octetd("big", ["--max-sweep", "1000", "--max-queued", "2000"]).start();
  const times = {};
  try {
    const spec = { model: { arch: "mlp", hidden: [8], num_labels: 10 }, dataset: { name: "fashion-mnist", train_limit: 100, eval_limit: 50 },
      optimizer: { name: "adamw" }, training: { epochs: 1, batch_size: 32, device: "cpu" } };
    const seeds = Array.from({ length: 1000 }, (_, i) => i + 1);
    const r = await srv.api("POST", "/sweeps", { name: "thousand", base: spec, grid: { "training.seed": seeds } });
    assert(r.status === 201, "a sweep of 1,000 jobs: " + JSON.stringify(r.body).slice(0, 300));
    await srv.api("POST", `/sweeps/${r.body.id}/cancel`);
    const p = await openPage(srv);
    for (const limit of [50, 500]) {
      const t0 = Date.now();
      await p.page.goto(srv.base + "#/jobs?limit=" + limit);
      await p.page.waitForFunction((n) => document.querySelectorAll("table.jobs tbody tr").length === n, limit);
      times["list of " + limit] = Date.now() - t0;
    }
    // and the sweep view of the 1,000
    let t0 = Date.now();
    await p.page.goto(srv.base + "#/sweeps/" + r.body.id);
    await p.page.waitForFunction(() => document.querySelectorAll("table.groups tbody tr").length === 1);
    times["sweep view of 1,000 jobs"] = Date.now() - t0;
    // 20,000 points: the job page's step chart code, drawn in the page
    await p.page.goto(srv.base + "#/optimizers");
    await p.page.waitForSelector("main h1");
    const draw = await p.page.evaluate(async () => {
      const { lineChart } = await import("/js/charts.js");
      const { num, lr, int } = await import("/js/fmt.js");
      const c = lineChart({ title: "20,000 steps", labels: ["step", "training loss", "learning rate"], y2: ["learning rate"],
        xlabel: "optimizer step", ylabel: "training loss (nats)", y2label: "learning rate", integerX: true,
        format: { x: (v) => int(v), y: (v) => num(v), y2: (v) => lr(v) } });
      document.querySelector("main").prepend(c.figure);
      const rows = [];
      for (let i = 1; i <= 20000; i++) rows.push([i, 2 * Math.exp(-i / 4000) + 0.2 * Math.random(), 1e-3 * (1 - i / 20000)]);
      const t = performance.now();
      c.drawNow(rows);
      const drawn = performance.now() - t;
      const t2 = performance.now();
      rows.push([20001, 0.5, 0]);
      c.drawNow(rows);
      return { drawn, redraw: performance.now() - t2, rows: c.figure.querySelector(".chart-plot").dataset.rows };
    });
    assert(draw.rows === "20001", "the chart holds every point");
    times["draw 20,000 points"] = Math.round(draw.drawn);
    times["redraw with one more"] = Math.round(draw.redraw);
    console.log("  timings (ms): " + Object.entries(times).map(([k, v]) => `${k} ${v}`).join("; "));
    // generous bounds: a regression of an order of magnitude fails, a loaded machine does not
    assert(times["list of 500"] < 10000 && times["draw 20,000 points"] < 5000, "too slow: " + JSON.stringify(times));
    await p.close();
  } finally {
    await srv.stop();
    srv.remove();
  }
});

// ------------------------------------------------------------------ main

async function main() {
  preflight();
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  } catch (e) {
    skip("Chromium does not start here: " + e.message.split("\n")[0]);
  }
  let failures = 0, ran = 0, skipped = 0;
  ctx.main = new Octetd("main");
  const keep = process.env.OCTET_KEEP_WEB === "1";
  try {
    await ctx.main.start();
    for (const t of TESTS) {
      ran++;
      const t0 = Date.now();
      try {
        const note = await Promise.race([t.f(), sleep(600000).then(() => { throw new Error("timed out after 600 s"); })]);
        if (note && /^SKIP/.test(note) && !/\(part\)/.test(note)) skipped++;
        console.log(`PASS ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)${note ? " " + note : ""}`);
      } catch (e) {
        failures++;
        console.log(`FAIL ${t.name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n${e.stack || e}`);
      }
    }
  } finally {
    await browser.close();
    await ctx.main.stop();
    if (failures) console.log("---- octetd log (last lines)\n" + ctx.main.log().split("\n").slice(-30).join("\n"));
    if (keep) console.log("kept " + ctx.main.root);
    else ctx.main.remove();
  }
  console.log(`screenshots in ${ARTIFACTS}`);
  const pct = Math.floor((100 * (ran - failures)) / Math.max(ran, 1));
  console.log(`${pct}%: Checks: ${ran}, Failures: ${failures}, Errors: 0`);
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.log("FAIL: " + (e.stack || e));
  process.exit(1);
});
