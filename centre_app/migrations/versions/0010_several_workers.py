"""several centre workers: membership, detection leases, the detection queue (issue 17)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 07:30:00.000000

- `centre_workers`: each live worker's name, run and heartbeat (`monitoring_centre/workers.py`).
- `detection_leases`: which worker holds each person's detection state, until when.
- `detection_queue`: messages stored by a worker that does not hold their person's lease, for the
  holder to observe in order (`monitoring_centre/detection_queue.py`).
- `uq_alerts_one_active`: at most one active alert per person, rule and subject (partial unique
  index): two workers cannot both open one. The rule was already kept by `alerts.raise_alert`, so
  an existing database has no rows that break it.
All three tables start empty; a single worker never writes them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitoring_centre.storage

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when() -> monitoring_centre.storage.UTCDateTime:
    return monitoring_centre.storage.UTCDateTime(timezone=True)


ACTIVE = "status IN ('open', 'acknowledged', 'in_progress')"


def upgrade() -> None:
    op.create_table(
        "centre_workers",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("run", sa.String(length=16), nullable=False),
        sa.Column("heartbeat_at", _when(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "detection_leases",
        sa.Column("person_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.Column("run", sa.String(length=16), nullable=False),
        sa.Column("until", _when(), nullable=False),
        sa.PrimaryKeyConstraint("person_id"),
    )
    op.create_index(op.f("ix_detection_leases_worker"), "detection_leases", ["worker"], unique=False)
    op.create_table(
        "detection_queue",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("inbound_message_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_detection_queue_person_id_id", "detection_queue", ["person_id", "id"], unique=False)
    op.create_index("uq_alerts_one_active", "alerts", ["person_id", "rule", "subject"], unique=True,
                    postgresql_where=sa.text(ACTIVE), sqlite_where=sa.text(ACTIVE))


def downgrade() -> None:
    op.drop_index("uq_alerts_one_active", table_name="alerts")
    op.drop_index("ix_detection_queue_person_id_id", table_name="detection_queue")
    op.drop_table("detection_queue")
    op.drop_index(op.f("ix_detection_leases_worker"), table_name="detection_leases")
    op.drop_table("detection_leases")
    op.drop_table("centre_workers")
