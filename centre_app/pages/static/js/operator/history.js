// Resolved alarms (/operator/history): the page's own query (q, from, to, rule, outcome, page)
// asked of GET /api/v1/alerts/history. The dates are UTC days, both included (the API takes
// times with a zone, `to` excluded: the day after `to`, at midnight UTC).
import { getJson } from "./api.js";
import { age, dateTime, priorityWords, secondsSince } from "./format.js";

const $ = (selector) => document.querySelector(selector);
const outcomeWords = Object.fromEntries([...$("#outcome-words").content.querySelectorAll("span")]
  .map((span) => [span.dataset.code, span.textContent]));

function nextDay(day) {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return date.toISOString().slice(0, 10);
}

function pageLink(link, params, page) {
  const query = new URLSearchParams(params);
  query.set("page", String(page));
  link.href = `/operator/history?${query}`;
}

async function load() {
  const params = new URLSearchParams(window.location.search);
  const asked = new URLSearchParams();
  for (const name of ["q", "rule", "outcome", "page"]) if (params.get(name)) asked.set(name, params.get(name));
  if (params.get("from")) asked.set("from", `${params.get("from")}T00:00:00Z`);
  if (params.get("to")) asked.set("to", `${nextDay(params.get("to"))}T00:00:00Z`);
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
                        item.resolved_by || ""]) {
      const cell = row.insertCell();
      cell.className = "nhsuk-table__cell";
      cell.textContent = text;
    }
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

load();
