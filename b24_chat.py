"""A terminal chat with the bot through a running emulator.

``python b24_emulator.py chat`` runs it: type a question, read the answer with
its numbered buttons, type ``/1`` to press the first button, ``/quit`` to leave.
It talks to the emulator's user side over HTTP, so the bot may run elsewhere.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests

# how long the prompt waits for the bot's reply before it comes back anyway
REPLY_WAIT_SECONDS = 15.0

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


class TerminalChat:
    """The chat loop: questions from stdin, bot messages polled and printed."""

    def __init__(self, url: str, user_id: int, poll: float) -> None:
        self.url = url.rstrip("/")
        self.user_id = user_id
        self.poll = poll
        self.last_id = 0
        self.keyboard_message: int | None = None
        self.keyboard_size = 0
        self.session = requests.Session()
        self._stop = threading.Event()
        self._replied = threading.Event()
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
                try:
                    if not self._handle(line):
                        break
                except requests.RequestException as exc:
                    # the bot's local Bitrix24 went away; say so and keep the chat
                    self._say(
                        f"(эмулятор Bitrix24 недоступен: {exc.__class__.__name__})"
                    )
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
        self._replied.clear()
        reply = self.session.post(
            f"{self.url}/_emulator/send",
            json={"text": line, "user_id": self.user_id},
            timeout=30,
        )
        if reply.status_code != 200:
            self._say(f"(не доставлено: {reply.json().get('error')})")
            return True
        self._await_reply()
        return True

    def _await_reply(self) -> None:
        """Hold the next prompt until the bot has answered, or for a while."""
        if self._replied.wait(REPLY_WAIT_SECONDS):
            # a reply may come in several messages; let them all print
            time.sleep(self.poll * 2)

    def _press(self, number: int) -> bool:
        if self.keyboard_message is None:
            self._say("(кнопок нет)")
            return True
        if not 1 <= number <= self.keyboard_size:
            self._say(
                f"(нет кнопки {number}: у последнего ответа {self.keyboard_size})"
            )
            return True
        self._replied.clear()
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
        self._await_reply()
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
            self.keyboard_size = sum(
                1 for b in message["keyboard"] if b.get("TYPE") != "NEWLINE"
            )
            lines.append(render_keyboard(message["keyboard"]))
        self._say("\n".join(lines))
        self._replied.set()

    def _say(self, text: str) -> None:
        with self._print_lock:
            print(text, flush=True)
