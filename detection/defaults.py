"""Every rule's default parameters and the bounds a person's own value must keep, each naming its source.

One `DEFAULTS` table per rule (`rules.RuleId`): parameter name → `Param(default, source,
floor, ceiling)`. `floor` and `ceiling` are the smallest and the largest value a person's
override may take (for a time of day, the earliest and latest; for a true/false setting,
false < true), each a `Bound` with its own source. Where a bound is a clinical safety limit
it cites the guideline (NEWS2, BTS 2017, NHS oximetry @home); where it is an engineering
limit it says so and why (`ENGINEERING`). A text parameter with a fixed set of values lists
them in `choices` (its floor and ceiling are the first and last of them).

A rule's `priority` parameter, where it has one, is its catalogue priority and source
(`rules.CATALOGUE`), bounded by its family's `rules.PRIORITY_RANGES` (1 is the most urgent,
so the ceiling is how far it may be demoted). The alarm rules (`rules.ALARMS`: the help
button, the pull cord, a fall) have `enabled` and `priority` fixed at their safety floor
(`rules.ALARM_FLOOR`): no per-person setting can switch them off or demote them.

A person's overrides (`PersonProfile.rules[rule]`, the centre's `rule_settings` rows) are
checked against these tables by `check_value`: an unknown rule or parameter, a value of the
wrong kind or one outside its bounds raises `OverrideError`, whose message names the bound
and its source; nothing is silently ignored or clamped. `Settings` is what a rule reads:
the defaults with the person's (checked) overrides applied.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import time

from detection.rules import (
    ACTIVITY,
    ALARM_FLOOR,
    ALARMS,
    CATALOGUE,
    DESIGN,
    NEWS2,
    OXIMETRY,
    PRIORITY_RANGES,
    SCATTER,
    SLOPE,
    SPC,
    Z2M,
    RuleId,
)

ParamValue = bool | int | float | str

ENGINEERING = "engineering limit"
"""Cited by bounds that are ours rather than a guideline's; each says why."""
BTS_2017 = ("BTS guideline for oxygen use in healthcare and emergency settings (O'Driscoll et al., Thorax 2017): "
            "88-92% is the lowest target range, for patients at risk of hypercapnic respiratory failure")
SCALE1_NORMAL = NEWS2 + " Scale 1: SpO2 >=96% scores 0 (normal), so a low alarm must stop below 96%"
SCALE2_TARGET = NEWS2 + " Scale 2 / " + BTS_2017 + ": saturations inside the 88-92% target must not alarm"
SCALE2_SCORE3 = NEWS2 + " Scale 2: <=83% scores 3, so the urgent alarm must include 83%"
OXYGEN_SCORE3 = NEWS2 + " Scale 2 on oxygen: >=97% scores 3, so the over-oxygenation alarm must include 97%"
OXYGEN_ABOVE_TARGET = NEWS2 + " Scale 2 on oxygen: 93% and above is above the 88-92% target (scores >=1)"
PULSE_SCORE0 = NEWS2 + ": pulse 51-90/min scores 0 (normal), so a pulse alarm must lie outside it"


@dataclass(frozen=True)
class Bound:
    """One end of the range a person's value may take, and where it comes from."""

    value: ParamValue
    source: str


@dataclass(frozen=True)
class Param:
    """A parameter's default and its bounds (see the module docstring)."""

    default: ParamValue
    source: str
    floor: Bound
    ceiling: Bound
    choices: tuple[str, ...] = ()
    """For text with a fixed set of values (`metric`, `direction`): every value allowed."""

    @property
    def fixed(self) -> bool:
        """The floor is the ceiling: no person may have a value of their own but the default."""
        return self.floor.value == self.ceiling.value


def _p(default: ParamValue, source: str, floor: tuple[ParamValue, str], ceiling: tuple[ParamValue, str]) -> Param:
    """A parameter: `floor` and `ceiling` as (value, source)."""
    return Param(default, source, Bound(*floor), Bound(*ceiling))


def _eng(why: str) -> str:
    return f"{ENGINEERING}: {why}"


def _choice(default: str, source: str, choices: tuple[str, ...]) -> Param:
    return Param(default, source, Bound(choices[0], source), Bound(choices[-1], source), choices)


def _priority(rule: RuleId, least_urgent: tuple[int, str] | None = None) -> dict[str, Param]:
    """The rule's `priority` parameter: its catalogue priority, citing the catalogue's source,
    bounded by its family's `PRIORITY_RANGES` (or a tighter `least_urgent` of its own)."""
    entry = CATALOGUE[rule]
    allowed = PRIORITY_RANGES[entry.kind]
    ceiling = least_urgent or (int(allowed.least_urgent), allowed.least_urgent_source)
    return {"priority": _p(int(entry.priority), entry.source, (int(allowed.most_urgent), allowed.most_urgent_source),
                           ceiling)}


_MINUTES_DAY = _eng("within a day")
_SPOT_DELAY = _eng("spot checks are hours apart (oximetry @home: a few a day), so every extra reading asked for "
                   "can hold back an urgent alarm by hours; 3 is about a day")
_PERSISTENCE = {
    "persistence_readings": _p(2, DESIGN + ": spot checks, a second clean reading confirms (re-measure rule)",
                               (1, _eng("one clean reading is the least evidence there is")), (3, _SPOT_DELAY)),
    "continuous_persistence_s": _p(60, DESIGN + ": continuous oximetry must stay out of range >=60 s of wall-clock "
                                   "time, at any cadence from 1 Hz to one a minute (a minute of one-a-minute "
                                   "readings is two of them: the re-measure rule of " + OXIMETRY + ")",
                                   (10, _eng("PLX continuous measurement sends every 1-4 s: under 10 s is a few "
                                             "samples, i.e. movement artefact")),
                                   (300, _eng("5 min of continuous desaturation with no alarm is the most we "
                                              "accept; the real 1 Hz record's harmless dips last ~35 s"))),
    "continuous_gap_s": _p(10, DESIGN + ": readings <=10 s apart are a continuous session at once (PLX 0x2A5F "
                           "sends every 1-4 s; nobody re-measures a spot check within 10 s)",
                           (1, _eng("PLX continuous measurement's fastest cadence is 1 s")),
                           (30, _eng("no wider than the default continuous_max_gap_s (30 s)"))),
    "continuous_cadence_s": _p(90, DESIGN + ": a stream whose own cadence (the median of its last 3 gaps between "
                               "clean readings) is at most 90 s is continuous: one a minute (an overnight "
                               "recorder's or a hub's per-minute summary) with half a period for jitter; two "
                               "readings alone are spot checks, so a re-measure a minute after a spot check "
                               "still confirms at once (" + OXIMETRY + ": re-measure)",
                               (10, _eng("at least the default continuous_gap_s (10 s)")),
                               (120, _eng("readings 2 min apart or more are spot checks: a minute's persistence "
                                          "cannot be seen at that cadence"))),
    "continuous_max_gap_s": _p(30, DESIGN + ": a gap in clean readings longer than this and than "
                               "continuous_max_gap_cadences x the stream's cadence restarts the count",
                               (10, _eng("at least the default continuous_gap_s (10 s)")),
                               (120, _eng("after 2 min without a clean reading (probe off) it is a new run"))),
    "continuous_max_gap_cadences": _p(2.5, DESIGN + ": at a slow cadence one missed reading (a gap of 2 periods, "
                                      "with half a period of jitter) does not restart the count; two do",
                                      (1.5, _eng("a period and a half: no missed reading at all")),
                                      (5.0, _eng("four missed readings in a row are a probe off, not a stream"))),
    "episode_end_readings": _p(3, DESIGN + ": clean in-range readings that end an episode (no Clear is sent)",
                               (1, _eng("one clean in-range reading")),
                               (10, _eng("a longer episode would fold a relapse into the old alert"))),
    "episode_end_s": _p(300, DESIGN + ": continuous: in range this long ends an episode",
                        (60, _eng("as long as the default persistence (60 s)")),
                        (3600, _eng("a longer episode would fold a relapse into the old alert"))),
}
_SCALE = (0, NEWS2 + ": 0 = use the profile's spo2_scale")

SPO2_LOW: dict[str, Param] = {
    "scale": _p(0, NEWS2 + ": 0 = use the profile's spo2_scale; 1 or 2 overrides it", _SCALE,
                (2, NEWS2 + ": two SpO2 scales, Scale 2 for a clinician-documented 88-92% target")),
    "on_oxygen": _p(False, NEWS2 + ": Scale 2 on oxygen scores high saturations", (False, NEWS2 + ": on air"),
                    (True, NEWS2 + ": Scale 2 on oxygen")),
    "urgent_at_or_below": _p(92, OXIMETRY + "; NEWS2 Scale 1 scores <=91 as 3", (88, BTS_2017), (95, SCALE1_NORMAL)),
    "review_at_or_below": _p(94, OXIMETRY + "; NEWS2 Scale 1 scores 94-95 as 1, 92-93 as 2", (88, BTS_2017),
                             (95, SCALE1_NORMAL)),
    "scale2_urgent_at_or_below": _p(83, NEWS2 + " Scale 2: <=83 scores 3", (83, SCALE2_SCORE3), (87, SCALE2_TARGET)),
    "scale2_review_at_or_below": _p(85, NEWS2 + " Scale 2: 84-85 scores 2",
                                    (83, NEWS2 + " Scale 2: <=83 is the urgent band; lower leaves no review band"),
                                    (87, SCALE2_TARGET)),
    "scale2_oxygen_urgent_at_or_above": _p(97, NEWS2 + " Scale 2 on oxygen: >=97 scores 3",
                                           (93, OXYGEN_ABOVE_TARGET), (97, OXYGEN_SCORE3)),
    "scale2_oxygen_review_at_or_above": _p(95, NEWS2 + " Scale 2 on oxygen: 95-96 scores 2",
                                           (93, OXYGEN_ABOVE_TARGET), (97, OXYGEN_SCORE3)),
    **_PERSISTENCE,
}
PULSE_HIGH: dict[str, Param] = {
    "urgent_at_or_above": _p(131, NEWS2 + ": pulse >=131 scores 3", (91, PULSE_SCORE0),
                             (131, NEWS2 + ": pulse >=131 scores 3, so the urgent alarm must include 131/min")),
    "review_at_or_above": _p(111, NEWS2 + ": pulse 111-130 scores 2", (91, PULSE_SCORE0),
                             (131, NEWS2 + ": pulse >=131 scores 3, the urgent band")),
    **_PERSISTENCE,
}
PULSE_LOW: dict[str, Param] = {
    "urgent_at_or_below": _p(40, NEWS2 + ": pulse <=40 scores 3",
                             (40, NEWS2 + ": pulse <=40 scores 3, so the urgent alarm must include 40/min"),
                             (50, PULSE_SCORE0)),
    "review_at_or_below": _p(0, NEWS2 + ": 41-50 scores only 1, so no review band by default (0 = off)",
                             (0, NEWS2 + ": 0 = no review band, the default"), (50, PULSE_SCORE0)),
    **_PERSISTENCE,
}
MISSED_MEASUREMENT: dict[str, Param] = {
    "early_minutes": _p(30, DESIGN + ": a reading this long before the scheduled time counts",
                        (0, _eng("from the scheduled time itself")),
                        (120, _eng("an earlier reading belongs to the slot before (default window 120 min)"))),
    **_priority(RuleId.MISSED_MEASUREMENT),
}
_EVAL_FLOOR = (300, _eng("every look at noisy data is another chance of a false alarm (docs/detection.md), and "
                         "the numpy fits cost CPU for every person: at most every 5 min"))
_EVAL_CEILING = (86400, _eng("trends are daily: at least once a day"))
_TREND_COMMON = {
    "metric": _choice("spo2", DESIGN + ": spo2 or pulse_rate", ("spo2", "pulse_rate")),
    "eval_interval_s": _p(900, DESIGN + ": trends are re-evaluated at most every 15 min per person", _EVAL_FLOOR,
                          _EVAL_CEILING),
}
_HOURLY_KEPT = _eng("hourly means are kept 7 days (168, trends.py)")
_BASELINE_WEEK = {
    "baseline_days": _p(7, DESIGN + ": the person's level before the window", (2, _eng("two days make a level")),
                        (7, _HOURLY_KEPT)),
}
SPO2_TREND_SPC: dict[str, Param] = {
    "baseline_days": _p(7, SPC, (3, _eng("fewer days give no SD worth the name")),
                        (28, _eng("daily sums are kept 35 days (trends.py), room for the run-rule window"))),
    "z": _p(1.645, SPC, (1.0, _eng("below 1 SD a well person is 'beyond' about one day in 6")),
            (3.0, _eng("beyond 3 SD (Shewhart's control limit) the rule no longer warns early"))),
    "min_baseline_days": _p(5, DESIGN + ": learning period: days with clean readings before the rule runs",
                            (3, _eng("as baseline_days' floor")), (28, _eng("as baseline_days' ceiling"))),
    "min_today_readings": _p(2, DESIGN + ": today's mean needs at least this many clean readings",
                             (1, _eng("one reading")), (24, _eng("one an hour"))),
    "min_sd": _p(1.0, DESIGN + ": SD floor, so a very steady week does not make 1 point an alarm",
                 (0.5, _eng("an oximeter shows whole percent: half a point is below its resolution")),
                 (4.0, SCATTER + ": an SD floor at the deterioration scatter would blind the rule")),
    "days_needed": _p(2, DESIGN + ": run rule, 2 of the last 3 days beyond the limit (~5% of well days are)",
                      (1, _eng("one day")), (7, _eng("a week"))),
    "days_window": _p(3, DESIGN + ": run rule window (Western Electric style)", (1, _eng("one day")),
                      (7, _eng("a week, inside the baseline"))),
    "direction": _choice("low", DESIGN + ": low for SpO2; high for pulse", ("low", "high")),
    **_TREND_COMMON,
}
SPO2_TREND_SLOPE: dict[str, Param] = {
    "window_h": _p(72, SLOPE, (24, SLOPE + ": 24 h at least"), (168, _HOURLY_KEPT)),
    "min_span_h": _p(48, DESIGN + ": the clean readings must span at least 48 h", (12, _eng("half a day")),
                     (168, _HOURLY_KEPT)),
    "min_readings": _p(6, DESIGN, (3, _eng("a line needs 3 points to have an error")), (168, _HOURLY_KEPT)),
    "alert_per_day": _p(1.0, DESIGN + ": a decline of >=1 %-point/day",
                        (0.25, _eng("below a quarter point a day is below what 2% scatter lets a 72 h fit see")),
                        (5.0, _eng("a fall of 5 points a day is a threshold alarm's job"))),
    "confidence_z": _p(2.33, DESIGN + ": and the decline must be significant (one-sided 99%)",
                       (1.0, _eng("one-sided 84%: less is noise")), (4.0, _eng("beyond 4 SE nothing is found early"))),
    **_BASELINE_WEEK,
    "corroborate_sd": _p(1.0, DESIGN + ": the last 24 h at least 1 SD below that level",
                         (0.0, _eng("0: no corroboration")), (3.0, _eng("3 SD: a threshold alarm's job"))),
    **_TREND_COMMON,
    "eval_interval_s": _p(43200, DESIGN + ": every 12 h (each look at noisy data is a chance of a false alarm)",
                          _EVAL_FLOOR, _EVAL_CEILING),
}
SPO2_VARIABILITY: dict[str, Param] = {
    "window_h": _p(72, SCATTER, (24, SLOPE + ": 24 h at least"), (168, _HOURLY_KEPT)),
    "baseline_days": _p(7, SCATTER + ": baseline scatter from the days before the window",
                        (2, _eng("two days make a level")), (7, _HOURLY_KEPT)),
    "alert_sd": _p(4.0, SCATTER, (2.0, SCATTER + ": at ~2% every well person would alarm"),
                   (8.0, _eng("twice the deterioration scatter: less sensitive finds nothing"))),
    "ratio": _p(1.5, DESIGN + ": and at least 1.5x the person's own baseline scatter when learnt",
                (1.0, _eng("1x: no more than the person's own scatter")), (5.0, _eng("5x"))),
    "min_readings": _p(9, DESIGN, (3, _eng("a line needs 3 points to have an error")), (168, _HOURLY_KEPT)),
    **_TREND_COMMON,
}
_NIGHT_START = (("18:00", _eng("the night starts in the evening: an earlier one is not a night")),
                ("23:59", _eng("the night starts before midnight: the rules take the night by the date it began")))
_NIGHT_END = (("04:00", _eng("at least 4 h after midnight")), ("10:00", _eng("a late riser's night ends by 10:00")))
_NIGHT = {
    "night_start": _p("22:00", ACTIVITY + ": out of bed > 45 min between 22:00 and 06:00", *_NIGHT_START),
    "night_end": _p("06:00", ACTIVITY, *_NIGHT_END),
}
NIGHT_EXIT: dict[str, Param] = {
    "night_start": _p("22:00", DESIGN + ": the night window starts at the person's learned bedtime (the median of "
                      "their bedtimes over bedtime_nights); 22:00 while learning or with no bed or bedroom sensor "
                      "(" + ACTIVITY + ": 22:00-06:00); a person's own value replaces the learned one",
                      *_NIGHT_START),
    "night_end": _p("06:00", ACTIVITY, *_NIGHT_END),
    "return_minutes": _p(15, DESIGN + ": an exit door opened in the night window and no sign of anyone indoors "
                         "this long after it is a departure; a return in time is not (docs/detection.md: "
                         "minutes against false alarms per week on van Kasteren house A and Ordonez A and B)",
                         (2, _eng("opening a door, stepping out and coming back in takes a minute or two: a "
                                  "shorter wait alarms on every door opened")),
                         (60, _eng("house_unoccupied asks about a person still out an hour into the night; a "
                                   "night exit must be told sooner"))),
    "bedtime_nights": _p(14, ACTIVITY + ": products learn each person's normal pattern; the bedtimes of this "
                         "many nights make the learned night_start", (7, _eng("a week")),
                         (35, _eng("bedtimes are kept 35 nights"))),
    "bedtime_min_nights": _p(7, DESIGN + ": learning period: nights with a bedtime before the learned one is used",
                             (3, _eng("three nights make a median")),
                             (35, _eng("as bedtime_nights' ceiling"))),
    **_priority(RuleId.NIGHT_EXIT),
}
OUT_OF_BED_AT_NIGHT: dict[str, Param] = {
    **_NIGHT,
    "minutes": _p(45, ACTIVITY + ": out of bed for more than 45 minutes between 22:00 and 06:00",
                  (5, _eng("a toilet visit takes a few minutes")),
                  (120, _eng("2 h on the floor is already a long lie"))),
    "up_from": _p("05:00", DESIGN + ": leaving the bed from 05:00 is getting up (early risers)",
                  ("03:00", _eng("earlier is the middle of the night")), ("10:00", _eng("as night_end's ceiling"))),
    **_priority(RuleId.OUT_OF_BED_AT_NIGHT),
}
NO_MORNING_ACTIVITY: dict[str, Param] = {
    "default_deadline": _p("10:00", ACTIVITY + ": no kitchen activity 08:00-12:00; 10:00 while learning",
                           ("07:00", _eng("as earliest_deadline's default")),
                           ("12:00", ACTIVITY + ": no kitchen activity 08:00-12:00")),
    "latest_deadline": _p("12:00", ACTIVITY + ": no kitchen activity 08:00-12:00",
                          ("08:00", ACTIVITY + ": no kitchen activity 08:00-12:00"),
                          ("13:00", _eng("a person not up by 1 pm has been alone too long"))),
    "earliest_deadline": _p("07:00", DESIGN, ("05:00", _eng("as morning_from's default")),
                            ("12:00", ACTIVITY + ": no kitchen activity 08:00-12:00")),
    "morning_from": _p("05:00", DESIGN + ": activity from this local time counts as getting up",
                       ("03:00", _eng("earlier is the middle of the night")),
                       ("09:00", _eng("later would miss an early riser's morning"))),
    "percentile": _p(90.0, DESIGN + ": 90th percentile of the person's first-activity times",
                     (50.0, _eng("the median: half the mornings later than it")), (100.0, _eng("the latest morning"))),
    "margin_minutes": _p(60, DESIGN, (0, _eng("none")), (180, _eng("3 h"))),
    "reading_alive_minutes": _p(60, DESIGN + ": a clean reading from a worn oximeter shows the person alive (in bed, "
                                "not up) for this long after it; as margin_minutes, how much later than usual a "
                                "morning may run before anyone is asked",
                                (10, _eng("a reading stream's readings are under 10 min apart (activity.py, "
                                          "SESSION_GAP): a shorter hold would lapse between two of them")),
                                (180, _eng("as margin_minutes' ceiling"))),
    "baseline_days": _p(14, ACTIVITY + ": products learn each person's normal pattern", (7, _eng("a week")),
                        (35, _eng("first-activity times are kept 35 days"))),
    "min_days": _p(7, DESIGN + ": learning period", (1, _eng("a day")), (35, _eng("as baseline_days' ceiling"))),
    **_priority(RuleId.NO_MORNING_ACTIVITY),
}
HOUSE_UNOCCUPIED: dict[str, Param] = {
    "default_hours": _p(8.0, DESIGN + ": while learning", (1.0, _eng("an hour")),
                        (24.0, _eng("a day out unnoticed is too long"))),
    "min_hours": _p(3.0, DESIGN + ": never sooner", (0.5, _eng("half an hour")),
                    (24.0, _eng("a day out unnoticed is too long"))),
    "factor": _p(1.5, DESIGN + ": x the person's 90th-percentile outing", (1.0, _eng("the outing itself")),
                 (5.0, _eng("5x"))),
    "min_outing_minutes": _p(10, DESIGN + ": a shorter silence after a door is not an outing", (1, _eng("a minute")),
                             (120, _eng("2 h"))),
    "baseline_days": _p(28, ACTIVITY, (7, _eng("a week")), (28, _eng("outings are kept 28 days"))),
    "min_outings": _p(5, DESIGN + ": learning period", (1, _eng("one outing")),
                      (50, _eng("about 2 a day for 28 days"))),
    "night_start": _p("22:00", ACTIVITY, *_NIGHT_START),
    "night_grace_minutes": _p(60, DESIGN + ": still out an hour into the night", (0, _eng("none")),
                              (240, _eng("4 h into the night"))),
    "late_returns": _p(2, DESIGN + ": came home that late this often in the baseline: a night owl, no alert",
                       (1, _eng("once")), (28, _eng("every night of the baseline"))),
    **_priority(RuleId.HOUSE_UNOCCUPIED),
}
DOOR_LEFT_OPEN: dict[str, Param] = {
    "minutes": _p(15, ACTIVITY + ": door left open; SCAIP status 'open too long'", (1, _eng("a minute")),
                  (240, _eng("4 h: an open door for longer is a home left insecure"))),
    **_priority(RuleId.DOOR_LEFT_OPEN),
}
NIGHT_TOILET_FREQUENCY: dict[str, Param] = {
    **_NIGHT,
    "visit_gap_minutes": _p(10, DESIGN + ": toilet events closer than this are one visit", (1, _eng("a minute")),
                            (60, _eng("an hour"))),
    "baseline_nights": _p(28, ACTIVITY + ": frequent night bathroom visits, an early sign of a UTI",
                          (7, _eng("a week")), (35, _eng("nightly counts are kept 35 days"))),
    "min_nights": _p(7, DESIGN + ": learning period", (1, _eng("a night")), (35, _eng("as baseline_nights' ceiling"))),
    "sd_factor": _p(2.0, DESIGN + ": mean + 2 SD of the person's nights", (1.0, _eng("1 SD: one night in 6")),
                    (4.0, _eng("4 SD"))),
    "min_visits": _p(4, DESIGN + ": 1-3 visits a night are common in older people", (1, _eng("one visit")),
                     (20, _eng("more is not a night's sleep"))),
    "default_visits": _p(5, DESIGN + ": while learning", (1, _eng("one visit")),
                         (20, _eng("more is not a night's sleep"))),
    **_priority(RuleId.NIGHT_TOILET_FREQUENCY),
}
_LINK = "every link must be supervised: a silent hub means the person's alarms cannot reach the centre (domain brief)"
HUB_OFFLINE: dict[str, Param] = {
    "missed_heartbeats": _p(2, "SCAIP heartbeat: receiver-set interval; 2 missed", (1, _eng("one missed heartbeat")),
                            (5, _eng(_LINK + "; 5 heartbeats"))),
    "grace_s": _p(60, DESIGN, (0, _eng("none")), (600, _eng(_LINK + "; 10 min"))),
    **_priority(RuleId.HUB_OFFLINE, least_urgent=(2, _LINK + ": never demoted below urgent (2)")),
}
DEVICE_NOT_SEEN: dict[str, Param] = {
    "default_expected_s": _p(25 * 3600, Z2M, (60, _eng("a minute")),
                             (48 * 3600, _eng("a help button unheard from for 2 days leaves the person without one "
                                              "(hazard log H3)"))),
    "grace_s": _p(300, "Home Assistant: sleepy devices need their own interval and a grace "
                  "(home-assistant/core issue #78702)",
                  (0, _eng("none")), (3600, _eng("an hour"))),
    **_priority(RuleId.DEVICE_NOT_SEEN),
}
NO_SIGNAL: dict[str, Param] = {
    "minutes": _p(60, DESIGN + ": an oximeter sending only readings with no signal for an hour has lost an hour of "
                  "the record; a shorter gap (a probe re-seated, a trip out of bed; the simulator's 30 min probe-off "
                  "gap is labelled must-not-alarm) shows on the nurses' chart as flagged readings",
                  (10, _eng("a reading stream's session gap (activity.py): shorter is a probe being re-seated")),
                  (240, _eng("half a night of overnight oximetry lost unnoticed is the most we accept"))),
    **_priority(RuleId.NO_SIGNAL),
}
_ALARM_ALWAYS_ON = _p(True, ALARM_FLOOR, (True, ALARM_FLOOR), (True, ALARM_FLOOR))

DEFAULTS: dict[str, dict[str, Param]] = {
    RuleId.PENDANT_ALARM: _priority(RuleId.PENDANT_ALARM),
    RuleId.FALL: _priority(RuleId.FALL),
    RuleId.SPO2_LOW: SPO2_LOW,
    RuleId.PULSE_HIGH: PULSE_HIGH,
    RuleId.PULSE_LOW: PULSE_LOW,
    RuleId.MISSED_MEASUREMENT: MISSED_MEASUREMENT,
    RuleId.SPO2_TREND_SPC: SPO2_TREND_SPC,
    RuleId.SPO2_TREND_SLOPE: SPO2_TREND_SLOPE,
    RuleId.SPO2_VARIABILITY: SPO2_VARIABILITY,
    RuleId.NIGHT_EXIT: NIGHT_EXIT,
    RuleId.OUT_OF_BED_AT_NIGHT: OUT_OF_BED_AT_NIGHT,
    RuleId.NO_MORNING_ACTIVITY: NO_MORNING_ACTIVITY,
    RuleId.HOUSE_UNOCCUPIED: HOUSE_UNOCCUPIED,
    RuleId.DOOR_LEFT_OPEN: DOOR_LEFT_OPEN,
    RuleId.NIGHT_TOILET_FREQUENCY: NIGHT_TOILET_FREQUENCY,
    RuleId.HUB_OFFLINE: HUB_OFFLINE,
    RuleId.HUB_CLOCK_WRONG: _priority(RuleId.HUB_CLOCK_WRONG),  # its bounds are the centre's: detection/clock.py
    RuleId.DEVICE_NOT_SEEN: DEVICE_NOT_SEEN,
    RuleId.NO_SIGNAL: NO_SIGNAL,
    RuleId.BATTERY_LOW: _priority(RuleId.BATTERY_LOW),
    RuleId.TAMPER: _priority(RuleId.TAMPER),
    RuleId.POWER_FAILURE: _priority(RuleId.POWER_FAILURE),
    RuleId.DEVICE_FAULT: _priority(RuleId.DEVICE_FAULT),
    RuleId.DATA_DROPPED: _priority(RuleId.DATA_DROPPED),
}
for _rule, _table in DEFAULTS.items():
    _table.setdefault("enabled", _ALARM_ALWAYS_ON if _rule in ALARMS else
                      _p(True, DESIGN + ": a rule can be switched off for one person",
                         (False, DESIGN + ": switched off for one person (audited, with a reason)"),
                         (True, DESIGN + ": on, the default")))
RULES = tuple(DEFAULTS)


class OverrideError(ValueError):
    """A per-person override names an unknown rule or parameter, has the wrong kind of value,
    or lies outside the parameter's bounds (the message names the bound and its source)."""


def show(value: ParamValue) -> str:
    """A value as a person writes it in a settings body or a people file (true, 92, "22:00")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return f"{value:g}" if isinstance(value, float) else str(value)


def _ordinal(value: ParamValue, what: str) -> float:
    """A value on the scale its bounds are compared on: minutes after midnight for a time of day."""
    if isinstance(value, str):
        moment = parse_hhmm(value, what)
        return moment.hour * 60 + moment.minute
    return float(value)


def _check_bounds(rule: str, name: str, param: Param, value: ParamValue) -> None:
    what = f"{rule}.{name}"
    if param.choices:
        if value not in param.choices:
            raise OverrideError(f"{what} must be one of {', '.join(param.choices)}, not {show(value)} "
                                f"({param.floor.source})")
        return
    at = _ordinal(value, what)
    if param.fixed:
        if value != param.floor.value:
            crossed = param.floor if at < _ordinal(param.floor.value, what) else param.ceiling
            raise OverrideError(f"{what} = {show(value)} refused: fixed at its safety floor {show(param.floor.value)} "
                                f"({crossed.source})")
        return
    if at < _ordinal(param.floor.value, what):
        raise OverrideError(f"{what} = {show(value)} is below its floor {show(param.floor.value)} "
                            f"({param.floor.source})")
    if at > _ordinal(param.ceiling.value, what):
        raise OverrideError(f"{what} = {show(value)} is above its ceiling {show(param.ceiling.value)} "
                            f"({param.ceiling.source})")


def check_value(rule: str, name: str, value: object) -> ParamValue:
    """The override, checked against the default's kind and the parameter's floor and ceiling.

    Returns the value as the engine reads it (an int given for a float parameter becomes a
    float). Raises `OverrideError` naming the rule, the parameter and, for a value out of
    bounds, the bound crossed and its source."""
    table = DEFAULTS.get(rule)
    if table is None:
        raise OverrideError(f"unknown rule {rule!r}; rules are: {', '.join(RULES)}")
    param = table.get(name)
    if param is None:
        raise OverrideError(f"rule {rule!r} has no parameter {name!r}; it has: {', '.join(sorted(table))}")
    default = param.default
    checked: ParamValue
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise OverrideError(f"{rule}.{name} must be true or false, not {value!r}")
        checked = value
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise OverrideError(f"{rule}.{name} must be a whole number, not {value!r}")
        checked = value
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise OverrideError(f"{rule}.{name} must be a number, not {value!r}")
        if value != value:  # NaN compares false with every bound
            raise OverrideError(f"{rule}.{name} must be a number, not {value!r}")
        checked = float(value)
    elif not isinstance(value, str):
        raise OverrideError(f"{rule}.{name} must be text, not {value!r}")
    else:
        checked = value
    _check_bounds(rule, name, param, checked)
    return checked


def parse_hhmm(text: str, what: str) -> time:
    try:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise OverrideError(f"{what} must be a local time HH:MM, not {text!r}") from None


class Settings:
    """One rule's parameters for one person: defaults, with that person's overrides."""

    def __init__(self, rule: RuleId, overrides: Mapping[str, ParamValue] | None = None) -> None:
        self.rule = rule
        self.values: dict[str, ParamValue] = {name: p.default for name, p in DEFAULTS[rule].items()}
        self.overridden = dict(overrides or {})
        for name, value in self.overridden.items():
            self.values[name] = check_value(rule, name, value)
        self._times: dict[str, time] = {}
        """Times of day parsed once (`t`): the activity rules read them on every tick."""

    def f(self, name: str) -> float:
        return float(self.values[name])  # kinds were checked when the overrides were read

    def i(self, name: str) -> int:
        return int(self.values[name])

    def s(self, name: str) -> str:
        return str(self.values[name])

    def b(self, name: str) -> bool:
        return bool(self.values[name])

    def t(self, name: str) -> time:
        moment = self._times.get(name)
        if moment is None:
            moment = self._times[name] = parse_hhmm(self.s(name), f"{self.rule}.{name}")
        return moment

    def describe(self) -> dict[str, ParamValue | dict[str, ParamValue]]:
        """For an explanation: the values used, and which were the person's own."""
        return {**self.values, "overridden": dict(self.overridden)}

    def source(self, name: str) -> str:
        return DEFAULTS[self.rule][name].source


def bounds_table() -> str:
    """Every parameter's default, floor and ceiling with their sources, as the Markdown table
    in docs/detection.md ("Bounds of a person's settings"), the citations shared by many rows
    written as [key] and listed under the table; a test keeps the two the same."""
    def cite(text: str) -> str:
        for key, citation in _CITATIONS.items():
            text = text.replace(citation, f"[{key}]")
        return text

    lines = ["| rule | parameter | default | floor | ceiling | source |", "|---|---|---|---|---|---|"]
    for rule, table in DEFAULTS.items():
        for name, param in table.items():
            if param.choices:
                floor = ceiling = "one of " + ", ".join(show(choice) for choice in param.choices)
            else:
                floor, ceiling = show(param.floor.value), show(param.ceiling.value)
            sources = [f"default: {param.source}"]
            if param.floor.source == param.ceiling.source:
                if param.floor.source != param.source:
                    sources.append(f"bounds: {param.floor.source}")
            else:
                sources += [f"floor: {param.floor.source}", f"ceiling: {param.ceiling.source}"]
            cells = [f"`{rule}`", f"`{name}`", show(param.default), floor, ceiling, cite("; ".join(sources))]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    lines.append("")
    lines += [f"- `[{key}]` {citation}" for key, citation in _CITATIONS.items()]
    return "\n".join(lines)


_CITATIONS = {
    "alarm floor": ALARM_FLOOR, "BTS 2017": BTS_2017, "oximetry @home": OXIMETRY, "NEWS2": NEWS2,
    "activity products": ACTIVITY, "SPC": SPC, "scatter": SCATTER, "slope": SLOPE, "Z2M": Z2M, "design": DESIGN,
}
"""Citations written as [key] in `bounds_table`, longest (those that quote others) first."""


LABELS: dict[str, str] = {
    "alert_per_day": "Alert on a fall of at least this many points a day",
    "alert_sd": "Alert when the day-to-day spread reaches this (percentage points)",
    "baseline_days": "Days that make the person's usual level",
    "baseline_nights": "Nights that make the person's usual pattern",
    "bedtime_min_nights": "Nights to learn a bedtime before it is used",
    "bedtime_nights": "Nights of bedtimes that make the learned bedtime",
    "confidence_z": "How sure the fall must be before it alerts (higher is surer)",
    "continuous_cadence_s": "Readings at most this many seconds apart count as continuous monitoring",
    "continuous_gap_s": "Readings this close (seconds) start continuous monitoring at once",
    "continuous_max_gap_cadences": "A gap of this many reading intervals ends a continuous run",
    "continuous_max_gap_s": "A gap longer than this (seconds) ends a continuous run",
    "continuous_persistence_s": "Continuous monitoring: seconds out of range before it alerts",
    "corroborate_sd": "The last day must also be this many standard deviations below the usual level",
    "days_needed": "Days beyond the limit needed to alert",
    "days_window": "Out of this many recent days",
    "default_deadline": "Time to expect the person up while their usual time is learned",
    "default_expected_s": "Seconds a device may stay silent before it counts as not seen",
    "default_hours": "Hours out before asking, while the usual outing is learned",
    "default_visits": "Toilet visits a night that alert, while the usual number is learned",
    "direction": "Which way of change alerts (low or high)",
    "earliest_deadline": "Earliest time to expect the person up",
    "early_minutes": "Minutes before the scheduled time that a reading still counts",
    "enabled": "Rule switched on",
    "episode_end_readings": "In-range readings that end an episode",
    "episode_end_s": "Continuous monitoring: seconds back in range that end an episode",
    "eval_interval_s": "Seconds between checks of the trend",
    "factor": "Times the person's usual longest outing before the centre asks",
    "grace_s": "Extra seconds allowed before it alerts",
    "late_returns": "Late returns in the usual pattern that make late nights normal for the person",
    "latest_deadline": "Latest time to expect the person up",
    "margin_minutes": "Minutes later than usual before it alerts",
    "metric": "Which reading the trend follows (SpO2 or pulse)",
    "min_baseline_days": "Days of readings to learn before the rule starts",
    "min_days": "Mornings to learn before the person's usual time is used",
    "min_hours": "Never ask sooner than this many hours out",
    "min_nights": "Nights to learn before the person's usual number is used",
    "min_outing_minutes": "A quiet house shorter than this (minutes) after a door is not an outing",
    "min_outings": "Outings to learn before the person's usual outing is used",
    "min_readings": "Readings needed before the trend is judged",
    "min_sd": "Smallest spread assumed for the usual level (percentage points)",
    "min_span_h": "Hours the readings must cover",
    "min_today_readings": "Readings today needed before today is judged",
    "min_visits": "Fewest toilet visits a night that can alert",
    "minutes": "Minutes before it alerts",
    "missed_heartbeats": "Missed check-ins before the hub counts as offline",
    "morning_from": "Activity from this time counts as getting up",
    "night_end": "Night ends at",
    "night_grace_minutes": "Minutes into the night before asking about someone still out",
    "night_start": "Night starts at (otherwise the learned bedtime)",
    "on_oxygen": "Person is on oxygen (high readings also alert)",
    "percentile": "Usual getting-up time: percentile of the person's mornings",
    "persistence_readings": "Spot checks: readings out of range in a row before it alerts",
    "priority": "Priority (1 is the most urgent)",
    "ratio": "And at least this many times the person's usual spread",
    "reading_alive_minutes": "Minutes an oximeter reading counts as a sign the person is well",
    "return_minutes": "Minutes to come back indoors before it alerts",
    "review_at_or_above": "Review at or above",
    "review_at_or_below": "Review at or below",
    "scale": "SpO2 scale (0 uses the person's profile)",
    "scale2_oxygen_review_at_or_above": "SpO2 Scale 2 on oxygen: review at or above",
    "scale2_oxygen_urgent_at_or_above": "SpO2 Scale 2 on oxygen: urgent at or above",
    "scale2_review_at_or_below": "SpO2 Scale 2 (for people at risk of hypercapnic failure): review at or below",
    "scale2_urgent_at_or_below": "SpO2 Scale 2 (for people at risk of hypercapnic failure): urgent at or below",
    "sd_factor": "Standard deviations above the usual number of visits that alert",
    "up_from": "Leaving the bed from this time is getting up",
    "urgent_at_or_above": "Urgent at or above",
    "urgent_at_or_below": "Urgent at or below",
    "visit_gap_minutes": "Toilet trips closer than this (minutes) are one visit",
    "window_h": "Hours of readings looked at",
    "z": "How far below the usual level alerts (standard deviations)",
}
"""Each parameter's plain description, as the admin's and the nurse's pages show it (with the
rule's `title`); `label` gives one, `RULE_LABELS` where a name means something else in one rule."""
RULE_LABELS: dict[tuple[RuleId, str], str] = {
    (RuleId.OUT_OF_BED_AT_NIGHT, "minutes"): "Minutes out of bed at night before it alerts",
    (RuleId.DOOR_LEFT_OPEN, "minutes"): "Minutes a door may stay open before it alerts",
    (RuleId.NO_SIGNAL, "minutes"): "Minutes without a signal before it alerts",
    (RuleId.SPO2_LOW, "urgent_at_or_below"): "SpO2 Scale 1 (most people): urgent at or below",
    (RuleId.SPO2_LOW, "review_at_or_below"): "SpO2 Scale 1 (most people): review at or below",
    (RuleId.SPO2_TREND_SPC, "direction"): "Which way of change alerts (low for SpO2, high for pulse)",
}
ZERO_MEANS: dict[tuple[RuleId, str], str] = {
    (RuleId.PULSE_LOW, "review_at_or_below"): "off",
    (RuleId.SPO2_LOW, "scale"): "the person's profile",
}
"""Parameters whose 0 is not a number but a choice, and what it means in words."""
CHOICE_WORDS: dict[str, str] = {"spo2": "SpO2", "pulse_rate": "pulse", "low": "low", "high": "high"}
"""Each text parameter's choice (`Param.choices`) in words."""


def label(rule: RuleId, name: str) -> str:
    """A parameter's plain description (`LABELS`, `RULE_LABELS`): never its key."""
    return RULE_LABELS.get((rule, name)) or LABELS[name]


def plain(rule: RuleId, name: str, value: ParamValue) -> str:
    """A parameter's value in words: on or off, a 0 that means off says "off"; else as written."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if value == 0 and (rule, name) in ZERO_MEANS:
        return ZERO_MEANS[(rule, name)]
    if isinstance(value, float):
        return f"{value:g}"
    return CHOICE_WORDS.get(value, value) if isinstance(value, str) else str(value)


def words_for(rule: RuleId, name: str) -> dict[str, ParamValue]:
    """The words a person may write for a parameter's value instead of the value itself, as `plain`
    shows them: on and off for a true/false setting, each choice's word, what a 0 means."""
    param = DEFAULTS[rule][name]
    found: dict[str, ParamValue] = {}
    if isinstance(param.default, bool):
        found = {"on": True, "off": False}
    found |= {CHOICE_WORDS.get(choice, choice): choice for choice in param.choices}
    if (rule, name) in ZERO_MEANS:
        found[ZERO_MEANS[(rule, name)]] = 0
    return found
