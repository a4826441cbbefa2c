"""The centre's end-to-end acknowledgements: a committed batch's receipts as `Ack` messages.

After each commit the receiver publishes, per hub, one `telecare_protocol.Ack` (QoS 1, on
`telecare/v1/acks/<hub id>`) naming every message of that hub in the batch: those stored now,
those already stored (a resent duplicate is acknowledged again, so a hub that missed an ack
gets another), and those refused for good with the dead-letter reason. A hub keeps a message
until it is named in an ack (docs/protocol.md, "Acknowledgements").
"""

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from monitoring_centre.ingest import Receipt
from telecare_protocol import Ack, Refusal, encode
from telecare_protocol.ack import MAX_ACK_ENTRIES
from telecare_protocol.topics import ack_topic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingAck:
    """One ack, ready to publish: its topic, its bytes, and how many messages it names."""

    topic: str
    payload: bytes
    entries: int


def acks_for(receipts: Iterable[Receipt], now: datetime) -> list[OutgoingAck]:
    """The acks for a committed batch, grouped per hub in order of first appearance, each naming at
    most `MAX_ACK_ENTRIES` messages. `now` becomes each ack's `centre_ts` (an aware datetime).

    Never raises: receipts no ack can carry (a topic hub id that is not a protocol identifier) are
    logged and left out; that hub resends and is refused again, visibly, in the dead letters."""
    by_hub: dict[str, list[Receipt]] = {}
    for receipt in receipts:
        by_hub.setdefault(receipt.hub_id, []).append(receipt)
    out = []
    for hub_id, hub_receipts in by_hub.items():
        for start in range(0, len(hub_receipts), MAX_ACK_ENTRIES):
            chunk = hub_receipts[start:start + MAX_ACK_ENTRIES]
            try:
                ack = Ack(hub_id=hub_id, centre_ts=now,
                          stored=tuple(uuid.UUID(r.message_id) for r in chunk if r.refused is None),
                          refused=tuple(Refusal(id=uuid.UUID(r.message_id), reason=r.refused)
                                        for r in chunk if r.refused is not None))
            except (ValidationError, ValueError) as error:
                log.error("cannot acknowledge %d messages of hub %r: %s", len(chunk), hub_id, error)
                continue
            out.append(OutgoingAck(ack_topic(hub_id), encode(ack), len(chunk)))
    return out
