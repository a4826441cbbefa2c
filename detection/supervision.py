"""Supervision: every link is watched, and a silent hub or device is an alarm of its own.

- `hub_offline` (priority 2): no heartbeat for `missed_heartbeats` x the hub's own
  `interval_s` + `grace_s` (SCAIP: the receiver supervises the heartbeat). Raised on a
  tick; cleared by the hub's next heartbeat. A person with two hubs has one condition
  (subject ""), cleared only when every hub is beating again.
- `device_not_seen` (per device): the hub's `device_not_seen` event, or a device whose
  last sign of life (any message from it, or `last_seen` in a heartbeat) is older than
  its expected interval (profile `expected_intervals`, else 25 h) + `grace_s`. Not raised
  while the device's hub is offline: the hub being offline explains it (the alerting
  pipeline's inhibition then only has to mute what was already open). Cleared by
  `device_seen_again` or by fresh evidence of the device.
- `battery_low`, `tamper`, `power_failure` clear on `battery_ok`, `tamper_cleared`,
  `power_restored` (a heartbeat on mains power also restores, one on battery also fails).
- `device_fault` has no all-clear code in the protocol: an operator closes it.
- `data_dropped` (priority 5: logged, never sent): the hub shed readings from its outbox.
  Each event is its own log entry with the counts in its detail; nothing to clear.

Which event code raises or clears which rule, and the titles, come from the catalogue
(`rules.py`, the same entries `events.py` reads).
"""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from detection.decisions import Decision, PersonContext
from detection.rules import CATALOGUE, CLEARED_BY, RAISED_BY, RuleId, RuleKind
from telecare_protocol import DeviceEvent, Heartbeat, Message, Power

_KINDS = (RuleKind.SUPERVISION, RuleKind.LOG)
"""The catalogue's rules this module runs (alarm events are `alarms.py`'s)."""


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

    def hub_is_offline(self, hub: str) -> bool:
        return hub in self.offline

    def message(self, message: Message) -> list[Decision]:
        decisions: list[Decision] = []
        if isinstance(message, Heartbeat):
            decisions += self._heartbeat(message)
        else:
            decisions += self._seen(message.hub_id, message.device_id, message.source_ts, message.id)
        if isinstance(message, DeviceEvent):
            decisions += self._event(message)
        return decisions

    def _heartbeat(self, beat: Heartbeat) -> list[Decision]:
        decisions: list[Decision] = []
        previous = self.heartbeat.get(beat.hub_id)
        if previous is None or beat.source_ts >= previous[0]:
            self.heartbeat[beat.hub_id] = (beat.source_ts, beat.interval_s)
        evidence = {"message_id": str(beat.id), "hub_id": beat.hub_id, "source_ts": beat.source_ts.isoformat()}
        if beat.hub_id in self.offline:
            self.offline.discard(beat.hub_id)
            if not self.offline:
                decisions += self.ctx.clear(RuleId.HUB_OFFLINE, "", beat.source_ts, {"heartbeat": evidence})
        power = self.ctx.settings[RuleId.POWER_FAILURE]
        if beat.power == Power.BATTERY:
            decisions += self.ctx.raise_(RuleId.POWER_FAILURE, "", power.i("priority"),
                                         CATALOGUE[RuleId.POWER_FAILURE].title,
                                         {"why": "the hub's heartbeat says it runs on battery", "heartbeat": evidence,
                                          "source": power.source("priority")}, beat.source_ts)
        elif self.ctx.is_open(RuleId.POWER_FAILURE):
            decisions += self.ctx.clear(RuleId.POWER_FAILURE, "", beat.source_ts,
                                        {"why": "heartbeat on mains power", "heartbeat": evidence})
        for status in beat.devices:
            if status.last_seen is not None:
                decisions += self._seen(beat.hub_id, status.device_id, status.last_seen, beat.id, now=beat.source_ts)
        decisions += self._stale_devices(beat.hub_id, beat.source_ts)
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
        if hub in self.offline:
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
