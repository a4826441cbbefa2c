"""The outbox keeps every row until the centre's ack names it: acknowledge by message id, requeue
what is overdue, release on reconnect, and survive a restart in between."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub_agent.outbox import Lane, Outbox, Pending, Settled
from telecare_protocol import DeviceEvent, DeviceType, EventCode, Message, Metric, Reading

HUB = "hub-1"
T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def reading(n: int) -> Reading:
    return Reading(hub_id=HUB, device_id="oximeter-1", source_ts=T0 + timedelta(seconds=n), metric=Metric.SPO2,
                   value=95.0, unit="%")


def alarm(n: int, device: str = "pendant-1") -> DeviceEvent:
    return DeviceEvent.new(hub_id=HUB, device_id=device, device_type=DeviceType.PERSONAL_TRIGGER,
                           code=EventCode.MANUAL_ALARM, source_ts=T0 + timedelta(seconds=n))


def door(n: int) -> DeviceEvent:
    return DeviceEvent.new(hub_id=HUB, device_id="door-1", device_type=DeviceType.DOOR_SENSOR,
                           code=EventCode.DOOR_OPENED, source_ts=T0 + timedelta(seconds=n))


def ids(rows: list[Pending]) -> list[str]:
    return [row.message_id for row in rows]


@pytest.fixture
def outbox(tmp_path: Path) -> Outbox:
    return Outbox(tmp_path / "outbox.db", hub_id=HUB)


def test_acknowledge_forgets_the_named_messages_once(outbox: Outbox) -> None:
    messages: list[Message] = [alarm(0), door(1), reading(2)]
    for message in messages:
        outbox.put(message)
    batch = outbox.next_batch(10)
    a, d, r = (str(m.id) for m in messages)
    settled = outbox.acknowledge([r, a, "00000000-0000-4000-8000-000000000000"])
    assert settled == [Settled(batch[0].row_id, Lane.ALARM, "event", a),
                       Settled(batch[2].row_id, Lane.ROUTINE, "reading", r)]
    assert outbox.depth == 1
    assert outbox.acknowledge([a, r]) == []  # a second ack for the same messages changes nothing
    assert outbox.acknowledge([]) == []
    outbox.release()
    assert ids(outbox.next_batch(10)) == [d]


def test_a_message_handed_out_stays_until_its_ack_however_often_it_is_released(outbox: Outbox) -> None:
    message = alarm(0)
    outbox.put(message)
    for _ in range(3):
        assert ids(outbox.next_batch(5)) == [str(message.id)]
        assert outbox.next_batch(5) == []
        outbox.release()  # a reconnect: everything unacknowledged goes again
    assert outbox.depth == 1
    outbox.acknowledge([str(message.id)])
    outbox.release()
    assert outbox.next_batch(5) == [] and outbox.depth == 0


def test_requeued_rows_go_again_ahead_of_their_lanes_unsent_rows(outbox: Outbox) -> None:
    first: list[Message] = [door(0), door(1), reading(2)]
    for message in first:
        outbox.put(message)
    assert len(outbox.next_batch(10)) == 3
    later: list[Message] = [door(3), reading(4), alarm(5, device="pendant-2")]
    for message in later:
        outbox.put(message)
    found = outbox.requeue([str(first[1].id), str(first[2].id), "00000000-0000-4000-8000-000000000000"])
    assert found == {str(first[1].id), str(first[2].id)}
    assert outbox.pending() == 5
    order = ids(outbox.next_batch(10))
    assert order == [str(later[2].id), str(first[1].id), str(later[0].id), str(first[2].id), str(later[1].id)]
    assert outbox.next_batch(10) == []  # handed out once each
    assert outbox.pending() == 0


def test_a_requeued_row_acknowledged_before_it_goes_again_is_not_sent(outbox: Outbox) -> None:
    message = door(0)
    outbox.put(message)
    outbox.next_batch(1)
    outbox.requeue([str(message.id)])
    outbox.acknowledge([str(message.id)])
    assert outbox.next_batch(5) == []
    assert outbox.pending() == 0


def test_requeueing_a_row_not_yet_sent_changes_nothing(outbox: Outbox) -> None:
    message = door(0)
    outbox.put(message)
    assert outbox.requeue([str(message.id)]) == {str(message.id)}
    assert ids(outbox.next_batch(5)) == [str(message.id)]
    assert outbox.next_batch(5) == []


def test_an_event_promoted_behind_an_alarm_can_be_requeued(outbox: Outbox) -> None:
    """A door event in flight, moved into the alarm lane by its device's alarm, is still resent once."""
    cancel = DeviceEvent.new(hub_id=HUB, device_id="pendant-1", device_type=DeviceType.PERSONAL_TRIGGER,
                             code=EventCode.ALARM_CANCELLED, source_ts=T0)
    outbox.put(cancel)
    assert ids(outbox.next_batch(1)) == [str(cancel.id)]
    press = alarm(1)
    outbox.put(press)
    outbox.requeue([str(cancel.id)])
    assert ids(outbox.next_batch(5)) == [str(cancel.id), str(press.id)]
    assert outbox.next_batch(5) == []


def test_what_the_centre_has_not_acknowledged_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    first = Outbox(path, hub_id=HUB)
    messages: list[Message] = [alarm(0), door(1), reading(2)]
    first.put_many(messages)
    first.next_batch(10)  # all three on the wire; say the broker PUBACKed them all
    first.acknowledge([str(messages[1].id)])  # only the door event reached the centre
    first.close()
    second = Outbox(path, hub_id=HUB)
    assert ids(second.next_batch(10)) == [str(messages[0].id), str(messages[2].id)]
    assert [p for p in second.alarm_payloads()] == [messages[0].model_dump_json().encode()]
    second.close()


def test_readings_below_an_acknowledged_one_are_resent_and_a_lost_copy_again(outbox: Outbox) -> None:
    """The centre takes readings in order: one acknowledged means those sent before it without an ack were
    lost. A copy is resent again only when a reading sent after it is acknowledged and the copy is not."""
    readings = [reading(n) for n in range(7)]
    for message in readings[:5]:
        outbox.put(message)
    batch = outbox.next_batch(10)
    outbox.acknowledge([str(readings[0].id), str(readings[3].id)])
    assert outbox.requeue_gaps(Lane.ROUTINE, batch[3].row_id) == 2
    assert ids(outbox.next_batch(10)) == [str(readings[1].id), str(readings[2].id)]  # the copies
    assert outbox.requeue_gaps(Lane.ROUTINE, batch[3].row_id) == 0  # that ack again: the copies are on their way
    outbox.put(readings[5])
    [newest] = outbox.next_batch(10)
    outbox.acknowledge([str(readings[1].id), str(readings[5].id)])  # the copy of 1 came; of 2, not
    assert outbox.requeue_gaps(Lane.ROUTINE, newest.row_id) == 2  # reading 4, and 2's copy was lost too
    assert ids(outbox.next_batch(10)) == [str(readings[2].id), str(readings[4].id)]
    assert outbox.requeue_gaps(Lane.ROUTINE, newest.row_id) == 0  # sent before these copies: no news of them
    outbox.put(readings[6])
    [last] = outbox.next_batch(10)
    outbox.acknowledge([str(readings[2].id), str(readings[4].id)])  # both copies came
    outbox.acknowledge([str(readings[6].id)])
    assert outbox.requeue_gaps(Lane.ROUTINE, last.row_id) == 0
    assert outbox.depth == 0


def test_a_reconnect_starts_the_gap_search_afresh(outbox: Outbox) -> None:
    readings = [reading(n) for n in range(4)]
    for message in readings:
        outbox.put(message)
    batch = outbox.next_batch(10)
    outbox.acknowledge([str(readings[3].id)])
    assert outbox.requeue_gaps(Lane.ROUTINE, batch[3].row_id) == 3
    outbox.next_batch(10)
    outbox.release()  # a reconnect starts afresh
    assert outbox.requeue_gaps(Lane.ROUTINE, batch[3].row_id) == 0  # nothing in flight after a release
    assert len(outbox.next_batch(10)) == 3
    assert outbox.requeue_gaps(Lane.ROUTINE, batch[3].row_id) == 3
