// The operator's alarm queue: sign in, list active alerts by urgency, update live.
"use strict";

const PRIORITY = { 1: "1 Emergency", 2: "2 Urgent", 3: "3 High", 4: "4 Supervision", 5: "5 Restoral", 9: "9 Routine" };
let token = sessionStorage.getItem("telecare-token");
let refreshing = null;
let stale = false;

const $ = (selector) => document.querySelector(selector);

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...(options.headers || {}), Authorization: `Bearer ${token}` } });
  if (response.headers.get("Telecare-Storage-Fault") === "true" && !storageFault) showStorage({ storage_fault: true });
  if (response.status === 401) { signOut(); throw new Error("signed out"); }
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

// An error body's words: a 422's `detail` is a list of {loc, msg, type}; any other refusal's is a string.
function problem(body) {
  return Array.isArray(body.detail) ? body.detail.map((item) => item.msg).join("; ") : String(body.detail);
}

function signOut() {
  token = null;
  sessionStorage.removeItem("telecare-token");
  $("#queue-view").hidden = true;
  $("#login").hidden = false;
  setLink(false);
}

let linkUp = false;

function setLink(up) {
  linkUp = up;
  const link = $("#link");
  link.textContent = !up ? "not connected" : storageFault ? "live: storage fault" : "live";
  link.className = `link ${!up ? "down" : storageFault ? "fault" : "up"}`;
}

// The centre's storage fault (`event: storage` on the live stream, or a flagged answer): the
// queue stays readable, but nothing new is stored until space is freed, so say so plainly.
let storageFault = null;

function showStorage(state) {
  storageFault = state.storage_fault ? state : null;
  const banner = $("#storage-fault");
  banner.hidden = !storageFault;
  if (storageFault) {
    const since = state.since ? ` since ${new Date(state.since).toLocaleTimeString("en-GB")}` : "";
    banner.textContent = `Storage fault${since}: the centre's database cannot store anything. The queue shows ` +
      "what was stored before; new alarms wait at the homes' hubs until space is freed, and acknowledging or " +
      "resolving may fail. Tell the system administrator now.";
  }
  setLink(linkUp);
}

// Most urgent first; within a priority, the one waiting longest first.
function byUrgency(a, b) {
  const waiting = (alert) => (alert.status === "open" ? 0 : 1);
  return a.priority - b.priority || waiting(a) - waiting(b) || a.opened_at.localeCompare(b.opened_at);
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function render(alerts) {
  const body = $("#queue tbody");
  body.replaceChildren();
  for (const alert of alerts.sort(byUrgency)) {
    const row = body.insertRow();
    row.className = `p${alert.priority} ${alert.status}`;
    row.dataset.alertId = alert.id;
    row.dataset.rule = alert.rule;
    cell(row, PRIORITY[alert.priority] || String(alert.priority));
    cell(row, alert.person_name);
    cell(row, alert.title + (alert.subject ? ` (${alert.subject})` : ""));
    cell(row, new Date(alert.opened_at).toLocaleTimeString("en-GB"));
    cell(row, String(alert.repeat_count));
    cell(row, alert.explanation.why || "", "why");
    cell(row, alert.status.replace("_", " "));
    cell(row, alert.escalation || "", "escalation");
    row.addEventListener("click", (event) => { if (event.target.tagName !== "BUTTON") showDetail(alert); });
    if (alert.id === selected) row.classList.add("selected");
    const actions = row.insertCell();
    if (alert.status === "open") {
      const button = document.createElement("button");
      button.textContent = "Acknowledge";
      button.addEventListener("click", async () => {
        await api(`/api/v1/alerts/${alert.id}/acknowledge`, { method: "POST" });
        refresh();
      });
      actions.append(button);
    } else {
      actions.append(resolveForm(alert));
    }
  }
  $("#empty").hidden = alerts.length > 0;
}

// The detail panel: who the person is, whom they want called, what raised the alert, and
// every notification the escalation has sent, with why. Fetched when opened; the API audits it.
let selected = null;

function list(element, items, text) {
  element.replaceChildren(...items.map((item) => {
    const li = document.createElement("li");
    li.textContent = text(item);
    return li;
  }));
}

async function showDetail(alert) {
  selected = alert.id;
  for (const row of document.querySelectorAll("#queue tbody tr")) {
    row.classList.toggle("selected", Number(row.dataset.alertId) === alert.id);
  }
  const [person, chain] = await Promise.all([
    api(`/api/v1/patients/${alert.person_id}`),
    api(`/api/v1/alerts/${alert.id}/escalation`).catch(() => null),
  ]);
  if (selected !== alert.id) return;
  $("#detail-title").textContent = `${alert.title}: ${person.name}`;
  const facts = [["Address", person.address || "not recorded"], ["NHS number", person.nhs_number || "not recorded"],
                 ["Service", person.service.replace("_", " ")],
                 ["Hub", person.hubs.map((h) => `${h.id} (${h.link || "no status yet"}, ${h.power || "power unknown"})`).join("; ")]];
  $("#detail-person").replaceChildren(...facts.flatMap(([term, value]) => {
    const dt = document.createElement("dt"); dt.textContent = term;
    const dd = document.createElement("dd"); dd.textContent = value;
    return [dt, dd];
  }));
  list($("#detail-keyholders"), person.keyholders, (k) => `${k.name}: ${k.contact_points.join(", ") || "no contact point"}`);
  if (!person.keyholders.length) {
    list($("#detail-keyholders"), ["none nominated"], (t) => t);
    $("#detail-keyholders").firstChild.className = "none";
  }
  list($("#detail-evidence"), alert.explanation.evidence || [],
       (e) => Object.entries(e).map(([k, v]) => `${k}: ${typeof v === "object" ? JSON.stringify(v) : v}`).join(", "));
  $("#detail-chain").textContent = chain ? `${chain.policy.replace("_", " ")} chain: ${chain.state}${chain.note ? ` (${chain.note})` : ""}` : "not started yet";
  const log = $("#detail-log tbody");
  log.replaceChildren();
  for (const n of chain ? chain.notifications : []) {
    const row = log.insertRow();
    cell(row, new Date(n.created_at).toLocaleTimeString("en-GB"));
    cell(row, n.address === "console" ? "alarm queue" : `${n.responder_name} (${n.address})`);
    cell(row, n.status + (n.detail && n.status !== "sent" ? `: ${n.detail}` : ""));
    cell(row, n.reason, "why");
  }
  $("#detail").hidden = false;
}

$("#detail-close").addEventListener("click", () => { selected = null; $("#detail").hidden = true; refresh(); });

// Resolving: an outcome code, and the reason when nobody is sent ("if in doubt, go out").
// The queue is redrawn whenever anything changes; a half-filled form survives it (drafts).
let outcomes = null;
const drafts = new Map();

function resolveForm(alert) {
  const form = document.createElement("form");
  form.className = "resolve";
  const select = document.createElement("select");
  select.name = "outcome";
  select.required = true;
  select.append(new Option("Outcome…", ""));
  for (const [code, meaning] of Object.entries(outcomes || {})) select.append(new Option(meaning, code));
  const note = document.createElement("input");
  note.name = "note";
  note.placeholder = "note";
  const button = document.createElement("button");
  button.textContent = "Resolve";
  const error = document.createElement("span");
  error.className = "error";
  form.append(select, note, button, error);
  const draft = drafts.get(alert.id) || { outcome: "", note: "", error: "" };
  [select.value, note.value, error.textContent] = [draft.outcome, draft.note, draft.error];
  const keep = () => drafts.set(alert.id, { outcome: select.value, note: note.value, error: error.textContent });
  select.addEventListener("change", keep);
  note.addEventListener("input", keep);
  form.addEventListener("click", (event) => event.stopPropagation());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const response = await fetch(`/api/v1/alerts/${alert.id}/resolve`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ outcome: select.value, note: note.value }),
    });
    if (!response.ok) { error.textContent = problem(await response.json()); keep(); return; }
    drafts.delete(alert.id);
    refresh();
  });
  return form;
}

// One fetch at a time; a change that arrives during a fetch is fetched again after it,
// never dropped (the queue must not show a stale state).
async function refresh() {
  if (refreshing) { stale = true; return refreshing; }
  refreshing = (async () => {
    do {
      stale = false;
      outcomes = outcomes || await api("/api/v1/alerts/outcomes");
      render(await api("/api/v1/alerts?status=active"));
    } while (stale);
  })().finally(() => { refreshing = null; });
  return refreshing;
}

// Server-sent events over fetch, so the bearer token travels in a header, not a URL.
async function follow() {
  while (token) {
    try {
      const response = await fetch("/api/v1/alerts/stream", { headers: { Authorization: `Bearer ${token}` } });
      if (response.status === 401) { signOut(); return; }
      if (!response.ok || !response.body) throw new Error(`stream: ${response.status}`);
      setLink(true);
      await refresh();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const frames = buffer.split("\n\n");
        buffer = frames.pop();
        for (const frame of frames.filter((f) => f.startsWith("event: storage"))) {
          const data = frame.split("\n").find((line) => line.startsWith("data:"));
          if (data) showStorage(JSON.parse(data.slice(5)));
        }
        if (frames.some((frame) => frame.startsWith("data:"))) refresh();
      }
    } catch (error) {
      console.warn(error);
    }
    setLink(false);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

// Readings for the people the caller may see: a nurse's caseload at a glance.
function sparkline(buckets, low, high) {
  const points = buckets.filter((b) => b.median !== null);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 120 24");
  svg.setAttribute("class", "spark");
  if (points.length > 1) {
    const t0 = new Date(points[0].start).getTime(), t1 = new Date(points[points.length - 1].start).getTime();
    const line = document.createElementNS(svg.namespaceURI, "polyline");
    line.setAttribute("points", points.map((b) => {
      const x = ((new Date(b.start).getTime() - t0) / Math.max(1, t1 - t0)) * 118 + 1;
      const y = 23 - ((Math.min(high, Math.max(low, b.median)) - low) / (high - low)) * 22;
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    }).join(" "));
    svg.append(line);
  }
  return svg;
}

function latest(readings) {
  const clean = readings.buckets.filter((b) => b.median !== null);
  return clean.length ? `${clean[clean.length - 1].median} ${readings.unit}` : "no clean reading";
}

async function loadCaseload() {
  const people = await api("/api/v1/patients");
  const body = $("#caseload tbody");
  const rows = await Promise.all(people.map(async (person) => {
    const query = "hours=72&bucket_minutes=60";
    const [spo2, pulse] = await Promise.all([
      api(`/api/v1/patients/${person.id}/readings?metric=spo2&${query}`),
      api(`/api/v1/patients/${person.id}/readings?metric=pulse_rate&${query}`),
    ]);
    const row = document.createElement("tr");
    row.dataset.personId = person.id;
    cell(row, person.name);
    cell(row, latest(spo2), "spo2").append(sparkline(spo2.buckets, 80, 100));
    cell(row, latest(pulse), "pulse").append(sparkline(pulse.buckets, 40, 140));
    const flagged = [...spo2.buckets, ...pulse.buckets].reduce((sum, b) => sum + b.flagged, 0);
    cell(row, String(flagged), "flagged");
    return row;
  }));
  body.replaceChildren(...rows);
}

function start() {
  $("#login").hidden = true;
  $("#queue-view").hidden = false;
  follow();
  loadCaseload().catch(console.warn);
  setInterval(() => { if (token) loadCaseload().catch(console.warn); }, 5 * 60 * 1000);
}

$("#login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/api/v1/auth/token", { method: "POST", body: new URLSearchParams(new FormData(event.target)) });
  if (response.status === 429) {  // a wait after failed sign-ins from here (centre_app/signin_throttle.py)
    const wait = Math.max(1, Number(response.headers.get("Retry-After")) || 1);
    $("#login-error").textContent = `Too many failed sign-ins: try again in ${wait} s.`;
    return;
  }
  if (!response.ok) { $("#login-error").textContent = "Wrong username or password."; return; }
  const body = await response.json();
  token = body.access_token;
  sessionStorage.setItem("telecare-token", token);
  $("#who").textContent = `${event.target.username.value} (${body.role})`;
  $("#login-error").textContent = "";
  start();
});

if (token) start();
