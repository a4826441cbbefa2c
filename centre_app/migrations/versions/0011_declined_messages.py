"""declined messages: a responder's "No, I cannot go" on the message it answers

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 07:30:00.000000

- `notifications.declined_at`: when the responder said "No, I cannot go" to this message, on the
  accept page or the family page (`alerting.escalation.declined`). Null for every existing row:
  declines before this revision are in the audit log only, as they always were.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitoring_centre.storage

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("declined_at", monitoring_centre.storage.UTCDateTime(timezone=True),
                                      nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("declined_at")
