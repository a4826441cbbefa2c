// The JSON API from the pages (nurse, person, family): the session cookie signs each call in; a change carries the
// browser's own Origin and Sec-Fetch-Site, which the API checks. No token handling here.
import { zonedMidnight } from "/static/js/time.js";

/** The refusal's words: FastAPI's `detail`, a string or a list of validation errors. */
export function problemText(body, status) {
  const detail = body && body.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) return detail.map((item) => item.msg).join("; ");
  return `the centre answered ${status}`;
}

/** `fetch` as JSON: resolves to the body, or throws an Error with the centre's words. */
export async function call(method, url, body) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) throw new Error(problemText(parsed, response.status));
  return parsed;
}

/** Shows `message` in an NHS.UK error message element (or hides it when empty). */
export function showError(element, message) {
  element.textContent = message ? `Error: ${message}` : "";
  element.hidden = !message;
}

/** A date "2026-06-03" at midnight in the centre's time zone, `extraDays` later, as an ISO time. */
export function localMidnight(dateText, extraDays = 0) {
  return zonedMidnight(dateText, extraDays);
}

/** An element with text content (never markup). */
export function element(tag, text, className) {
  const made = document.createElement(tag);
  if (text !== undefined && text !== null) made.textContent = String(text);
  if (className) made.className = className;
  return made;
}

/** A table of `rows` (arrays of cell texts) under `headings`, with a caption, NHS.UK styled. */
export function table(caption, headings, rows) {
  const made = element("table", null, "nhsuk-table");
  made.append(element("caption", caption, "nhsuk-table__caption"));
  const head = element("thead", null, "nhsuk-table__head");
  const headRow = element("tr", null, "nhsuk-table__row");
  for (const heading of headings) {
    const cell = element("th", heading, "nhsuk-table__header");
    cell.scope = "col";
    headRow.append(cell);
  }
  head.append(headRow);
  const body = element("tbody", null, "nhsuk-table__body");
  for (const row of rows) {
    const line = element("tr", null, "nhsuk-table__row");
    for (const cell of row) line.append(element("td", cell ?? "–", "nhsuk-table__cell"));
    body.append(line);
  }
  made.append(head, body);
  return made;
}
