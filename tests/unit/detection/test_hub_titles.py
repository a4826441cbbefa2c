"""What a hub says about itself is raised under a title naming the hub and what failed, and the
title stays within what an alert stores (200 characters) whatever the hub puts in the detail."""

from datetime import UTC, datetime

import pytest

from detection.decisions import Raise
from detection.engine import Engine
from detection.people import PersonProfile
from detection.rules import CATALOGUE, HUB_FAULTS, RuleId, hub_title
from telecare_protocol import DeviceEvent, DeviceType, EventCode

HUB = "hub-1"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def own_event(code: EventCode, **detail: str | int | float | bool) -> DeviceEvent:
    return DeviceEvent.new(hub_id=HUB, device_id=HUB, device_type=DeviceType.COMMUNICATION_LINK, code=code,
                           source_ts=NOW, detail=detail)


def raised_titles(*events: DeviceEvent) -> list[tuple[str, str, str]]:
    engine = Engine([PersonProfile(id="1", hubs=(HUB,))])
    return [(d.rule, d.subject, d.title) for e in events for d in engine.observe(e) if isinstance(d, Raise)]


@pytest.mark.parametrize("fault", sorted(HUB_FAULTS))
def test_a_hub_fault_names_the_hub_and_what_failed(fault: str) -> None:
    [(rule, subject, title)] = raised_titles(own_event(EventCode.DEVICE_FAULT, fault=fault))
    assert (rule, subject) == (RuleId.DEVICE_FAULT, HUB)
    assert title.startswith(f"Hub {HUB} fault: ")


def test_the_hubs_power_and_outbox_name_the_hub() -> None:
    assert raised_titles(own_event(EventCode.POWER_FAILURE, power="battery"),
                         own_event(EventCode.DATA_DROPPED, readings_dropped=12, since="x", until="y")) == [
        (RuleId.POWER_FAILURE, "", f"Mains power lost at hub {HUB}"),
        (RuleId.DATA_DROPPED, "", f"Hub {HUB} shed 12 stored readings (outbox full)")]


def test_an_unconfirmed_alarm_says_how_long_it_waited() -> None:
    title = hub_title(CATALOGUE[RuleId.DEVICE_FAULT], HUB, {"fault": "alarm_unconfirmed", "waited_s": 61.4})
    assert title == f"Hub {HUB} fault: an alarm waited 61 s for the centre's confirmation"


@pytest.mark.parametrize("detail", [
    {"fault": "x" * 10_000}, {"fault": "alarm_unconfirmed", "waited_s": 1e300},
    {"fault": "alarm_unconfirmed", "waited_s": True}, {}])
def test_whatever_the_detail_says_the_title_fits(detail: dict[str, object]) -> None:
    title = hub_title(CATALOGUE[RuleId.DEVICE_FAULT], "h" * 63, detail)
    assert len(title) <= 200 and title.startswith("Hub " + "h" * 63 + " fault: ")
    dropped = hub_title(CATALOGUE[RuleId.DATA_DROPPED], HUB, {"readings_dropped": 10**300})
    assert dropped == f"Hub {HUB} shed stored readings (outbox full)"


def test_a_device_fault_of_a_device_keeps_its_own_title() -> None:
    event = DeviceEvent.new(hub_id=HUB, device_id="oximeter-1", device_type=DeviceType.PULSE_OXIMETER,
                            code=EventCode.DEVICE_FAULT, source_ts=NOW, detail={"fault": "no_plx"})
    assert raised_titles(event) == [(RuleId.DEVICE_FAULT, "oximeter-1", "Device fault: oximeter-1")]
