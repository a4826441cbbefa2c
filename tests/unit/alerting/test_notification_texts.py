"""What a responder reads: plain words, what, who, when, where, what to do; the accept link; one
SMS where it fits; nothing internal (no chain step, cycle, rule id or reason)."""

from datetime import UTC, datetime

import pytest

from alerting import texts
from alerting.notify import NotificationPurpose, compose
from alerting.tables import Notification
from detection.rules import RuleId
from monitoring_centre.storage import Alert, Person

OPENED = datetime(2026, 11, 30, 14, 2, tzinfo=UTC)  # 14:02 in London in November (GMT)
LINK = "https://centre.example.org/accept/" + "A" * 32
REASON = "keyholder_only chain step 3/4, cycle 1/2: keyholders; not acknowledged 180 s after it opened"
JARGON = ("step", "cycle", "chain", "pendant_alarm", "keyholder_only", "acknowledged 180 s", "hub-1")


def alert(rule: str = RuleId.PENDANT_ALARM, title: str = "Help button pressed", priority: int = 1) -> Alert:
    return Alert(id=7, person_id=1, hub_id="hub-1", rule=rule, subject="", title=title, priority=priority,
                 status="open", opened_at=OPENED, last_seen_at=OPENED, explanation={"why": "manual_alarm from hub-1"})


def notification(purpose: str = NotificationPurpose.ESCALATION) -> Notification:
    return Notification(alert_id=7, address="sms:+447700900123", purpose=purpose, reason=REASON,
                        reference="alert-7/cycle-0/step-2/responder-3/contact-0")


MARGARET = Person(id=1, name="Margaret Hughes", address="12 Elm Road, Headingley, Leeds LS6 1AB")


def test_a_keyholder_reads_what_who_when_where_and_what_to_do() -> None:
    message = compose(notification(), alert(), MARGARET, accept_url=LINK, timezone="Europe/London")
    assert message.subject == "Margaret Hughes pressed the help button"
    assert message.body.startswith("Margaret Hughes pressed the help button at 14:02 on Mon 30 Nov.")
    assert "Where: 12 Elm Road, Headingley, Leeds LS6 1AB" in message.body
    assert "Can you go to Margaret Hughes now?" in message.body
    assert "If Margaret Hughes is hurt or does not answer, call 999." in message.body
    assert f"Accept: {LINK}" in message.body_with_links()
    for word in JARGON:
        assert word not in message.body and word not in message.subject and word not in message.sms


def test_the_text_message_is_one_sms_with_the_link_and_999() -> None:
    message = compose(notification(), alert(), MARGARET, accept_url=LINK, timezone="Europe/London")
    assert len(message.sms) <= texts.SMS_LIMIT, message.sms
    assert message.sms.startswith("Telecare alarm: Margaret Hughes pressed the help button at 14:02")
    assert LINK in message.sms and "999" in message.sms


def test_a_short_address_fits_whole_and_a_long_one_gives_way_to_the_link() -> None:
    short = Person(id=1, name="Ada Lee", address="1 Elm Rd, Leeds")
    short_link = "https://c.test/accept/" + "A" * 32
    sms = compose(notification(), alert(), short, accept_url=short_link, timezone="Europe/London").sms
    assert sms == (f"Telecare alarm: Ada Lee pressed the help button at 14:02, 1 Elm Rd, Leeds. Can you go? "
                   f"{short_link} If hurt, call 999.")
    sms = compose(notification(), alert(), short, accept_url=LINK, timezone="Europe/London").sms
    assert LINK in sms and "999" in sms and len(sms) <= 160, sms

    long = Person(id=1, name="Bartholomew Featherstonehaugh-Cholmondeley",
                  address="Flat 14, Upper Wellington Court, 221 Harrogate Road, Chapel Allerton, Leeds LS7 4QD")
    sms = compose(notification(), alert(), long, accept_url=LINK, timezone="Europe/London").sms
    assert LINK in sms and "999" in sms and "Bartholomew" in sms
    assert "Harrogate Road" not in sms  # the address went before the link or the 999 advice


@pytest.mark.parametrize(("rule", "title", "priority", "expected"), [
    (RuleId.FALL, "Fall detected (not cancelled by the wearer)", 1, "Margaret Hughes may have fallen"),
    (RuleId.HUB_OFFLINE, "Hub hub-1 offline: no heartbeat for 10 min", 2,
     "The alarm equipment at Margaret Hughes's home has stopped reporting"),
    (RuleId.TAMPER, "Device tampered with", 4, "Device tampered with for Margaret Hughes"),
])
def test_each_condition_in_plain_words(rule: str, title: str, priority: int, expected: str) -> None:
    message = compose(notification(), alert(rule, title, priority), MARGARET, accept_url=LINK,
                      timezone="Europe/London")
    assert message.subject == expected
    assert ("999" in message.body) is (rule == RuleId.FALL)
    assert "hub-1" not in message.body


def test_the_operators_reminder_says_it_is_still_open_and_has_no_accept_link() -> None:
    message = compose(notification(NotificationPurpose.REMINDER), alert(), MARGARET, accept_url=None,
                      timezone="Europe/London")
    assert message.subject == "Still not resolved: Margaret Hughes pressed the help button"
    assert "still not resolved" in message.body and "alarm queue" in message.body
    assert message.links == {} and "Accept" not in message.sms
    assert message.sms.startswith("Telecare alarm (still open): ")


def test_nobody_answered_says_so() -> None:
    message = compose(notification(NotificationPurpose.EXHAUSTED), alert(), MARGARET, accept_url=None,
                      timezone="Europe/London")
    assert message.subject.startswith("Nobody has answered: ")
    assert "nobody has answered yet" in message.body


def test_no_address_means_no_where_line() -> None:
    nowhere = Person(id=1, name="Ada Lee", address="")
    message = compose(notification(), alert(), nowhere, accept_url=LINK, timezone="Europe/London")
    assert "Where:" not in message.body and "Ada Lee pressed the help button at 14:02." in message.sms


def test_a_keyholder_gets_the_centres_phone_and_can_say_they_cannot_go() -> None:
    message = compose(notification(), alert(), MARGARET, accept_url=LINK, timezone="Europe/London",
                      centre_phone="0113 496 0000")
    assert "If you cannot go, open the same link and say so" in message.body
    assert "To speak to the monitoring centre, call 0113 496 0000." in message.body
    without = compose(notification(), alert(), MARGARET, accept_url=LINK, timezone="Europe/London")
    assert "call 0113" not in without.body and "If you cannot go" in without.body
    operators = compose(notification(NotificationPurpose.REMINDER), alert(), MARGARET, accept_url=None,
                        timezone="Europe/London", centre_phone="0113 496 0000")
    assert "If you cannot go" not in operators.body and "0113" not in operators.body
