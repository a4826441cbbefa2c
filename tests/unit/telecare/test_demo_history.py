"""The demo's 30 days before its live day (`device_sims.demo_history`, `telecare.demo_history`), its
spaced-out scripted day (`device_sims.demo_day`) and its closing summary (`telecare.demo_summary`)."""

import secrets
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import takewhile
from pathlib import Path
from statistics import mean
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from centre_app.centre import Centre
from centre_app.settings import CentreSettings
from device_sims.demo_day import DEMO_DEVICES, DEMO_HUB_ID, schedule
from device_sims.demo_history import history
from monitoring_centre.roles import Role
from monitoring_centre.storage import Alert, Event, InboundMessage, Reading
from telecare.demo import _enrol_demo_home
from telecare.demo_history import seed_demo
from telecare.demo_summary import summary_lines
from telecare_protocol import Metric
from telecare_protocol.messages import DeviceEvent
from telecare_protocol.messages import Reading as ReadingMessage

NOW = datetime(2026, 11, 30, 10, 15, tzinfo=UTC)
LONDON = ZoneInfo("Europe/London")


def test_the_history_is_30_days_of_spot_checks_nights_and_doors_with_a_decline_at_the_end() -> None:
    messages = list(history(NOW, "Europe/London"))
    assert all(m.hub_ts is not None and m.hub_ts < NOW for m in messages)
    assert {m.device_id for m in messages} <= {d.device_id for d in DEMO_DEVICES} | {DEMO_HUB_ID}
    spo2 = [m for m in messages if isinstance(m, ReadingMessage) and m.metric == Metric.SPO2]
    by_day: dict[date, list[float]] = {}
    for reading in spo2:
        assert reading.hub_ts is not None and reading.value is not None
        by_day.setdefault(reading.hub_ts.astimezone(LONDON).date(), []).append(reading.value)
    assert len(by_day) >= 30 and min(by_day) <= (NOW - timedelta(days=30)).date()
    assert any(isinstance(m, ReadingMessage) and m.metric == Metric.PULSE_RATE for m in messages)
    days = sorted(by_day)
    usual = mean(v for day in days[-20:-5] for v in by_day[day])
    last = mean(by_day[days[-2]])  # yesterday: the third day of the decline
    assert usual - last >= 2.5, (usual, last)
    events = Counter(m.code.value for m in messages if isinstance(m, DeviceEvent))
    assert events["bed_vacated"] >= 30 and events["bed_occupied"] >= 30  # up each morning, to bed each night
    assert events["door_opened"] >= 8  # out now and then
    assert not events["manual_alarm"] and not events["fall_detected"]  # the calls are the live day's


@pytest.fixture
def centre(tmp_path: Path) -> Iterator[Centre]:
    centre = Centre(CentreSettings(database_url=f"sqlite:///{tmp_path / 'centre.db'}",
                                   jwt_secret=secrets.token_urlsafe(48), mqtt_password=secrets.token_urlsafe(16),
                                   allow_test_nhs_numbers=True))
    try:
        _enrol_demo_home(centre, {role: "a-long-demo-password-" + secrets.token_hex(4) for role in Role})
        yield centre
    finally:
        centre.engine.dispose()


def test_seeding_goes_through_the_centres_ingest_raises_a_trend_and_happens_once(centre: Centre,
                                                                                 tmp_path: Path) -> None:
    seeded = seed_demo(centre.sessions, now=NOW, timezone="Europe/London")
    assert seeded is not None and seeded.messages > 1000
    with centre.sessions() as session:
        stored = session.scalars(select(InboundMessage.hub_id)).all()
        readings = session.scalars(select(Reading).where(Reading.metric == Metric.SPO2.value)).all()
        events = session.scalars(select(Event)).all()
        alerts = session.scalars(select(Alert)).all()
        assert len(stored) == seeded.messages and set(stored) == {DEMO_HUB_ID}
        assert len({r.source_ts.astimezone(LONDON).date() for r in readings}) >= 30
        assert not any(r.clock_suspect for r in readings)  # each played on its own time, not as a late burst
        assert {e.device_id for e in events} >= {"bed-1", "front-door"}
        assert {a.rule for a in alerts} <= {"spo2_trend_spc", "spo2_trend_slope"} and alerts, \
            [(a.rule, a.title) for a in alerts]
        assert all(a.opened_at >= NOW - timedelta(days=4) for a in alerts)  # from the decline, not before

        lines = summary_lines(session, started=NOW, before=NOW + timedelta(seconds=1), data_dir=tmp_path)
    text = "\n".join(lines)
    assert lines[1] == "  raised while the demo ran: none"
    assert "from Margaret's 30 days of history: " in lines[2] and "none" not in lines[2]
    assert f"still open at the stop: {len(alerts)}" in text
    assert "calls never answered (no operator acknowledged them): 0" in text  # trends are the nurse's, not calls
    assert f"review tasks waiting for the nurse: {len(alerts)}" in text
    assert "keyholder messages sent: 0" in text and "--keep-data" in text and str(tmp_path) in text
    with centre.sessions() as session:  # what came after the stop is left out
        assert summary_lines(session, started=NOW, before=NOW - timedelta(days=10), data_dir=tmp_path)[0] \
            == "Alerts in the centre: none"

    assert seed_demo(centre.sessions, now=NOW + timedelta(minutes=5), timezone="Europe/London") is None
    with centre.sessions() as session:
        assert len(session.scalars(select(InboundMessage.id)).all()) == seeded.messages  # not played twice


def test_the_scripted_day_spaces_its_alarms_over_minutes() -> None:
    hour = Counter(action for _, action in takewhile(lambda step: step[0] < 3600, schedule()))
    assert hour["fall_detected"] == 6 and hour["help_pressed"] == 12  # not one each every 30 s (x120)
    first = dict((action, at) for at, action in reversed(list(takewhile(lambda s: s[0] < 60, schedule()))))
    assert first["help_pressed"] < 10 and first["fall_detected"] < 10  # the first call comes at once
