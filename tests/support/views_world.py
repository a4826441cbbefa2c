"""The views of issue 13 on top of `api_world`: a month of Ada's home measurements and activity, a
trend alert and a missed measurement to review, and Ada's daughter as her keyholder with an open
request.

Added to Ada (the nurse's; the daughter gets consent only where a test gives it):
- spot checks of SpO2 (three a day, 95-97 %, sinking to 92-93 % over the last two days) and pulse,
  with one flagged reading a day (questionable, a made-up low value, never a result);
- a bed mat, a toilet and a kitchen sensor; each night to bed at 22:30, one toilet visit at 03:00
  (out of bed 10 min), up at 07:30 (kitchen); three visits the night before last;
- an open `spo2_trend_spc` alert (with the engine's explanation) and a `missed_measurement` alert;
- the responder "Ada's daughter" (keyholder), linked to the `daughter` account, with a sent
  notification of Ada's help-button alarm carrying an accept link.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerting.acceptance import accept_token, link_key
from alerting.tables import Notification
from detection.rules import RuleId
from monitoring_centre.alerts import AlertState
from monitoring_centre.storage import (
    Alert,
    AlertTransition,
    ContactPoint,
    Device,
    Event,
    InboundMessage,
    PersonContact,
    Reading,
    Responder,
    ResponderAccount,
    User,
    utc_now,
)
from tests.support.api_world import World

FLAGGED_VALUE = 71.0
"""The made-up value of the flagged reading of each day: never charted as a result."""


@dataclass(frozen=True)
class Views:
    trend_alert: int
    missed_alert: int
    notification: int
    responder: int


def _message(session: Session, kind: str, hub: str, device: str, at: datetime) -> str:
    message_id = str(uuid.uuid4())
    session.add(InboundMessage(id=message_id, type=kind, hub_id=hub, device_id=device, source_ts=at, hub_ts=at,
                               received_at=at, payload="{}"))
    session.flush()
    return message_id


def _reading(session: Session, person_id: int, at: datetime, metric: str, value: float,
             quality: list[str] | None = None) -> None:
    message_id = _message(session, "reading", "hub-ada", "oximeter-1", at)
    session.add(Reading(message_id=message_id, person_id=person_id, device_id="oximeter-1", metric=metric, value=value,
                        unit="%" if metric == "spo2" else "/min", quality=quality or [], source_ts=at, received_at=at))


def _event(session: Session, person_id: int, at: datetime, device: str, device_type: str, code: str) -> None:
    message_id = _message(session, "event", "hub-ada", device, at)
    session.add(Event(message_id=message_id, person_id=person_id, hub_id="hub-ada", device_id=device,
                      device_type=device_type, code=code, priority=5, detail={}, source_ts=at, received_at=at))


def _alert(session: Session, person_id: int, rule: RuleId, title: str, at: datetime, detail: dict[str, Any]) -> int:
    alert = Alert(person_id=person_id, hub_id="hub-ada", rule=rule.value, subject="", title=title, priority=3,
                  status=AlertState.OPEN, opened_at=at, last_seen_at=at, repeat_count=0,
                  explanation={"rule": rule.value, "why": "test", "evidence": [], "detail": detail})
    session.add(alert)
    session.flush()
    session.add(AlertTransition(alert_id=alert.id, at=at, from_status=None, to_status="open", by=f"system:{rule}",
                                note="test"))
    return alert.id


def add_views(sessions: sessionmaker[Session], world: World, days: int = 30) -> Views:
    """Adds the month described in the module docstring; returns the ids tests need."""
    ada = world.people["ada"]
    now = utc_now()
    with sessions() as session, session.begin():
        for device, kind, where in (("bed-1", "bed", "bed"), ("toilet-1", "motion", "toilet"),
                                    ("kitchen-1", "motion", "kitchen"), ("oximeter-1", "oximeter", "")):
            session.add(Device(hub_id="hub-ada", id=device, kind=kind, location=where))
        today = now.astimezone(UTC).date()
        for back in range(days, -1, -1):
            day = today - timedelta(days=back)
            base = datetime(day.year, day.month, day.day, tzinfo=UTC)
            low = back <= 1
            for index, hour in enumerate((8, 13, 19)):
                at = base + timedelta(hours=hour, minutes=5)
                if at >= now:
                    continue
                spo2 = (92.0 + index % 2) if low else (95.0 + (back + index) % 3)
                _reading(session, ada, at, "spo2", spo2)
                _reading(session, ada, at, "pulse_rate", 78.0 + (back + index) % 7)
            flagged_at = base + timedelta(hours=13, minutes=7)
            if flagged_at < now:
                _reading(session, ada, flagged_at, "spo2", FLAGGED_VALUE, ["questionable"])
            night = base + timedelta(hours=22, minutes=30)
            steps = [(timedelta(0), "bed-1", "bed_monitor", "bed_occupied")]
            visits = (3.0,) if back != 2 else (1.0, 3.0, 4.5)
            for hours in visits:
                steps += [(timedelta(hours=hours + 1.5), "bed-1", "bed_monitor", "bed_vacated"),
                          (timedelta(hours=hours + 1.5, minutes=2), "toilet-1", "motion_sensor", "activity"),
                          (timedelta(hours=hours + 1.5, minutes=10), "bed-1", "bed_monitor", "bed_occupied")]
            steps += [(timedelta(hours=9), "bed-1", "bed_monitor", "bed_vacated"),
                      (timedelta(hours=9, minutes=5), "kitchen-1", "motion_sensor", "activity")]
            for offset, device, device_type, code in steps:
                if night + offset < now:
                    _event(session, ada, night + offset, device, device_type, code)
        trend = _alert(session, ada, RuleId.SPO2_TREND_SPC,
                       "Daily mean 92.5 below the person's 7-day baseline (94.2) on 2 of the last 3 days",
                       now - timedelta(hours=3), {
                           "baseline": {"mean": 96.0, "sd": 0.8, "limit": 94.2, "days": 7},
                           "days": [{"date": str(today - timedelta(days=1)), "mean": 92.5, "readings": 3,
                                     "beyond": True, "limit": 94.2},
                                    {"date": str(today), "mean": 92.5, "readings": 2, "beyond": True, "limit": 94.2}],
                           "source": "SPC: 7-day rolling mean - 1.645 SD"})
        missed = _alert(session, ada, RuleId.MISSED_MEASUREMENT, "Scheduled SpO2 measurement at 10:00 missed",
                        now - timedelta(hours=26), {"scheduled": "10:00", "window": ["09:30", "10:30"],
                                                    "last_clean_reading": None})
        responder = Responder(name="Ada's daughter", role="keyholder", active=True)
        session.add(responder)
        session.flush()
        session.add(ContactPoint(responder_id=responder.id, address="mailto:daughter@example.invalid", position=0))
        session.add(PersonContact(person_id=ada, responder_id=responder.id, position=0, nominated_at=now))
        daughter = session.scalars(select(User).where(User.username == "daughter")).one()
        session.add(ResponderAccount(user_id=daughter.id, responder_id=responder.id, linked_at=now, linked_by="test"))
        reference = f"{world.alerts['ada']}/0/1/{responder.id}/0"
        _token, token_hash = accept_token(link_key(session), reference)
        notification = Notification(alert_id=world.alerts["ada"], responder_id=responder.id,
                                    responder_name=responder.name, address="mailto:daughter@example.invalid",
                                    reference=reference, purpose="escalation", reason="keyholder, first in the chain",
                                    status="sent", attempts=1, created_at=now, sent_at=now,
                                    accept_token_hash=token_hash)
        session.add(notification)
        session.flush()
        return Views(trend_alert=trend, missed_alert=missed, notification=notification.id, responder=responder.id)
