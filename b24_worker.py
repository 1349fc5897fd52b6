"""The stored event is the unit of work: stored by the webhook, answered here.

Bitrix24 never resends an event and slows down handlers that answer slowly
(https://apidocs.bitrix24.com/api-reference/events/index.html), so the webhook
only checks an event, stores it with a dedupe key and answers 200. A thread pool
then claims each stored event, lets the conversation answer it and marks it done
or failed. Events left pending or half-processed by a previous run are picked up
again on start.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from b24_api import Bitrix24Error
from b24_conversation import Decision
from b24_event import Bitrix24Event
from database import Database, EventRecord, EventStatus

logger = logging.getLogger(__name__)

# events picked up from a previous run in one go on start
RESUME_LIMIT = 1000
# the width of inbound_events.dedupe_key
DEDUPE_KEY_LENGTH = 200

Handler = Callable[[Bitrix24Event], Decision]
FailureHandler = Callable[[Bitrix24Event], None]


def dedupe_key(event: Bitrix24Event) -> str:
    """A key that is the same for a repeated delivery of one user action.

    A typed message has its own message id. A button press carries the id of
    the message holding the keyboard, so the command, its parameters and the
    send time are part of the key: pressing two buttons of one keyboard, or one
    button again later, are different actions.
    """
    member = event.auth.member_id or event.auth.domain or "-"
    if event.is_message and event.message_id:
        key = f"{member}:message:{event.message_id}"
    elif event.is_command and event.command_id and event.message_id:
        params = " ".join(event.command_params.split())[:60]
        key = (
            f"{member}:command:{event.command_id}:{event.message_id}:"
            f"{params}:{event.ts or '-'}"
        )
    else:
        digest = hashlib.sha256(
            json.dumps(stored_payload(event), sort_keys=True).encode()
        ).hexdigest()
        key = f"{member}:{event.event_type.lower()}:{digest}"
    if len(key) > DEDUPE_KEY_LENGTH:
        # a portal's domain or member id of any length must fit the column
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key


def stored_payload(event: Bitrix24Event) -> dict[str, Any]:
    """The event as stored: the nested payload without the secret token."""
    payload = event.to_dict()
    auth = payload.get("auth")
    if isinstance(auth, dict):
        payload["auth"] = {
            key: value
            for key, value in auth.items()
            if key in ("domain", "member_id", "client_endpoint")
        }
    return payload


class EventWorker:
    """Answers stored events on a pool of threads."""

    def __init__(
        self,
        database: Database,
        handle: Handler,
        *,
        threads: int = 2,
        on_failure: FailureHandler | None = None,
    ) -> None:
        self.database = database
        self._handle = handle
        self._on_failure = on_failure
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)

    @property
    def running(self) -> bool:
        return self._pool is not None

    def start(self) -> int:
        """Start the threads and queue what a previous run left; return that count."""
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self._threads, thread_name_prefix="b24-worker"
                )
        requeued = self.database.requeue_stale_events()
        pending = self.database.pending_events(RESUME_LIMIT)
        for record in pending:
            self.submit(record.id)
        if pending:
            logger.info(
                "resuming %s stored events (%s were interrupted while processing)",
                len(pending),
                requeued,
            )
        return len(pending)

    def submit(self, event_id: int) -> bool:
        """Queue a stored event; False when the worker is not started."""
        with self._lock:
            if self._pool is None:
                return False
            self._in_flight += 1
            self._pool.submit(self._run, event_id)
        return True

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued event is processed; for tests and shutdown."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def stop(self, wait: bool = True) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=not wait)

    def _run(self, event_id: int) -> None:
        try:
            if self.database.claim_event(event_id):
                record = self.database.get_event(event_id)
                if record is not None:
                    self._process(record)
        except Exception:
            logger.exception("stored event %s could not be processed", event_id)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def _process(self, record: EventRecord) -> None:
        started = time.monotonic()
        event = Bitrix24Event.from_json(record.payload)
        try:
            decision = self._handle(event)
        except Exception as exc:
            took_ms = (time.monotonic() - started) * 1000
            self.database.mark_event(
                record.id, EventStatus.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
            )
            logger.error(
                "event %s %s dialog %s message %s failed after %.0f ms: %s",
                record.id,
                event.event_type,
                event.dialog_id or "-",
                event.message_id or "-",
                took_ms,
                exc,
                exc_info=not _is_expected(exc),
            )
            if self._on_failure is not None:
                self._apologize(event)
            return

        status = EventStatus.IGNORED if decision.name == "ignored" else EventStatus.DONE
        self.database.mark_event(record.id, status)
        took_ms = (time.monotonic() - started) * 1000
        logger.info(
            "event %s %s dialog %s message %s: %s score %s faq %s "
            "in %.0f ms (queued %.0f ms)",
            record.id,
            event.event_type,
            event.dialog_id or "-",
            event.message_id or "-",
            decision.name,
            "-" if decision.score is None else f"{decision.score:.1f}",
            decision.faq_id or "-",
            took_ms,
            _queued_ms(record.received_at, started),
        )

    def _apologize(self, event: Bitrix24Event) -> None:
        assert self._on_failure is not None
        try:
            self._on_failure(event)
        except Exception as exc:
            logger.warning(
                "could not tell dialog %s about a failure: %s", event.dialog_id, exc
            )


def _is_expected(exc: Exception) -> bool:
    """Platform errors are explained by their message; anything else needs a trace."""
    return isinstance(exc, Bitrix24Error)


def _queued_ms(received_at: datetime, started_monotonic: float) -> float:
    waited = time.monotonic() - started_monotonic
    now = datetime.now(UTC).replace(tzinfo=None)
    return max(0.0, ((now - received_at).total_seconds() - waited) * 1000)
