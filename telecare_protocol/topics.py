"""MQTT topic layout: `telecare/v1/hubs/{hub_id}/{kind}` from the hubs, `telecare/v1/acks/{hub_id}` back.

The hub id in the topic is the hub's authenticated broker username, so a broker ACL of
`pattern write telecare/v1/hubs/%u/#` lets each hub publish only as itself, and
`pattern read telecare/v1/acks/%u` lets it read only its own acks. The acks live outside
`telecare/v1/hubs/`, which hubs may write, so a hub can never forge its own acks; only a
centre account may write there (`CENTRE_ACL`).

Calls for help (`codes.ALARM_CODES`: a help button, a pull cord, a fall) have a topic of their
own, `telecare/v1/hubs/{hub_id}/alarms` (`alarm_topic`), inside the same write ACL: the centre
reads it on a session of its own, so a press never queues at the broker behind other events.
A hub that predates it (protocol version 1's layout) sends them on `events`, which stays valid.
"""

from dataclasses import dataclass

from telecare_protocol.codes import ALARM_CODES

PREFIX = "telecare/v1"
ROOT = f"{PREFIX}/hubs"
ACKS_ROOT = f"{PREFIX}/acks"
"""The centre's end-to-end acks, one topic per hub (`ack_topic`)."""
KINDS = {"reading": "readings", "event": "events", "heartbeat": "heartbeat"}
ALARMS = "alarms"
"""The topic level of events whose code is in `ALARM_CODES`, and of nothing else (`topic_for`)."""
STATUS = "status"
"""The hub's online/offline state (not a protocol message): "online" when it connects, "offline" when it
stops or, as its last will, when its connection dies. Never retained: the centre's broker keeps no
retained messages, and the centre's persistent sessions get a will published while it is down."""

SUBSCRIPTION = f"{ROOT}/+/+"
ALARM_SUBSCRIPTION = f"{ROOT}/+/{ALARMS}"
"""Every hub's alarms topic, and nothing else: what the centre's alarm session subscribes to."""
BROKER_ACL_PATTERN = f"pattern write {ROOT}/%u/#"
ACK_ACL_PATTERN = f"pattern read {ACKS_ROOT}/%u"
"""Each account reads its own ack topic and no other (a centre has no hub's username)."""
HUB_ACL = (BROKER_ACL_PATTERN, ACK_ACL_PATTERN)
"""The `pattern` lines of a Mosquitto ACL file, for every account."""
CENTRE_ACL = (f"topic read {ROOT}/#", f"topic write {ACKS_ROOT}/#")
"""What a centre account may do, as the lines under its `user` line: read every hub, write every ack."""


def is_alarm_code(code: str | None) -> bool:
    """Whether an event code is a call for help (`ALARM_CODES`); None (no code) is not."""
    return code is not None and code in ALARM_CODES


def topic_for(hub_id: str, message_type: str, code: str | None = None) -> str:
    """Where a hub publishes a message: `telecare/v1/hubs/{hub_id}/{kind}`.

    `message_type` is `reading`, `event` or `heartbeat` (KeyError otherwise); an event whose `code`
    is in `ALARM_CODES` goes on `alarms`, every other message on its type's topic (`KINDS`)."""
    if message_type == "event" and is_alarm_code(code):
        return alarm_topic(hub_id)
    return f"{ROOT}/{hub_id}/{KINDS[message_type]}"


def alarm_topic(hub_id: str) -> str:
    """Where a hub publishes its calls for help: `telecare/v1/hubs/{hub_id}/alarms`."""
    return f"{ROOT}/{hub_id}/{ALARMS}"


def belongs_on(kind: str, message_type: str, code: str | None = None) -> bool:
    """Whether a message of this type (and event code) may arrive on a topic of this kind.

    A type's own topic takes every message of the type (an alarm on `events` is a hub of the
    version-1 layout); `alarms` takes only events whose code is in `ALARM_CODES`."""
    if kind == ALARMS:
        return message_type == "event" and is_alarm_code(code)
    return KINDS.get(message_type) == kind


def status_topic(hub_id: str) -> str:
    return f"{ROOT}/{hub_id}/{STATUS}"


def ack_topic(hub_id: str) -> str:
    """Where the centre acknowledges this hub's messages: `telecare/v1/acks/{hub_id}`."""
    return f"{ACKS_ROOT}/{hub_id}"


@dataclass(frozen=True)
class Topic:
    hub_id: str
    kind: str
    """`readings`, `events`, `alarms`, `heartbeat` or `status`."""


def parse_topic(topic: str) -> Topic | None:
    """The hub id and kind of a protocol topic, or None for anything else."""
    prefix = ROOT + "/"
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix):].split("/")
    if len(parts) != 2 or not parts[0] or parts[1] not in (*KINDS.values(), ALARMS, STATUS):
        return None
    return Topic(hub_id=parts[0], kind=parts[1])
