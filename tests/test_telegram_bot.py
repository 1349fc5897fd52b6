"""The Telegram bot: its conversation, its HTML and its wiring to the Bot API.

Nothing here reaches the internet. Most tests drive `tg_conversation` with a
recording fake bot passed to `deliver`; the wiring test runs `bot.py`'s
application against a fake Bot API served on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from telegram import InlineKeyboardMarkup, Update
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

import b24_texts as texts
from bot import build_application
from config import DEFAULT_TELEGRAM_API_URL, ConfigError, load_config
from faq_core import Candidate, Reply
from models import Outcome
from tg_conversation import (
    CALLBACK_DATA_LIMIT,
    ButtonAction,
    ButtonPress,
    Conversation,
    IncomingMessage,
    callback_data,
    deliver,
)
from tg_format import MESSAGE_LIMIT, bbcode_to_html, split_html

USER = 405
OTHER_USER = 406
TOKEN = "123456:test-token"
pytestmark = pytest.mark.timeout(60)


# a recording fake bot and the user's side of the chat


@dataclass
class SentMessage:
    message_id: int
    chat_id: int
    text: str
    keyboard: InlineKeyboardMarkup | None

    @property
    def buttons(self) -> list[tuple[str, str]]:
        if self.keyboard is None:
            return []
        return [
            (button.text, button.callback_data)
            for row in self.keyboard.inline_keyboard
            for button in row
        ]

    def data_of(self, label: str) -> str:
        for text, data in self.buttons:
            if text == label:
                return data
        raise AssertionError(f"no button {label!r} in {self.buttons}")


@dataclass
class RecordingBot:
    """Stands in for telegram.Bot in `deliver`: records every call it gets."""

    messages: list[SentMessage] = field(default_factory=list)
    edits: list[dict[str, Any]] = field(default_factory=list)
    callback_answers: list[dict[str, Any]] = field(default_factory=list)

    async def send_message(self, **kwargs: Any) -> SentMessage:
        assert kwargs["parse_mode"] == "HTML"
        message = SentMessage(
            len(self.messages) + 1,
            kwargs["chat_id"],
            kwargs["text"],
            kwargs["reply_markup"],
        )
        self.messages.append(message)
        return message

    async def edit_message_reply_markup(self, **kwargs: Any) -> bool:
        self.edits.append(kwargs)
        return True

    async def answer_callback_query(self, callback_query_id: str, **kwargs: Any):
        self.callback_answers.append({"id": callback_query_id, **kwargs})
        return True


class Chat:
    """One user's private chat with the bot."""

    def __init__(self, conversation: Conversation, user_id: int = USER) -> None:
        self.conversation = conversation
        self.user_id = user_id
        self.bot = RecordingBot()
        self.presses = 0

    def says(self, text: str) -> SentMessage:
        message = IncomingMessage(
            chat_id=self.user_id,
            user_id=self.user_id,
            text=text,
            message_id=1000 + len(self.bot.messages),
            user_name="Иван",
        )
        return self._run(self.conversation.on_message(message))

    def presses_button(
        self, message: SentMessage, label: str, user_id: int | None = None
    ) -> SentMessage | None:
        self.presses += 1
        press = ButtonPress(
            callback_query_id=f"query-{self.presses}",
            chat_id=self.user_id,
            user_id=user_id or self.user_id,
            data=message.data_of(label),
            message_id=message.message_id,
        )
        before = len(self.bot.callback_answers)
        reply = self._run(self.conversation.on_press(press), allow_silence=True)
        # every press is answered, exactly once
        assert len(self.bot.callback_answers) == before + 1
        assert self.bot.callback_answers[-1]["id"] == press.callback_query_id
        return reply

    def _run(self, actions: list, allow_silence: bool = False) -> Any:
        before = len(self.bot.messages)
        asyncio.run(deliver(self.bot, actions))
        new = self.bot.messages[before:]
        for message in new:
            for _, data in message.buttons:
                assert len(data.encode()) <= CALLBACK_DATA_LIMIT
        if not new:
            assert allow_silence, "the bot said nothing"
            return None
        return new[-1]


@pytest.fixture
def conversation(database, telegram_engine) -> Conversation:
    # a low bar so the small faq offers related questions
    return Conversation(telegram_engine, database, near_score=30.0)


@pytest.fixture
def chat(conversation) -> Chat:
    return Chat(conversation)


def answer_log_id(message: SentMessage) -> int:
    return int(message.data_of(texts.BUTTON_YES).split(":")[1])


# start and navigation


@pytest.mark.parametrize("command", ["/start", "/help", "/start@faq_test_bot"])
def test_start_welcomes_and_offers_categories(chat, command):
    welcome = chat.says(command)

    assert welcome.text.startswith("👋 Здравствуйте, Иван!")
    assert [label for label, _ in welcome.buttons] == [
        "Отпуск (2)",
        "ИТ (2)",
        "Офис (1)",
    ]
    assert all(data.startswith("cat:") for _, data in welcome.buttons)


def test_start_on_an_empty_faq_says_so(database, telegram_engine):
    empty = Conversation(telegram_engine, database)
    for faq in database.list_faqs():
        database.delete_faq(faq.id)

    welcome = Chat(empty).says("/start")

    assert "база знаний пока пуста" in welcome.text
    assert welcome.keyboard is None


def test_categories_lead_to_questions_and_an_entry(chat, database, telegram_faq):
    topics = chat.says("Категории")
    assert topics.text == texts.CATEGORIES

    questions = chat.presses_button(topics, "ИТ (2)")
    assert questions.text.startswith("📂 <b>ИТ</b>")
    assert [label for label, _ in questions.buttons] == [
        "Не работает VPN, что делать?",
        "Как сбросить пароль от почты?",
        texts.BUTTON_ALL_CATEGORIES,
    ]

    entry = chat.presses_button(questions, "Не работает VPN, что делать?")
    assert entry.text.startswith("<b>Не работает VPN, что делать?</b>\n\n")
    assert "Перезапустите клиент VPN" in entry.text
    log = database.get_answer_log(answer_log_id(entry))
    assert log.platform == "telegram"
    assert log.outcome is Outcome.ANSWERED
    assert log.faq_id == telegram_faq["Не работает VPN, что делать?"]
    assert log.text_raw == f"/faq {log.faq_id}"

    again = chat.presses_button(questions, texts.BUTTON_ALL_CATEGORIES)
    assert again.text == texts.CATEGORIES


# questions, answers and ratings


def test_question_is_answered_with_related_questions_and_rating(
    chat, database, telegram_faq
):
    answer = chat.says("Как оформить отпуск?")

    assert answer.text.startswith("<b>Как оформить отпуск?</b>\n\n")
    assert "<b>заявление</b>" in answer.text
    assert '<a href="https://hr.example.ru/vacation">правила отпусков</a>' in (
        answer.text
    )
    assert answer.text.endswith(html.escape(texts.RATE, quote=False))
    labels = [label for label, _ in answer.buttons]
    assert "Как оформить больничный?" in labels
    assert labels[-2:] == [texts.BUTTON_YES, texts.BUTTON_NO]

    log = database.get_answer_log(answer_log_id(answer))
    assert log.platform == "telegram"
    assert log.user_id == str(USER)
    assert log.outcome is Outcome.ANSWERED
    assert log.faq_id == telegram_faq["Как оформить отпуск?"]
    assert answer.data_of(texts.BUTTON_NO) == f"no:{log.id}"


def test_rating_is_stored_once_and_its_buttons_removed(chat, database):
    answer = chat.says("Как оформить отпуск?")
    log_id = answer_log_id(answer)

    assert chat.presses_button(answer, texts.BUTTON_YES) is None
    assert chat.bot.callback_answers[-1]["text"] == texts.THANKS_HELPFUL
    edit = chat.bot.edits[-1]
    assert edit["message_id"] == answer.message_id
    kept = [b.text for row in edit["reply_markup"].inline_keyboard for b in row]
    assert kept == [label for label, _ in answer.buttons[:-2]]
    assert database.rating_summary() == (1, 0)

    # a second press on a stale copy of the keyboard changes nothing
    chat.presses_button(answer, texts.BUTTON_NO)
    assert chat.bot.callback_answers[-1]["text"] == texts.ALREADY_RATED
    assert database.rating_summary() == (1, 0)
    assert database.get_answer_log(log_id).faq_id is not None


def test_only_the_asker_rates_an_answer(chat, database):
    answer = chat.says("Как оформить отпуск?")

    chat.presses_button(answer, texts.BUTTON_YES, user_id=OTHER_USER)

    assert chat.bot.callback_answers[-1]["text"] == texts.NOT_YOUR_ANSWER
    assert chat.bot.callback_answers[-1]["show_alert"] is True
    assert chat.bot.edits == []
    assert database.rating_summary() == (0, 0)


def test_not_helpful_offers_the_next_candidates(chat, database, telegram_faq):
    answer = chat.says("Как оформить отпуск?")
    log_id = answer_log_id(answer)

    offer = chat.presses_button(answer, texts.BUTTON_NO)

    assert database.rating_summary() == (0, 1)
    assert offer.text.startswith(texts.THANKS_NOT_HELPFUL)
    assert "Может быть, подойдёт один из этих вопросов" in offer.text
    assert offer.data_of("Как оформить больничный?").startswith(f"ch:{log_id}:")
    assert "Отпуск (2)" in [label for label, _ in offer.buttons]

    other = chat.presses_button(offer, "Как оформить больничный?")
    assert other.text.startswith("<b>Как оформить больничный?</b>")
    assert (
        database.get_answer_log(log_id).chosen_faq_id
        == (telegram_faq["Как оформить больничный?"])
    )


def test_unanswerable_question_is_admitted_politely(chat, database):
    reply = chat.says("Как приготовить борщ с пампушками?")

    assert reply.text.startswith("😔 К сожалению, я не нашёл ответа на вопрос")
    assert "«Как приготовить борщ с пампушками?»" in reply.text
    assert "Отпуск (2)" in [label for label, _ in reply.buttons]
    assert texts.BUTTON_YES not in [label for label, _ in reply.buttons]
    (log,) = database.recent_interactions(limit=1)
    assert (log.platform, log.outcome) == ("telegram", Outcome.NO_ANSWER)


def test_user_text_is_escaped_when_quoted_back(chat):
    reply = chat.says("<script>alert(1)</script> [b]борщ[/b] с пампушками?")

    assert "<script>" not in reply.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; [b]борщ[/b]" in reply.text


@pytest.mark.parametrize("text", ["спасибо", "привет", "как дела?"])
def test_small_talk_gets_a_reply_of_its_own(chat, database, text):
    reply = chat.says(text)

    assert reply.keyboard is None
    assert "не нашёл" not in reply.text
    (log,) = database.recent_interactions(limit=1)
    assert (log.platform, log.outcome) == ("telegram", Outcome.SMALLTALK)


def test_did_you_mean_offers_choices(database, telegram_faq):
    vacation = telegram_faq["Как оформить отпуск?"]
    sick = telegram_faq["Как оформить больничный?"]
    choices = (
        _candidate(vacation, "Как оформить отпуск?", 45.0),
        _candidate(sick, "Как оформить больничный?", 44.0),
    )
    engine = FixedEngine(
        Reply(Outcome.CHOICES, "оформить", "оформить", choices, choices=choices)
    )
    chat = Chat(Conversation(engine, database))

    reply = chat.says("оформить")

    assert reply.text == texts.CHOICES
    assert [label for label, _ in reply.buttons] == [
        "Как оформить отпуск?",
        "Как оформить больничный?",
        texts.BUTTON_ALL_CATEGORIES,
    ]
    entry = chat.presses_button(reply, "Как оформить больничный?")
    assert entry.text.startswith("<b>Как оформить больничный?</b>")


@pytest.mark.parametrize(
    "data",
    ["gone:1:2", f"faq:{10**30}", "ch:1:-5", "cat:x", "faq:١٢"],
    ids=["unknown-action", "id-past-64-bits", "negative-id", "not-a-number", "arabic"],
)
def test_unknown_button_is_answered_not_ignored(conversation, data):
    press = ButtonPress("query-1", USER, USER, data, message_id=5)

    (answer,) = conversation.on_press(press)

    assert answer.text == texts.BAD_BUTTON


def test_callback_data_stays_within_the_platform_limit():
    assert (
        callback_data(ButtonAction.CHOICE, 2**31, 2**31) == "ch:2147483648:2147483648"
    )
    with pytest.raises(ValueError, match="64 bytes"):
        callback_data(ButtonAction.CHOICE, *range(10**6, 10**6 + 8))


# telegram html


@pytest.mark.parametrize(
    ("bbcode", "expected"),
    [
        ("[b]жирный[/b] и [i]курсив[/i]", "<b>жирный</b> и <i>курсив</i>"),
        ("[U]под[/U][s]зачёрк[/s]", "<u>под</u><s>зачёрк</s>"),
        ("строка[br]ещё\nи ещё", "строка\nещё\nи ещё"),
        (
            "[url=https://ex.ru/?a=1&b=2]ссылка[/url]",
            '<a href="https://ex.ru/?a=1&amp;b=2">ссылка</a>',
        ),
        ("[url]https://ex.ru[/url]", '<a href="https://ex.ru">https://ex.ru</a>'),
        ("[url=javascript:alert(1)]жми[/url]", "жми"),
        ("<script>alert('x')</script>", "&lt;script&gt;alert('x')&lt;/script&gt;"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("[color=#f00]красный[/color] [size=20]крупно[/size]", "красный крупно"),
        ("[b]не закрыт", "<b>не закрыт</b>"),
        ("лишний [/b] и [foo]", "лишний [/b] и [foo]"),
        ("[b][i]вложенные[/b]", "<b><i>вложенные</i></b>"),
    ],
)
def test_bbcode_becomes_telegram_html(bbcode, expected):
    assert bbcode_to_html(bbcode) == expected


def test_long_text_is_split_at_paragraphs_within_the_limit():
    paragraph = "[b]Раздел.[/b] " + "Очень длинный абзац ответа. " * 60
    text = bbcode_to_html("\n\n".join([paragraph] * 10))

    parts = split_html(text)

    assert len(parts) > 1
    assert all(_visible_length(part) <= MESSAGE_LIMIT for part in parts)
    assert all(part.endswith("ответа.") for part in parts)
    # nothing is lost or repeated, whitespace at the cuts aside
    assert "".join("".join(map(_visible, parts)).split()) == "".join(
        _visible(text).split()
    )


def test_split_reopens_tags_cut_in_the_middle():
    text = "<b>" + "слово " * 30 + "</b>"

    parts = split_html(text, limit=50)

    assert len(parts) > 2
    for part in parts:
        assert part.startswith("<b>") and part.endswith("</b>")
        assert _visible_length(part) <= 50


def test_split_counts_emoji_as_two_units():
    parts = split_html("😀" * 3000)

    assert [_visible_length(part) for part in parts] == [4096, 1904]


def test_long_answer_goes_out_in_parts_with_buttons_on_the_last(database, faq_search):
    from faq_core import FAQEngine

    long_answer = "\n\n".join(
        f"Шаг {n}. " + "Подробности шага. " * 40 for n in range(20)
    )
    database.add_faq("Как пройти адаптацию?", long_answer, "Кадры")
    faq_search.ensure_fresh()
    chat = Chat(Conversation(FAQEngine(database, faq_search), database))

    chat.says("Как пройти адаптацию?")

    parts = chat.bot.messages
    assert len(parts) >= 3
    assert all(_visible_length(m.text) <= MESSAGE_LIMIT for m in parts)
    assert all(m.keyboard is None for m in parts[:-1])
    assert parts[-1].buttons[-2:][0][0] == texts.BUTTON_YES


# the application against a fake bot api


class FakeBotAPI:
    """A tiny Bot API on 127.0.0.1 that records the bot's calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._server = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self._server.server_port}/bot"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def called(self, method: str) -> list[dict[str, Any]]:
        return [params for name, params in self.calls if name == method]

    @Request.application
    def _app(self, request: Request) -> Response:
        method = request.path.rsplit("/", 1)[-1]
        assert request.path == f"/bot{TOKEN}/{method}"
        params = {key: _json_or_text(value) for key, value in request.form.items()}
        if request.is_json:
            params = {k: _json_or_text(v) for k, v in request.get_json().items()}
        self.calls.append((method, params))
        result: Any = True
        if method == "getMe":
            result = {
                "id": 42,
                "is_bot": True,
                "first_name": "FAQ",
                "username": "faq_test_bot",
            }
        elif method == "sendMessage":
            result = {
                "message_id": len(self.called("sendMessage")),
                "date": 0,
                "chat": {"id": int(params["chat_id"]), "type": "private"},
                "text": params["text"],
            }
        body = json.dumps({"ok": True, "result": result})
        return Response(body, mimetype="application/json")


@pytest.fixture
def fake_bot_api():
    api = FakeBotAPI()
    yield api
    api.close()


def test_application_answers_updates_through_the_bot_api(
    tmp_path, database, telegram_engine, fake_bot_api
):
    config = load_config({}, env_file=None).with_overrides(
        telegram_bot_token=TOKEN,
        telegram_api_url=fake_bot_api.base_url,
        database_url=f"sqlite:///{tmp_path / 'unused.db'}",
    )
    application = build_application(config, database=database, engine=telegram_engine)

    async def scenario() -> None:
        await application.initialize()
        try:
            for update in (
                _message_update(1, "/start"),
                _message_update(2, "Как оформить отпуск?"),
            ):
                await application.process_update(
                    Update.de_json(update, application.bot)
                )
            answer = fake_bot_api.called("sendMessage")[-1]
            rating = _button_data(answer, texts.BUTTON_YES)
            press = _press_update(3, rating, message_id=2)
            await application.process_update(Update.de_json(press, application.bot))
        finally:
            await application.shutdown()

    asyncio.run(scenario())

    welcome, answer = fake_bot_api.called("sendMessage")
    assert welcome["parse_mode"] == "HTML"
    assert welcome["text"].startswith("👋 Здравствуйте, Иван!")
    assert answer["text"].startswith("<b>Как оформить отпуск?</b>")
    (callback_answer,) = fake_bot_api.called("answerCallbackQuery")
    assert callback_answer["callback_query_id"] == "cb-3"
    assert callback_answer["text"] == texts.THANKS_HELPFUL
    (edit,) = fake_bot_api.called("editMessageReplyMarkup")
    assert edit["message_id"] == 2
    assert database.rating_summary() == (1, 0)
    logs = database.recent_interactions()
    assert {log.platform for log in logs} == {"telegram"}


def test_missing_token_is_a_clear_start_up_error(tmp_path):
    config = load_config({}, env_file=None)

    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN"):
        build_application(config)


def test_config_reads_the_telegram_settings():
    config = load_config({"TELEGRAM_BOT_TOKEN": " 1:abc "}, env_file=None)

    assert config.telegram_bot_token == "1:abc"
    assert config.telegram_api_url == DEFAULT_TELEGRAM_API_URL
    assert config.extra["TELEGRAM_BOT_TOKEN"] == " 1:abc "


# helpers


class FixedEngine:
    def __init__(self, reply: Reply) -> None:
        self.reply = reply

    def ask(self, text: str) -> Reply:
        return self.reply


def _candidate(faq_id: int, question: str, score: float) -> Candidate:
    fields = (faq_id, question, "", "Отпуск", None, score, score, 0.0, question)
    return Candidate(*fields, supported=True)


def _visible(part: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", part))


def _visible_length(part: str) -> int:
    return len(_visible(part).encode("utf-16-le")) // 2


def _json_or_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _user() -> dict[str, Any]:
    return {"id": USER, "is_bot": False, "first_name": "Иван"}


def _message_update(update_id: int, text: str) -> dict[str, Any]:
    message: dict[str, Any] = {
        "message_id": update_id,
        "date": 0,
        "chat": {"id": USER, "type": "private"},
        "from": _user(),
        "text": text,
    }
    if text.startswith("/"):
        length = len(text.split()[0])
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
    return {"update_id": update_id, "message": message}


def _press_update(update_id: int, data: str, message_id: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cb-{update_id}",
            "from": _user(),
            "chat_instance": "1",
            "data": data,
            "message": {
                "message_id": message_id,
                "date": 0,
                "chat": {"id": USER, "type": "private"},
                "from": {"id": 42, "is_bot": True, "first_name": "FAQ"},
                "text": "answer",
            },
        },
    }


def _button_data(params: dict[str, Any], label: str) -> str:
    markup = params["reply_markup"]
    for row in markup["inline_keyboard"]:
        for button in row:
            if button["text"] == label:
                return button["callback_data"]
    raise AssertionError(f"no button {label!r}")
