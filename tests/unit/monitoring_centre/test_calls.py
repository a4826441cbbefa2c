"""Calls (`monitoring_centre/calls.py`): active alerts grouped one call per person, in queue order;
one operator holds a call at a time. And the handover built from them (`handover.py`)."""

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from centre_app.auth import create_user
from detection.rules import CATALOGUE, RuleId
from monitoring_centre import call_scripts, calls, handover
from monitoring_centre.alerts import AlertState, raise_alert, transition
from monitoring_centre.call_notes import BadNote, NoteAction, add_note, in_words
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.storage import Alert, AuditEntry, CallScript, User, make_engine
from tests.support.alerting_home import T0


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'centre.db'}")
    schema.upgrade(engine)
    with sessionmaker(engine, expire_on_commit=False)() as session:
        yield session
    engine.dispose()


def person(session: Session, name: str) -> int:
    return enrol_home(session, name=name, address="1 Test Street", hub_id=f"hub-{name.lower()}", devices=[]).id


def alert(session: Session, person_id: int, rule: RuleId, minutes: float = 0) -> Alert:
    return raise_alert(session, person_id=person_id, hub_id="hub", rule=CATALOGUE[rule], subject="",
                       at=T0 + timedelta(minutes=minutes), evidence={}, why="test")


def operator(session: Session, username: str, name: str = "") -> User:
    return create_user(session, username, "a-long-enough-password", "operator", name)


def test_calls_are_most_urgent_first_then_longest_waiting(session: Session) -> None:
    ada, bob, cy = person(session, "Ada"), person(session, "Bob"), person(session, "Cy")
    alert(session, bob, RuleId.BATTERY_LOW, minutes=0)  # priority 4, the oldest
    alert(session, cy, RuleId.PENDANT_ALARM, minutes=5)
    press = alert(session, ada, RuleId.PENDANT_ALARM, minutes=3)
    fall = alert(session, ada, RuleId.FALL, minutes=1)
    low = alert(session, ada, RuleId.NO_MORNING_ACTIVITY, minutes=0.5)
    queue = calls.active_calls(session)
    assert [(c.person_name, c.priority) for c in queue] == [("Ada", 1), ("Cy", 1), ("Bob", 4)]
    assert [a.id for a in queue[0].alerts] == [fall.id, press.id, low.id]  # most urgent, then oldest
    assert queue[0].opened_at == T0 + timedelta(minutes=1)  # its most urgent alerts' earliest: the fall
    transition(session, low, AlertState.RESOLVED, "olive", outcome="false_alarm")
    transition(session, fall, AlertState.ACKNOWLEDGED, "olive")
    queue = calls.active_calls(session, matching=calls.CallFilter(statuses=frozenset({"acknowledged"})))
    assert [c.person_name for c in queue] == ["Ada"] and len(queue[0].alerts) == 2
    assert calls.active_calls(session, visible={bob}) == calls.active_calls(session, matching=calls.CallFilter(
        priorities=frozenset({4})))


def test_a_call_has_waited_since_its_most_urgent_alert_not_since_an_older_lesser_one(session: Session) -> None:
    """A help press a minute old from someone whose battery-low alert is two days old has waited a minute,
    and queues behind a press that has waited longer."""
    ada, bob = person(session, "Ada"), person(session, "Bob")
    alert(session, ada, RuleId.BATTERY_LOW, minutes=-2 * 24 * 60)
    alert(session, ada, RuleId.PENDANT_ALARM, minutes=10)
    alert(session, bob, RuleId.PENDANT_ALARM, minutes=5)
    queue = calls.active_calls(session)
    assert [(c.person_name, c.opened_at) for c in queue] == [("Bob", T0 + timedelta(minutes=5)),
                                                              ("Ada", T0 + timedelta(minutes=10))]


def test_a_nurses_review_task_is_no_call(session: Session) -> None:
    """A trend over days or a missed measurement is for the nurses (`CLINICAL_REVIEW`): not in the
    operators' queue, and taking the person's call for a press neither shows nor acknowledges it."""
    ada, bob = person(session, "Ada"), person(session, "Bob")
    trend = alert(session, ada, RuleId.SPO2_TREND_SLOPE, minutes=-24 * 60)
    alert(session, bob, RuleId.MISSED_MEASUREMENT)
    assert calls.active_calls(session) == []
    assert calls.call_of(session, ada) is None
    with pytest.raises(calls.NoCall):
        calls.take(session, ada, operator(session, "olive"))
    press = alert(session, ada, RuleId.PENDANT_ALARM, minutes=1)
    [call] = calls.active_calls(session)
    assert [a.id for a in call.alerts] == [press.id] and call.opened_at == T0 + timedelta(minutes=1)
    calls.take(session, ada, session.scalars(select(User).where(User.username == "olive")).one())
    assert press.status == AlertState.ACKNOWLEDGED and trend.status == AlertState.OPEN and trend.taken_by is None


def test_one_operator_holds_a_call_and_only_they_release_it(session: Session) -> None:
    ada = person(session, "Ada")
    alert(session, ada, RuleId.PENDANT_ALARM)
    olive, priya = operator(session, "olive", "Olive Operator"), operator(session, "priya")
    taken = calls.take(session, ada, olive, now=T0)
    assert (taken.taken_by, taken.taken_by_name, taken.taken_at) == ("olive", "Olive Operator", T0)
    with pytest.raises(calls.CallTaken, match=r"^taken by Olive Operator at 2026-11-25T02:00:00\+00:00$"):
        calls.take(session, ada, priya)
    with pytest.raises(calls.CallTaken):
        calls.release(session, ada, priya)
    assert calls.take(session, ada, olive, now=T0 + timedelta(minutes=9)).taken_at == T0  # kept from the first take
    assert calls.release(session, ada, olive).taken_by is None
    assert calls.take(session, ada, priya).taken_by_name == "priya"  # no display name: the username
    with pytest.raises(calls.NoCall):
        calls.take(session, person(session, "Bob"), olive)


def test_notes_and_the_handover(session: Session) -> None:
    ada, bob = person(session, "Ada"), person(session, "Bob")
    press = alert(session, ada, RuleId.PENDANT_ALARM)
    fall = alert(session, ada, RuleId.FALL, minutes=1)
    alert(session, bob, RuleId.HUB_OFFLINE)
    olive = operator(session, "olive", "Olive Operator")
    calls.take(session, ada, olive)
    with pytest.raises(BadNote) as bad:
        add_note(session, press, "olive", "no_further_action", "fine")
    assert bad.value.field == "reason"
    with pytest.raises(BadNote):
        add_note(session, press, "olive", "sent_a_drone", "")
    add_note(session, press, "olive", "called_back", "no answer", now=T0 + timedelta(minutes=2))
    last = add_note(session, fall, "olive", "dispatched_keyholder", "Susan going", now=T0 + timedelta(minutes=3))
    assert in_words(last) == "Sent a keyholder: Susan going"
    nfa = add_note(session, fall, "olive", NoteAction.NO_FURTHER_ACTION.value, "", "she is well",
                   now=T0 - timedelta(days=1))
    assert in_words(nfa) == "No further action (reason: she is well)"
    handover.add_note(session, "olive", "Old news", now=T0 - timedelta(hours=25))
    handover.add_note(session, "olive", "Bob's hub keeps dropping", now=T0)
    with pytest.raises(handover.BadHandoverNote):
        handover.add_note(session, "olive", "   ")
    shift = handover.handover(session, now=T0 + timedelta(minutes=5))
    assert [c.person_name for c in shift.open] == ["Bob"]
    assert [(p.call.person_name, p.latest_note.text if p.latest_note else None) for p in shift.in_progress] == [
        ("Ada", "Susan going")]
    assert [(n.by_name, n.text) for n in shift.notes] == [("Olive Operator", "Bob's hub keeps dropping")]


def test_the_migration_seeds_a_script_for_every_rule_and_an_edit_is_audited(session: Session) -> None:
    seeded = {row.rule: row for row in session.scalars(select(CallScript))}
    assert set(seeded) == {rule.value for rule in RuleId}
    assert all(row.updated_by == "seed" and row.steps and row.title for row in seeded.values())
    for script in seeded.values():
        assert all(isinstance(step, str) and step.strip() for step in script.steps)
    with pytest.raises(call_scripts.BadScript):
        call_scripts.set_script(session, "fall", "Fall", [], "admin")
    with pytest.raises(call_scripts.UnknownRule):
        call_scripts.set_script(session, "falls", "Fall", ["x"], "admin")
    call_scripts.set_script(session, "fall", " Fall ", [" Ask if they are hurt. "], "admin")
    assert call_scripts.script_for(session, "fall").steps == ("Ask if they are hurt.",)
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "edit_call_script")).one()
    assert json.loads(entry.detail)["before"]["title"] == "Fall detected"
    assert json.loads(entry.detail)["after"] == {"title": "Fall", "steps": ["Ask if they are hurt."]}
    session.delete(session.get_one(CallScript, "tamper"))
    session.flush()
    assert call_scripts.script_for(session, "tamper") == call_scripts.default(RuleId.TAMPER)  # no row: the default


def test_taking_and_releasing_are_audited_with_the_holder_before_and_after(session: Session) -> None:
    ada = person(session, "Ada")
    press = alert(session, ada, RuleId.PENDANT_ALARM)
    olive = operator(session, "olive")
    calls.take(session, ada, olive)
    calls.release(session, ada, olive)
    rows = list(session.scalars(select(AuditEntry).where(AuditEntry.action.in_(("take_call", "release_call")))
                                .order_by(AuditEntry.id)))
    assert [(row.action, row.person_id, json.loads(row.detail)) for row in rows] == [
        ("take_call", ada, {"alerts": [press.id], "before": {"taken_by": None}, "after": {"taken_by": "olive"},
                            "acknowledged": [press.id]}),
        ("release_call", ada, {"alerts": [press.id], "before": {"taken_by": "olive"}, "after": {"taken_by": None}})]


def test_taking_a_call_answers_it_and_an_alarm_that_joins_waits_to_be_acknowledged(session: Session) -> None:
    ada = person(session, "Ada")
    press = alert(session, ada, RuleId.PENDANT_ALARM)
    olive = operator(session, "olive", "Olive Operator")
    calls.take(session, ada, olive)
    assert press.status == AlertState.ACKNOWLEDGED  # the escalation stops; the KPIs count it answered
    fall = alert(session, ada, RuleId.FALL, minutes=1)  # joins the call olive holds ...
    call = calls.call_of(session, ada)
    assert call is not None and call.taken_by == "olive"
    assert {a.id: a.status for a in call.alerts} == {press.id: "acknowledged", fall.id: "open"}  # ... shown as new
    calls.take(session, ada, olive)  # the one explicit action
    assert fall.status == AlertState.ACKNOWLEDGED
    entries = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "take_call").order_by(AuditEntry.id)))
    assert [json.loads(e.detail)["acknowledged"] for e in entries] == [[press.id], [fall.id]]


def test_a_note_belongs_to_the_call_not_to_the_alarm_it_was_written_on(session: Session) -> None:
    ada, bob = person(session, "Ada"), person(session, "Bob")
    press = alert(session, ada, RuleId.PENDANT_ALARM)
    fall = alert(session, ada, RuleId.FALL, minutes=1)
    earlier = alert(session, bob, RuleId.PENDANT_ALARM)
    olive = operator(session, "olive", "Olive Operator")
    calls.take(session, ada, olive)
    add_note(session, press, "olive", "called_back", "She slipped; sitting in her chair")
    transition(session, press, AlertState.RESOLVED, "olive", outcome="false_alarm")
    session.flush()
    call = calls.call_of(session, ada)
    assert call is not None and calls.alert_ids(call) == {fall.id}
    assert calls.same_call(session, ada, calls.alert_ids(call), call.opened_at) == {fall.id, press.id}
    assert earlier.id not in calls.same_call(session, ada, calls.alert_ids(call), call.opened_at)
    (taken,) = handover.handover(session).in_progress
    assert taken.latest_note is not None and taken.latest_note.text == "She slipped; sitting in her chair"
