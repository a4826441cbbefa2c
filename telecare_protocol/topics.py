"""MQTT topic layout: `telecare/v1/hubs/{hub_id}/{kind}` from the hubs, `telecare/v1/acks/{hub_id}` back.

The hub id in the topic is the hub's authenticated broker username, so a broker ACL of
`pattern write telecare/v1/hubs/%u/#` lets each hub publish only as itself, and
`pattern read telecare/v1/acks/%u` lets it read only its own acks. The acks live outside
`telecare/v1/hubs/`, which hubs may write, so a hub can never forge its own acks; only a
centre account may write there (`CENTRE_ACL`).
"""

from dataclasses import dataclass

PREFIX = "telecare/v1"
ROOT = f"{PREFIX}/hubs"
ACKS_ROOT = f"{PREFIX}/acks"
"""The centre's end-to-end acks, one topic per hub (`ack_topic`)."""
KINDS = {"reading": "readings", "event": "events", "heartbeat": "heartbeat"}
STATUS = "status"
"""The hub's online/offline state (not a protocol message): "online" when it connects, "offline" when it
stops or, as its last will, when its connection dies. Never retained: the centre's broker keeps no
retained messages, and the centre's persistent sessions get a will published while it is down."""

SUBSCRIPTION = f"{ROOT}/+/+"
BROKER_ACL_PATTERN = f"pattern write {ROOT}/%u/#"
ACK_ACL_PATTERN = f"pattern read {ACKS_ROOT}/%u"
"""Each account reads its own ack topic and no other (a centre has no hub's username)."""
HUB_ACL = (BROKER_ACL_PATTERN, ACK_ACL_PATTERN)
"""The `pattern` lines of a Mosquitto ACL file, for every account."""
CENTRE_ACL = (f"topic read {ROOT}/#", f"topic write {ACKS_ROOT}/#")
"""What a centre account may do, as the lines under its `user` line: read every hub, write every ack."""


def topic_for(hub_id: str, message_type: str) -> str:
    return f"{ROOT}/{hub_id}/{KINDS[message_type]}"


def status_topic(hub_id: str) -> str:
    return f"{ROOT}/{hub_id}/{STATUS}"


def ack_topic(hub_id: str) -> str:
    """Where the centre acknowledges this hub's messages: `telecare/v1/acks/{hub_id}`."""
    return f"{ACKS_ROOT}/{hub_id}"


@dataclass(frozen=True)
class Topic:
    hub_id: str
    kind: str
    """`readings`, `events`, `heartbeat` or `status`."""


def parse_topic(topic: str) -> Topic | None:
    """The hub id and kind of a protocol topic, or None for anything else."""
    prefix = ROOT + "/"
    if not topic.startswith(prefix):
        return None
    parts = topic[len(prefix):].split("/")
    if len(parts) != 2 or not parts[0] or parts[1] not in (*KINDS.values(), STATUS):
        return None
    return Topic(hub_id=parts[0], kind=parts[1])
