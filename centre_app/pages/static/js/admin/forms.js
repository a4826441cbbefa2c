// The administrator's forms: each <form data-api="/api/v1/..."> is sent to the JSON API with
// fetch (the session cookie signs it in; the browser's Sec-Fetch-Site marks it as ours), and
// the API checks and audits the change. No markup is ever built from strings: text only.
//
// On the form:
//   data-api       the URL; {name} is replaced by the value of the form's field `name`
//   data-method    POST (default), PUT, PATCH or DELETE
//   data-result    the id of an element to fill from the answer and show (a secret shown once):
//                  its [data-field="a.b"] get the answer's values as text, its [data-href] links
//                  get their {name} filled, its [data-list] gets one item per entry of a list answer
//   data-next      where to go afterwards ({name} from the answer); else the page reloads
//   data-done      what to say once the page has reloaded ("Keyholders saved")
//   data-confirm   a question to confirm first (retiring a home, disabling an account)
//   data-build="rule-setting"  see ruleSetting below
// On a field:
//   data-path      the field is only for the URL, not the body
//   data-type      "int", "int-list" (every field of the name, empties skipped), "list",
//                  "lines" (a textarea, one item a line), "value" (JSON if it reads as JSON:
//                  true, 3, 1.5; else text), "datetime" (a datetime-local field, in the
//                  browser's time zone, sent as UTC)
//   data-omit-empty  left out of the body when empty

const FLASH = "telecare-admin-flash";

function parseValue(text) {
  const trimmed = text.trim();
  try {
    const value = JSON.parse(trimmed);
    if (typeof value !== "object" || value === null) return value;
  } catch {
    // not JSON: text
  }
  return trimmed;
}

function bodyOf(form) {
  const data = {};
  const lists = {};
  for (const field of form.elements) {
    if (!field.name || field.disabled || field.type === "submit" || "path" in field.dataset) continue;
    const type = field.dataset.type || "text";
    let value = field.type === "checkbox" ? field.checked : field.value;
    if (type === "int-list" || type === "list") {
      lists[field.name] ??= [];
      if (String(value).trim() !== "") lists[field.name].push(type === "int-list" ? Number(value) : value.trim());
      continue;
    }
    if (type === "lines") value = value.split("\n").map((line) => line.trim()).filter(Boolean);
    else if (type === "int") value = value === "" ? null : Number(value);
    else if (type === "value") value = parseValue(value);
    else if (type === "datetime") value = value === "" ? "" : new Date(value).toISOString();
    if ("omitEmpty" in field.dataset && (value === "" || value === null)) continue;
    data[field.name] = value;
  }
  return Object.assign(data, lists);
}

function fill(template, lookup) {
  return template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(lookup(name) ?? ""));
}

// A rule setting: the select `parameter` holds "rule.name"; the person's current values of the
// rule (data-current, JSON by rule) are kept and the one parameter changed. A value written in
// words as the page shows it ("on", "off", "pulse") is the value it stands for (data-words, JSON
// by "rule.name": word → value).
function ruleSetting(form) {
  const key = form.elements.parameter.value;
  const [rule, name] = key.split(".");
  const current = JSON.parse(form.dataset.current || "{}");
  const words = JSON.parse(form.dataset.words || "{}")[key] || {};
  const typed = form.elements.value.value.trim();
  const word = Object.keys(words).find((each) => each.toLowerCase() === typed.toLowerCase());
  const params = { ...(current[rule] || {}), [name]: word === undefined ? parseValue(typed) : words[word] };
  return { url: fill(form.dataset.api, (key) => (key === "rule" ? rule : form.elements[key]?.value)),
           body: { params, reason: form.elements.reason.value } };
}

function describe(detail, status) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((item) => {
      const where = (item.loc || []).filter((part) => part !== "body").join(" ");
      return where ? `${where}: ${item.msg}` : item.msg;
    }).join("; ");
  }
  return `the centre answered ${status}`;
}

function showError(form, message) {
  const summary = form.querySelector(".telecare-form-error");
  summary.querySelector("[data-error-text]").textContent = message;
  summary.hidden = false;
  summary.focus();
}

function lookupIn(answer) {
  return (path) => path.split(".").reduce((value, key) => (value == null ? undefined : value[key]), answer);
}

function showResult(target, answer) {
  const lookup = lookupIn(answer);
  for (const slot of target.querySelectorAll("[data-field]")) slot.textContent = lookup(slot.dataset.field) ?? "";
  for (const link of target.querySelectorAll("[data-href]")) {
    link.href = link.dataset.href.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(lookup(name) ?? ""));
  }
  const list = target.querySelector("[data-list]");
  if (list && Array.isArray(answer)) {
    list.replaceChildren(...answer.map((delivery) => {
      const item = document.createElement("li");
      item.textContent = `${delivery.address}: ${delivery.ok ? "sent" : "not sent"} (${delivery.detail})`;
      return item;
    }));
  }
  target.hidden = false;
  target.focus();
}

async function send(form, event) {
  event.preventDefault();
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  const summary = form.querySelector(".telecare-form-error");
  summary.hidden = true;
  const built = form.dataset.build === "rule-setting"
    ? ruleSetting(form)
    : { url: fill(form.dataset.api, (name) => form.elements[name]?.value), body: bodyOf(form) };
  const button = form.querySelector("button[type=submit]");
  if (button) button.disabled = true;
  let response;
  try {
    response = await fetch(built.url, {
      method: form.dataset.method || "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(built.body),
    });
  } catch {
    if (button) button.disabled = false;
    showError(form, "The centre could not be reached: nothing was changed. Try again.");
    return;
  }
  if (button) button.disabled = false;
  const text = await response.text();
  let answer = null;
  try {
    answer = text ? JSON.parse(text) : null;
  } catch {
    answer = null; // not JSON (a proxy's error page): said by its status below
  }
  if (!response.ok) {
    showError(form, describe(answer?.detail, response.status));
    return;
  }
  if (form.dataset.result) {
    form.reset();
    showResult(document.getElementById(form.dataset.result), answer);
    return;
  }
  if (form.dataset.done) sessionStorage.setItem(FLASH, form.dataset.done);
  if (form.dataset.next) window.location.assign(fill(form.dataset.next, lookupIn(answer)));
  else window.location.reload();
}

function flash() {
  const message = sessionStorage.getItem(FLASH);
  if (!message) return;
  sessionStorage.removeItem(FLASH);
  const main = document.getElementById("maincontent");
  const note = document.createElement("div");
  note.className = "nhsuk-inset-text telecare-flash";
  note.setAttribute("role", "status");
  note.dataset.testid = "flash";
  const words = document.createElement("p");
  words.textContent = message;
  note.append(words);
  main.prepend(note);
}

for (const form of document.querySelectorAll("form[data-api]")) {
  form.addEventListener("submit", (event) => send(form, event));
}
flash();
