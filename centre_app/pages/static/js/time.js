// The centre's time zone for every page's script (`data-time-zone` on <html>, from the centre's
// `timezone` setting, Europe/London by default): times are shown in it, en-GB, never in the
// browser's own zone or locale; a day typed in a form is that day in the centre's zone.

export function centreZone() {
  return document.documentElement.dataset.timeZone || "Europe/London";
}

/** `iso` formatted en-GB in the centre's zone with these Intl options. */
export function inZone(iso, options) {
  return new Date(iso).toLocaleString("en-GB", { ...options, timeZone: centreZone() });
}

/** The zone's offset from UTC, in minutes, at the instant `date`. */
function offsetMinutes(date, zone) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", {
    timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit",
  }).formatToParts(date).map((part) => [part.type, part.value]));
  const asUtc = Date.UTC(Number(parts.year), Number(parts.month) - 1, Number(parts.day), Number(parts.hour),
    Number(parts.minute), Number(parts.second));
  return Math.round((asUtc - date.getTime()) / 60000);
}

/** Midnight at the start of the day "2026-06-03" (plus `extraDays`) in the centre's zone, as an ISO time. */
export function zonedMidnight(day, extraDays = 0) {
  const [year, month, date] = day.split("-").map(Number);
  const utcMidnight = Date.UTC(year, month - 1, date + extraDays);
  const zone = centreZone();
  let guess = utcMidnight - offsetMinutes(new Date(utcMidnight), zone) * 60000;
  guess = utcMidnight - offsetMinutes(new Date(guess), zone) * 60000;  // across a clock change
  return new Date(guess).toISOString();
}

/** uPlot's x-axis labels en-GB in the centre's zone: times of day within two days, else dates. */
export function axisLabels(u, splits) {
  const span = (splits[splits.length - 1] ?? 0) - (splits[0] ?? 0);
  const options = span <= 2 * 86400 ? { hour: "2-digit", minute: "2-digit" } : { day: "numeric", month: "short" };
  return splits.map((seconds) => inZone(seconds * 1000, options));
}
