// catalog.js: the optimizer catalog (#/optimizers): each optimizer's parameters with their
// type, default, allowed range and rule, the fields a parameter group may set, and its state
// bytes per parameter, as GET /optimizers serves them from the engine's parameter table.

import { cached } from "./api.js";
import { el } from "./fmt.js";

function show(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "[" + value.map(show).join(", ") + "]";
  return String(value);
}

function optimizerSection(o) {
  const rows = o.params.map((p) => el("tr", {},
    el("th", { scope: "row", class: "code" }, p.name),
    el("td", {}, p.type + (p.nullable ? " or null" : "")),
    el("td", { class: "code" }, show(p.default)),
    el("td", { class: "code" }, p.range + (p.rule ? "; " + p.rule : "")),
    el("td", {}, p.doc)));
  const bpp = o.state.bytes_per_param;
  return el("section", { class: "card opt" },
    el("h2", { class: "code" }, o.name), el("p", {}, o.description),
    el("p", {}, el("strong", {}, `optimizer state: ${+bpp.toFixed(4)} B/param`),
      o.state.factored ? " on a 1024×1024 matrix (factored)" : "",
      o.state.assumes ? ` (with momentum ${o.state.assumes.momentum})` : "", ". ", o.state.layout + "."),
    el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, ["field", "type", "default", "allowed", "meaning"].map((t) => el("th", { scope: "col" }, t)))),
      el("tbody", {}, rows))),
    el("p", { class: "muted" }, "param_groups may set: " + o.param_group_fields.join(", ")));
}

export function renderCatalog(main, { signal }) {
  const box = el("div", {}, el("p", { class: "muted" }, "Loading the catalog…"));
  main.append(el("section", { class: "view" }, el("h1", { tabindex: "-1" }, "Optimizers"),
    el("p", { class: "lead" }, "What the engine offers, with the defaults and ranges the form uses."), box));
  cached("/optimizers").then((c) => {
    if (!signal.aborted) box.replaceChildren(...c.optimizers.map(optimizerSection));
  }).catch((e) => box.replaceChildren(el("p", { class: "error" }, "Could not load the catalog: " + e.message)));
}
