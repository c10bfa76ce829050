// The service's page: data sets with their multiplicities, jobs with live progress, a form to
// start a job, the transformations. Every API call carries the token given above (kept for
// this browser tab only; "#token=..." in the address fills it in).
"use strict";

const state = { token: "", datasets: [], transformations: [], plotted: {} };

function $(sel) { return document.querySelector(sel); }
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}
function bytes(n) {
  if (n == null) return "";
  const units = ["B", "kB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

async function api(method, path, body) {
  const headers = { "Authorization": `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const type = r.headers.get("content-type") || "";
  const data = type.includes("json") ? await r.json() : await r.blob();
  if (!r.ok) throw new Error(`${r.status}: ${data.detail || r.statusText}`);
  return data;
}

function status(text, error = false) {
  const s = $("#status");
  s.textContent = text;
  s.className = error ? "error" : "";
}

// --- data sets ---------------------------------------------------------------------------------
function plot(name, hist) {
  const w = 90, h = 34, counts = hist.counts, top = Math.max(1, ...counts);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("width", w); svg.setAttribute("height", h + 10); svg.setAttribute("class", "plot");
  const bw = w / Math.max(counts.length, 1);
  counts.forEach((c, i) => {
    const r = document.createElementNS(svg.namespaceURI, "rect");
    const bh = (c / top) * h;
    r.setAttribute("x", i * bw); r.setAttribute("y", h - bh); r.setAttribute("width", Math.max(bw - 0.5, 0.5));
    r.setAttribute("height", bh);
    svg.append(r);
  });
  const t = document.createElementNS(svg.namespaceURI, "text");
  t.setAttribute("x", 0); t.setAttribute("y", h + 9);
  t.textContent = `${name} ⟨${hist.mean.toFixed(1)}⟩`;
  svg.append(t);
  return svg;
}

async function drawMultiplicity(name, cell) {
  try {
    const m = await api("GET", `/datasets/${encodeURIComponent(name)}/multiplicity`);
    const box = el("div", { class: "plots", title: m.what });
    for (const [g, hist] of Object.entries(m.histograms)) if (hist.mean > 0) box.append(plot(g, hist));
    cell.replaceChildren(box);
  } catch (e) { cell.textContent = e.message; }
}

async function loadDatasets() {
  state.datasets = await api("GET", "/datasets");
  const body = $("#datasets tbody");
  for (const d of state.datasets) {
    let row = document.getElementById(`ds-${d.name}`);
    if (!row) {
      row = el("tr", { id: `ds-${d.name}` });
      body.append(row);
    }
    const plotCell = row.querySelector("td.plot") || el("td", { class: "plot" });
    row.replaceChildren(
      el("td", {}, el("details", {}, el("summary", { text: d.name }), el("pre", { text: JSON.stringify(d, null, 1) }))),
      el("td", { text: d.kind }), el("td", { class: "num", text: d.n_events ?? "" }),
      el("td", { class: "num", text: bytes(d.bytes) }),
      el("td", { text: [d.experiment, (d.layers || []).join(", ")].filter(Boolean).join(" · ") || d.error || "" }),
      plotCell);
    const key = `${d.name}:${d.bytes}`;
    if (state.plotted[d.name] !== key) { state.plotted[d.name] = key; drawMultiplicity(d.name, plotCell); }
  }
  const select = $("#f-dataset"), chosen = select.value;
  select.replaceChildren(...state.datasets.map(d => el("option", { value: d.name, text: `${d.name} (${d.kind})` })));
  if (chosen) select.value = chosen;
}

// --- transformations and the form --------------------------------------------------------------
function defaults(schema) {
  const out = {};
  for (const [k, p] of Object.entries(schema.properties || {})) {
    if ("default" in p) out[k] = p.default;
    else if (p.enum && p.enum.length) out[k] = p.enum[0];
    else if ((schema.required || []).includes(k)) out[k] = "";
  }
  return out;
}

async function loadTransformations() {
  state.transformations = await api("GET", "/transformations");
  const box = $("#transformations");
  box.replaceChildren(...state.transformations.map(t => el("details", { id: `tr-${t.name}` },
    el("summary", { text: `${t.name}: ${t.description} (takes ${t.inputs.join(", ")})` }),
    el("pre", { text: JSON.stringify(t.params, null, 1) }))));
  const select = $("#f-transformation"), chosen = select.value;
  select.replaceChildren(...state.transformations.map(t => el("option", { value: t.name, text: t.name })));
  if (chosen) select.value = chosen;
  fillParams();
}

function fillParams() {
  const t = state.transformations.find(x => x.name === $("#f-transformation").value);
  if (t) $("#f-params").value = JSON.stringify(defaults(t.params), null, 1);
}

async function startJob(event) {
  event.preventDefault();
  const msg = $("#f-message");
  try {
    const params = JSON.parse($("#f-params").value || "{}");
    const job = await api("POST", "/jobs", { dataset: $("#f-dataset").value, transformation: $("#f-transformation").value, params });
    msg.className = "";
    msg.textContent = `job ${job.id.slice(0, 8)}: ${job.new ? "started" : "exists already"} (${job.state})`;
    loadJobs();
  } catch (e) { msg.className = "error"; msg.textContent = e.message; }
}

// --- jobs --------------------------------------------------------------------------------------
async function showResult(job) {
  const view = $("#result-view");
  try {
    const r = await api("GET", `/jobs/${job.id}/result`);
    if (r instanceof Blob) {
      const a = el("a", { href: URL.createObjectURL(r), download: `${job.dataset}.${job.transformation}.${job.id.slice(0, 8)}.h5`,
                          text: `save ${job.result.name} (${bytes(r.size)})` });
      view.replaceChildren(a);
    } else {
      view.replaceChildren(el("pre", { text: r.files.map(f => `${f.path}  ${bytes(f.bytes)}  sha256 ${f.sha256}`).join("\n") }));
    }
  } catch (e) { view.replaceChildren(el("span", { class: "error", text: e.message })); }
}

function jobRow(job) {
  let row = document.getElementById(`job-${job.id}`);
  if (!row) row = el("tr", { id: `job-${job.id}` });
  row.dataset.state = job.state;
  const bar = el("progress", { max: "1", value: String(job.progress ?? 0) });
  const pct = `${Math.round(100 * (job.progress ?? 0))}%`;
  const result = job.state === "done" ? el("button", { type: "button", text: job.result ? `${job.result.kind} · ${bytes(job.result.bytes)}` : "result" }) : "";
  if (result) result.addEventListener("click", () => showResult(job));
  const cancel = (job.state === "queued" || job.state === "running") ? el("button", { type: "button", text: "cancel" }) : "";
  if (cancel) cancel.addEventListener("click", () => api("DELETE", `/jobs/${job.id}`).then(loadJobs, e => status(e.message, true)));
  row.replaceChildren(
    el("td", { title: job.id, text: job.id.slice(0, 8) }), el("td", { text: job.dataset }),
    el("td", { title: JSON.stringify(job.params), text: job.transformation }), el("td", { class: "state", text: job.state }),
    el("td", {}, bar, ` ${pct}`), el("td", { text: job.message || job.step || "" }), el("td", {}, result, cancel));
  return row;
}

async function loadJobs() {
  const jobs = await api("GET", "/jobs");
  $("#jobs tbody").replaceChildren(...jobs.map(jobRow));
  const running = jobs.filter(j => j.state === "running" || j.state === "queued").length;
  status(`${state.datasets.length} data sets · ${jobs.length} jobs (${running} unfinished) · ${new Date().toLocaleTimeString()}`);
}

// --- start -------------------------------------------------------------------------------------
async function refresh(all) {
  if (!state.token) { status("give a token to see the data sets and jobs"); return; }
  try {
    if (all) { await loadDatasets(); await loadTransformations(); }
    await loadJobs();
  } catch (e) { status(e.message, true); }
}

function useToken(event) {
  if (event) event.preventDefault();
  state.token = $("#token").value.trim();
  sessionStorage.setItem("treasure-token", state.token);
  refresh(true);
}

function init() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) history.replaceState(null, "", location.pathname);
  $("#token").value = fromHash || sessionStorage.getItem("treasure-token") || "";
  $("#token-form").addEventListener("submit", useToken);
  $("#job-form").addEventListener("submit", startJob);
  $("#f-transformation").addEventListener("change", fillParams);
  useToken();
  let ticks = 0;
  setInterval(() => { ticks++; refresh(ticks % 10 === 0); }, 1000);
}

init();
