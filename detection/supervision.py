"""Supervision: every link is watched, and a silent hub or device is an alarm of its own.

- `hub_offline` (priority 2): no heartbeat for `missed_heartbeats` x the hub's own
  `interval_s` + `grace_s` (SCAIP: the receiver supervises the heartbeat), judged on the
  centre's receive times, so a hub beating on time with a wrong clock is never offline.
  Raised on a tick; cleared by the hub's next heartbeat. A person with two hubs has one
  condition (subject ""), cleared only when every hub is beating again.
- `hub_clock_wrong` (per hub, subject the hub id; priority 4): the hub's clock is more than
  `clock.MAX_CLOCK_OFFSET` from the centre's, ahead (at once) or behind (once a live heartbeat
  confirms it), measured from `hub_ts` against the receive time (`clock.py`). Cleared when
  the estimate is within the bound again. Meanwhile the hub's messages are placed on the
  centre's clock (`clock.HubClock.place`) before any rule sees them.
- `device_not_seen` (per device): the hub's `device_not_seen` event, or a device whose
  last sign of life (any message from it, or `last_seen` in a heartbeat) is older than
  its expected interval (profile `expected_intervals`, else 25 h) + `grace_s`. Not raised
  while the device's hub is offline: the hub being offline explains it (the alerting
  pipeline's inhibition then only has to mute what was already open); nor while its hub's
  clock is in doubt (`clock.Verdict.IN_DOUBT`), when the last signs of life may be stamped
  by a slow clock. Cleared by `device_seen_again` or by fresh evidence of the device.
- `battery_low`, `tamper`, `power_failure` clear on `battery_ok`, `tamper_cleared`,
  `power_restored` (a heartbeat on mains power also restores, one on battery also fails).
- `device_fault` has no all-clear code in the protocol: an operator closes it.
- What a hub says about itself (device id = hub id: power failure and restored, its Bluetooth
  adapter or Zigbee link failing, an alarm the centre did not confirm in time, readings shed)
  raises the same rules, under a title that names the hub and what failed (`rules.hub_title`).
- `data_dropped` (priority 5: logged, never sent): the hub shed readings from its outbox.
  Each event is its own log entry with the counts in its detail; nothing to clear.

Which event code raises or clears which rule, and the titles, come from the catalogue
(`rules.py`, the same entries `events.py` reads).
"""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from detection.clock import MAX_CLOCK_OFFSET, PACE_TOLERANCE, WINDOW, WRONG, HubClock, Verdict, describe, possible
from detection.decisions import Decision, PersonContext
from detection.rules import CATALOGUE, CLEARED_BY, RAISED_BY, RuleId, RuleKind, hub_title
from telecare_protocol import DeviceEvent, Heartbeat, Message, Power, Reading

_KINDS = (RuleKind.SUPERVISION, RuleKind.LOG)
"""The catalogue's rules this module runs (alarm events are `alarms.py`'s)."""
_DEVICE_NOT_SEEN, _CLOCK_WRONG, _RIGHT = RuleId.DEVICE_NOT_SEEN, RuleId.HUB_CLOCK_WRONG, Verdict.RIGHT
"""Read once: an enum member's lookup on its class costs more than the dict test it keys (fast paths)."""


def _event_evidence(event: DeviceEvent) -> dict[str, Any]:
    return {"message_id": str(event.id), "device_id": event.device_id, "code": event.code.value,
            "source_ts": event.source_ts.isoformat(), "detail": dict(event.detail)}


class SupervisionRules:
    def __init__(self, ctx: PersonContext) -> None:
        self.ctx = ctx
        self.heartbeat: dict[str, tuple[datetime, int]] = {}
        """hub → (time of its latest heartbeat, its interval_s)."""
        self.offline: set[str] = set()
        self.last_seen: dict[tuple[str, str], datetime] = {}
        """(hub, device) → its latest sign of life."""
        self.clocks: dict[str, HubClock] = {}
        """hub → its clock, as the centre judges it (only for messages with a receive time)."""

    def hub_is_offline(self, hub: str) -> bool:
        return hub in self.offline

    def clock_in_doubt(self, hub: str | None = None) -> bool:
        """Whether the hub's (or, with no hub, any of the person's hubs') clock is in doubt (`clock.py`)."""
        hubs = [hub] if hub is not None else list(self.clocks)
        return any(h in self.clocks and self.clocks[h].verdict is Verdict.IN_DOUBT for h in hubs)

    def place(self, message: Message, received_at: datetime | None) -> tuple[list[Decision], Message]:
        """Judge the hub's clock by the message (raising or clearing `hub_clock_wrong`) and return the
        message on the engine's time axis (`clock.HubClock.place`). Without a receive time (a replay of a
        recording) nothing is judged and the message is returned as it is."""
        if received_at is None:
            return [], message
        clock = self._hub_clock(message.hub_id)
        verdict = clock.observe(message, received_at)
        return self._clock(message.hub_id, clock, verdict, received_at), clock.place(message, received_at)

    def place_reading(self, reading: Reading, received_at: datetime) -> tuple[list[Decision], Message] | None:
        """`place` for a reading, in fewer steps: None when the hub's clock is right, no `hub_clock_wrong`
        of the hub is open and the reading's times stand as stamped (nothing to raise, clear or move: the
        common case); otherwise what `place` returns. Either way the reading's sample is in, once."""
        hub = reading.hub_id
        clock = self._hub_clock(hub)
        verdict = clock.observe_stamp(reading.hub_ts, received_at, reading.id)
        if verdict is _RIGHT:
            open_ = self.ctx.open
            if (not open_ or (_CLOCK_WRONG, hub) not in open_) and possible(reading, received_at):
                return None
        return self._clock(hub, clock, verdict, received_at), clock.place(reading, received_at)

    def _hub_clock(self, hub: str) -> HubClock:
        clock = self.clocks.get(hub)
        if clock is None:
            clock = self.clocks[hub] = HubClock()
        return clock

    def _clock(self, hub: str, clock: HubClock, verdict: Verdict, now: datetime) -> list[Decision]:
        if verdict is _RIGHT and not self.ctx.open:  # the common case: nothing to raise or clear
            return []
        rule = RuleId.HUB_CLOCK_WRONG
        best, estimate = clock.best, clock.estimate
        if verdict in WRONG and best is not None and estimate is not None:
            settings = self.ctx.settings[rule]
            how = ("a message stamped later than the centre received it" if verdict is Verdict.AHEAD else
                   f"confirmed by a heartbeat received at the hub's own pace (within {PACE_TOLERANCE.seconds} s)")
            return self.ctx.raise_(
                rule, hub, settings.i("priority"), f"Hub {hub} clock wrong: {describe(estimate)}",
                {"hub_id": hub, "offset_s": round(estimate.total_seconds(), 3), "offset": describe(estimate),
                 "direction": verdict.value, "limit_s": MAX_CLOCK_OFFSET.total_seconds(),
                 "estimated_from": {"message_id": best.message_id, "hub_ts": best.hub_ts.isoformat(),
                                    "received_at": best.received_at.isoformat()},
                 "how": f"the highest hub_ts - receive time over the messages received in the last "
                        f"{WINDOW.seconds // 60} min (a delay only lowers it); {how}",
                 "consequence": "the hub's messages are placed on the centre's clock until it is right",
                 "source": settings.source("priority")}, now)
        if verdict is Verdict.RIGHT and self.ctx.open and self.ctx.is_open(rule, hub) and best is not None \
                and estimate is not None:
            return self.ctx.clear(rule, hub, now, {"why": "the hub's clock is right again", "hub_id": hub,
                                                   "offset_s": round(estimate.total_seconds(), 3),
                                                   "message_id": best.message_id})
        return []

    def fast_reading(self, reading: Reading) -> bool:
        """`message` for a reading whose device has no `device_not_seen` open: its sign of life noted as
        `message` notes it (which returns no decision then), and True; False, having changed nothing,
        otherwise (`message` then runs)."""
        device, at = reading.device_id, reading.source_ts
        open_ = self.ctx.open
        if open_ and (_DEVICE_NOT_SEEN, device) in open_:
            return False
        key = (reading.hub_id, device)
        before = self.last_seen.get(key)
        if before is None or at > before:
            self.last_seen[key] = at
        return True

    def message(self, message: Message, received_at: datetime | None = None) -> list[Decision]:
        """Signs of life in one message (already placed, `place`); `received_at` is when the centre got it."""
        decisions: list[Decision] = []
        if isinstance(message, Heartbeat):
            decisions += self._heartbeat(message, received_at or message.source_ts)
        else:
            decisions += self._seen(message.hub_id, message.device_id, message.source_ts, message.id)
        if isinstance(message, DeviceEvent):
            decisions += self._event(message)
        return decisions

    def _heartbeat(self, beat: Heartbeat, arrived: datetime) -> list[Decision]:
        """`arrived`: the receive time (the beat's own time in a replay of a recording)."""
        decisions: list[Decision] = []
        previous = self.heartbeat.get(beat.hub_id)
        if previous is None or arrived >= previous[0]:
            self.heartbeat[beat.hub_id] = (arrived, beat.interval_s)
        evidence = {"message_id": str(beat.id), "hub_id": beat.hub_id, "source_ts": beat.source_ts.isoformat(),
                    "received_at": arrived.isoformat()}
        if beat.hub_id in self.offline:
            self.offline.discard(beat.hub_id)
            if not self.offline:
                decisions += self.ctx.clear(RuleId.HUB_OFFLINE, "", arrived, {"heartbeat": evidence})
        power = self.ctx.settings[RuleId.POWER_FAILURE]
        if beat.power == Power.BATTERY:
            decisions += self.ctx.raise_(RuleId.POWER_FAILURE, "", power.i("priority"),
                                         hub_title(CATALOGUE[RuleId.POWER_FAILURE], beat.hub_id),
                                         {"why": "the hub's heartbeat says it runs on battery", "heartbeat": evidence,
                                          "source": power.source("priority")}, beat.source_ts)
        elif self.ctx.is_open(RuleId.POWER_FAILURE):
            decisions += self.ctx.clear(RuleId.POWER_FAILURE, "", beat.source_ts,
                                        {"why": "heartbeat on mains power", "heartbeat": evidence})
        for status in beat.devices:
            if status.last_seen is not None:
                decisions += self._seen(beat.hub_id, status.device_id, status.last_seen, beat.id, now=beat.source_ts)
        decisions += self._stale_devices(beat.hub_id, arrived)
        return decisions

    def _seen(self, hub: str, device: str, at: datetime, message_id: UUID,
              now: datetime | None = None) -> list[Decision]:
        """A sign of life of a device at `at` (reported at `now`): clears `device_not_seen` if it is news."""
        key = (hub, device)
        before = self.last_seen.get(key)
        news = before is None or at > before
        if news:
            self.last_seen[key] = at
        if news and self.ctx.is_open(RuleId.DEVICE_NOT_SEEN, device) and self._fresh(hub, device, now or at):
            return self.ctx.clear(RuleId.DEVICE_NOT_SEEN, device, at,
                                  {"why": "the device was heard from again", "message_id": str(message_id),
                                   "seen_at": at.isoformat()})
        return []

    def _expected(self, device: str) -> timedelta:
        rule = self.ctx.settings[RuleId.DEVICE_NOT_SEEN]
        seconds = self.ctx.profile.expected_intervals.get(device, rule.i("default_expected_s"))
        return timedelta(seconds=seconds + rule.i("grace_s"))

    def _fresh(self, hub: str, device: str, now: datetime) -> bool:
        seen = self.last_seen.get((hub, device))
        return seen is not None and now - seen <= self._expected(device)

    def _stale_devices(self, hub: str, now: datetime) -> list[Decision]:
        if hub in self.offline or self.clock_in_doubt(hub):
            return []
        decisions: list[Decision] = []
        rule = self.ctx.settings[RuleId.DEVICE_NOT_SEEN]
        for (device_hub, device), seen in sorted(self.last_seen.items()):
            if device_hub != hub or device == hub or now - seen <= self._expected(device):
                continue
            decisions += self.ctx.raise_(
                RuleId.DEVICE_NOT_SEEN, device, rule.i("priority"), f"Device {device} not heard from",
                {"device_id": device, "hub_id": hub, "last_seen": seen.isoformat(), "checked_at": now.isoformat(),
                 "expected_within_s": self._expected(device).total_seconds(),
                 "source": rule.source("default_expected_s") + "; " + rule.source("grace_s")}, now)
        return decisions

    def _event(self, event: DeviceEvent) -> list[Decision]:
        evidence = _event_evidence(event)
        raised = RAISED_BY.get(event.code)
        if raised is not None and raised.kind in _KINDS:
            rule = raised.rule
            if rule == RuleId.DEVICE_NOT_SEEN and event.hub_id in self.offline:
                return []
            subject = event.device_id if raised.per_device else ""
            if event.device_id == event.hub_id:  # the hub about itself: its power, its radios, its outbox
                title = hub_title(raised, event.hub_id, event.detail)
            else:
                title = f"{raised.title}: {subject}" if raised.per_device else raised.title
            if raised.kind is RuleKind.LOG:
                self.ctx.end_quietly(rule)  # every one is its own log entry (data_dropped: each shedding)
            settings = self.ctx.settings[rule]
            return self.ctx.raise_(rule, subject, settings.i("priority"), title,
                                   {"event": evidence, "source": settings.source("priority")}, event.source_ts,
                                   repeat=True)
        cleared = CLEARED_BY.get(event.code)
        if cleared is not None and cleared.kind in _KINDS:
            subject = event.device_id if cleared.per_device else ""
            return self.ctx.clear(cleared.rule, subject, event.source_ts, {"event": evidence})
        return []

    def tick(self, now: datetime) -> list[Decision]:
        decisions: list[Decision] = []
        for clock in self.clocks.values():
            clock.expire(now)  # a silent hub's clock is no longer in doubt, only unknown
        rule = self.ctx.settings[RuleId.HUB_OFFLINE]
        for hub in sorted(self.heartbeat):
            last, interval = self.heartbeat[hub]
            limit = timedelta(seconds=interval * rule.i("missed_heartbeats") + rule.i("grace_s"))
            if hub not in self.offline and now - last > limit:
                self.offline.add(hub)
                decisions += self.ctx.raise_(
                    RuleId.HUB_OFFLINE, "", rule.i("priority"), f"Hub {hub} offline: the home is not monitored",
                    {"hub_id": hub, "last_heartbeat": last.isoformat(), "interval_s": interval,
                     "limit_s": limit.total_seconds(), "checked_at": now.isoformat(),
                     "source": rule.source("missed_heartbeats")}, now)
            decisions += self._stale_devices(hub, now)
        return decisions
