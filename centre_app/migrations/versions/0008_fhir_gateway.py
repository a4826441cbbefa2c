"""the FHIR gateway's clients (issue 15)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 04:00:00.000000

- `fhir_clients`: the systems registered to read from the FHIR gateway, their public keys,
  scopes, the people each may see, and their purpose (`centre_app/fhir_gateway/clients.py`).
- `fhir_assertion_ids`: each client assertion's `jti`, kept until the assertion expires, so
  that none is accepted twice (`centre_app/fhir_gateway/tokens.py`).

New tables only: every row already stored is kept as it is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import monitoring_centre.storage

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when() -> monitoring_centre.storage.UTCDateTime:
    return monitoring_centre.storage.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fhir_clients",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("person_ids", sa.JSON(), nullable=True),
        sa.Column("purpose", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
    )
    op.create_table(
        "fhir_assertion_ids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("jti", sa.String(length=255), nullable=False),
        sa.Column("expires_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["fhir_clients.client_id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id", "jti"),
    )
    with op.batch_alter_table("fhir_assertion_ids", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fhir_assertion_ids_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fhir_assertion_ids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fhir_assertion_ids_expires_at"))
    op.drop_table("fhir_assertion_ids")
    op.drop_table("fhir_clients")
