"""Alembic environment of the test migrations: a stock online env.py plus the optional covet-otel call."""

import os

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
if os.environ.get("COVET_TEST_ENV_PY_ENABLE") == "1":
    # what a user adds to env.py when not running under opentelemetry-instrument
    import covet_otel.events.alembic

    covet_otel.events.alembic.enable()


def run_migrations_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
