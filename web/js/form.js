// form.js: the submit form (#/new, or #/new?copy=ID to start from a job's spec). Every field
// of the spec: the model (an MLP's hidden sizes, or DistilBERT from a preset or a model
// directory, with architecture overrides), the dataset (built in, uploaded here, or files in
// the data directory), one or several optimizers with their hyper-parameters from the
// catalog (GET /optimizers: defaults, ranges, rules), parameter groups, and the training
// settings. Several optimizers, learning rates or seeds make a sweep (POST /sweeps with a
// grid); otherwise one job (POST /jobs).
//
// Fields hold the defaults; a field left at its default is not sent, so the server's defaults
// (the one home of each) apply. Text that is not a number is sent as it is, so the API's
// message about it appears beside the field, like every validation error it returns: its
// `field` ("optimizer.lr", "base.training.epochs", "grid.optimizer.lr[1]") is mapped back to
// the input. While the form changes, POST /estimate (when this octetd has it) prices each
// configuration: memory by category, the peak against the device's free memory, and whether it
// fits; a configuration that would not fit is reported and not sent.

import { get, post, request, routes, cached, askToken, ApiError } from "./api.js";
import { el, setText, bytes, int, times } from "./fmt.js";
import { memoryChart, ESTIMATE_ROWS, ratioText } from "./memory.js";

const FALLBACK_PRESETS = ["distilbert-base-uncased", "distilbert-base-cased", "distilbert-small", "distilbert-tiny"];
const CONFIG_KEYS = ["dim", "n_layers", "n_heads", "hidden_dim", "vocab_size", "max_position_embeddings"];

// The spec's training fields, as server/train/spec.c has them (the API has no catalog of
// these; the optimizer's fields come from GET /optimizers).
const TRAINING = [
  { key: "epochs", label: "Epochs", def: 3, hint: "1 to 100,000" },
  { key: "batch_size", label: "Batch size", def: 8, hint: "1 to 65,536" },
  { key: "eval_batch_size", label: "Eval batch size", def: 8, hint: "1 to 65,536" },
  { key: "gradient_accumulation_steps", label: "Gradient accumulation", def: 1, hint: "batches per optimizer step, 1 to 65,536" },
  { key: "max_grad_norm", label: "Clip gradient norm at", def: 1, hint: "global norm; 0 turns clipping off", decimal: true },
  { key: "lr_scheduler", label: "Learning-rate schedule", def: "linear", options: ["linear", "constant", "cosine"] },
  { key: "warmup_steps", label: "Warm-up", def: 0, hint: "optimizer steps (an integer) or a ratio in [0, 1)", decimal: true },
  { key: "seed", label: "Seeds", def: 42, list: true, hint: "several (1, 2, 3) make a sweep over seeds" },
  { key: "device", label: "Device", def: "auto", options: ["auto", "cpu", "cuda"] },
  { key: "precision", label: "Precision", def: "fp32", options: ["fp32", "bf16", "fp16"], hint: "bf16 and fp16 need CUDA" },
  { key: "log_every", label: "Log the loss every", def: 500, hint: "optimizer steps, at least 1" },
];

let uid = 0;

export function renderForm(main, { params, signal, navigate }) {
  const reg = new Map(); // spec path (or "optimizer.X@name") -> {input, err}
  let catalog = null, datasets = [], hasEstimate = false, presets = FALLBACK_PRESETS.map((name) => ({ name }));
  let estTimer = 0, estAbort = null, lastEstimate = null;

  // ---------------------------------------------------------------- building blocks

  function field(path, label, input, hint, extra) {
    const id = "f" + (++uid);
    input.id = id;
    const err = el("p", { class: "field-error", id: id + "-err", hidden: true });
    const hintEl = hint ? el("p", { class: "hint", id: id + "-hint" }, hint) : null;
    input.setAttribute("aria-describedby", [hintEl && id + "-hint", id + "-err"].filter(Boolean).join(" "));
    if (path) reg.set(path, { input, err });
    return el("div", Object.assign({ class: "field" }, extra || {}), el("label", { for: id }, label), input, hintEl, err);
  }
  function text(value, mode) {
    return el("input", { type: "text", value: value === undefined || value === null ? "" : String(value),
      inputmode: mode || null, autocomplete: "off", spellcheck: "false" });
  }
  function select(options, value) {
    const s = el("select", {}, options.map((o) => typeof o === "string" ? el("option", { value: o }, o) : o));
    if (value !== undefined) s.value = value;
    return s;
  }

  // ---------------------------------------------------------------- the sections

  const nameInput = text("");
  nameInput.placeholder = "e.g. fashion mlp 8-bit";

  // model
  const archSel = select(["mlp", "distilbert"], "mlp");
  const hiddenInput = text("256, 128", "numeric");
  const sourceSel = select([el("option", { value: "preset" }, "a preset"), el("option", { value: "path" }, "a model directory on the server")], "preset");
  const presetSel = select([]);
  const pathInput = text("");
  pathInput.placeholder = "relative to the data directory";
  const configInputs = Object.fromEntries(CONFIG_KEYS.map((k) => [k, text("", "numeric")]));
  const labelsInput = text("", "numeric");
  labelsInput.placeholder = "the dataset's classes";
  const dropoutInput = text("", "decimal");
  dropoutInput.placeholder = "the model's own";
  const mlpBox = el("div", { class: "fields" }, field("model.hidden", "Hidden layer sizes", hiddenInput, "comma-separated, e.g. 256, 128, 100"));
  const bertBox = el("div", { hidden: true },
    el("div", { class: "fields" },
      field(null, "Start from", sourceSel),
      field("model.preset", "Preset", presetSel),
      field("model.path", "Model directory", pathInput, "Hugging Face layout: config.json, model.safetensors, vocab.txt", { hidden: true })),
    el("details", { class: "sub" }, el("summary", {}, "Architecture overrides"),
      el("div", { class: "fields" }, CONFIG_KEYS.map((k) => field("model.config." + k, k, configInputs[k], "blank: the preset's")))));
  const modelSet = el("fieldset", {}, el("legend", {}, "Model"),
    el("div", { class: "fields" }, field("model.arch", "Architecture", archSel)), mlpBox, bertBox,
    el("div", { class: "fields" }, field("model.num_labels", "Labels", labelsInput, "2 to 65,536"),
      field("model.dropout", "Dropout", dropoutInput, "[0, 1); 0 turns every dropout off")));
  archSel.addEventListener("change", () => {
    mlpBox.hidden = archSel.value !== "mlp";
    bertBox.hidden = archSel.value === "mlp";
    // an MLP reads image features, DistilBERT text: offer a dataset it can read
    const want = archSel.value === "mlp" ? /image/ : /text/;
    const cur = datasets.find((x) => x.name === dsSel.value);
    if (cur && cur.task && !want.test(cur.task)) {
      const other = datasets.find((x) => x.available && x.task && want.test(x.task));
      if (other) { dsSel.value = other.name; describeDataset(); }
    }
  });
  sourceSel.addEventListener("change", () => {
    reg.get("model.preset").input.closest(".field").hidden = sourceSel.value !== "preset";
    reg.get("model.path").input.closest(".field").hidden = sourceSel.value !== "path";
  });

  // dataset
  const dsSourceSel = select([el("option", { value: "name" }, "a dataset by name"), el("option", { value: "files" }, "files in the data directory")], "name");
  const dsSel = select([]);
  const dsInfo = el("p", { class: "hint" });
  const trainFile = text(""), evalFile = text("");
  const maxLen = text("128", "numeric"), trainLimit = text("", "numeric"), evalLimit = text("", "numeric");
  trainLimit.placeholder = evalLimit.placeholder = "all";
  const filesBox = el("div", { class: "fields", hidden: true },
    field("dataset.train_file", "Training file", trainFile, "JSONL or CSV, relative to the data directory"),
    field("dataset.eval_file", "Evaluation file", evalFile));
  const byName = el("div", { class: "fields" }, el("div", { class: "field wide" }, field("dataset.name", "Dataset", dsSel), dsInfo));
  const upFile = el("input", { type: "file", accept: ".jsonl,.ndjson,.json,.csv" });
  const upName = text("");
  upName.placeholder = "lower case, digits, . _ -";
  const upBtn = el("button", { type: "button" }, "Upload");
  const upMsg = el("p", { class: "hint", role: "status" });
  const upload = el("details", { class: "sub upload" }, el("summary", {}, "Upload a dataset (JSONL or CSV)"),
    el("p", { class: "hint" }, "One example a line: ", el("code", {}, "text"), ", optional ", el("code", {}, "text_pair"),
      ", ", el("code", {}, "label"), ". It is checked with the training parsers before it is kept."),
    el("div", { class: "fields" }, field("upload.file", "Dataset file", upFile), field("upload.name", "Dataset name", upName)),
    el("div", { class: "actions" }, upBtn), upMsg);
  const dataSet = el("fieldset", {}, el("legend", {}, "Dataset"),
    el("div", { class: "fields" }, field(null, "Use", dsSourceSel)), byName, filesBox,
    el("div", { class: "fields" },
      field("dataset.max_length", "Max length", maxLen, "tokens, for text (3 to 65,536)"),
      field("dataset.train_limit", "Training examples", trainLimit, "the first N; blank: all"),
      field("dataset.eval_limit", "Evaluation examples", evalLimit, "the first N; blank: all")),
    upload);
  dsSourceSel.addEventListener("change", () => { byName.hidden = dsSourceSel.value !== "name"; filesBox.hidden = dsSourceSel.value === "name"; });
  dsSel.addEventListener("change", describeDataset);
  upFile.addEventListener("change", () => {
    const f = upFile.files[0];
    if (f && !upName.value) upName.value = f.name.replace(/\.[^.]*$/, "").toLowerCase().replace(/[^a-z0-9._-]+/g, "-").replace(/^[^a-z0-9]+/, "").slice(0, 64);
  });
  upBtn.addEventListener("click", uploadDataset);

  // optimizer
  const optChecks = el("div", { class: "checks", role: "group", "aria-label": "Optimizers" });
  const lrInput = text("", "decimal");
  const optBoxes = el("div");
  const groupRows = el("div", { class: "groups-edit" });
  const addGroup = el("button", { type: "button" }, "Add a parameter group");
  const optErr = el("p", { class: "field-error", hidden: true });
  reg.set("optimizer", { input: optChecks, err: optErr });
  reg.set("optimizer.name", { input: optChecks, err: optErr });
  const optSet = el("fieldset", {}, el("legend", {}, "Optimizer"),
    el("p", { class: "hint" }, "Choose several to compare them: that submits a sweep, one job per optimizer (and per learning rate and seed)."),
    optChecks, optErr,
    el("div", { class: "fields" }, field("optimizer.lr", "Learning rates", lrInput,
      "one, or several (1e-3, 3e-4) for a sweep; blank: each optimizer's default")),
    optBoxes,
    el("details", { class: "sub" }, el("summary", {}, "Parameter groups"),
      el("p", { class: "hint" }, "Parameters whose names match a glob (", el("code", {}, "*.bias"), ", ",
        el("code", {}, "*.word_embeddings.*"), ") get their own settings; blank fields inherit. ",
        "By default every parameter decays except biases and normalization weights, as in the Trainer."),
      groupRows, addGroup));
  addGroup.addEventListener("click", () => { addGroupRow({}); schedule(); });

  // training
  const trainInputs = {};
  const trainSet = el("fieldset", {}, el("legend", {}, "Training"), el("div", { class: "fields" }, TRAINING.map((t) => {
    const input = t.options ? select(t.options, t.def) : text(t.def, t.decimal || t.list ? "decimal" : "numeric");
    trainInputs[t.key] = input;
    return field("training." + t.key, t.label, input, t.hint);
  })));

  // estimate and submit
  const estimateBox = el("div", { class: "estimate-body" }, el("p", { class: "muted" }, "Loading…"));
  const aside = el("aside", { class: "estimate", "aria-labelledby": "est-title" },
    el("h2", { id: "est-title" }, "Memory estimate"), estimateBox);
  const submitBtn = el("button", { type: "submit", class: "primary" }, "Submit job");
  const estLine = el("span", { class: "est-line", "aria-live": "polite" });
  const formMsg = el("div", { class: "form-msg", role: "alert" });
  const form = el("form", { class: "submit-form", novalidate: true, "aria-labelledby": "form-title" },
    el("fieldset", {}, el("legend", {}, "Run"), el("div", { class: "fields" }, field("name", "Name", nameInput, "optional"))),
    modelSet, dataSet, optSet, trainSet,
    el("div", { class: "actions submit-row" }, submitBtn, estLine), formMsg);
  main.append(el("section", { class: "view" },
    el("h1", { tabindex: "-1", id: "form-title" }, "New job"),
    el("p", { class: "lead" }, "One job, or a sweep when you choose several optimizers, learning rates or seeds."),
    el("div", { class: "form-layout" }, form, aside)));

  // any change of the spec re-estimates it (the upload's own controls are not the spec)
  const onEdit = (ev) => { if (!ev.target.closest(".upload")) schedule(); };
  form.addEventListener("input", onEdit);
  form.addEventListener("change", onEdit);
  form.addEventListener("submit", submit);

  // ---------------------------------------------------------------- the catalog's optimizers

  function optimizerBox(o) {
    const inputs = {};
    const fields = o.params.filter((p) => p.name !== "lr").map((p) => {
      let input;
      if (p.type === "boolean") {
        input = el("input", { type: "checkbox" });
        input.checked = Boolean(p.default);
      } else {
        input = text(Array.isArray(p.default) ? p.default.join(", ") : p.default, p.type === "integer" ? "numeric" : "decimal");
        if (p.nullable) input.placeholder = "none";
      }
      inputs[p.name] = { input, p };
      const hint = [p.doc, "range " + p.range + (p.nullable ? " or blank" : ""), p.rule].filter(Boolean).join("; ");
      const f = field(`optimizer.${p.name}@${o.name}`, p.name, input, hint);
      if (p.type === "boolean") f.classList.add("check");
      return f;
    });
    const box = el("fieldset", { class: "opt-params", hidden: true, dataset: { opt: o.name } },
      el("legend", {}, o.name + ": hyper-parameters"), el("div", { class: "fields" }, fields));
    const err = el("p", { class: "field-error", hidden: true });
    box.append(err);
    reg.set("opt:" + o.name, { input: box, err });
    return { box, inputs };
  }

  const optUi = new Map();
  function selectedOptimizers() {
    return [...optChecks.querySelectorAll("input:checked")].map((c) => c.value);
  }
  function onOptimizersChanged() {
    const sel = selectedOptimizers();
    for (const [name, ui] of optUi) ui.box.hidden = !sel.includes(name);
    // the learning rate's placeholder: the chosen optimizers' defaults
    lrInput.placeholder = sel.map((n) => {
      const p = catalog.optimizers.find((o) => o.name === n).params.find((x) => x.name === "lr");
      return `${n} ${p && p.default !== null ? p.default : "relative step"}`;
    }).join(", ");
    rebuildGroups();
  }

  // ---------------------------------------------------------------- parameter groups

  function groupFields() {
    const sel = selectedOptimizers();
    const names = new Set();
    for (const n of sel) for (const f of catalog.optimizers.find((o) => o.name === n).param_group_fields) names.add(f);
    names.delete("match");
    return ["match", ...names];
  }
  function addGroupRow(values) {
    const row = el("div", { class: "group-row fields" });
    row._values = values;
    groupRows.append(row);
    rebuildGroups();
  }
  function rebuildGroups() {
    if (!catalog) return;
    const fields = groupFields();
    [...groupRows.children].forEach((row, i) => {
      const old = row._inputs ? Object.fromEntries(Object.entries(row._inputs).map(([k, inp]) => [k, inp.value])) : row._values || {};
      for (const k of [...reg.keys()]) if (k.startsWith(`optimizer.param_groups[${i}]`)) reg.delete(k);
      row._inputs = {};
      const remove = el("button", { type: "button", class: "link" }, "Remove");
      remove.addEventListener("click", () => { row.remove(); rebuildGroups(); schedule(); });
      row.replaceChildren(el("p", { class: "group-title" }, `Group ${i + 1}`), ...fields.map((k) => {
        const input = k === "optim_bits" ? select(["", "32", "8"]) : text("", k === "match" ? null : "decimal");
        input.value = old[k] === undefined ? "" : Array.isArray(old[k]) ? old[k].join(", ") : String(old[k]);
        if (k === "match") input.placeholder = "*.bias";
        else if (k !== "optim_bits") input.placeholder = "inherit";
        row._inputs[k] = input;
        return field(`optimizer.param_groups[${i}].${k}`, k, input, k === "optim_bits" ? "32 keeps fp32 states (8-bit optimizers)" : null);
      }), remove);
      reg.set(`optimizer.param_groups[${i}]`, { input: row._inputs.match, err: row.querySelector(".field-error") });
    });
  }

  // ---------------------------------------------------------------- reading the form

  const NUM = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;
  // A number when the text is one, else the text itself (the API names what is wrong with it).
  function value(s) {
    s = String(s).trim();
    if (s === "") return undefined;
    return NUM.test(s) ? Number(s) : s;
  }
  function list(s) {
    s = String(s).trim();
    if (s === "") return [];
    return s.split(/[\s,;]+/).filter(Boolean).map(value);
  }
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

  // Everything the form says, as the pieces of a job spec and the grid's lists.
  function read() {
    const model = { arch: archSel.value };
    if (model.arch === "mlp") {
      model.hidden = list(hiddenInput.value);
    } else {
      if (sourceSel.value === "preset") model.preset = presetSel.value;
      else model.path = pathInput.value.trim();
      const config = {};
      for (const k of CONFIG_KEYS) { const v = value(configInputs[k].value); if (v !== undefined) config[k] = v; }
      if (Object.keys(config).length) model.config = config;
    }
    const labels = value(labelsInput.value), dropout = value(dropoutInput.value);
    if (labels !== undefined) model.num_labels = labels;
    if (dropout !== undefined) model.dropout = dropout;

    const dataset = {};
    if (dsSourceSel.value === "name") dataset.name = dsSel.value;
    else { dataset.train_file = trainFile.value.trim(); dataset.eval_file = evalFile.value.trim(); }
    const ml = value(maxLen.value), tl = value(trainLimit.value), el_ = value(evalLimit.value);
    if (ml !== undefined && ml !== 128) dataset.max_length = ml;
    if (tl !== undefined) dataset.train_limit = tl;
    if (el_ !== undefined) dataset.eval_limit = el_;

    const training = {};
    let seeds = [];
    for (const t of TRAINING) {
      const raw = trainInputs[t.key].value;
      if (t.list) { seeds = list(raw); continue; }
      const v = t.options ? raw : value(raw);
      if (v !== undefined && !same(v, t.def)) training[t.key] = v;
    }

    const optimizers = selectedOptimizers().map((name) => {
      const o = { name };
      for (const [k, { input, p }] of Object.entries(optUi.get(name).inputs)) {
        let v;
        if (p.type === "boolean") v = input.checked;
        else if (p.type === "array") { v = list(input.value); if (!v.length) v = undefined; }
        else v = value(input.value);
        if (v === undefined) continue;
        if (!same(v, p.default)) o[k] = v;
      }
      return o;
    });
    const groups = [...groupRows.children].map((row) => {
      const g = {};
      for (const [k, input] of Object.entries(row._inputs || {})) {
        if (k === "match") { g.match = input.value.trim(); continue; }
        const v = k === "betas" || k === "eps" ? list(input.value) : value(input.value);
        if (v !== undefined && !(Array.isArray(v) && !v.length)) g[k] = v;
      }
      return g;
    });
    return { name: nameInput.value.trim(), model, dataset, training, seeds, lrs: list(lrInput.value), optimizers, groups };
  }

  // The request to send: {kind: "job"|"sweep", path, body, count, configs: [{opt, spec}]}
  // (configs: one job spec per optimizer, at the first learning rate and seed, to estimate).
  function build() {
    const r = read();
    const nOpt = r.optimizers.length, nLr = r.lrs.length, nSeed = r.seeds.length;
    const count = Math.max(nOpt, 1) * Math.max(nLr, 1) * Math.max(nSeed, 1);
    const training = Object.assign({}, r.training);
    if (nSeed === 1) training.seed = r.seeds[0];
    const optimizerOf = (o, withLr) => {
      const x = Object.assign({}, o);
      if (withLr && nLr >= 1) x.lr = r.lrs[0];
      if (r.groups.length) x.param_groups = r.groups;
      return x;
    };
    const configs = (nOpt ? r.optimizers : [{ name: "adamw" }]).map((o) => {
      const spec = { model: r.model, dataset: r.dataset, optimizer: optimizerOf(o, true),
        training: Object.assign({}, training, nSeed > 1 ? { seed: r.seeds[0] } : {}) };
      if (r.name) spec.name = r.name;
      return { opt: o.name, spec };
    });
    if (count === 1 && nOpt <= 1) {
      return { kind: "job", path: "/jobs", body: configs[0].spec, count, configs };
    }
    const base = { model: r.model, dataset: r.dataset, training };
    const grid = {};
    if (nOpt > 1) {
      grid.optimizer = r.optimizers;
      base.optimizer = {};
      if (nLr === 1) base.optimizer.lr = r.lrs[0];
      if (r.groups.length) base.optimizer.param_groups = r.groups;
    } else {
      base.optimizer = optimizerOf(r.optimizers[0] || { name: "adamw" }, nLr === 1);
    }
    if (nLr > 1) grid["optimizer.lr"] = r.lrs;
    if (nSeed > 1) grid["training.seed"] = r.seeds;
    const body = { base, grid };
    if (r.name) body.name = r.name;
    return { kind: "sweep", path: "/sweeps", body, count, configs };
  }

  // ---------------------------------------------------------------- errors beside fields

  function clearErrors() {
    for (const [key, { input, err }] of reg) {
      if (key.startsWith("upload.")) continue;
      if (err) { err.hidden = true; err.textContent = ""; }
      if (input && input.removeAttribute) input.removeAttribute("aria-invalid");
    }
    formMsg.replaceChildren();
  }

  // Where an API error's field is shown: the input itself, else its nearest named parent.
  // opt: the optimizer whose configuration was checked (an estimate of one configuration).
  function target(field, opt) {
    if (!field) return null;
    let f = field.replace(/^base\./, "");
    const sel = selectedOptimizers();
    let m;
    if ((m = /^grid\.optimizer\[(\d+)\]/.exec(f))) return reg.get("opt:" + sel[Number(m[1])]) || reg.get("optimizer");
    if ((m = /^grid\.(optimizer\.lr|training\.seed)(\[\d+\])?$/.exec(f))) return reg.get(m[1]);
    f = f.replace(/^grid\./, "");
    if (!opt && sel.length === 1) opt = sel[0];
    for (let p = f; p; ) {
      if (opt && reg.has(p + "@" + opt)) return reg.get(p + "@" + opt);
      if (reg.has(p)) return reg.get(p);
      const cut = p.search(/(\[\d+\]|\.[^.[\]]+)$/);
      if (cut <= 0) break;
      p = p.slice(0, cut);
    }
    return null;
  }

  // Shows an API error beside its field (or above the submit button); returns its input.
  function showError(e, opt, focus) {
    const t = target(e.field, opt);
    const msg = e.message || String(e);
    if (t && t.err) {
      t.err.textContent = msg;
      t.err.hidden = false;
      if (t.input.setAttribute) t.input.setAttribute("aria-invalid", "true");
      const details = t.input.closest("details");
      if (details) details.open = true;
      if (focus) {
        (t.input.matches("input, select, textarea") ? t.input : t.input.querySelector("input, select") || t.input).focus();
        formMsg.replaceChildren(el("p", { class: "error" }, "The server refused this: see the field marked in red."));
      }
      return t.input;
    }
    formMsg.replaceChildren(el("p", { class: "error" }, e.field ? el("code", {}, e.field) : "", e.field ? ": " : "", msg));
    return null;
  }

  // ---------------------------------------------------------------- the estimate

  function schedule() {
    updateSubmitLabel();
    clearTimeout(estTimer);
    estTimer = setTimeout(() => estimate(false), 400);
  }

  function updateSubmitLabel() {
    if (!catalog) return;
    let b;
    try { b = build(); } catch { return; }
    setText(submitBtn, b.kind === "job" ? "Submit job" : `Submit a sweep of ${b.count} jobs`);
  }

  // Estimates every configuration; resolves {results: [{opt, estimate}], error, errorOpt,
  // unavailable, needsToken}. interactive: ask for the token when needed.
  async function estimateAll(b, interactive) {
    if (!hasEstimate) return { unavailable: true };
    if (estAbort) estAbort.abort();
    estAbort = new AbortController();
    const signal2 = estAbort.signal;
    const results = [];
    for (const c of b.configs) {
      try {
        const r = await request("POST", "/estimate", { body: c.spec, signal: signal2, interactive });
        results.push({ opt: c.opt, estimate: r.estimate });
      } catch (e) {
        if (e.name === "AbortError") return { aborted: true };
        if (e.status === 404) { hasEstimate = false; return { unavailable: true }; }
        if (e.status === 401) return { needsToken: true };
        if (e instanceof ApiError && e.status === 422) return { error: e, errorOpt: c.opt };
        return { failed: e };
      }
    }
    return { results };
  }

  async function estimate(interactive) {
    let b;
    try { b = build(); } catch { return null; }
    estimateBox.classList.add("stale");
    const res = await estimateAll(b, interactive);
    if (res.aborted || signal.aborted) return res;
    estimateBox.classList.remove("stale");
    lastEstimate = res;
    clearErrors();
    setText(estLine, "");
    if (res.unavailable) {
      setText(estLine, "memory estimate unavailable");
      estimateBox.replaceChildren(el("p", { class: "muted" }, "Estimate unavailable: this octetd has no ",
        el("code", {}, "POST /api/v1/estimate"), ". The server checks the spec when it is submitted."));
    } else if (res.needsToken) {
      const btn = el("button", { type: "button" }, "Enter the token");
      btn.addEventListener("click", async () => { if (await askToken(false)) estimate(false); });
      estimateBox.replaceChildren(el("p", {}, "This server needs its token for the estimate too (it is a POST). "), btn);
    } else if (res.error) {
      showError(res.error, res.errorOpt, false);
      estimateBox.replaceChildren(el("p", { class: "muted" }, "Fix the field marked in the form to see the estimate."));
    } else if (res.failed) {
      estimateBox.replaceChildren(el("p", { class: "error" }, "Estimate failed: " + res.failed.message));
    } else {
      showEstimate(res.results);
    }
    return res;
  }

  const estChart = memoryChart("Memory of one job (bytes, binary units)", ESTIMATE_ROWS, 2);
  function showEstimate(results) {
    const first = results[0].estimate;
    const bad = results.filter((r) => !r.estimate.fits);
    const dev = first.device === "cuda" ? "the GPU" : "the CPU";
    const peak = Math.max(...results.map((r) => r.estimate.peak_bytes));
    const free = first.device_free_bytes;
    // the peak against what the device can give, as a gauge
    const gauge = free ? el("div", { class: "gauge" },
      el("label", { for: "est-gauge" }, `Peak against the ${bytes(free)} free on ${dev}`),
      el("meter", { id: "est-gauge", min: 0, max: free, value: Math.min(peak, free), high: 0.9 * free, optimum: 0,
        title: `${int(peak)} of ${int(free)} bytes` }),
      el("span", { class: "small" }, `${bytes(peak)}, ${(100 * peak / free).toPrecision(2)} % of it`)) : null;
    setText(estLine, bad.length ? "would not fit in the device's memory" : `fits: peak ${bytes(peak)} of ${bytes(free)} free`);
    estLine.className = "est-line " + (bad.length ? "bad" : "ok");
    const verdict = bad.length
      ? el("p", { class: "verdict bad" }, `Would not fit: ${bad.map((r) => `${r.opt} needs ${bytes(r.estimate.peak_bytes)}`).join(", ")}, ` +
        `more than the ${bytes(first.device_free_bytes)} free on ${dev}. Reduce the batch size, the model or the sequence length, or choose an 8-bit optimizer.`)
      : el("p", { class: "verdict ok" }, `Fits: peak ${bytes(Math.max(...results.map((r) => r.estimate.peak_bytes)))} of ` +
        `${bytes(first.device_free_bytes)} free on ${dev}` + (first.device_total_bytes ? ` (${bytes(first.device_total_bytes)} in all).` : "."));
    estChart.update(first, first.optimizer_state);
    setText(estChart.ratio, ratioText(first.optimizer_state_bytes, first.adamw_bytes, first.parameters));
    const parts = [verdict, gauge, el("p", { class: "small" }, `${int(first.parameters)} parameters.`)];
    if (results.length > 1) {
      parts.push(el("div", { class: "table-wrap" }, el("table", { class: "num-table est-table" },
        el("caption", {}, "Each optimizer"),
        el("thead", {}, el("tr", {}, ["Optimizer", "State", "× AdamW", "Peak", "Fits"].map((t) => el("th", { scope: "col" }, t)))),
        el("tbody", {}, results.map((r) => el("tr", {}, el("th", { scope: "row" }, r.opt),
          el("td", {}, bytes(r.estimate.optimizer_state_bytes)),
          el("td", {}, times(r.estimate.adamw_bytes ? r.estimate.optimizer_state_bytes / r.estimate.adamw_bytes : null)),
          el("td", {}, bytes(r.estimate.peak_bytes)), el("td", {}, r.estimate.fits ? "yes" : "no")))))));
      estChart.figure.querySelector("figcaption").textContent = `Memory of one job with ${results[0].opt} (bytes, binary units)`;
    }
    parts.push(estChart.figure);
    estimateBox.replaceChildren(...parts);
  }

  // ---------------------------------------------------------------- submit and upload

  async function submit(ev) {
    ev.preventDefault();
    clearTimeout(estTimer);
    clearErrors();
    let b;
    try { b = build(); } catch (e) { formMsg.replaceChildren(el("p", { class: "error" }, String(e))); return; }
    submitBtn.disabled = true;
    formMsg.replaceChildren(el("p", { class: "muted" }, "Checking…"));
    try {
      // the estimate first: a spec it refuses, or one that would not fit, is not sent
      const est = await estimate(true);
      if (est && est.error) { showError(est.error, est.errorOpt, true); return; }
      if (est && est.needsToken) {
        formMsg.replaceChildren(el("p", { class: "error" }, "Not sent: this server needs its token for submissions."));
        return;
      }
      if (est && est.results && est.results.some((r) => !r.estimate.fits)) {
        formMsg.replaceChildren(el("p", { class: "error" }, "Not sent: it would not fit in the device's memory (see the estimate)."));
        return;
      }
      formMsg.replaceChildren(el("p", { class: "muted" }, "Submitting…"));
      const r = await post(b.path, b.body);
      navigate(b.kind === "job" ? "#/jobs/" + r.id : "#/sweeps/" + r.id);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) formMsg.replaceChildren(el("p", { class: "error" }, "Not sent: this server needs its token for submissions."));
      else if (e instanceof ApiError && e.field) showError(e, null, true);
      else formMsg.replaceChildren(el("p", { class: "error" }, "Not sent: " + e.message));
    } finally {
      submitBtn.disabled = false;
    }
  }

  async function uploadDataset() {
    const f = upFile.files[0];
    const name = upName.value.trim();
    for (const k of ["upload.file", "upload.name"]) { const t = reg.get(k); t.err.hidden = true; t.input.removeAttribute("aria-invalid"); }
    if (!f) { showError({ field: "upload.file", message: "Choose a file first." }); return; }
    const csv = /\.csv$/i.test(f.name);
    upBtn.disabled = true;
    setText(upMsg, "Uploading…");
    try {
      const d = await request("POST", "/datasets?name=" + encodeURIComponent(name), { body: f,
        contentType: csv ? "text/csv" : "application/x-ndjson" });
      setText(upMsg, `Uploaded ${d.name}: ${int(d.n_train)} training examples` + (d.num_labels ? `, ${d.num_labels} labels.` : "."));
      await loadDatasets(d.name);
      schedule();
    } catch (e) {
      setText(upMsg, "");
      showError({ field: e.field === "name" ? "upload.name" : "upload.file", message: e.message });
    } finally {
      upBtn.disabled = false;
    }
  }

  // ---------------------------------------------------------------- start

  async function loadDatasets(pick) {
    const d = await get("/datasets", { signal });
    datasets = d.datasets;
    const keep = pick || dsSel.value;
    dsSel.replaceChildren(...datasets.map((x) => el("option", { value: x.name, disabled: !x.available },
      x.name + (x.kind === "uploaded" ? " (uploaded)" : "") + (x.available ? "" : " (not installed)"))));
    const first = datasets.find((x) => x.available);
    dsSel.value = datasets.some((x) => x.name === keep) ? keep : first ? first.name : "";
    describeDataset();
  }
  function describeDataset() {
    const d = datasets.find((x) => x.name === dsSel.value);
    setText(dsInfo, !d ? "" : [d.description, d.task, d.num_labels ? d.num_labels + " classes" : "",
      d.n_train ? `${int(d.n_train)} train / ${int(d.n_eval)} eval` : ""].filter(Boolean).join("; "));
  }

  function fill(spec) {
    nameInput.value = spec.name ? spec.name + " (copy)" : "";
    const m = spec.model || {};
    archSel.value = m.arch || "mlp";
    archSel.dispatchEvent(new Event("change"));
    if (m.hidden) hiddenInput.value = m.hidden.join(", ");
    if (m.preset) presetSel.value = m.preset;
    if (m.path) { sourceSel.value = "path"; pathInput.value = m.path; sourceSel.dispatchEvent(new Event("change")); }
    for (const k of CONFIG_KEYS) if (m.config && m.config[k]) configInputs[k].value = m.config[k];
    labelsInput.value = m.num_labels ?? "";
    dropoutInput.value = m.dropout ?? "";
    const d = spec.dataset || {};
    if (d.name) dsSel.value = d.name;
    else { dsSourceSel.value = "files"; trainFile.value = d.train_file || ""; evalFile.value = d.eval_file || ""; dsSourceSel.dispatchEvent(new Event("change")); }
    maxLen.value = d.max_length ?? 128;
    trainLimit.value = d.train_limit ?? "";
    evalLimit.value = d.eval_limit ?? "";
    describeDataset();
    const o = spec.optimizer || {};
    for (const c of optChecks.querySelectorAll("input")) c.checked = c.value === o.name;
    lrInput.value = o.lr ?? "";
    const ui = optUi.get(o.name);
    if (ui) for (const [k, { input, p }] of Object.entries(ui.inputs)) {
      if (!(k in o)) continue;
      if (p.type === "boolean") input.checked = Boolean(o[k]);
      else input.value = o[k] === null ? "" : Array.isArray(o[k]) ? o[k].join(", ") : o[k];
    }
    groupRows.replaceChildren();
    for (const g of o.param_groups || []) addGroupRow(g);
    onOptimizersChanged();
    const t = spec.training || {};
    for (const x of TRAINING) if (t[x.key] !== undefined && t[x.key] !== null) trainInputs[x.key].value = t[x.key];
  }

  (async () => {
    let models = null;
    const [cat, have] = await Promise.all([cached("/optimizers"), routes()]);
    catalog = cat;
    hasEstimate = have.has("/estimate", "post");
    if (have.has("/models")) models = await get("/models", { signal }).catch(() => null);
    if (models && models.models) {
      const bert = models.models.filter((x) => !x.arch || x.arch === "distilbert");
      if (bert.length) presets = bert;
    }
    presetSel.replaceChildren(...presets.map((p) => el("option", { value: p.name },
      p.name + (p.parameters ? ` (${int(p.parameters)} parameters)` : ""))));
    const preferred = presets.find((p) => p.default);
    if (preferred) presetSel.value = preferred.name;
    await loadDatasets();
    for (const o of catalog.optimizers) {
      const id = "opt-" + o.name;
      const c = el("input", { type: "checkbox", id, value: o.name, name: "optimizer" });
      c.checked = o.name === "adamw";
      const bpp = o.state && o.state.bytes_per_param;
      optChecks.append(el("div", { class: "check" }, c, el("label", { for: id, title: o.description },
        o.name, bpp ? el("span", { class: "muted" }, ` ${+bpp.toFixed(2)} B/param${o.state.factored ? " (factored)" : ""}`) : "")));
      c.addEventListener("change", onOptimizersChanged);
      const ui = optimizerBox(o);
      optUi.set(o.name, ui);
      optBoxes.append(ui.box);
    }
    onOptimizersChanged();
    const copy = params.get("copy");
    if (copy) {
      try {
        const j = await get("/jobs/" + encodeURIComponent(copy), { signal });
        fill(j.spec);
        formMsg.replaceChildren(el("p", { class: "muted" }, `Started from job ${copy}'s spec.`));
      } catch (e) {
        formMsg.replaceChildren(el("p", { class: "error" }, `Could not read job ${copy}: ${e.message}`));
      }
    }
    updateSubmitLabel();
    estimate(false);
    form.dataset.ready = "1";
  })().catch((e) => { if (!signal.aborted) formMsg.replaceChildren(el("p", { class: "error" }, "Could not load the form: " + e.message)); });

  return () => { clearTimeout(estTimer); if (estAbort) estAbort.abort(); };
}

