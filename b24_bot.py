"""The Bitrix24 FAQ bot: a Flask app that takes events and answers in the chat.

    python b24_bot.py                       # serve on BITRIX24_HOST:BITRIX24_PORT
    gunicorn -w 1 --threads 8 -b 0.0.0.0:5002 'b24_bot:create_app()'

The webhook checks that an event is ours, stores it and answers 200 at once;
`b24_worker.EventWorker` answers it in the background through
`b24_conversation.Conversation`. Without BITRIX24_WEBHOOK, `python b24_bot.py`
starts a local Bitrix24 (`b24_emulator.py`) and registers the bot there, so the
bot can be tried with `python b24_emulator.py chat` and no portal.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from b24_api import Bitrix24API, Bitrix24Error
from b24_conversation import PLATFORM, Conversation, Engine
from b24_event import Bitrix24Event, EventType
from b24_worker import EventWorker, dedupe_key, stored_payload
from config import (
    DEFAULT_LOCAL_BITRIX24_PORT,
    DEFAULT_LOCAL_CLIENT_ID,
    Config,
    ConfigError,
    load_config,
)
from database import Database
from faq_core import build_engine
from logging_config import configure_root_logger
from register_bot import ensure_registered, make_api, require_handler_url

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhook/bitrix24"
HANDLED_EVENTS = frozenset(
    {EventType.MESSAGE_ADD, EventType.COMMAND_ADD, EventType.JOIN_CHAT}
)


@dataclass
class BotState:
    """Everything one app instance owns, kept in `app.extensions["faq_bot"]`."""

    config: Config
    api: Bitrix24API
    database: Database
    search: Any
    engine: Engine
    conversation: Conversation
    worker: EventWorker


def create_app(
    config: Config | None = None,
    *,
    api: Bitrix24API | None = None,
    engine: Engine | None = None,
    database: Database | None = None,
    search: Any = None,
    start_worker: bool = True,
) -> Flask:
    """Build the bot from configuration; pass parts in to replace them in tests.

    Registers the bot's commands and starts the worker threads here, so under
    gunicorn (`'b24_bot:create_app()'`, no --preload) they live in the worker
    process that serves the requests.
    """
    if config is None:
        config = load_config()
        configure_root_logger(config.log_level)
    if api is None:
        api = make_api(config)
    require_handler_url(config)

    if database is None:
        database = Database(config.database_url)
        database.init_schema()
    if engine is None:
        search, engine = build_engine(config, database, search)
    elif search is None:
        search = getattr(engine, "search", None)
    if search is not None:
        search.ensure_fresh()

    conversation = Conversation(api, engine, database, near_score=near_score(engine))
    worker = EventWorker(
        database,
        conversation.handle,
        threads=config.worker_threads,
        on_failure=conversation.apologize,
    )
    state = BotState(config, api, database, search, engine, conversation, worker)

    try:
        ensure_registered(api, config)
    except Bitrix24Error as exc:
        logger.error(
            "could not register the bot and its commands on %s: %s; buttons may "
            "not work until `python register_bot.py` succeeds",
            config.webhook_url,
            exc,
        )
    if start_worker:
        worker.start()

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_content_length
    app.extensions["faq_bot"] = state
    _add_routes(app, state)
    return app


def near_score(engine: Any) -> float:
    """The lowest score worth offering as a related question.

    The engine's bar for related entries (well above its bar for answering:
    an entry that merely could answer is often unrelated to the one shown),
    else its answer floor or threshold. An engine without any gets every
    candidate offered.
    """
    for name in ("related_floor", "answer_floor", "threshold"):
        floor = getattr(engine, name, None)
        if floor is not None:
            return float(floor)
    return 0.0


def _add_routes(app: Flask, state: BotState) -> None:
    @app.post("/")
    @app.post(WEBHOOK_PATH)
    def webhook() -> tuple[Response, int]:
        """Check, store and acknowledge one event; the worker answers it."""
        body = _read_body(state.config.max_content_length)
        event = Bitrix24Event.from_raw_body(
            body, request.content_type, request.query_string
        )
        config = state.config
        if not event.verify(
            config.client_id or "", config.portal_domain, config.member_id
        ):
            logger.warning(
                "refused event from %s: token, CLIENT_ID or portal does not match "
                "(event %s, domain %s)",
                request.remote_addr,
                event.event_type or "-",
                event.auth.domain or "-",
            )
            return _reply("forbidden", 403)
        if not event.is_valid:
            logger.warning(
                "rejected event %s from %s: %s",
                event.event_type or "-",
                request.remote_addr,
                event.problem,
            )
            return _reply("bad request", 400, problem=event.problem)
        if event.event_type not in HANDLED_EVENTS:
            logger.info("ignored event %s", event.event_type)
            return _reply("ignored", 200)
        if state.api.bot_id and event.bot_id and event.bot_id != state.api.bot_id:
            logger.info(
                "ignored event %s for bot %s (this bot is %s)",
                event.event_type,
                event.bot_id,
                state.api.bot_id,
            )
            return _reply("ignored", 200)

        key = dedupe_key(event)
        try:
            event_id = state.database.store_event(
                PLATFORM, key, event.event_type, stored_payload(event)
            )
        except SQLAlchemyError as exc:
            logger.error("could not store event %s: %s", key, exc)
            return _reply("unavailable", 503)
        if event_id is None:
            logger.info("dropped duplicate event %s", key)
            return _reply("duplicate", 200)
        state.worker.submit(event_id)
        return _reply("accepted", 200)

    @app.get("/")
    def index() -> Response:
        text = (
            "Bitrix24 FAQ bot is running.\n"
            f"Events: POST {WEBHOOK_PATH}; health: GET /health\n"
        )
        return Response(text, mimetype="text/plain")

    @app.get("/health")
    def health() -> tuple[Response, int]:
        database_ok = _probe("database", state.database.faq_revision)
        index_ok = state.search is not None and bool(
            _probe("index", state.search.healthy)
        )
        records = _probe("index count", state.search.count) if index_ok else None
        healthy = database_ok is not None and index_ok
        body = {
            "status": "ok" if healthy else "unavailable",
            "chromadb_records": records,
            "webhook_configured": state.config.webhook_configured,
            "bitrix24": "local" if state.config.local_bitrix24 else "portal",
            "database": "ok" if database_ok is not None else "error",
            "index": "ok" if index_ok else "error",
            "worker": "running" if state.worker.running else "stopped",
        }
        return jsonify(body), 200 if healthy else 503

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc: RequestEntityTooLarge) -> tuple[Response, int]:
        logger.warning(
            "refused a %s-byte body on %s from %s: the limit is %s bytes "
            "(MAX_CONTENT_LENGTH)",
            request.content_length or "unknown",
            request.path,
            request.remote_addr,
            state.config.max_content_length,
        )
        return _reply("payload too large", 413, limit=state.config.max_content_length)


def _read_body(limit: int) -> bytes:
    """The request body; RequestEntityTooLarge past `limit`, chunked or not."""
    body = request.get_data(cache=False)
    if request.content_length is None and len(body) >= limit:
        # werkzeug ends a chunked body at the limit without an error, and a cut
        # body would be read as another, broken event
        raise RequestEntityTooLarge()
    return body


def _reply(status: str, code: int, **extra: Any) -> tuple[Response, int]:
    return jsonify({"status": status, **extra}), code


def _probe(name: str, check: Any) -> Any:
    """Run a health check; None when it fails."""
    try:
        result = check()
    except Exception as exc:
        logger.warning("health check of the %s failed: %s", name, exc)
        return None
    return True if result is None else result


def main() -> int:
    try:
        config = load_config()
    except ConfigError as exc:
        print(f"b24_bot.py: {exc}", file=sys.stderr)
        return 2
    configure_root_logger(config.log_level)

    emulator = None
    if config.local_mode:
        config, emulator = start_local_bitrix24(config)
    try:
        app = create_app(config)
    except ConfigError as exc:
        print(f"b24_bot.py: {exc}", file=sys.stderr)
        return 2

    logger.info("FAQ bot listens on http://%s:%s", config.host, config.port)
    if emulator is not None:
        chat = "python b24_emulator.py chat"
        if emulator.port != DEFAULT_LOCAL_BITRIX24_PORT:
            chat += f" --url {emulator.base_url}"
        logger.info(
            "no portal configured: talking to the local Bitrix24 at %s; chat with "
            "the bot from another terminal: %s",
            emulator.base_url,
            chat,
        )
    try:
        app.run(config.host, config.port, threaded=True, use_reloader=False)
    finally:
        app.extensions["faq_bot"].worker.stop(wait=False)
        if emulator is not None:
            emulator.stop()
    return 0


def start_local_bitrix24(config: Config) -> tuple[Config, Any]:
    """Start the local Bitrix24 and point the configuration at it."""
    from b24_emulator import Bitrix24Emulator

    client_id = config.client_id or DEFAULT_LOCAL_CLIENT_ID
    emulator = Bitrix24Emulator(port=config.local_bitrix24_port, client_id=client_id)
    emulator.start()
    local = config.with_overrides(
        webhook_url=emulator.webhook_url,
        client_id=client_id,
        handler_url=f"http://127.0.0.1:{config.port}{WEBHOOK_PATH}",
        bot_id=None,
        local_bitrix24=True,
    )
    return local, emulator


if __name__ == "__main__":
    sys.exit(main())
