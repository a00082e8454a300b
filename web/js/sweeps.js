// sweeps.js: the sweeps (#/sweeps) and one sweep's view (#/sweeps/ID): what the seed
// question asks at a glance (each configuration's accuracy against AdamW's, its optimizer
// state as a share of AdamW's, its time per epoch), one curve per configuration over the
// epochs with the band between the seeds' min and max (or mean ± one standard deviation), and
// a sortable table of the final metrics (mean ± std over the seeds) and memory. All of it is
// GET /sweeps/{id}, read again every few seconds until every job has finished.

import { get, post, del } from "./api.js";
import { el, setText, bytes, pct, num, int, times, when, meanStd, groupLabel, statusBadge, FINAL, DASH } from "./fmt.js";
import { lineChart, colors } from "./charts.js";

const POLL_MS = 2500;

export function renderSweeps(main, { signal }) {
  const body = el("tbody");
  const more = el("button", { type: "button", hidden: true }, "Older →");
  const empty = el("p", { class: "muted", hidden: true }, "No sweeps yet. ",
    el("a", { href: "#/new" }, "Choose several optimizers, learning rates or seeds in the form"), " to start one.");
  main.append(el("section", { class: "view" }, el("h1", { tabindex: "-1" }, "Sweeps"),
    el("p", { class: "lead" }, "A sweep runs one job per combination of its grid; its view groups them by everything but the seed."),
    el("div", { class: "table-wrap" }, el("table", { class: "sweeps" },
      el("caption", { class: "sr-only" }, "Sweeps, newest first"),
      el("thead", {}, el("tr", {}, ["ID", "Name", "Status", "Jobs", "Grid", "Created"].map((t) => el("th", { scope: "col" }, t)))),
      body)), empty, el("nav", { class: "pager", "aria-label": "Pages of sweeps" }, more)));
  let cursor = null;
  async function load() {
    const page = await get("/sweeps?limit=50" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""), { signal });
    for (const s of page.sweeps) {
      const c = s.counts, total = Object.values(c).reduce((a, b) => a + b, 0);
      body.append(el("tr", {},
        el("td", {}, el("a", { href: "#/sweeps/" + s.id }, String(s.id))),
        el("td", {}, el("a", { href: "#/sweeps/" + s.id }, s.name || "sweep " + s.id)),
        el("td", {}, statusBadge(s.status)),
        el("td", { class: "c-num" }, `${c.succeeded}/${total} done`),
        el("td", {}, gridText(s.grid)), el("td", {}, when(s.created_at))));
    }
    empty.hidden = body.children.length > 0;
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }
  more.addEventListener("click", () => load().catch(() => {}));
  load().catch((e) => { if (!signal.aborted) main.append(el("p", { class: "error" }, "Could not load the sweeps: " + e.message)); });
}

function gridText(grid) {
  return Object.entries(grid || {}).map(([k, vs]) => `${k}: ${vs.map((v) =>
    v && typeof v === "object" ? (v.name || JSON.stringify(v)) : String(v)).join(", ")}`).join("; ");
}

const METRICS = {
  eval_accuracy: { label: "eval accuracy", unit: "eval accuracy (%)", scale: 100, fmt: (v) => v.toFixed(1) + " %" },
  eval_f1: { label: "eval F1", unit: "eval F1 (%)", scale: 100, fmt: (v) => v.toFixed(1) + " %" },
  eval_loss: { label: "eval loss", unit: "eval loss (nats)", scale: 1, fmt: (v) => num(v) },
  train_loss: { label: "training loss", unit: "training loss, epoch mean (nats)", scale: 1, fmt: (v) => num(v) },
};

const COLUMNS = [
  // [id, header, value for sorting, cell text]
  ["config", "Configuration", (g) => g.label, null],
  ["seeds", "Seeds", (g) => g.seeds.length, (g) => g.seeds.join(", ")],
  ["done", "Done", (g) => g.counts.succeeded, (g) => `${g.counts.succeeded}/${g.jobs.length}`],
  ["acc", "Accuracy", (g) => g.final.eval_accuracy.mean, (g) => meanStd(g.final.eval_accuracy, pct)],
  ["f1", "F1", (g) => g.final.eval_f1.mean, (g) => meanStd(g.final.eval_f1, pct)],
  ["eloss", "Eval loss", (g) => g.final.eval_loss.mean, (g) => meanStd(g.final.eval_loss)],
  ["tloss", "Train loss", (g) => g.final.train_loss.mean, (g) => meanStd(g.final.train_loss)],
  ["spe", "Time/epoch", (g) => g.seconds_per_epoch.mean, (g) => secs(g.seconds_per_epoch)],
  ["sps", "Samples/s", (g) => g.samples_per_second.mean, (g) => int(g.samples_per_second.mean)],
  ["state", "Opt. state", (g) => g.memory.optimizer_state_bytes, (g) => bytes(g.memory.optimizer_state_bytes)],
  ["rel", "× AdamW", (g) => g.memory.relative_to_adamw, (g) => times(g.memory.relative_to_adamw)],
  ["peak", "Peak memory", (g) => g.memory.peak_bytes, (g) => bytes(g.memory.peak_bytes)],
];

function secs(st) {
  if (!st || st.mean === null || st.mean === undefined) return DASH;
  const f = (x) => x < 10 ? x.toFixed(2) : x.toFixed(1);
  return f(st.mean) + (st.std !== null && st.std !== undefined && st.n > 1 ? " ± " + f(st.std) : "") + " s";
}

export function renderSweep(main, { id, signal, navigate }) {
  const st = { sweep: null, metric: "eval_accuracy", band: "range", sort: { col: "acc", dir: -1 }, timer: 0 };
  const h1 = el("h1", { tabindex: "-1" }, "Sweep " + id);
  const head = el("div", { class: "job-head" });
  const bar = el("progress", { max: 1, value: 0, "aria-label": "jobs finished" });
  const barText = el("span", { class: "progress-text" }, DASH);
  const cancelBtn = el("button", { type: "button", class: "danger", hidden: true }, "Cancel the rest");
  const deleteBtn = el("button", { type: "button", hidden: true }, "Delete sweep");
  const jobsLink = el("a", { class: "button", href: "#/jobs?sweep=" + id }, "Its jobs");
  const msg = el("p", { class: "action-msg", role: "status" });
  const glance = el("div", { class: "glance" }, el("p", { class: "muted" }, "Loading…"));
  const metricSel = el("select", { id: "sw-metric" }, Object.entries(METRICS).map(([k, m]) => el("option", { value: k }, m.label)));
  const bandSel = el("select", { id: "sw-band" }, el("option", { value: "range" }, "min to max of the seeds"),
    el("option", { value: "std" }, "mean ± one standard deviation"), el("option", { value: "none" }, "no band"));
  let chart = null;
  const chartSlot = el("div", { class: "chart-slot" });
  const thead = el("thead");
  const tbody = el("tbody");
  const table = el("table", { class: "groups num-table" }, el("caption", { class: "sr-only" },
    "Final metrics per configuration, mean ± standard deviation over the seeds, and memory"), thead, tbody);

  main.append(el("section", { class: "view sweep" },
    el("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, el("a", { href: "#/sweeps" }, "Sweeps"), " › sweep " + id),
    h1, head,
    el("div", { class: "progress-row" }, bar, barText),
    el("div", { class: "actions" }, jobsLink, cancelBtn, deleteBtn), msg,
    el("section", { class: "card" }, el("h2", {}, "At a glance"), glance),
    el("section", { class: "card" }, el("h2", {}, "Per epoch, over the seeds"),
      el("div", { class: "filters" }, el("label", { for: "sw-metric" }, "Metric"), metricSel,
        el("label", { for: "sw-band" }, "Band"), bandSel),
      chartSlot),
    el("section", { class: "card" }, el("h2", {}, "Final metrics and memory"),
      el("p", { class: "muted small" }, "Mean ± standard deviation over the seeds, at each configuration's last evaluated epoch. Select a column's title to sort by it."),
      el("div", { class: "table-wrap" }, table))));

  metricSel.addEventListener("change", () => { st.metric = metricSel.value; drawChart(true); });
  bandSel.addEventListener("change", () => { st.band = bandSel.value; drawChart(true); });
  cancelBtn.addEventListener("click", async () => {
    if (!confirm(`Cancel what is left of sweep ${id}? Finished jobs are kept.`)) return;
    cancelBtn.disabled = true;
    try { await post(`/sweeps/${id}/cancel`); setText(msg, "Cancel requested."); refresh(); }
    catch (e) { setText(msg, "Could not cancel: " + e.message); cancelBtn.disabled = false; }
  });
  deleteBtn.addEventListener("click", async () => {
    if (!confirm(`Delete sweep ${id} and its jobs? This cannot be undone.`)) return;
    try { await del(`/sweeps/${id}`); navigate("#/sweeps"); }
    catch (e) { setText(msg, "Could not delete: " + e.message); }
  });

  function groups() {
    const pal = colors();
    return st.sweep.groups.map((g, i) => Object.assign({}, g, { label: groupLabel(g.key), color: pal[i % pal.length], index: i }));
  }

  function show(s) {
    st.sweep = s;
    document.title = `${s.name || "sweep " + id} · octet`;
    setText(h1, s.name || "Sweep " + id);
    const c = s.counts, total = s.jobs.length, done = c.succeeded + c.failed + c.cancelled;
    head.replaceChildren(statusBadge(s.status), el("dl", { class: "facts" },
      el("div", { class: "wide" }, el("dt", {}, "Grid"), el("dd", {}, gridText(s.grid))),
      el("div", {}, el("dt", {}, "Jobs"), el("dd", {}, `${total}: ${["queued", "running", "succeeded", "failed", "cancelled"]
        .filter((k) => c[k]).map((k) => `${c[k]} ${k}`).join(", ")}`)),
      el("div", {}, el("dt", {}, "Created"), el("dd", {}, when(s.created_at)))));
    bar.value = total ? done / total : 0;
    setText(barText, `${done} of ${total} jobs finished`);
    cancelBtn.hidden = FINAL.has(s.status);
    deleteBtn.hidden = !FINAL.has(s.status);
    glance.replaceChildren(...glanceView(groups()));
    drawChart(false);
    drawTable();
  }

  function drawChart(rebuild) {
    const gs = groups();
    const m = METRICS[st.metric];
    const epochs = [...new Set(gs.flatMap((g) => g.epochs.map((e) => e.epoch)))].sort((a, b) => a - b);
    const band = st.band;
    const rows = epochs.map((ep) => [ep, ...gs.map((g) => {
      const e = g.epochs.find((x) => x.epoch === ep);
      const s = e && e[st.metric];
      if (!s || s.mean === null) return band === "none" ? null : [null, null, null];
      const mid = s.mean * m.scale;
      if (band === "none") return mid;
      let lo = s.min, hi = s.max;
      if (band === "std") { const d = s.std || 0; lo = s.mean - d; hi = s.mean + d; }
      return [lo * m.scale, mid, hi * m.scale];
    })]);
    st.rows = rows;
    if (rebuild || !chart) {
      if (chart) chart.destroy();
      chart = lineChart({ title: `${cap(m.label)} per epoch: one curve per configuration` +
          (band === "range" ? ", band from the seeds' min to max" : band === "std" ? ", band of ± one standard deviation" : ""),
        labels: ["epoch", ...gs.map((g) => g.label)], colors: gs.map((g) => g.color),
        xlabel: "epoch", ylabel: m.unit, points: true, bands: band !== "none", height: 300,
        format: { y: m.fmt }, integerX: true,
        bandText: (row, i) => {
          const r = st.rows[row] && st.rows[row][i + 1];
          return Array.isArray(r) && r[0] !== null ? `${band === "std" ? "±1 sd " : "seeds "}${m.fmt(r[0])} to ${m.fmt(r[2])}` : "";
        },
        description: `Line chart of the ${m.label} per epoch for each configuration of the sweep, mean over the seeds` +
          (band === "none" ? "." : " with a band around it; the table below holds the final values.") });
      chartSlot.replaceChildren(chart.figure);
    }
    chart.update(rows);
  }

  function drawTable() {
    const gs = groups();
    const { col, dir } = st.sort;
    const c = COLUMNS.find((x) => x[0] === col);
    gs.sort((a, b) => {
      const x = c[2](a), y = c[2](b);
      if (x === y) return a.index - b.index;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * dir;
    });
    thead.replaceChildren(el("tr", {}, COLUMNS.map(([cid, title]) => {
      const sorted = cid === col;
      const btn = el("button", { type: "button", class: "sort" }, title, el("span", { class: "arrow", "aria-hidden": "true" },
        sorted ? (dir > 0 ? " ▲" : " ▼") : ""));
      btn.addEventListener("click", () => {
        st.sort = { col: cid, dir: sorted ? -dir : (cid === "config" ? 1 : -1) };
        drawTable();
        thead.querySelector(`th[data-col="${cid}"] button`).focus();
      });
      return el("th", { scope: "col", "data-col": cid, "aria-sort": sorted ? (dir > 0 ? "ascending" : "descending") : null }, btn);
    })));
    tbody.replaceChildren(...gs.map((g) => el("tr", {}, COLUMNS.map(([cid, , , text], i) => i === 0
      ? el("th", { scope: "row" }, el("span", { class: "sw", style: "background:" + g.color }), g.label)
      : el("td", {}, text(g))))));
  }

  async function refresh() {
    clearTimeout(st.timer);
    try {
      const s = await get(`/sweeps/${id}`, { signal });
      if (signal.aborted) return;
      show(s);
      if (!FINAL.has(s.status)) st.timer = setTimeout(refresh, POLL_MS);
    } catch (e) {
      if (signal.aborted) return;
      if (e.status === 404) { setText(h1, `No sweep ${id}`); setText(msg, "This sweep does not exist (deleted, or never made)."); return; }
      setText(msg, "Could not load the sweep: " + e.message);
      st.timer = setTimeout(refresh, POLL_MS * 2);
    }
  }
  refresh();
  return () => { clearTimeout(st.timer); if (chart) chart.destroy(); };
}

const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

function optimizerOf(g) {
  const o = g.key && g.key.optimizer;
  return o && typeof o === "object" ? o.name : null;
}

// Everything but the optimizer, to pair a configuration with AdamW's at the same settings.
function restOf(g) {
  const k = Object.assign({}, g.key);
  if (k.optimizer && typeof k.optimizer === "object") {
    const o = Object.assign({}, k.optimizer);
    delete o.name;
    k.optimizer = Object.keys(o).length ? o : undefined;
  }
  return JSON.stringify(k);
}

// One sentence per configuration: accuracy against AdamW's, state memory, time per epoch.
function glanceView(gs) {
  const acc = (g) => g.final.eval_accuracy;
  const base = gs.filter((g) => optimizerOf(g) === "adamw");
  const out = [];
  if (!base.length) out.push(el("p", { class: "muted" }, "This sweep has no AdamW configuration to compare with; memory is still shown against AdamW's 8 bytes per parameter."));
  const items = gs.map((g) => {
    const b = base.find((x) => restOf(x) === restOf(g)) || base[0];
    const a = acc(g);
    const parts = [el("span", { class: "sw", style: "background:" + g.color }), el("strong", {}, g.label), ": "];
    parts.push(a.n ? `accuracy ${meanStd(a, pct)}` : "no epoch evaluated yet");
    if (b && b !== g && a.n && acc(b).n) {
      const d = 100 * (a.mean - acc(b).mean);
      const overlap = a.min <= acc(b).max && acc(b).min <= a.max;
      parts.push(` against AdamW's ${meanStd(acc(b), pct)} (`, el("strong", {}, `${d >= 0 ? "+" : "−"}${Math.abs(d).toFixed(1)} points`),
        overlap ? ", within the seeds' spread)" : ", outside the seeds' spread)");
    }
    const rel = g.memory.relative_to_adamw;
    if (rel !== null && rel !== undefined)
      parts.push("; optimizer state ", el("strong", {}, times(rel) + " AdamW's"), ` (${bytes(g.memory.optimizer_state_bytes)} against ${bytes(g.memory.adamw_bytes)})`);
    const t = g.seconds_per_epoch;
    if (t && t.mean !== null) {
      parts.push(`; ${secs(t)} an epoch`);
      if (b && b !== g && b.seconds_per_epoch.mean) parts.push(` (${times(t.mean / b.seconds_per_epoch.mean)} AdamW's time)`);
    }
    parts.push(".");
    return el("li", {}, parts);
  });
  out.push(el("ul", { class: "glance-list" }, items));
  return out;
}

