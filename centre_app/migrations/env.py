"""Alembic environment: runs migrations on the connection `schema.upgrade` hands over."""

from alembic import context

from centre_app.schema import METADATA

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # the `alembic` command line, e.g. `alembic revision --autogenerate`
    from monitoring_centre.storage import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///telecare.db")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=METADATA, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=METADATA, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
