"""The hub's durable outbox on its own: order, heartbeat coalescing, the disk budget, restarts,
and (hypothesis) that no interleaving of put / hand out / acknowledge / reconnect / restart
loses or duplicates a message."""

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub_agent.outbox import ROW_OVERHEAD_BYTES, Lane, Outbox, Pending
from telecare_protocol import (
    DeviceEvent,
    DeviceType,
    EventCode,
    Heartbeat,
    Message,
    Metric,
    Power,
    Reading,
    decode,
    encode,
)
from tests.support.examples import property_examples

HUB = "hub-1"
T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
UNITS = {Metric.SPO2: "%", Metric.PULSE_RATE: "/min"}


def reading(device: str, n: int, metric: Metric = Metric.SPO2) -> Reading:
    return Reading(hub_id=HUB, device_id=device, source_ts=T0 + timedelta(seconds=n), metric=metric,
                   value=float(90 + n % 10), unit=UNITS[metric])


def event(device: str, code: EventCode = EventCode.DOOR_OPENED, n: int = 0) -> DeviceEvent:
    kinds = {EventCode.DOOR_OPENED: DeviceType.DOOR_SENSOR, EventCode.MANUAL_ALARM: DeviceType.PERSONAL_TRIGGER,
             EventCode.ALARM_CANCELLED: DeviceType.PERSONAL_TRIGGER, EventCode.BATTERY_LOW: DeviceType.DOOR_SENSOR}
    return DeviceEvent.new(hub_id=HUB, device_id=device, device_type=kinds[code], code=code,
                           source_ts=T0 + timedelta(seconds=n), detail={"n": n})


def heartbeat(n: int) -> Heartbeat:
    return Heartbeat(hub_id=HUB, device_id=HUB, source_ts=T0 + timedelta(seconds=n), power=Power.MAINS,
                     uptime_s=float(n), interval_s=60)


def ids(rows: list[Pending]) -> list[str]:
    return [row.message_id for row in rows]


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.db", hub_id=HUB)


def test_alarms_go_first_then_events_then_readings(outbox: Outbox) -> None:
    messages: list[Message] = [reading("oximeter-1", 1), event("door-1"), reading("oximeter-1", 2),
                               event("pendant-1", EventCode.MANUAL_ALARM), heartbeat(3),
                               event("door-1", EventCode.BATTERY_LOW)]
    for message in messages:
        outbox.put(message)
    order = ids(outbox.next_batch(10))
    r1, door, r2, alarm, beat, battery = (str(m.id) for m in messages)
    assert order == [alarm, door, battery, r1, r2, beat]


def test_each_device_keeps_its_order_within_a_lane(outbox: Outbox) -> None:
    messages: list[Message] = []
    for n in range(30):
        messages.append(reading(f"oximeter-{n % 3}", n))
        if n % 4 == 0:
            messages.append(event(f"door-{n % 2}", n=n))
    for message in messages:
        outbox.put(message)
    handed: list[Pending] = []
    while batch := outbox.next_batch(7):
        handed += batch
    assert sorted(ids(handed)) == sorted(str(m.id) for m in messages)
    for device in {m.device_id for m in messages}:
        assert [r.message_id for r in handed if r.device_id == device] == \
            [str(m.id) for m in messages if m.device_id == device]


def test_an_alarm_never_overtakes_its_own_devices_earlier_events(outbox: Outbox) -> None:
    """A cancel queued before a new alarm of the same pendant must still reach the centre first."""
    other = event("door-1")
    cancel = event("pendant-1", EventCode.ALARM_CANCELLED)
    alarm = event("pendant-1", EventCode.MANUAL_ALARM)
    later_cancel = event("pendant-1", EventCode.ALARM_CANCELLED)
    for message in (other, cancel, alarm, later_cancel):
        outbox.put(message)
    assert ids(outbox.next_batch(10)) == [str(cancel.id), str(alarm.id), str(other.id), str(later_cancel.id)]


def test_rows_in_flight_are_not_handed_out_twice_until_released(outbox: Outbox) -> None:
    messages = [reading("oximeter-1", n) for n in range(5)]
    for message in messages:
        outbox.put(message)
    first = outbox.next_batch(2)
    assert outbox.pending() == 3
    rest = outbox.next_batch(10)
    assert ids(first) + ids(rest) == [str(m.id) for m in messages]
    assert outbox.next_batch(10) == []
    outbox.release()
    again = outbox.next_batch(10)
    assert ids(again) == [str(m.id) for m in messages]
    assert [r.payload for r in again] == [r.payload for r in first + rest]  # same bytes, same id


def test_an_alarm_put_while_readings_are_in_flight_is_next(outbox: Outbox) -> None:
    for n in range(5):
        outbox.put(reading("oximeter-1", n))
    outbox.next_batch(2)
    alarm = event("pendant-1", EventCode.MANUAL_ALARM)
    outbox.put(alarm)
    assert ids(outbox.next_batch(1)) == [str(alarm.id)]


def test_delete_forgets_acknowledged_rows_only(outbox: Outbox) -> None:
    for n in range(4):
        outbox.put(reading("oximeter-1", n))
    batch = outbox.next_batch(3)
    assert outbox.depth == 4
    assert outbox.delete([batch[0].row_id, batch[2].row_id]) == 2
    assert outbox.depth == 2
    assert outbox.delete([batch[0].row_id]) == 0  # a second PUBACK for the same row changes nothing
    outbox.release()
    assert [r.row_id for r in outbox.next_batch(10)] == [batch[1].row_id, batch[1].row_id + 2]


def test_put_is_idempotent_by_message_id(outbox: Outbox) -> None:
    message = reading("oximeter-1", 1)
    first = outbox.put(message)
    assert outbox.put(message) == first
    assert outbox.depth == 1


def test_only_the_newest_unsent_heartbeat_is_kept(outbox: Outbox) -> None:
    outbox.put(heartbeat(1))
    outbox.put(reading("oximeter-1", 1))
    outbox.put(heartbeat(2))
    newest = heartbeat(3)
    outbox.put(newest)
    rows = outbox.next_batch(10)
    assert [r.kind for r in rows] == ["reading", "heartbeat"]
    assert rows[1].message_id == str(newest.id)
    # A heartbeat already on the wire is left alone: only unsent ones are replaced.
    outbox.put(heartbeat(4))
    outbox.put(heartbeat(5))
    assert outbox.depth == 3
    assert [decode(r.payload).source_ts for r in outbox.next_batch(10)] == [T0 + timedelta(seconds=5)]


def test_reopening_the_file_keeps_every_row_and_hands_them_out_again(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    first = Outbox(path, hub_id=HUB)
    messages: list[Message] = [reading("oximeter-1", 1), event("pendant-1", EventCode.MANUAL_ALARM),
                               reading("oximeter-1", 2)]
    for message in messages:
        first.put(message)
    in_flight = first.next_batch(2)
    first.delete([in_flight[0].row_id])  # the alarm was acknowledged before the power cut
    first.close()

    second = Outbox(path, hub_id=HUB)
    assert second.depth == 2
    assert second.size_bytes == sum(len(encode(m)) + ROW_OVERHEAD_BYTES for m in (messages[0], messages[2]))
    rows = second.next_batch(10)
    assert ids(rows) == [str(messages[0].id), str(messages[2].id)]
    assert [r.payload for r in rows] == [encode(messages[0]), encode(messages[2])]


def fill_with_readings(outbox: Outbox, count: int) -> list[Reading]:
    put = []
    for n in range(count):
        for metric in (Metric.SPO2, Metric.PULSE_RATE):
            message = reading(f"oximeter-{n % 2}", n, metric)
            outbox.put(message)
            put.append(message)
    return put


def test_at_the_budget_old_readings_are_thinned_counted_and_reported(tmp_path: Path) -> None:
    size = len(encode(reading("oximeter-1", 1))) + ROW_OVERHEAD_BYTES
    budget = 120 * size
    outbox = Outbox(tmp_path / "outbox.db", hub_id=HUB, budget_bytes=budget)
    put = fill_with_readings(outbox, 300)

    rows = []
    while batch := outbox.next_batch(100):
        rows += batch
    readings = [r for r in rows if r.kind == "reading"]
    reports = [r for r in rows if r.kind == "event"]
    kept = {r.message_id for r in readings}
    dropped = outbox.dropped_counts()
    assert dropped is not None
    assert len(kept) + dropped.readings_dropped == len(put)
    assert dropped.readings_dropped > 0
    # the budget holds (it is exceeded only by the one report, an event)
    assert outbox.size_bytes <= budget + len(reports[0].payload) + ROW_OVERHEAD_BYTES
    # one report, ahead of the readings, from the hub, counting every dropped reading
    [report] = reports
    assert rows[0] is report and report.lane == Lane.EVENT
    message = decode(report.payload)
    assert message.type == "event"
    assert (message.code, message.device_type, message.device_id) == (
        EventCode.DATA_DROPPED, DeviceType.COMMUNICATION_LINK, HUB)
    assert message.detail["readings_dropped"] == dropped.readings_dropped
    assert message.detail["since"] == dropped.since.isoformat()
    # the newest readings are whole, the oldest are thinned, and each series keeps its order
    newest = [str(m.id) for m in put[-40:]]
    assert set(newest) <= kept
    for device in ("oximeter-0", "oximeter-1"):
        for metric in (Metric.SPO2, Metric.PULSE_RATE):
            series = [str(m.id) for m in put if m.device_id == device and m.metric == metric]
            survivors = [r.message_id for r in readings if r.device_id == device and decode(r.payload).type
                         == "reading" and json.loads(r.payload)["metric"] == metric]
            assert survivors == [i for i in series if i in kept]
            assert survivors[0] == series[0]  # thinning keeps every other one, starting from the first
            assert len(survivors) < len(series)


def test_a_second_report_counts_only_what_the_first_did_not(tmp_path: Path) -> None:
    size = len(encode(reading("oximeter-1", 1))) + ROW_OVERHEAD_BYTES
    outbox = Outbox(tmp_path / "outbox.db", hub_id=HUB, budget_bytes=60 * size)
    fill_with_readings(outbox, 60)
    first_reports = [r for r in outbox.next_batch(1000) if r.kind == "event"]
    assert len(first_reports) == 1  # now in flight: it is not replaced any more
    fill_with_readings(outbox, 60)
    second_reports = [r for r in outbox.next_batch(1000) if r.kind == "event"]
    assert len(second_reports) == 1
    counts = [int(json.loads(r.payload)["detail"]["readings_dropped"]) for r in first_reports + second_reports]
    dropped = outbox.dropped_counts()
    assert dropped is not None and sum(counts) == dropped.readings_dropped


def test_alarms_and_events_are_never_dropped_for_the_budget(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    size = len(encode(event("pendant-1", EventCode.MANUAL_ALARM))) + ROW_OVERHEAD_BYTES
    outbox = Outbox(tmp_path / "outbox.db", hub_id=HUB, budget_bytes=5 * size)
    alarms = [event("pendant-1", EventCode.MANUAL_ALARM, n) for n in range(20)]
    doors = [event("door-1", n=n) for n in range(20)]
    with caplog.at_level(logging.WARNING, logger="hub_agent.outbox"):
        for alarm, door in zip(alarms, doors, strict=True):
            assert outbox.put(alarm) is not None
            assert outbox.put(door) is not None
    assert outbox.depth == 40
    assert any("over its budget" in r.message for r in caplog.records)
    assert outbox.put(reading("oximeter-1", 1)) is None  # no room, and no older reading to thin
    rows = outbox.next_batch(100)
    assert set(ids(rows)) >= {str(m.id) for m in alarms + doors}
    dropped = outbox.dropped_counts()
    assert dropped is not None and dropped.readings_dropped == 1


def test_a_row_budget_sheds_readings_too(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", hub_id=HUB, budget_rows=50)
    fill_with_readings(outbox, 100)
    assert outbox.depth <= 51  # 50 rows and the report
    dropped = outbox.dropped_counts()
    assert dropped is not None and dropped.readings_dropped >= 150


# --- no interleaving loses or duplicates a row ------------------------------------------

OPS = st.lists(st.one_of(
    st.tuples(st.just("put"), st.sampled_from(["reading", "event", "alarm", "heartbeat"]), st.integers(0, 2)),
    st.tuples(st.just("next"), st.integers(1, 6)),
    st.tuples(st.just("ack"), st.integers(0, 2**16)),
    st.tuples(st.just("reconnect")),
    st.tuples(st.just("restart")),
), max_size=60)


@settings(max_examples=property_examples(300), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS)
def test_no_interleaving_loses_or_duplicates_a_row(tmp_path_factory: pytest.TempPathFactory,
                                                   ops: list[tuple[object, ...]]) -> None:
    path = tmp_path_factory.mktemp("outbox") / "outbox.db"
    outbox = Outbox(path, hub_id=HUB)
    put_index: dict[str, int] = {}
    group: dict[str, tuple[str, str]] = {}
    """Message id -> (device, "event" or "reading"): the sequences whose order must hold."""
    outstanding: set[str] = set()
    in_flight: dict[str, Pending] = {}
    beats: set[str] = set()  # heartbeats put and not yet acknowledged nor replaced
    superseded: set[str] = set()  # heartbeats replaced by a newer one while unsent
    acked: list[str] = []
    claimed_this_epoch: list[str] = []

    def check_order() -> None:
        last: dict[tuple[str, str], int] = {}
        for message_id in claimed_this_epoch:
            key = group[message_id]
            assert put_index[message_id] > last.get(key, -1), "a device's messages were reordered"
            last[key] = put_index[message_id]

    for n, op in enumerate(ops):
        if op[0] == "put":
            kind, device = str(op[1]), f"dev-{op[2]}"
            message: Message
            if kind == "reading":
                message = reading(device, n)
            elif kind == "heartbeat":
                message = heartbeat(n)
            else:
                message = event(device, EventCode.MANUAL_ALARM if kind == "alarm" else EventCode.DOOR_OPENED, n)
            outbox.put(message)
            message_id = str(message.id)
            put_index[message_id] = n
            group[message_id] = (message.device_id, "event" if kind in ("event", "alarm") else "reading")
            if kind == "heartbeat":
                replaced = {b for b in beats if b not in in_flight}
                beats -= replaced
                outstanding -= replaced
                superseded.update(replaced)
                beats.add(message_id)
            outstanding.add(message_id)
        elif op[0] == "next":
            batch = outbox.next_batch(int(str(op[1])))
            for row in batch:
                assert row.message_id in outstanding and row.message_id not in in_flight
                in_flight[row.message_id] = row
                claimed_this_epoch.append(row.message_id)
            check_order()
        elif op[0] == "ack" and in_flight:
            keys = sorted(in_flight)
            chosen = [keys[i] for i in range(len(keys)) if (int(str(op[1])) >> (i % 16)) & 1] or keys[:1]
            assert outbox.delete(in_flight[k].row_id for k in chosen) == len(chosen)
            for k in chosen:
                del in_flight[k]
                outstanding.discard(k)
                beats.discard(k)
                acked.append(k)
        elif op[0] in ("reconnect", "restart"):
            if op[0] == "restart":
                outbox.close()
                outbox = Outbox(path, hub_id=HUB)
            else:
                outbox.release()
            in_flight.clear()
            claimed_this_epoch = []
        assert outbox.depth == len(outstanding)

    outbox.release()
    claimed_this_epoch = []
    while batch := outbox.next_batch(4):
        claimed_this_epoch += [row.message_id for row in batch]
        assert outbox.delete(row.row_id for row in batch) == len(batch)
        acked += [row.message_id for row in batch]
    check_order()
    assert outbox.depth == 0
    assert len(acked) == len(set(acked)), "a row was acknowledged twice"
    assert set(acked) | superseded == set(put_index), "a row was lost"
    assert not superseded & set(acked)
    assert all(group[s][0] == HUB for s in superseded), "only heartbeats may be replaced"
    outbox.close()
