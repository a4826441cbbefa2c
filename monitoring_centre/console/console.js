// The operator's alarm queue: sign in, list active alerts by urgency, update live.
"use strict";

const PRIORITY = { 1: "1 Emergency", 2: "2 Urgent", 3: "3 High", 4: "4 Supervision", 5: "5 Restoral", 9: "9 Routine" };
let token = sessionStorage.getItem("telecare-token");
let refreshing = null;

const $ = (selector) => document.querySelector(selector);

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...(options.headers || {}), Authorization: `Bearer ${token}` } });
  if (response.status === 401) { signOut(); throw new Error("signed out"); }
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function signOut() {
  token = null;
  sessionStorage.removeItem("telecare-token");
  $("#queue-view").hidden = true;
  $("#login").hidden = false;
  setLink(false);
}

function setLink(up) {
  const link = $("#link");
  link.textContent = up ? "live" : "not connected";
  link.className = `link ${up ? "up" : "down"}`;
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
    const actions = row.insertCell();
    if (alert.status === "open") {
      const button = document.createElement("button");
      button.textContent = "Acknowledge";
      button.addEventListener("click", async () => {
        await api(`/api/v1/alerts/${alert.id}/acknowledge`, { method: "POST" });
        refresh();
      });
      actions.append(button);
    }
  }
  $("#empty").hidden = alerts.length > 0;
}

async function refresh() {
  if (refreshing) return refreshing;
  refreshing = api("/api/v1/alerts?status=active").then(render).finally(() => { refreshing = null; });
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
        if (frames.some((frame) => frame.startsWith("data:"))) refresh();
      }
    } catch (error) {
      console.warn(error);
    }
    setLink(false);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

function start() {
  $("#login").hidden = true;
  $("#queue-view").hidden = false;
  follow();
}

$("#login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const response = await fetch("/api/v1/auth/token", { method: "POST", body: new URLSearchParams(new FormData(event.target)) });
  if (!response.ok) { $("#login-error").textContent = "Wrong username or password."; return; }
  const body = await response.json();
  token = body.access_token;
  sessionStorage.setItem("telecare-token", token);
  $("#who").textContent = `${event.target.username.value} (${body.role})`;
  $("#login-error").textContent = "";
  start();
});

if (token) start();
