"""sign-out, and the operator's workstation

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 04:00:00.000000

- `users.session_epoch`: raised at each sign-out; tokens of an earlier epoch are refused
  (`centre_app/auth.py`). Existing accounts start at 0, and their tokens issued before this
  revision (which carry no epoch) count as epoch 0: nobody is signed out by the upgrade.
- `people`: the caller record an operator reads on a call (`monitoring_centre/caller_record.py`):
  date of birth, phones (JSON list), conditions, medication summary, allergies, communication
  needs, property risks, pets, GP practice, and the access notes an operator may see
  (`operator_notes`; the key-safe code stays in `access_details`). Empty for every existing person.
- `person_contacts.relationship`: what a keyholder is to the person ("daughter"); empty before.
- `alerts.taken_by`, `taken_at`: the operator who has taken the call (`monitoring_centre/calls.py`).
- `call_notes`: what an operator did on a call (`monitoring_centre/call_notes.py`).
- `handover_notes`: notes from one shift to the next (`monitoring_centre/handover.py`).
- `call_scripts`: a script per rule, seeded with `monitoring_centre.call_scripts.DEFAULT_SCRIPTS`
  (updated_by "seed"); administrators edit them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitoring_centre.storage
from monitoring_centre.call_scripts import DEFAULT_SCRIPTS, SEED_ACTOR

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PEOPLE_TEXT = ("conditions", "medication_summary", "allergies", "communication_needs", "property_risks", "pets",
                "operator_notes")


def _when() -> monitoring_centre.storage.UTCDateTime:
    return monitoring_centre.storage.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("date_of_birth", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("phones", sa.JSON(), server_default="[]", nullable=False))
        for name in _PEOPLE_TEXT:
            batch_op.add_column(sa.Column(name, sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("gp_practice", sa.String(length=300), server_default="", nullable=False))
    with op.batch_alter_table("person_contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("relationship", sa.String(length=100), server_default="", nullable=False))
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("taken_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("taken_at", _when(), nullable=True))
    op.create_table(
        "call_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("at", _when(), nullable=False),
        sa.Column("by", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("call_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_call_notes_alert_id"), ["alert_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_call_notes_person_id"), ["person_id"], unique=False)
    op.create_table(
        "handover_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", _when(), nullable=False),
        sa.Column("by", sa.String(length=100), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("handover_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handover_notes_at"), ["at"], unique=False)
    scripts = op.create_table(
        "call_scripts",
        sa.Column("rule", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("rule"),
    )
    now = monitoring_centre.storage.utc_now()
    op.bulk_insert(scripts, [{"rule": rule.value, "title": title, "steps": list(steps), "updated_at": now,
                              "updated_by": SEED_ACTOR} for rule, (title, steps) in DEFAULT_SCRIPTS.items()])


def downgrade() -> None:
    op.drop_table("call_scripts")
    with op.batch_alter_table("handover_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handover_notes_at"))
    op.drop_table("handover_notes")
    with op.batch_alter_table("call_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_call_notes_person_id"))
        batch_op.drop_index(batch_op.f("ix_call_notes_alert_id"))
    op.drop_table("call_notes")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("taken_at")
        batch_op.drop_column("taken_by")
    with op.batch_alter_table("person_contacts", schema=None) as batch_op:
        batch_op.drop_column("relationship")
    with op.batch_alter_table("people", schema=None) as batch_op:
        for name in ("gp_practice", *reversed(_PEOPLE_TEXT), "phones", "date_of_birth"):
            batch_op.drop_column(name)
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
