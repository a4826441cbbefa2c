// The call screen: one person's call, opened from the queue. Everything on it comes from
// GET /api/v1/alerts/{id}/call (read and audited by the centre): the caller's record, why the
// alarm was raised in plain words, the call script, the escalation so far and the call notes.
// Its forms (note, outcome) are the page's own and survive every live refresh.
import { getJson, send } from "./api.js";
import { dateTime, element, noteActionWords, priorityWords, statusWords, summaryRow, time } from "./format.js";

const $ = (selector) => document.querySelector(selector);


function words(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map(words).filter(Boolean).join("; ");
  if (typeof value === "object") return Object.values(value).map(words).filter(Boolean).join(", ");
  return String(value);
}

// A phone number as a tel: link the operator's telephony (or softphone) dials: "+44 7700 900123"
// is dialled as tel:+447700900123.
function telHref(number) {
  return `tel:${String(number).replace(/[^0-9+]/g, "")}`;
}

function phoneList(phones) {
  const list = element("ul", "", "op-phones");
  for (const phone of phones || []) {
    const item = element("li");
    const link = element("a", phone.number, "op-phone");
    link.href = telHref(phone.number);
    item.append(`${phone.label ? `${phone.label}: ` : ""}`, link);
    list.append(item);
  }
  return phones && phones.length ? list : "";
}

// An NHS number as it is written (3 3 4 digits: "943 476 5919").
function nhsNumber(value) {
  const digits = String(value || "").replace(/\s/g, "");
  return /^\d{10}$/.test(digits) ? `${digits.slice(0, 3)} ${digits.slice(3, 6)} ${digits.slice(6)}` : value;
}

export class CallScreen {
  constructor(queue) {
    this.queue = queue;
    this.personId = null;
    this.alertId = null;
    this.data = null;
    $("#call-close").addEventListener("click", () => this.close());
    $("#take").addEventListener("click", () => this.toggleTake());
    $("#acknowledge").addEventListener("click", () => this.acknowledge());
    $("#acknowledge-new").addEventListener("click", () => this.acknowledgeNew());
    $("#note-action").addEventListener("change", () => this.showReason());
    $("#note-form").addEventListener("submit", (event) => { event.preventDefault(); this.saveNote(); });
    $("#resolve-form").addEventListener("submit", (event) => { event.preventDefault(); this.resolve(); });
    this.showReason();
  }

  // The call of `call` (a row of the queue), on its most urgent alarm.
  async open(call, alertId = null) {
    const alarms = [...call.alerts].sort((a, b) => a.priority - b.priority || a.opened_at.localeCompare(b.opened_at));
    const changed = this.personId !== call.person_id;
    this.personId = call.person_id;
    this.alertId = alertId || (changed || !alarms.some((a) => a.id === this.alertId) ? alarms[0].id : this.alertId);
    if (changed) {
      $("#note-error").textContent = "";
      $("#resolve-error").textContent = "";
    }
    $("#call").hidden = false;
    this.queue.opened();
    await this.reload();
    if (changed) $("#call-heading").focus();
  }

  close() {
    const person = this.personId;
    this.personId = null;
    this.alertId = null;
    this.data = null;
    $("#call").hidden = true;
    this.queue.opened();
    const row = person && document.querySelector(`#queue tbody tr[data-person-id="${person}"]`);
    if (row) row.focus();
  }

  // Does a live notice about `ids` concern the open call?
  concerns(ids) {
    if (this.personId === null) return false;
    const call = this.queue.callOf(this.personId);
    const mine = new Set([this.alertId, ...(call ? call.alerts.map((a) => a.id) : [])]);
    return !ids.length || ids.some((id) => mine.has(id));
  }

  async reload() {
    if (this.alertId === null) return;
    const alertId = this.alertId;
    let data;
    try {
      data = await getJson(`/api/v1/alerts/${alertId}/call`);
    } catch (error) {
      if (alertId !== this.alertId) return;
      this.data = null;
      $("#call-heading").textContent = "Call";
      $("#why-summary").textContent = `The call screen could not be read: ${error.message}`;
      return;
    }
    if (alertId !== this.alertId) return;
    this.data = data;
    this.draw();
  }

  draw() {
    const { alert, caller, why, script } = this.data;
    const call = this.queue.callOf(this.personId);
    $("#call-heading").textContent = `${caller.name}: ${alert.title}`;
    const takenBy = this.data.taken_by;
    const mine = takenBy === this.queue.me;
    const takenByOther = Boolean(takenBy) && !mine;
    const takenAt = call && call.taken_at ? ` at ${time(call.taken_at)}` : "";
    $("#call-taken").textContent = !takenBy ? "Nobody has taken this call yet."
      : mine ? `You took this call${takenAt}.`
        : `Taken by ${this.data.taken_by_name || takenBy}${takenAt}: only they act on it.`;
    $("#call-taken").className = `op-taken${takenByOther ? " op-taken--other" : ""}`;
    $("#take").textContent = mine ? "Release this call" : "Take this call";
    for (const control of ["#take", "#acknowledge", "#note-form button", "#resolve-form button"]) {
      $(control).disabled = takenByOther;
    }
    $("#acknowledge").disabled = takenByOther || alert.status !== "open";
    $("#acknowledge").textContent = alert.status === "open" ? "Acknowledge" : "Acknowledged";

    // This call's alarms: a press and a fall from one person are one call with two reasons.
    const alarms = call ? call.alerts : [alert];
    // Taking the call acknowledged its alarms; one that joined since waits, shown as new, until
    // the operator acknowledges it (one action, never silently).
    const joined = mine ? alarms.filter((a) => a.status === "open") : [];
    $("#call-new").hidden = joined.length === 0;
    $("#call-new-text").textContent = joined.length === 0 ? ""
      : `New in this call, not yet acknowledged: ${joined.map((a) => `${a.title} (${dateTime(a.opened_at)})`).join("; ")}.`;
    $("#acknowledge-new").textContent = joined.length > 1 ? "Acknowledge the new alarms" : "Acknowledge the new alarm";
    $("#call-alarms").replaceChildren(...alarms.map((a) => {
      const button = element("button", `${priorityWords(a.priority)}: ${a.title} (${statusWords(a.status)}), ${dateTime(a.opened_at)}`,
                             `op-alarm-choice${joined.includes(a) ? " op-alarm-choice--new" : ""}`);
      button.type = "button";
      button.setAttribute("aria-pressed", String(a.id === this.alertId));
      button.addEventListener("click", () => { this.alertId = a.id; this.reload(); });
      return button;
    }));

    $("#why-summary").textContent = why.summary;
    $("#why-facts").replaceChildren(...(why.facts || []).map((fact) => summaryRow(fact.label, fact.value)));
    $("#why-repeats").textContent = why.repeats > 0
      ? `Raised ${why.repeats + 1} times: first ${dateTime(why.first_at)}, last ${dateTime(why.last_at)}.`
      : `Raised ${dateTime(why.first_at)}.`;

    $("#script-title").textContent = `Call script: ${script.title}`;
    $("#script-steps").replaceChildren(...script.steps.map((step) => element("li", step)));

    const log = this.data.escalation_log || [];
    $("#escalation-log").replaceChildren(...(log.length ? log.map((entry) => {
      const item = element("li");
      item.append(element("span", time(entry.at), "op-log-time"), ` ${entry.text}`);
      return item;
    }) : [element("li", "Nothing sent yet.", "op-muted")]));

    // The notes of the whole call, whichever of its alarms each was written against.
    const notes = this.data.notes || [];
    const titles = new Map(alarms.map((a) => [a.id, a.title]));
    $("#notes").replaceChildren(...(notes.length ? notes.map((note) => {
      const item = element("li");
      const on = note.alert_id === alert.id ? "" : ` (on ${titles.get(note.alert_id) || "another alarm of this call"})`;
      item.append(element("span", time(note.at), "op-log-time"), ` ${note.by_name || note.by}: `,
                  element("strong", noteActionWords(note.action)), note.text ? `: ${note.text}` : "",
                  note.reason ? ` (reason: ${note.reason})` : "", on);
      return item;
    }) : [element("li", "No note yet.", "op-muted")]));

    const age = caller.age !== null && caller.age !== undefined ? `${caller.age}` : "";
    const born = caller.date_of_birth ? ` (born ${new Date(caller.date_of_birth).toLocaleDateString("en-GB")})` : "";
    $("#caller").replaceChildren(
      summaryRow("Name", caller.name), summaryRow("Age", age ? `${age}${born}` : ""),
      summaryRow("Address", caller.address), summaryRow("Access", words(caller.access_notes)),
      summaryRow("Phones", phoneList(caller.phones)), summaryRow("Conditions", words(caller.conditions)),
      summaryRow("Medication", words(caller.medication_summary)), summaryRow("Allergies", words(caller.allergies)),
      summaryRow("Communication", words(caller.communication_needs)),
      summaryRow("Property risks", words(caller.property_risks)), summaryRow("Pets", words(caller.pets)),
      summaryRow("GP practice", words(caller.gp_practice)), summaryRow("NHS number", nhsNumber(caller.nhs_number)),
    );
    const keyholders = [...(caller.keyholders || [])].sort((a, b) => a.order - b.order);
    $("#keyholders").replaceChildren(...(keyholders.length ? keyholders.map((k) => {
      const item = element("li");
      item.append(element("strong", k.name), k.relationship && !k.name.toLowerCase().includes(k.relationship.toLowerCase()) ? ` (${k.relationship})` : "");
      const phones = phoneList(k.phones);
      item.append(phones || element("span", ": no phone number on record", "op-muted"));
      return item;
    }) : [element("li", "No keyholder nominated.", "op-muted")]));
  }

  showReason() {
    $("#note-reason-group").hidden = $("#note-action").value !== "no_further_action";
  }

  // Does `what`, then `done` (before anything is redrawn), and reports a refusal in `errorBox`
  // (or the page's error line); then the queue and the call screen are read again.
  async act(what, errorBox, done = () => {}) {
    try {
      await what();
      done();
      if (errorBox) $(errorBox).textContent = "";
      this.queue.showError("");
      return true;
    } catch (error) {
      if (errorBox) $(errorBox).textContent = error.message;
      else this.queue.showError(error.message);
      return false;
    } finally {
      await this.queue.changed();
      if (this.alertId !== null) await this.reload();
    }
  }

  async toggleTake() {
    if (this.personId === null || !this.data) return;
    const person = this.personId;
    if (this.data.taken_by === this.queue.me) await this.act(() => this.queue.release(person));
    else await this.act(() => this.queue.take(person));
  }

  // Taking the call one holds acknowledges every alarm that joined it since.
  async acknowledgeNew() {
    if (this.personId === null || !this.data || this.data.taken_by !== this.queue.me) return;
    const person = this.personId;
    await this.act(() => this.queue.take(person));
  }

  async acknowledge() {
    if (this.alertId === null || !this.data || this.data.alert.status !== "open") return;
    const id = this.alertId;
    await this.act(() => send(`/api/v1/alerts/${id}/acknowledge`));
  }

  focusResolve() {
    if (this.personId !== null) $("#resolve-outcome").focus();
  }

  focusNote() {
    if (this.personId !== null) $("#note-action").focus();
  }

  async saveNote() {
    if (this.alertId === null) return;
    const form = $("#note-form");
    const action = $("#note-action").value;
    const body = { action, text: $("#note-text").value };
    if (action === "no_further_action") body.reason = $("#note-reason").value;
    const id = this.alertId;
    await this.act(() => send(`/api/v1/alerts/${id}/notes`, "POST", body), "#note-error", () => {
      form.reset();
      this.showReason();
    });
  }

  async resolve() {
    if (this.alertId === null) return;
    const form = $("#resolve-form");
    if (!form.outcome.value) {
      $("#resolve-error").textContent = "Choose the outcome first.";
      form.outcome.focus();
      return;
    }
    const id = this.alertId;
    const body = { outcome: form.outcome.value, note: form.note.value };
    const done = await this.act(() => send(`/api/v1/alerts/${id}/resolve`, "POST", body), "#resolve-error",
                                () => form.reset());
    if (!done) return;
    const call = this.queue.callOf(this.personId);
    if (call && call.alerts.some((a) => a.id !== id)) await this.open(call, call.alerts.find((a) => a.id !== id).id);
    else this.close();
  }
}
