"""MQTT topic layout: `telecare/v1/hubs/{hub_id}/{kind}`.

The hub id in the topic is the hub's authenticated broker username, so a broker ACL of
`pattern write telecare/v1/hubs/%u/#` lets each hub publish only as itself.
"""

from dataclasses import dataclass

ROOT = "telecare/v1/hubs"
KINDS = {"reading": "readings", "event": "events", "heartbeat": "heartbeat"}
STATUS = "status"
"""Retained online/offline state, set by the hub's last will (not a protocol message)."""

SUBSCRIPTION = f"{ROOT}/+/+"
BROKER_ACL_PATTERN = f"pattern write {ROOT}/%u/#"


def topic_for(hub_id: str, message_type: str) -> str:
    return f"{ROOT}/{hub_id}/{KINDS[message_type]}"


def status_topic(hub_id: str) -> str:
    return f"{ROOT}/{hub_id}/{STATUS}"


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
