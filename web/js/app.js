// app.js: the page's start: the router over the URL's fragment (#/jobs, #/jobs/ID, #/new,
// #/sweeps, #/sweeps/ID, #/optimizers), the service's health in the header, the token's state
// in the footer. Each view renders into <main> and returns its cleanup (timers, event
// streams, charts), run when the reader goes elsewhere; a view's requests are aborted then.

import { get, token, forgetToken } from "./api.js";
import { el } from "./fmt.js";
import { renderJobs } from "./jobs.js";
import { renderJob } from "./job.js";
import { renderForm } from "./form.js";
import { renderSweeps, renderSweep } from "./sweeps.js";
import { renderCatalog } from "./catalog.js";

const ROUTES = [
  [/^\/jobs\/(\d+)$/, renderJob, "Job"],
  [/^\/jobs$/, renderJobs, "Jobs"],
  [/^\/new$/, renderForm, "New job"],
  [/^\/sweeps\/(\d+)$/, renderSweep, "Sweep"],
  [/^\/sweeps$/, renderSweeps, "Sweeps"],
  [/^\/optimizers$/, renderCatalog, "Optimizers"],
];

const main = document.getElementById("main");
let current = null; // {cleanup, abort}

function parse() {
  const h = location.hash.replace(/^#/, "");
  const [path, query] = h.split("?");
  return { path: path || "/jobs", params: new URLSearchParams(query || "") };
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

// Changes the fragment's query without a new view (filters), keeping the back button useful.
function setParams(path) {
  return (values) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(values)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
    const s = q.toString();
    history.replaceState(null, "", "#" + path + (s ? "?" + s : ""));
  };
}

function route() {
  const { path, params } = parse();
  if (current) {
    current.abort.abort();
    if (current.cleanup) current.cleanup();
    current = null;
  }
  main.replaceChildren();
  const hit = ROUTES.map(([rx, view, title]) => [rx.exec(path), view, title]).find(([m]) => m);
  for (const a of document.querySelectorAll("header nav a")) {
    const here = "#" + path === a.getAttribute("href") || (path.startsWith("/jobs/") && a.getAttribute("href") === "#/jobs") ||
      (path.startsWith("/sweeps/") && a.getAttribute("href") === "#/sweeps");
    if (here) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!hit) {
    document.title = "Not found · octet";
    main.append(el("section", { class: "view" }, el("h1", { tabindex: "-1" }, "No such page"),
      el("p", {}, el("a", { href: "#/jobs" }, "Go to the jobs"), ".")));
    main.querySelector("h1").focus();
    return;
  }
  const [m, view, title] = hit;
  document.title = title + " · octet";
  const abort = new AbortController();
  const cleanup = view(main, { id: m[1] ? Number(m[1]) : null, params, signal: abort.signal, navigate, setParams: setParams(path) });
  current = { cleanup, abort };
  // after a navigation (not the first view) the heading takes the focus, so keyboard and
  // screen-reader users start at the new content
  const h1 = main.querySelector("h1");
  if (h1 && navigated) h1.focus({ preventScroll: true });
  navigated = true;
  window.scrollTo(0, 0);
}

let navigated = false;

async function health() {
  const box = document.getElementById("health");
  try {
    const h = await get("/health");
    box.textContent = `octetd ${h.version} · ${h.device.cuda ? "CUDA" : "CPU only"} · ${h.workers.busy}/${h.workers.total} workers busy`;
    box.title = h.device.detail || "";
  } catch (e) {
    box.textContent = "octetd does not answer: " + e.message;
    box.classList.add("error");
  }
}

function tokenState() {
  const box = document.getElementById("token-state");
  if (token()) {
    const b = el("button", { type: "button", class: "link" }, "forget it");
    b.addEventListener("click", () => { forgetToken(); });
    box.replaceChildren("A token is kept for this browser session: ", b, ".");
  } else {
    box.replaceChildren();
  }
}

document.getElementById("skip").addEventListener("click", (e) => {
  e.preventDefault();
  main.focus();
});
document.getElementById("token-cancel").addEventListener("click", () => document.getElementById("token-dialog").close("cancel"));
document.addEventListener("octet-token", tokenState);
window.addEventListener("hashchange", route);
if (!location.hash) history.replaceState(null, "", "#/jobs");
route();
health();
tokenState();
