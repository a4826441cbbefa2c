// Resolved alarms (/operator/history): the page's own query (q, from, to, rule, outcome, page)
// asked of GET /api/v1/alerts/history. The dates are days in the centre's time zone, both included
// (the API takes times with a zone, `to` excluded: the day after `to`, at midnight there: time.js).
import { getJson } from "./api.js";
import { zonedMidnight } from "/static/js/time.js";
import { age, dateTime, element, noteActionWords, priorityWords, secondsSince, time } from "./format.js";

const $ = (selector) => document.querySelector(selector);
const outcomeWords = Object.fromEntries([...$("#outcome-words").content.querySelectorAll("span")]
  .map((span) => [span.dataset.code, span.textContent]));


function pageLink(link, params, page) {
  const query = new URLSearchParams(params);
  query.set("page", String(page));
  link.href = `/operator/history?${query}`;
}

async function load() {
  const params = new URLSearchParams(window.location.search);
  const asked = new URLSearchParams();
  for (const name of ["q", "rule", "outcome", "page"]) if (params.get(name)) asked.set(name, params.get(name));
  if (params.get("from")) asked.set("from", zonedMidnight(params.get("from")));
  if (params.get("to")) asked.set("to", zonedMidnight(params.get("to"), 1));
  let result;
  try {
    result = await getJson(`/api/v1/alerts/history?${asked}`);
  } catch (error) {
    $("#history-status").textContent = `The history could not be read: ${error.message}`;
    return;
  }
  const body = $("#history tbody");
  body.replaceChildren();
  for (const item of result.items) {
    const row = body.insertRow();
    row.className = "nhsuk-table__row";
    row.dataset.alertId = item.id;
    const answered = item.acknowledged_at
      ? age(secondsSince(item.opened_at, new Date(item.acknowledged_at).getTime())) : "not acknowledged";
    for (const text of [dateTime(item.resolved_at), item.person_name, item.title, priorityWords(item.priority),
                        dateTime(item.opened_at), answered, outcomeWords[item.outcome] || item.outcome || "",
                        item.resolved_by_name || ""]) {
      const cell = row.insertCell();
      cell.className = "nhsuk-table__cell";
      cell.textContent = text;
    }
    // The alarm opens its detail: the call's notes and what happened, in words.
    const open = element("button", item.title, "op-link-button");
    open.type = "button";
    open.setAttribute("aria-label", `Open ${item.title} of ${item.person_name}, resolved ${dateTime(item.resolved_at)}`);
    open.addEventListener("click", () => detail(item));
    row.cells[2].replaceChildren(open);
  }
  $("#history").hidden = result.items.length === 0;
  $("#history-status").textContent = result.total === 0 ? "No resolved alarm matches."
    : `${result.total} resolved alarm${result.total === 1 ? "" : "s"}, page ${result.page} of ${result.pages}.`;
  $("#history-pages").hidden = result.pages <= 1;
  $("#history-page").textContent = `Page ${result.page} of ${result.pages}`;
  $("#history-previous").hidden = result.page <= 1;
  $("#history-next").hidden = result.page >= result.pages;
  pageLink($("#history-previous"), params, result.page - 1);
  pageLink($("#history-next"), params, result.page + 1);
}

function lines(list, items, empty, text) {
  list.replaceChildren(...(items.length ? items.map((entry) => {
    const li = element("li");
    li.append(element("span", time(entry.at), "op-log-time"), ` ${text(entry)}`);
    return li;
  }) : [element("li", empty, "op-muted")]));
}

// One resolved alarm in detail, from GET /api/v1/alerts/{id}/call (read and audited there).
async function detail(item) {
  let screen;
  try {
    screen = await getJson(`/api/v1/alerts/${item.id}/call`);
  } catch (error) {
    $("#history-status").textContent = `That alarm could not be read: ${error.message}`;
    return;
  }
  $("#history-detail-heading").textContent = `${item.person_name}: ${item.title}`;
  $("#history-detail-summary").textContent = `Raised ${dateTime(item.opened_at)}; resolved ${dateTime(item.resolved_at)}`
    + ` by ${item.resolved_by_name || "someone not recorded"}: ${outcomeWords[item.outcome] || "no outcome recorded"}.`;
  lines($("#history-detail-notes"), screen.notes || [], "No call note.", (note) =>
    `${note.by_name || note.by}: ${noteActionWords(note.action)}${note.text ? `: ${note.text}` : ""}`
    + `${note.reason ? ` (reason: ${note.reason})` : ""}`);
  lines($("#history-detail-log"), screen.escalation_log || [], "Nothing recorded.", (entry) => entry.text);
  $("#history-detail").hidden = false;
  $("#history-detail-heading").focus();
}

$("#history-detail-close").addEventListener("click", () => { $("#history-detail").hidden = true; });

load();
