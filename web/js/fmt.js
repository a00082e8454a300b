// fmt.js: building DOM nodes and writing numbers the way every view shows them (bytes in
// binary units, accuracies in percent, durations in h/min/s). No state, no I/O.

// el("a", {href: "#/jobs", class: "x", onclick: f, dataset: {id: 3}}, "text", childNode, ...)
// Attributes that are null, undefined or false are left out; true sets an empty attribute.
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") e.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// Sets a node's text only when it changed (no needless layout work while live data arrives).
export function setText(node, text) {
  const t = String(text);
  if (node.textContent !== t) node.textContent = t;
}

export const DASH = "–";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

// 1536 -> "1.50 KiB": three significant figures, binary units (memory is counted in pages).
export function bytes(n) {
  if (n === null || n === undefined || !isFinite(n)) return DASH;
  let u = 0, x = Math.abs(n);
  while (x >= 1024 && u < UNITS.length - 1) { x /= 1024; u++; }
  const s = u === 0 ? String(Math.round(x)) : x.toPrecision(3);
  return (n < 0 ? "-" : "") + s + " " + UNITS[u];
}

// 0.8512 -> "85.1 %"
export function pct(x, digits = 1) {
  if (x === null || x === undefined || !isFinite(x)) return DASH;
  return (100 * x).toFixed(digits) + " %";
}

// A metric such as a loss: four significant figures, scientific when tiny or huge.
export function num(x, sig = 4) {
  if (x === null || x === undefined || !isFinite(x)) return DASH;
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a < 1e-3 || a >= 1e6) return x.toExponential(sig - 2).replace("e-", "e−");
  return String(+x.toPrecision(sig));
}

// A learning rate: 0.001 -> "1.0e−3"
export function lr(x) {
  if (x === null || x === undefined || !isFinite(x)) return DASH;
  if (x === 0) return "0";
  return x.toExponential(1).replace("e-", "e−");
}

export function int(x) {
  if (x === null || x === undefined || !isFinite(x)) return DASH;
  return Math.round(x).toLocaleString("en-US");
}

// Seconds of a short task: 0.42 -> "0.42 s", 12.3 -> "12.3 s", longer as duration().
export function secs(s) {
  if (s === null || s === undefined || !isFinite(s)) return DASH;
  if (s < 10) return s.toFixed(2) + " s";
  if (s < 60) return s.toFixed(1) + " s";
  return duration(s);
}

// 3725 -> "1 h 02 min"; 200 -> "3 min 20 s"; 7.2 -> "7 s"
export function duration(s) {
  if (s === null || s === undefined || !isFinite(s) || s < 0) return DASH;
  s = Math.round(s);
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60), sec = s % 60;
  if (m < 60) return m + " min " + String(sec).padStart(2, "0") + " s";
  const h = Math.floor(m / 60);
  return h + " h " + String(m % 60).padStart(2, "0") + " min";
}

// An ISO time as the reader's local date and time, to the second.
export function when(iso) {
  if (!iso) return DASH;
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

// Seed statistics {n, mean, std, min, max} -> "85.1 ± 0.3 %" (f formats one value).
export function meanStd(st, f = num) {
  if (!st || st.mean === null || st.mean === undefined) return DASH;
  if (st.std === null || st.std === undefined || st.n < 2) return f(st.mean);
  if (f === pct) return (100 * st.mean).toFixed(1) + " ± " + (100 * st.std).toFixed(1) + " %";
  if (f === duration) return duration(st.mean) + " ± " + Math.round(st.std) + " s";
  return f(st.mean) + " ± " + f(st.std);
}

// A ratio such as 0.2604 -> "0.26×"
export function times(x) {
  if (x === null || x === undefined || !isFinite(x)) return DASH;
  return (x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(2) : x.toPrecision(2)) + "×";
}

// A sweep group's key ({"optimizer": {"name": "adamw8bit"}, "optimizer.lr": 0.001}) as a
// short label: "adamw8bit, lr 1.0e−3".
export function groupLabel(key) {
  const parts = [];
  for (const [path, v] of Object.entries(key || {})) {
    const leaf = path.split(".").pop();
    if (v && typeof v === "object" && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v)) parts.push(k === "name" ? String(x) : k + " " + valueText(k, x));
    } else {
      parts.push(leaf + " " + valueText(leaf, v));
    }
  }
  return parts.length ? parts.join(", ") : "all jobs";
}

function valueText(k, x) {
  if (typeof x === "number" && (k === "lr" || k.endsWith("lr"))) return lr(x);
  if (Array.isArray(x)) return x.join("/");
  return String(x);
}

export const STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"];
export const FINAL = new Set(["succeeded", "failed", "cancelled"]);

export function statusBadge(status) {
  return el("span", { class: "badge st-" + status }, status);
}
