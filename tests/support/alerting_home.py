"""A home with keyholders on a test database, and a channel that keeps what it is asked to send:
for unit tests of the alerting pipeline that need no mail or webhook server."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from alerting import channels
from alerting.channels import Delivery, InternalTargets, Message, NotifySettings, SmtpSettings
from alerting.channels.targets import NO_INTERNAL_TARGETS
from detection.events import PENDANT_ALARM
from monitoring_centre import alerts
from monitoring_centre.enrolment import DeviceRecord, enrol_home
from monitoring_centre.storage import ContactPoint, PersonContact, Responder

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
ACCESS = "Key safe by the back door, code 4711"
KIM = ("mailto:kim@family.test", "mailto:kim@work.test")
LEE = ("mailto:lee@family.test",)


@dataclass(frozen=True)
class Home:
    person_id: int
    kim_id: int
    lee_id: int


def add_responder(session: Session, name: str, role: str, *addresses: str) -> Responder:
    responder = Responder(name=name, role=role, active=True)
    session.add(responder)
    session.flush()
    for position, address in enumerate(addresses):
        session.add(ContactPoint(responder_id=responder.id, address=address, position=position))
    return responder


def enrol_keyholder_home(session: Session) -> Home:
    """Ada, on the keyholder-only service (her keyholders are messaged at once): Kim first (two
    addresses, so two messages), then Lee. Commits."""
    person = enrol_home(session, name="Ada Lovelace", address="1 Test Street", hub_id="hub-1",
                        devices=[DeviceRecord("pendant-1", "pendant")])
    person.service = "keyholder_only"
    person.access_details = ACCESS
    kim = add_responder(session, "Kim (daughter)", "keyholder", *KIM)
    lee = add_responder(session, "Lee (neighbour)", "keyholder", *LEE)
    session.add_all([PersonContact(person_id=person.id, responder_id=r.id, position=i, nominated_at=T0)
                     for i, r in enumerate((kim, lee))])
    session.commit()
    return Home(person.id, kim.id, lee.id)


def press(session: Session, person_id: int, at: datetime = T0) -> int:
    """A help-button alarm for the person; commits. Returns the alert's id."""
    alert = alerts.raise_alert(session, person_id=person_id, hub_id="hub-1", rule=PENDANT_ALARM, subject="",
                               at=at, evidence={"code": "test"}, why="a test alarm")
    session.commit()
    return alert.id


@dataclass
class FakeChannel:
    """Stands in for `channels.send`: keeps every (address, message), answers `ok`."""

    ok: bool = True
    sent: list[tuple[str, Message]] = field(default_factory=list)

    def send(self, address: str, message: Message, smtp: SmtpSettings | None, *,
             internal: InternalTargets = NO_INTERNAL_TARGETS, notify: NotifySettings | None = None) -> Delivery:
        self.sent.append((address, message))
        return Delivery(ok=self.ok, channel="email", detail="250 queued" if self.ok else "421 try again later")

    def to(self, address: str) -> list[Message]:
        return [message for sent_to, message in self.sent if sent_to == address]


@pytest.fixture
def channel(monkeypatch: pytest.MonkeyPatch) -> FakeChannel:
    fake = FakeChannel()
    monkeypatch.setattr(channels, "send", fake.send)
    return fake
