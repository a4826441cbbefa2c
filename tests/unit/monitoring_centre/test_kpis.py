"""The answer-time KPIs (docs/kpis.md) over a real database (SQLite, and PostgreSQL with the
integration tests) of hand-written alerts and transitions with known times: every fraction,
median and 90th percentile below is worked out by hand in the comments. No wall clock: `now` is
given to `report`, and every time is written."""

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from monitoring_centre import alerts, kpis
from monitoring_centre.alert_observers import TransitionWritten, observe_transitions
from monitoring_centre.alerts import AlertState
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.kpis import observe_answer_times
from monitoring_centre.storage import Alert, AlertTransition, User, make_engine

START = datetime(2025, 3, 3, tzinfo=UTC)
END = datetime(2025, 3, 5, tzinfo=UTC)
"""The window: Monday 3 and Tuesday 4 March 2025, UTC."""
LATER = datetime(2025, 3, 10, tzinfo=UTC)
"""A `now` after the window: `as_of` is then `END`."""
OPERATOR = "op-ann"
RESPONDER = "responder:7:Kim"
ENGINE = "system:pendant_alarm"


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """A migrated database (SQLite; PostgreSQL too when integration tests run) with Ada and an operator."""
    engine = make_engine(database_url)
    schema.upgrade(engine)
    made = sessionmaker(engine, expire_on_commit=False)
    with made() as session, session.begin():
        enrol_home(session, name="Ada", address="", hub_id="hub-a", devices=[])
        session.add(User(username=OPERATOR, password_hash="not used", role="operator"))
    yield made
    engine.dispose()


def call(session: Session, raised_at: datetime, steps: Sequence[tuple[float, AlertState, str]] = (),
         priority: int = 1, outcome: str | None = None, repeats: int = 0, rule: str = "pendant_alarm") -> int:
    """An alert raised (its `open` transition) at `raised_at`, then each step: seconds after
    `raised_at`, the state it goes to, and who. Returns the alert's id."""
    state = AlertState.OPEN
    # A subject of its own: the centre keeps one active alert per person, rule and subject, and the
    # hand-built calls may be several still open at once.
    alert = Alert(person_id=1, hub_id="hub-a", rule=rule, subject=raised_at.isoformat(), title="Help",
                  priority=priority,
                  status=state, opened_at=raised_at, last_seen_at=raised_at, repeat_count=repeats,
                  outcome=outcome, explanation={})
    session.add(alert)
    session.flush()
    session.add(AlertTransition(alert_id=alert.id, at=raised_at, from_status=None, to_status=AlertState.OPEN,
                                by=ENGINE, note=""))
    for seconds, to, by in steps:
        session.add(AlertTransition(alert_id=alert.id, at=raised_at + timedelta(seconds=seconds), from_status=state,
                                    to_status=to, by=by, note=""))
        state = to
    alert.status = state
    return alert.id


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, second, tzinfo=UTC)


ACK, PROGRESS, RESOLVED = AlertState.ACKNOWLEDGED, AlertState.IN_PROGRESS, AlertState.RESOLVED


def test_two_hand_built_days_give_the_figures_worked_out_by_hand(sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        ids = {
            # alarm calls (priority 1 to 3), answered by the operator after the seconds shown
            "a1": call(session, at(4, 8), [(20, ACK, OPERATOR), (100, PROGRESS, RESPONDER),
                                           (600, RESOLVED, OPERATOR)], outcome="responder_visited", repeats=4),
            "a2": call(session, at(4, 9), [(60, ACK, OPERATOR), (300, RESOLVED, OPERATOR)],
                       outcome="false_alarm"),  # exactly 60 s: within 60 s
            "a3": call(session, at(4, 10), [(45, ACK, OPERATOR), (1200, RESOLVED, OPERATOR)], priority=2,
                       outcome="resolved_by_call"),
            "a4": call(session, at(4, 11), [(61, ACK, OPERATOR)], priority=2),  # a second late for 60 s
            "a5": call(session, at(4, 12), [(200, ACK, OPERATOR), (400, RESOLVED, OPERATOR)], priority=3,
                       outcome="false_alarm"),  # after 3 minutes: an exception report
            "a6": call(session, at(4, 13), [(30, RESOLVED, OPERATOR)],
                       outcome="false_alarm"),  # resolved straight from open by the operator: answered at 30 s
            "a7": call(session, at(4, 14), [(10, RESOLVED, ENGINE)],
                       outcome="all_clear"),  # the all-clear: nobody answered
            "a8": call(session, at(4, 15), [(90, ACK, RESPONDER), (90, PROGRESS, RESPONDER)]),  # a keyholder first
            "a9": call(session, END - timedelta(seconds=100),
                       [(110, ACK, OPERATOR)]),  # open for 100 s at `to`; answered after `to`: not read
            "a10": call(session, END - timedelta(seconds=30)),  # open for 30 s at `to`
            "a11": call(session, at(3, 23, 59, 30), [(40, ACK, OPERATOR)]),  # raised on the 3rd, answered on the 4th
            # supervision (priority 4): reported apart
            "s1": call(session, at(3, 10), [(500, ACK, OPERATOR)], priority=4),
            "s2": call(session, at(4, 16), [(50, RESOLVED, "system:battery_low")], priority=4, outcome="all_clear"),
        }
        # outside the window: raised before `from`, and at `to` itself (exclusive)
        call(session, START - timedelta(seconds=1), [(5, ACK, OPERATOR)])
        call(session, END, [(5, ACK, OPERATOR)])

    with sessions() as session:
        report = kpis.report(kpis.read_calls(session, START, END), START, END, now=LATER)

    assert (report.start, report.end, report.as_of) == (START, END, END)
    calls = report.alarm_calls
    # 11 alarm calls: a1 to a11 (a1's four repeats are the same call)
    assert calls.alarms == 11 and calls.targets_apply
    # answered by an operator: a1 20, a2 60, a3 45, a4 61, a5 200, a6 30, a11 40 -> 7 answered;
    # sorted 20 30 40 45 60 61 200; median rank ceil(7 * 0.5) = 4 -> 45; p90 rank ceil(7 * 0.9) = 7 -> 200
    assert calls.answered == 7
    assert calls.time_to_answer == kpis.Durations(7, 45.0, 200.0)
    # within 60 s: 20 30 40 45 60 -> 5. Decided: the 7 answered, a7 and a8 (ended unanswered), and a9
    # (open, 100 s old at `to`, > 60) -> 10; a10 (30 s old) is pending. 5 / 10 = 0.5 < 0.975: not met.
    sixty, one_eighty = calls.within
    assert sixty == kpis.TargetResult(within_s=60, target=0.975, answered_within=5, decided=10, pending=1,
                                      fraction=0.5, met=False)
    # within 180 s: all answered but a5 (200) -> 6. Decided: 7 + a7 + a8 = 9 (a9 at 100 s and a10 at
    # 30 s are not yet older than 180 s: pending 2). 6 / 9 < 0.99: not met.
    assert one_eighty == kpis.TargetResult(within_s=180, target=0.99, answered_within=6, decided=9, pending=2,
                                           fraction=6 / 9, met=False)
    # accepted: a1 at 100, a8 at 90 -> sorted 90 100; median rank ceil(2 * 0.5) = 1 -> 90; p90 rank ceil(1.8) = 2 -> 100
    assert calls.time_to_accept == kpis.Durations(2, 90.0, 100.0)
    # resolved: a1 600, a2 300, a3 1200, a5 400, a6 30, a7 10 -> sorted 10 30 300 400 600 1200;
    # median rank ceil(6 * 0.5) = 3 -> 300; p90 rank ceil(6 * 0.9) = ceil(5.4) = 6 -> 1200
    assert calls.time_to_resolve == kpis.Durations(6, 300.0, 1200.0)
    assert calls.outcomes == {"all_clear": 1, "false_alarm": 3, "resolved_by_call": 1, "responder_visited": 1}
    assert calls.answered_late_ids == (ids["a5"],)
    assert calls.unanswered_ids == (ids["a9"], ids["a10"])
    assert calls.ended_unanswered_ids == (ids["a7"], ids["a8"])

    supervision = report.supervision
    # s1 answered at 500 s, s2 ended by the all-clear at 50 s: within 60 s 0 of 2 decided; no target applies
    assert (supervision.alarms, supervision.answered, supervision.targets_apply) == (2, 1, False)
    assert [(r.answered_within, r.decided, r.fraction, r.met) for r in supervision.within] == [(0, 2, 0.0, None),
                                                                                            (0, 2, 0.0, None)]
    assert supervision.answered_late_ids == (ids["s1"],)
    assert supervision.outcomes == {"all_clear": 1}

    by_priority = {figures.priority: figures for figures in report.by_priority}
    assert sorted(by_priority) == [1, 2, 3, 4, 5, 9]
    assert [by_priority[p].alarms for p in (1, 2, 3, 4, 5, 9)] == [8, 2, 1, 2, 0, 0]
    # priority 2: a3 45 and a4 61 -> within 60 s 1 of 2; median rank 1 -> 45, p90 rank 2 -> 61
    assert by_priority[2].within[0].fraction == 0.5 and by_priority[2].time_to_answer == kpis.Durations(2, 45.0, 61.0)
    assert by_priority[4].targets_apply is False and by_priority[1].targets_apply is True
    assert by_priority[5].time_to_answer == kpis.Durations(0, None, None) and by_priority[5].within[0].fraction is None


def test_the_day_of_a_call_is_the_utc_day_it_was_raised_even_when_answered_after_midnight(
        sessions: sessionmaker[Session]) -> None:
    with sessions() as session, session.begin():
        call(session, at(3, 23, 59, 30), [(40, ACK, OPERATOR)])  # answered at 00:00:10 on the 4th
        call(session, at(4, 0, 0, 0), [(15, ACK, OPERATOR)])  # midnight itself belongs to the 4th
        call(session, at(4, 6), [(75, ACK, OPERATOR)])
        supervision = call(session, at(3, 10), [(500, ACK, OPERATOR)], priority=4)
    with sessions() as session:
        report = kpis.report(kpis.read_calls(session, START, END), START, END, now=LATER)

    assert [day.day.isoformat() for day in report.by_day] == ["2025-03-03", "2025-03-04"]
    monday, tuesday = report.by_day
    assert (monday.alarm_calls.alarms, monday.alarm_calls.time_to_answer) == (1, kpis.Durations(1, 40.0, 40.0))
    assert monday.alarm_calls.within[0].fraction == 1.0 and monday.alarm_calls.within[0].met is True
    assert monday.supervision.alarms == 1 and monday.supervision.answered_late_ids == (supervision,)
    # the 4th: 15 s and 75 s -> 1 of 2 within 60 s; median rank 1 -> 15, p90 rank 2 -> 75
    assert tuesday.alarm_calls.alarms == 2 and tuesday.alarm_calls.within[0].fraction == 0.5
    assert tuesday.alarm_calls.time_to_answer == kpis.Durations(2, 15.0, 75.0)
    assert tuesday.supervision.alarms == 0


def test_a_window_of_part_days_lists_every_day_it_touches(sessions: sessionmaker[Session]) -> None:
    start, end = at(3, 18), at(6, 6)
    with sessions() as session:
        report = kpis.report(kpis.read_calls(session, start, end), start, end, now=LATER)
    assert [day.day.day for day in report.by_day] == [3, 4, 5, 6]
    assert all(day.alarm_calls.alarms == 0 and day.alarm_calls.within[0].fraction is None for day in report.by_day)


@pytest.mark.parametrize(("answered_after", "within"), [
    (timedelta(seconds=60), True),
    (timedelta(seconds=60, microseconds=1), False),
    (timedelta(seconds=59, microseconds=999_999), True),
])
def test_answered_at_exactly_60_s_is_within_60_s(sessions: sessionmaker[Session], answered_after: timedelta,
                                                within: bool) -> None:
    with sessions() as session, session.begin():
        alert_id = call(session, at(4, 9))
        session.add(AlertTransition(alert_id=alert_id, at=at(4, 9) + answered_after, from_status=AlertState.OPEN,
                                    to_status=ACK, by=OPERATOR, note=""))
    with sessions() as session:
        sixty = kpis.report(kpis.read_calls(session, START, END), START, END, now=LATER).alarm_calls.within[0]
    assert (sixty.answered_within, sixty.decided, sixty.met) == ((1, 1, True) if within else (0, 1, False))


def test_an_open_call_counts_against_a_target_only_once_older_than_it(sessions: sessionmaker[Session]) -> None:
    """`to` after now: ages are taken now. Open for 59 s: pending for both targets; for 61 s: a miss for
    60 s, pending for 180 s; for 181 s: a miss for both. Each is listed as unanswered."""
    now = at(4, 12)
    end = at(5, 0)
    with sessions() as session, session.begin():
        ids = [call(session, now - timedelta(seconds=age)) for age in (59, 61, 181)]
    with sessions() as session:
        report = kpis.report(kpis.read_calls(session, START, end), START, end, now=now)
    assert report.as_of == now
    sixty, one_eighty = report.alarm_calls.within
    assert (sixty.decided, sixty.pending, sixty.fraction, sixty.met) == (2, 1, 0.0, False)
    assert (one_eighty.decided, one_eighty.pending, one_eighty.fraction) == (1, 2, 0.0)
    assert report.alarm_calls.unanswered_ids == tuple(ids)
    assert report.alarm_calls.answered == 0 and report.alarm_calls.time_to_answer.median_s is None


def test_a_call_only_just_raised_decides_nothing(sessions: sessionmaker[Session]) -> None:
    now = at(4, 12)
    with sessions() as session, session.begin():
        call(session, now - timedelta(seconds=5))
    with sessions() as session:
        report = kpis.report(kpis.read_calls(session, START, END), START, END, now=now)
    assert [(r.decided, r.pending, r.fraction, r.met) for r in report.alarm_calls.within] == [(0, 1, None, None)] * 2


def test_the_targets_and_their_source() -> None:
    assert [(t.within_s, t.fraction) for t in kpis.ANSWER_TARGETS] == [(60, 0.975), (180, 0.99)]
    assert all("TEC Quality" in t.source for t in kpis.ANSWER_TARGETS)
    assert {60.0, 180.0} <= set(kpis.HISTOGRAM_BUCKETS_S)


@pytest.mark.parametrize(("values", "median", "p90"), [
    ([], None, None),
    ([7.0], 7.0, 7.0),
    ([1.0, 2.0], 1.0, 2.0),  # median rank ceil(1) = 1; p90 rank ceil(1.8) = 2
    ([float(v) for v in range(1, 11)], 5.0, 9.0),  # ten values: ranks 5 and 9
    ([float(v) for v in range(1, 12)], 6.0, 10.0),  # eleven: ranks ceil(5.5) = 6 and ceil(9.9) = 10
])
def test_percentiles_are_nearest_rank(values: list[float], median: float | None, p90: float | None) -> None:
    assert kpis.durations(reversed(values)) == kpis.Durations(len(values), median, p90)


def test_the_window_defaults_to_the_last_7_days_and_refuses_backwards_or_overlong_ones() -> None:
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    assert kpis.window(None, None, now) == (now - timedelta(days=7), now)
    naive = datetime(2025, 3, 1)
    assert kpis.window(naive, None, now) == (naive.replace(tzinfo=UTC), now)
    plus_one = datetime(2025, 3, 2, 1, tzinfo=timezone(timedelta(hours=1)))  # midnight UTC
    assert kpis.window(None, plus_one, now) == (datetime(2025, 2, 23, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))
    for start, end, bound in [(now, now, "to"), (now, now - timedelta(seconds=1), "to"),
                              (now - timedelta(days=400, seconds=1), now, "from"),
                              (None, datetime.min, "to")]:
        with pytest.raises(kpis.WindowRefused) as refused:
            kpis.window(start, end, now)
        assert refused.value.bound == bound
    assert kpis.window(now - timedelta(days=400), now, now)[0] == now - timedelta(days=400)


def test_a_nurses_review_task_is_no_call(sessions: sessionmaker[Session]) -> None:
    """A trend over days (priority 3, as the catalogue has it) is the nurses' to review: the operators never
    see it, so it is neither an alarm call against the targets nor an answer time in /metrics."""
    registry = CollectorRegistry()
    observe_answer_times(sessions, registry)
    now = at(4, 12)
    with sessions() as session, session.begin():
        call(session, now - timedelta(seconds=30), [(20, ACK, OPERATOR)])
        call(session, now - timedelta(hours=5), [(4 * 3600, ACK, OPERATOR)], priority=3, rule="spo2_trend_slope")
        call(session, now - timedelta(hours=2), priority=3, rule="missed_measurement")
        call(session, now - timedelta(seconds=10))
    with sessions() as session:
        report = kpis.report(kpis.read_calls(session, START, END), START, END, now=now)
    assert (report.alarm_calls.alarms, report.alarm_calls.answered) == (2, 1)
    with sessions() as session, session.begin():  # the open press and the open review task, answered now
        for alert in session.scalars(select(Alert).where(Alert.status == AlertState.OPEN)):
            alerts.transition(session, alert, ACK, OPERATOR)
    answered = {sample.labels["priority"]: sample.value for metric in registry.collect() for sample in metric.samples
                if sample.name == "telecare_alert_answer_seconds_count"}
    assert answered == {"1": 1.0}


def test_observers_hear_of_a_transition_only_once_it_is_committed(sessions: sessionmaker[Session]) -> None:
    heard: list[TransitionWritten] = []
    observe_transitions(sessions, heard.append)
    with sessions() as session, session.begin():
        first, second = call(session, at(4, 8)), call(session, at(4, 9))

    with sessions() as session:  # rolled back: nothing happened
        alerts.transition(session, session.get_one(Alert, first), ACK, OPERATOR)
        session.rollback()
    assert heard == []

    with sessions() as session:
        with session.begin_nested() as savepoint:  # a savepoint rolled back inside a committed transaction
            alerts.transition(session, session.get_one(Alert, second), ACK, OPERATOR)
            savepoint.rollback()
        with session.begin_nested():  # a savepoint released: heard when the whole transaction commits
            alerts.transition(session, session.get_one(Alert, first), ACK, OPERATOR)
        assert heard == []
        session.commit()
    assert [(h.alert_id, h.before, h.after, h.by, h.by_account, h.raised_at) for h in heard] == [
        (first, AlertState.OPEN, ACK, OPERATOR, True, at(4, 8))]

    with sessions() as session:  # closed without a commit
        alerts.transition(session, session.get_one(Alert, second), RESOLVED, ENGINE, outcome="all_clear")
    with sessions() as session:
        alerts.transition(session, session.get_one(Alert, second), RESOLVED, ENGINE, outcome="all_clear")
        session.commit()
    assert [(h.alert_id, h.after, h.by_account) for h in heard[1:]] == [(second, RESOLVED, False)]


def test_days_are_the_centres_local_days_when_a_zone_is_given() -> None:
    """A call at 23:30 UTC on 1 July is at 00:30 on 2 July in UK summer time: the operator's page
    (Europe/London) counts it on 2 July, the API (UTC) on 1 July; in winter both agree."""
    def call(alert_id: int, at: datetime) -> kpis.Call:
        return kpis.Call(alert_id, 1, at, at + timedelta(seconds=20), True, None, None, None)

    summer = datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    winter = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)
    for at, local_day in ((summer, 2), (winter, 1)):
        start, end = at.replace(hour=0, minute=0) - timedelta(days=1), at.replace(hour=0, minute=0) + timedelta(days=2)
        by_zone = {
            zone: {d.day.day: d.alarm_calls.alarms for d in kpis.report([call(1, at)], start, end, end, zone).by_day}
            for zone in (UTC, ZoneInfo("Europe/London"))}
        assert [day for day, alarms in by_zone[UTC].items() if alarms] == [1]
        assert [day for day, alarms in by_zone[ZoneInfo("Europe/London")].items() if alarms] == [local_day]
