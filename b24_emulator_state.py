"""What the emulated portal holds: its records, errors and shared state.

`EmulatorState` is the base of `Bitrix24Emulator` and of the two halves mixed
into it, `RestMethods` (b24_emulator_rest.py) and `EventDelivery`
(b24_emulator_events.py); every record lives here, behind one lock.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any


class EmulatorError(Exception):
    """A user-side action the platform would refuse (no bot, blocked button...)."""


class RestError(Exception):
    """An error reply: HTTP status, code and description as the platform sends them."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.status = status
        self.code = code
        self.description = description


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
class Fault:
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


class EmulatorState:
    """The portal's bots, commands, messages and records, and the lock over them."""

    # settings, assigned by Bitrix24Emulator.__init__ and changed by tests
    webhook_user_id: int
    webhook_key: str
    client_id: str
    domain: str
    member_id: str
    cloud: bool
    strict_keyboard_size: bool
    application_token: str | None
    send_application_token: bool
    handler_timeout: float
    slow_handler_seconds: float
    rate_limit_enabled: bool

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._bucket = LeakyBucket()
        self._bots: dict[int, EmulatedBot] = {}
        self._commands: dict[int, EmulatedCommand] = {}
        self._messages: dict[int, ChatMessage] = {}
        self._calls: list[RestCall] = []
        self._deliveries: list[Delivery] = []
        self._typing: list[TypingEvent] = []
        self._faults: list[Fault] = []
        self._blocked_presses: set[tuple[int, int]] = set()
        self._users: dict[int, dict[str, str]] = {}
        self._next_user_id = 1000
        self._next_message_id = 1
        self._next_command_id = 1
        self._next_handler_id = 1

    def _store_message(self, message: ChatMessage) -> ChatMessage:
        with self._changed:
            message.message_id = self._next_message_id
            self._next_message_id += 1
            self._messages[message.message_id] = message
            self._changed.notify_all()
            return message

    def _remove_bot(self, bot_id: int) -> None:
        """Forget a bot and every command it registered."""
        with self._lock:
            self._bots.pop(bot_id, None)
            for command_id in [
                c.command_id for c in self._commands.values() if c.bot_id == bot_id
            ]:
                del self._commands[command_id]
