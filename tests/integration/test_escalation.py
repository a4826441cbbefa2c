"""Escalation chains, run by the real escalator on a real SQLite database, delivering to a
real SMTP server. Time is the escalator's clock, moved by the test."""

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from alerting import acceptance, escalation, snapshot
from alerting.channels import InternalTargets, SmtpSettings
from alerting.escalator import AlertingMetrics, AlertingSettings, Escalator
from alerting.policy import ACKNOWLEDGED_REMINDER_S
from alerting.tables import Escalation, Notification
from centre_app import schema
from detection.events import DEVICE_NOT_SEEN, HUB_OFFLINE, PENDANT_ALARM, POWER_FAILURE
from monitoring_centre import alerts
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.storage import Alert, AuditEntry, ContactPoint, Person, PersonContact, Responder, make_engine
from tests.support.centre import wait_for
from tests.support.smtp_server import SmtpServer, silent_server, smtp_server
from tests.support.webhook import Webhook

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
LOOPBACK = InternalTargets.parse(["127.0.0.0/8"])
"""The test webhooks listen on loopback, which the centre refuses unless told otherwise."""


@dataclass
class World:
    sessions: sessionmaker[Session]
    person_id: int
    smtp: SmtpServer
    clock: list[datetime]

    def escalator(self, **overrides: Any) -> Escalator:
        settings = AlertingSettings(public_url="http://centre.test", internal_targets=LOOPBACK,
                                    smtp=SmtpSettings(host=self.smtp.host, port=self.smtp.port, starttls=False,
                                                      mail_from="alerts@centre.test", timeout_s=5))
        return Escalator(self.sessions, replace(settings, **overrides), AlertingMetrics(CollectorRegistry()),
                         clock=lambda: self.clock[0])

    def at(self, seconds: float) -> datetime:
        self.clock[0] = T0 + timedelta(seconds=seconds)
        return self.clock[0]

    def raise_alert(self, rule: object = PENDANT_ALARM, subject: str = "") -> int:
        with self.sessions() as session:
            alert = alerts.raise_alert(session, person_id=self.person_id, hub_id="hub-1", rule=rule,  # type: ignore[arg-type]
                                       subject=subject, at=self.clock[0], evidence={"code": "test"},
                                       why="a test alarm")
            session.commit()
            return alert.id

    def mail_to(self, address: str) -> list[str]:
        return [m.text for m in self.smtp.mailbox.received if address in m.rcpt_tos]

    def notifications(self, alert_id: int) -> list[Notification]:
        with self.sessions() as session:
            return list(session.scalars(select(Notification).where(Notification.alert_id == alert_id)
                                        .order_by(Notification.id)))

    def escalation(self, alert_id: int) -> Escalation:
        with self.sessions() as session:
            chain = session.scalar(select(Escalation).where(Escalation.alert_id == alert_id))
            assert chain is not None
            return chain

    def transition(self, alert_id: int, to: str, by: str = "op-alice", outcome: str | None = None) -> None:
        with self.sessions() as session:
            alert = session.get(Alert, alert_id)
            assert alert is not None
            alerts.transition(session, alert, alerts.AlertState(to), by, outcome=outcome)
            session.commit()


def add_responder(session: Session, name: str, role: str, *addresses: str) -> Responder:
    responder = Responder(name=name, role=role, active=True)
    session.add(responder)
    session.flush()
    for position, address in enumerate(addresses):
        session.add(ContactPoint(responder_id=responder.id, address=address, position=position))
    return responder


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    engine = make_engine(database_url)
    schema.upgrade(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as session:
        person = enrol_home(session, name="Ada Lovelace", address="1 Test Street", hub_id="hub-1",
                            devices=[DeviceRecord("pendant-1", "pendant"), DeviceRecord("door-1", "door")])
        person.access_details = "Key safe by the back door, code 4711"
        add_responder(session, "Night operators", "operator")
        first = add_responder(session, "Kim (daughter)", "keyholder", "mailto:kim@family.test")
        second = add_responder(session, "Lee (neighbour)", "keyholder", "mailto:lee@family.test")
        add_responder(session, "Ambulance desk", "emergency_services", "mailto:desk@ambulance.test")
        session.add_all([PersonContact(person_id=person.id, responder_id=r.id, position=i, nominated_at=T0)
                         for i, r in enumerate((first, second))])
        session.commit()
        person_id = person.id
    with smtp_server() as smtp:
        yield World(sessions, person_id, smtp, [T0])
    engine.dispose()


def test_an_unanswered_alarm_climbs_the_chain_in_order(world: World) -> None:
    escalator = world.escalator()
    alert_id = world.raise_alert()
    escalator.run_once()
    assert world.escalation(alert_id).policy == "emergency"
    assert [n.address for n in world.notifications(alert_id)] == ["console"]  # the alarm queue, at once
    assert world.smtp.mailbox.received == []

    world.at(59)
    escalator.run_once()
    assert len(world.notifications(alert_id)) == 1  # nothing is due before the 60 s answer target
    world.at(60)
    escalator.run_once()
    assert len(world.notifications(alert_id)) == 2  # the operators again
    world.at(179)
    escalator.run_once()
    assert world.smtp.mailbox.received == []

    world.at(180)  # the 180 s exception point: the chain leaves the centre, first keyholder first
    escalator.run_once()
    [kim] = world.mail_to("kim@family.test")
    assert "Ada Lovelace pressed the help button at 02:00" in kim
    assert "If Ada Lovelace is hurt or does not answer, call 999." in kim
    assert "step" not in kim and "cycle" not in kim and "pendant_alarm" not in kim  # no internal words
    assert "Accept: http://centre.test/accept/" in kim
    assert world.mail_to("lee@family.test") == []

    world.at(480)
    escalator.run_once()
    assert len(world.mail_to("lee@family.test")) == 1
    assert world.mail_to("desk@ambulance.test") == []
    world.at(780)
    escalator.run_once()
    assert len(world.mail_to("desk@ambulance.test")) == 1
    chain = world.escalation(alert_id)
    assert (chain.cycle, chain.step, chain.state) == (1, 0, "running")  # the list is cycled a second time

    with world.sessions() as session:
        audited = session.scalars(select(AuditEntry.detail).where(AuditEntry.action == "notify_responder")).all()
    assert len(audited) == 3 and all(f"alert {alert_id}" in line for line in audited)


def test_the_chain_is_stored_in_the_shape_existing_databases_hold(world: World) -> None:
    alert_id = world.raise_alert()
    world.escalator().start_escalations(world.clock[0])
    stored = world.escalation(alert_id).steps
    operators = [{"responder_id": 1, "name": "Night operators", "role": "operator", "addresses": []}]
    kim = {"responder_id": 2, "name": "Kim (daughter)", "role": "keyholder", "addresses": ["mailto:kim@family.test"]}
    lee = {"responder_id": 3, "name": "Lee (neighbour)", "role": "keyholder", "addresses": ["mailto:lee@family.test"]}
    assert stored == [
        {"audience": "operators", "wait_s": 60, "recipients": operators},
        {"audience": "operators", "wait_s": 120, "recipients": operators},
        {"audience": "keyholders", "wait_s": 300, "recipients": [kim]},
        {"audience": "keyholders", "wait_s": 300, "recipients": [lee]},
        {"audience": "emergency_services", "wait_s": 600, "recipients": [
            {"responder_id": 4, "name": "Ambulance desk", "role": "emergency_services",
             "addresses": ["mailto:desk@ambulance.test"]}]},
    ]
    assert snapshot.dump(snapshot.load(stored)) == stored


def test_acknowledging_stops_the_chain_and_a_forgotten_acknowledgement_is_brought_back(world: World) -> None:
    with world.sessions() as session:
        operators = session.scalar(select(Responder).where(Responder.role == "operator"))
        assert operators is not None
        session.add(ContactPoint(responder_id=operators.id, address="mailto:supervisor@centre.test", position=0))
        session.commit()
    escalator = world.escalator()
    alert_id = world.raise_alert()
    for second in (0, 60, 180):
        world.at(second)
        escalator.run_once()
    assert len(world.mail_to("kim@family.test")) == 1
    world.at(200)
    world.transition(alert_id, "acknowledged")
    for second in (200, 480, 780, 1000):
        world.at(second)
        escalator.run_once()
    assert world.mail_to("lee@family.test") == [] and world.mail_to("desk@ambulance.test") == []
    assert world.escalation(alert_id).state == "reminding"
    reminders = len(world.mail_to("supervisor@centre.test"))

    world.at(200 + ACKNOWLEDGED_REMINDER_S)
    escalator.run_once()
    [reminder] = world.mail_to("supervisor@centre.test")[reminders:]
    assert "still not resolved" in reminder

    world.transition(alert_id, "resolved", outcome="false_alarm")
    world.at(200 + 2 * ACKNOWLEDGED_REMINDER_S)
    escalator.run_once()
    assert len(world.mail_to("supervisor@centre.test")) == reminders + 1
    assert world.escalation(alert_id).state == "finished"


def test_a_message_queued_when_the_alarm_is_acknowledged_is_not_sent(world: World) -> None:
    escalator = world.escalator()
    alert_id = world.raise_alert()
    for second in (0, 60):
        world.at(second)
        escalator.run_once()
    world.at(180)
    escalator.step_escalations(world.clock[0])  # Kim's message is written, not yet sent...
    world.transition(alert_id, "acknowledged")  # ...when an operator picks the alarm up
    escalator.send_notifications(world.clock[0])
    assert world.mail_to("kim@family.test") == []
    [kim] = [n for n in world.notifications(alert_id) if n.address == "mailto:kim@family.test"]
    assert kim.status == "cancelled" and "acknowledged" in kim.detail


def test_accepting_puts_the_alert_in_progress_and_shows_the_access_details(world: World) -> None:
    escalator = world.escalator()
    alert_id = world.raise_alert()
    for second in (0, 60, 180):
        world.at(second)
        escalator.run_once()
    [kim] = world.mail_to("kim@family.test")
    match = re.search(r"/accept/([A-Za-z0-9_-]+)", kim)
    assert match is not None
    with world.sessions() as session:
        accepted = acceptance.accept(session, match.group(1), world.clock[0])
        session.commit()
        assert accepted.person.access_details == "Key safe by the back door, code 4711"
        assert accepted.alert.status == "in_progress"
        shown = session.scalars(select(AuditEntry.actor).where(AuditEntry.action == "show_access_details")).all()
        assert len(shown) == 1 and "Kim" in shown[0]
    with world.sessions() as session, pytest.raises(acceptance.AcceptRefused):
        acceptance.accept(session, "not-a-token", world.clock[0])
    world.at(480)
    escalator.run_once()
    assert world.mail_to("lee@family.test") == []
    assert world.escalation(alert_id).state == "finished"


def test_a_second_responder_cannot_accept_what_the_first_has(world: World) -> None:
    escalator = world.escalator()
    alert_id = world.raise_alert()
    for second in (0, 60, 180, 480):
        world.at(second)
        escalator.run_once()
    tokens = [re.findall(r"/accept/([A-Za-z0-9_-]+)", text)[0]
              for text in world.mail_to("kim@family.test") + world.mail_to("lee@family.test")]
    with world.sessions() as session:
        acceptance.accept(session, tokens[1], world.clock[0])  # Lee first
        session.commit()
    with world.sessions() as session, pytest.raises(acceptance.AcceptRefused, match="someone else"):
        acceptance.accept(session, tokens[0], world.clock[0])
    with world.sessions() as session:
        alert = session.get(Alert, alert_id)
        assert alert is not None and alert.status == "in_progress"


def test_a_restarted_centre_carries_on_where_it_stopped_and_sends_nothing_twice(world: World) -> None:
    world.raise_alert()
    first = world.escalator()
    for second in (0, 60, 180):
        world.at(second)
        first.run_once()
    del first  # the centre dies; the next one starts from the database alone
    second_run = world.escalator()
    world.at(300)
    second_run.run_once()
    assert len(world.mail_to("kim@family.test")) == 1 and world.mail_to("lee@family.test") == []
    world.at(480)
    second_run.run_once()
    second_run.run_once()
    assert len(world.mail_to("kim@family.test")) == 1 and len(world.mail_to("lee@family.test")) == 1


def test_two_workers_on_one_database_never_send_a_step_twice(world: World) -> None:
    a, b = world.escalator(), world.escalator()
    world.raise_alert()
    for second in (0, 60, 180):
        world.at(second)
        a.start_escalations(world.clock[0])
        b.start_escalations(world.clock[0])
        a.step_escalations(world.clock[0])
        b.step_escalations(world.clock[0])
        b.send_notifications(world.clock[0])
        a.send_notifications(world.clock[0])
    assert len(world.mail_to("kim@family.test")) == 1


def test_hub_offline_mutes_the_homes_silence_alerts_until_it_clears(world: World) -> None:
    escalator = world.escalator()
    offline = world.raise_alert(HUB_OFFLINE)
    not_seen = world.raise_alert(DEVICE_NOT_SEEN, subject="door-1")
    escalator.run_once()
    chain = world.escalation(not_seen)
    assert chain.state == "inhibited" and f"muted by alert {offline}" in chain.note
    assert world.notifications(not_seen) == []

    world.transition(offline, "resolved", by="system:hub_offline", outcome="all_clear")
    world.at(5)
    escalator.run_once()
    assert world.escalation(not_seen).state == "finished"  # told once, as supervision is
    assert [n.address for n in world.notifications(not_seen)] == ["console"]


def test_supervision_goes_to_the_operators_once(world: World) -> None:
    escalator = world.escalator()
    alert_id = world.raise_alert(POWER_FAILURE)
    escalator.run_once()
    chain = world.escalation(alert_id)
    assert chain.policy == "supervision" and len(snapshot.load(chain.steps).steps) == 1
    for second in (60, 600, 3600):
        world.at(second)
        escalator.run_once()
    assert world.smtp.mailbox.received == []  # never to a family
    assert world.escalation(alert_id).state == "finished"


def test_a_keyholder_only_service_with_nobody_to_call_says_so_and_goes_on(world: World) -> None:
    with world.sessions() as session:
        person = session.get(Person, world.person_id)
        assert person is not None
        person.service = "keyholder_only"
        for contact in session.scalars(select(PersonContact)):
            session.delete(contact)
        session.commit()
    escalator = world.escalator()
    alert_id = world.raise_alert()
    escalator.run_once()
    [nobody] = world.notifications(alert_id)
    assert nobody.status == "failed" and nobody.detail == "no keyholders with a contact point"
    world.at(300)
    escalator.run_once()
    assert len(world.mail_to("desk@ambulance.test")) == 1


def test_an_undeliverable_message_is_retried_then_marked_failed(world: World) -> None:
    escalator = world.escalator(smtp=SmtpSettings(host="127.0.0.1", port=1, starttls=False,
                                                  mail_from="alerts@centre.test", timeout_s=2))
    with world.sessions() as session:
        person = session.get(Person, world.person_id)
        assert person is not None
        person.service = "keyholder_only"
        session.commit()
    alert_id = world.raise_alert()
    escalator.run_once()
    [kim] = [n for n in world.notifications(alert_id) if "kim" in n.address]
    assert kim.status == "pending" and kim.attempts == 1 and kim.detail
    seconds = 0.0
    for _ in range(10):
        seconds += 301
        world.at(seconds)
        escalator.send_notifications(world.clock[0])
    [kim] = [n for n in world.notifications(alert_id) if "kim" in n.address]
    assert kim.status == "failed" and kim.attempts == 5


def test_a_worker_holding_a_stale_token_does_nothing(world: World) -> None:
    world.raise_alert()
    world.escalator().start_escalations(world.clock[0])
    with world.sessions() as session:  # two workers read the same escalation...
        [(mine, _)] = escalation.unfinished(session)
        session.commit()
    with world.sessions() as session:
        [(theirs, _)] = escalation.unfinished(session)
        session.commit()
    assert mine.token == theirs.token
    with world.sessions() as session:  # ...one steps it first...
        assert escalation.claim(session, mine)
        session.commit()
    with world.sessions() as session:  # ...and the other's token is stale
        assert not escalation.claim(session, theirs)


def test_a_hub_offline_goes_to_the_operators_before_the_family(world: World) -> None:
    escalator = world.escalator()
    alert_id = world.raise_alert(HUB_OFFLINE)
    for second in (0, 60, 180, 900, 1799):
        world.at(second)
        escalator.run_once()
    assert world.escalation(alert_id).policy == "link_lost"
    assert world.smtp.mailbox.received == []  # a network blip never wakes the family
    world.at(1800)
    escalator.run_once()
    assert len(world.mail_to("kim@family.test")) == 1


def test_an_idle_pass_leaves_the_escalation_alone(world: World) -> None:
    escalator = world.escalator()
    alert_id = world.raise_alert()
    escalator.run_once()
    before = world.escalation(alert_id).token
    world.at(30)  # nothing is due until 60 s
    escalator.run_once()
    assert world.escalation(alert_id).token == before
    world.at(60)
    escalator.run_once()
    assert world.escalation(alert_id).token != before


def test_a_hung_mail_server_does_not_hold_up_the_next_responder(world: World, webhook: Webhook) -> None:
    """Kim's mail goes to a server that accepts the connection and never answers; Lee's
    webhook message, sent in the same pass, arrives long before Kim's attempt gives up."""
    with world.sessions() as session:
        person = session.get(Person, world.person_id)
        assert person is not None
        person.service = "keyholder_only"
        lee = session.scalar(select(Responder).where(Responder.name.startswith("Lee")))
        assert lee is not None
        for point in session.scalars(select(ContactPoint).where(ContactPoint.responder_id == lee.id)):
            point.address = f"json://127.0.0.1:{webhook.port}/lee"
        session.commit()
    with silent_server() as hung_port:
        escalator = world.escalator(smtp=SmtpSettings(host="127.0.0.1", port=hung_port, starttls=False,
                                                      mail_from="alerts@centre.test", timeout_s=8))
        alert_id = world.raise_alert()
        escalator.start_escalations(world.clock[0])
        escalator.step_escalations(world.at(0))    # Kim's step...
        escalator.step_escalations(world.at(300))  # ...and, five minutes on, Lee's: both pending now
        sending = threading.Thread(target=escalator.send_notifications, args=(world.clock[0],))
        started = time.monotonic()
        sending.start()
        wait_for(lambda: webhook.requests, timeout=7, what="Lee's message while Kim's mail hangs")
        assert time.monotonic() - started < 7 and sending.is_alive()  # Kim's attempt is still waiting
        sending.join(30)
    kim = next(n for n in world.notifications(alert_id) if "kim" in n.address)
    assert kim.status == "pending" and kim.attempts == 1  # timed out: it will be retried
