"""Helpers for the bot's tests: a small Russian FAQ, event bodies, a served app."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from werkzeug.serving import make_server

from b24_event import flatten_php
from config import Config, load_config
from database import Outcome

SMALL_FAQ: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "Отпуск и кадры",
        "Как оформить отпуск?",
        "Подайте заявление в разделе «Кадры → Заявления» не позже чем за две "
        "недели. После согласования руководителем отдел кадров подготовит приказ.",
        ("как уйти в отпуск", "заявление на отпуск"),
    ),
    (
        "Отпуск и кадры",
        "Как перенести отпуск на другие даты?",
        "Договоритесь с руководителем и подайте заявление о переносе в разделе "
        "«Кадры → Заявления».",
        ("перенос отпуска",),
    ),
    (
        "Отпуск и кадры",
        "Как оформить больничный?",
        "Сообщите руководителю в первый день болезни и пришлите номер "
        "электронного больничного в отдел кадров.",
        ("заболел что делать",),
    ),
    (
        "IT и доступы",
        "Не работает VPN, что делать?",
        "Перезапустите клиент VPN и проверьте срок действия пароля. Если не "
        "помогло, напишите в техподдержку: help@company.ru.",
        ("VPN не подключается", "нет доступа к VPN"),
    ),
    (
        "IT и доступы",
        "Как сбросить пароль от почты?",
        "Откройте страницу самообслуживания id.company.ru и нажмите «Забыли "
        "пароль». Новый пароль придёт по SMS.",
        ("забыл пароль от почты",),
    ),
    (
        "Офис",
        "Где получить пропуск в офис?",
        "Пропуск выдаёт служба безопасности на первом этаже, с собой нужен паспорт.",
        ("оформить пропуск",),
    ),
    (
        "Офис",
        "Как забронировать переговорную?",
        "Переговорные бронируются в календаре Битрикс24: создайте встречу и "
        "выберите комнату в поле «Место».",
        ("бронь переговорной",),
    ),
)


def load_small_faq(database: Any) -> dict[str, int]:
    """Fill an empty database with `SMALL_FAQ`; return FAQ ids by question."""
    ids = {}
    for category, question, answer, phrasings in SMALL_FAQ:
        record = database.add_faq(question, answer, category, phrasings=phrasings)
        ids[question] = record.id
    return ids


def bot_config(
    tmp_path: Path, emulator: Any, handler_url: str, **changes: Any
) -> Config:
    """A configuration that points the bot at the emulator and tmp storage."""
    config = load_config({}, env_file=None).with_overrides(
        webhook_url=emulator.webhook_url,
        client_id=emulator.client_id,
        handler_url=handler_url,
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        chroma_path=tmp_path / "chroma",
        worker_threads=2,
    )
    return config.with_overrides(**changes)


def event_body(
    event: str = "ONIMBOTMESSAGEADD",
    *,
    message: str = "Как оформить отпуск?",
    message_id: int = 501,
    user_id: int = 405,
    dialog_id: str = "405",
    token: str | None = None,
    domain: str = "emulator.bitrix24.local",
    member_id: str = "emulator0member0id",
    command: str | None = None,
    command_params: str = "",
    command_id: int = 15,
    bot_id: int = 926,
    ts: int | None = None,
) -> str:
    """A form-encoded event shaped like the platform's (section 5 of the docs)."""
    params: dict[str, Any] = {
        "MESSAGE": message,
        "MESSAGE_ID": str(message_id),
        "MESSAGE_TYPE": "C" if dialog_id.startswith("chat") else "P",
        "CHAT_TYPE": "C" if dialog_id.startswith("chat") else "P",
        "FROM_USER_ID": str(user_id),
        "DIALOG_ID": dialog_id,
        "LANGUAGE": "ru",
    }
    data: dict[str, Any] = {
        "BOT": {str(bot_id): {"BOT_ID": str(bot_id), "BOT_CODE": "faq_bot"}},
        "PARAMS": params,
        "USER": {"ID": str(user_id), "NAME": "Иван Петров"},
    }
    if command is not None:
        data["COMMAND"] = {
            str(command_id): {
                "BOT_ID": str(bot_id),
                "COMMAND": command,
                "COMMAND_ID": str(command_id),
                "COMMAND_PARAMS": command_params,
                "COMMAND_CONTEXT": "KEYBOARD",
                "MESSAGE_ID": str(message_id),
            }
        }
        params["MESSAGE"] = f"/{command} {command_params}".strip()
    auth = {"domain": domain, "member_id": member_id}
    if token is not None:
        auth["application_token"] = token
    payload = {
        "event": event,
        "event_handler_id": "7",
        "data": data,
        "ts": str(ts if ts is not None else int(time.time())),
        "auth": auth,
    }
    return urlencode(flatten_php(payload))


class ServedApp:
    """A real HTTP server for a WSGI app that can be swapped (a restart).

    It records the raw body of every POST, so a test can deliver the very same
    event again, as a proxy that resends would.
    """

    def __init__(self) -> None:
        self.app: Callable[..., Iterable[bytes]] | None = None
        self.bodies: list[tuple[str, bytes]] = []
        self._server = make_server("127.0.0.1", 0, self, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook/bitrix24"

    def start(self) -> ServedApp:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            self.bodies.append((environ.get("QUERY_STRING", ""), body))
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"not started"]
        return self.app(environ, start_response)


@dataclass(frozen=True)
class StubCandidate:
    faq_id: int
    question: str
    answer: str
    category: str
    category_id: int
    score: float
    matched_text: str
    supported: bool = True


@dataclass(frozen=True)
class StubReply:
    outcome: Outcome
    answer: StubCandidate | None
    choices: tuple[StubCandidate, ...]
    candidates: tuple[StubCandidate, ...]
    smalltalk_reply: str | None
    text_raw: str
    text_searched: str
    took_ms: float = 0.0


class StubEngine:
    """A predictable stand-in for `faq_core.FAQEngine` over the dense index.

    Answers at `answer_at` and above when the runner-up is `gap` behind,
    offers choices from `choices_at`, says
    hello to «привет», and nothing for an empty message. `fail` makes `ask`
    raise, to test what the user sees when search breaks.
    """

    def __init__(
        self,
        database: Any,
        search: Any,
        answer_at: float = 92.0,
        choices_at: float = 88.0,
        gap: float = 2.5,
    ) -> None:
        self.database = database
        self.search = search
        self.answer_at = answer_at
        self.choices_at = choices_at
        self.gap = gap
        self.fail = False

    def ask(self, text: str) -> StubReply:
        if self.fail:
            raise RuntimeError("search is down")
        cleaned = " ".join(text.split())
        if not cleaned:
            return StubReply(Outcome.EMPTY, None, (), (), None, text, "")
        if cleaned.casefold().strip("!") == "привет":
            return StubReply(Outcome.SMALLTALK, None, (), (), "Привет! 👋", text, "")
        candidates = []
        for hit in self.search.search(cleaned, 5):
            faq = self.database.get_faq(hit.faq_id)
            candidates.append(
                StubCandidate(
                    faq.id,
                    faq.question,
                    faq.answer,
                    faq.category,
                    faq.category_id,
                    hit.score,
                    hit.matched_text,
                )
            )
        top = candidates[0] if candidates else None
        second = candidates[1].score if len(candidates) > 1 else 0.0
        clear = top is not None and top.score - second >= self.gap
        if top is not None and top.score >= self.answer_at and clear:
            outcome, answer, choices = Outcome.ANSWERED, top, ()
        elif top is not None and top.score >= self.choices_at:
            close = tuple(c for c in candidates if c.score >= self.choices_at)
            outcome, answer, choices = Outcome.CHOICES, None, close[:4]
        else:
            outcome, answer, choices = Outcome.NO_ANSWER, None, ()
        return StubReply(
            outcome, answer, choices, tuple(candidates), None, text, cleaned
        )
