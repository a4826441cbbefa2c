// The KPI page's charts (uPlot, vendored), drawn from the table's own cells, so the chart and
// its text equivalent never disagree. Days are UTC midnights; a day with no decided call has
// no point (a gap), not 0 %. The legends name the lines only (no live values: no "--" placeholders).
/* global uPlot */

const rows = [...document.querySelectorAll("#kpi-days tbody tr[data-day]")];
const number = (text) => (text === "" ? null : Number(text));
const days = rows.map((row) => Date.parse(`${row.dataset.day}T00:00:00Z`) / 1000);
const within60 = rows.map((row) => number(row.dataset.within60));
const within180 = rows.map((row) => number(row.dataset.within180));
const calls = rows.map((row) => Number(row.dataset.calls));
const median = rows.map((row) => number(row.dataset.median));

function size(element) {
  return { width: Math.max(320, element.clientWidth), height: 240 };
}

const axes = (label) => [
  { values: (u, ticks) => ticks.map((t) => new Date(t * 1000).toISOString().slice(5, 10)) },
  { label },
];

function draw() {
  const first = document.querySelector("#chart-within");
  const second = document.querySelector("#chart-calls");
  if (!rows.length || typeof uPlot === "undefined") return;
  first.replaceChildren();
  second.replaceChildren();
  new uPlot({
    ...size(first), legend: { live: false }, tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    scales: { x: { time: true }, y: { range: [0, 100] } },
    axes: axes("%"),
    series: [
      {},
      { label: "within 60 s", stroke: "#005eb8", width: 2, points: { size: 7 } },
      { label: "within 180 s", stroke: "#007f3b", width: 2, points: { size: 7 } },
      { label: "target 97.5 %", stroke: "#d5281b", dash: [6, 4] },
      { label: "target 99 %", stroke: "#ed8b00", dash: [2, 4] },
    ],
  }, [days, within60, within180, days.map(() => 97.5), days.map(() => 99)], first);
  new uPlot({
    ...size(second), legend: { live: false }, tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    scales: { x: { time: true } },
    axes: [...axes("calls"), { scale: "s", side: 1, label: "seconds", grid: { show: false } }],
    series: [
      {},
      { label: "alarm calls", stroke: "#005eb8", fill: "rgba(0, 94, 184, 0.15)", width: 2 },
      { label: "median answer (s)", scale: "s", stroke: "#330072", width: 2, points: { size: 7 } },
    ],
  }, [days, calls, median], second);
}

draw();
let resizeTimer = null;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(draw, 200); });
