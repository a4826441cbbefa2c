"""Trend rules against the person's own history (COPD telemonitoring; domain brief).

Trends beat single readings for COPD: telemonitored changes came before ~80% of
admissions. Three rules, over clean readings only (flagged readings never enter a trend):

- `spo2_trend_spc`: the day's mean (local day) below the mean − 1.645 SD of the daily means
  of the previous 7 days (SPC rule), today and on at least `days_needed` (2) of the last
  `days_window` (3) days: one day below a 1.645 SD limit happens to a well person one day
  in 20, so a run rule (as in the Western Electric rules: 2 of 3 beyond the limit) keeps
  the weekly false-alarm rate down, at the cost of a day's delay. Learning: needs `min_baseline_days` (5) days with
  clean readings, and today at least `min_today_readings` (2). The SD has a floor
  (`min_sd`, 1 %-point) so an unusually steady week does not turn one point into an alarm.
- `spo2_trend_slope`: least-squares slope over the last 72 h, the readings spanning at
  least 48 h, declining by >= 1 %-point/day and significantly so (slope + 2.33 SE < 0),
  evaluated every 12 h; once the week before the window is known, the last 24 h must also
  sit >= 1 SD below it (a slope made by noise usually starts high rather than ends low).
- `spo2_variability`: scatter (SD of residuals around the least-squares line) over the
  last 72 h >= 4 %-points (well: ~2%) and >= 1.5x the person's own scatter over the
  7 days before, once that is known.

Each rule's `metric` can be `pulse_rate` (direction: a rise) for a person whose clinician
wants it. Readings are kept as hourly means (at most 7 days: 168 samples of 4 numbers per
metric), so 1 Hz overnight oximetry and 3 spot checks a day weigh alike, and daily sums
are kept 35 days. Rules are re-evaluated at most every `eval_interval_s` per person.
Trend conditions never clear themselves; an episode ends quietly after 72 h without the
condition, and a repeat on a later day is sent as new evidence. While an SpO2
threshold alert is open, and for 24 h after (72 h for scatter, whose window would still
hold the acute readings), SpO2 trend alerts are held back: that episode already had attention.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import numpy as np

from detection.decisions import Decision, PersonContext
from detection.defaults import Settings
from detection.rules import CATALOGUE, RuleId, RuleKind, of_kind
from telecare_protocol import Metric, Reading

BUCKET_S = 3600.0
KEEP_S = 7 * 86400.0
KEEP_DAYS = 35
QUIET_END = timedelta(hours=72)
_SPO2_LOW = RuleId.SPO2_LOW
"""Read once: an enum member's lookup on its class costs more than the dict test it keys (fast path)."""
TREND_RULES = of_kind(RuleKind.TREND)
"""spo2_trend_spc, spo2_trend_slope, spo2_variability, evaluated in this order."""


class Samples:
    """Hourly means of one metric's clean readings, as numpy arrays (bounded to 7 days).

    The current hour is summed in plain Python (cheap at 1 Hz) and written into the
    arrays only when a rule reads them (`sync`). The arrays grow by doubling, and only an hour
    that is not the newest is searched for, so a new hour (every spot check) costs a few stores,
    not three copies of the week (`np.append`) and a search; the values kept, and so every
    rule's arithmetic, are the same."""

    __slots__ = ("_count", "_t", "_total", "current", "current_count", "current_last", "current_total",
                 "daily", "first_id", "last_id", "size", "t_max", "t_min")

    def __init__(self) -> None:
        self._t, self._total, self._count = np.zeros(8), np.zeros(8), np.zeros(8)
        self.size = 0
        """Hours held: the first `size` entries of each array."""
        self.t_min = self.t_max = 0.0
        """The oldest and newest bucket held (meaningless while `size` is 0)."""
        self.first_id: list[UUID] = []
        self.last_id: list[UUID] = []
        self.daily: dict[date, list[float]] = {}
        """Local day → [count, sum] of clean readings (35 days)."""
        self.current = -1.0
        self.current_total = 0.0
        self.current_count = 0
        self.current_last: UUID | None = None

    @property
    def t(self) -> np.ndarray:
        """Bucket start of each hour held, seconds since the epoch (a view)."""
        return self._t[:self.size]

    @property
    def total(self) -> np.ndarray:
        """Sum of each hour's readings (a view)."""
        return self._total[:self.size]

    @property
    def count(self) -> np.ndarray:
        """Readings in each hour (a view)."""
        return self._count[:self.size]

    def sync(self) -> None:
        if self.current_count and self.size:
            i = self.size - 1
            self._total[i], self._count[i] = self.current_total, self.current_count
            if self.current_last is not None:
                self.last_id[i] = self.current_last

    def add(self, reading: Reading, value: float, day: date) -> None:
        ts = reading.source_ts.timestamp()
        bucket = ts - ts % BUCKET_S
        if bucket == self.current:
            self.current_total += value
            self.current_count += 1
            self.current_last = reading.id
        else:
            self.sync()
            i = self._held(bucket)
            if i is not None:  # a late reading for an hour already closed
                self._total[i] += value
                self._count[i] += 1
            elif self.size and bucket < self.t_max - KEEP_S:
                pass  # an hour older than the week kept (an outbox replayed after a long outage): its day counts
            else:
                self._append(bucket, value, reading.id)
                if self.t_min < self.t_max - KEEP_S:
                    self._keep_week()
                self.current, self.current_total, self.current_count = bucket, value, 1
                self.current_last = reading.id
        tally = self.daily.get(day)
        if tally is None:
            tally = self.daily[day] = [0.0, 0.0]
            for old in sorted(self.daily)[:-KEEP_DAYS]:
                del self.daily[old]
        tally[0] += 1
        tally[1] += value

    def _held(self, bucket: float) -> int | None:
        """The entry of an hour held, or None; only an hour no later than the newest can be one."""
        if not self.size or bucket > self.t_max:
            return None
        hits = np.flatnonzero(self.t == bucket)
        return int(hits[0]) if hits.size else None

    def _append(self, bucket: float, value: float, reading_id: UUID) -> None:
        size = self.size
        if size == self._t.size:
            self._t, self._total, self._count = (np.concatenate([a, np.zeros(size)])
                                                 for a in (self._t, self._total, self._count))
        self._t[size], self._total[size], self._count[size] = bucket, value, 1.0
        self.t_min, self.t_max = (bucket, bucket) if not size else (min(self.t_min, bucket), max(self.t_max, bucket))
        self.size = size + 1
        self.first_id.append(reading_id)
        self.last_id.append(reading_id)

    def _keep_week(self) -> None:
        """Drop the hours more than `KEEP_S` before the newest."""
        keep = self.t >= self.t_max - KEEP_S
        t, total, count = self.t[keep], self.total[keep], self.count[keep]
        self.size = t.size
        self._t[:self.size], self._total[:self.size], self._count[:self.size] = t, total, count
        self.first_id = [x for x, k in zip(self.first_id, keep, strict=True) if k]
        self.last_id = [x for x, k in zip(self.last_id, keep, strict=True) if k]
        self.t_min = float(t.min())

    def window(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.sync()
        mask = (self.t >= start) & (self.t <= end)
        return self.t[mask], self.total[mask] / self.count[mask], self.count[mask]

    def refs(self, start: float, end: float) -> dict[str, Any]:
        self.sync()
        idx = np.flatnonzero((self.t >= start) & (self.t <= end))
        if not idx.size:
            return {}
        order = idx[np.argsort(self.t[idx], kind="stable")]
        first, last = int(order[0]), int(order[-1])
        return {"first_reading_id": str(self.first_id[first]), "last_reading_id": str(self.last_id[last]),
                "first_hour": _iso(self.t[first]), "last_hour": _iso(self.t[last]),
                "readings": int(self.count[idx].sum()), "hourly_means": int(idx.size)}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(float(ts), tz=UTC).isoformat()


def fit(t: np.ndarray, v: np.ndarray) -> tuple[float, float, float]:
    """Least squares v = a + b·days: (slope per day, its standard error, residual SD)."""
    x = (t - t.mean()) / 86400.0
    sxx = float((x * x).sum())
    slope = float((x * (v - v.mean())).sum() / sxx) if sxx > 0 else 0.0
    residuals = v - v.mean() - slope * x
    dof = max(v.size - 2, 1)
    resid_sd = float(np.sqrt((residuals * residuals).sum() / dof))
    se = resid_sd / float(np.sqrt(sxx)) if sxx > 0 else float("inf")
    return slope, se, resid_sd


class TrendRules:
    def __init__(self, ctx: PersonContext) -> None:
        self.ctx = ctx
        self.samples: dict[Metric, Samples] = {}
        self.evaluated: dict[RuleId, datetime] = {}
        self.last_true: dict[RuleId, datetime] = {}
        self.quiet_until: dict[Metric, datetime] = {}
        self.last_now: datetime | None = None
        self._day_key = -1.0
        self._day_value = date.min
        self._metrics_ctx: PersonContext | None = None
        self._metrics: frozenset[str] = frozenset()
        self.low_seen: datetime | None = None
        """When an SpO2 threshold alert was last seen open: trend alerts are held back for a while after."""

    def _day(self, at: datetime) -> date:
        """The local date, cached per 15 min (every UTC offset is a multiple of 15 min)."""
        ts = at.timestamp()
        key = ts - ts % 900
        if key != self._day_key:
            self._day_key, self._day_value = key, at.astimezone(self.ctx.profile.zone).date()
        return self._day_value

    def fast_reading(self, reading: Reading) -> bool:
        """The common case of `reading` for a clean reading (a value, no quality flag): its hour, its
        15 minutes of the local day and its day already have sums for its metric, and no rule is due (or
        none reads this metric). Adds it exactly as `reading` would (which returns no decision then) and
        returns True; returns False, having changed nothing, for anything else (`reading` then runs)."""
        metric = reading.metric
        samples = self.samples.get(metric)
        if samples is None:
            return False
        now = reading.source_ts
        ts = now.timestamp()
        if ts - ts % 900 != self._day_key or ts - ts % BUCKET_S != samples.current:
            return False
        tally = samples.daily.get(self._day_value)
        if tally is None:
            return False
        quiet = self.quiet_until.get(metric)
        last_now = self.last_now
        idle = quiet is not None and last_now is not None and last_now <= now < quiet
        if not idle and metric._value_ in self._read_metrics():
            return False  # a rule may be due
        value = float(reading.value or 0.0)
        samples.current_total += value
        samples.current_count += 1
        samples.current_last = reading.id
        tally[0] += 1
        tally[1] += value
        if idle:
            self.last_now = now
            return True
        if last_now is None or now > last_now:
            self.last_now = now
        open_ = self.ctx.open
        if open_ and (_SPO2_LOW, "") in open_:
            self.low_seen = now
        self.quiet_until[metric] = now
        return True

    def _read_metrics(self) -> frozenset[str]:
        """The metrics (values) some enabled trend rule of the person reads, made once per context."""
        if self._metrics_ctx is not self.ctx:
            self._metrics_ctx = self.ctx
            self._metrics = frozenset(self.ctx.settings[rule].s("metric") for rule in TREND_RULES
                                      if self.ctx.settings[rule].b("enabled"))
        return self._metrics

    def reading(self, reading: Reading) -> list[Decision]:
        if reading.value is None or reading.quality or reading.metric not in (Metric.SPO2, Metric.PULSE_RATE):
            return []
        day = self._day(reading.source_ts)
        samples = self.samples.get(reading.metric)
        if samples is None:
            samples = self.samples[reading.metric] = Samples()
        samples.add(reading, float(reading.value), day)
        now = reading.source_ts
        quiet = self.quiet_until.get(reading.metric)
        if quiet is not None and self.last_now is not None and self.last_now <= now < quiet:
            self.last_now = now
            return []  # nothing is due: the common case at 1 Hz
        self.last_now = now if self.last_now is None else max(self.last_now, now)
        decisions: list[Decision] = []
        if self.ctx.is_open(RuleId.SPO2_LOW):
            self.low_seen = now
        due: list[datetime] = []
        for rule in TREND_RULES:
            settings = self.ctx.settings[rule]
            if not settings.b("enabled") or settings.s("metric") != reading.metric.value:
                continue
            interval = timedelta(seconds=settings.f("eval_interval_s"))
            last = self.evaluated.get(rule)
            if last is not None and timedelta(0) <= now - last < interval:
                due.append(last + interval)
                continue
            self.evaluated[rule] = now
            due.append(now + interval)
            if rule == RuleId.SPO2_TREND_SPC:
                found = self._spc(samples, settings, day)
            elif rule == RuleId.SPO2_TREND_SLOPE:
                found = self._slope(samples, settings, now)
            else:
                found = self._variability(samples, settings, now)
            decisions += self._outcome(rule, found, settings, now, reading)
        self.quiet_until[reading.metric] = min(due) if due else now
        return decisions

    def _outcome(self, rule: RuleId, found: tuple[str, dict[str, Any]] | None, settings: Settings, now: datetime,
                 reading: Reading) -> list[Decision]:
        if found is None:
            last = self.last_true.get(rule)
            if last is not None and now - last >= QUIET_END:
                self.ctx.end_quietly(rule)
                del self.last_true[rule]
            return []
        previous = self.last_true.get(rule)
        self.last_true[rule] = now
        if reading.metric == Metric.SPO2 and self.low_seen is not None:
            hold = timedelta(hours=settings.f("window_h")) if rule == RuleId.SPO2_VARIABILITY else QUIET_END / 3
            if now - self.low_seen < hold:
                return []  # the SpO2 threshold alert, and its readings, already had the nurses' attention
        title, explanation = found
        explanation |= {"metric": reading.metric.value, "settings": settings.describe(),
                        "evaluated_at": now.isoformat()}
        new_day = previous is None or previous.date() != now.date()
        return self.ctx.raise_(rule, "", CATALOGUE[rule].priority, title, explanation, now, repeat=new_day)

    def _spc_day(self, samples: Samples, settings: Settings, day: date) -> dict[str, Any] | None:
        """The SPC verdict on one day's mean against the week before it, or None when unknown."""
        tally = samples.daily.get(day)
        if tally is None or tally[0] < settings.i("min_today_readings"):
            return None
        first = day - timedelta(days=settings.i("baseline_days"))
        days = [d for d in sorted(samples.daily) if first <= d < day]
        if len(days) < max(settings.i("min_baseline_days"), 2):
            return None
        means = np.array([samples.daily[d][1] / samples.daily[d][0] for d in days])
        mean = float(means.mean())
        sd = max(float(means.std(ddof=1)), settings.f("min_sd"))
        day_mean = tally[1] / tally[0]
        z = settings.f("z")
        low = settings.s("direction") == "low"
        limit = mean - z * sd if low else mean + z * sd
        return {"date": day.isoformat(), "mean": round(day_mean, 2), "readings": int(tally[0]),
                "beyond": bool(day_mean < limit if low else day_mean > limit),
                "baseline": {"window": [days[0].isoformat(), days[-1].isoformat()], "days": len(days),
                             "daily_means": {d.isoformat(): round(float(m), 2)
                                             for d, m in zip(days, means, strict=True)},
                             "mean": round(mean, 2), "sd": round(sd, 2), "limit": round(limit, 2)}}

    def _spc(self, samples: Samples, settings: Settings, today: date) -> tuple[str, dict[str, Any]] | None:
        latest = self._spc_day(samples, settings, today)
        if latest is None or not latest["beyond"]:
            return None
        verdicts = [latest]
        for back in range(1, max(settings.i("days_window"), 1)):
            verdict = self._spc_day(samples, settings, today - timedelta(days=back))
            if verdict is not None:
                verdicts.append(verdict)
        beyond = [v for v in verdicts if v["beyond"]]
        if len(beyond) < settings.i("days_needed"):
            return None
        what = "below" if settings.s("direction") == "low" else "above"
        return (f"Daily mean {latest['mean']:.1f} {what} the person's 7-day baseline "
                f"({latest['baseline']['limit']:.1f}) on {len(beyond)} of the last {settings.i('days_window')} days", {
                    "today": {k: latest[k] for k in ("date", "mean", "readings")},
                    "baseline": latest["baseline"],
                    "days": [{k: v[k] for k in ("date", "mean", "readings", "beyond")} | {
                        "limit": v["baseline"]["limit"]} for v in verdicts],
                    "source": settings.source("z") + "; " + settings.source("days_needed"),
                })

    def _slope(self, samples: Samples, settings: Settings, now: datetime) -> tuple[str, dict[str, Any]] | None:
        end = now.timestamp()
        start = end - settings.f("window_h") * 3600
        t, v, n = samples.window(start, end)
        if t.size < settings.i("min_readings") or float(n.sum()) < settings.i("min_readings"):
            return None
        if t.max() - t.min() < settings.f("min_span_h") * 3600:
            return None
        slope, se, _ = fit(t, v)
        rising = settings.s("metric") == Metric.PULSE_RATE.value
        signed = slope if rising else -slope
        if signed < settings.f("alert_per_day") or signed - settings.f("confidence_z") * se <= 0:
            return None
        # Corroboration: a real decline leaves the last day below the person's level before the
        # window; a slope made by noise usually starts from a high point instead.
        bt, bv, _ = samples.window(start - settings.f("baseline_days") * 86400, start - 1)
        recent = v[t >= end - 86400]
        corroboration: dict[str, Any] = {"baseline_hours": int(bt.size)}
        if bt.size >= settings.i("min_readings") and recent.size:
            level, spread = float(bv.mean()), max(float(bv.std(ddof=1)), 1.0)
            corroboration |= {"baseline_mean": round(level, 2), "baseline_sd": round(spread, 2),
                              "last_24h_mean": round(float(recent.mean()), 2)}
            shift = float(recent.mean()) - level
            if (shift if rising else -shift) < settings.f("corroborate_sd") * spread:
                return None
        word = "rising" if rising else "falling"
        return (f"{word.capitalize()} {abs(slope):.1f} per day over {settings.f('window_h'):g} h", {
            "window": {"start": _iso(start), "end": now.isoformat(), "hours": settings.f("window_h")},
            "slope_per_day": round(slope, 3), "standard_error": round(se, 3), "corroboration": corroboration,
            "threshold_per_day": settings.f("alert_per_day"), "readings_behind": samples.refs(start, end),
            "source": settings.source("window_h") + "; " + settings.source("alert_per_day"),
        })

    def _variability(self, samples: Samples, settings: Settings, now: datetime) -> tuple[str, dict[str, Any]] | None:
        end = now.timestamp()
        start = end - settings.f("window_h") * 3600
        t, v, _ = samples.window(start, end)
        if t.size < settings.i("min_readings"):
            return None
        _, _, scatter = fit(t, v)
        if scatter < settings.f("alert_sd"):
            return None
        base_start = start - settings.i("baseline_days") * 86400
        bt, bv, _ = samples.window(base_start, start - 1)
        baseline = fit(bt, bv)[2] if bt.size >= settings.i("min_readings") else None
        if baseline is not None and scatter < settings.f("ratio") * baseline:
            return None
        return (f"Scatter around the trend {scatter:.1f} (well: ~2)", {
            "window": {"start": _iso(start), "end": now.isoformat(), "hours": settings.f("window_h")},
            "residual_sd": round(scatter, 2), "baseline_residual_sd": None if baseline is None else round(baseline, 2),
            "baseline_window": [_iso(base_start), _iso(start)], "threshold_sd": settings.f("alert_sd"),
            "readings_behind": samples.refs(start, end), "source": settings.source("alert_sd"),
        })
