"""The caseload risk score (`monitoring_centre/caseload.py`): each component's points computed by
hand from the table in docs/caseload.md, the order of a caseload, and the facts read from the
database (clean readings only, the person's SpO2 scale, frailty entries)."""

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from centre_app import schema
from monitoring_centre import caseload, frailty
from monitoring_centre.caseload import AlertFact, Component, PersonFacts, ReadingFact
from monitoring_centre.enrolment import enrol_home
from monitoring_centre.frailty import Assessment, FrailtyCategory, FrailtySource
from monitoring_centre.storage import Alert, AuditEntry, InboundMessage, Reading, RuleSetting, make_engine, utc_now

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def ago(days: float = 0, hours: float = 0) -> datetime:
    return NOW - timedelta(days=days, hours=hours)


def alert(rule: str, priority: int, opened_days_ago: float, *, title: str = "", status: str = "open",
          outcome: str | None = None, repeats: int = 0, last_seen_days_ago: float | None = None) -> AlertFact:
    return AlertFact(rule=rule, title=title or rule, priority=priority, opened_at=ago(opened_days_ago),
                     last_seen_at=ago(opened_days_ago if last_seen_days_ago is None else last_seen_days_ago),
                     status=status, outcome=outcome, repeat_count=repeats)


def entry(category: FrailtyCategory, days_ago: float, source: FrailtySource = FrailtySource.ENTERED) -> Assessment:
    return Assessment(category, source, ago(days_ago), "nurse", "")


def points(risk: caseload.Risk) -> dict[Component, int]:
    return {part.component: part.points for part in risk.parts}


# The worked example of docs/caseload.md.
ADA = PersonFacts(
    person_id=1, name="Ada",
    alerts=(
        alert("pendant_alarm", 1, 2, title="Help button pressed", status="resolved", outcome="responder_visited"),
        alert("spo2_low", 2, 1, title="SpO2 low"),
        alert("out_of_bed_at_night", 2, 1.5, title="Out of bed at night", status="resolved",
              outcome="resolved_by_call"),
        alert("spo2_trend_slope", 3, 3, title="A steady change over days"),
        alert("missed_measurement", 3, 4, status="resolved", outcome="all_clear", repeats=1),
        alert("fall", 1, 10, title="Fall detected", status="closed", outcome="responder_visited"),
        alert("battery_low", 4, 1, title="Device battery low"),  # supervision: the equipment, not Ada
        alert("pendant_alarm", 1, 1, title="Help button pressed", status="resolved", outcome="false_alarm"),
        alert("spo2_low", 2, 9, title="SpO2 low", status="resolved", outcome="resolved_by_call"),  # 9 days ago
    ),
    spo2=ReadingFact(93, ago(hours=3)), pulse=ReadingFact(112, ago(hours=3)),
    frailty=entry(FrailtyCategory.MODERATE, 20), frailty_before=entry(FrailtyCategory.MILD, 80),
)


def test_the_worked_example_of_the_docs() -> None:
    risk = caseload.assess(ADA, NOW)
    assert points(risk) == {
        Component.RECENT_ALERTS: 6,  # help button 3 + SpO2 low 3 + out of bed 3 = 9, capped at 6
        Component.TREND_ALERTS: 2,  # one trend rule
        Component.MISSED_MEASUREMENTS: 2,  # one alert and one repeat: 2 missed, 1 each
        Component.LATEST_SPO2: 2,  # 93 % on Scale 1: 92-93 scores 2
        Component.LATEST_PULSE: 2,  # 112 /min: 111-130 scores 2
        Component.FALLS: 3,  # one fall 10 days ago
        Component.FRAILTY: 2,  # moderate
        Component.FRAILTY_RISING: 1,  # mild -> moderate, 20 days ago
    }
    assert risk.score == 20  # 6 + 2 + 2 + 2 + 2 + 3 + 2 + 1
    assert risk.why == (
        "3 alerts in the last 7 days: Help button pressed (emergency); Out of bed at night (urgent); SpO2 low "
        "(urgent) (9 points, at most 6 count)",
        "1 fall in the last 30 days",
        "SpO2 trend alert in the last 7 days: A steady change over days",
        "2 scheduled measurements missed in the last 7 days",
        "Latest SpO2 93% (10 Mar 09:00 UTC): NEWS2 SpO2 Scale 1 scores 2",
        "Latest pulse 112/min (10 Mar 09:00 UTC): NEWS2 scores 2",
        "Frailty moderate (eFI 0.25-0.36; entered by nurse, 18 Feb 2026)",
        "Frailty rose from mild to moderate in the last 12 months",
    )
    assert risk.not_known == ()
    assert risk.last_alert_at == ago(1)  # SpO2 low, the latest counted alert (not the false alarm)


def test_nothing_known_scores_nothing_and_says_what_it_could_not_see() -> None:
    risk = caseload.assess(PersonFacts(person_id=2, name="Bob"), NOW)
    assert risk.score == 0
    assert risk.why == ()
    assert risk.not_known == ("No clean SpO2 or pulse reading in the last 7 days: the score cannot see how they are",)
    assert [part.detail for part in risk.parts][:2] == ["no alerts in the last 7 days",
                                                        "no SpO2 trend alert in the last 7 days"]


def test_alerts_score_by_priority_and_count_while_open() -> None:
    facts = PersonFacts(person_id=3, name="Cy", alerts=(
        alert("spo2_low", 3, 2),  # review today: 2
        alert("no_morning_activity", 4, 3),  # demoted to priority 4: 1
        alert("night_exit", 2, 20, last_seen_days_ago=20),  # opened 20 days ago, still open: 3
        alert("door_left_open", 3, 12, status="resolved", outcome="resolved_by_call", last_seen_days_ago=6),  # 2
        alert("house_unoccupied", 3, 12, status="resolved", outcome="resolved_by_call", last_seen_days_ago=8),  # 0
        alert("hub_offline", 2, 1),  # supervision: 0
    ), pulse=ReadingFact(70, ago(1)))
    assert points(caseload.assess(facts, NOW))[Component.RECENT_ALERTS] == 6  # 2 + 1 + 3 + 2 = 8, capped at 6
    facts = PersonFacts(person_id=3, name="Cy", alerts=(alert("spo2_low", 3, 2), alert("no_morning_activity", 4, 3)))
    assert points(caseload.assess(facts, NOW))[Component.RECENT_ALERTS] == 3  # 2 + 1


def test_trends_count_once_per_rule_and_missed_measurements_are_capped() -> None:
    facts = PersonFacts(person_id=4, name="Di", alerts=(
        alert("spo2_trend_spc", 3, 1), alert("spo2_trend_spc", 3, 5, status="resolved", outcome="resolved_by_call"),
        alert("spo2_variability", 3, 2),
        alert("missed_measurement", 3, 1, repeats=4),  # 5 missed
    ))
    risk = caseload.assess(facts, NOW)
    assert points(risk)[Component.TREND_ALERTS] == 4  # two rules, 2 each (the SPC rule twice counts once)
    assert points(risk)[Component.MISSED_MEASUREMENTS] == 3  # 5 missed x 1 = 5, capped at 3
    assert points(risk)[Component.RECENT_ALERTS] == 0  # trends and missed measurements count in their own lines


def test_falls_count_for_30_days_and_not_as_recent_alerts() -> None:
    facts = PersonFacts(person_id=5, name="Ed", alerts=(
        alert("fall", 1, 1), alert("fall", 1, 29, status="closed", outcome="responder_visited"),
        alert("fall", 1, 31, status="closed", outcome="responder_visited"),  # too long ago
        alert("fall", 1, 2, status="resolved", outcome="false_alarm"),  # not a fall
    ))
    risk = caseload.assess(facts, NOW)
    assert points(risk)[Component.FALLS] == 6  # 2 falls x 3
    assert points(risk)[Component.RECENT_ALERTS] == 0
    assert "2 falls in the last 30 days" in risk.why


@pytest.mark.parametrize(("scale", "on_oxygen", "spo2", "expected"), [
    (1, False, 88, 3),  # Scale 1: <= 91 scores 3
    (2, False, 88, 0),  # inside the 88-92 % target
    (2, False, 97, 0),  # on air, high saturations score nothing
    (2, True, 97, 3),  # on oxygen, >= 97 scores 3
])
def test_spo2_is_scored_on_the_persons_scale(scale: int, on_oxygen: bool, spo2: float, expected: int) -> None:
    facts = PersonFacts(person_id=6, name="Flo", spo2=ReadingFact(spo2, ago(1)), spo2_scale=2 if scale == 2 else 1,
                        on_oxygen=on_oxygen)
    assert points(caseload.assess(facts, NOW))[Component.LATEST_SPO2] == expected


def test_frailty_scores_its_category_and_a_recent_rise() -> None:
    def frailty_points(current: Assessment, before: Assessment | None) -> tuple[int, int]:
        risk = caseload.assess(PersonFacts(person_id=7, name="Gus", frailty=current, frailty_before=before), NOW)
        return points(risk)[Component.FRAILTY], points(risk)[Component.FRAILTY_RISING]

    assert frailty_points(entry(FrailtyCategory.FIT, 1), None) == (0, 0)
    assert frailty_points(entry(FrailtyCategory.SEVERE, 1), None) == (3, 0)
    assert frailty_points(entry(FrailtyCategory.SEVERE, 1), entry(FrailtyCategory.MILD, 200)) == (3, 1)
    assert frailty_points(entry(FrailtyCategory.MILD, 1), entry(FrailtyCategory.MODERATE, 200)) == (1, 0)  # falling
    assert frailty_points(entry(FrailtyCategory.SEVERE, 400), entry(FrailtyCategory.MILD, 800)) == (3, 0)  # old rise
    # Confirmed a week ago, but severe since a rise 400 days ago: no recent rise.
    old_rise = PersonFacts(person_id=7, name="Gus", frailty=entry(FrailtyCategory.SEVERE, 7), frailty_since=ago(400),
                           frailty_before=entry(FrailtyCategory.MILD, 800))
    assert points(caseload.assess(old_rise, NOW))[Component.FRAILTY_RISING] == 0
    gp = caseload.assess(PersonFacts(person_id=7, name="Gus", frailty=entry(FrailtyCategory.MILD, 1,
                                                                            FrailtySource.GP_RECORD)), NOW)
    assert gp.why == ("Frailty mild (eFI 0.13-0.24; from the GP record, 09 Mar 2026)",)


def test_ties_go_to_the_most_recent_alert_then_the_name() -> None:
    def risk(person_id: int, name: str, score: int, last: datetime | None) -> caseload.Risk:
        return caseload.Risk(person_id=person_id, name=name, score=score, parts=(), why=(), last_alert_at=last)

    ordered = caseload.rank([risk(1, "Zoe", 3, None), risk(2, "Amy", 3, None), risk(3, "Max", 3, ago(2)),
                             risk(4, "Kit", 3, ago(1)), risk(5, "Bea", 5, None), risk(6, "Amy", 3, None)])
    assert [(r.name, r.person_id) for r in ordered] == [
        ("Bea", 5),  # highest score
        ("Kit", 4), ("Max", 3),  # 3 points, latest alert first
        ("Amy", 2), ("Amy", 6), ("Zoe", 1),  # 3 points, no alert: by name, then id
    ]


def test_the_table_of_weights_and_its_sources() -> None:
    assert [weight.component for weight in caseload.WEIGHTS] == list(Component)
    assert all(weight.source for weight in caseload.WEIGHTS)
    assert caseload.MAX_SCORE == 6 + 6 + 3 + 3 + 3 + 6 + 3 + 1


# The facts, from a database.

@pytest.fixture
def sessions(database_url: str) -> sessionmaker[Session]:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    return sessionmaker(engine, expire_on_commit=False)


def add_reading(session: Session, person_id: int, at: datetime, metric: str, value: float | None,
                quality: list[str] | None = None, clock_suspect: bool = False) -> None:
    message_id = str(uuid.uuid4())
    session.add(InboundMessage(id=message_id, type="reading", hub_id="hub-a", device_id="oximeter-1", source_ts=at,
                               hub_ts=at, received_at=at, payload="{}"))
    session.add(Reading(message_id=message_id, person_id=person_id, device_id="oximeter-1", metric=metric,
                        value=value, unit="%", quality=quality or [], source_ts=at, received_at=at,
                        clock_suspect=clock_suspect))


def test_facts_from_the_database(sessions: sessionmaker[Session]) -> None:
    now = utc_now()
    with sessions() as session, session.begin():
        ada = enrol_home(session, name="Ada", address="", hub_id="hub-a", devices=[])
        bob = enrol_home(session, name="Bob", address="", hub_id="hub-b", devices=[])
        add_reading(session, ada.id, now - timedelta(hours=5), "spo2", 90)  # the latest clean one
        add_reading(session, ada.id, now - timedelta(hours=4), "spo2", 80, ["questionable"])
        add_reading(session, ada.id, now - timedelta(hours=3), "spo2", 0)  # no signal, never a measurement
        add_reading(session, ada.id, now - timedelta(hours=2), "spo2", 70, clock_suspect=True)
        add_reading(session, ada.id, now - timedelta(hours=1), "pulse_rate", 135)
        add_reading(session, ada.id, now + timedelta(hours=1), "pulse_rate", 60)  # after now: not yet
        add_reading(session, bob.id, now - timedelta(days=8), "spo2", 85)  # too old
        session.add(RuleSetting(person_id=ada.id, rule="profile", params={"spo2_scale": 2}, changed_at=now,
                                changed_by="nurse", reason="COPD, target 88-92%"))
        session.add(Alert(person_id=ada.id, hub_id="hub-a", rule="fall", title="Fall detected", priority=1,
                          status="resolved", opened_at=now - timedelta(days=3), last_seen_at=now - timedelta(days=3),
                          outcome="responder_visited", explanation={}))
        session.add(Alert(person_id=ada.id, hub_id="hub-a", rule="spo2_low", title="SpO2 low", priority=2,
                          status="resolved", opened_at=now - timedelta(days=40), last_seen_at=now - timedelta(days=40),
                          outcome="resolved_by_call", explanation={}))
        frailty.set_category(session, ada.id, FrailtyCategory.MILD, by="nurse")
        frailty.set_from_gp_record(session, ada.id, FrailtyCategory.SEVERE, note="eFI 0.39")
        frailty.set_category(session, ada.id, FrailtyCategory.SEVERE, by="nurse", note="confirmed")  # no change
        ada_id, bob_id = ada.id, bob.id
    with sessions() as session, session.begin():
        facts = {f.person_id: f for f in caseload.load_facts(session, [bob_id, ada_id, 999_999], now)}
        risks = caseload.ranked_caseload(session, [ada_id, bob_id], now)
        audit = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "change_frailty")
                                     .order_by(AuditEntry.id)))
    assert set(facts) == {ada_id, bob_id}  # a person who does not exist is left out
    ada_facts = facts[ada_id]
    assert ada_facts.spo2 is not None and ada_facts.spo2.value == 90
    assert ada_facts.pulse is not None and ada_facts.pulse.value == 135
    assert (ada_facts.spo2_scale, ada_facts.on_oxygen) == (2, False)
    assert [a.rule for a in ada_facts.alerts] == ["fall"]  # the 40-day-old alert is not read
    assert ada_facts.frailty is not None and ada_facts.frailty.category == FrailtyCategory.SEVERE
    assert ada_facts.frailty.note == "confirmed"
    # The rise is dated from the GP record's entry, and the confirmation does not hide it.
    assert ada_facts.frailty_before is not None and ada_facts.frailty_before.category == FrailtyCategory.MILD
    assert ada_facts.frailty_since is not None and ada_facts.frailty_since <= ada_facts.frailty.recorded_at
    assert facts[bob_id].spo2 is None and facts[bob_id].pulse is None
    # Ada: 90 % on Scale 2 scores 0; pulse 135 scores 3; a fall 3; severe 3; rising 1.
    assert [(r.name, r.score) for r in risks] == [("Ada", 10), ("Bob", 0)]
    assert [json.loads(row.detail) for row in audit] == [
        {"before": None, "after": "mild", "source": "entered", "note": ""},
        {"before": "mild", "after": "severe", "source": "gp_record", "note": "eFI 0.39"},
        {"before": "severe", "after": "severe", "source": "entered", "note": "confirmed"},
    ]
    assert [(row.actor, row.person_id) for row in audit] == [("nurse", ada_id), (frailty.GP_RECORD_ACTOR, ada_id),
                                                             ("nurse", ada_id)]


@pytest.mark.parametrize(("efi", "category"), [
    (0.0, "fit"), (0.12, "fit"), (0.13, "mild"), (0.24, "mild"), (0.25, "moderate"), (0.36, "moderate"),
    (13 / 36, "severe"), (0.37, "severe"), (1.0, "severe"),
])
def test_efi_categories(efi: float, category: str) -> None:
    assert frailty.category_of(efi) == category
