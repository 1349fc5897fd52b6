"""What the Telegram bot does with each message and button press.

`Conversation` leaves deciding and storing to `faq_dialog` (shared with the
Bitrix24 bot) and returns its replies as `Action`s without touching the network.
`deliver` sends those actions through a python-telegram-bot `Bot` (or anything
with the same coroutine methods). The texts are the Bitrix24 bot's
(`b24_texts`), converted from BB-code to Telegram HTML, so both front ends say
the same things.

Buttons carry `callback_data` of the form ``<action>:<id>[:<id>]``, which stays
far below Telegram's 64-byte limit; `BUTTON_ACTIONS` is the one table that
routes a press to its handler.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import BadRequest

import b24_texts as texts
from database import Database, FaqRecord, Outcome, Platform, RatingResult
from faq_dialog import Answer, Engine, FaqDialog, Search, Turn, answer_text
from models import parse_id
from tg_format import bbcode_to_html, plain_to_html, split_html

logger = logging.getLogger(__name__)

PLATFORM = Platform.TELEGRAM
# https://core.telegram.org/bots/api#inlinekeyboardbutton
CALLBACK_DATA_LIMIT = 64


class ButtonAction(StrEnum):
    """The first part of a button's callback_data."""

    CATEGORIES = "cats"
    CATEGORY = "cat"
    FAQ = "faq"
    CHOICE = "ch"
    HELPFUL_YES = "yes"
    HELPFUL_NO = "no"


@dataclass(frozen=True)
class IncomingMessage:
    """A message a user sent, as the conversation needs it."""

    chat_id: int
    user_id: int
    text: str
    message_id: int | None = None
    user_name: str = ""
    private: bool = True


@dataclass(frozen=True)
class ButtonPress:
    """A press on one of the bot's inline buttons (a callback query)."""

    callback_query_id: str
    chat_id: int
    user_id: int
    data: str
    message_id: int | None = None


@dataclass(frozen=True)
class SendMessage:
    chat_id: int
    text: str
    keyboard: InlineKeyboardMarkup | None = None


@dataclass(frozen=True)
class EditKeyboard:
    chat_id: int
    message_id: int
    keyboard: InlineKeyboardMarkup | None = None


@dataclass(frozen=True)
class AnswerCallback:
    callback_query_id: str
    text: str | None = None
    show_alert: bool = False


Action = SendMessage | EditKeyboard | AnswerCallback
Rows = list[list[InlineKeyboardButton]]


class Conversation:
    """Turns one message or button press into logs, ratings and replies."""

    def __init__(
        self, engine: Engine, database: Database, *, near_score: float = 0.0
    ) -> None:
        self.dialog = FaqDialog(engine, database, PLATFORM, near_score=near_score)

    # messages

    def on_message(self, message: IncomingMessage) -> list[Action]:
        word = " ".join(message.text.casefold().rstrip("!?. ").split())
        if word.startswith("/"):
            # "/start@faq_bot" in group chats
            word = word.partition("@")[0]
        if word in texts.START_WORDS:
            return self.welcome(message)
        if word in texts.CATEGORY_WORDS or word == "/categories":
            return self.categories(message.chat_id)
        return self.search(message)

    def welcome(self, message: IncomingMessage) -> list[Action]:
        name = message.user_name if message.private else ""
        rows = self._category_rows()
        template = texts.WELCOME if rows else texts.WELCOME_NO_FAQ
        text = bbcode_to_html(template).format(
            name=f", {plain_to_html(name)}" if name else ""
        )
        return [_send(message.chat_id, text, rows)]

    def categories(self, chat_id: int) -> list[Action]:
        rows = self._category_rows()
        text = texts.CATEGORIES if rows else texts.NO_CATEGORIES
        return [_send(chat_id, bbcode_to_html(text), rows)]

    def search(self, message: IncomingMessage) -> list[Action]:
        found = self.dialog.search(
            Turn(message.user_id, message.chat_id, message.text, message.message_id)
        )
        logger.info(
            "chat %s user %s: %s, faq %s, score %s, answer log %s",
            message.chat_id,
            message.user_id,
            found.outcome.value,
            found.faq_id,
            found.score,
            found.log_id,
        )

        if found.answer is not None:
            return [self._answer(message.chat_id, found.answer)]
        if found.outcome is Outcome.CHOICES:
            rows = [
                self._choice_button(found.log_id, c.faq_id, c.question)
                for c in found.reply.choices
            ]
            rows.append([self._all_categories_button()])
            return [_send(message.chat_id, bbcode_to_html(texts.CHOICES), rows)]
        if found.outcome is Outcome.SMALLTALK:
            text = found.reply.smalltalk_reply or texts.EMPTY_MESSAGE
            return [_send(message.chat_id, plain_to_html(text))]
        if found.outcome is Outcome.EMPTY:
            if not message.private:
                return []
            return [_send(message.chat_id, bbcode_to_html(texts.EMPTY_MESSAGE))]
        return self._no_answer(message, found)

    def _no_answer(self, message: IncomingMessage, found: Search) -> list[Action]:
        quote = texts.shorten(message.text, texts.QUOTE_LIMIT)
        template = texts.NO_ANSWER
        rows = [
            self._choice_button(found.log_id, c.faq_id, c.question) for c in found.near
        ]
        if rows:
            template += texts.NO_ANSWER_NEAR
        rows.extend(self._category_rows())
        text = bbcode_to_html(template).format(question=plain_to_html(quote))
        return [_send(message.chat_id, text, rows)]

    # button presses

    def on_press(self, press: ButtonPress) -> list[Action]:
        """Handle a press; the first action always answers the callback query."""
        name, _, raw = press.data.partition(":")
        try:
            action = ButtonAction(name)
            params = [parse_id(part) for part in raw.split(":")] if raw else []
            if None in params:
                raise ValueError(f"not a row id in {raw!r}")
        except ValueError:
            logger.info("chat %s: unknown button %r", press.chat_id, press.data[:64])
            return [AnswerCallback(press.callback_query_id, texts.BAD_BUTTON, True)]
        return BUTTON_ACTIONS[action](self, press, params)

    def _press_categories(self, press: ButtonPress, _params: list[int]) -> list[Action]:
        return [
            AnswerCallback(press.callback_query_id),
            *self.categories(press.chat_id),
        ]

    def _press_category(self, press: ButtonPress, params: list[int]) -> list[Action]:
        done = AnswerCallback(press.callback_query_id)
        page = self.dialog.category(params[0] if params else None)
        if page is None:
            text = bbcode_to_html(texts.CATEGORY_GONE)
            return [done, _send(press.chat_id, text, self._category_rows())]

        name = page.category.name
        if not page.faqs:
            text = bbcode_to_html(texts.CATEGORY_EMPTY.format(name=name))
            return [done, _send(press.chat_id, text, self._category_rows())]

        text = texts.CATEGORY.format(name=name)
        if page.total > len(page.faqs):
            text += texts.CATEGORY_MORE.format(shown=len(page.faqs), total=page.total)
        rows = [[_button(faq.question, ButtonAction.FAQ, faq.id)] for faq in page.faqs]
        rows.append([self._all_categories_button()])
        return [done, _send(press.chat_id, bbcode_to_html(text), rows)]

    def _press_faq(self, press: ButtonPress, params: list[int]) -> list[Action]:
        done = AnswerCallback(press.callback_query_id)
        faq_id = params[0] if params else None
        answer = self.dialog.open_faq(_opened_turn(press), faq_id)
        return [done, *self._opened(press, answer)]

    def _press_choice(self, press: ButtonPress, params: list[int]) -> list[Action]:
        """A "did you mean" or related question: open it and note the choice."""
        done = AnswerCallback(press.callback_query_id)
        if len(params) != 2:
            return [AnswerCallback(press.callback_query_id, texts.BAD_BUTTON, True)]
        answer = self.dialog.open_choice(_opened_turn(press), params[0], params[1])
        return [done, *self._opened(press, answer)]

    def _opened(self, press: ButtonPress, answer: Answer | None) -> list[Action]:
        """The reply to a press that opened an entry, or said it is gone."""
        if answer is None:
            text = bbcode_to_html(texts.FAQ_GONE)
            return [_send(press.chat_id, text, self._category_rows())]
        logger.info(
            "chat %s user %s opened faq %s by a button, answer log %s",
            press.chat_id,
            press.user_id,
            answer.faq.id,
            answer.log_id,
        )
        return [self._answer(press.chat_id, answer)]

    def _press_yes(self, press: ButtonPress, params: list[int]) -> list[Action]:
        return self._rate(press, params, helpful=True)

    def _press_no(self, press: ButtonPress, params: list[int]) -> list[Action]:
        return self._rate(press, params, helpful=False)

    def _rate(
        self, press: ButtonPress, params: list[int], helpful: bool
    ) -> list[Action]:
        log_id = params[0] if params else 0
        rating = self.dialog.rate(log_id, press.user_id, helpful)
        result = rating.result
        logger.info(
            "chat %s user %s rated answer log %s as %s: %s",
            press.chat_id,
            press.user_id,
            log_id,
            "helpful" if helpful else "not helpful",
            result.value,
        )
        query_id = press.callback_query_id
        if result is RatingResult.NOT_ASKER:
            return [AnswerCallback(query_id, texts.NOT_YOUR_ANSWER, True)]
        if result is RatingResult.UNKNOWN_ANSWER:
            return [AnswerCallback(query_id, texts.BAD_BUTTON, True)]

        related = self._related_rows(log_id, rating.related)
        actions: list[Action] = []
        if result is RatingResult.ALREADY_RATED:
            actions.append(AnswerCallback(query_id, texts.ALREADY_RATED))
        elif helpful:
            actions.append(AnswerCallback(query_id, texts.THANKS_HELPFUL))
        else:
            actions.append(AnswerCallback(query_id))
        if press.message_id is not None:
            # the rating row goes, the related questions stay
            markup = _markup(related)
            actions.append(EditKeyboard(press.chat_id, press.message_id, markup))
        if result is RatingResult.ALREADY_RATED or helpful:
            return actions

        text = texts.THANKS_NOT_HELPFUL
        if related:
            text += texts.THANKS_NOT_HELPFUL_NEXT
        categories = self._category_rows()
        if categories:
            text += texts.THANKS_NOT_HELPFUL_CATEGORIES
        actions.append(_send(press.chat_id, bbcode_to_html(text), related + categories))
        return actions

    # building blocks

    def _answer(self, chat_id: int, answer: Answer) -> SendMessage:
        rows = self._related_rows(answer.log_id, answer.related)
        rows.append(
            [
                _button(texts.BUTTON_YES, ButtonAction.HELPFUL_YES, answer.log_id),
                _button(texts.BUTTON_NO, ButtonAction.HELPFUL_NO, answer.log_id),
            ]
        )
        return _send(chat_id, bbcode_to_html(answer_text(answer)), rows)

    def _related_rows(self, log_id: int, faqs: Sequence[FaqRecord]) -> Rows:
        return [self._choice_button(log_id, f.id, f.question) for f in faqs]

    def _category_rows(self) -> Rows:
        return [
            [
                _button(
                    texts.CATEGORY_BUTTON.format(name=c.name, count=c.faq_count),
                    ButtonAction.CATEGORY,
                    c.id,
                )
            ]
            for c in self.dialog.categories()
        ]

    @staticmethod
    def _choice_button(
        log_id: int, faq_id: int, question: str
    ) -> list[InlineKeyboardButton]:
        return [_button(question, ButtonAction.CHOICE, log_id, faq_id)]

    @staticmethod
    def _all_categories_button() -> InlineKeyboardButton:
        return _button(texts.BUTTON_ALL_CATEGORIES, ButtonAction.CATEGORIES)


BUTTON_ACTIONS: dict[
    ButtonAction, Callable[[Conversation, ButtonPress, list[int]], list[Action]]
] = {
    ButtonAction.CATEGORIES: Conversation._press_categories,
    ButtonAction.CATEGORY: Conversation._press_category,
    ButtonAction.FAQ: Conversation._press_faq,
    ButtonAction.CHOICE: Conversation._press_choice,
    ButtonAction.HELPFUL_YES: Conversation._press_yes,
    ButtonAction.HELPFUL_NO: Conversation._press_no,
}


def callback_data(action: ButtonAction, *ids: int) -> str:
    """Build a button's callback_data; raise if it would not fit Telegram's limit."""
    data = ":".join([action.value, *(str(int(i)) for i in ids)])
    if len(data.encode()) > CALLBACK_DATA_LIMIT:
        raise ValueError(f"callback_data over {CALLBACK_DATA_LIMIT} bytes: {data!r}")
    return data


def _button(text: str, action: ButtonAction, *ids: int) -> InlineKeyboardButton:
    label = texts.shorten(text, texts.BUTTON_TEXT_LIMIT)
    return InlineKeyboardButton(label, callback_data=callback_data(action, *ids))


def _markup(rows: Rows) -> InlineKeyboardMarkup | None:
    return InlineKeyboardMarkup(rows) if rows else None


def _send(
    chat_id: int, text: str, rows: Sequence[list[InlineKeyboardButton]] = ()
) -> SendMessage:
    return SendMessage(chat_id, text, _markup(list(rows)))


def _opened_turn(press: ButtonPress) -> Turn:
    """The turn of a press that opens an entry, logged as the command it sent."""
    action, _, params = press.data.partition(":")
    text = f"/{action} {params.replace(':', ' ')}".strip()
    return Turn(press.user_id, press.chat_id, text, press.message_id)


# delivery


async def deliver(bot: Any, actions: Sequence[Action]) -> None:
    """Send `actions` through `bot`; a long message goes out in several parts.

    The keyboard rides on the last part, under the end of the answer. A
    callback answer or keyboard edit the platform refuses (a query too old, a
    message already changed) is logged and skipped: the rest still goes out.
    """
    for action in actions:
        if isinstance(action, AnswerCallback):
            try:
                await bot.answer_callback_query(
                    action.callback_query_id,
                    text=action.text,
                    show_alert=action.show_alert,
                )
            except BadRequest as exc:
                logger.info(
                    "callback query %s not answered: %s", action.callback_query_id, exc
                )
        elif isinstance(action, EditKeyboard):
            try:
                await bot.edit_message_reply_markup(
                    chat_id=action.chat_id,
                    message_id=action.message_id,
                    reply_markup=action.keyboard,
                )
            except BadRequest as exc:
                logger.info(
                    "keyboard of message %s in chat %s not changed: %s",
                    action.message_id,
                    action.chat_id,
                    exc,
                )
        else:
            parts = split_html(action.text)
            for number, part in enumerate(parts, start=1):
                await bot.send_message(
                    chat_id=action.chat_id,
                    text=part,
                    parse_mode=ParseMode.HTML,
                    reply_markup=action.keyboard if number == len(parts) else None,
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )


def failure_text() -> str:
    """The apology sent when a message could not be answered."""
    return bbcode_to_html(texts.FAILURE)
