// The iqengine console. Every view is a few requests to the node's public
// HTTP API, the same a curl user makes, so the console shows nothing the API
// does not give, and it works through a proxy and with authentication (the
// token field). Plain DOM and no framework: it is served from the binary as
// it is, with no build step.
"use strict";

// How often the cluster view refreshes itself.
const REFRESH_MS = 2000;
// How long the cluster view marks a partition that changed node.
const MOVED_MS = 60000;
const TOKEN_KEY = "iqengine.token";

const byId = (id) => document.getElementById(id);
const enc = encodeURIComponent;

// el builds an element: attributes from props ("text" sets its text), then
// children, nodes or text. Text is never parsed as HTML: keys and values are
// data from the stores.
function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

// ---- The API ----

// ApiError is a request that failed: the API's problem document (RFC 9457:
// title, detail, type, and partitions for a 503), or what the browser knows
// when none came back.
class ApiError extends Error {
  constructor(status, problem) {
    super(problem.title);
    this.status = status;
    this.problem = problem;
  }
}

const tokenInput = byId("token");
tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";

// api GETs path on this node and returns the body's text, or throws an
// ApiError.
async function api(path, accept = "application/json") {
  const headers = { Accept: accept };
  const token = tokenInput.value.trim();
  if (token) headers.Authorization = "Bearer " + token;
  let resp;
  try {
    resp = await fetch(path, { headers, cache: "no-store" });
  } catch (e) {
    throw new ApiError(0, { title: "The node did not answer", detail: `GET ${path}: ${e.message}` });
  }
  const text = await resp.text();
  if (!resp.ok) throw new ApiError(resp.status, problemOf(resp, text));
  return text;
}

const apiJSON = async (path) => JSON.parse(await api(path));

function problemOf(resp, text) {
  if (/json/.test(resp.headers.get("Content-Type") || "")) {
    try {
      const p = JSON.parse(text);
      if (p && typeof p.title === "string") return p;
    } catch {
      // not JSON after all: shown as text below
    }
  }
  return { title: `HTTP ${resp.status} ${resp.statusText}`.trim(), detail: text.slice(0, 300) };
}

// showProblem shows err (an ApiError, or a bug of the console) in the box
// of that id, or empties the box when err is null.
function showProblem(id, err) {
  const box = byId(id);
  const status = err instanceof ApiError ? err.status : 0;
  const p = !err ? null : err instanceof ApiError ? err.problem : { title: "The console failed", detail: String(err.message || err) };
  // The same problem again (the cluster view refreshes) is left as it is,
  // so that a screen reader announces it once.
  const shown = JSON.stringify([status, p]);
  if (box.dataset.shown === shown) return;
  box.dataset.shown = shown;
  if (!p) {
    box.replaceChildren();
    return;
  }
  box.replaceChildren(el("div", { class: "problem", role: "alert" },
    el("p", {}, el("strong", { class: "title", text: p.title }), status ? ` (HTTP ${status})` : ""),
    p.detail ? el("p", { class: "detail", text: p.detail }) : null,
    Array.isArray(p.partitions) && p.partitions.length
      ? el("p", { text: "Partitions: " + p.partitions.map((x) => typeof x === "object" ? JSON.stringify(x) : x).join(", ") })
      : null,
    p.type ? el("p", { class: "type", text: p.type }) : null));
}

// transformParams turns the text of a transform parameters field,
// "fields=a,b&min=3", into t.-prefixed query parameters.
function transformParams(text, q = new URLSearchParams()) {
  for (const part of text.split(/[&\n]/)) {
    const pair = part.trim();
    if (!pair) continue;
    const i = pair.indexOf("=");
    let name = i < 0 ? pair : pair.slice(0, i);
    const value = i < 0 ? "" : pair.slice(i + 1);
    if (!name.startsWith("t.")) name = "t." + name;
    q.append(name, value);
  }
  return q;
}

const withQuery = (path, q) => (q.toString() ? `${path}?${q}` : path);
const show = (v) => (typeof v === "string" ? v : JSON.stringify(v));

// ---- Views ----

const views = ["cluster", "stores", "lookup", "scan", "plugins"];
let current = "";

function route() {
  const want = location.hash.slice(1);
  current = views.includes(want) ? want : "cluster";
  for (const v of views) byId("view-" + v).hidden = v !== current;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === "#" + current) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  ({ cluster: refreshCluster, stores: loadStores, lookup: fillStoreSelects, scan: fillStoreSelects, plugins: loadPlugins })[current]();
}

// storeKinds is each store's kind ("keyvalue", "window", "session"), as
// /v1/stores last said: the lookup and scan views ask a window or session
// store for its windows or sessions.
const storeKinds = new Map();

function noteKinds(stores) {
  for (const s of stores) storeKinds.set(s.name, s.kind || "keyvalue");
}

// timedPath is the path segment of a window or session store's queries, or
// "" for a key-value store.
const timedPath = (store) => ({ window: "windows", session: "sessions" })[storeKinds.get(store)] || "";

// fillStoreSelects lists the stores in the lookup and scan forms, once.
async function fillStoreSelects() {
  const selects = document.querySelectorAll(".store-select");
  if ([...selects].every((s) => s.options.length > 0)) return;
  try {
    const { stores } = await apiJSON("/v1/stores");
    noteKinds(stores);
    for (const s of selects) {
      if (s.options.length === 0) s.append(...stores.map((st) => el("option", { value: st.name, text: st.name })));
    }
  } catch (e) {
    showProblem(current + "-problem", e);
  }
}

// ---- Cluster ----

let clusterBusy = false;
let clusterUpdated = null;
const lastOwner = new Map(); // "topic/partition": the node last seen holding it
const moved = new Map(); // "topic/partition": {from, at}, while MOVED_MS lasts

// partitionState is what the console says of a partition: its holder's
// state, or why there is none.
function partitionState(p) {
  if (!p.owner) return "no owner";
  if (p.error) return "unreachable";
  return p.state || "pending";
}

// replicaKind is how the partition's holder keeps it: the row's holder is
// its active owner (its standbys are in the row's notes); a kind the API
// reports is shown as it is.
const replicaKind = (p) => p.replica || "active";

// standbyNotes says where the partition's standbys are, how far behind
// each is, and where it is warming up to move.
function standbyNotes(p) {
  const out = (p.standbys || []).map((s) => s.error
    ? `standby on ${s.node_id} (did not answer)`
    : `standby on ${s.node_id} (${s.state || "pending"}${s.state === "serving" ? ", lag " + s.lag : ""})`);
  if (p.warm_up) out.push(`warming up on ${p.warm_up} to move there`);
  return out;
}

const stateClass = (s) => "state-" + s.replace(/\s+/g, "-");

async function refreshCluster() {
  if (clusterBusy) return;
  clusterBusy = true;
  try {
    const [inst, parts, stores] = await Promise.all([
      apiJSON("/v1/metadata/instances"), apiJSON("/v1/metadata/partitions"), apiJSON("/v1/stores")]);
    showProblem("cluster-problem", null);
    renderCluster(inst, parts, stores.stores);
  } catch (e) {
    showProblem("cluster-problem", e);
    byId("cluster-summary").textContent = clusterUpdated
      ? `Not updated since ${clusterUpdated.toLocaleTimeString()}` : "Not loaded";
  } finally {
    clusterBusy = false;
  }
}

function renderCluster(inst, parts, stores) {
  const now = Date.now();
  const storesOf = new Map();
  for (const s of stores) storesOf.set(s.topic, [...(storesOf.get(s.topic) || []), s.name]);
  const topicLabel = (t) => (storesOf.get(t) || [t]).join(", ");

  const rows = [];
  const byNode = new Map();
  for (const n of inst.instances) byNode.set(n.node_id, { url: n.url, parts: [] });
  const unreachable = new Set(); // nodes that did not say how their partitions are
  let serving = 0;
  for (const p of parts.partitions) {
    const key = `${p.topic}/${p.partition}`;
    const prev = lastOwner.get(key);
    if (p.owner) {
      if (prev && prev !== p.owner) moved.set(key, { from: prev, at: now });
      lastOwner.set(key, p.owner);
    }
    const m = moved.get(key);
    if (m && now - m.at > MOVED_MS) moved.delete(key);
    const state = partitionState(p);
    if (state === "serving") serving++;
    if (p.owner) {
      if (!byNode.has(p.owner)) byNode.set(p.owner, { url: "", parts: [] });
      byNode.get(p.owner).parts.push({ p, state });
    }
    const notes = [];
    if (p.error && p.owner) {
      // The reason, "connection refused", ends the Go error; all of it is in the title.
      notes.push(`${p.owner} did not answer (${p.error.split(": ").pop()})`);
      unreachable.add(p.owner);
    } else if (p.error) {
      notes.push(p.error);
    }
    if (moved.has(key)) {
      const mv = moved.get(key);
      notes.push(`was on ${mv.from} until ${new Date(mv.at).toLocaleTimeString()}`);
    }
    notes.push(...standbyNotes(p));
    const known = p.state !== undefined && !p.error;
    rows.push(el("tr", { class: moved.has(key) ? "moved" : null },
      el("td", { text: p.topic }),
      el("td", { text: (storesOf.get(p.topic) || []).join(", ") }),
      el("td", { class: "num", text: p.partition }),
      el("td", { text: p.owner || "—" }),
      el("td", { text: p.owner ? replicaKind(p) : "—" }),
      el("td", { class: "state " + stateClass(state), text: state }),
      el("td", { class: "num", text: known ? p.offset : "" }),
      el("td", { class: "num", text: known ? p.high_watermark : "" }),
      el("td", { class: "num", text: known ? p.lag : "" }),
      el("td", { class: "wrap", title: p.error || null, text: notes.join("; ") })));
  }
  byId("partitions").tBodies[0].replaceChildren(...rows);

  const nodeRows = [...byNode.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([id, n]) => {
    const held = new Map(); // topic: chips
    let lag = 0;
    for (const { p, state } of n.parts) {
      lag += p.lag || 0;
      const label = `${topicLabel(p.topic)} partition ${p.partition}: ${replicaKind(p)}, ${state}`;
      held.set(p.topic, [...(held.get(p.topic) || []),
        el("span", { class: "chip " + stateClass(state), title: label, "aria-label": label, text: p.partition })]);
    }
    return el("tr", {},
      el("th", { scope: "row", text: id }),
      el("td", {}, n.url ? el("a", { href: n.url + "/ui/", text: n.url }) : "—"),
      el("td", { class: unreachable.has(id) ? "state state-unreachable" : null, text: unreachable.has(id) ? "no" : "yes" }),
      el("td", { class: "num", text: n.parts.length }),
      el("td", { class: "num", text: n.parts.filter((x) => x.state === "serving").length }),
      el("td", { class: "num", text: lag }),
      el("td", { class: "holds" }, el("div", { class: "chips" }, [...held.entries()].map(([t, chips]) =>
        el("span", {}, el("span", { class: "store", text: topicLabel(t) + ": " }), chips)))));
  });
  byId("nodes").tBodies[0].replaceChildren(...nodeRows);

  clusterUpdated = new Date(now);
  byId("cluster-summary").textContent = `Generation ${inst.generation} · ${inst.instances.length} node(s) · ` +
    `${serving} of ${parts.partitions.length} partitions serving · updated ${clusterUpdated.toLocaleTimeString()}`;
}

setInterval(() => {
  if (current === "cluster" && byId("cluster-live").checked) refreshCluster();
}, REFRESH_MS);
byId("cluster-refresh").addEventListener("click", refreshCluster);

// ---- Stores ----

async function loadStores() {
  let stores;
  try {
    ({ stores } = await apiJSON("/v1/stores"));
    showProblem("stores-problem", null);
  } catch (e) {
    showProblem("stores-problem", e);
    return;
  }
  noteKinds(stores);
  fillStoreSelects();
  byId("stores").tBodies[0].replaceChildren(...stores.map((s) => {
    const count = el("td", { class: "num count", text: "…" });
    api(`/v1/stores/${enc(s.name)}/count`).then((text) => {
      count.textContent = JSON.parse(text).count;
    }, (e) => {
      const p = e instanceof ApiError ? e.problem : { title: String(e) };
      count.textContent = p.title + (p.detail ? ": " + p.detail : "");
    });
    return el("tr", {},
      el("th", { scope: "row", text: s.name }),
      el("td", { text: s.topic }),
      el("td", { class: "num", text: s.partitions }),
      el("td", { text: s.key_serde }),
      el("td", { text: s.value_serde }),
      el("td", { text: s.transform ? transformText(s.transform) : "—" }),
      el("td", { text: kindText(s) }),
      count);
  }));
}

// kindText says what a store holds: "keyvalue", "window 1h, retention 3h",
// "session, retention 2h".
function kindText(s) {
  const kind = s.kind || "keyvalue";
  if (kind === "keyvalue") return kind;
  const size = s.window_size_ms ? " " + duration(s.window_size_ms) : "";
  return `${kind}${size}, retention ${duration(s.retention_ms)}`;
}

function duration(ms) {
  for (const [unit, n] of [["d", 86400000], ["h", 3600000], ["m", 60000], ["s", 1000]]) {
    if (ms >= n && ms % n === 0) return ms / n + unit;
  }
  return ms + "ms";
}

function transformText(t) {
  const params = Object.entries(t.params || {}).map(([k, v]) => `${k}=${v}`).join("&");
  return params ? `${t.module} (${params})` : t.module;
}

byId("stores-refresh").addEventListener("click", loadStores);

// ---- Key lookup ----

let lookupSeq = 0;

byId("lookup-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const seq = ++lookupSeq;
  const store = byId("lookup-store").value;
  const key = byId("lookup-key").value;
  const result = byId("lookup-result");
  showProblem("lookup-problem", null);
  result.replaceChildren(el("p", { text: "Looking up…" }));
  const timed = timedPath(store);
  const path = withQuery(`/v1/stores/${enc(store)}/keys/${enc(key)}` + (timed ? "/" + timed : ""), transformParams(byId("lookup-params").value));
  const [rec, meta] = await Promise.allSettled([apiJSON(path), apiJSON(`/v1/metadata/stores/${enc(store)}/keys/${enc(key)}`)]);
  if (seq !== lookupSeq) return; // a later lookup answers
  const where = meta.status === "fulfilled"
    ? `partition ${meta.value.partition}, held by ${meta.value.owner ? meta.value.owner.node_id : "no node (it is moving)"}` : "";
  if (rec.status === "rejected") {
    showProblem("lookup-problem", rec.reason);
    result.replaceChildren(where ? el("p", { text: `The key would live in ${where}.` }) : "");
    return;
  }
  const r = rec.value;
  if (timed) {
    // A window or session store: the key's first page of windows or
    // sessions, oldest first.
    result.replaceChildren(
      el("dl", { class: "record" },
        el("dt", { text: "Key" }), el("dd", { class: "key", text: key }),
        where ? [el("dt", { text: "Lives in" }), el("dd", { text: where })] : null,
        el("dt", { text: timed === "windows" ? "Windows" : "Sessions" }),
        el("dd", { class: "windows-count", text: r.items.length + (r.next_cursor ? " (the first page)" : "") })),
      el("table", { id: "lookup-windows" },
        el("caption", { class: "visually-hidden", text: timed }),
        el("thead", {}, el("tr", {}, ["Start", "End", "Value", "Partition", "Offset"].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, r.items.map((it) => el("tr", {},
          el("td", { text: it.start }), el("td", { text: it.end }),
          el("td", { class: "value", text: it.error ? `(does not decode: ${it.error})` : show(it.value) }),
          el("td", { class: "num", text: it.partition }), el("td", { class: "num", text: it.offset }))))));
    return;
  }
  result.replaceChildren(
    el("dl", { class: "record" },
      el("dt", { text: "Key" }), el("dd", { class: "key", text: show(r.key) }),
      el("dt", { text: "Partition" }), el("dd", { text: r.partition }),
      el("dt", { text: "Offset" }), el("dd", { text: r.offset }),
      el("dt", { text: "Timestamp" }), el("dd", { text: r.timestamp }),
      el("dt", { text: "Served by" }), el("dd", { text: r.served_by }),
      where ? [el("dt", { text: "Lives in" }), el("dd", { text: where })] : null),
    el("h3", { text: "Value" }),
    el("pre", { id: "lookup-value", tabindex: 0, text: JSON.stringify(r.value, null, 2) }));
});

// ---- Scan ----

// The scan being browsed: its query, and the cursor of each page seen
// (page 0 has none), so that Previous goes back without the API's help.
const scan = { store: "", timed: "", query: null, cursors: [null], page: 0, seq: 0 };

byId("scan-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const q = new URLSearchParams();
  scan.store = byId("scan-store").value;
  scan.timed = timedPath(scan.store);
  // A window or session store's scan takes the key bounds as key_from and
  // key_to; prefix is refused by the API, with its reason.
  const names = scan.timed ? { from: "key_from", to: "key_to", prefix: "prefix", limit: "limit" } : {};
  for (const f of ["from", "to", "prefix", "limit"]) {
    const v = byId("scan-" + f).value;
    if (v !== "") q.set(names[f] || f, v);
  }
  scan.query = transformParams(byId("scan-params").value, q);
  scan.cursors = [null];
  loadPage(0);
});
byId("scan-next").addEventListener("click", () => loadPage(scan.page + 1));
byId("scan-prev").addEventListener("click", () => loadPage(scan.page - 1));

async function loadPage(i) {
  const seq = ++scan.seq;
  const q = new URLSearchParams(scan.query);
  if (scan.cursors[i]) q.set("cursor", scan.cursors[i]);
  byId("scan-next").disabled = byId("scan-prev").disabled = true;
  byId("scan-status").textContent = `Loading page ${i + 1}…`;
  let r;
  try {
    r = await apiJSON(withQuery(`/v1/stores/${enc(scan.store)}/` + (scan.timed || "keys"), q));
  } catch (e) {
    if (seq !== scan.seq) return;
    showProblem("scan-problem", e);
    byId("scan-status").textContent = "";
    byId("scan-prev").disabled = scan.page === 0;
    byId("scan-next").disabled = !scan.cursors[scan.page + 1];
    return;
  }
  if (seq !== scan.seq) return;
  showProblem("scan-problem", null);
  scan.page = i;
  scan.cursors.length = i + 1;
  scan.cursors.push(r.next_cursor);
  byId("scan-results").tBodies[0].replaceChildren(...r.items.map((it) => el("tr", {},
    el("td", { class: "key", text: show(it.key) }),
    el("td", { text: it.start ? `${it.start} – ${it.end}` : "—" }),
    el("td", { class: "num", text: it.partition }),
    el("td", { class: "num", text: it.offset }),
    el("td", { text: it.timestamp }),
    el("td", { class: "value", text: it.error ? `(does not decode: ${it.error})` : show(it.value) }))));
  byId("scan-status").textContent = `Page ${i + 1}: ${r.items.length} key(s)` + (r.next_cursor ? "" : ", the last page");
  byId("scan-prev").disabled = i === 0;
  byId("scan-next").disabled = !r.next_cursor;
}

// ---- Plugins ----

const PLUGIN_METRIC = "iqengine_plugin_";

async function loadPlugins() {
  const [info, stores, metrics] = await Promise.allSettled([apiJSON("/v1/info"), apiJSON("/v1/stores"), api("/metrics", "text/plain")]);
  const failed = [info, stores, metrics].find((r) => r.status === "rejected");
  showProblem("plugins-problem", failed ? failed.reason : null);
  if (info.status === "fulfilled") {
    const rows = (info.value.plugins || []).map((p) => el("tr", {},
      el("th", { scope: "row", text: p.module }), el("td", { text: p.sha256 }),
      el("td", { text: "v" + p.abi_version }), el("td", { text: (p.capabilities || []).join(", ") })));
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 4, text: "No WebAssembly module is loaded." })));
    byId("plugin-modules").tBodies[0].replaceChildren(...rows);
  }
  if (stores.status === "fulfilled") {
    const rows = [];
    for (const s of stores.value.stores) {
      const uses = [["key serde", s.key_serde, null], ["value serde", s.value_serde, null]];
      if (s.transform) uses.push(["transform", s.transform.module, s.transform.params]);
      for (const [role, module, params] of uses) {
        if (!module.startsWith("wasm:")) continue; // a built-in serde
        rows.push(el("tr", {},
          el("th", { scope: "row", text: s.name }), el("td", { text: role }), el("td", { text: module }),
          el("td", { text: Object.entries(params || {}).map(([k, v]) => `${k}=${v}`).join("&") || "—" })));
      }
    }
    if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: 4, text: "No store uses a plugin: every serde is built in." })));
    byId("plugin-uses").tBodies[0].replaceChildren(...rows);
  }
  if (metrics.status === "fulfilled") renderPluginMetrics(parseMetrics(metrics.value));
}

// parseMetrics reads Prometheus's text format: each sample's name, labels
// and value, and each family's type.
function parseMetrics(text) {
  const types = new Map();
  const samples = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("# TYPE ")) {
      const [name, type] = line.slice(7).split(" ");
      types.set(name, type);
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const [, k, v] of (m[2] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[k] = v.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    }
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return { types, samples };
}

// familyOf is the family a sample belongs to: a histogram's or a summary's
// _bucket, _sum and _count samples belong to the histogram.
function familyOf(name, types) {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    const base = name.slice(0, -suffix.length);
    if (name.endsWith(suffix) && ["histogram", "summary"].includes(types.get(base))) return [base, suffix];
  }
  return [name, ""];
}

const round = (x) => (Number.isInteger(x) ? String(x) : x.toPrecision(3));

// renderPluginMetrics shows one row per plugin and one column per
// iqengine_plugin_ family: counters and gauges summed over their other
// labels (with the non-zero parts named), histograms as calls and mean.
function renderPluginMetrics({ types, samples }) {
  const families = [];
  const cells = new Map(); // plugin: family: {total, parts, sum, count}
  for (const s of samples) {
    const [family, suffix] = familyOf(s.name, types);
    if (!family.startsWith(PLUGIN_METRIC) || suffix === "_bucket") continue;
    if (!families.includes(family)) families.push(family);
    const plugin = s.labels.plugin || "(all)";
    if (!cells.has(plugin)) cells.set(plugin, new Map());
    const byFamily = cells.get(plugin);
    if (!byFamily.has(family)) byFamily.set(family, { total: 0, parts: new Map(), sum: 0, count: 0 });
    const c = byFamily.get(family);
    if (suffix === "_sum") c.sum += s.value;
    else if (suffix === "_count") c.count += s.value;
    else {
      c.total += s.value;
      const part = Object.entries(s.labels).filter(([k]) => k !== "plugin" && k !== "quantile").map(([, v]) => v).join(" ");
      if (part && s.value !== 0) c.parts.set(part, (c.parts.get(part) || 0) + s.value);
    }
  }
  const table = byId("plugin-metrics");
  const heading = (f) => f.slice(PLUGIN_METRIC.length).replace(/_total$/, "").replace(/_/g, " ");
  table.tHead.rows[0].replaceChildren(el("th", { scope: "col", text: "Plugin" }),
    ...families.map((f) => el("th", { scope: "col", title: f, text: heading(f) })));
  const rows = [...cells.keys()].sort().map((plugin) => el("tr", {},
    el("th", { scope: "row", text: plugin }),
    ...families.map((f) => {
      const c = cells.get(plugin).get(f);
      if (!c) return el("td", { text: "—" });
      if (["histogram", "summary"].includes(types.get(f))) {
        const mean = c.count ? c.sum / c.count : 0;
        const unit = f.endsWith("_seconds") ? `${round(mean * 1000)} ms` : round(mean);
        return el("td", { class: "num", text: `${c.count} (mean ${unit})` });
      }
      const parts = [...c.parts.entries()].map(([k, v]) => `${k} ${round(v)}`).join(" · ");
      return el("td", { class: "num" }, round(c.total), parts ? el("div", { class: "help", text: parts }) : null);
    })));
  if (rows.length === 0) rows.push(el("tr", {}, el("td", { colspan: families.length + 1, text: "This node runs no plugin." })));
  table.tBodies[0].replaceChildren(...rows);
}

byId("plugins-refresh").addEventListener("click", loadPlugins);

// ---- Start ----

byId("token-form").addEventListener("submit", (ev) => ev.preventDefault());
tokenInput.addEventListener("change", () => {
  const token = tokenInput.value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
  route();
});
window.addEventListener("hashchange", () => {
  route();
  byId(current + "-title").focus();
});
route();
