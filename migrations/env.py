"""Alembic environment.

Database.init_schema() hands over a connection in `config.attributes`; started by
hand (`alembic upgrade head`, `alembic revision --autogenerate`) it opens its own,
with the same sqlite settings, on DATABASE_URL or `-x url=...`.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from database import migration_engine
from models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return url
    from config import load_config

    return load_config().database_url


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    engine = migration_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()
