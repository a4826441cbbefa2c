"""Which escalation chain each kind of alert follows."""

import pytest

from alerting.policy import CLINICAL_URGENT, EMERGENCY, KEYHOLDER_ONLY, LINK_LOST, NURSE_REVIEW, SUPERVISION, policy_for
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
