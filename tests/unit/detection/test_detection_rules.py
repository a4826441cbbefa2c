"""The rule catalogue: stored names never change, and every table that names rules agrees with it."""

from datetime import UTC, datetime

from detection.defaults import DEFAULTS
from detection.events import Clear, Raise, assess
from detection.rules import CATALOGUE, CLEARED_BY, PER_DEVICE, RAISED_BY, RuleId, RuleKind
from telecare_protocol import DeviceEvent, DeviceType, EventCode

STORED_NAMES = [
    "pendant_alarm", "fall", "spo2_low", "pulse_high", "pulse_low", "missed_measurement", "spo2_trend_spc",
    "spo2_trend_slope", "spo2_variability", "night_exit", "out_of_bed_at_night", "no_morning_activity",
    "house_unoccupied", "door_left_open", "night_toilet_frequency", "hub_offline", "hub_clock_wrong", "device_not_seen",
    "no_signal", "battery_low",
    "tamper", "power_failure", "device_fault", "data_dropped",
]
"""What `alerts.rule` and `rule_settings.rule` already hold: renaming a rule would orphan them (adding one,
as `hub_clock_wrong` and `no_signal` were, orphans nothing)."""


def _event(code: EventCode) -> DeviceEvent:
    return DeviceEvent.new(hub_id="hub-1", device_id="dev-1", device_type=DeviceType.PERSONAL_TRIGGER, code=code,
                           source_ts=datetime(2024, 5, 1, 10, tzinfo=UTC))


def test_rule_ids_are_the_names_already_stored() -> None:
    assert [rule.value for rule in RuleId] == STORED_NAMES
    assert list(CATALOGUE) == list(RuleId)


def test_every_rule_has_defaults_and_a_priority_parameter_is_the_catalogue_priority() -> None:
    assert list(DEFAULTS) == list(RuleId)
    for rule, table in DEFAULTS.items():
        if "priority" in table:
            assert table["priority"].default == CATALOGUE[RuleId(rule)].priority
            assert table["priority"].source == CATALOGUE[RuleId(rule)].source


def test_the_fixed_event_rules_follow_the_catalogue_codes() -> None:
    for code, rule in RAISED_BY.items():
        decision = assess(_event(code))
        if rule.kind is RuleKind.LOG:
            assert decision is None  # data_dropped is logged by the engine, never a fixed-rule alert
            continue
        assert isinstance(decision, Raise)
        assert decision.rule == rule
        assert decision.subject == ("dev-1" if rule.rule in PER_DEVICE else "")
    for code, rule in CLEARED_BY.items():
        decision = assess(_event(code))
        assert isinstance(decision, Clear)
        assert decision.rule == rule
    assert assess(_event(EventCode.FALL_CANCELLED)) is None


def test_per_device_rules_are_the_device_supervision_rules() -> None:
    """What an offline hub mutes (`alerting/inhibit.py`), and the rules whose alert subject is a device
    (for `hub_clock_wrong`, the hub itself: the device that beats)."""
    per_device = {rule.rule for rule in CATALOGUE.values() if rule.per_device}
    assert per_device == {RuleId.DEVICE_NOT_SEEN, RuleId.BATTERY_LOW, RuleId.TAMPER, RuleId.DEVICE_FAULT,
                          RuleId.HUB_CLOCK_WRONG, RuleId.NO_SIGNAL}
    assert per_device == PER_DEVICE
