"""bed sensor kinds: an occupancy mat or a pulse-on-movement mat (issue 14)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 04:00:00.000000

- `devices.bed_sensor_kind`: what a bed sensor's events mean to the activity rules
  (`detection.people.BedSensorKind`): `occupancy`, a mat that reports occupied and vacated, or
  `pulse`, a pulse-on-movement mat whose silence says nothing (a sleeper lying still). Not null;
  every existing row gets `occupancy`, which is how the rules read every bed sensor before, so
  their behaviour is unchanged. Read only for devices whose location is `bed`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bed_sensor_kind", sa.String(length=16), server_default="occupancy",
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("bed_sensor_kind")
