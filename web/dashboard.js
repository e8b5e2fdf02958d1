// The AI-Mesh dashboard: polls the worker's JSON views and redraws what changed.
// Counters, cycles and telemetry every second; charts every two; parts every five.
"use strict";

const PAGE_SIZE = 20;
const state = { before: null, next: null, selected: null, pages: [], summaryKey: "" };
const $ = (id) => document.getElementById(id);

function text(value) {
  return document.createTextNode(value === null || value === undefined ? "" : String(value));
}

function cell(value, className) {
  const td = document.createElement("td");
  td.appendChild(text(value));
  if (className) td.className = className;
  return td;
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

function connected(ok, message) {
  const box = $("connection");
  box.className = ok ? "connection" : "connection down";
  box.textContent = ok ? `live · updated ${new Date().toLocaleTimeString()}` : `not connected: ${message}`;
}

// ---- header: parts and sandbox layers
async function refreshStatus() {
  const status = await getJson("/api/status");
  const items = Object.entries(status.parts).map(([name, part]) => {
    const li = document.createElement("li");
    li.className = `part ${part.reachable ? "up" : "down"}`;
    li.dataset.part = name;
    const where = name === "sandbox" ? "" : part.embedded ? " embedded" : " external";
    // The broker's kind decides its settings, and the guarantee what a crash can repeat.
    const kind = part.kind ? ` ${part.kind}, ${part.processing_guarantee.replace(/_/g, "-")}` : "";
    li.appendChild(text(`${name}${where}${kind}${part.reachable ? "" : " (unreachable)"}`));
    li.title = part.error || (part.kind_reason ? `${part.url}: ${part.kind_reason}` : "") ||
      part.url || part.host || "";
    return li;
  });
  $("parts").replaceChildren(...items);
  const layers = (status.parts.sandbox.layers || []).map((layer) => {
    const span = document.createElement("span");
    span.className = layer.startsWith("UNSAFE") ? "layer unsafe" : "layer";
    span.appendChild(text(layer));
    return span;
  });
  $("layers").replaceChildren(text("sandbox layers: "), ...layers);
}

// ---- counters
const COUNTERS = [
  ["tasks", (s) => s.tasks], ["solutions", (s) => s.attempts], ["passed", (s) => s.passed],
  ["failed attempts", (s) => s.failed_attempts], ["gave up", (s) => s.gave_up],
  ["pass 1st try", (s) => percent(s.pass_rate_first_try)],
  ["pass after fixes", (s) => percent(s.pass_rate_after_fixes)],
  ["mean attempts", (s) => s.mean_attempts],
  // Whether the loop learns (aimesh/archive/learning.py): fixes that worked, and whether the
  // reviewer's scores agree with the verdicts (0.5 is no signal).
  ["passed within 1 fix", (s) => percent(s.learning.pass_after_fixes[1]?.rate)],
  ["fixes that passed", (s) => fixesPassed(s.learning.fixes_by_error)],
  ["pass with memories", (s) => percent(s.learning.memory.with_memories.rate)],
  ["pass without", (s) => percent(s.learning.memory.without.rate)],
  ["review agreement", (s) => s.learning.review.agreement],
];

function fixesPassed(byError) {
  const rows = Object.values(byError);
  const tried = rows.reduce((sum, row) => sum + row.tried, 0);
  return tried ? `${rows.reduce((sum, row) => sum + row.succeeded, 0)}/${tried}` : "–";
}

function percent(rate) {
  return rate === null || rate === undefined ? "–" : `${Math.round(rate * 1000) / 10}%`;
}

async function refreshSummary() {
  const summary = await getJson("/api/summary");
  summary.failed_attempts = summary.attempts - (summary.attempts_by_status.passed || 0);
  summary.tasks = summary.tasks_seen;
  for (const [label, pick] of COUNTERS) {  // drawn once, then only their values change
    const id = `counter-${label.replace(/\W+/g, "-")}`;
    let box = document.getElementById(id);
    if (!box) {
      box = document.createElement("div");
      box.className = "counter";
      box.id = id;
      const name = document.createElement("span");
      name.appendChild(text(label));
      box.append(document.createElement("b"), name);
      $("counters").appendChild(box);
    }
    box.querySelector("b").textContent = String(pick(summary) ?? "–");
  }
  const key = `${summary.cycles_finished}/${summary.attempts}`;
  const changed = key !== state.summaryKey;
  state.summaryKey = key;
  return changed;
}

// ---- dataset: what `aimesh export` would write now
async function refreshDataset() {
  const data = await getJson("/api/dataset");
  const records = data.records;
  const counts = [
    `${records.sft} SFT records`, `${records.repair} repair pairs`,
    `${records.preference} preference pairs`,
  ];
  const dropped = Object.values(data.duplicates).reduce((sum, n) => sum + n, 0);
  if (dropped) counts.push(`${dropped} duplicates dropped`);
  for (const [why, n] of Object.entries(data.left_out)) counts.push(`${n} left out (${why})`);
  $("dataset-counts").textContent = counts.join(" · ");
  $("dataset-download").href = data.download.sft;
}

// ---- cycles: paged feed, newest first
async function refreshCycles() {
  const query = new URLSearchParams({ limit: PAGE_SIZE });
  if (state.before !== null) query.set("before", state.before);
  const page = await getJson(`/api/cycles?${query}`);
  state.next = page.next;
  $("cycles-total").textContent = `${page.total} finished`;
  $("older").disabled = page.next === null;
  $("newer").disabled = state.before === null;
  $("page-label").textContent = state.before === null ? "newest" : `page ${state.pages.length + 1}`;
  $("cycles").replaceChildren(...[...page.running, ...page.cycles].map((cycle) => {
    const tr = document.createElement("tr");
    tr.className = "cycle-row" + (cycle.cycle_id === state.selected ? " selected" : "");
    tr.dataset.cycleId = cycle.cycle_id;
    tr.append(
      cell(cycle.cycle_id), cell(cycle.title), cell(cycle.outcome, cycle.outcome),
      cell(cycle.attempts), cell(cycle.last_error),
    );
    tr.addEventListener("click", () => showCycle(cycle.cycle_id));
    return tr;
  }));
}

function pageOlder() {
  if (state.next === null) return;
  state.pages.push(state.before);
  state.before = state.next;
  refreshCycles().catch((error) => connected(false, error.message));
}

function pageNewer() {
  state.before = state.pages.length ? state.pages.pop() : null;
  refreshCycles().catch((error) => connected(false, error.message));
}

// ---- one cycle in full
function field(label, value, className) {
  const p = document.createElement("div");
  const b = document.createElement("b");
  b.appendChild(text(`${label}: `));
  p.appendChild(b);
  const span = document.createElement("span");
  if (className) span.className = className;
  span.appendChild(text(value));
  p.appendChild(span);
  return p;
}

function block(className, content) {
  const pre = document.createElement("pre");
  pre.className = className;
  pre.appendChild(text(content));
  return pre;
}

async function showCycle(cycleId) {
  state.selected = cycleId;
  for (const row of document.querySelectorAll(".cycle-row")) {
    row.classList.toggle("selected", row.dataset.cycleId === cycleId);
  }
  const detail = await getJson(`/api/cycles/${encodeURIComponent(cycleId)}`);
  const box = $("detail");
  box.className = "detail";
  box.dataset.cycleId = cycleId;
  const parts = [field("cycle", cycleId)];
  if (detail.cycle) {
    parts.push(field("outcome", detail.cycle.outcome, detail.cycle.outcome));
    parts.push(field("source", detail.cycle.source));
  }
  for (const attempt of detail.attempts) {
    const section = document.createElement("div");
    section.className = "attempt";
    section.dataset.attempt = attempt.attempt;
    const task = document.createElement("div");
    task.className = "task";
    task.appendChild(text(attempt.task));
    section.append(
      field("attempt", attempt.attempt),
      field("verdict", attempt.status, attempt.status),
      task,
      block("code", attempt.code),
    );
    if (attempt.error) section.appendChild(block("error", `${attempt.error_type}: ${attempt.error}`));
    const review = document.createElement("div");
    review.className = "review";
    review.appendChild(field("review", `${attempt.review_score === "" ? "–" : attempt.review_score} · ${attempt.critique}`));
    section.appendChild(review);
    const memories = document.createElement("ul");
    memories.className = "memories";
    for (const memory of attempt.memories) {
      const li = document.createElement("li");
      li.appendChild(text(memory));
      memories.appendChild(li);
    }
    section.append(field("memories recalled", attempt.memories.length), memories);
    parts.push(section);
  }
  box.replaceChildren(...parts);
}

// ---- telemetry, filtered
async function refreshTelemetry() {
  const query = new URLSearchParams({ limit: 50 });
  if ($("filter-agent").value) query.set("agent", $("filter-agent").value);
  if ($("filter-type").value) query.set("type", $("filter-type").value);
  const data = await getJson(`/api/telemetry?${query}`);
  fillOptions($("filter-agent"), data.agents);
  fillOptions($("filter-type"), data.types);
  $("telemetry").replaceChildren(...data.events.map((event) => {
    const tr = document.createElement("tr");
    const when = new Date(event.timestamp * 1000).toLocaleTimeString();
    tr.append(cell(when), cell(event.agent), cell(event.type), cell(event.message), cell(event.value));
    return tr;
  }));
}

function fillOptions(select, values) {
  const have = new Set([...select.options].map((o) => o.value));
  for (const value of values) {
    if (!have.has(value)) select.appendChild(new Option(value, value));
  }
}

// ---- memory
async function refreshMemory() {
  const memory = await getJson("/api/memory?limit=5");
  const counts = Object.entries(memory.counts || {}).map(([kind, n]) => {
    const box = document.createElement("div");
    box.className = "counter";
    const value = document.createElement("b");
    value.appendChild(text(n));
    const name = document.createElement("span");
    name.appendChild(text(`${kind}s stored`));
    box.append(value, name);
    return box;
  });
  $("memory-counts").replaceChildren(...(counts.length ? counts : [text(memory.error || "empty")]));
  $("retrievals").replaceChildren(...memory.retrievals.map((r) => {
    const li = document.createElement("li");
    li.appendChild(text(`${r.title} (attempt ${r.attempt}): ${r.memories.length} recalled`));
    return li;
  }));
}

// ---- charts
async function refreshCharts() {
  const series = await getJson("/api/series?buckets=30");
  const buckets = series.buckets;
  charts.lineChart($("chart-throughput"), [
    { name: "cycles archived (persistence)", color: "#3056d3", values: buckets.map((b) => b.cycles) },
    { name: "attempts (consumer, sandbox, reviewer)", color: "#98a2b3", values: buckets.map((b) => b.attempts) },
  ]);
  charts.lineChart($("chart-latency"), [
    { name: "consumer", color: "#3056d3", values: buckets.map((b) => b.latency_ms.consumer) },
    { name: "sandbox", color: "#137333", values: buckets.map((b) => b.latency_ms.sandbox) },
    { name: "reviewer", color: "#a15c00", values: buckets.map((b) => b.latency_ms.reviewer) },
  ]);
  charts.lineChart($("chart-passrate"), [{
    name: "pass rate", color: "#137333",
    values: buckets.map((b) => (b.cycles ? b.passed / b.cycles : null)),
  }]);
  charts.barChart($("chart-retries"), series.retries.map((r) => ({
    label: String(r.attempts),
    bars: [
      { name: "passed", color: "#137333", value: r.passed },
      { name: "gave up", color: "#b3261e", value: r.gave_up },
    ],
  })));
}

// ---- the loop
let ticks = 0;
async function tick() {
  try {
    const changed = await refreshSummary();
    const work = [refreshTelemetry()];
    if (changed || ticks % 5 === 0) work.push(refreshCycles(), refreshMemory(), refreshDataset());
    if (changed || ticks % 2 === 0) work.push(refreshCharts());
    if (ticks % 5 === 0) work.push(refreshStatus());
    await Promise.all(work);
    connected(true);
    if (!document.body.dataset.ready) {
      // First full picture on screen: what bench/dashboard_bench.py times.
      document.body.dataset.ready = String(Math.round(performance.now()));
    }
  } catch (error) {
    connected(false, error.message);
  }
  ticks += 1;
}

$("older").addEventListener("click", pageOlder);
$("newer").addEventListener("click", pageNewer);
$("filter-agent").addEventListener("change", () => refreshTelemetry());
$("filter-type").addEventListener("change", () => refreshTelemetry());
tick();
setInterval(tick, 1000);
