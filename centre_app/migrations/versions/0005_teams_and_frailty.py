"""teams of nurses, their caseloads, and each person's frailty category

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00.000000

- `teams`, `team_members`: a team of nurses and team leads (`monitoring_centre/teams.py`).
- `team_caseloads`: the people on a team's caseload; each member sees them (`access.py`).
- `frailty_assessments`: a person's eFI category (fit, mild, moderate, severe; Clegg et al.,
  Age and Ageing 2016), entered or read from the GP record (`monitoring_centre/frailty.py`).

New tables only: every row already stored is kept as it is. A nurse's own caseload stays in
`care_relationships` (basis `direct_care`), as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitoring_centre.storage

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when() -> monitoring_centre.storage.UTCDateTime:
    return monitoring_centre.storage.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "team_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("added_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"]),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "user_id"),
    )
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_team_members_team_id"), ["team_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_team_members_user_id"), ["user_id"], unique=False)
    op.create_table(
        "team_caseloads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", _when(), nullable=False),
        sa.Column("assigned_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"]),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "person_id"),
    )
    with op.batch_alter_table("team_caseloads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_team_caseloads_person_id"), ["person_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_team_caseloads_team_id"), ["team_id"], unique=False)
    op.create_table(
        "frailty_assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("recorded_at", _when(), nullable=False),
        sa.Column("recorded_by", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("frailty_assessments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_frailty_assessments_person_id"), ["person_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("frailty_assessments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_frailty_assessments_person_id"))
    op.drop_table("frailty_assessments")
    with op.batch_alter_table("team_caseloads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_team_caseloads_team_id"))
        batch_op.drop_index(batch_op.f("ix_team_caseloads_person_id"))
    op.drop_table("team_caseloads")
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_team_members_user_id"))
        batch_op.drop_index(batch_op.f("ix_team_members_team_id"))
    op.drop_table("team_members")
    op.drop_table("teams")
