// job.js: one job's page (#/jobs/ID): status, attempt, progress and ETA; the evaluated
// epochs as a table and two charts (loss; accuracy and F1); the logged training loss and
// learning rate per step; the memory figures beside AdamW's; the error of a failed job; the
// spec; cancel, delete and "submit a copy".
//
// It reads the job, its epochs, every logged step (GET /steps pages of 10,000) and its memory,
// then, while the job is not finished, follows GET /jobs/{id}/events from the job's
// last_event on: each step, epoch and memory event is added where it belongs (an event that
// the first reads already held is skipped by its step or epoch number), a status event
// updates the status, and the final one closes the stream and reads the job once more. The
// ETA comes from the job itself, read again every few seconds while it runs.

import { get, post, del, ApiError } from "./api.js";
import { el, setText, pct, num, lr, int, duration, secs, when, statusBadge, FINAL, DASH } from "./fmt.js";
import { lineChart } from "./charts.js";
import { memoryChart, ratioText, JOB_ROWS } from "./memory.js";
import { progressText } from "./jobs.js";

const STEPS_PAGE = 10000;
const MAX_EPOCH_ROWS = 500; // rows laid out ahead; a longer job's rows are added as they come
const REFRESH_MS = 3000;

export function renderJob(main, { id, signal, navigate }) {
  const st = { job: null, epochs: [], steps: [], lastStep: 0, lastEpoch: 0, source: null, timer: 0, charts: [] };

  const h1 = el("h1", { tabindex: "-1" }, "Job " + id);
  const badge = el("span", { class: "status-slot" });
  const facts = el("dl", { class: "facts" });
  const bar = el("progress", { max: 1, value: 0, "aria-label": "progress" });
  const progressLabel = el("span", { class: "progress-text" }, DASH);
  const cancelBtn = el("button", { type: "button", class: "danger", hidden: true }, "Cancel job");
  const deleteBtn = el("button", { type: "button", hidden: true }, "Delete job");
  const copyBtn = el("a", { class: "button", href: "#/new?copy=" + id }, "Submit a copy");
  const actionMsg = el("p", { class: "action-msg", role: "status" });
  const errorBox = el("div", { class: "error-box", role: "alert", hidden: true });

  const lossChart = lineChart({ title: "Loss per epoch", labels: ["epoch", "train loss", "eval loss"],
    xlabel: "epoch", ylabel: "loss (cross-entropy, nats)", points: true, height: 240,
    format: { y: (v) => num(v) }, integerX: true,
    description: "Line chart of the training and evaluation loss per epoch; the table below holds the values." });
  const accChart = lineChart({ title: "Accuracy and F1 per epoch", labels: ["epoch", "eval accuracy", "eval F1"],
    xlabel: "epoch", ylabel: "eval accuracy, F1 (%)", points: true, height: 240,
    format: { y: (v) => v.toFixed(1) + " %" }, integerX: true,
    description: "Line chart of the evaluation accuracy and F1 per epoch in percent; the table below holds the values." });
  const stepChart = lineChart({ title: "Training loss and learning rate per step",
    labels: ["step", "training loss", "learning rate"], y2: ["learning rate"],
    xlabel: "optimizer step", ylabel: "training loss (nats)", y2label: "learning rate",
    format: { x: (v) => int(v), y: (v) => num(v), y2: (v) => lr(v) }, integerX: true, height: 280,
    description: "Line chart of the logged training loss (left axis) and learning rate (right axis) per optimizer step." });
  st.charts.push(lossChart, accChart, stepChart);
  const stepNote = el("p", { class: "muted small" });

  const epochBody = el("tbody");
  const epochTable = el("table", { class: "epochs num-table" },
    el("caption", { class: "sr-only" }, "Evaluated epochs"),
    el("thead", {}, el("tr", {}, ["Epoch", "Step", "Train loss", "Eval loss", "Accuracy", "F1", "Learning rate",
      "Train time", "Eval time", "Samples/s"].map((t) => el("th", { scope: "col" }, t)))),
    epochBody);
  const epochRows = []; // one row per epoch of the spec, laid out before it is evaluated

  const mem = memoryChart("Memory (bytes, binary units)", JOB_ROWS);
  const memNote = el("p", { class: "muted small" }, "No memory figures yet: they are recorded when training starts.");
  const specBox = el("div", { class: "spec" });

  main.append(el("section", { class: "view job" },
    el("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, el("a", { href: "#/jobs" }, "Jobs"), " › job " + id),
    h1,
    el("div", { class: "job-head" }, badge, facts),
    el("div", { class: "progress-row" }, bar, progressLabel),
    el("div", { class: "actions" }, copyBtn, cancelBtn, deleteBtn),
    actionMsg, errorBox,
    el("div", { class: "grid2" }, lossChart.figure, accChart.figure),
    el("section", { class: "card" }, el("h2", {}, "Training steps"), stepChart.figure, stepNote),
    el("section", { class: "card" }, el("h2", {}, "Epochs"),
      el("div", { class: "table-wrap" }, epochTable)),
    el("div", { class: "grid2" },
      el("section", { class: "card" }, el("h2", {}, "Memory"), mem.figure, memNote),
      el("section", { class: "card" }, el("h2", {}, "Spec"), specBox))));

  cancelBtn.addEventListener("click", async () => {
    if (!confirm(`Cancel job ${id}? A running job stops within one batch; its finished epochs are kept.`)) return;
    cancelBtn.disabled = true;
    try {
      await post(`/jobs/${id}/cancel`);
      setText(actionMsg, "Cancel requested.");
      refreshJob();
    } catch (e) {
      setText(actionMsg, "Could not cancel: " + e.message);
      cancelBtn.disabled = false;
    }
  });
  deleteBtn.addEventListener("click", async () => {
    if (!confirm(`Delete job ${id} with its history and checkpoints? This cannot be undone.`)) return;
    deleteBtn.disabled = true;
    try {
      await del(`/jobs/${id}`);
      navigate("#/jobs");
    } catch (e) {
      setText(actionMsg, "Could not delete: " + e.message);
      deleteBtn.disabled = false;
    }
  });

  function showJob(j) {
    st.job = j;
    document.title = `${j.name || "job " + id} · octet`;
    setText(h1, j.name || "Job " + id);
    badge.replaceChildren(statusBadge(j.status));
    const sweep = j.sweep_id ? el("a", { href: "#/sweeps/" + j.sweep_id }, "sweep " + j.sweep_id) : null;
    const rows = [["ID", String(j.id)], ["Attempt", String(j.attempt)], ["Device", j.device || DASH],
      ["Model", modelText(j.spec.model)], ["Dataset", datasetText(j.spec.dataset)], ["Optimizer", j.optimizer],
      ["Created", when(j.created_at)], ["Started", when(j.started_at)], ["Finished", when(j.finished_at)]];
    if (sweep) rows.push(["Sweep", sweep]);
    facts.replaceChildren(...rows.map(([k, v]) => el("div", {}, el("dt", {}, k), el("dd", {}, v))));
    // every epoch's row from the start, so the table does not grow while the job runs
    for (let n = epochRows.length + 1; n <= Math.min(j.spec.training.epochs, MAX_EPOCH_ROWS); n++) epochRow(n);
    showProgress(j.progress || 0);
    cancelBtn.hidden = FINAL.has(j.status);
    cancelBtn.disabled = Boolean(j.cancel_requested);
    deleteBtn.hidden = !FINAL.has(j.status);
    if (j.error) {
      errorBox.hidden = false;
      errorBox.replaceChildren(el("h2", {}, "The job failed"),
        el("p", {}, el("code", {}, j.error.code), ": ", j.error.message),
        j.error.field ? el("p", {}, "Field: ", el("code", {}, j.error.field)) : "");
    } else {
      errorBox.hidden = true;
    }
    if (!specBox.firstChild) specBox.append(specView(j.spec));
  }

  function showProgress(p) {
    const j = st.job;
    if (Number(bar.value) !== p) bar.value = p;
    let t = progressText(Object.assign({}, j, { progress: p }));
    if (j.total_steps) t += ` · step ${int(Math.round(p * j.total_steps))} of ${int(j.total_steps)}`;
    if (j.status === "running" && j.started_at) t += ` · running for ${duration((Date.now() - Date.parse(j.started_at)) / 1000)}`;
    setText(progressLabel, t);
  }

  function epochRow(n) {
    const cells = Array.from({ length: 9 }, () => el("td", {}, DASH));
    const tr = el("tr", { class: "pending" }, el("th", { scope: "row" }, String(n)), cells);
    epochRows[n - 1] = { tr, cells };
    epochBody.append(tr);
    return epochRows[n - 1];
  }

  function addEpochs(list) {
    let added = false;
    for (const e of list) {
      if (e.epoch <= st.lastEpoch) continue;
      st.epochs.push(e);
      st.lastEpoch = e.epoch;
      const row = epochRows[e.epoch - 1] || epochRow(e.epoch);
      row.tr.classList.remove("pending");
      [int(e.step), num(e.train_loss), num(e.eval_loss), pct(e.eval_accuracy, 2), pct(e.eval_f1, 2), lr(e.learning_rate),
        secs(e.train_seconds), secs(e.eval_seconds), int(e.train_samples_per_second)].forEach((t, i) => setText(row.cells[i], t));
      added = true;
    }
    if (!added) return;
    lossChart.update(st.epochs.map((e) => [e.epoch, e.train_loss, e.eval_loss]));
    accChart.update(st.epochs.map((e) => [e.epoch, e.eval_accuracy === null ? null : 100 * e.eval_accuracy,
      e.eval_f1 === null ? null : 100 * e.eval_f1]));
  }

  function addSteps(list) {
    let added = false;
    for (const s of list) {
      if (s.step <= st.lastStep) continue;
      st.steps.push([s.step, s.loss, s.learning_rate]);
      st.lastStep = s.step;
      added = true;
    }
    if (!added) return;
    stepChart.update(st.steps);
    const every = st.job && st.job.spec.training.log_every;
    setText(stepNote, `${int(st.steps.length)} logged steps${every ? ` (every ${every} optimizer steps)` : ""}, up to step ${int(st.lastStep)}. Drag to zoom, double-click to zoom out.`);
  }

  function showMemory(m) {
    if (!m) return;
    memNote.hidden = true;
    mem.update(m, m.optimizer_state);
    setText(mem.ratio, ratioText(m.optimizer_state_bytes, m.adamw_bytes, m.parameters) +
      (m.final ? "" : " (while training; final figures when the job ends)"));
  }

  async function refreshJob() {
    try {
      const j = await get(`/jobs/${id}`, { signal });
      if (!signal.aborted) showJob(j);
      return j;
    } catch (e) {
      return null;
    }
  }

  // Reads the logged steps after the newest one held (all of them at first), 10,000 a page.
  async function readAllSteps() {
    let after = st.lastStep;
    for (;;) {
      const page = await get(`/jobs/${id}/steps?after_step=${after}&limit=${STEPS_PAGE}`, { signal });
      addSteps(page.steps);
      if (page.next_after_step === null || page.next_after_step === undefined || !page.steps.length) break;
      after = page.next_after_step;
    }
  }

  function follow(lastEvent) {
    const es = new EventSource(`/api/v1/jobs/${id}/events?last_event_id=${lastEvent}`);
    st.source = es;
    const data = (ev) => JSON.parse(ev.data);
    es.addEventListener("step", (ev) => {
      const s = data(ev);
      addSteps([s]);
      if (st.job && st.job.total_steps && st.job.status === "running") showProgress(Math.min(1, s.step / st.job.total_steps));
    });
    es.addEventListener("epoch", (ev) => addEpochs([data(ev)]));
    es.addEventListener("memory", (ev) => showMemory(data(ev)));
    es.addEventListener("status", async (ev) => {
      const s = data(ev);
      if (FINAL.has(s.status)) {
        es.close();
        st.source = null;
        clearInterval(st.timer);
        const [j, m, ep] = await Promise.all([refreshJob(),
          get(`/jobs/${id}/memory`, { signal }).catch(() => null), get(`/jobs/${id}/epochs`, { signal }).catch(() => null)]);
        if (m) showMemory(m.memory);
        if (ep) addEpochs(ep.epochs);
        if (j) readAllSteps().catch(() => {});
      } else {
        refreshJob();
      }
    });
  }

  (async () => {
    let j;
    try {
      j = await get(`/jobs/${id}`, { signal });
    } catch (e) {
      if (signal.aborted) return;
      h1.textContent = e instanceof ApiError && e.status === 404 ? `No job ${id}` : `Job ${id}`;
      setText(actionMsg, e.status === 404 ? "This job does not exist (deleted, or never submitted)." : "Could not load the job: " + e.message);
      return;
    }
    if (signal.aborted) return;
    showJob(j);
    // at once, beside the epochs and the memory; marked handled now, since an abort may end this
    // function at the Promise.all below before it awaits the steps
    const steps = readAllSteps();
    steps.catch(() => {});
    const [ep, m] = await Promise.all([get(`/jobs/${id}/epochs`, { signal }), get(`/jobs/${id}/memory`, { signal })]);
    if (signal.aborted) return;
    addEpochs(ep.epochs);
    showMemory(m.memory);
    await steps;
    if (signal.aborted || FINAL.has(j.status)) return;
    follow(j.last_event);
    st.timer = setInterval(() => { if (!document.hidden) refreshJob(); }, REFRESH_MS);
  })().catch((e) => { if (!signal.aborted) setText(actionMsg, "Could not load the job's history: " + e.message); });

  return () => {
    if (st.source) st.source.close();
    clearInterval(st.timer);
    for (const c of st.charts) c.destroy();
  };
}

export function modelText(m) {
  if (!m) return DASH;
  if (m.arch === "mlp") return `mlp [${(m.hidden || []).join(", ")}]`;
  return m.arch + " " + (m.preset || m.path || "");
}

export function datasetText(d) {
  if (!d) return DASH;
  const name = d.name || [d.train_file, d.eval_file].filter(Boolean).join(" + ");
  const lim = [d.train_limit ? int(d.train_limit) + " train" : "", d.eval_limit ? int(d.eval_limit) + " eval" : ""].filter(Boolean);
  return name + (lim.length ? ` (${lim.join(", ")})` : "");
}

// The spec as the server accepted it (defaults filled in): one list per section, and the JSON.
function specView(spec) {
  const show = (v) => v === null ? "default" : Array.isArray(v) ? (v.length ? v.map((x) =>
    typeof x === "object" ? JSON.stringify(x) : String(x)).join(", ") : "none") : typeof v === "object" ? JSON.stringify(v) : String(v);
  const sections = ["model", "dataset", "optimizer", "training"].filter((k) => spec[k]).map((k) =>
    el("div", { class: "spec-part" }, el("h3", {}, k),
      el("dl", {}, Object.entries(spec[k]).flatMap(([f, v]) => [el("dt", {}, f), el("dd", {}, show(v))]))));
  return el("div", {}, el("div", { class: "spec-grid" }, sections),
    el("details", {}, el("summary", {}, "The spec as JSON"), el("pre", {}, JSON.stringify(spec, null, 2))));
}
