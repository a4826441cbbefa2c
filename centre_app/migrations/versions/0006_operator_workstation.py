"""sign-out, and the operator's workstation

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 04:00:00.000000

- `users.session_epoch`: raised at each sign-out; tokens of an earlier epoch are refused
  (`centre_app/auth.py`). Existing accounts start at 0, and their tokens issued before this
  revision (which carry no epoch) count as epoch 0: nobody is signed out by the upgrade.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
