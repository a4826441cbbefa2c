// Times and ages in words an operator reads at a glance (en-GB, in the centre's time zone: time.js).
import { inZone } from "/static/js/time.js";

export const PRIORITY = { 1: "1 Emergency", 2: "2 Urgent", 3: "3 High", 4: "4 Supervision", 5: "5 Restoral", 9: "9 Routine" };

export function priorityWords(priority) {
  return PRIORITY[priority] || String(priority);
}

// An alert's status as the operator reads it: never the stored value ("in_progress").
export const STATUS = {
  open: "new: not yet acknowledged",
  acknowledged: "acknowledged",
  in_progress: "a responder is on the way",
  resolved: "resolved",
  closed: "closed",
};

export function statusWords(status) {
  return STATUS[status] || "status not known";
}

// What the operator did, as a call note records it.
export const NOTE_ACTIONS = {
  note: "Note", called_back: "Called back", dispatched_keyholder: "Keyholder sent",
  dispatched_responder_team: "Responder team sent", called_999: "999 called", no_further_action: "No further action",
};

export function noteActionWords(action) {
  return NOTE_ACTIONS[action] || "Note";
}

// "Mon 30 Nov, 03:45:10": the date is always there, so last night's alarm never looks like today's.
export function dateTime(iso) {
  if (!iso) return "";
  return inZone(iso, {
    weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit",
  });
}

export function time(iso) {
  return iso ? inZone(iso, { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "";
}

export function secondsSince(iso, now = Date.now()) {
  return Math.max(0, Math.floor((now - new Date(iso).getTime()) / 1000));
}

// 42 → "42 s"; 485 → "8 min 05 s"; 7300 → "2 h 01 min".
export function age(seconds) {
  if (seconds < 60) return `${seconds} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, "0")} s`;
  return `${Math.floor(seconds / 3600)} h ${String(Math.floor((seconds % 3600) / 60)).padStart(2, "0")} min`;
}

// The age's band against the answer targets [60, 180]: "ok", "warn" or "late".
export function band(seconds, targets) {
  if (seconds <= targets[0]) return "ok";
  return seconds <= targets[1] ? "warn" : "late";
}

export function element(tag, text = "", className = "") {
  const node = document.createElement(tag);
  if (text) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// A summary-list row (NHS.UK frontend): <div><dt>key</dt><dd>value</dd></div>.
export function summaryRow(key, value) {
  const row = element("div", "", "nhsuk-summary-list__row");
  row.append(element("dt", key, "nhsuk-summary-list__key"));
  const dd = element("dd", "", "nhsuk-summary-list__value");
  if (value instanceof Node) dd.append(value);
  else dd.textContent = value === null || value === undefined || value === "" ? "Not recorded" : String(value);
  row.append(dd);
  return row;
}
