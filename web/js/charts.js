// charts.js: the page's line charts, drawn by dygraphs (Debian's libjs-dygraphs, served by
// octetd at /javascript/dygraphs/; docs/design.md says why this library). Every chart is a
// <figure> with a caption, a legend that names each series and shows the values under the
// pointer, axis titles with units, and a plot of fixed height, so data arriving never moves
// the page. Updates are batched to one redraw per animation frame; the plot follows its
// container's width.

import { el } from "./fmt.js";

export function available() {
  return typeof window.Dygraph === "function";
}

// Okabe-Ito-like colours that stay apart for colour-blind readers; lighter ones on dark.
const LIGHT = ["#0b62c4", "#d55e00", "#008a63", "#b8458f", "#a87400", "#2b9fd9", "#6f4e37", "#555555"];
const DARK = ["#5aa9ff", "#ff8c42", "#2ecc9a", "#e59ac8", "#f0c040", "#8fd3ff", "#c8a27a", "#b0b0b0"];

export function colors() {
  return matchMedia("(prefers-color-scheme: dark)").matches ? DARK : LIGHT;
}

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// The chart's figure, ready to be placed: chart.figure. Options:
//   title, description (the plot's accessible name), labels (x first), xlabel, ylabel, y2label,
//   y2 (series names on the right axis), format {x, y, y2} (value -> text, for ticks and the
//   legend), bands (each value is [low, mid, high]), bandText(row, seriesIndex) -> "min–max"
//   text for the legend, points (draw each point), height (px).
export function lineChart(o) {
  const legend = el("div", { class: "chart-legend" });
  const plot = el("div", { class: "chart-plot", role: "img", "aria-label": o.description || o.title,
    style: "height:" + (o.height || 260) + "px" });
  const empty = el("p", { class: "chart-empty muted" }, available() ? "No data yet." :
    "Charts need the dygraphs library (Debian's libjs-dygraphs, served at /javascript/); the tables hold the same figures.");
  plot.append(empty);
  const figure = el("figure", { class: "chart" }, el("figcaption", {}, o.title), legend, plot);
  let g = null, pending = null, frame = 0, observer = null;
  const f = o.format || {};

  function legendFormatter(data) {
    const xName = o.labels[0];
    const parts = [];
    if (data.x !== undefined) parts.push(`<span class="lx">${esc(xName)} ${data.xHTML}</span>`);
    data.series.forEach((s, i) => {
      if (!s.isVisible) return;
      let v = "";
      if (data.x !== undefined) {
        if (s.yHTML === undefined) return;
        v = ": " + s.yHTML;
        if (o.bands && o.bandText) {
          const b = o.bandText(data.i, i);
          if (b) v += ` <span class="band">(${esc(b)})</span>`;
        }
      }
      parts.push(`<span class="ls${s.isHighlighted ? " hl" : ""}"><span class="sw" style="background:${s.color}"></span>${s.labelHTML}${v}</span>`);
    });
    return parts.join(" ");
  }

  function axis(fmt) {
    if (!fmt) return {};
    return { valueFormatter: (v) => esc(fmt(v)), axisLabelFormatter: (v) => esc(fmt(v)) };
  }

  // Ticks on whole numbers (1, 2, 5 × 10^k apart), about one per 70 pixels.
  function integerTicker(min, max, pixels) {
    const want = Math.max(2, Math.floor(pixels / 70));
    const raw = Math.max(1, (max - min) / want), mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw);
    const ticks = [];
    for (let v = Math.ceil(min / step) * step; v <= max; v += step) ticks.push({ v, label: esc(f.x ? f.x(v) : String(v)) });
    return ticks;
  }

  function create(data) {
    empty.remove();
    const series = {};
    for (const s of o.y2 || []) series[s] = { axis: "y2" };
    const opts = {
      labels: o.labels,
      labelsDiv: legend,
      legend: "always",
      legendFormatter,
      xlabel: o.xlabel,
      ylabel: o.ylabel,
      y2label: o.y2label,
      colors: o.colors || colors(),
      strokeWidth: 1.6,
      drawPoints: Boolean(o.points),
      pointSize: 2.5,
      highlightCircleSize: 4,
      customBars: Boolean(o.bands),
      fillAlpha: 0.18,
      connectSeparatedPoints: true,
      labelsShowZeroValues: true,
      series,
      axes: { x: Object.assign(axis(f.x || String), o.integerX ? { ticker: integerTicker } : {}), y: Object.assign({ axisLabelWidth: 58 }, axis(f.y)),
        y2: Object.assign({ axisLabelWidth: 58, independentTicks: true }, axis(f.y2)) },
      gridLineColor: cssVar("--grid") || "#ddd",
      axisLineColor: cssVar("--muted") || "#777",
      axisLabelFontSize: 12,
      xRangePad: 4,
      yRangePad: 6,
    };
    g = new window.Dygraph(plot, data, opts);
    if (o.bands) plot.dataset.bands = "1";
    observer = new ResizeObserver(() => {
      if (g && plot.clientWidth) g.resize();
    });
    observer.observe(plot);
  }

  // Replaces the chart's data (rows of [x, y1, y2, ...]); drawn at the next frame.
  function update(data) {
    if (!available() || !data.length) return;
    pending = data;
    if (frame) return;
    frame = requestAnimationFrame(() => {
      frame = 0;
      const d = pending;
      pending = null;
      if (!g) create(d);
      else g.updateOptions({ file: d });
      plot.dataset.rows = String(d.length); // what is drawn, for readers of the DOM (the tests)
    });
  }

  // Draws now (for a first render whose time is measured).
  function drawNow(data) {
    if (!available() || !data.length) return;
    if (frame) { cancelAnimationFrame(frame); frame = 0; }
    if (!g) create(data);
    else g.updateOptions({ file: data });
    plot.dataset.rows = String(data.length);
  }

  function destroy() {
    if (frame) cancelAnimationFrame(frame);
    if (observer) observer.disconnect();
    if (g) g.destroy();
    g = null;
  }

  return { figure, update, drawNow, destroy, graph: () => g };
}
