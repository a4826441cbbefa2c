"""the centre's receive time on every reading and event, and a clock-suspect flag

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 12:00:00.000000

- `readings.received_at`, `events.received_at`: when the centre received the message (its
  own clock), copied from `inbound_messages.received_at` for the rows already stored.
  Retention counts from it, never from the hub-stamped `source_ts`, which a hub without a
  real-time clock can put days or years off.
- `readings.clock_suspect`, `events.clock_suspect`: stamped later than their receipt by more
  than the protocol's clock tolerance (the hub's clock was ahead); false for rows already
  stored, which a receiver then refused if they were more than 5 minutes ahead.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitoring_centre.storage

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("readings", "events")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("received_at", monitoring_centre.storage.UTCDateTime(timezone=True),
                                          nullable=True))
            batch_op.add_column(sa.Column("clock_suspect", sa.Boolean(), server_default=sa.false(), nullable=False))
        op.execute(f"UPDATE {table} SET received_at = (SELECT inbound_messages.received_at FROM inbound_messages "  # noqa: S608 (fixed names)
                   f"WHERE inbound_messages.id = {table}.message_id)")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("received_at", existing_type=monitoring_centre.storage.UTCDateTime(timezone=True),
                                  nullable=False)
            batch_op.create_index(batch_op.f(f"ix_{table}_received_at"), ["received_at"], unique=False)


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_received_at"))
            batch_op.drop_column("clock_suspect")
            batch_op.drop_column("received_at")
