// memory.js: memory figures as a bar chart: one labelled bar per category on one byte scale
// with its axis, the optimizer state split into its layout (8-bit codes, absmax, maps, fp32
// states) beside AdamW's 8 bytes per parameter, and the ratio to AdamW spelled out. Plain
// HTML (a table, so a screen reader reads it as one): bars of fixed rows whose widths change,
// so figures arriving never move the page. Used by the job page (measured figures, GET
// /jobs/{id}/memory) and the submit form (POST /estimate).

import { el, setText, bytes, int, times, DASH } from "./fmt.js";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

// Round axis ticks over [0, max] in one binary unit, about `count` of them: {top, ticks:
// [{at, label}]}.
export function byteTicks(max, count = 4) {
  if (!(max > 0)) max = 1;
  let u = 0;
  while (max / Math.pow(1024, u) >= 1024 && u < UNITS.length - 1) u++;
  const unit = Math.pow(1024, u), m = max / unit;
  const raw = m / count, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw) || 10 * mag;
  const top = Math.ceil(m / step - 1e-9) * step;
  const ticks = [];
  for (let t = 0; t <= top + step / 2; t += step)
    ticks.push({ at: t / top, label: (+t.toPrecision(4)) + (t ? " " + UNITS[u] : "") });
  return { top: top * unit, ticks };
}

const STATE_PARTS = [
  ["codes", "8-bit codes"], ["absmax", "block absmax"], ["maps", "quantization maps"], ["fp32", "fp32 states"],
];

// The bar chart, built once with every row; update(figures) sets the bars. Rows: [key, label,
// kind]; kind "ref" draws a reference (hatched) bar, "state" the split optimizer state,
// "total" the peak. ticks: about how many axis ticks (fewer where the chart is narrow).
export function memoryChart(caption, rows, ticks = 4) {
  const body = el("tbody");
  const bars = new Map();
  for (const [key, label, kind] of rows) {
    const fill = el("span", { class: "fill k-" + (kind || key) });
    const track = el("span", { class: "track" }, fill);
    const value = el("td", { class: "v" }, DASH);
    const tr = el("tr", { dataset: { key } }, el("th", { scope: "row" }, label), el("td", { class: "bar" }, track), value);
    bars.set(key, { tr, track, fill, value, kind });
    body.append(tr);
  }
  const axis = el("div", { class: "axis" });
  const table = el("table", { class: "bars" },
    el("thead", { class: "sr-only" }, el("tr", {}, el("th", { scope: "col" }, "memory"),
      el("th", { scope: "col" }, "bar"), el("th", { scope: "col" }, "bytes"))),
    body,
    el("tfoot", { "aria-hidden": "true" }, el("tr", {}, el("td"), el("td", { class: "bar" }, axis), el("td", { class: "v muted" }, "bytes"))));
  const parts = el("p", { class: "parts muted" });
  const ratio = el("p", { class: "ratio" });
  const figure = el("figure", { class: "memory" }, el("figcaption", {}, caption), el("div", { class: "table-wrap" }, table), parts, ratio);

  // figures: {key: bytes}; state: {codes, absmax, maps, fp32, total} or null.
  function update(figures, state) {
    let max = 0;
    for (const [key] of bars) if (figures[key] > max) max = figures[key];
    const scale = byteTicks(max, ticks);
    const top = scale.top;
    axis.replaceChildren(...scale.ticks.map((t) => el("span", { class: "tick", style: `left:${(100 * t.at).toFixed(3)}%` }, t.label)));
    for (const [key, b] of bars) {
      const v = figures[key];
      const has = v !== null && v !== undefined;
      b.fill.style.width = has ? (100 * v / top).toFixed(3) + "%" : "0";
      b.track.title = has ? int(v) + " bytes" : "not measured";
      setText(b.value, has ? bytes(v) : DASH);
      if (b.kind === "state") {
        // the optimizer state split by its layout, each part a segment of the bar
        const segs = [];
        if (state && state.total) {
          for (const [k, label] of STATE_PARTS)
            if (state[k]) segs.push(el("span", { class: "seg s-" + k, style: `width:${(100 * state[k] / state.total).toFixed(3)}%`,
              title: `${label}: ${int(state[k])} bytes` }));
        }
        b.fill.replaceChildren(...segs);
      }
    }
    const used = state ? STATE_PARTS.filter(([k]) => state[k]) : [];
    parts.replaceChildren(...(used.length > 1 ? ["Optimizer state: ", ...used.flatMap(([k, label], i) => [
      i ? ", " : "", el("span", { class: "sw s-" + k }), `${label} ${bytes(state[k])}`])] : []));
  }

  return { figure, update, ratio };
}

// "Optimizer state: 0.26× AdamW's (105 KiB against 411 KiB for 8 bytes per parameter), 3.8
// times smaller."
export function ratioText(stateBytes, adamwBytes, parameters) {
  if (!(stateBytes >= 0) || !(adamwBytes > 0)) return "";
  const r = stateBytes / adamwBytes;
  let s = `Optimizer state: ${times(r)} AdamW's (${bytes(stateBytes)} against ${bytes(adamwBytes)}, AdamW's 8 bytes per parameter`;
  if (parameters) s += ` for ${int(parameters)} parameters`;
  s += ")";
  if (r > 0 && r < 0.995) s += `, ${(1 / r).toFixed(1)} times smaller.`;
  else if (r > 1.005) s += `, ${r.toFixed(1)} times larger.`;
  else s += ", the same.";
  return s;
}

// The rows of a trained job's memory (GET /jobs/{id}/memory).
export const JOB_ROWS = [
  ["params_bytes", "Weights"], ["grads_bytes", "Gradients"], ["optimizer_state_bytes", "Optimizer state", "state"],
  ["adamw_bytes", "AdamW's state (8 B/param)", "ref"], ["adam8bit_estimate_bytes", "8-bit rule (2 B/param)", "ref2"],
  ["activations_peak_bytes", "Activations (peak)"], ["workspace_peak_bytes", "Workspace (peak)"],
  ["peak_bytes", "Peak, all together", "total"],
];

// The rows of an estimate (POST /estimate).
export const ESTIMATE_ROWS = [
  ["params_bytes", "Weights"], ["grads_bytes", "Gradients"], ["optimizer_state_bytes", "Optimizer state", "state"],
  ["adamw_bytes", "AdamW's state (8 B/param)", "ref"], ["activations_bytes", "Activations"],
  ["workspace_bytes", "Workspace"], ["peak_bytes", "Peak", "total"],
];
