"""Bring the database up to date: `python migrate_add_platform.py [--url URL]`.

Works on an empty database, on one made by any earlier version of this bot and
on one of the original design (before query logs had a platform): every row is
kept, old questions count as Bitrix24 ones, categories are taken from the old
text column. Running it again changes nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys

from database import Database

logger = logging.getLogger("migrate_add_platform")


def database_url_from_config() -> str:
    from config import load_config

    return load_config().database_url


def migrate(url: str) -> str | None:
    """Upgrade the database at `url`; return the schema revision it ends at."""
    database = Database(url)
    try:
        before = database.schema_revision()
        database.init_schema()
        after = database.schema_revision()
    finally:
        database.close()
    if before == after:
        logger.info("database already at schema revision %s", after)
    else:
        logger.info("database moved from schema revision %s to %s", before, after)
    return after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: DATABASE_URL)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    url = args.url or database_url_from_config()
    migrate(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
