"""Incidents injected into a home's stream, each with its ground-truth label.

An incident changes the stream the way real life would: a fall with a long lie is a fall
event and then nothing anywhere, and nobody back in bed, for hours; a slow SpO2 decline
lowers the daily mean about a point a day while the scatter widens; a probe-off gap is
null readings flagged `sensor_off`. Each returns a `Label` naming the alert rules any one
of which counts as catching it (`EXPECT`); an empty list means it must NOT alarm.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from detection.rules import RuleId
from device_sims.happenings import HubChange, Measurement, Silence, Timed, Transmission
from device_sims.routine import Decline, Plan, Routine, Window
from firmware_stubs.bthome import BUTTON_LONG_PRESS, BUTTON_PRESS, LOW_BATTERY_PCT

EXPECT: dict[str, tuple[RuleId, ...]] = {
    "pendant_alarm": (RuleId.PENDANT_ALARM,),
    "fall_with_press": (RuleId.FALL, RuleId.PENDANT_ALARM),
    "fall_without_press": (RuleId.FALL,),
    "fall_long_lie": (RuleId.FALL, RuleId.OUT_OF_BED_AT_NIGHT, RuleId.NO_MORNING_ACTIVITY),
    "fall_cancelled": (),
    "night_exit": (RuleId.NIGHT_EXIT,),
    "not_returned_to_bed": (RuleId.OUT_OF_BED_AT_NIGHT,),
    "no_morning_activity": (RuleId.NO_MORNING_ACTIVITY,),
    "house_unoccupied": (RuleId.HOUSE_UNOCCUPIED,),
    "door_left_open": (RuleId.DOOR_LEFT_OPEN,),
    "frequent_night_toilet": (RuleId.NIGHT_TOILET_FREQUENCY,),
    "spo2_slow_decline": (RuleId.SPO2_TREND_SPC, RuleId.SPO2_TREND_SLOPE, RuleId.SPO2_VARIABILITY, RuleId.SPO2_LOW),
    "acute_desaturation": (RuleId.SPO2_LOW,),
    "tachycardia": (RuleId.PULSE_HIGH,),
    "questionable_readings": (),
    "probe_off_gap": (),
    "missed_measurement": (RuleId.MISSED_MEASUREMENT,),
    "low_battery": (RuleId.BATTERY_LOW,),
    "device_not_seen": (RuleId.DEVICE_NOT_SEEN,),
    "hub_power_cut": (RuleId.POWER_FAILURE,),
    "hub_offline": (RuleId.HUB_OFFLINE,),
}
"""Incident kind → the detection rules (`detection.rules`) any one of which catches it."""
IncidentKind = Literal[
    "pendant_alarm", "fall_with_press", "fall_without_press", "fall_long_lie", "fall_cancelled", "night_exit",
    "not_returned_to_bed", "no_morning_activity", "house_unoccupied", "door_left_open", "frequent_night_toilet",
    "spo2_slow_decline", "acute_desaturation", "tachycardia", "questionable_readings", "probe_off_gap",
    "missed_measurement", "low_battery", "device_not_seen", "hub_power_cut", "hub_offline",
]
NEEDS_OXIMETER = frozenset({"spo2_slow_decline", "acute_desaturation", "tachycardia", "questionable_readings",
                            "probe_off_gap"})
NEEDS_SPOT_CHECKS = frozenset({"missed_measurement"})

DEFAULT_AT: dict[str, str] = {
    "pendant_alarm": "11:00", "fall_with_press": "15:00", "fall_without_press": "10:30", "fall_long_lie": "02:30",
    "fall_cancelled": "16:00", "night_exit": "03:00", "not_returned_to_bed": "01:30", "no_morning_activity": "wake",
    "house_unoccupied": "19:00", "door_left_open": "13:00", "frequent_night_toilet": "bed",
    "spo2_slow_decline": "00:00", "acute_desaturation": "14:00", "tachycardia": "16:00",
    "questionable_readings": "10:30", "probe_off_gap": "11:00", "missed_measurement": "spot",
    "low_battery": "10:00", "device_not_seen": "09:00", "hub_power_cut": "12:00", "hub_offline": "15:00",
}
"""Local time of day each incident starts by default ("wake", "bed": the resident's that day;
"spot": their first spot check)."""
DEFAULT_MINUTES: dict[str, float] = {
    "pendant_alarm": 30, "fall_with_press": 40, "fall_without_press": 10, "fall_long_lie": 330,
    "fall_cancelled": 5, "night_exit": 35, "not_returned_to_bed": 0, "no_morning_activity": 0,
    "house_unoccupied": 15 * 60, "door_left_open": 120, "frequent_night_toilet": 0, "spo2_slow_decline": 3 * 1440,
    "acute_desaturation": 90, "tachycardia": 60, "questionable_readings": 60, "probe_off_gap": 30,
    "missed_measurement": 0, "low_battery": 24 * 60, "device_not_seen": 6 * 60, "hub_power_cut": 90,
    "hub_offline": 60,
}
"""How long each lasts by default (0: decided by the routine, e.g. until the morning)."""
FALL_CANCEL_WINDOW_S = 20.0
"""The pendant's cancel window (firmware_stubs.pendant, DEFAULT_FALL_CANCEL_WINDOW_S)."""
DESATURATION_SPO2 = (86, 90)
"""Acute desaturation: readings of 86-90%, below NHS oximetry@home's 92% "999 now" line."""
TACHYCARDIA_PULSE = (125, 140)
"""NEWS2 scores a pulse of 111-130 as 2 and 131 or more as 3."""


def _iso(at: datetime) -> str:
    """UTC, whole milliseconds, with a Z, like the protocol's timestamps."""
    at = at.astimezone(UTC).replace(microsecond=at.microsecond // 1000 * 1000)
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Label:
    incident: str
    person: str
    hub_id: str
    device_id: str | None
    start: datetime
    end: datetime
    expect: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {"incident": self.incident, "person": self.person, "hub_id": self.hub_id,
                "device_id": self.device_id, "start": _iso(self.start), "end": _iso(self.end),
                "expect": list(self.expect)}


@dataclass(frozen=True)
class IncidentSpec:
    kind: str
    day: int
    """0-based day of the scenario."""
    at: str | None = None
    minutes: float | None = None
    device: str | None = None
    """The device role it concerns (low_battery, device_not_seen, door_left_open)."""


class Injector:
    """Applies incidents to one home: adds happenings, cuts windows out of its routine."""

    def __init__(self, routine: Routine, plan: Plan, rng: random.Random) -> None:
        self.r, self.plan, self.rng = routine, plan, rng
        self.added: list[Timed] = []

    def inject(self, spec: IncidentSpec) -> Label:
        handler: Callable[[IncidentSpec, datetime, timedelta], tuple[datetime, datetime, str | None]] = getattr(
            self, f"_{spec.kind}")
        start = self._start(spec)
        minutes = spec.minutes if spec.minutes is not None else DEFAULT_MINUTES[spec.kind]
        if spec.kind not in ("spo2_slow_decline",):
            self.plan.quiet_days.add(spec.day)
        begin, end, device_id = handler(spec, start, timedelta(minutes=minutes))
        return Label(spec.kind, self.r.layout.person_id, self.r.layout.hub_id, device_id, begin, end,
                     EXPECT[spec.kind])

    def _start(self, spec: IncidentSpec) -> datetime:
        at = spec.at or DEFAULT_AT[spec.kind]
        if at == "wake":
            return self.r.wake[spec.day]
        if at == "bed":
            return self.r.bed[spec.day]
        if at == "spot":
            return self.r.spot_times(spec.day)[0]
        hours, minutes = at.split(":")
        return self.r.local(spec.day, int(hours) * 60 + int(minutes))

    def _tx(self, at: datetime, role: str, **values: bool | int) -> None:
        self.added.append((at, Transmission(self.r.layout.role(role).device_id, **values)))  # type: ignore[arg-type]

    def _cut(self, start: datetime, end: datetime, scope: Literal["all", "oximetry", "device"] = "all",
             device_id: str | None = None) -> None:
        self.plan.windows.append(Window(start, end, scope, device_id))

    def _responder_arrives(self, at: datetime) -> None:
        self._tx(at, "front_door", opening=True)
        self._tx(at + timedelta(seconds=30), "front_door", opening=False)
        self._tx(at + timedelta(minutes=2), "living_room", motion=True)

    # --- alarms and falls ------------------------------------------------------------------

    def _pendant_alarm(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        self._cut(t - timedelta(minutes=1), t + d)
        self._tx(t, "pendant", help_button=BUTTON_PRESS)
        self._responder_arrives(t + d - timedelta(minutes=3))
        return t, t + d, self.r.layout.role("pendant").device_id

    def _fall_with_press(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        # The wearer presses for help inside the cancel window: one frame carries both.
        self._cut(t - timedelta(minutes=1), t + d)
        pressed = t + timedelta(seconds=10)
        self._tx(pressed, "pendant", help_button=BUTTON_PRESS, fall_channel=BUTTON_PRESS)
        self._responder_arrives(t + d - timedelta(minutes=3))
        return t, t + d, self.r.layout.role("pendant").device_id

    def _fall_without_press(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        self._cut(t - timedelta(minutes=1), t + d)
        self._tx(t + timedelta(seconds=FALL_CANCEL_WINDOW_S), "pendant", fall_channel=BUTTON_PRESS)
        self._tx(t + d, "living_room", motion=True)  # back on their feet
        return t, t + d, self.r.layout.role("pendant").device_id

    def _fall_cancelled(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        self._tx(t + timedelta(seconds=8), "pendant", fall_channel=BUTTON_LONG_PRESS)
        return t, t + d, self.r.layout.role("pendant").device_id

    def _fall_long_lie(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        """Up in the night, falls on the way to the toilet, and lies there until found."""
        up = t - timedelta(minutes=2)
        self._cut(up - timedelta(minutes=30), t + d)
        self._tx(up, "bed", occupancy=False)
        self._tx(t + timedelta(seconds=FALL_CANCEL_WINDOW_S), "pendant", fall_channel=BUTTON_PRESS)
        self._responder_arrives(t + d)
        return t, t + d, self.r.layout.role("pendant").device_id

    # --- activity ----------------------------------------------------------------------------

    def _night_exit(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        self._cut(t - timedelta(minutes=30), t + d + timedelta(minutes=20))
        self._tx(t, "bed", occupancy=False)
        self._tx(t + timedelta(minutes=3), "front_door", opening=True)
        self._tx(t + timedelta(minutes=3, seconds=20), "front_door", opening=False)
        self._tx(t + d - timedelta(minutes=4), "front_door", opening=True)
        self._tx(t + d - timedelta(minutes=3, seconds=40), "front_door", opening=False)
        self._tx(t + d, "bed", occupancy=True)
        return t, t + d, self.r.layout.role("front_door").device_id

    def _not_returned_to_bed(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime,
                                                                                        str | None]:
        """Up in the night and dozing in the armchair until the morning."""
        wake = self.r.wake[s.day] if t < self.r.wake[s.day] else self.r.wake[s.day + 1]
        end = t + d if d else wake
        self._cut(t - timedelta(minutes=30), end + timedelta(minutes=1))
        self._tx(t, "bed", occupancy=False)
        at = t + timedelta(minutes=3)
        while at < end:
            self._tx(at, "living_room", motion=True)
            at += timedelta(minutes=self.rng.uniform(30, 70))
        return t, end, self.r.layout.role("bed").device_id

    def _no_morning_activity(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime,
                                                                                        str | None]:
        """Unwell: stays in bed, nothing moves until after midday."""
        end = t + d if d else self.r.local(s.day, 12 * 60 + 45)
        self._cut(t - timedelta(minutes=1), end)
        self._tx(end, "bed", occupancy=False)
        self._tx(end + timedelta(minutes=5), "kitchen", motion=True)
        return t, end, None

    def _house_unoccupied(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        """Goes out in the evening and does not come home for the night."""
        self._cut(t - timedelta(minutes=1), t + d + timedelta(minutes=5))
        self._tx(t, "front_door", opening=True)
        self._tx(t + timedelta(seconds=20), "front_door", opening=False)
        self._tx(t + d, "front_door", opening=True)
        self._tx(t + d + timedelta(seconds=25), "front_door", opening=False)
        self._tx(t + d + timedelta(minutes=2), "living_room", motion=True)
        self.plan.quiet_days.add(s.day + 1)
        return t, t + d, None

    def _door_left_open(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        role = s.device or "front_door"
        device_id = self.r.layout.role(role).device_id
        self._cut(t - timedelta(minutes=5), t + d + timedelta(minutes=5), "device", device_id)
        self._tx(t, role, opening=True)
        self._tx(t + d, role, opening=False)
        return t, t + d, device_id

    def _frequent_night_toilet(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime,
                                                                                          str | None]:
        wake = self.r.wake[s.day + 1]
        end = t + d if d else wake
        self._cut(t + timedelta(minutes=1), end - timedelta(minutes=1))
        visits = self.rng.randint(4, 6)
        gap = (end - t) / (visits + 1)
        for n in range(1, visits + 1):
            self.r.night_visit(self.added, self.rng, t + gap * n)
        self.plan.quiet_days.add(s.day + 1)
        return t, end, None

    # --- oxygen saturation ---------------------------------------------------------------------

    def _spo2_slow_decline(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime,
                                                                                      str | None]:
        days = d.total_seconds() / 86400
        self.plan.declines.append(Decline(t, days, 1.0, self.r.end))
        # The resident stays down until the run ends (no recovery is simulated), so the label does too.
        return t, max(t + d, self.r.end), self.r.layout.role("oximeter").device_id

    def _readings(self, t: datetime, d: timedelta, every: timedelta,
                  make: Callable[[datetime], Measurement]) -> str:
        oximeter = self.r.layout.role("oximeter")
        self._cut(t - timedelta(minutes=1), t + d + timedelta(minutes=1), "oximetry")
        at = t
        while at < t + d:
            self.added.append((at, make(at)))
            at += every
        return oximeter.device_id

    def _retry(self, t: datetime, d: timedelta) -> None:
        """A spot-check user whose attempts failed tries again and gets a clean reading, so the
        measurement is not missed (the flagged readings alone must not raise anything)."""
        if self.r.person.oximetry == "spot":
            retry = t + d + timedelta(minutes=2)
            self.added.append((retry, self.r.measure(self.rng, retry, spot_check=True, plan=self.plan)))

    def _every(self) -> timedelta:
        return timedelta(minutes=10 if self.r.person.oximetry == "spot" else 2)

    def _acute_desaturation(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime,
                                                                                       str | None]:
        oximeter = self.r.layout.role("oximeter").device_id
        spot = self.r.person.oximetry == "spot"
        device_id = self._readings(t, d, self._every(), lambda at: Measurement(
            oximeter, spo2=self.rng.randint(*DESATURATION_SPO2), pulse_rate=self.rng.randint(92, 105),
            spot_check=spot))
        return t, t + d, device_id

    def _tachycardia(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        oximeter = self.r.layout.role("oximeter").device_id
        spot = self.r.person.oximetry == "spot"
        device_id = self._readings(t, d, self._every(), lambda at: Measurement(
            oximeter, spo2=self.rng.randint(95, 97), pulse_rate=self.rng.randint(*TACHYCARDIA_PULSE), spot_check=spot))
        return t, t + d, device_id

    def _questionable_readings(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime,
                                                                                          str | None]:
        """Cold fingers, a moving hand: low values the oximeter itself flags as questionable."""
        oximeter = self.r.layout.role("oximeter").device_id
        spot = self.r.person.oximetry == "spot"
        device_id = self._readings(t, d, self._every(), lambda at: Measurement(
            oximeter, spo2=self.rng.randint(82, 89), pulse_rate=self.rng.randint(55, 80), spot_check=spot,
            questionable=True))
        self._retry(t, d)
        return t, t + d, device_id

    def _probe_off_gap(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        oximeter = self.r.layout.role("oximeter").device_id
        spot = self.r.person.oximetry == "spot"
        device_id = self._readings(t, d, self._every(), lambda at: Measurement(
            oximeter, spo2=None, pulse_rate=None, spot_check=spot, probe_off=True))
        self._retry(t, d)
        return t, t + d, device_id

    def _missed_measurement(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime,
                                                                                      str | None]:
        end = t + (d if d else timedelta(minutes=120))
        self._cut(t - timedelta(minutes=1), end, "oximetry")
        return t, end, self.r.layout.role("oximeter").device_id

    # --- supervision -----------------------------------------------------------------------------

    def _low_battery(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        role = s.device or "front_door"
        self._tx(t, role, battery_pct=LOW_BATTERY_PCT - 3)
        self._tx(t + d, role, battery_pct=100)  # battery changed
        return t, t + d, self.r.layout.role(role).device_id

    def _device_not_seen(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        role = s.device or "living_room"
        device_id = self.r.layout.role(role).device_id
        self._cut(t, t + d, "device", device_id)
        self.added.append((t, Silence(device_id, True)))
        self.added.append((t + d, Silence(device_id, False)))
        return t, t + d, device_id

    def _hub_power_cut(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        self.added.append((t, HubChange("power_failure")))
        self.added.append((t + d, HubChange("power_restored")))
        return t, t + d, self.r.layout.hub_id

    def _hub_offline(self, s: IncidentSpec, t: datetime, d: timedelta) -> tuple[datetime, datetime, str | None]:
        self.added.append((t, HubChange("offline")))
        self.added.append((t + d, HubChange("online")))
        return t, t + d, None
