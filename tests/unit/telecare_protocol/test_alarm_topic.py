"""Calls for help have a topic of their own, `telecare/v1/hubs/{hub}/alarms`: which events go there,
how it parses, what may arrive on it, and that it stays inside a hub's write ACL."""

import pytest

from detection.rules import ALARMS, CATALOGUE
from telecare_protocol import EventCode
from telecare_protocol.codes import ALARM_CODES
from telecare_protocol.topics import (
    ALARM_SUBSCRIPTION,
    BROKER_ACL_PATTERN,
    Topic,
    alarm_topic,
    belongs_on,
    parse_topic,
    topic_for,
)


def test_the_alarm_codes_are_exactly_those_the_alarm_rules_raise_on() -> None:
    assert {code for rule in ALARMS for code in CATALOGUE[rule].raised_by} == ALARM_CODES


@pytest.mark.parametrize("code", sorted(ALARM_CODES))
def test_a_call_for_help_goes_on_the_alarms_topic(code: EventCode) -> None:
    assert topic_for("hub-1", "event", code) == alarm_topic("hub-1") == "telecare/v1/hubs/hub-1/alarms"
    assert parse_topic(alarm_topic("hub-1")) == Topic(hub_id="hub-1", kind="alarms")


@pytest.mark.parametrize("code", sorted(set(EventCode) - ALARM_CODES))
def test_every_other_event_goes_on_events(code: EventCode) -> None:
    assert topic_for("hub-1", "event", code) == "telecare/v1/hubs/hub-1/events"
    assert not belongs_on("alarms", "event", code)
    assert belongs_on("events", "event", code)


def test_only_events_take_the_alarms_topic_and_events_still_take_alarms() -> None:
    assert topic_for("hub-1", "reading", EventCode.MANUAL_ALARM) == "telecare/v1/hubs/hub-1/readings"
    assert topic_for("hub-1", "event") == "telecare/v1/hubs/hub-1/events"
    assert not belongs_on("alarms", "reading") and not belongs_on("alarms", "heartbeat")
    assert belongs_on("events", "event", EventCode.MANUAL_ALARM)  # a hub of the earlier layout
    assert belongs_on("alarms", "event", EventCode.FALL_DETECTED)


def test_the_alarms_topic_is_inside_the_hubs_write_acl_and_the_centres_subscription_is_only_it() -> None:
    writable = BROKER_ACL_PATTERN.removeprefix("pattern write ").replace("%u", "hub-1").removesuffix("#")
    assert alarm_topic("hub-1").startswith(writable)
    assert ALARM_SUBSCRIPTION == "telecare/v1/hubs/+/alarms"
