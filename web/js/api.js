// api.js: the JSON API under /api/v1 as the page uses it: one request function with the
// bearer token, the error shape {"error": {"code", "message", "field"}} as an ApiError, the
// token prompt, and which optional routes this octetd has (read from its OpenAPI document).
//
// Reads work without a token. When a write answers 401 with WWW-Authenticate: Bearer, an
// interactive request asks for the token once (a <dialog>), keeps it in sessionStorage for the
// browser session and retries; a background request (the live estimate) does not ask, it
// fails with needsToken so its view can offer the prompt.

const BASE = "/api/v1";
const TOKEN_KEY = "octet.token";

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
    this.needsToken = status === 401;
  }
}

export function token() {
  try { return sessionStorage.getItem(TOKEN_KEY) || ""; } catch { return ""; }
}

export function forgetToken() {
  try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* storage off: nothing kept */ }
  document.dispatchEvent(new CustomEvent("octet-token"));
}

let asking = null; // one prompt at a time; concurrent 401s wait for the same answer

// Opens the token dialog; resolves true when a token was entered, false when cancelled.
export function askToken(refused) {
  if (asking) return asking;
  const dlg = document.getElementById("token-dialog");
  const input = document.getElementById("token-input");
  const err = document.getElementById("token-error");
  err.hidden = !refused;
  input.value = "";
  asking = new Promise((resolve) => {
    const done = () => {
      dlg.removeEventListener("close", done);
      asking = null;
      const v = input.value.trim();
      if (dlg.returnValue === "ok" && v) {
        try { sessionStorage.setItem(TOKEN_KEY, v); } catch { /* kept for this request only */ }
        document.dispatchEvent(new CustomEvent("octet-token"));
        resolve(true);
      } else {
        resolve(false);
      }
    };
    dlg.addEventListener("close", done);
    dlg.returnValue = "";
    dlg.showModal();
    input.focus();
  });
  return asking;
}

// request("POST", "/jobs", {body: spec}) -> the parsed JSON (null for 204).
// opts: body (JSON-encoded unless contentType is given), contentType, signal,
// interactive (default true: ask for the token on 401).
export async function request(method, path, opts = {}) {
  const interactive = opts.interactive !== false;
  for (let attempt = 0; ; attempt++) {
    const headers = { Accept: "application/json" };
    const t = token();
    if (t) headers.Authorization = "Bearer " + t;
    let body;
    if (opts.body !== undefined) {
      if (opts.contentType) {
        headers["Content-Type"] = opts.contentType;
        body = opts.body;
      } else {
        headers["Content-Type"] = "application/json";
        body = JSON.stringify(opts.body);
      }
    }
    const r = await fetch(BASE + path, { method, headers, body, signal: opts.signal });
    if (r.status === 401 && /^bearer/i.test(r.headers.get("WWW-Authenticate") || "") && interactive && attempt < 3) {
      if (await askToken(Boolean(t))) continue;
    }
    if (r.status === 204) return null;
    let data = null;
    if ((r.headers.get("Content-Type") || "").startsWith("application/json")) data = await r.json();
    if (!r.ok) {
      const e = data && data.error;
      throw new ApiError(r.status, e ? e.code : "http_" + r.status, e ? e.message : r.status + " " + r.statusText,
        e ? e.field : null);
    }
    return data;
  }
}

export const get = (path, opts) => request("GET", path, opts);
export const post = (path, body, opts = {}) => request("POST", path, Object.assign({}, opts, { body }));
export const del = (path, opts) => request("DELETE", path, opts);

// Which routes this octetd serves, from its own description (so the page asks no route that
// would answer 404): has("/estimate", "post").
let described = null;
export async function routes() {
  if (!described) {
    described = get("/openapi.json").then((doc) => doc.paths || {}).catch(() => ({}));
  }
  const paths = await described;
  return { has: (path, method) => Boolean(paths[path] && paths[path][method || "get"]) };
}

// Cached reads of what changes rarely: the optimizer catalog, the datasets, the models.
const cache = new Map();
export function cached(path, fresh = false) {
  if (fresh || !cache.has(path)) {
    const p = get(path);
    cache.set(path, p);
    p.catch(() => cache.delete(path));
  }
  return cache.get(path);
}
