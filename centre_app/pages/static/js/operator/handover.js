// The shift handover (/operator/handover): GET /api/v1/handover, and a note added with
// POST /api/v1/handover/notes; refreshed every 30 s while open.
import { getJson, send } from "./api.js";
import { dateTime, element, noteActionWords, priorityWords, statusWords, time } from "./format.js";

const $ = (selector) => document.querySelector(selector);

function row(body, cells) {
  const tr = body.insertRow();
  tr.className = "nhsuk-table__row";
  for (const text of cells) {
    const cell = tr.insertCell();
    cell.className = "nhsuk-table__cell";
    cell.textContent = text;
  }
  return tr;
}

function alarms(call) {
  return call.alerts.map((a) => `${a.title} (${statusWords(a.status)})`).join("; ");
}

function empty(body, columns, text) {
  const cell = body.insertRow().insertCell();
  cell.colSpan = columns;
  cell.textContent = text;
}

async function load() {
  let handover;
  try {
    handover = await getJson("/api/v1/handover");
  } catch (error) {
    $("#handover-status").textContent = `The handover could not be read: ${error.message}`;
    return;
  }
  const open = $("#handover-open tbody");
  open.replaceChildren();
  for (const call of handover.open) {
    row(open, [priorityWords(call.priority), call.person_name, alarms(call), dateTime(call.opened_at)])
      .dataset.personId = call.person_id;
  }
  if (!handover.open.length) empty(open, 4, "None.");
  const progress = $("#handover-in-progress tbody");
  progress.replaceChildren();
  for (const call of handover.in_progress) {
    const note = call.latest_note;
    const latest = note ? `${time(note.at)} ${note.by_name || note.by}: ${noteActionWords(note.action)}${note.text ? `: ${note.text}` : ""}` : "No note yet";
    row(progress, [call.person_name, alarms(call), `${call.taken_by_name || call.taken_by} since ${time(call.taken_at)}`,
                   latest]).dataset.personId = call.person_id;
  }
  if (!handover.in_progress.length) empty(progress, 4, "None.");
  $("#handover-notes").replaceChildren(...(handover.notes.length ? handover.notes.map((note) => {
    const item = element("li");
    item.append(element("span", dateTime(note.at), "op-log-time"), ` ${note.by_name || note.by}: ${note.text}`);
    return item;
  }) : [element("li", "No handover note in the last 24 hours.", "op-muted")]));
  $("#handover-status").textContent = `As of ${time(new Date().toISOString())}: ${handover.open.length} not taken, ` +
    `${handover.in_progress.length} in progress.`;
}

$("#handover-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("#handover-text").value.trim();
  if (!text) {
    $("#handover-error").textContent = "Write the note first.";
    return;
  }
  try {
    await send("/api/v1/handover/notes", "POST", { text });
  } catch (error) {
    $("#handover-error").textContent = error.message;
    return;
  }
  $("#handover-error").textContent = "";
  $("#handover-text").value = "";
  await load();
});

load();
setInterval(load, 30_000);
