"""every user's own view (issue 13): nurses' review notes, and family members who are keyholders

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 04:00:00.000000

- `review_notes`: a nurse's review of a trend alert or missed measurement ("Reviewed, plan: ..."),
  one per alert, with its FHIR R4 ClinicalImpression Bundle (`monitoring_centre/review_tasks.py`).
- `responder_accounts`: a family member's account linked to the responder (keyholder) it is, so
  the open requests to that keyholder show on the family member's page.

New tables only: every row already stored is kept as it is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitoring_centre.storage

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when() -> monitoring_centre.storage.UTCDateTime:
    return monitoring_centre.storage.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "review_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column("written_by", sa.String(length=100), nullable=False),
        sa.Column("written_at", _when(), nullable=False),
        sa.Column("record_bundle", sa.Text(), nullable=False),
        sa.Column("record_status", sa.String(length=16), nullable=False),
        sa.Column("record_detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"]),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id"),
    )
    with op.batch_alter_table("review_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_review_notes_person_id"), ["person_id"], unique=False)
    op.create_table(
        "responder_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("responder_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", _when(), nullable=False),
        sa.Column("linked_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["responder_id"], ["responders.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id"),
    )
    with op.batch_alter_table("responder_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_responder_accounts_responder_id"), ["responder_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("responder_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_responder_accounts_responder_id"))
    op.drop_table("responder_accounts")
    with op.batch_alter_table("review_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_notes_person_id"))
    op.drop_table("review_notes")
