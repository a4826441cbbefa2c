"""The escalation snapshot keeps the JSON shape every existing database holds, and the
notification references (the dedup keys already in those databases) keep their format."""

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from alerting import snapshot
from alerting.notify import (
    NoContact,
    NotificationPurpose,
    StepOccasion,
    TimerOccasion,
    ToContact,
    notification_reference,
)
from alerting.policy import Audience

STORED: list[dict[str, Any]] = [
    {"audience": "operators", "wait_s": 60,
     "recipients": [{"responder_id": 1, "name": "Night operators", "role": "operator", "addresses": []}]},
    {"audience": "keyholders", "wait_s": 300,
     "recipients": [{"responder_id": 2, "name": "Kim (daughter)", "role": "keyholder",
                     "addresses": ["mailto:kim@family.test", "tgram://bot/chat"]}]},
    {"audience": "keyholders", "wait_s": 300, "recipients": []},
    {"audience": "emergency_services", "wait_s": 600,
     "recipients": [{"responder_id": 4, "name": "Ambulance desk", "role": "emergency_services",
                     "addresses": ["mailto:desk@ambulance.test"]}]},
]
"""A chain as `escalation.start` has always written it into `Escalation.steps`."""


def test_a_stored_chain_reads_as_typed_steps_and_writes_back_unchanged() -> None:
    chain = snapshot.load(STORED)
    assert [step.audience for step in chain.steps] == [Audience.OPERATORS, Audience.KEYHOLDERS,
                                                       Audience.KEYHOLDERS, Audience.EMERGENCY_SERVICES]
    kim = chain.steps[1].recipients[0]
    assert (kim.responder_id, kim.name, kim.role, kim.addresses) == (
        2, "Kim (daughter)", "keyholder", ("mailto:kim@family.test", "tgram://bot/chat"))
    assert [step.reaches_anyone() for step in chain.steps] == [False, True, False, True]
    assert snapshot.dump(chain) == STORED
    assert [list(step) for step in snapshot.dump(chain)] == [["audience", "wait_s", "recipients"]] * 4



def test_numbers_to_phone_are_kept_beside_the_addresses() -> None:
    stored = [{"audience": "emergency_services", "wait_s": 600,
               "recipients": [{"responder_id": 4, "name": "Ambulance desk", "role": "emergency_services",
                               "addresses": [], "phones": ["tel:+441632960000"]}]}]
    chain = snapshot.load(stored)
    assert not chain.steps[0].reaches_anyone()
    assert chain.steps[0].to_phone() == ("Ambulance desk (+441632960000)",)
    assert snapshot.dump(chain) == stored


def test_an_empty_chain_is_stored_as_an_empty_list() -> None:
    assert snapshot.dump(snapshot.EscalationChain()) == []
    assert snapshot.load([]).steps == ()


@pytest.mark.parametrize("broken", [
    [{"audience": "neighbours", "wait_s": 60, "recipients": []}],
    [{"audience": "operators", "wait_s": -1, "recipients": []}],
    [{"audience": "operators", "recipients": []}],
    [{"audience": "operators", "wait_s": 60, "recipients": [{"responder_id": 1, "name": "x", "role": "operator"}]}],
    {"audience": "operators", "wait_s": 60, "recipients": []},
])
def test_a_snapshot_not_in_the_stored_shape_is_refused(broken: object) -> None:
    with pytest.raises(ValidationError):
        snapshot.load(broken)


def test_notification_references_keep_their_format() -> None:
    step = StepOccasion(cycle=1, step=2)
    assert notification_reference(7, step, ToContact(responder_id=3, index=0)) == \
        "alert-7/cycle-1/step-2/responder-3/contact-0"
    assert notification_reference(7, step, NoContact.CONSOLE) == "alert-7/cycle-1/step-2/console"
    assert notification_reference(7, step, NoContact.NOBODY) == "alert-7/cycle-1/step-2/nobody"
    at = datetime(2026, 11, 25, 2, 30, 5, 900000, tzinfo=UTC)
    assert notification_reference(7, TimerOccasion(NotificationPurpose.REMINDER, at), ToContact(1, 2)) == \
        "alert-7/reminder-1795573805/responder-1/contact-2"
    assert notification_reference(7, TimerOccasion(NotificationPurpose.EXHAUSTED, at), ToContact(1, 0)) == \
        "alert-7/exhausted-1795573805/responder-1/contact-0"
