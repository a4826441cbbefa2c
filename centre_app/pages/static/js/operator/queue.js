// The operator's alarm queue (/operator): calls grouped by person from GET /api/v1/calls, each
// one's waiting time coloured against the answer targets, a tone and a banner for each new
// priority 1 or 2 alarm, and again when such an alarm comes again (the person presses once more,
// also after the call was taken), live from the centre's stream; the queue greys out and a banner
// says so the moment the connection is lost. The call screen is `call.js`.
import { getJson, onStorageHeader, send } from "./api.js";
import { CallScreen } from "./call.js";
import { age, band, dateTime, element, priorityWords, secondsSince, statusWords, time } from "./format.js";
import { follow } from "./live.js";
import { tone, unlockOnFirstGesture } from "./sound.js";

const $ = (selector) => document.querySelector(selector);
const workstation = $("#workstation");
const me = workstation.dataset.username;
const targets = workstation.dataset.targets.split(",").map(Number);
const body = $("#queue tbody");
const MUTE_KEY = "telecare-operator-muted";
const CUE_PRIORITIES = new Set([1, 2]);

let calls = [];
let known = null;  // alert id -> its repeat count, as last read (null until the first load: no cue for those)
let online = null;  // null until the stream first connects or fails: the first news always shows
let storageFault = null;

function showError(message) {
  const box = $("#action-error");
  box.textContent = message;
  box.hidden = !message;
}

// ---- the connection and the storage fault ----------------------------------------------------

function setLink() {
  const link = $("#link");
  link.textContent = !online ? "Not connected" : storageFault ? "Live: storage fault" : "Live";
  link.className = `op-link op-link--${!online ? "down" : storageFault ? "fault" : "up"}`;
}

function setOnline(up) {
  if (online === up) return;
  online = up;
  $("#workspace").disabled = !up;  // every control of the queue and the call screen at once
  workstation.classList.toggle("op-offline", !up);
  for (const row of body.rows) row.tabIndex = up ? 0 : -1;
  if (!up) $("#connection-lost-since").textContent = `at ${time(new Date().toISOString())}`;
  $("#connection-lost").hidden = up;
  setLink();
}

function showStorage(state) {
  storageFault = state.storage_fault ? state : null;
  const banner = $("#storage-fault");
  banner.hidden = !storageFault;
  if (storageFault) {
    const since = state.since ? ` since ${dateTime(state.since)}` : "";
    banner.textContent = `Storage fault${since}: the centre's database cannot store anything. The queue shows ` +
      "what was stored before; new alarms wait at the homes' hubs until space is freed, and acknowledging or " +
      "resolving may fail. Tell the system administrator now.";
  }
  setLink();
}

onStorageHeader(() => { if (!storageFault) showStorage({ storage_fault: true }); });

// ---- the queue --------------------------------------------------------------------------------

function filters() {
  const form = new FormData($("#filters"));
  return {
    priorities: new Set(form.getAll("priority").map(Number)),
    status: form.get("status"), rule: form.get("rule"), q: String(form.get("q") || "").trim().toLowerCase(),
  };
}

function shown(call, f) {
  if (f.priorities.size && !f.priorities.has(call.priority)) return false;
  if (f.status && !call.alerts.some((a) => a.status === f.status)) return false;
  if (f.rule && !call.alerts.some((a) => a.rule === f.rule)) return false;
  return !f.q || call.person_name.toLowerCase().includes(f.q);
}

function waiting(call) {
  return call.alerts.some((a) => a.status === "open");
}

function ageCell(cell, call) {
  const seconds = secondsSince(call.opened_at);
  const answered = !waiting(call);
  const level = answered ? "answered" : band(seconds, targets);
  const words = { ok: "", warn: ` (over ${targets[0]} s)`, late: ` (over ${targets[1]} s)`, answered: " (answered)" };
  const badge = element("span", age(seconds), `op-age op-age--${level}`);
  badge.append(element("span", words[level], "nhsuk-u-visually-hidden"));
  cell.replaceChildren(badge);
  cell.dataset.band = level;
}

function takenCell(cell, call) {
  if (call.taken_by === me) {
    cell.append(element("strong", "You"));
    return;
  }
  if (call.taken_by) {
    cell.textContent = `${call.taken_by_name || call.taken_by} since ${time(call.taken_at)}`;
    return;
  }
  const button = element("button", "Take", "nhsuk-button nhsuk-button--small nhsuk-button--secondary op-take");
  button.type = "button";
  button.setAttribute("aria-label", `Take the call of ${call.person_name}`);
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    take(call.person_id).then(() => screen.open(call)).catch(() => {});
  });
  cell.append(button);
}

function render() {
  const f = filters();
  const visible = calls.filter((call) => shown(call, f));
  const focused = document.activeElement && document.activeElement.closest("#queue tbody tr");
  const focusedPerson = focused ? focused.dataset.personId : null;
  body.replaceChildren();
  for (const call of visible) {
    const row = body.insertRow();
    row.className = `nhsuk-table__row op-row op-p${call.priority}${waiting(call) ? " op-row--waiting" : ""}`;
    row.tabIndex = online ? 0 : -1;
    row.dataset.personId = call.person_id;
    row.dataset.priority = call.priority;
    row.dataset.rules = call.alerts.map((a) => a.rule).join(" ");
    row.dataset.status = waiting(call) ? "open" : "acknowledged";
    if (screen.personId === call.person_id) row.setAttribute("aria-current", "true");
    if (call.alerts.some((a) => fresh.has(a.id))) row.classList.add("op-row--new");
    row.insertCell().append(element("span", priorityWords(call.priority), `op-priority op-priority--${call.priority}`));
    row.insertCell().textContent = call.person_name;
    const alarms = row.insertCell();
    alarms.className = "op-alarms";
    for (const alert of call.alerts) {
      const repeats = alert.repeat_count > 0 ? ` ×${alert.repeat_count + 1}` : "";
      alarms.append(element("span", `${alert.title}${repeats}${alert.status === "open" ? "" : ` (${statusWords(alert.status)})`}`,
                            "op-alarm"));
    }
    const ageTd = row.insertCell();
    ageTd.className = "op-age-cell";
    ageCell(ageTd, call);
    row.insertCell().textContent = dateTime(call.opened_at);
    const taken = row.insertCell();
    taken.className = "op-taken-cell";
    takenCell(taken, call);
    row.addEventListener("click", () => { if (online) screen.open(call); });
    row.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && event.target === row && online) {
        event.preventDefault();
        screen.open(call);
      }
    });
    if (String(call.person_id) === focusedPerson) row.focus();
  }
  const hidden = calls.length - visible.length;
  $("#empty").hidden = visible.length > 0;
  $("#empty").textContent = hidden ? `No call matches the filters (${hidden} hidden).` : "No alarm is waiting.";
}

function tick() {
  for (const row of body.rows) {
    const call = calls.find((c) => String(c.person_id) === row.dataset.personId);
    if (call) ageCell(row.cells[3], call);
  }
}

// Every call: filters are applied here, so that a new alarm hidden by them still gets its cue.
function loadCalls() {
  return getJson("/api/v1/calls");
}

// ---- the new-alarm cue ------------------------------------------------------------------------

const fresh = new Set();
let cueTimer = null;

function muted() {
  return sessionStorage.getItem(MUTE_KEY) === "true";
}

function cue(call, alert, again = false) {
  const box = $("#cue");
  const sound = muted() ? " (sound muted)" : "";
  const holder = call.taken_by_name ? `, the call is with ${call.taken_by_name}` : "";
  box.textContent = again
    ? `Came again: ${call.person_name}, ${alert.title} ×${alert.repeat_count + 1}, the last at ` +
      `${dateTime(alert.last_seen_at)}${holder}${sound}`
    : `New priority ${alert.priority} alarm: ${call.person_name}, ${alert.title}, ` +
      `raised ${dateTime(alert.opened_at)}${sound}`;
  box.hidden = false;
  fresh.add(alert.id);
  if (!muted() && tone(alert.priority)) box.dataset.sounded = String(Number(box.dataset.sounded) + 1);
  clearTimeout(cueTimer);
  cueTimer = setTimeout(() => { box.hidden = true; fresh.clear(); render(); }, 60_000);
}

function noticeNew(list) {
  if (known !== null) {
    for (const call of list) {
      for (const alert of call.alerts) {
        if (!CUE_PRIORITIES.has(alert.priority)) continue;
        const before = known.get(alert.id);
        if (before === undefined && alert.status === "open") cue(call, alert);
        else if (before !== undefined && alert.repeat_count > before) cue(call, alert, true);
      }
    }
  }
  known = new Map(list.flatMap((call) => call.alerts.map((a) => [a.id, a.repeat_count])));
}

// ---- the sound's mute, logged by the centre ---------------------------------------------------

function showMute() {
  const button = $("#mute");
  button.setAttribute("aria-pressed", String(muted()));
  button.textContent = muted() ? "Sound muted: turn on" : "Mute new-alarm sound";
}

async function toggleMute() {
  const wanted = !muted();
  try {
    await send("/api/v1/console/sound", "POST", { muted: wanted });
  } catch (error) {
    showError(`The centre could not record the change, so the sound stays ${muted() ? "muted" : "on"}: ${error.message}`);
    return;
  }
  sessionStorage.setItem(MUTE_KEY, String(wanted));
  showError("");
  showMute();
}

// ---- taking a call ----------------------------------------------------------------------------

async function take(personId) {
  try {
    await send(`/api/v1/calls/${personId}/take`);
    showError("");
  } catch (error) {
    showError(`Not taken: ${error.message}`);
    await refresh();
    throw error;
  }
  await refresh();
}

async function release(personId) {
  await send(`/api/v1/calls/${personId}/release`);
  await refresh();
}

// ---- refreshing -------------------------------------------------------------------------------

let refreshing = null;
let again = false;

// One fetch at a time; a change that arrives during one is fetched again after it, never dropped.
async function refresh() {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  refreshing = (async () => {
    do {
      again = false;
      const list = await loadCalls();
      noticeNew(list);
      calls = list;
      render();
    } while (again);
  })().finally(() => { refreshing = null; });
  return refreshing;
}

const screen = new CallScreen({
  me, targets, take, release,
  changed: () => refresh(),
  showError,
  callOf: (personId) => calls.find((c) => c.person_id === personId),
  online: () => online,
  opened: () => render(),
});

// ---- the keyboard -----------------------------------------------------------------------------

function moveFocus(step) {
  const rows = [...body.rows];
  if (!rows.length) return;
  const index = rows.indexOf(document.activeElement);
  const next = index < 0 ? (step > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, index + step));
  rows[next].focus();
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target.closest("input, textarea, select")) {
    if (event.key === "Escape") event.target.blur();
    return;
  }
  const actions = {
    ArrowDown: () => moveFocus(1), j: () => moveFocus(1), ArrowUp: () => moveFocus(-1), k: () => moveFocus(-1),
    m: () => toggleMute(),
    t: () => online && screen.toggleTake(), a: () => online && screen.acknowledge(),
    r: () => online && screen.focusResolve(), n: () => online && screen.focusNote(),
    Escape: () => screen.close(),
  };
  const action = actions[event.key];
  if (action && !(event.key.startsWith("Arrow") && !event.target.closest("#queue tbody tr"))) {
    event.preventDefault();
    action();
  }
});

$("#filters").addEventListener("input", render);
$("#filters").addEventListener("submit", (event) => event.preventDefault());
$("#mute").addEventListener("click", toggleMute);

unlockOnFirstGesture();
showMute();
setInterval(tick, 1000);
follow({
  onUp: () => {
    refresh().then(() => { setOnline(true); return screen.reload(); }).catch((error) => console.warn(error));
  },
  onDown: () => setOnline(false),
  onChange: (ids) => {
    // An alarm that joins the open call is known only once the queue is read again: ask after.
    const concerned = screen.concerns(ids);
    refresh().then(() => (concerned || screen.concerns(ids) ? screen.reload() : null))
      .catch((error) => console.warn(error));
  },
  onStorage: showStorage,
});
