// jobs.js: the job list (#/jobs): newest first, filtered by status, optimizer and sweep,
// paged with the API's cursor, and kept live by polling GET /jobs for the page on show
// (one request for the whole page, however many jobs run; an event stream per job would use
// up the browser's six connections to the server). Rows are updated in place, cell by cell;
// jobs submitted since the page was shown are announced, not inserted, so nothing moves
// under the reader's pointer.

import { get, cached } from "./api.js";
import { el, setText, bytes, pct, duration, statusBadge, STATUSES, DASH } from "./fmt.js";

const POLL_ACTIVE_MS = 1500; // while a job on the page is queued or running
const POLL_IDLE_MS = 6000;   // first page, nothing running: only to notice new jobs

export function renderJobs(main, { params, signal, setParams }) {
  const state = {
    status: params.get("status") || "",
    optimizer: params.get("optimizer") || "",
    sweep: params.get("sweep") || "",
    limit: Number(params.get("limit")) || 50,
    cursors: [null],  // the cursor of each page seen; the last is the page shown
    rows: new Map(),  // job id -> row
    newest: 0,        // the newest id on the first page
    timer: 0,
  };

  const h1 = el("h1", { tabindex: "-1" }, "Jobs");
  const statusSel = el("select", { id: "f-status", name: "status" },
    el("option", { value: "" }, "any status"), STATUSES.map((s) => el("option", { value: s }, s)));
  const optSel = el("select", { id: "f-optimizer", name: "optimizer" }, el("option", { value: "" }, "any optimizer"));
  const sweepSel = el("select", { id: "f-sweep", name: "sweep" }, el("option", { value: "" }, "any sweep"));
  const limitSel = el("select", { id: "f-limit", name: "limit" },
    [50, 100, 500].map((n) => el("option", { value: n }, n + " a page")));
  statusSel.value = state.status;
  limitSel.value = String(state.limit);
  const filters = el("form", { class: "filters", role: "search", "aria-label": "Filter the jobs" },
    el("span", { class: "filter" }, el("label", { for: "f-status" }, "Status"), statusSel),
    el("span", { class: "filter" }, el("label", { for: "f-optimizer" }, "Optimizer"), optSel),
    el("span", { class: "filter" }, el("label", { for: "f-sweep" }, "Sweep"), sweepSel),
    el("span", { class: "filter" }, el("label", { for: "f-limit" }, "Show"), limitSel));
  filters.addEventListener("submit", (e) => e.preventDefault());
  filters.addEventListener("change", () => {
    state.status = statusSel.value;
    state.optimizer = optSel.value;
    state.sweep = sweepSel.value;
    state.limit = Number(limitSel.value);
    setParams({ status: state.status, optimizer: state.optimizer, sweep: state.sweep,
      limit: state.limit === 50 ? "" : state.limit });
    state.cursors = [null];
    load();
  });

  const notice = el("p", { class: "notice", "aria-live": "polite" });
  const tbody = el("tbody");
  const table = el("table", { class: "jobs" },
    el("caption", { class: "sr-only" }, "Jobs, newest first"),
    el("thead", {}, el("tr", {},
      el("th", { scope: "col", class: "c-id" }, "ID"),
      el("th", { scope: "col", class: "c-status" }, "Status"),
      el("th", { scope: "col", class: "c-progress" }, "Progress"),
      el("th", { scope: "col", class: "c-name" }, "Name"),
      el("th", { scope: "col", class: "c-model" }, "Model"),
      el("th", { scope: "col", class: "c-dataset" }, "Dataset"),
      el("th", { scope: "col", class: "c-opt" }, "Optimizer"),
      el("th", { scope: "col", class: "c-num" }, el("abbr", { title: "latest eval accuracy" }, "Acc.")),
      el("th", { scope: "col", class: "c-num c-f1" }, el("abbr", { title: "latest eval F1" }, "F1")),
      el("th", { scope: "col", class: "c-num c-mem" }, el("abbr", { title: "optimizer-state memory" }, "Opt. state")))),
    tbody);
  const empty = el("p", { class: "muted", hidden: true });
  const prev = el("button", { type: "button", disabled: true }, "← Newer");
  const next = el("button", { type: "button", disabled: true }, "Older →");
  const pageNo = el("span", { class: "muted" });
  const pager = el("nav", { class: "pager", "aria-label": "Pages of jobs" }, prev, pageNo, next);
  prev.addEventListener("click", () => { state.cursors.pop(); load(); });
  next.addEventListener("click", () => { state.cursors.push(next.dataset.cursor); load(); });

  main.append(el("section", { class: "view" }, h1,
    el("p", { class: "lead" }, "Every job, newest first, live while they run. ",
      el("a", { href: "#/new" }, "Submit a job or a sweep"), "."),
    filters, notice, el("div", { class: "table-wrap" }, table), empty, pager));

  // The filter menus: the catalog's optimizers and the sweeps (with the one asked for, even
  // when it is older than the newest 100).
  cached("/optimizers").then((c) => {
    for (const o of c.optimizers) optSel.append(el("option", { value: o.name }, o.name));
    optSel.value = state.optimizer;
  }).catch(() => {});
  function fillSweeps(list) {
    sweepSel.replaceChildren(el("option", { value: "" }, "any sweep"),
      list.map((w) => el("option", { value: w.id }, `#${w.id} ${w.name}`)));
    if (state.sweep && !list.some((w) => String(w.id) === state.sweep))
      sweepSel.append(el("option", { value: state.sweep }, "#" + state.sweep));
    sweepSel.value = state.sweep;
  }
  fillSweeps([]);
  get("/sweeps?limit=100", { signal }).then((s) => fillSweeps(s.sweeps)).catch(() => {});

  function query(cursor) {
    const q = new URLSearchParams();
    if (state.status) q.set("status", state.status);
    if (state.optimizer) q.set("optimizer", state.optimizer);
    if (state.sweep) q.set("sweep", state.sweep);
    q.set("limit", state.limit);
    if (cursor) q.set("cursor", cursor);
    return "/jobs?" + q;
  }

  async function load() {
    clearTimeout(state.timer);
    const cursor = state.cursors[state.cursors.length - 1];
    let page;
    try {
      page = await get(query(cursor), { signal });
    } catch (e) {
      if (signal.aborted) return;
      setText(notice, "Could not load the jobs: " + e.message);
      notice.className = "notice error";
      state.timer = setTimeout(load, POLL_IDLE_MS);
      return;
    }
    if (signal.aborted) return;
    notice.className = "notice";
    setText(notice, "");
    state.rows.clear();
    tbody.replaceChildren(...page.jobs.map((j) => {
      const r = jobRow(j);
      state.rows.set(j.id, r);
      return r.tr;
    }));
    state.newest = page.jobs.length ? page.jobs[0].id : 0;
    const filtered = state.status || state.optimizer || state.sweep;
    empty.hidden = page.jobs.length > 0;
    empty.replaceChildren(filtered ? "No job matches these filters." : "No jobs yet. ",
      filtered ? "" : el("a", { href: "#/new" }, "Submit the first one."));
    prev.disabled = state.cursors.length < 2;
    next.disabled = !page.next_cursor;
    next.dataset.cursor = page.next_cursor || "";
    setText(pageNo, "page " + state.cursors.length);
    schedule(page.jobs);
  }

  function schedule(jobs) {
    const active = jobs.some((j) => j.status === "queued" || j.status === "running");
    const first = state.cursors.length === 1;
    if (active || first) state.timer = setTimeout(poll, active ? POLL_ACTIVE_MS : POLL_IDLE_MS);
  }

  async function poll() {
    if (signal.aborted) return;
    if (document.hidden) { state.timer = setTimeout(poll, POLL_IDLE_MS); return; }
    const cursor = state.cursors[state.cursors.length - 1];
    let page;
    try {
      page = await get(query(cursor), { signal });
    } catch {
      if (!signal.aborted) state.timer = setTimeout(poll, POLL_IDLE_MS);
      return;
    }
    if (signal.aborted) return;
    let fresh = 0;
    for (const j of page.jobs) {
      const r = state.rows.get(j.id);
      if (r) r.update(j);
      else if (j.id > state.newest && state.cursors.length === 1) fresh++;
    }
    if (fresh) {
      notice.replaceChildren(`${fresh} new job${fresh > 1 ? "s" : ""} since this page was shown. `,
        el("button", { type: "button", class: "link", onclick: () => load() }, "Show them"));
    }
    if (!state.rows.size && page.jobs.length && state.cursors.length === 1) { load(); return; }
    schedule(page.jobs);
  }

  load();
  return () => clearTimeout(state.timer);
}

// One row of the list, with update(job) changing only what changed.
function jobRow(j) {
  const link = el("a", { href: "#/jobs/" + j.id }, String(j.id));
  const status = el("td", { class: "c-status" });
  const bar = el("progress", { max: 1, value: 0, "aria-label": "progress of job " + j.id });
  const eta = el("span", { class: "eta" });
  const name = el("a", { href: "#/jobs/" + j.id });
  const sweep = el("a", { class: "sweep-tag", hidden: true });
  // data-label: the column's name, shown beside the value where the table is laid out as
  // cards (narrow screens)
  const cells = { model: el("td", { class: "c-model" }), dataset: el("td", { class: "c-dataset" }),
    opt: el("td", { class: "c-opt" }), acc: el("td", { class: "c-num c-acc", "data-label": "accuracy" }),
    f1: el("td", { class: "c-num c-f1", "data-label": "F1" }), mem: el("td", { class: "c-num c-mem", "data-label": "state" }) };
  const tr = el("tr", { dataset: { id: j.id, status: j.status } },
    el("td", { class: "c-id" }, link), status,
    el("td", { class: "c-progress" }, bar, eta),
    el("td", { class: "c-name" }, name, sweep),
    cells.model, cells.dataset, cells.opt, cells.acc, cells.f1, cells.mem);
  let shown = "";

  function update(j) {
    if (shown !== j.status) {
      shown = j.status;
      status.replaceChildren(statusBadge(j.status));
      tr.dataset.status = j.status;
    }
    const p = j.progress || 0;
    if (Number(bar.value) !== p) bar.value = p;
    setText(eta, progressText(j));
    setText(name, j.name || "job " + j.id);
    if (j.sweep_id) {
      sweep.hidden = false;
      sweep.href = "#/sweeps/" + j.sweep_id;
      setText(sweep, "sweep " + j.sweep_id);
    }
    setText(cells.model, j.arch);
    setText(cells.dataset, j.dataset);
    setText(cells.opt, j.optimizer);
    const e = j.latest_epoch;
    setText(cells.acc, e ? pct(e.eval_accuracy) : DASH);
    setText(cells.f1, e ? pct(e.eval_f1) : DASH);
    setText(cells.mem, bytes(j.optimizer_state_bytes));
  }
  update(j);
  return { tr, update };
}

export function progressText(j) {
  const p = Math.round(100 * (j.progress || 0)) + " %";
  switch (j.status) {
  case "queued": return "queued";
  case "running":
    if (j.cancel_requested) return p + " · cancelling";
    return j.eta_seconds !== null && j.eta_seconds !== undefined ? p + " · " + duration(j.eta_seconds) + " left" : p;
  case "succeeded": return "done";
  default: return p + " · " + j.status;
  }
}
