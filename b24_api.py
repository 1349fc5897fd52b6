"""A small Bitrix24 REST client for a chat-bot registered through an incoming webhook.

Every ``imbot.*`` call carries the bot's ``CLIENT_ID`` (the platform answers 403
ACCESS_DENIED without it) and ``BOT_ID`` whenever the client knows it. Errors
come back as typed exceptions; callers never look at raw JSON.

Calls are paced by a token bucket shared by every client of the same portal
(the platform allows about 2 requests per second with a burst of 50) and
retried with exponential backoff and jitter only when the platform did not run
them: 503 QUERY_LIMIT_EXCEEDED/OVERLOAD_LIMIT, 429, refused connections. A 500,
a read timeout or a dropped connection is retried only for idempotent methods;
``imbot.message.add`` and ``imbot.command.answer`` are never repeated then,
because the message may already be in the chat.

Platform reference: https://apidocs.bitrix24.com/api-reference/chat-bots/outdated/
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
import tenacity
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from b24_event import flatten_php

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 10.0)
DEFAULT_RATE = 2.0
DEFAULT_BURST = 50
MAX_MESSAGE_LENGTH = 20_000
MAX_BATCH_CALLS = 50

# methods that post something new; repeating them after an unclear failure
# can duplicate a message in the user's chat
NON_IDEMPOTENT_METHODS = frozenset(
    {"imbot.message.add", "imbot.command.answer", "batch"}
)

# methods that accept BOT_ID; imbot.register and imbot.command.answer do not
_BOT_ID_METHODS = frozenset(
    {
        "imbot.unregister",
        "imbot.message.add",
        "imbot.message.update",
        "imbot.message.delete",
        "imbot.command.register",
        "imbot.chat.sendtyping",
        "imbot.sendtyping",
    }
)
_RATE_LIMIT_CODES = frozenset(
    {"QUERY_LIMIT_EXCEEDED", "OVERLOAD_LIMIT", "OPERATION_TIME_LIMIT"}
)


# errors


class Bitrix24Error(Exception):
    """Base class for everything this client raises."""


class Bitrix24TransportError(Bitrix24Error):
    """The HTTP exchange failed; ``may_have_executed`` says if the call may have run."""

    def __init__(self, method: str, message: str, *, may_have_executed: bool) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.may_have_executed = may_have_executed


class Bitrix24TimeoutError(Bitrix24TransportError):
    """No reply within the timeout."""


class Bitrix24APIError(Bitrix24Error):
    """The platform answered with ``{"error", "error_description"}``."""

    def __init__(
        self, method: str, code: str, description: str, http_status: int
    ) -> None:
        super().__init__(f"{method}: {code}: {description} (HTTP {http_status})")
        self.method = method
        self.code = code
        self.description = description
        self.http_status = http_status


class Bitrix24RateLimitError(Bitrix24APIError):
    """QUERY_LIMIT_EXCEEDED, OVERLOAD_LIMIT or OPERATION_TIME_LIMIT, after retries."""


class Bitrix24AuthError(Bitrix24APIError):
    """The webhook URL or its key is wrong (NO_AUTH_FOUND)."""


class Bitrix24AccessDeniedError(Bitrix24APIError):
    """ACCESS_DENIED and friends: usually a missing or different CLIENT_ID."""


class Bitrix24MethodNotFoundError(Bitrix24APIError):
    """ERROR_METHOD_NOT_FOUND: the method name does not exist."""


class Bitrix24NotFoundError(Bitrix24APIError):
    """The bot, command or message the call refers to does not exist."""


class Bitrix24ServerError(Bitrix24APIError):
    """A 5xx reply that is not rate limiting."""


_ERROR_CLASSES: dict[str, type[Bitrix24APIError]] = {
    "QUERY_LIMIT_EXCEEDED": Bitrix24RateLimitError,
    "OVERLOAD_LIMIT": Bitrix24RateLimitError,
    "OPERATION_TIME_LIMIT": Bitrix24RateLimitError,
    "NO_AUTH_FOUND": Bitrix24AuthError,
    "EXPIRED_TOKEN": Bitrix24AuthError,
    "ACCESS_DENIED": Bitrix24AccessDeniedError,
    "APP_ID_ERROR": Bitrix24AccessDeniedError,
    "INSUFFICIENT_SCOPE": Bitrix24AccessDeniedError,
    "INVALID_CREDENTIALS": Bitrix24AccessDeniedError,
    "WRONG_AUTH_TYPE": Bitrix24AccessDeniedError,
    "ERROR_METHOD_NOT_FOUND": Bitrix24MethodNotFoundError,
    "BOT_ID_ERROR": Bitrix24NotFoundError,
    "COMMAND_ID_ERROR": Bitrix24NotFoundError,
    "CANT_EDIT_MESSAGE": Bitrix24AccessDeniedError,
}


def api_error(
    method: str, code: str, description: str, http_status: int
) -> Bitrix24APIError:
    """Build the typed exception for an error reply, by code first, then status."""
    cls = _ERROR_CLASSES.get(code.upper())
    if cls is None:
        if http_status in (429, 503):
            cls = Bitrix24RateLimitError
        elif http_status == 401:
            cls = Bitrix24AuthError
        elif http_status == 403:
            cls = Bitrix24AccessDeniedError
        elif http_status >= 500:
            cls = Bitrix24ServerError
        else:
            cls = Bitrix24APIError
    return cls(method, code, description, http_status)


# pacing and retries


class RateLimiter:
    """A thread-safe token bucket; ``acquire`` blocks until a request may go out.

    Each caller reserves a token under the lock and sleeps outside it, so
    concurrent workers queue fairly. ``rate=math.inf`` disables pacing.
    """

    def __init__(
        self,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    @classmethod
    def unlimited(cls) -> RateLimiter:
        return cls(rate=math.inf, burst=1)

    def acquire(self) -> float:
        """Take one token, sleeping if needed; return the seconds waited."""
        if math.isinf(self.rate):
            return 0.0
        with self._lock:
            now = self._clock()
            elapsed = now - self._updated
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._updated = now
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait


_portal_limiters: dict[str, RateLimiter] = {}
_portal_limiters_lock = threading.Lock()


def portal_key(webhook_url: str) -> str:
    """The portal a webhook belongs to: scheme and host, lower-cased."""
    parts = urlsplit(webhook_url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def portal_limiter(
    webhook_url: str, rate: float = DEFAULT_RATE, burst: int = DEFAULT_BURST
) -> RateLimiter:
    """The limiter shared by every client of one portal; created on first use."""
    key = portal_key(webhook_url)
    with _portal_limiters_lock:
        limiter = _portal_limiters.get(key)
        if limiter is None:
            limiter = RateLimiter(rate, burst)
            _portal_limiters[key] = limiter
        return limiter


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts, and the exponential backoff between them (seconds)."""

    max_attempts: int = 5
    initial: float = 0.5
    maximum: float = 8.0
    jitter: float = 0.5

    @classmethod
    def no_retry(cls) -> RetryPolicy:
        return cls(max_attempts=1)


def is_retryable(exc: BaseException, method: str) -> bool:
    """True when repeating ``method`` after ``exc`` cannot post anything twice."""
    idempotent = method.lower() not in NON_IDEMPOTENT_METHODS
    if isinstance(exc, Bitrix24APIError):
        if exc.code.upper() in _RATE_LIMIT_CODES or exc.http_status in (429, 503):
            return True
        return exc.http_status >= 500 and idempotent
    if isinstance(exc, Bitrix24TransportError):
        return not exc.may_have_executed or idempotent
    return False


# results


@dataclass(frozen=True)
class BatchResult:
    """Results and errors of one ``batch`` request, keyed like the calls."""

    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, Bitrix24APIError] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


# helpers


_ZWSP = "\u200b"
_BRACKET_RE = re.compile(r"\[(?!\u200b)")
_QUOTE_RE = re.compile(r"^(\s*)>>", re.MULTILINE)
_SENTENCE_END_RE = re.compile(r"[.!?\u2026][)\"'\u00bb]*\s+")


def escape_bbcode(text: str) -> str:
    """Keep user text as text when it is echoed back in a BB-code message.

    A zero-width space after every ``[`` (and inside a leading ``>>``) stops
    the chat from reading tags such as ``[url=...]`` while looking the same.
    Escaping twice changes nothing.
    """
    text = _BRACKET_RE.sub("[" + _ZWSP, text)
    return _QUOTE_RE.sub(lambda match: f"{match.group(1)}>{_ZWSP}>", text)


def split_message(text: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Split text into chunks of at most ``limit`` characters.

    Cuts at a paragraph break if one lies in the second half of the window,
    then at a line break, a sentence end, a space, and only then mid-word.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    text = text.strip()
    chunks: list[str] = []
    while len(text) > limit:
        cut = _find_cut(text, limit)
        chunk = text[:cut].rstrip()
        if chunk:
            chunks.append(chunk)
        text = text[cut:].lstrip()
    if text:
        chunks.append(text)
    return chunks


def _find_cut(text: str, limit: int) -> int:
    window = text[: limit + 1]
    floor = limit // 2
    for separator in ("\n\n", "\n"):
        position = window.rfind(separator, floor)
        if position > 0:
            return position + len(separator)
    sentence_ends = [m.end() for m in _SENTENCE_END_RE.finditer(window, floor)]
    sentence_ends = [end for end in sentence_ends if end <= limit]
    if sentence_ends:
        return sentence_ends[-1]
    position = window.rfind(" ", floor)
    if position > 0:
        return position + 1
    return limit


# the client


class Bitrix24API:
    """Bitrix24 REST through an incoming webhook, for one chat-bot.

    ``webhook_url`` looks like ``https://portal.bitrix24.ru/rest/1/<key>/``;
    ``client_id`` is the CLIENT_ID chosen at ``imbot.register`` and reused
    verbatim. ``timeout`` is seconds or a ``(connect, read)`` pair. Pass
    ``rate_limiter`` and ``retry`` to change pacing and backoff (tests make
    them fast); by default clients of one portal share one limiter.
    """

    def __init__(
        self,
        webhook_url: str,
        client_id: str,
        bot_id: int | None = None,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        rate_limiter: RateLimiter | None = None,
        retry: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not webhook_url.startswith(("http://", "https://")):
            raise ValueError("webhook_url must be an http(s) URL")
        if not client_id:
            raise ValueError("client_id is required for imbot.* calls")
        self.webhook_url = webhook_url.rstrip("/") + "/"
        self.client_id = client_id
        self.bot_id = bot_id
        self.timeout = timeout
        self.rate_limiter = rate_limiter or portal_limiter(self.webhook_url)
        self.retry = retry or RetryPolicy()
        self._owns_session = session is None
        self.session = session or requests.Session()
        self._sleep = sleep

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> Bitrix24API:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # low level

    def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """Call one REST method and return its ``result``.

        Adds CLIENT_ID (and BOT_ID where accepted) to ``imbot.*`` calls
        without changing ``params``. Raises :class:`Bitrix24APIError`
        subclasses and :class:`Bitrix24TransportError`.
        """
        payload = self._with_identity(method, params or {})
        return self._send(method, payload, retry=self.retry)

    def batch(
        self,
        calls: Mapping[str, tuple[str, Mapping[str, Any]]]
        | Sequence[tuple[str, Mapping[str, Any]]],
        halt: bool = False,
    ) -> BatchResult:
        """Send up to 50 calls as one ``batch`` request.

        ``calls`` maps a key to ``(method, params)``; a sequence gets keys
        ``"0"``, ``"1"``... Failed sub-calls are returned in ``errors`` as
        typed exceptions, not raised. Not retried after an unclear failure.
        """
        items = (
            list(calls.items())
            if isinstance(calls, Mapping)
            else [(str(index), call) for index, call in enumerate(calls)]
        )
        if not items:
            return BatchResult()
        if len(items) > MAX_BATCH_CALLS:
            raise ValueError(f"a batch holds at most {MAX_BATCH_CALLS} calls")

        commands = {}
        for key, (method, params) in items:
            query = urlencode(flatten_php(self._with_identity(method, params)))
            commands[key] = f"{method}?{query}"

        payload = {"halt": 1 if halt else 0, "cmd": commands}
        reply = self._send("batch", payload, retry=self.retry) or {}
        methods = dict(items)
        results = reply.get("result") or {}
        raw_errors = reply.get("result_error") or {}
        if isinstance(results, list):
            results = {str(index): value for index, value in enumerate(results)}
        if isinstance(raw_errors, list):
            raw_errors = {str(index): value for index, value in enumerate(raw_errors)}
        errors = {
            key: api_error(
                methods.get(key, ("batch", {}))[0],
                str(error.get("error", "UNKNOWN")),
                str(error.get("error_description", "")),
                400,
            )
            for key, error in raw_errors.items()
            if isinstance(error, Mapping)
        }
        return BatchResult(results=dict(results), errors=errors)

    # bot and commands

    def register_bot(
        self,
        code: str,
        name: str,
        handler_url: str,
        *,
        bot_type: str = "B",
        last_name: str | None = None,
        color: str | None = None,
        work_position: str | None = None,
        openline: bool = False,
    ) -> int:
        """Register the bot (idempotent per CODE) and remember its BOT_ID.

        ``handler_url`` is used for message, welcome and delete events; the
        platform appends ``?CLIENT_ID=`` to it.
        """
        properties = {"NAME": name}
        optional = {"LAST_NAME": last_name, "COLOR": color}
        optional["WORK_POSITION"] = work_position
        properties.update({key: value for key, value in optional.items() if value})
        params = {
            "CODE": code,
            "TYPE": bot_type,
            "OPENLINE": "Y" if openline else "N",
            "EVENT_MESSAGE_ADD": handler_url,
            "EVENT_WELCOME_MESSAGE": handler_url,
            "EVENT_BOT_DELETE": handler_url,
            "PROPERTIES": properties,
        }
        bot_id = int(self.call("imbot.register", params))
        self.bot_id = bot_id
        logger.info("bitrix24 bot %s registered with id %s", code, bot_id)
        return bot_id

    def unregister_bot(self, bot_id: int | None = None) -> bool:
        params = {"BOT_ID": bot_id} if bot_id else {}
        return bool(self.call("imbot.unregister", params))

    def register_command(
        self,
        command: str,
        title: str,
        handler_url: str,
        hidden: bool = True,
        title_en: str | None = None,
        *,
        params_hint: str = "",
        common: bool = False,
    ) -> int:
        """Register a command for the bot (idempotent per BOT_ID and COMMAND).

        LANG always carries ``ru`` and ``en`` titles; the English one falls
        back to the command name.
        """
        params = {
            "COMMAND": command.lstrip("/"),
            "COMMON": "Y" if common else "N",
            "HIDDEN": "Y" if hidden else "N",
            "EXTRANET_SUPPORT": "N",
            "EVENT_COMMAND_ADD": handler_url,
            "LANG": [
                {"LANGUAGE_ID": "ru", "TITLE": title, "PARAMS": params_hint},
                {
                    "LANGUAGE_ID": "en",
                    "TITLE": title_en or command.lstrip("/"),
                    "PARAMS": params_hint,
                },
            ],
        }
        return int(self.call("imbot.command.register", params))

    # messages

    def send_message(
        self,
        dialog_id: str | int,
        message: str,
        keyboard: Sequence[Mapping[str, Any]] | None = None,
        attach: Any = None,
    ) -> int:
        """Post a bot message and return its id.

        Text over 20,000 characters goes out as several messages, split at
        paragraph or sentence boundaries; the keyboard and attach ride on the
        last one, and the last message's id is returned.
        """
        chunks = split_message(message) or [message]
        message_id = 0
        for index, chunk in enumerate(chunks):
            params: dict[str, Any] = {"DIALOG_ID": str(dialog_id), "MESSAGE": chunk}
            if index == len(chunks) - 1:
                if keyboard:
                    params["KEYBOARD"] = list(keyboard)
                if attach:
                    params["ATTACH"] = attach
            message_id = int(self.call("imbot.message.add", params))
        return message_id

    def answer_command(
        self,
        command_id: int,
        message_id: int,
        message: str,
        keyboard: Sequence[Mapping[str, Any]] | None = None,
        attach: Any = None,
    ) -> int:
        """Answer a command event with a new message in its dialog; return its id.

        ``message_id`` is the one from the ONIMCOMMANDADD event. Long text is
        split like :meth:`send_message`.
        """
        chunks = split_message(message) or [message]
        new_id = 0
        for index, chunk in enumerate(chunks):
            params: dict[str, Any] = {
                "COMMAND_ID": command_id,
                "MESSAGE_ID": message_id,
                "MESSAGE": chunk,
            }
            if index == len(chunks) - 1:
                if keyboard:
                    params["KEYBOARD"] = list(keyboard)
                if attach:
                    params["ATTACH"] = attach
            new_id = int(self.call("imbot.command.answer", params))
        return new_id

    def update_message(
        self,
        message_id: int,
        message: str | None = None,
        keyboard: Sequence[Mapping[str, Any]] | str | None = None,
        attach: Any = None,
    ) -> bool:
        """Change a bot message; ``None`` leaves a part as it is.

        ``keyboard='N'`` or ``[]`` removes the buttons. An empty ``message``
        deletes the message (platform rule).
        """
        params: dict[str, Any] = {"MESSAGE_ID": message_id}
        if message is not None:
            params["MESSAGE"] = message
        if keyboard is not None:
            params["KEYBOARD"] = keyboard if keyboard else "N"
        if attach is not None:
            params["ATTACH"] = attach or "N"
        return bool(self.call("imbot.message.update", params))

    def delete_message(self, message_id: int, complete: bool = False) -> bool:
        params = {"MESSAGE_ID": message_id, "COMPLETE": "Y" if complete else "N"}
        return bool(self.call("imbot.message.delete", params))

    def send_typing(self, dialog_id: str | int) -> bool:
        """Show "typing..." in the dialog; best effort, never raises, no retries."""
        payload = self._with_identity(
            "imbot.chat.sendTyping", {"DIALOG_ID": str(dialog_id)}
        )
        try:
            self._send("imbot.chat.sendTyping", payload, retry=RetryPolicy.no_retry())
        except Bitrix24Error as exc:
            logger.debug("typing indicator failed for dialog %s: %s", dialog_id, exc)
            return False
        return True

    @staticmethod
    def create_keyboard(
        rows: Iterable[Iterable[Mapping[str, Any]] | Mapping[str, Any]],
    ) -> list[dict[str, Any]]:
        """Turn rows of ``{'text', 'action', 'params'}`` into the platform's flat list.

        Rows are separated by ``{"TYPE": "NEWLINE"}``. Optional keys:
        ``link`` (a URL instead of a command), ``block`` (press only once),
        ``bg_color``, ``text_color``, ``display`` (``LINE`` by default).
        """
        keyboard: list[dict[str, Any]] = []
        for row in rows:
            buttons = [row] if isinstance(row, Mapping) else list(row)
            if not buttons:
                continue
            if keyboard:
                keyboard.append({"TYPE": "NEWLINE"})
            for button in buttons:
                keyboard.append(_keyboard_button(button))
        return keyboard

    # internals

    def _with_identity(self, method: str, params: Mapping[str, Any]) -> dict[str, Any]:
        payload = dict(params)
        name = method.lower()
        if name.startswith("imbot."):
            payload.setdefault("CLIENT_ID", self.client_id)
            if self.bot_id and name in _BOT_ID_METHODS:
                payload.setdefault("BOT_ID", self.bot_id)
        return payload

    def _send(self, method: str, payload: dict[str, Any], retry: RetryPolicy) -> Any:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(retry.max_attempts),
            wait=tenacity.wait_exponential_jitter(
                multiplier=retry.initial, max=retry.maximum, jitter=retry.jitter
            ),
            retry=tenacity.retry_if_exception(lambda exc: is_retryable(exc, method)),
            before_sleep=self._log_retry,
            sleep=self._sleep,
            reraise=True,
        )
        return retrying(self._post_once, method, payload)

    def _post_once(self, method: str, payload: dict[str, Any]) -> Any:
        self.rate_limiter.acquire()
        url = f"{self.webhook_url}{method}.json"
        started = time.monotonic()
        try:
            response = self.session.post(url, json=payload, timeout=self.timeout)
        except requests.exceptions.ConnectTimeout as exc:
            raise Bitrix24TimeoutError(
                method, f"connect timeout: {exc}", may_have_executed=False
            ) from exc
        except requests.exceptions.Timeout as exc:
            raise Bitrix24TimeoutError(
                method, f"read timeout: {exc}", may_have_executed=True
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            executed = not _is_connect_failure(exc)
            raise Bitrix24TransportError(
                method, f"connection error: {exc}", may_have_executed=executed
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise Bitrix24TransportError(
                method, f"request failed: {exc}", may_have_executed=False
            ) from exc

        elapsed = time.monotonic() - started
        logger.debug(
            "bitrix24 %s -> HTTP %s in %.3fs", method, response.status_code, elapsed
        )
        return self._result(method, response)

    @staticmethod
    def _result(method: str, response: requests.Response) -> Any:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise api_error(
                method,
                f"HTTP_{response.status_code}",
                "reply is not a JSON object: " + response.text[:200],
                response.status_code,
            )
        if "error" in body:
            raise api_error(
                method,
                str(body["error"]),
                str(body.get("error_description", "")),
                response.status_code,
            )
        if "result" not in body:
            raise api_error(
                method, "INVALID_RESPONSE", "reply has no result", response.status_code
            )
        return body["result"]

    @staticmethod
    def _log_retry(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        logger.info(
            "bitrix24 call failed on attempt %s, retrying in %.2fs: %s",
            state.attempt_number,
            delay,
            exc,
        )


def _keyboard_button(button: Mapping[str, Any]) -> dict[str, Any]:
    text = str(button.get("text", "")).strip()
    if not text:
        raise ValueError(f"keyboard button without text: {button!r}")
    entry: dict[str, Any] = {"TEXT": text, "DISPLAY": button.get("display", "LINE")}
    if button.get("link"):
        entry["LINK"] = button["link"]
    else:
        action = str(button.get("action", "")).lstrip("/")
        if not action:
            raise ValueError(f"keyboard button without action or link: {button!r}")
        entry["COMMAND"] = action
        entry["COMMAND_PARAMS"] = str(button.get("params", ""))
    if button.get("block"):
        entry["BLOCK"] = "Y"
    for key in ("bg_color", "text_color"):
        if button.get(key):
            entry[key.upper()] = button[key]
    return entry


def _is_connect_failure(exc: requests.exceptions.ConnectionError) -> bool:
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)
