"""Alerting's own tables, on the centre's shared declarative base: each alert's escalation snapshot,
the notification log, the keys the centre made for itself, and the patient-record outbox.
Migrations (`centre_app/migrations/`) create them with the rest of the schema."""

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitoring_centre.storage import Base


class Escalation(Base):
    """An alert's escalation chain, snapshotted when the alert opened, and how far it has got."""

    __tablename__ = "escalations"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), unique=True)
    policy: Mapped[str] = mapped_column(String(64))
    steps: Mapped[list[Any]]
    """The chain as it was when the alert opened: each step's responders and their addresses."""
    cycles: Mapped[int]
    step: Mapped[int] = mapped_column(Integer, default=0)
    """The next step to run."""
    cycle: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), index=True)
    """running, inhibited, reminding (acknowledged, not yet resolved), finished, exhausted."""
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    token: Mapped[str] = mapped_column(String(32))
    """Changes at every step; a worker holding a stale token does nothing."""
    note: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime]


class Notification(Base):
    """The notification log: one row per message to one contact point, and why it was sent."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    responder_id: Mapped[int | None] = mapped_column(ForeignKey("responders.id"))
    responder_name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(500))
    reference: Mapped[str] = mapped_column(String(200), unique=True)
    """alert/cycle/step/responder/contact: the dedup key, and the message id a receiver sees."""
    purpose: Mapped[str] = mapped_column(String(16))
    """escalation (a step of the chain), reminder (acknowledged, not resolved) or exhausted: `NotificationPurpose`."""
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    """pending, sent, failed (gave up after every retry), cancelled (the alert was handled first)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    accept_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    accepted_at: Mapped[datetime | None]
    declined_at: Mapped[datetime | None]
    """When the responder said "No, I cannot go" to this message (accept page or family page); None if not."""
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    """The worker sending it now, "{worker}#{run}" (`notify.lease_owner`), until `next_attempt_at`;
    None when no attempt is in progress. A restarted worker takes back its own dead run's leases at once."""


class CentreSecret(Base):
    """A key the centre made for itself (e.g. the one that signs accept links), kept in its own
    database so that it outlives restarts and every worker shares it. Never a setting: the
    settings' keys (the API's token key) may be rotated at any time without breaking it."""

    __tablename__ = "centre_secrets"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    """What the key is for, e.g. "accept_links"."""
    value: Mapped[str] = mapped_column(String(128))
    """256 random bits, URL-safe base64 (`secrets.token_urlsafe(32)`)."""
    created_at: Mapped[datetime]


class RecordWrite(Base):
    """The patient-record outbox: a FHIR R4 Bundle for each state an alert reaches."""

    __tablename__ = "record_writes"
    __table_args__ = (UniqueConstraint("alert_id", "alert_status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    alert_status: Mapped[str] = mapped_column(String(16))
    transition_id: Mapped[int] = mapped_column(ForeignKey("alert_transitions.id"), index=True)
    """The newest transition of the alert this row covers: where the next pass starts reading."""
    bundle: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    """pending (to send to the record server), written, or kept (no record server configured)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
