// A person on the nurse's caseload: SpO2 and pulse over 24 h / 7 d / 30 d (uPlot, vendored), with
// the person's alert bands and NEWS2's, flagged readings as their own markers, alerts on the
// timeline; the activity pattern against the learned baselines; each chart with a table for
// screen readers. Thresholds and absences are changed through the API (audited there).
import { call, element, localMidnight, showError, table } from "/static/js/api.js";
import { axisLabels, centreZone, inZone } from "/static/js/time.js";

const uPlot = window.uPlot;
const root = document.getElementById("person");
const personId = root.dataset.personId;
const status = document.getElementById("chart-status");
const plots = {};
const COLOURS = { median: "#005eb8", range: "rgba(0, 94, 184, 0.12)", flagged: "#d5281b", urgent: "rgba(213, 40, 27, 0.14)",
  review: "rgba(255, 176, 0, 0.22)", alert: "#330072", baseline: "#007f3b", news2: "#768692" };
const WINDOW_WORDS = { 24: "the last 24 hours", 168: "the last 7 days", 720: "the last 30 days" };

const seconds = (iso) => Date.parse(iso) / 1000;
const when = (iso) => inZone(iso, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
// The x axes en-GB in the centre's zone (time.js), never the browser's locale ("11/29/26", "6am").
const timeAxis = { values: axisLabels };
// The activity chart's days are dates (noon UTC of each): labelled as dates, en-GB.
const dayLabels = (u, splits) => splits.map((seconds) => new Date(seconds * 1e3).toLocaleDateString("en-GB", { day: "numeric", month: "short", timeZone: "UTC" }));
const tzDate = (seconds) => uPlot.tzDate(new Date(seconds * 1e3), centreZone());
const unitOf = (metric) => (metric === "spo2" ? "%" : "/min");

function drawBands(u, data) {
  const { ctx, bbox } = u;
  const top = u.scales.y.max;
  const bottom = u.scales.y.min;
  ctx.save();
  for (const band of data.alert_bands) {
    const low = band.low ?? bottom;
    const high = band.high === null ? top : band.high + 1;
    const y1 = u.valToPos(Math.min(high, top), "y", true);
    const y2 = u.valToPos(Math.max(low, bottom), "y", true);
    ctx.fillStyle = band.name === "urgent" ? COLOURS.urgent : COLOURS.review;
    ctx.fillRect(bbox.left, y1, bbox.width, y2 - y1);
  }
  ctx.setLineDash([2, 4]);
  ctx.strokeStyle = COLOURS.news2;
  ctx.fillStyle = COLOURS.news2;
  ctx.font = `${11 * devicePixelRatio}px sans-serif`;
  ctx.textAlign = "right";
  let lastLabel = -Infinity;
  for (const band of data.news2_bands.slice(1)) {
    if (band.low <= bottom || band.low >= top) continue;
    const y = u.valToPos(band.low, "y", true);
    ctx.beginPath();
    ctx.moveTo(bbox.left, y);
    ctx.lineTo(bbox.left + bbox.width, y);
    ctx.stroke();
    if (Math.abs(y - lastLabel) >= 13 * devicePixelRatio) {  // labels never overlap; the table lists every band
      ctx.fillText(`NEWS2 ${band.score} from ${band.low}`, bbox.left + bbox.width - 4, y - 3);
      lastLabel = y;
    }
  }
  ctx.restore();
}

function drawAlerts(u, data) {
  const { ctx, bbox } = u;
  ctx.save();
  ctx.strokeStyle = COLOURS.alert;
  ctx.lineWidth = 2 * devicePixelRatio;
  for (const alert of data.alerts) {
    const x = u.valToPos(seconds(alert.opened_at), "x", true);
    if (x < bbox.left || x > bbox.left + bbox.width) continue;
    ctx.beginPath();
    ctx.moveTo(x, bbox.top);
    ctx.lineTo(x, bbox.top + bbox.height);
    ctx.stroke();
  }
  ctx.restore();
}

function chartData(data) {
  const times = new Map();
  const put = (t, index, value) => {
    if (!times.has(t)) times.set(t, [null, null, null, null]);
    times.get(t)[index] = value;
  };
  for (const bucket of data.buckets) {
    if (bucket.median === null) continue;
    const t = seconds(bucket.start);
    put(t, 0, bucket.median);
    put(t, 1, bucket.low);
    put(t, 2, bucket.high);
  }
  for (const reading of data.flagged) if (reading.value !== null) put(seconds(reading.at), 3, reading.value);
  const xs = [...times.keys()].sort((a, b) => a - b);
  return [xs, ...[0, 1, 2, 3].map((i) => xs.map((x) => times.get(x)[i]))];
}

function range(data, values) {
  const edges = data.alert_bands.flatMap((b) => [b.low, b.high]).filter((v) => v !== null);
  const all = [...values.filter((v) => v !== null), ...edges];
  if (data.metric === "spo2") return [Math.min(85, ...all) - 2, 100];
  return [Math.min(35, ...all) - 5, Math.max(140, ...all) + 5];
}

function draw(metric, data, hours) {
  const target = document.getElementById(`chart-${metric}`);
  const aligned = chartData(data);
  const [low, high] = range(data, [...aligned[1], ...aligned[4]]);
  const options = {
    width: Math.max(280, target.clientWidth), height: 260, legend: { show: false },
    scales: { x: { time: true, range: [seconds(data.since), seconds(data.until)] }, y: { range: [low, high] } },
    tzDate, axes: [timeAxis, { label: unitOf(metric), size: 50 }],
    series: [{},
      { label: "Median", stroke: COLOURS.median, width: 2, spanGaps: hours > 24, points: { show: true, size: 6 } },
      { label: "Lowest", stroke: COLOURS.median, width: 1, dash: [3, 3], spanGaps: hours > 24, points: { show: false } },
      { label: "Highest", stroke: COLOURS.median, width: 1, dash: [3, 3], spanGaps: hours > 24, points: { show: false } },
      { label: "Flagged", stroke: COLOURS.flagged, paths: () => null,
        points: { show: true, size: 11, width: 2, stroke: COLOURS.flagged, fill: "#ffffff" } }],
    hooks: { drawClear: [(u) => drawBands(u, data)], draw: [(u) => drawAlerts(u, data)] },
  };
  plots[metric]?.destroy();
  target.replaceChildren();
  plots[metric] = new uPlot(options, aligned, target);
  describe(metric, data, hours);
}

function describe(metric, data, hours) {
  const unit = unitOf(metric);
  const clean = data.buckets.reduce((n, b) => n + b.clean, 0);
  const lows = data.buckets.map((b) => b.low).filter((v) => v !== null);
  const highs = data.buckets.map((b) => b.high).filter((v) => v !== null);
  const words = clean
    ? `${clean} clean reading${clean === 1 ? "" : "s"} over ${WINDOW_WORDS[hours] || `${hours} hours`}, from ${Math.min(...lows)} to ${Math.max(...highs)} ${unit}.`
    : `No clean reading over ${WINDOW_WORDS[hours] || `${hours} hours`}.`;
  const flagged = data.flagged_total
    ? ` ${data.flagged_total} flagged reading${data.flagged_total === 1 ? "" : "s"} (shown as hollow red markers, not counted as results).` : " No flagged readings.";
  const alerts = data.alerts.length ? ` ${data.alerts.length} alert${data.alerts.length === 1 ? "" : "s"} opened (purple lines).` : "";
  document.getElementById(`summary-${metric}`).textContent = words + flagged + alerts;

  const bands = document.getElementById(`bands-${metric}`);
  const list = element("ul", null, "nhsuk-list nhsuk-list--bullet");
  for (const band of data.alert_bands) {
    list.append(element("li", `${band.name[0].toUpperCase()}${band.name.slice(1)} band ${band.range_text} (${band.table}): ${band.action}${band.own ? "; the person's own threshold" : ""}.`, `telecare-band telecare-band--${band.name === "urgent" ? "urgent" : "review"}`));
  }
  list.append(element("li", `NEWS2 bands (${data.news2_table}): ${data.news2_bands.map((b) => `${b.low}–${b.high} scores ${b.score}`).join("; ")}.`, "telecare-band"));
  bands.replaceChildren(element("p", "Bands drawn:", "nhsuk-body-s"), list);

  const rows = data.buckets.filter((b) => b.clean).map((b) => [when(b.start), b.clean, b.low, b.median, b.high]);
  const tableHolder = document.getElementById(`table-${metric}`);
  tableHolder.replaceChildren(
    table(`Clean readings, every ${data.bucket_minutes} min (${unit})`, ["From", "Readings", "Lowest", "Median", "Highest"], rows),
    table("Flagged readings (not results)", ["When", `Value (${unit})`, "Flags"],
      data.flagged.map((f) => [when(f.at), f.value, `flagged: ${f.flags.join(", ")}`])),
    table("Alerts opened", ["When", "Alert", "Status"], data.alerts.map((a) => [when(a.opened_at), a.title, a.status.replace("_", " ")])),
  );
  tableHolder.querySelectorAll("table")[1].id = `flagged-${metric}`;
}

const hoursOf = (text) => {
  if (!text) return null;
  const [h, m] = text.split(":").map(Number);
  return h + m / 60;
};

function drawActivity(activity) {
  const target = document.getElementById("chart-activity");
  const days = activity.days;
  const xs = days.map((d) => Date.parse(`${d.date}T12:00:00Z`) / 1000);
  const data = [xs, days.map((d) => hoursOf(d.first_activity)), days.map((d) => hoursOf(d.first_activity_deadline)),
    days.map((d) => d.toilet_visits), days.map((d) => d.toilet_limit)];
  const options = {
    width: Math.max(280, target.clientWidth), height: 240, legend: { show: false },
    scales: { x: { time: true }, h: { range: [4, 13] }, n: { range: [0, Math.max(4, ...days.map((d) => d.toilet_visits || 0)) + 1] } },
    tzDate, axes: [{ values: dayLabels }, { scale: "h", label: "Hour of day", size: 50 }, { scale: "n", side: 1, label: "Visits", grid: { show: false } }],
    series: [{},
      { label: "First activity", scale: "h", stroke: COLOURS.median, width: 2, points: { show: true, size: 7 } },
      { label: "Deadline", scale: "h", stroke: COLOURS.baseline, dash: [6, 4], width: 2, points: { show: false } },
      { label: "Toilet visits", scale: "n", stroke: COLOURS.flagged, width: 1, points: { show: true, size: 8 } },
      { label: "Alert above", scale: "n", stroke: COLOURS.flagged, dash: [2, 4], width: 1, points: { show: false } }],
  };
  plots.activity?.destroy();
  target.replaceChildren();
  plots.activity = new uPlot(options, data, target);
  const latest = days[days.length - 1];
  const before = days.length > 1 ? days[days.length - 2] : null;
  const parts = [];
  if (latest?.first_activity) parts.push(`Up today at ${latest.first_activity} (usually ${latest.first_activity_median || "not learned yet"}; alert if nothing by ${latest.first_activity_deadline}).`);
  else if (latest) parts.push(`No activity yet today; alert if nothing by ${latest.first_activity_deadline}.`);
  if (before && before.toilet_visits !== null) parts.push(`Last night ${before.toilet_visits} toilet visit${before.toilet_visits === 1 ? "" : "s"} (mean ${before.toilet_mean ?? "–"}; alert above ${before.toilet_limit}), out of bed ${before.out_of_bed} time${before.out_of_bed === 1 ? "" : "s"} for ${before.out_of_bed_minutes} min.`);
  if (!activity.has_bed_sensor) parts.push("No bed sensor: bedtimes and nights out of bed are not known.");
  document.getElementById("summary-activity").textContent = parts.join(" ") || "No activity recorded in this window.";
  document.getElementById("table-activity").replaceChildren(table(
    `Day by day (${activity.timezone}; night ${activity.night_window.join("–")})`,
    ["Date", "First activity", "Usual (median)", "Deadline", "Night toilet visits", "Mean; alert above", "Bedtime (usual)", "Out of bed at night (mean)"],
    days.map((d) => [d.date, d.first_activity, d.first_activity_median, `${d.first_activity_deadline}${d.learning_morning ? " (learning)" : ""}`,
      d.toilet_visits, `${d.toilet_mean ?? "–"}; ${d.toilet_limit}${d.learning_toilet ? " (learning)" : ""}`,
      `${d.bedtime ?? "–"} (${d.bedtime_usual ?? "learning"})`, `${d.out_of_bed}×, ${d.out_of_bed_minutes} min (${d.out_of_bed_mean ?? "–"})`])));
}

async function load(hours) {
  status.textContent = `Loading ${WINDOW_WORDS[hours]}…`;
  try {
    const [spo2, pulse, activity] = await Promise.all([
      call("GET", `/api/v1/patients/${personId}/series?metric=spo2&hours=${hours}`),
      call("GET", `/api/v1/patients/${personId}/series?metric=pulse_rate&hours=${hours}`),
      call("GET", `/api/v1/patients/${personId}/activity?days=${Math.min(31, Math.max(7, hours / 24))}`),
    ]);
    draw("spo2", spo2, hours);
    draw("pulse_rate", pulse, hours);
    drawActivity(activity);
    root.dataset.hours = String(hours);
    status.textContent = `Showing ${WINDOW_WORDS[hours]}.`;
  } catch (problem) {
    status.textContent = `The charts could not be loaded: ${problem.message}`;
  }
}

for (const button of document.querySelectorAll(".telecare-window__button")) {
  button.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".telecare-window__button")) other.setAttribute("aria-pressed", String(other === button));
    load(Number(button.dataset.hours));
  });
}

document.getElementById("threshold-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("threshold-error");
  const [rule, param] = form.elements.setting.value.split(".");
  const value = Number(form.elements.value.value);
  const reason = form.elements.reason.value.trim();
  if (form.elements.value.value === "" || !Number.isInteger(value)) return showError(error, "enter the new value as a whole number");
  if (!reason) return showError(error, "say why this person's threshold changes");
  showError(error, "");
  try {
    const current = await call("GET", `/api/v1/patients/${personId}/rules`);
    const own = current.find((row) => row.rule === rule);
    const saved = await call("PUT", `/api/v1/patients/${personId}/rules/${rule}`, { params: { ...(own ? own.params : {}), [param]: value }, reason });
    const option = form.elements.setting.selectedOptions[0];
    const shown = saved.params[param] === 0 && option.dataset.zero ? option.dataset.zero : String(saved.params[param]);
    const cell = document.querySelector(`[data-own="${rule}.${param}"]`);
    if (cell) cell.textContent = shown;
    document.getElementById("threshold-status").textContent = `Saved: ${option.textContent} is now ${shown} (${reason}).`;
    load(Number(root.dataset.hours || 24));
  } catch (problem) {
    showError(error, problem.message);
  }
});

document.getElementById("absence-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const error = document.getElementById("absence-error");
  if (!form.elements.from.value || !form.elements.to.value) return showError(error, "enter the first and the last day away");
  try {
    await call("POST", `/api/v1/patients/${personId}/absences`, {
      starts_at: localMidnight(form.elements.from.value), ends_at: localMidnight(form.elements.to.value, 1),
      reason: form.elements.reason.value.trim() });
    window.location.reload();
  } catch (problem) {
    showError(error, problem.message);
  }
});

load(24);
