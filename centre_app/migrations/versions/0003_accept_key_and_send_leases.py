"""accept-link key of the centre's own, and who holds a notification's send lease

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 01:00:00.000000

- `centre_secrets`: keys the centre generates for itself (the accept-link key), so that
  links no longer depend on the API's token key, which may be rotated at any time.
- `notifications.lease_owner`: the worker ("{worker}#{run}") that holds a send lease, so a
  restarted centre takes back the leases of its own dead run at once, and never another
  live worker's.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitoring_centre.storage

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "centre_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", monitoring_centre.storage.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("lease_owner")
    op.drop_table("centre_secrets")
