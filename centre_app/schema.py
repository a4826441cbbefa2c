"""Bring a database to the current schema with Alembic (run at every centre start)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, MetaData

import alerting.tables  # noqa: F401  (alerting's tables join the shared metadata)
import centre_app.fhir_gateway.clients  # noqa: F401  (the FHIR gateway's clients, likewise)
from monitoring_centre.storage import Base

MIGRATIONS = Path(__file__).parent / "migrations"
METADATA: MetaData = Base.metadata
"""Every table of every layer: the core's and alerting's (what migrations must match)."""


def alembic_config(url: str = "") -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(engine: Engine) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
