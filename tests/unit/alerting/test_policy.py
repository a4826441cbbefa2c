"""Which escalation chain each kind of alert follows."""

import pytest

from alerting.policy import (
    CLINICAL_URGENT,
    EMERGENCY,
    KEYHOLDER_ONLY,
    LINK_LOST,
    LOGGED_ONLY,
    NURSE_REVIEW,
    RULE_POLICIES,
    SUPERVISION,
    policy_for,
    reaches_operators,
)
from telecare_protocol import Priority


@pytest.mark.parametrize(("rule", "priority", "service", "expected"), [
    ("pendant_alarm", Priority.EMERGENCY, "monitored", EMERGENCY),
    ("fall", Priority.EMERGENCY, "keyholder_only", KEYHOLDER_ONLY),
    ("night_exit", Priority.URGENT, "monitored", EMERGENCY),
    ("hub_offline", Priority.URGENT, "monitored", LINK_LOST),
    ("battery_low", Priority.SUPERVISION, "monitored", SUPERVISION),
    ("spo2_low", Priority.URGENT, "monitored", CLINICAL_URGENT),
    ("spo2_low", Priority.URGENT, "keyholder_only", CLINICAL_URGENT),
    ("pulse_high", Priority.HIGH, "monitored", CLINICAL_URGENT),
    ("spo2_trend_spc", Priority.HIGH, "monitored", NURSE_REVIEW),
    ("missed_measurement", Priority.HIGH, "monitored", NURSE_REVIEW),
])
def test_each_kind_of_alert_follows_its_chain(rule: str, priority: int, service: str, expected: object) -> None:
    assert policy_for(priority, service, rule) is expected


def test_readings_reach_the_nurses_at_once_and_urgent_ones_the_operators_too() -> None:
    assert [(step.audience, step.wait_s) for step in CLINICAL_URGENT.steps][:2] == [("nurses", 0), ("operators", 3600)]
    assert CLINICAL_URGENT.until_acknowledged
    assert [step.audience for step in NURSE_REVIEW.steps] == ["nurses"]
    assert not NURSE_REVIEW.until_acknowledged


@pytest.mark.parametrize("rule", ["pendant_alarm", "fall"])
@pytest.mark.parametrize("priority", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("service", ["monitored", "keyholder_only", "anything_else"])
def test_an_alarm_always_follows_an_alarm_chain_that_reaches_the_operators(rule: str, priority: int,
                                                                           service: str) -> None:
    """Even an alert stored at a demoted priority (before the safety floors) is escalated."""
    chain = policy_for(priority, service, rule)
    assert chain is (KEYHOLDER_ONLY if service == "keyholder_only" else EMERGENCY)
    assert reaches_operators(chain) and chain.until_acknowledged
    if service != "keyholder_only":
        assert chain.steps[0].audience == "operators"


def test_no_rule_table_can_send_an_alarm_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(RULE_POLICIES, "pendant_alarm", LOGGED_ONLY)
    assert policy_for(Priority.EMERGENCY, "monitored", "pendant_alarm") is EMERGENCY
    assert not reaches_operators(LOGGED_ONLY) and reaches_operators(SUPERVISION)
