"""A local Bitrix24 for developing and testing the bot without a portal.

It serves the v1 ``imbot.*`` REST methods the bot uses through an incoming
webhook, with the platform's checks in the platform's order, its error codes,
HTTP statuses and texts, and delivers events to the bot's handler URL the way
the platform does (form-encoded PHP bracket keys, ``auth[...]``, ``?CLIENT_ID=``
on the stored URL, no retries). Everything is recorded so tests can assert on
what a user would see.

REST: ``POST {base_url}/rest/{user_id}/{webhook_key}/{method}[.json]`` with a
JSON or form body. Supported: imbot.register, imbot.unregister, imbot.bot.list,
imbot.message.add/update/delete, imbot.command.register, imbot.command.answer,
imbot.chat.sendTyping (alias imbot.sendTyping) and batch.

In-process use (tests, or the bot when no portal is configured)::

    with Bitrix24Emulator(port=5010, webhook_key="local", client_id="faqbot") as emu:
        api = Bitrix24API(emu.webhook_url, emu.client_id)
        ...                                 # the bot registers itself
        emu.user_sends("как оформить отпуск")
        answer = emu.wait_for_messages("1", count=1)[-1]
        emu.press_button(answer.message_id, 0)

Switches: ``set_rate_limit(True, drain_rate=2.0, capacity=50)``;
``fail_next(n)`` (500s), ``slow_next(n, delay)`` (reply after a delay, the
call still runs), ``drop_next(n)`` (close the connection).

The user side is also served over HTTP for other processes:
``POST /_emulator/send`` ``{"text", "user_id", "dialog_id", "mention"}``,
``POST /_emulator/press`` ``{"message_id", "button", "user_id"}`` (button: a
0-based index or the button text), ``POST /_emulator/join``,
``POST /_emulator/delete_bot``, ``GET /_emulator/messages?dialog_id=&after_id=``,
``GET /_emulator/state``.

Command line::

    python b24_emulator.py serve [--port 5010] [--key local] [--client-id faqbot]
    python b24_emulator.py chat [--url http://127.0.0.1:5010] [--user-id 1]

``serve`` runs the emulator in the foreground and prints the webhook URL for
the bot. ``chat`` is a terminal chat with the bot: type a question, read the
answer with its numbered buttons, type ``/1`` to press the first button,
``/quit`` to leave.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests
from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from b24_event import MalformedFormError, flatten_php, parse_php_form

logger = logging.getLogger(__name__)

DEFAULT_PORT = 5010
DEFAULT_WEBHOOK_KEY = "emulatorkey"
DEFAULT_CLIENT_ID = "faqbot-local-client"
DEFAULT_DOMAIN = "emulator.bitrix24.local"
DEFAULT_MEMBER_ID = "emulator0member0id"
MAX_MESSAGE_LENGTH = 20_000
MAX_JSON_SIZE = 60_000
MAX_BOTS_PER_APP = 5
EDIT_WINDOW_SECONDS = 3 * 24 * 3600

_DIALOG_ID_RE = re.compile(r"^([0-9]+|(chat|sg|crm)[0-9]+)$", re.IGNORECASE)
_URL_RE = re.compile(r"^(/|https?://)", re.IGNORECASE)
_COLOR_RE = re.compile(r"^#([a-fA-F0-9]){3}(([a-fA-F0-9]){3})?$")
_COMMAND_LINE_RE = re.compile(r"^/(\S*)( ?)(.*)$")
_BUTTON_ACTIONS = {"PUT", "SEND", "COPY", "CALL", "DIALOG", "LIVECHAT", "HELP"}
_ATTACH_BLOCKS = {
    "MESSAGE",
    "LINK",
    "RICH_LINK",
    "USER",
    "GRID",
    "IMAGE",
    "FILE",
    "DELIMITER",
}


class EmulatorError(Exception):
    """A user-side action the platform would refuse (no bot, blocked button...)."""


class RestError(Exception):
    """An error reply: HTTP status, code and description as the platform sends them."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.status = status
        self.code = code
        self.description = description


# records


@dataclass
class EmulatedBot:
    bot_id: int
    code: str
    name: str
    app_key: str
    client_id: str
    bot_type: str
    openline: str
    handlers: dict[str, str]
    handler_ids: dict[str, int]
    properties: dict[str, Any]


@dataclass
class EmulatedCommand:
    command_id: int
    bot_id: int
    command: str
    app_key: str
    handler_url: str
    handler_id: int
    hidden: str
    common: str
    lang: list[dict[str, Any]]


@dataclass
class ChatMessage:
    """A message in a dialog, as a user would see it."""

    message_id: int
    dialog_id: str
    author_id: int
    text: str
    from_bot: bool
    keyboard: list[dict[str, Any]] | None = None
    attach: dict[str, Any] | None = None
    menu: list[dict[str, Any]] | None = None
    system: bool = False
    deleted: bool = False
    updated: int = 0
    created_at: float = field(default_factory=time.time)

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The keyboard without its NEWLINE separators."""
        return [b for b in self.keyboard or [] if b.get("TYPE") != "NEWLINE"]


@dataclass(frozen=True)
class RestCall:
    method: str
    params: dict[str, Any]
    status: int
    error: str | None
    at: float


@dataclass(frozen=True)
class Delivery:
    """One event POSTed to the bot, with how the handler answered."""

    event: str
    url: str | None
    status: int | None
    latency: float
    error: str | None = None
    message_id: int | None = None
    slow: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class TypingEvent:
    bot_id: int
    dialog_id: str
    at: float


@dataclass
class _Fault:
    kind: str
    remaining: int
    method: str | None
    delay: float = 0.0
    status: int = 500
    code: str = "INTERNAL_SERVER_ERROR"
    description: str = "Internal server error"
    after_execute: bool = False


class LeakyBucket:
    """The platform's request counter: +1 per request, drained at a fixed rate."""

    def __init__(self, drain_rate: float = 2.0, capacity: int = 50) -> None:
        self.drain_rate = drain_rate
        self.capacity = capacity
        self._level = 0.0
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            now = time.monotonic()
            drained = (now - self._updated) * self.drain_rate
            self._level = max(0.0, self._level - drained)
            self._updated = now
            if self._level + 1 > self.capacity:
                return False
            self._level += 1
            return True


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("emulator %s %s -> %s", self.command, self.path, code)


# the emulator


class Bitrix24Emulator:
    """An in-process Bitrix24 portal: REST for the bot, user actions for tests."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_key: str = DEFAULT_WEBHOOK_KEY,
        webhook_user_id: int = 1,
        client_id: str = DEFAULT_CLIENT_ID,
        *,
        domain: str = DEFAULT_DOMAIN,
        member_id: str = DEFAULT_MEMBER_ID,
        rate_limit: bool = False,
        drain_rate: float = 2.0,
        capacity: int = 50,
        cloud: bool = True,
        strict_keyboard_size: bool = False,
        application_token: str | None = None,
        send_application_token: bool = True,
        handler_timeout: float = 10.0,
        slow_handler_seconds: float = 1.5,
    ) -> None:
        self.host = host
        self.port = port
        self.webhook_key = webhook_key
        self.webhook_user_id = webhook_user_id
        self.client_id = client_id
        self.domain = domain
        self.member_id = member_id
        self.cloud = cloud
        self.strict_keyboard_size = strict_keyboard_size
        # None sends the bot's own CLIENT_ID, as the platform does for webhooks
        self.application_token = application_token
        self.send_application_token = send_application_token
        self.handler_timeout = handler_timeout
        self.slow_handler_seconds = slow_handler_seconds

        self.rate_limit_enabled = rate_limit
        self._bucket = LeakyBucket(drain_rate, capacity)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._bots: dict[int, EmulatedBot] = {}
        self._commands: dict[int, EmulatedCommand] = {}
        self._messages: dict[int, ChatMessage] = {}
        self._calls: list[RestCall] = []
        self._deliveries: list[Delivery] = []
        self._typing: list[TypingEvent] = []
        self._faults: list[_Fault] = []
        self._blocked_presses: set[tuple[int, int]] = set()
        self._users: dict[int, dict[str, str]] = {}
        self._next_user_id = 1000
        self._next_message_id = 1
        self._next_command_id = 1
        self._next_handler_id = 1
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.app = self._build_app()

    # lifecycle

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/rest/{self.webhook_user_id}/{self.webhook_key}/"

    def start(self) -> Bitrix24Emulator:
        """Serve in a background thread; port 0 picks a free port."""
        if self._server is not None:
            return self
        self._server = make_server(
            self.host,
            self.port,
            self.app,
            threaded=True,
            request_handler=_QuietRequestHandler,
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="b24-emulator",
            daemon=True,
        )
        self._thread.start()
        logger.info("bitrix24 emulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving; recorded state stays until the object is dropped."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread (the ``serve`` command)."""
        server = make_server(
            self.host,
            self.port,
            self.app,
            threaded=True,
            request_handler=_QuietRequestHandler,
        )
        self.port = server.server_port
        try:
            server.serve_forever()
        finally:
            server.server_close()

    def __enter__(self) -> Bitrix24Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # switches

    def set_rate_limit(
        self, enabled: bool = True, drain_rate: float = 2.0, capacity: int = 50
    ) -> None:
        with self._lock:
            self.rate_limit_enabled = enabled
            self._bucket = LeakyBucket(drain_rate, capacity)

    def fail_next(
        self,
        n: int = 1,
        method: str | None = None,
        *,
        status: int = 500,
        code: str = "INTERNAL_SERVER_ERROR",
        description: str = "Internal server error",
    ) -> None:
        """Answer the next ``n`` matching calls with an error, without running them."""
        self._add_fault(
            _Fault("fail", n, method, status=status, code=code, description=description)
        )

    def slow_next(
        self, n: int = 1, delay: float = 1.0, method: str | None = None
    ) -> None:
        """Run the next ``n`` matching calls, then wait ``delay`` before replying."""
        self._add_fault(_Fault("slow", n, method, delay=delay))

    def drop_next(
        self, n: int = 1, method: str | None = None, after_execute: bool = False
    ) -> None:
        """Close the connection without a reply, before or after running the call."""
        self._add_fault(_Fault("drop", n, method, after_execute=after_execute))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: _Fault) -> None:
        if fault.method:
            fault.method = fault.method.lower()
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in (None, method):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return replace(fault)
        return None

    # records

    @property
    def calls(self) -> list[RestCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[RestCall]:
        return [call for call in self.calls if call.method == method.lower()]

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    @property
    def typing_events(self) -> list[TypingEvent]:
        with self._lock:
            return list(self._typing)

    @property
    def bots(self) -> list[EmulatedBot]:
        with self._lock:
            return [replace(bot) for bot in self._bots.values()]

    @property
    def commands(self) -> list[EmulatedCommand]:
        with self._lock:
            return [replace(command) for command in self._commands.values()]

    def message(self, message_id: int) -> ChatMessage | None:
        with self._lock:
            message = self._messages.get(message_id)
            return replace(message) if message else None

    def messages(
        self,
        dialog_id: str | int | None = None,
        *,
        include_user: bool = False,
        include_deleted: bool = False,
        after_id: int = 0,
    ) -> list[ChatMessage]:
        """Bot messages (and optionally the user's) in a dialog, oldest first."""
        with self._lock:
            return [
                replace(message)
                for message in self._messages.values()
                if (dialog_id is None or message.dialog_id == str(dialog_id))
                and (include_user or message.from_bot)
                and (include_deleted or not message.deleted)
                and message.message_id > after_id
            ]

    def wait_for_messages(
        self,
        dialog_id: str | int,
        count: int = 1,
        timeout: float = 5.0,
        after_id: int = 0,
    ) -> list[ChatMessage]:
        """Wait until the dialog holds ``count`` bot messages; raise TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self.messages(dialog_id, after_id=after_id)
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    texts = [message.text[:80] for message in found]
                    raise TimeoutError(
                        f"dialog {dialog_id}: {len(found)} of {count} bot messages "
                        f"after {timeout}s: {texts}"
                    )
                self._changed.wait(remaining)

    def add_user(
        self,
        user_id: int,
        first_name: str,
        last_name: str = "",
        work_position: str = "",
        gender: str = "M",
    ) -> None:
        with self._lock:
            self._users[user_id] = {
                "FIRST_NAME": first_name,
                "LAST_NAME": last_name,
                "WORK_POSITION": work_position,
                "GENDER": gender,
            }

    # the user side

    def user_sends(
        self,
        text: str,
        user_id: int = 1,
        dialog_id: str | int | None = None,
        *,
        mention: bool = True,
        bot_id: int | None = None,
    ) -> Delivery:
        """A user writes to the bot; deliver the event the platform would send.

        ``dialog_id`` None means the user's private dialog with the bot; pass
        ``"chat<N>"`` for a group chat, where the bot gets the message only if
        mentioned. A line ``/cmd ...`` matching a registered command produces
        ONIMCOMMANDADD alone.
        """
        bot = self._pick_bot(bot_id)
        dialog = str(dialog_id) if dialog_id is not None else str(user_id)
        group = dialog.lower().startswith("chat")
        original = f"[USER={bot.bot_id}]{bot.name}[/USER], {text}" if group else text
        if group and not mention:
            original = text
        user_message = self._store_message(
            ChatMessage(0, dialog, user_id, original, from_bot=False)
        )

        command, command_params = self._typed_command(bot, text)
        if command is not None:
            payload = self._command_event(
                bot, command, command_params, "TEXTAREA", user_message, user_id, text
            )
            return self._deliver(command.handler_url, payload, user_message.message_id)

        if group and not mention:
            return Delivery("ONIMBOTMESSAGEADD", None, None, 0.0, "bot not mentioned")
        params = self._message_params(bot, user_message, user_id)
        params["MESSAGE"] = original.replace(
            f"[USER={bot.bot_id}]{bot.name}[/USER]", ""
        )
        if group:
            params["MESSAGE_ORIGINAL"] = original
            params["MENTIONED_LIST"] = {str(bot.bot_id): str(bot.bot_id)}
        payload = self._envelope(
            "ONIMBOTMESSAGEADD",
            bot,
            bot.handler_ids["EVENT_MESSAGE_ADD"],
            {
                "BOT": {str(bot.bot_id): self._bot_fields(bot)},
                "PARAMS": params,
                "USER": self._user_fields(user_id, flags=True),
            },
        )
        url = bot.handlers["EVENT_MESSAGE_ADD"]
        return self._deliver(url, payload, user_message.message_id)

    def press_button(
        self, message_id: int, button: int | str, user_id: int | None = None
    ) -> Delivery | None:
        """A user presses a keyboard button (0-based index or its text).

        A COMMAND button delivers ONIMCOMMANDADD with COMMAND_CONTEXT=KEYBOARD
        and the keyboard message's id; a SEND action sends its text; links and
        other client-side actions deliver nothing (None).
        """
        with self._lock:
            message = self._messages.get(message_id)
            if message is None or message.deleted:
                raise EmulatorError(f"message {message_id} does not exist")
            if not message.keyboard:
                raise EmulatorError(f"message {message_id} has no keyboard")
            buttons = message.buttons
            index = self._button_index(buttons, button)
            chosen = buttons[index]
            if chosen.get("DISABLED") == "Y":
                raise EmulatorError(f"button {index} of {message_id} is disabled")
            if (message_id, index) in self._blocked_presses:
                raise EmulatorError(
                    f"button {index} of message {message_id} is blocked after a press"
                )
            bot = self._bots.get(message.author_id)

        group = message.dialog_id.lower().startswith("chat")
        presser = user_id or (1 if group else int(message.dialog_id))
        if chosen.get("ACTION") == "SEND":
            return self.user_sends(chosen["ACTION_VALUE"], presser, message.dialog_id)
        if not chosen.get("COMMAND"):
            return None
        if bot is None:
            raise EmulatorError(f"the author of message {message_id} is gone")
        command = self._find_command(bot, chosen["COMMAND"])
        if command is None:
            raise EmulatorError(
                f"command {chosen['COMMAND']} is not registered; nothing is delivered"
            )

        if chosen.get("BLOCK") == "Y":
            with self._lock:
                self._blocked_presses.add((message_id, index))
        text = f"/{command.command} {chosen.get('COMMAND_PARAMS', '')}".strip()
        payload = self._command_event(
            bot,
            command,
            chosen.get("COMMAND_PARAMS", ""),
            "KEYBOARD",
            message,
            presser,
            text,
        )
        return self._deliver(command.handler_url, payload, message_id)

    def join_chat(
        self,
        user_id: int = 1,
        dialog_id: str | int | None = None,
        bot_id: int | None = None,
    ) -> Delivery:
        """A user opens a dialog with the bot or adds it to a chat."""
        bot = self._pick_bot(bot_id)
        dialog = str(dialog_id) if dialog_id is not None else str(user_id)
        group = dialog.lower().startswith("chat")
        params: dict[str, Any] = {
            "CHAT_TYPE": "C" if group else "P",
            "MESSAGE_TYPE": "C" if group else "P",
            "BOT_ID": str(bot.bot_id),
            "USER_ID": str(user_id),
            "DIALOG_ID": dialog,
            "LANGUAGE": "ru",
        }
        if group:
            params.update(
                {
                    "CHAT_ID": dialog[4:],
                    "CHAT_AUTHOR_ID": str(user_id),
                    "CHAT_ENTITY_TYPE": "",
                    "CHAT_ENTITY_ID": "",
                    "ACCESS_HISTORY": "Y",
                }
            )
        else:
            params.update({"TO_USER_ID": str(user_id), "FROM_USER_ID": str(bot.bot_id)})
        payload = self._envelope(
            "ONIMBOTJOINCHAT",
            bot,
            bot.handler_ids["EVENT_WELCOME_MESSAGE"],
            {
                "BOT": {str(bot.bot_id): self._bot_fields(bot)},
                "PARAMS": params,
                "USER": self._user_fields(user_id, flags=False),
            },
        )
        return self._deliver(bot.handlers["EVENT_WELCOME_MESSAGE"], payload)

    def delete_bot(self, bot_id: int | None = None) -> Delivery:
        """An administrator deletes the bot from the portal."""
        bot = self._pick_bot(bot_id)
        with self._lock:
            self._bots.pop(bot.bot_id, None)
            for command_id in [
                c.command_id for c in self._commands.values() if c.bot_id == bot.bot_id
            ]:
                del self._commands[command_id]
        payload = self._envelope(
            "ONIMBOTDELETE",
            bot,
            bot.handler_ids["EVENT_BOT_DELETE"],
            {"BOT_ID": str(bot.bot_id), "BOT_CODE": bot.code},
        )
        return self._deliver(bot.handlers["EVENT_BOT_DELETE"], payload)

    # event building and delivery

    def _pick_bot(self, bot_id: int | None) -> EmulatedBot:
        with self._lock:
            if bot_id is not None:
                bot = self._bots.get(bot_id)
            else:
                bot = next(iter(self._bots.values()), None)
        if bot is None:
            raise EmulatorError("no bot is registered on the emulator")
        return bot

    def _typed_command(
        self, bot: EmulatedBot, text: str
    ) -> tuple[EmulatedCommand | None, str]:
        for line in text.splitlines():
            match = _COMMAND_LINE_RE.match(line.strip())
            if match:
                command = self._find_command(bot, match.group(1))
                if command is not None:
                    return command, match.group(3)
        return None, ""

    def _find_command(self, bot: EmulatedBot, name: str) -> EmulatedCommand | None:
        name = name.lstrip("/").lower()
        with self._lock:
            for command in self._commands.values():
                if command.command.lower() != name:
                    continue
                if command.bot_id == bot.bot_id or command.common == "Y":
                    return command
        return None

    def _message_params(
        self, bot: EmulatedBot, message: ChatMessage, user_id: int
    ) -> dict[str, Any]:
        dialog = message.dialog_id
        group = dialog.lower().startswith("chat")
        chat_type = "C" if group else "P"
        params: dict[str, Any] = {
            "MESSAGE_ID": str(message.message_id),
            "MESSAGE_TYPE": chat_type,
            "CHAT_TYPE": chat_type,
            "FROM_USER_ID": str(user_id),
            "AUTHOR_ID": str(user_id),
            "TO_USER_ID": str(bot.bot_id),
            "DIALOG_ID": dialog,
            "TO_CHAT_ID": dialog[4:] if group else str(1000 + user_id),
            "SYSTEM": "N",
            "COMMAND_CONTEXT": "TEXTAREA",
            "LANGUAGE": "ru",
            "PLATFORM_CONTEXT": "web",
        }
        if group:
            params.update({"CHAT_ID": dialog[4:], "CHAT_TITLE": f"Чат {dialog[4:]}"})
        return params

    def _command_event(
        self,
        bot: EmulatedBot,
        command: EmulatedCommand,
        command_params: str,
        context: str,
        message: ChatMessage,
        user_id: int,
        text: str,
    ) -> dict[str, Any]:
        params = self._message_params(bot, message, user_id)
        params["MESSAGE"] = text
        params["COMMAND_CONTEXT"] = context
        if message.dialog_id.lower().startswith("chat"):
            del params["TO_USER_ID"]
            params["BOT_IN_CHAT"] = {str(bot.bot_id): str(bot.bot_id)}
        entry = {
            "BOT_ID": str(command.bot_id),
            "BOT_CODE": bot.code,
            "COMMAND": command.command,
            "COMMAND_ID": str(command.command_id),
            "COMMAND_PARAMS": command_params,
            "COMMAND_CONTEXT": context,
            "MESSAGE_ID": str(message.message_id),
        }
        return self._envelope(
            "ONIMCOMMANDADD",
            bot,
            command.handler_id,
            {
                "COMMAND": {str(command.command_id): entry},
                "PARAMS": params,
                "USER": self._user_fields(user_id, flags=False),
            },
        )

    def _envelope(
        self, event: str, bot: EmulatedBot, handler_id: int, data: dict[str, Any]
    ) -> dict[str, Any]:
        auth = {
            "domain": self.domain,
            "client_endpoint": f"https://{self.domain}/rest/",
            "server_endpoint": "https://oauth.bitrix.info/rest/",
            "member_id": self.member_id,
        }
        if self.send_application_token:
            token = self.application_token
            auth["application_token"] = bot.client_id if token is None else token
        return {
            "event": event,
            "event_handler_id": str(handler_id),
            "data": data,
            "ts": str(int(time.time())),
            "auth": auth,
        }

    @staticmethod
    def _bot_fields(bot: EmulatedBot) -> dict[str, str]:
        return {"BOT_ID": str(bot.bot_id), "BOT_CODE": bot.code}

    def _user_fields(self, user_id: int, flags: bool) -> dict[str, str]:
        with self._lock:
            profile = self._users.get(user_id) or {
                "FIRST_NAME": "Пользователь",
                "LAST_NAME": str(user_id),
                "WORK_POSITION": "",
                "GENDER": "M",
            }
        fields = {
            "ID": str(user_id),
            "NAME": f"{profile['FIRST_NAME']} {profile['LAST_NAME']}".strip(),
            **profile,
        }
        if flags:
            fields.update(
                {"IS_BOT": "N", "IS_CONNECTOR": "N", "IS_NETWORK": "N"}
                | {"IS_EXTRANET": "N"}
            )
        return fields

    def _deliver(
        self, url: str, payload: dict[str, Any], message_id: int | None = None
    ) -> Delivery:
        # the platform posts once and never retries, whatever the handler says
        body = urlencode(flatten_php(payload))
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = requests.post(
                url,
                data=body.encode("ascii"),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=self.handler_timeout,
            )
            status = response.status_code
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        latency = time.monotonic() - started
        slow = latency > self.slow_handler_seconds
        delivery = Delivery(
            payload["event"], url, status, latency, error, message_id, slow
        )
        if slow:
            logger.warning(
                "bot handler took %.2fs for %s; the platform deprioritises slow "
                "handlers",
                latency,
                payload["event"],
            )
        logger.debug(
            "emulator delivered %s to %s: status %s in %.3fs",
            payload["event"],
            url,
            status,
            latency,
        )
        with self._lock:
            self._deliveries.append(delivery)
        return delivery

    def _store_message(self, message: ChatMessage) -> ChatMessage:
        with self._changed:
            message.message_id = self._next_message_id
            self._next_message_id += 1
            self._messages[message.message_id] = message
            self._changed.notify_all()
            return message

    @staticmethod
    def _button_index(buttons: list[dict[str, Any]], button: int | str) -> int:
        if isinstance(button, int):
            if 0 <= button < len(buttons):
                return button
            raise EmulatorError(f"no button {button}; there are {len(buttons)}")
        wanted = button.strip().casefold()
        for index, candidate in enumerate(buttons):
            if str(candidate.get("TEXT", "")).strip().casefold() == wanted:
                return index
        raise EmulatorError(f"no button with text {button!r}")

    # REST

    def _build_app(self) -> Flask:
        app = Flask("b24_emulator")
        app.add_url_rule(
            "/rest/<user_id>/<key>/<path:method>",
            "rest",
            self._rest_view,
            methods=["GET", "POST"],
        )
        user_routes: dict[str, tuple[Callable[[], Any], list[str]]] = {
            "send": (self._http_send, ["POST"]),
            "press": (self._http_press, ["POST"]),
            "join": (self._http_join, ["POST"]),
            "delete_bot": (self._http_delete_bot, ["POST"]),
            "messages": (self._http_messages, ["GET"]),
            "state": (self._http_state, ["GET"]),
        }
        for name, (view, methods) in user_routes.items():
            app.add_url_rule(f"/_emulator/{name}", name, view, methods=methods)
        return app

    def _rest_view(self, user_id: str, key: str, method: str) -> Response:
        started = time.time()
        method = method.lower().removesuffix(".json")
        params = _request_params()
        if user_id != str(self.webhook_user_id) or key != self.webhook_key:
            return self._error_reply(
                method,
                params,
                RestError(401, "NO_AUTH_FOUND", "Wrong authorization data"),
            )
        if self.rate_limit_enabled and not self._bucket.allow():
            return self._error_reply(
                method,
                params,
                RestError(503, "QUERY_LIMIT_EXCEEDED", "Too many requests"),
            )

        fault = self._take_fault(method)
        if fault and fault.kind == "fail":
            error = RestError(fault.status, fault.code, fault.description)
            return self._error_reply(method, params, error)
        if fault and fault.kind == "drop" and not fault.after_execute:
            self._record(method, params, 0, "CONNECTION_DROPPED")
            return _drop_connection()

        try:
            result = self._execute(method, params)
        except RestError as exc:
            return self._error_reply(method, params, exc)

        self._record(method, params, 200, None)
        if fault and fault.kind == "drop":
            return _drop_connection()
        if fault and fault.kind == "slow":
            time.sleep(fault.delay)
        return jsonify({"result": result, "time": _time_block(started)})

    def _error_reply(
        self, method: str, params: dict[str, Any], error: RestError
    ) -> Response:
        self._record(method, params, error.status, error.code)
        response = jsonify(
            {"error": error.code, "error_description": error.description}
        )
        response.status_code = error.status
        return response

    def _record(
        self, method: str, params: dict[str, Any], status: int, error: str | None
    ) -> None:
        with self._lock:
            self._calls.append(RestCall(method, params, status, error, time.time()))

    def _execute(self, method: str, params: dict[str, Any]) -> Any:
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "imbot.register": self._imbot_register,
            "imbot.unregister": self._imbot_unregister,
            "imbot.bot.list": self._imbot_bot_list,
            "imbot.message.add": self._imbot_message_add,
            "imbot.message.update": self._imbot_message_update,
            "imbot.message.delete": self._imbot_message_delete,
            "imbot.command.register": self._imbot_command_register,
            "imbot.command.answer": self._imbot_command_answer,
            "imbot.chat.sendtyping": self._imbot_send_typing,
            "imbot.sendtyping": self._imbot_send_typing,
            "batch": self._batch,
        }
        handler = handlers.get(method)
        if handler is None:
            raise RestError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        with self._lock:
            return handler(params)

    def _batch(self, params: dict[str, Any]) -> dict[str, Any]:
        commands = params.get("CMD")
        halt = str(params.get("HALT", "0")) in ("1", "Y", "true", "True")
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        if not isinstance(commands, dict):
            commands = {}
        if len(commands) > 50:
            raise RestError(
                400, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded"
            )
        for key, command in commands.items():
            name, _, query = str(command).partition("?")
            name = name.lower().removesuffix(".json")
            try:
                sub_params = _upper_keys(
                    parse_php_form(parse_qsl(query, keep_blank_values=True))
                )
            except MalformedFormError:
                sub_params = {}
            try:
                if name == "batch":
                    raise RestError(
                        405, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed"
                    )
                results[key] = self._execute(name, sub_params)
                self._record(name, sub_params, 200, None)
            except RestError as exc:
                self._record(name, sub_params, exc.status, exc.code)
                errors[key] = {"error": exc.code, "error_description": exc.description}
                if halt:
                    break
        return {
            "result": results or [],
            "result_error": errors or [],
            "result_total": [],
            "result_next": [],
            "result_time": [],
        }

    # checks shared by the imbot methods

    @staticmethod
    def _need_client_id(params: dict[str, Any]) -> str:
        client_id = str(params.get("CLIENT_ID") or "").strip()
        if not client_id:
            raise RestError(
                403, "ACCESS_DENIED", "Access denied! Client ID not specified"
            )
        return "custom" + client_id

    def _resolve_bot(self, params: dict[str, Any], app_key: str) -> EmulatedBot:
        if "BOT_ID" in params:
            bot = self._bots.get(_to_int(params["BOT_ID"]))
            if bot is None:
                raise RestError(400, "BOT_ID_ERROR", "Bot not found")
            if bot.app_key != app_key:
                raise RestError(
                    400, "APP_ID_ERROR", "Bot was installed by another rest application"
                )
            return bot
        for bot in self._bots.values():
            if bot.app_key == app_key:
                return bot
        raise RestError(400, "BOT_ID_ERROR", "Bot not found")

    def _allocate_handler_id(self) -> int:
        handler_id = self._next_handler_id
        self._next_handler_id += 1
        return handler_id

    # imbot.register and friends

    def _imbot_register(self, params: dict[str, Any]) -> int:
        params = dict(params)
        app_key = self._need_client_id(params)
        client_id = app_key.removeprefix("custom")
        names = (
            "EVENT_MESSAGE_ADD",
            "EVENT_MESSAGE_UPDATE",
            "EVENT_MESSAGE_DELETE",
            "EVENT_WELCOME_MESSAGE",
            "EVENT_BOT_DELETE",
        )
        if params.get("EVENT_HANDLER"):
            for name in names:
                params[name] = params["EVENT_HANDLER"]

        _check_handler(params, "EVENT_MESSAGE_ADD", "Message add")
        for name in ("EVENT_MESSAGE_UPDATE", "EVENT_MESSAGE_DELETE"):
            if params.get(name):
                _check_handler(params, name, None)
        _check_handler(params, "EVENT_WELCOME_MESSAGE", "Welcome message")
        _check_handler(params, "EVENT_BOT_DELETE", "Bot delete")
        code = str(params.get("CODE") or "").strip()
        if not code:
            raise RestError(400, "CODE_ERROR", "Bot code isn't specified")
        own = [bot for bot in self._bots.values() if bot.app_key == app_key]
        if self.cloud and len(own) >= MAX_BOTS_PER_APP:
            raise RestError(
                400,
                "MAX_COUNT_ERROR",
                "Has reached the maximum number of bots for application (max: 5)",
            )

        bot_type = str(params.get("TYPE") or "B").upper()
        bot_type = bot_type if bot_type in ("O", "B", "H", "S") else "B"
        openline = "Y" if params.get("OPENLINE") == "Y" or bot_type == "O" else "N"
        keep_edits = bot_type in ("S", "O") or openline == "Y"
        properties = params.get("PROPERTIES")
        if not isinstance(properties, dict) or not (
            properties.get("NAME") or properties.get("LAST_NAME")
        ):
            raise RestError(400, "NAME_ERROR", "Bot name isn't specified")

        for bot in self._bots.values():
            if bot.code == code:
                return bot.bot_id

        handlers = {
            name: _with_client_id(str(params[name]), client_id)
            for name in names
            if params.get(name)
            and (
                keep_edits
                or name not in ("EVENT_MESSAGE_UPDATE", "EVENT_MESSAGE_DELETE")
            )
        }
        bot = EmulatedBot(
            bot_id=self._next_user_id,
            code=code,
            name=str(properties.get("NAME") or properties.get("LAST_NAME")),
            app_key=app_key,
            client_id=client_id,
            bot_type=bot_type,
            openline=openline,
            handlers=handlers,
            handler_ids={name: self._allocate_handler_id() for name in handlers},
            properties=dict(properties),
        )
        self._next_user_id += 1
        self._bots[bot.bot_id] = bot
        logger.info("emulator registered bot %s as %s", code, bot.bot_id)
        return bot.bot_id

    def _imbot_unregister(self, params: dict[str, Any]) -> bool:
        app_key = self._need_client_id(params)
        bot = self._bots.get(_to_int(params.get("BOT_ID")))
        if bot is None:
            raise RestError(400, "BOT_ID_ERROR", "Bot not found")
        if bot.app_key != app_key:
            raise RestError(
                400, "APP_ID_ERROR", "Bot was installed by another rest application"
            )
        del self._bots[bot.bot_id]
        for command_id in [
            c.command_id for c in self._commands.values() if c.bot_id == bot.bot_id
        ]:
            del self._commands[command_id]
        return True

    def _imbot_bot_list(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            str(bot.bot_id): {
                "ID": bot.bot_id,
                "NAME": bot.name,
                "CODE": bot.code,
                "OPENLINE": bot.openline,
            }
            for bot in self._bots.values()
        }

    # messages

    def _imbot_message_add(self, params: dict[str, Any]) -> int:
        app_key = self._need_client_id(params)
        bot = self._resolve_bot(params, app_key)
        system = params.get("SYSTEM") == "Y"
        from_user = _to_int(params.get("FROM_USER_ID"))
        to_user = _to_int(params.get("TO_USER_ID"))
        if from_user > 0 and to_user > 0:
            dialog, author, system = str(to_user), from_user, True
        else:
            dialog, author = _check_dialog_id(params), bot.bot_id

        text = _message_text(params)
        attach = self._parse_attach(params.get("ATTACH"))
        keyboard = self._parse_keyboard(
            params.get("KEYBOARD"), check_size=self.strict_keyboard_size
        )
        menu = self._parse_menu(params.get("MENU"))
        message = ChatMessage(
            0,
            dialog,
            author,
            text,
            from_bot=True,
            keyboard=keyboard,
            attach=attach,
            menu=menu,
            system=system,
        )
        return self._store_message(message).message_id

    def _imbot_message_update(self, params: dict[str, Any]) -> bool:
        app_key = self._need_client_id(params)
        bot = self._resolve_bot(params, app_key)
        message = self._editable_message(params, bot)

        changes: dict[str, Any] = {}
        for name, parse in (
            ("ATTACH", self._parse_attach),
            ("KEYBOARD", lambda value: self._parse_keyboard(value, check_size=True)),
            ("MENU", self._parse_menu),
        ):
            if name in params:
                value = params[name]
                changes[name.lower()] = None if _is_clear(value) else parse(value)
        if "MESSAGE" in params:
            text = str(params.get("MESSAGE") or "").strip()
            if not text:
                changes["deleted"] = True
            else:
                changes["text"] = _truncate(text)

        with self._changed:
            for name, value in changes.items():
                setattr(message, name, value)
            message.updated += 1
            self._changed.notify_all()
        return True

    def _imbot_message_delete(self, params: dict[str, Any]) -> bool:
        app_key = self._need_client_id(params)
        bot = self._resolve_bot(params, app_key)
        message = self._editable_message(params, bot)
        with self._changed:
            message.deleted = True
            message.keyboard = None
            if params.get("COMPLETE") == "Y":
                message.text = ""
            self._changed.notify_all()
        return True

    def _editable_message(
        self, params: dict[str, Any], bot: EmulatedBot
    ) -> ChatMessage:
        message_id = _to_int(params.get("MESSAGE_ID"))
        if message_id <= 0:
            raise RestError(400, "MESSAGE_ID_ERROR", "Message ID can't be empty")
        message = self._messages.get(message_id)
        too_old = message and time.time() - message.created_at > EDIT_WINDOW_SECONDS
        if (
            message is None
            or message.deleted
            or message.author_id != bot.bot_id
            or too_old
        ):
            raise RestError(
                403,
                "CANT_EDIT_MESSAGE",
                "Time has expired for modification or you don't have access",
            )
        return message

    # commands

    def _imbot_command_register(self, params: dict[str, Any]) -> int:
        app_key = self._need_client_id(params)
        client_id = app_key.removeprefix("custom")
        _check_handler(params, "EVENT_COMMAND_ADD", "Command add")
        name = str(params.get("COMMAND") or "").strip()
        if not name:
            raise RestError(400, "COMMAND_ERROR", "Command isn't specified")
        bot = self._bots.get(_to_int(params.get("BOT_ID")))
        if bot is None:
            raise RestError(400, "BOT_ID_ERROR", "Bot not found")
        if bot.app_key != app_key:
            raise RestError(
                400, "APP_ID_ERROR", "Bot was installed by another rest application"
            )
        flags = {
            key: "Y" if params.get(key) == "Y" else "N"
            for key in ("COMMON", "HIDDEN", "EXTRANET_SUPPORT")
        }
        lang = params.get("LANG")
        if not lang:
            raise RestError(400, "LANG_ERROR", "Lang set can't be empty")

        name = name.lstrip("/")
        for command in self._commands.values():
            if command.bot_id == bot.bot_id and command.command == name:
                return command.command_id
        entries = [
            dict(entry)
            for entry in _as_list(lang)
            if isinstance(entry, dict)
            and entry.get("LANGUAGE_ID")
            and entry.get("TITLE")
        ]
        command = EmulatedCommand(
            command_id=self._next_command_id,
            bot_id=bot.bot_id,
            command=name,
            app_key=app_key,
            handler_url=_with_client_id(str(params["EVENT_COMMAND_ADD"]), client_id),
            handler_id=self._allocate_handler_id(),
            hidden=flags["HIDDEN"],
            common=flags["COMMON"],
            lang=entries,
        )
        self._next_command_id += 1
        self._commands[command.command_id] = command
        return command.command_id

    def _imbot_command_answer(self, params: dict[str, Any]) -> int:
        app_key = self._need_client_id(params)
        command: EmulatedCommand | None = None
        if "COMMAND_ID" in params:
            command = self._commands.get(_to_int(params["COMMAND_ID"]))
            if command is None:
                raise RestError(400, "COMMAND_ID_ERROR", "Command not found")
            if command.app_key != app_key:
                raise RestError(
                    400,
                    "APP_ID_ERROR",
                    "Command was installed by another rest application",
                )
        elif "COMMAND" in params:
            name = str(params["COMMAND"]).lstrip("/")
            command = next(
                (
                    c
                    for c in self._commands.values()
                    if c.app_key == app_key and c.command == name
                ),
                None,
            )
            if command is None:
                raise RestError(400, "COMMAND_ID_ERROR", "Command not found")
        message_id = _to_int(params.get("MESSAGE_ID"))
        if message_id <= 0:
            raise RestError(400, "MESSAGE_ID_EMPTY", "Message ID can't be empty")
        text = _message_text(params)
        attach = self._parse_attach(params.get("ATTACH"))
        keyboard = self._parse_keyboard(params.get("KEYBOARD"), check_size=True)
        menu = self._parse_menu(params.get("MENU"))
        target = self._messages.get(message_id)
        if command is None or target is None:
            raise RestError(400, "WRONG_REQUEST", "Message isn't added")
        message = ChatMessage(
            0,
            target.dialog_id,
            command.bot_id,
            text,
            from_bot=True,
            keyboard=keyboard,
            attach=attach,
            menu=menu,
            system=params.get("SYSTEM") == "Y",
        )
        return self._store_message(message).message_id

    def _imbot_send_typing(self, params: dict[str, Any]) -> bool:
        app_key = self._need_client_id(params)
        bot = self._resolve_bot(params, app_key)
        dialog = _check_dialog_id(params)
        self._typing.append(TypingEvent(bot.bot_id, dialog, time.time()))
        return True

    # keyboard, attach and menu rules

    @staticmethod
    def _parse_keyboard(value: Any, check_size: bool) -> list[dict[str, Any]] | None:
        if _is_empty(value):
            return None
        value = _decode_json_param(value, "KEYBOARD_ERROR", "Incorrect keyboard params")
        if isinstance(value, dict) and "BUTTONS" in value:
            value = value["BUTTONS"]
        buttons: list[dict[str, Any]] = []
        for item in _as_list(value):
            if isinstance(item, dict) and item.get("TYPE") == "NEWLINE":
                buttons.append({"TYPE": "NEWLINE"})
                continue
            button = _normalize_button(item)
            if button is not None:
                buttons.append(button)
        if not any(button.get("TYPE") != "NEWLINE" for button in buttons):
            raise RestError(400, "KEYBOARD_ERROR", "Incorrect keyboard params")
        if check_size and len(json.dumps(buttons, ensure_ascii=False)) >= MAX_JSON_SIZE:
            raise RestError(
                400,
                "KEYBOARD_OVERSIZE",
                "You have exceeded the maximum allowable size of keyboard",
            )
        return buttons

    @staticmethod
    def _parse_attach(value: Any) -> dict[str, Any] | None:
        if _is_empty(value):
            return None
        value = _decode_json_param(value, "ATTACH_ERROR", "Incorrect attach params")
        attach: dict[str, Any] = {}
        blocks_source = value
        if isinstance(value, dict) and "BLOCKS" in value:
            attach = {key: item for key, item in value.items() if key != "BLOCKS"}
            blocks_source = value["BLOCKS"]
        blocks = [block for block in _as_list(blocks_source) if _valid_block(block)]
        if not blocks:
            raise RestError(400, "ATTACH_ERROR", "Incorrect attach params")
        attach["BLOCKS"] = blocks
        if len(json.dumps(attach, ensure_ascii=False)) >= MAX_JSON_SIZE:
            raise RestError(
                400,
                "ATTACH_OVERSIZE",
                "You have exceeded the maximum allowable size of attach",
            )
        return attach

    @staticmethod
    def _parse_menu(value: Any) -> list[dict[str, Any]] | None:
        if _is_empty(value):
            return None
        value = _decode_json_param(value, "MENU_ERROR", "Incorrect menu params")
        if isinstance(value, dict) and "ITEMS" in value:
            value = value["ITEMS"]
        items = [item for item in map(_normalize_button, _as_list(value)) if item]
        if not items:
            raise RestError(400, "MENU_ERROR", "Incorrect menu params")
        return items

    # the user side over HTTP

    def _http_send(self) -> Response:
        body = request.get_json(silent=True) or {}
        return self._user_action(
            lambda: self.user_sends(
                str(body.get("text", "")),
                int(body.get("user_id", 1)),
                body.get("dialog_id"),
                mention=bool(body.get("mention", True)),
            )
        )

    def _http_press(self) -> Response:
        body = request.get_json(silent=True) or {}
        return self._user_action(
            lambda: self.press_button(
                int(body.get("message_id", 0)),
                body.get("button", 0),
                body.get("user_id"),
            )
        )

    def _http_join(self) -> Response:
        body = request.get_json(silent=True) or {}
        return self._user_action(
            lambda: self.join_chat(int(body.get("user_id", 1)), body.get("dialog_id"))
        )

    def _http_delete_bot(self) -> Response:
        body = request.get_json(silent=True) or {}
        return self._user_action(lambda: self.delete_bot(body.get("bot_id")))

    def _user_action(self, action: Callable[[], Delivery | None]) -> Response:
        try:
            delivery = action()
        except (EmulatorError, ValueError, TypeError) as exc:
            response = jsonify({"error": str(exc)})
            response.status_code = 409
            return response
        return jsonify({"delivery": asdict(delivery) if delivery else None})

    def _http_messages(self) -> Response:
        dialog_id = request.args.get("dialog_id") or None
        after_id = _to_int(request.args.get("after_id", 0))
        include_user = request.args.get("include_user") in ("1", "true")
        found = self.messages(dialog_id, include_user=include_user, after_id=after_id)
        return jsonify({"messages": [asdict(message) for message in found]})

    def _http_state(self) -> Response:
        return jsonify(
            {
                "webhook_url": self.webhook_url,
                "client_id": self.client_id,
                "bots": [asdict(bot) for bot in self.bots],
                "commands": [asdict(command) for command in self.commands],
                "calls": len(self.calls),
            }
        )


# request helpers


def _request_params() -> dict[str, Any]:
    params: dict[str, Any] = {}
    for source in (request.query_string.decode("utf-8", "replace"), None):
        try:
            if source is not None:
                params.update(parse_php_form(parse_qsl(source, keep_blank_values=True)))
            elif request.is_json:
                body = request.get_json(silent=True)
                if isinstance(body, dict):
                    params.update(body)
            else:
                text = request.get_data().decode("utf-8", "replace")
                params.update(parse_php_form(parse_qsl(text, keep_blank_values=True)))
        except MalformedFormError as exc:
            logger.debug("emulator ignored a malformed parameter: %s", exc)
    return _upper_keys(params)


def _upper_keys(params: Mapping[str, Any]) -> dict[str, Any]:
    # the platform upper-cases top-level keys only (array_change_key_case)
    return {str(key).upper(): value for key, value in params.items()}


def _drop_connection() -> Response:
    connection = request.environ.get("werkzeug.socket")
    if connection is not None:
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
    return Response(status=500)


def _time_block(started: float) -> dict[str, Any]:
    finished = time.time()
    return {
        "start": started,
        "finish": finished,
        "duration": finished - started,
        "processing": finished - started,
        "date_start": datetime.fromtimestamp(started, UTC).isoformat(),
        "date_finish": datetime.fromtimestamp(finished, UTC).isoformat(),
        "operating_reset_at": int(started) + 600,
        "operating": 0,
    }


def _to_int(value: Any) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 0


def _as_list(value: Any) -> list[Any]:
    # form bodies turn PHP lists into maps with numeric keys
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if value and all(str(key).isdigit() for key in value):
            return [value[key] for key in sorted(value, key=int)]
        return list(value.values())
    return []


def _is_empty(value: Any) -> bool:
    return value is None or value in ("", [], {})


def _is_clear(value: Any) -> bool:
    return _is_empty(value) or value == "N"


def _decode_json_param(value: Any, code: str, description: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise RestError(400, code, description) from None
    return value


def _check_handler(params: dict[str, Any], name: str, title: str | None) -> None:
    url = str(params.get(name) or "").strip()
    code = f"{name}_ERROR"
    if not url:
        raise RestError(400, code, f'Handler for "{title}" event isn\'t specified')
    problem = handler_url_problem(url)
    if problem:
        raise RestError(400, code, problem)


def handler_url_problem(url: str) -> str | None:
    """The platform's check of a handler URL; None when it is accepted."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "Wrong handler URL"
    if not host or host.find(".") <= 0:
        return "Wrong handler URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "Unsupported handler protocol"
    return None


def _with_client_id(url: str, client_id: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({'CLIENT_ID': client_id})}"


def _check_dialog_id(params: dict[str, Any]) -> str:
    dialog = str(params.get("DIALOG_ID") or "").strip()
    if not dialog or dialog == "0" or not _DIALOG_ID_RE.match(dialog):
        raise RestError(400, "DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    return dialog


def _message_text(params: dict[str, Any]) -> str:
    text = str(params.get("MESSAGE") or "").strip()
    if not text:
        raise RestError(400, "MESSAGE_EMPTY", "Message can't be empty")
    return _truncate(text)


def _truncate(text: str) -> str:
    if len(text) <= MAX_MESSAGE_LENGTH:
        return text
    return text[:MAX_MESSAGE_LENGTH] + " (...)"


def _normalize_button(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    text = item.get("TEXT")
    if not isinstance(text, str) or not text.strip():
        return None
    button: dict[str, Any] = {"TEXT": text.strip()}
    link = str(item.get("LINK") or "")
    action = str(item.get("ACTION") or "").upper()
    if link and _URL_RE.match(link):
        button["LINK"] = link
    elif item.get("APP_ID"):
        button["APP_ID"] = item["APP_ID"]
        button["APP_PARAMS"] = str(item.get("APP_PARAMS") or "")
    elif action in _BUTTON_ACTIONS and item.get("ACTION_VALUE"):
        button["ACTION"] = action
        button["ACTION_VALUE"] = str(item["ACTION_VALUE"])
    elif str(item.get("COMMAND") or "").lstrip("/"):
        button["COMMAND"] = str(item["COMMAND"]).lstrip("/")
        button["COMMAND_PARAMS"] = str(item.get("COMMAND_PARAMS") or "")
    else:
        return None

    button["BLOCK"] = "Y" if item.get("BLOCK") == "Y" else "N"
    button["DISABLED"] = "Y" if item.get("DISABLED") == "Y" else "N"
    button["DISPLAY"] = "LINE" if item.get("DISPLAY") == "LINE" else "BLOCK"
    context = str(item.get("CONTEXT") or "ALL").upper()
    button["CONTEXT"] = context if context in ("MOBILE", "DESKTOP") else "ALL"
    if _to_int(item.get("WIDTH")) > 0:
        button["WIDTH"] = _to_int(item["WIDTH"])
    for key in ("BG_COLOR", "TEXT_COLOR", "OFF_BG_COLOR", "OFF_TEXT_COLOR"):
        if isinstance(item.get(key), str) and _COLOR_RE.match(item[key]):
            button[key] = item[key]
    return button


def _valid_block(block: Any) -> bool:
    if not isinstance(block, dict) or len(block) != 1:
        return False
    kind, content = next(iter(block.items()))
    if kind not in _ATTACH_BLOCKS:
        return False
    if kind == "MESSAGE":
        return isinstance(content, str) and bool(content.strip())
    if kind in ("LINK", "RICH_LINK", "IMAGE", "FILE"):
        entries = _as_list(content) if kind in ("IMAGE", "FILE") else [content]
        if (
            kind in ("IMAGE", "FILE")
            and isinstance(content, dict)
            and "LINK" in content
        ):
            entries = [content]
        return bool(entries) and all(
            isinstance(entry, dict) and _URL_RE.match(str(entry.get("LINK") or ""))
            for entry in entries
        )
    return content not in (None, "")


# terminal chat


_RENDER_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\[br\]", re.IGNORECASE), "\n"),
    (
        re.compile(r"\[url=([^\]]+)\](.*?)\[/url\]", re.IGNORECASE | re.DOTALL),
        r"\2 <\1>",
    ),
    (re.compile(r"\[url\](.*?)\[/url\]", re.IGNORECASE | re.DOTALL), r"<\1>"),
    (re.compile(r"\[user=[^\]]*\](.*?)\[/user\]", re.IGNORECASE | re.DOTALL), r"@\1"),
    (
        re.compile(r"\[(send|put)=[^\]]*\](.*?)\[/\1\]", re.IGNORECASE | re.DOTALL),
        r"\2",
    ),
    (
        re.compile(
            r"\[/?(b|i|u|s|size|color|code|quote|chat|context|icon|img)(=[^\]]*)?\]",
            re.IGNORECASE,
        ),
        "",
    ),
]


def render_bbcode(text: str) -> str:
    """BB-code as plain terminal text: links as ``text <url>``, tags dropped."""
    for pattern, replacement in _RENDER_RULES:
        text = pattern.sub(replacement, text)
    return text


def render_keyboard(buttons: list[dict[str, Any]], first_number: int = 1) -> str:
    """Number the buttons row by row: ``[1] Полезно  [2] Не помогло``."""
    rows: list[list[str]] = [[]]
    number = first_number
    for button in buttons:
        if button.get("TYPE") == "NEWLINE":
            rows.append([])
            continue
        rows[-1].append(f"[{number}] {button.get('TEXT', '')}")
        number += 1
    return "\n".join("  " + "   ".join(row) for row in rows if row)


class _TerminalChat:
    def __init__(self, url: str, user_id: int, poll: float) -> None:
        self.url = url.rstrip("/")
        self.user_id = user_id
        self.poll = poll
        self.last_id = 0
        self.keyboard_message: int | None = None
        self.session = requests.Session()
        self._stop = threading.Event()
        self._print_lock = threading.Lock()

    def run(self) -> int:
        try:
            state = self.session.get(f"{self.url}/_emulator/state", timeout=5).json()
        except requests.RequestException as exc:
            print(f"Эмулятор Bitrix24 недоступен по адресу {self.url}: {exc}")
            return 1
        if not state.get("bots"):
            print("Бот ещё не зарегистрирован в эмуляторе: запустите бота.")
        self.last_id = self._latest_id()
        print("Чат с ботом. Пишите вопрос; /N нажимает кнопку N, /quit выход.")
        poller = threading.Thread(target=self._poll_loop, daemon=True)
        poller.start()
        try:
            for line in self._lines():
                if not self._handle(line):
                    break
        finally:
            self._stop.set()
        return 0

    def _lines(self) -> Iterator[str]:
        while True:
            try:
                yield input("> ").strip()
            except (EOFError, KeyboardInterrupt):
                return

    def _handle(self, line: str) -> bool:
        if not line:
            return True
        if line in ("/quit", "/exit"):
            return False
        if re.fullmatch(r"/\d+", line):
            return self._press(int(line[1:]))
        reply = self.session.post(
            f"{self.url}/_emulator/send",
            json={"text": line, "user_id": self.user_id},
            timeout=30,
        )
        if reply.status_code != 200:
            self._say(f"(не доставлено: {reply.json().get('error')})")
        return True

    def _press(self, number: int) -> bool:
        if self.keyboard_message is None:
            self._say("(кнопок нет)")
            return True
        reply = self.session.post(
            f"{self.url}/_emulator/press",
            json={
                "message_id": self.keyboard_message,
                "button": number - 1,
                "user_id": self.user_id,
            },
            timeout=30,
        )
        if reply.status_code != 200:
            self._say(f"(кнопка не нажата: {reply.json().get('error')})")
        return True

    def _latest_id(self) -> int:
        found = self._fetch(after_id=0)
        return max((message["message_id"] for message in found), default=0)

    def _fetch(self, after_id: int) -> list[dict[str, Any]]:
        reply = self.session.get(
            f"{self.url}/_emulator/messages",
            params={"dialog_id": str(self.user_id), "after_id": after_id},
            timeout=5,
        )
        return reply.json().get("messages", [])

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                found = self._fetch(self.last_id)
            except (requests.RequestException, ValueError):
                continue
            for message in found:
                self.last_id = max(self.last_id, message["message_id"])
                self._show(message)

    def _show(self, message: dict[str, Any]) -> None:
        lines = ["", "Бот: " + render_bbcode(message["text"])]
        if message.get("keyboard"):
            self.keyboard_message = message["message_id"]
            lines.append(render_keyboard(message["keyboard"]))
        self._say("\n".join(lines))

    def _say(self, text: str) -> None:
        with self._print_lock:
            print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local Bitrix24 for the FAQ bot.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the emulator in the foreground")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--key", default=DEFAULT_WEBHOOK_KEY)
    serve.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    serve.add_argument("--rate-limit", action="store_true")
    chat = commands.add_parser("chat", help="talk to the bot from the terminal")
    chat.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}")
    chat.add_argument("--user-id", type=int, default=1)
    chat.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "serve":
        emulator = Bitrix24Emulator(
            args.host,
            args.port,
            args.key,
            client_id=args.client_id,
            rate_limit=args.rate_limit,
        )
        print(f"webhook URL: {emulator.webhook_url}")
        print(f"CLIENT_ID:   {emulator.client_id}")
        emulator.serve_forever()
        return 0
    return _TerminalChat(args.url, args.user_id, args.poll).run()


if __name__ == "__main__":
    sys.exit(main())
