"""A whole conversation through the local Bitrix24, with the real FAQ engine.

The bot is served on a real port; the emulator delivers the user's actions to it
the way the platform does, and the assertions are on what the user sees in the
chat: texts and buttons of the bot's messages.
"""

from __future__ import annotations

import re

import pytest
import requests
from b24_harness import ServedApp, bot_config, load_small_faq
from flask import Flask

import b24_texts as texts
from b24_api import Bitrix24API, RateLimiter
from b24_bot import create_app
from b24_emulator import Bitrix24Emulator, ChatMessage, EmulatorError
from database import Outcome

USER = 1
DIALOG = "1"
pytestmark = pytest.mark.timeout(120)


class Chat:
    """The user's side of the dialog with the bot, and the bot's restarts."""

    def __init__(
        self, tmp_path, emulator: Bitrix24Emulator, database, faq_search
    ) -> None:
        self.tmp_path = tmp_path
        self.emulator = emulator
        self.database = database
        self.faq_search = faq_search
        self.served = ServedApp().start()
        self.apps: list[Flask] = []
        self.seen = 0

    def start_bot(self) -> Flask:
        """Start (or restart) the bot on the same port, as a new process would."""
        if self.apps:
            self.apps[-1].extensions["faq_bot"].worker.stop()
        api = Bitrix24API(
            self.emulator.webhook_url,
            self.emulator.client_id,
            rate_limiter=RateLimiter.unlimited(),
        )
        config = bot_config(self.tmp_path, self.emulator, self.served.url)
        app = create_app(
            config, api=api, database=self.database, search=self.faq_search
        )
        self.served.app = app
        self.apps.append(app)
        return app

    def close(self) -> None:
        for app in self.apps:
            app.extensions["faq_bot"].worker.stop()
        self.served.stop()

    def next_reply(self, dialog: str = DIALOG) -> ChatMessage:
        """Wait for the bot's next message in the dialog."""
        messages = self.emulator.wait_for_messages(dialog, self.seen + 1, timeout=30)
        self.seen += 1
        return messages[self.seen - 1]

    def says(self, text: str) -> ChatMessage:
        delivery = self.emulator.user_sends(text, USER)
        assert delivery.status == 200
        return self.next_reply()

    def presses(self, message: ChatMessage, button: str) -> ChatMessage:
        delivery = self.emulator.press_button(message.message_id, button, USER)
        assert delivery is not None and delivery.status == 200
        return self.next_reply()

    def settle(self) -> None:
        assert self.apps[-1].extensions["faq_bot"].worker.wait_idle()


@pytest.fixture
def chat(tmp_path, emulator, database, faq_search):
    load_small_faq(database)
    session = Chat(tmp_path, emulator, database, faq_search)
    session.start_bot()
    yield session
    session.close()


def labels(message: ChatMessage) -> list[str]:
    return [button["TEXT"] for button in message.buttons]


def commands(message: ChatMessage) -> list[str]:
    return [button["COMMAND"] for button in message.buttons]


CATEGORY_BUTTONS = ["Отпуск и кадры (3)", "IT и доступы (2)", "Офис (2)"]
RATING_BUTTONS = [texts.BUTTON_YES, texts.BUTTON_NO]


def test_a_whole_conversation(chat: Chat, emulator, database) -> None:
    # joining: a welcome that says what the bot does, with the categories
    chat.emulator.join_chat(USER)
    welcome = chat.next_reply()
    assert "FAQ-бот" in welcome.text and "категории" in welcome.text
    assert labels(welcome) == CATEGORY_BUTTONS

    # a question: the answer, related questions, rating buttons
    answer = chat.says("Как оформить отпуск?")
    assert answer.text.startswith("[b]Как оформить отпуск?[/b]\n\nПодайте заявление")
    assert "Похожие вопросы" in answer.text
    related = [b["TEXT"] for b in answer.buttons if b["COMMAND"] == "choice"]
    assert related and "Как оформить отпуск?" not in related
    assert labels(answer) == [*related, *RATING_BUTTONS]
    assert emulator.typing_events[-1].dialog_id == DIALOG

    # a rating: thanks, stored once, and the rating buttons are gone from it
    thanks = chat.presses(answer, texts.BUTTON_YES)
    assert thanks.text == texts.THANKS_HELPFUL
    assert labels(emulator.message(answer.message_id)) == related
    assert database.rating_summary() == (1, 0)
    with pytest.raises(EmulatorError):
        emulator.press_button(answer.message_id, texts.BUTTON_YES, USER)

    # the same press delivered again later (a new event) counts nothing
    _, press_body = chat.served.bodies[-1]
    later = re.sub(rb"ts=(\d+)", lambda m: b"ts=%d" % (int(m[1]) + 1), press_body)
    repeat = requests.post(
        f"{chat.served.url}?CLIENT_ID={emulator.client_id}",
        data=later,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )
    assert repeat.json() == {"status": "accepted"}
    assert chat.next_reply().text == texts.ALREADY_RATED
    assert database.rating_summary() == (1, 0)

    # a related question opened by its button is an answer of its own
    opened = chat.presses(emulator.message(answer.message_id), related[0])
    assert opened.text.startswith(f"[b]{related[0]}[/b]")
    assert labels(opened)[-2:] == RATING_BUTTONS

    # categories, a category's questions, an entry opened by button
    categories = chat.says("категории")
    assert categories.text == texts.CATEGORIES
    assert labels(categories) == CATEGORY_BUTTONS
    assert set(commands(categories)) == {"cat"}

    leave = chat.presses(categories, "Отпуск и кадры (3)")
    assert "Отпуск и кадры" in leave.text
    assert labels(leave) == [
        "Как оформить отпуск?",
        "Как перенести отпуск на другие даты?",
        "Как оформить больничный?",
        texts.BUTTON_ALL_CATEGORIES,
    ]

    sick = chat.presses(leave, "Как оформить больничный?")
    assert sick.text.startswith("[b]Как оформить больничный?[/b]\n\nСообщите")
    assert labels(sick) == RATING_BUTTONS

    # «Не помогло»: thanks, the categories offered, the buttons taken off
    not_helpful = chat.presses(sick, texts.BUTTON_NO)
    assert not_helpful.text.startswith(texts.THANKS_NOT_HELPFUL)
    assert labels(not_helpful)[-3:] == CATEGORY_BUTTONS
    assert emulator.message(sick.message_id).keyboard in (None, [])
    assert database.rating_summary() == (1, 1)

    # a question the FAQ does not cover: a polite reply and the categories
    unknown = chat.says("Какая погода будет на Марсе завтра?")
    assert unknown.text.startswith("😔 К сожалению, я не нашёл ответа")
    assert "Марсе" in unknown.text
    assert labels(unknown)[-3:] == CATEGORY_BUTTONS

    # every step left its logs with the platform
    logs = database.recent_interactions(limit=20)
    assert {log.platform for log in logs} == {"bitrix24"}
    assert [log.outcome for log in logs][-1] == Outcome.ANSWERED
    assert Outcome.NO_ANSWER in {log.outcome for log in logs}


def test_small_talk_and_group_chats(chat: Chat, emulator, database) -> None:
    # field report 13: a greeting gets a short reply, never an FAQ entry
    hello = chat.says("привет")
    assert hello.buttons == []
    assert not hello.text.startswith("[b]")
    assert database.recent_interactions()[0].outcome == Outcome.SMALLTALK

    emulator.user_sends("как оформить отпуск", USER, "chat1157")
    in_chat = emulator.wait_for_messages("chat1157", 1, timeout=30)[-1]
    assert in_chat.text.startswith("[b]Как оформить отпуск?[/b]")


def test_user_text_echoed_back_stays_text(chat: Chat) -> None:
    reply = chat.says("[url=https://evil.example]Марс[/url] погода завтра")

    assert reply.text.startswith("😔")
    assert "[url=" not in reply.text


def test_a_forged_event_is_refused_and_nothing_is_sent(chat: Chat, emulator) -> None:
    chat.says("Как оформить отпуск?")
    _, body = chat.served.bodies[-1]
    sent = len(emulator.messages(DIALOG))
    forged = body.replace(
        f"auth%5Bapplication_token%5D={emulator.client_id}".encode(),
        b"auth%5Bapplication_token%5D=guess",
    )
    assert forged != body

    reply = requests.post(
        chat.served.url,
        data=forged.replace(b"MESSAGE_ID%5D=", b"MESSAGE_ID%5D=9"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )

    assert reply.status_code == 403
    chat.settle()
    assert len(emulator.messages(DIALOG)) == sent


def test_a_duplicate_event_is_answered_once(chat: Chat, emulator, database) -> None:
    chat.says("Как оформить больничный?")
    query, body = chat.served.bodies[-1]

    reply = requests.post(
        f"{chat.served.url}?{query}",
        data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=5,
    )

    assert reply.json() == {"status": "duplicate"}
    chat.settle()
    assert len(emulator.messages(DIALOG)) == 1
    assert len(database.recent_interactions()) == 1


def test_a_restart_registers_nothing_twice(chat: Chat, emulator) -> None:
    bots = [(b.bot_id, b.code) for b in emulator.bots]
    registered = {c.command: c.command_id for c in emulator.commands}

    chat.start_bot()

    assert [(b.bot_id, b.code) for b in emulator.bots] == bots
    assert {c.command: c.command_id for c in emulator.commands} == registered
    assert len(emulator.commands) == len(registered)
    answer = chat.says("Как оформить отпуск?")
    assert answer.text.startswith("[b]Как оформить отпуск?[/b]")


def test_only_the_asker_can_rate_in_a_group_chat(chat: Chat, emulator) -> None:
    emulator.user_sends("как оформить отпуск", USER, "chat1157")
    answer = emulator.wait_for_messages("chat1157", 1, timeout=30)[-1]

    emulator.press_button(answer.message_id, texts.BUTTON_YES, user_id=2)

    refusal = emulator.wait_for_messages("chat1157", 2, timeout=30)[-1]
    assert refusal.text == texts.NOT_YOUR_ANSWER
    assert labels(emulator.message(answer.message_id))[-2:] == RATING_BUTTONS


def test_a_message_without_text_gets_a_short_reply(chat: Chat, database) -> None:
    # field report 16: an attachment only, so MESSAGE is empty
    reply = chat.says("")

    assert reply.text == texts.EMPTY_MESSAGE
    assert reply.buttons == []


def test_a_rating_counts_when_its_buttons_can_no_longer_be_taken_off(
    chat: Chat, emulator, database
) -> None:
    # a bot may edit its messages for three days; a rating may come later
    answer = chat.says("Как оформить отпуск?")
    emulator.age_message(answer.message_id, 4 * 24 * 3600)

    thanks = chat.presses(answer, texts.BUTTON_YES)

    assert thanks.text == texts.THANKS_HELPFUL
    assert database.rating_summary() == (1, 0)
    chat.settle()
    updates = emulator.calls_to("imbot.message.update")
    assert [(c.status, c.error) for c in updates] == [(403, "CANT_EDIT_MESSAGE")]
