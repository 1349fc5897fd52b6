"""Incoming Bitrix24 events parsed once, at the edge, into a small typed object.

Bitrix24 posts events as ``application/x-www-form-urlencoded`` bodies with PHP
bracket keys (``data[PARAMS][MESSAGE]``, ``data[COMMAND][15][COMMAND_ID]``);
some proxies re-post them as nested JSON. Both become the same nested
structure here, with numeric keys kept (they are bot and command ids).

The parser never raises on bad input. An event that cannot be used has
``is_valid`` set to False and a short ``problem`` string for one log line.

From a Flask view, read the raw body and never touch ``request.form``: werkzeug
replaces undecodable bytes silently and enforces its own form size limit::

    body = request.get_data(cache=False)
    event = Bitrix24Event.from_raw_body(
        body, request.content_type, request.query_string
    )
    if not event.is_valid:
        logger.warning("rejected bitrix24 event: %s", event.problem)
        return "", 400
    if not event.verify(client_id):
        return "", 403

Set ``app.config["MAX_CONTENT_LENGTH"] = RECOMMENDED_MAX_CONTENT_LENGTH`` so a
20,000-character Cyrillic message (about 240 kB in a group chat, where the
original text is sent twice) passes and oversized bodies get a 413.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import unquote_to_bytes

logger = logging.getLogger(__name__)

# 512 KiB: a full-length message twice (MESSAGE and MESSAGE_ORIGINAL) plus the
# envelope fits; werkzeug's 500 kB form limit would otherwise answer first.
RECOMMENDED_MAX_CONTENT_LENGTH = 512 * 1024
# php's max_input_nesting_level; the platform's own events go 5 levels deep,
# and a deeper key would only exhaust the stack of the recursive steps after
MAX_NESTING = 64

_KEY_RE = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_SEGMENT_RE = re.compile(r"\[([^\[\]]*)\]")
_DIALOG_ID_RE = re.compile(r"^([0-9]{1,19}|(chat|sg|crm)[0-9]{1,19})$", re.IGNORECASE)
# platform ids are positive 64-bit integers; a longer number is no id at all
_MAX_ID = 2**63 - 1
# NUL and lone surrogates (JSON "\ud800") are no text: postgres refuses NUL and
# utf-8 cannot encode a lone surrogate, so both would fail far from the edge
_NOT_TEXT_RE = re.compile("[\x00\ud800-\udfff]")
_MAP_SECTIONS = ("PARAMS", "BOT", "COMMAND", "USER")
_BBCODE_TAG_RE = re.compile(
    r"\[/?(?:b|i|u|s|size|color|url|user|chat|context|code|img|icon|put|send|"
    r"call|timestamp|disk|br|quote|left|right|center|justify|list|\*)"
    r"(?:[= ][^\]]*)?\]",
    re.IGNORECASE,
)
_LEADING_NOISE_RE = re.compile(r"^[\s,.;:!?\-\u2013\u2014)]+")


class EventType(StrEnum):
    """Event names the bot receives through its handler URL."""

    MESSAGE_ADD = "ONIMBOTMESSAGEADD"
    COMMAND_ADD = "ONIMCOMMANDADD"
    JOIN_CHAT = "ONIMBOTJOINCHAT"
    BOT_DELETE = "ONIMBOTDELETE"


class MalformedFormError(ValueError):
    """A form key or value that cannot be mapped onto a nested structure."""


def parse_php_form(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Turn ``(key, value)`` pairs with PHP bracket keys into nested dicts.

    Keys are kept exactly as sent, numeric ones included. Raises
    :class:`MalformedFormError` for an empty or unclosed bracket, a duplicate
    key, or a key that is both a value and a map.
    """
    root: dict[str, Any] = {}
    for key, value in pairs:
        match = _KEY_RE.match(key)
        if match is None:
            raise MalformedFormError(f"malformed key {key!r}")

        path = [match.group(1), *_SEGMENT_RE.findall(match.group(2))]
        if any(part == "" for part in path):
            raise MalformedFormError(f"empty bracket in key {key!r}")
        if len(path) > MAX_NESTING:
            raise MalformedFormError(f"key nested deeper than {MAX_NESTING} levels")

        node = root
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise MalformedFormError(f"key {key!r} nests under a value")
            node = child

        leaf = path[-1]
        if leaf in node:
            raise MalformedFormError(f"duplicate or conflicting key {key!r}")
        node[leaf] = value
    return root


def flatten_php(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Encode nested dicts and lists as PHP bracket pairs (``http_build_query``).

    Booleans become ``1``/``0`` and ``None`` an empty string, as PHP does.
    """
    pairs: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                walk(f"{prefix}[{key}]", item)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{prefix}[{index}]", item)
        else:
            pairs.append((prefix, _scalar_to_str(value)))

    for key, value in params.items():
        walk(str(key), value)
    return pairs


def normalize_json(value: Any) -> Any:
    """Give a JSON body the shape a form body has: string scalars, dict maps."""
    if isinstance(value, Mapping):
        return {str(key): normalize_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return {str(index): normalize_json(item) for index, item in enumerate(value)}
    return _scalar_to_str(value)


def _scalar_to_str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _to_int(value: Any) -> int | None:
    """A platform id: ascii digits only («١٢», «1_0» and «-5» are none)."""
    text = str(value).strip() if value is not None else ""
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if number <= _MAX_ID else None


def _nesting(document: Any) -> int:
    """How deep maps and lists go in a JSON document, without recursion."""
    deepest = 0
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, Mapping):
            children: Iterable[Any] = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > MAX_NESTING:
            break
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _clean_text(value: Any) -> Any:
    """Drop NUL and lone surrogates from every key and string of a payload."""
    if isinstance(value, dict):
        return {_clean_text(key): _clean_text(item) for key, item in value.items()}
    if isinstance(value, str) and _NOT_TEXT_RE.search(value):
        return _NOT_TEXT_RE.sub("", value)
    return value


@dataclass(frozen=True)
class EventAuth:
    """The ``auth`` block of an event; webhook bots get no OAuth tokens."""

    application_token: str = ""
    domain: str = ""
    member_id: str = ""
    client_endpoint: str = ""


@dataclass(frozen=True)
class EventCommand:
    """One entry of ``data[COMMAND]``, keyed by its command id."""

    key: str
    command: str
    params: str
    command_id: int | None
    context: str
    message_id: int | None
    bot_id: int | None


@dataclass(frozen=True)
class Bitrix24Event:
    """A parsed event; build it with one of the ``from_*`` constructors."""

    payload: dict[str, Any] = field(repr=False)
    query: dict[str, str] = field(default_factory=dict, repr=False)
    problem: str | None = None
    unreadable: bool = False

    # construction

    @classmethod
    def from_raw_body(
        cls,
        body: bytes,
        content_type: str | None = None,
        query_string: bytes | str | Mapping[str, str] = b"",
    ) -> Bitrix24Event:
        """Build an event from the raw request body, decoding UTF-8 strictly.

        Bodies that are not UTF-8 still yield an event (values decoded with
        replacement characters so the dialog can be told), flagged
        ``unreadable`` and invalid.
        """
        query = _decode_query(query_string)
        if not body or not body.strip():
            return cls({}, query, problem="empty body")

        mime = (content_type or "").split(";", 1)[0].strip().lower()
        if mime == "application/json":
            return cls._from_json_bytes(body, query)
        if mime not in ("", "application/x-www-form-urlencoded"):
            return cls({}, query, problem=f"unsupported content type {mime}")

        try:
            pairs = _split_form(body, errors="strict")
        except UnicodeDecodeError:
            problem = f"body is not valid UTF-8 ({_guess_encoding(body)} suspected)"
            event = cls.from_pairs(_split_form(body, errors="replace"), query)
            return cls(event.payload, query, problem=problem, unreadable=True)
        return cls.from_pairs(pairs, query)

    @classmethod
    def _from_json_bytes(cls, body: bytes, query: dict[str, str]) -> Bitrix24Event:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            problem = f"body is not valid UTF-8 ({_guess_encoding(body)} suspected)"
            return cls({}, query, problem=problem, unreadable=True)
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            # RecursionError: arrays nested thousands deep, sent to crash us
            return cls({}, query, problem="body is not valid JSON")
        return cls.from_json(document, query)

    @classmethod
    def from_pairs(
        cls,
        pairs: Iterable[tuple[str, str]],
        query_args: Mapping[str, str] | None = None,
    ) -> Bitrix24Event:
        """Build an event from decoded form pairs with PHP bracket keys."""
        query = dict(query_args or {})
        pairs = list(pairs)
        if not pairs:
            return cls({}, query, problem="empty body")
        try:
            payload = parse_php_form(pairs)
        except MalformedFormError as exc:
            return cls({}, query, problem=str(exc))
        return cls._checked(payload, query)

    @classmethod
    def from_json(
        cls, document: Any, query_args: Mapping[str, str] | None = None
    ) -> Bitrix24Event:
        """Build an event from a nested JSON document."""
        query = dict(query_args or {})
        if not isinstance(document, Mapping):
            return cls({}, query, problem="JSON body is not an object")
        if not document:
            return cls({}, query, problem="empty body")
        if _nesting(document) > MAX_NESTING:
            return cls({}, query, problem=f"JSON nested deeper than {MAX_NESTING}")
        if any("[" in str(key) for key in document):
            # a proxy that turned the form into JSON without nesting it
            pairs = [(str(k), _scalar_to_str(v)) for k, v in document.items()]
            return cls.from_pairs(pairs, query)
        return cls._checked(normalize_json(document), query)

    @classmethod
    def from_request(
        cls, form_or_json: Any, query_args: Mapping[str, str] | None = None
    ) -> Bitrix24Event:
        """Build an event from ``request.form`` (a MultiDict) or parsed JSON.

        Prefer :meth:`from_raw_body`; this is for callers that already hold a
        decoded mapping.
        """
        if form_or_json is None:
            return cls({}, dict(query_args or {}), problem="empty body")
        if hasattr(form_or_json, "getlist"):
            return cls.from_pairs(form_or_json.items(multi=True), query_args)
        if isinstance(form_or_json, Mapping) and any(
            "[" in str(key) for key in form_or_json
        ):
            return cls.from_pairs(form_or_json.items(), query_args)
        return cls.from_json(form_or_json, query_args)

    @classmethod
    def _checked(cls, payload: dict[str, Any], query: dict[str, str]) -> Bitrix24Event:
        payload = _clean_text(payload)
        event = cls(payload, query)
        problem = event._find_problem()
        if problem:
            return cls(payload, query, problem=problem)
        return event

    def _find_problem(self) -> str | None:
        if not self.event_type:
            return "missing event type"

        data = self.payload.get("data", {})
        if not isinstance(data, dict):
            return "data is not a map"
        for key, value in data.items():
            if key.isdigit():
                return f"unexpected numeric key data[{key}]"
            if key in _MAP_SECTIONS and not isinstance(value, dict):
                return f"data[{key}] is not a map"
        if not isinstance(self.payload.get("auth", {}), dict):
            return "auth is not a map"

        if self.event_type in (
            EventType.MESSAGE_ADD,
            EventType.COMMAND_ADD,
            EventType.JOIN_CHAT,
        ) and not _DIALOG_ID_RE.match(self.dialog_id):
            return "missing or invalid dialog id"
        if self.event_type == EventType.COMMAND_ADD:
            entries = data.get("COMMAND", {})
            if not entries or not all(isinstance(v, dict) for v in entries.values()):
                return "missing or malformed data[COMMAND]"
            if not self.command_name:
                return "missing command name"
        return None

    # validity and origin

    @property
    def is_valid(self) -> bool:
        return self.problem is None

    def verify(
        self, client_id: str, domain: str | None = None, member_id: str | None = None
    ) -> bool:
        """Check that the event comes from our portal for our bot.

        Webhook bots get ``auth[application_token]`` equal to their CLIENT_ID;
        older portals only add ``?CLIENT_ID=`` to the handler URL, so either
        one matching is accepted. Comparisons run in constant time.
        """
        if not client_id:
            return False
        expected = client_id.encode()
        token_ok = hmac.compare_digest(self.auth.application_token.encode(), expected)
        query_ok = hmac.compare_digest(self.client_id.encode(), expected)
        if not (token_ok or query_ok):
            return False
        if domain and self.auth.domain.lower() != domain.lower():
            return False
        return not (member_id and self.auth.member_id != member_id)

    # envelope

    @property
    def event_type(self) -> str:
        value = self.payload.get("event", "")
        return value.strip().upper() if isinstance(value, str) else ""

    @property
    def is_message(self) -> bool:
        return self.event_type == EventType.MESSAGE_ADD

    @property
    def is_command(self) -> bool:
        return self.event_type == EventType.COMMAND_ADD

    @property
    def is_join_chat(self) -> bool:
        return self.event_type == EventType.JOIN_CHAT

    @property
    def is_bot_delete(self) -> bool:
        return self.event_type == EventType.BOT_DELETE

    @property
    def ts(self) -> int | None:
        return _to_int(self.payload.get("ts"))

    @property
    def event_handler_id(self) -> int | None:
        return _to_int(self.payload.get("event_handler_id"))

    @property
    def client_id(self) -> str:
        """The ``CLIENT_ID`` query parameter the platform adds to handler URLs."""
        return self.query.get("CLIENT_ID", "")

    @property
    def auth(self) -> EventAuth:
        block = self._map(self.payload.get("auth"))
        return EventAuth(
            application_token=self._str(block.get("application_token")),
            domain=self._str(block.get("domain")),
            member_id=self._str(block.get("member_id")),
            client_endpoint=self._str(block.get("client_endpoint")),
        )

    # sections

    @property
    def data(self) -> dict[str, Any]:
        return self._map(self.payload.get("data"))

    @property
    def params(self) -> dict[str, Any]:
        return self._map(self.data.get("PARAMS"))

    @property
    def user(self) -> dict[str, Any]:
        return self._map(self.data.get("USER"))

    @property
    def bots(self) -> dict[str, Any]:
        """``data[BOT]`` keyed by bot id, as sent."""
        return self._map(self.data.get("BOT"))

    @property
    def commands(self) -> tuple[EventCommand, ...]:
        """Every ``data[COMMAND]`` entry in the order sent; none are merged."""
        entries = []
        for key, entry in self._map(self.data.get("COMMAND")).items():
            if not isinstance(entry, dict):
                continue
            entries.append(
                EventCommand(
                    key=key,
                    command=self._str(entry.get("COMMAND")).lstrip("/"),
                    params=self._str(entry.get("COMMAND_PARAMS")),
                    command_id=_to_int(entry.get("COMMAND_ID", key)),
                    context=self._str(entry.get("COMMAND_CONTEXT")),
                    message_id=_to_int(entry.get("MESSAGE_ID")),
                    bot_id=_to_int(entry.get("BOT_ID")),
                )
            )
        return tuple(entries)

    @property
    def command(self) -> EventCommand | None:
        commands = self.commands
        return commands[0] if commands else None

    # message fields

    @property
    def user_id(self) -> int:
        # in ONIMBOTJOINCHAT, FROM_USER_ID is the bot and USER_ID the person
        for value in (
            self.params.get("USER_ID"),
            self.params.get("FROM_USER_ID"),
            self.user.get("ID"),
        ):
            user_id = _to_int(value)
            if user_id:
                return user_id
        return 0

    @property
    def dialog_id(self) -> str:
        return self._str(self.params.get("DIALOG_ID")).strip()

    @property
    def is_group_chat(self) -> bool:
        return self.dialog_id.lower().startswith("chat")

    @property
    def chat_type(self) -> str:
        return self._str(
            self.params.get("CHAT_TYPE") or self.params.get("MESSAGE_TYPE")
        ).upper()

    @property
    def bot_id(self) -> int | None:
        for key, entry in self.bots.items():
            value = entry.get("BOT_ID", key) if isinstance(entry, dict) else key
            bot_id = _to_int(value)
            if bot_id:
                return bot_id
        command = self.command
        if command and command.bot_id:
            return command.bot_id
        return _to_int(self.data.get("BOT_ID")) or _to_int(self.params.get("BOT_ID"))

    @property
    def bot_code(self) -> str:
        for entry in self.bots.values():
            if isinstance(entry, dict) and entry.get("BOT_CODE"):
                return self._str(entry["BOT_CODE"])
        return self._str(self.data.get("BOT_CODE"))

    @property
    def language(self) -> str:
        return self._str(self.params.get("LANGUAGE")).lower()

    @property
    def user_name(self) -> str:
        name = self._str(self.user.get("NAME")).strip()
        if name:
            return name
        parts = (self.user.get("FIRST_NAME"), self.user.get("LAST_NAME"))
        return " ".join(self._str(part) for part in parts if part).strip()

    @property
    def mentioned_ids(self) -> tuple[int, ...]:
        mentioned = self._map(self.params.get("MENTIONED_LIST"))
        ids = (_to_int(value) or _to_int(key) for key, value in mentioned.items())
        return tuple(user_id for user_id in ids if user_id)

    @property
    def raw_message_text(self) -> str:
        return self._str(self.params.get("MESSAGE"))

    @property
    def message_text(self) -> str:
        """The user's text, trimmed; in group chats without leftover markup.

        The platform removes the bot mention but leaves the separator after
        it (``, как оформить отпуск``) and any other BB-code.
        """
        text = self.raw_message_text
        if self.is_group_chat:
            bot_id = self.bot_id
            if bot_id:
                mention = rf"\[user={bot_id}\].*?\[/user\]"
                text = re.sub(mention, " ", text, flags=re.IGNORECASE)
            text = _BBCODE_TAG_RE.sub(" ", text)
            text = _LEADING_NOISE_RE.sub("", text)
            text = re.sub(r"[ \t]{2,}", " ", text)
        return text.strip()

    # command fields

    @property
    def command_name(self) -> str:
        command = self.command
        return command.command if command else ""

    @property
    def command_params(self) -> str:
        command = self.command
        return command.params if command else ""

    @property
    def command_id(self) -> int | None:
        command = self.command
        return command.command_id if command else None

    @property
    def command_context(self) -> str:
        command = self.command
        if command and command.context:
            return command.context.upper()
        return self._str(self.params.get("COMMAND_CONTEXT")).upper()

    @property
    def message_id(self) -> int | None:
        """For a command, the message to answer (the keyboard's message)."""
        command = self.command
        if command and command.message_id:
            return command.message_id
        return _to_int(self.params.get("MESSAGE_ID"))

    def to_dict(self) -> dict[str, Any]:
        """The nested payload, for logging or storing the raw event."""
        return json.loads(json.dumps(self.payload))

    @staticmethod
    def _map(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    @staticmethod
    def _str(value: Any) -> str:
        return value if isinstance(value, str) else ""


def _split_form(body: bytes, errors: str) -> list[tuple[str, str]]:
    pairs = []
    for chunk in body.split(b"&"):
        if not chunk:
            continue
        raw_key, _, raw_value = chunk.partition(b"=")
        key = unquote_to_bytes(raw_key.replace(b"+", b" ")).decode("utf-8", errors)
        value = unquote_to_bytes(raw_value.replace(b"+", b" ")).decode("utf-8", errors)
        pairs.append((key, value))
    return pairs


def _decode_query(query_string: bytes | str | Mapping[str, str]) -> dict[str, str]:
    if isinstance(query_string, Mapping):
        return {str(key): str(value) for key, value in query_string.items()}
    if isinstance(query_string, str):
        query_string = query_string.encode("utf-8", "replace")
    query: dict[str, str] = {}
    for key, value in _split_form(query_string.lstrip(b"?"), errors="replace"):
        query.setdefault(key, value)
    return query


def _guess_encoding(body: bytes) -> str:
    decoded = unquote_to_bytes(body.replace(b"+", b" "))
    try:
        text = decoded.decode("cp1251")
    except UnicodeDecodeError:
        return "unknown encoding"
    non_ascii = [char for char in text if ord(char) > 127]
    cyrillic = [char for char in non_ascii if "\u0400" <= char <= "\u04ff"]
    if non_ascii and len(cyrillic) * 2 >= len(non_ascii):
        return "cp1251"
    return "unknown encoding"
