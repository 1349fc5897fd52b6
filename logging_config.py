"""One plain log format for the whole process, configured once at start-up."""

from __future__ import annotations

import logging
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# libraries that log every request or every model step at INFO
NOISY_LOGGERS = (
    "urllib3",
    "werkzeug",
    "chromadb",
    "httpx",
    "httpcore",
    "sentence_transformers",
    "filelock",
    "alembic.runtime.migration",
)


def configure_root_logger(level: int | str = logging.INFO) -> None:
    """Send every logger's records to stderr in one format at `level`."""
    if isinstance(level, str):
        level = logging.getLevelName(level.upper())
        if not isinstance(level, int):
            level = logging.INFO

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level)

    quiet_level = max(level, logging.WARNING)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(quiet_level)
    # werkzeug's request line is useful when debugging the webhook locally
    if level <= logging.DEBUG:
        logging.getLogger("werkzeug").setLevel(logging.INFO)
