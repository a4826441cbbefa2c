"""The centre's end-to-end acknowledgement (`Ack`, schema version 2): the one message the centre
sends a hub.

A broker's PUBACK only says the broker has a message; a broker that crashes before it writes
its persistence, or a centre that unsubscribes, can still lose it. So, as in SCAIP (the
receiving centre's response) and BS 8521 (the "kiss-off"), the receiving centre itself
confirms every message once its database transaction has committed: `stored` lists the ids
it committed now or earlier (a resent duplicate is acknowledged again), `refused` the ids it
dead-lettered for good, with the reason, so the hub stops resending them and raises a local
fault. A hub keeps each message until one of the two arrives.

One ack names at most `MAX_ACK_ENTRIES` messages, so the largest possible ack stays under
`codec.MAX_PAYLOAD_BYTES`; the centre sends several for a bigger batch. Published with QoS 1
on `topics.ack_topic(hub_id)`, which only that hub may read and only the centre may write.
"""

import uuid
from typing import Final, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from telecare_protocol.messages import Identifier, utc_now

ACK_VERSION: Final = 2
"""The schema version that introduced acks; an ack carries it."""
ACK_VERSIONS = frozenset({ACK_VERSION})
"""Versions of an ack a hub accepts."""
MAX_ACK_ENTRIES: Final = 500
"""Messages one ack may name, `stored` and `refused` together: 500 refusals with the longest reason
encode to about 50 KB, under the 64 KiB payload limit (a test checks the worst case). Equal to the
centre's largest ingest batch, so one batch of one hub usually needs one ack."""
REASON_PATTERN: Final = r"^[a-z][a-z_]{0,39}$"
"""A refusal's reason: the centre's dead-letter reason code, e.g. `unknown_device`."""


class Refusal(BaseModel):
    """One message the centre dead-lettered for good: resending it would only be refused again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID
    reason: str = Field(pattern=REASON_PATTERN,
                        description="The centre's dead-letter reason, e.g. `unknown_device`, `impossible_value`")


class Ack(BaseModel):
    """The centre's receipt, to one hub, for messages its database has committed or refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    version: Literal[2] = ACK_VERSION
    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    hub_id: Identifier
    centre_ts: AwareDatetime = Field(default_factory=utc_now,
                                     description="When the centre committed them (for logs; never checked "
                                                 "against the hub's clock)")
    type: Literal["ack"] = "ack"
    stored: tuple[uuid.UUID, ...] = Field(default=(), max_length=MAX_ACK_ENTRIES,
                                          description="Ids of messages stored now or earlier (duplicates too)")
    refused: tuple[Refusal, ...] = Field(default=(), max_length=MAX_ACK_ENTRIES,
                                         description="Messages dead-lettered for good, with the reason")

    @model_validator(mode="after")
    def _check_size(self) -> Self:
        entries = len(self.stored) + len(self.refused)
        if not 1 <= entries <= MAX_ACK_ENTRIES:
            raise ValueError(f"an ack names 1 to {MAX_ACK_ENTRIES} messages, not {entries}")
        return self
