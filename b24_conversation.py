"""What the bot does with each Bitrix24 event: the conversation, in one place.

`Conversation.handle(event)` is called by the background worker for every stored
event and returns a `Decision` for the one log line the worker writes. Replies to
typed messages go out with `imbot.message.add`; replies to button presses and
typed commands with `imbot.command.answer`, which posts a new message in the
dialog of the pressed keyboard.

`COMMANDS` is the one table of bot commands: `register_bot.py` registers exactly
these, and `Conversation` routes presses through the same table. What to answer
and what to store is `faq_dialog`'s, shared with the Telegram bot; this module
turns it into BB-code messages and keyboards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import b24_texts as texts
from b24_api import Bitrix24API, Bitrix24APIError, escape_bbcode
from b24_event import Bitrix24Event
from database import Database, FaqRecord, Outcome, RatingResult
from faq_dialog import CATEGORY_QUESTION_LIMIT as CATEGORY_QUESTION_LIMIT
from faq_dialog import SIMILAR_LIMIT as SIMILAR_LIMIT
from faq_dialog import (
    Answer,
    Candidate,
    Engine,
    FaqDialog,
    Search,
    Turn,
    answer_text,
)
from faq_dialog import Reply as Reply
from models import Platform, parse_id

logger = logging.getLogger(__name__)

PLATFORM = Platform.BITRIX24


class CommandName(StrEnum):
    """Names of the bot's commands, as registered and as sent by buttons."""

    HELP = "help"
    CATEGORIES = "cats"
    CATEGORY = "cat"
    FAQ = "faq"
    CHOICE = "choice"
    HELPFUL_YES = "helpful_yes"
    HELPFUL_NO = "helpful_no"


@dataclass(frozen=True)
class Decision:
    """What the bot did with an event, for the event's log line."""

    name: str
    score: float | None = None
    faq_id: int | None = None


Keyboard = list[dict[str, Any]]


class Conversation:
    """Turns one event into replies, logs and ratings."""

    def __init__(
        self,
        api: Bitrix24API,
        engine: Engine,
        database: Database,
        *,
        near_score: float = 0.0,
    ) -> None:
        self.api = api
        self.dialog = FaqDialog(engine, database, PLATFORM, near_score=near_score)

    def handle(self, event: Bitrix24Event) -> Decision:
        """Answer one event; raise only on platform or database failures."""
        if event.is_join_chat:
            return self.welcome(event)
        if event.is_message:
            return self.on_message(event)
        if event.is_command:
            return self.on_command(event)
        return Decision("ignored")

    def apologize(self, event: Bitrix24Event) -> None:
        """Tell the user their message was not answered; called after a failure."""
        if event.dialog_id and not event.is_bot_delete:
            self.api.send_message(event.dialog_id, texts.FAILURE)

    # messages

    def on_message(self, event: Bitrix24Event) -> Decision:
        text = event.message_text
        word = " ".join(text.casefold().rstrip("!?. ").split())
        if word in texts.START_WORDS:
            return self.welcome(event)
        if word in texts.CATEGORY_WORDS:
            return self.categories(event)
        return self.search(event, text)

    def search(self, event: Bitrix24Event, text: str) -> Decision:
        if text.strip():
            self.api.send_typing(event.dialog_id)
        found = self.dialog.search(
            Turn(event.user_id, event.dialog_id, text, event.message_id)
        )
        if found.answer is not None:
            self._send_answer(event, found.answer)
        elif found.outcome is Outcome.CHOICES:
            rows = [self._choice_button(found.log_id, c) for c in found.reply.choices]
            rows.append([self._all_categories_button()])
            self._say(event, texts.CHOICES, rows)
        elif found.outcome is Outcome.SMALLTALK:
            self._say(event, found.reply.smalltalk_reply or texts.EMPTY_MESSAGE)
        elif found.outcome is Outcome.EMPTY:
            if not event.is_group_chat:
                self._say(event, texts.EMPTY_MESSAGE)
        else:
            self._no_answer(event, text, found)
        return Decision(found.outcome.value, found.score, found.faq_id)

    def _no_answer(self, event: Bitrix24Event, text: str, found: Search) -> None:
        quote = escape_bbcode(texts.shorten(text, texts.QUOTE_LIMIT))
        message = texts.NO_ANSWER.format(question=quote)
        rows = [self._choice_button(found.log_id, c) for c in found.near]
        if rows:
            message += texts.NO_ANSWER_NEAR
        rows.extend(self._category_rows())
        self._say(event, message, rows)

    # navigation

    def welcome(self, event: Bitrix24Event) -> Decision:
        name = "" if event.is_group_chat else event.user_name
        name = f", {escape_bbcode(name)}" if name else ""
        rows = self._category_rows()
        template = texts.WELCOME if rows else texts.WELCOME_NO_FAQ
        self._say(event, template.format(name=name), rows)
        return Decision("welcome")

    def categories(self, event: Bitrix24Event) -> Decision:
        rows = self._category_rows()
        self._say(event, texts.CATEGORIES if rows else texts.NO_CATEGORIES, rows)
        return Decision("categories")

    def open_category(self, event: Bitrix24Event) -> Decision:
        page = self.dialog.category(parse_id(event.command_params))
        if page is None:
            self._say(event, texts.CATEGORY_GONE, self._category_rows())
            return Decision("category_gone")

        name = page.category.name
        if not page.faqs:
            message = texts.CATEGORY_EMPTY.format(name=name)
            self._say(event, message, self._category_rows())
            return Decision("category_empty")

        message = texts.CATEGORY.format(name=name)
        if page.total > len(page.faqs):
            message += texts.CATEGORY_MORE.format(
                shown=len(page.faqs), total=page.total
            )
        rows = [[self._faq_button(faq)] for faq in page.faqs]
        rows.append([self._all_categories_button()])
        self._say(event, message, rows)
        return Decision("category")

    def open_faq(self, event: Bitrix24Event) -> Decision:
        faq_id = parse_id(event.command_params)
        answer = self.dialog.open_faq(_opened_turn(event), faq_id)
        return self._show_opened(event, answer, "faq_opened")

    def open_choice(self, event: Bitrix24Event) -> Decision:
        """A "did you mean" or related-question button: open it, note the choice."""
        raw_log_id, _, raw_faq_id = event.command_params.strip().partition(" ")
        answer = self.dialog.open_choice(
            _opened_turn(event), parse_id(raw_log_id), parse_id(raw_faq_id)
        )
        return self._show_opened(event, answer, "choice")

    def _show_opened(
        self, event: Bitrix24Event, answer: Answer | None, name: str
    ) -> Decision:
        """Reply to a button that opened an entry, or say that it is gone."""
        if answer is None:
            self._say(event, texts.FAQ_GONE, self._category_rows())
            return Decision("faq_gone")
        self._send_answer(event, answer)
        return Decision(name, faq_id=answer.faq.id)

    def show_help(self, event: Bitrix24Event) -> Decision:
        return self.welcome(event)

    # ratings

    def rate_helpful(self, event: Bitrix24Event) -> Decision:
        return self._rate(event, helpful=True)

    def rate_not_helpful(self, event: Bitrix24Event) -> Decision:
        return self._rate(event, helpful=False)

    def _rate(self, event: Bitrix24Event, helpful: bool) -> Decision:
        rating = self.dialog.rate(
            parse_id(event.command_params), event.user_id, helpful
        )
        if rating.result is RatingResult.NOT_ASKER:
            self._say(event, texts.NOT_YOUR_ANSWER)
            return Decision("rating_not_asker")
        if rating.result is RatingResult.UNKNOWN_ANSWER:
            self._say(event, texts.BAD_BUTTON)
            return Decision("rating_unknown_answer")

        related = self._related_rows(rating.log_id, rating.related)
        self._remove_rating_buttons(event, related)
        if rating.result is RatingResult.ALREADY_RATED:
            self._say(event, texts.ALREADY_RATED)
            return Decision("rating_repeated")
        if helpful:
            self._say(event, texts.THANKS_HELPFUL)
            return Decision("rated_helpful", faq_id=rating.faq_id)

        message = texts.THANKS_NOT_HELPFUL
        if related:
            message += texts.THANKS_NOT_HELPFUL_NEXT
        categories = self._category_rows()
        if categories:
            message += texts.THANKS_NOT_HELPFUL_CATEGORIES
        self._say(event, message, related + categories)
        return Decision("rated_not_helpful", faq_id=rating.faq_id)

    def _remove_rating_buttons(
        self, event: Bitrix24Event, related: list[list[dict[str, str]]]
    ) -> None:
        """Take the rating row off the pressed answer, keep its related questions."""
        message_id = event.message_id
        if not message_id:
            return
        keyboard = self.api.create_keyboard(related) if related else "N"
        try:
            self.api.update_message(message_id, keyboard=keyboard)
        except Bitrix24APIError as exc:
            # a bot may edit its messages for three days only, then the platform
            # answers CANT_EDIT_MESSAGE; the rating is stored and a second one
            # is refused by the database, so the buttons may stay
            logger.info(
                "dialog %s: rating buttons of message %s stay: %s",
                event.dialog_id,
                message_id,
                exc,
            )

    # commands

    def on_command(self, event: Bitrix24Event) -> Decision:
        command = COMMANDS_BY_NAME.get(event.command_name)
        if command is None:
            return Decision(f"unknown_command:{event.command_name[:40]}")
        return command.handler(self, event)

    # building blocks

    def _send_answer(self, event: Bitrix24Event, answer: Answer) -> None:
        rows = self._related_rows(answer.log_id, answer.related)
        rows.append(
            [
                self._button(texts.BUTTON_YES, CommandName.HELPFUL_YES, answer.log_id),
                self._button(texts.BUTTON_NO, CommandName.HELPFUL_NO, answer.log_id),
            ]
        )
        self._say(event, answer_text(answer), rows)

    def _related_rows(
        self, log_id: int | None, faqs: Sequence[FaqRecord]
    ) -> list[list[dict[str, str]]]:
        return [self._choice_button(log_id, faq) for faq in faqs]

    def _category_rows(self) -> list[list[dict[str, str]]]:
        return [
            [
                self._button(
                    texts.CATEGORY_BUTTON.format(name=c.name, count=c.faq_count),
                    CommandName.CATEGORY,
                    c.id,
                )
            ]
            for c in self.dialog.categories()
        ]

    def _faq_button(self, faq: FaqRecord) -> dict[str, str]:
        return self._button(faq.question, CommandName.FAQ, faq.id)

    def _choice_button(
        self, log_id: int | None, faq: Candidate | FaqRecord
    ) -> list[dict[str, str]]:
        faq_id = faq.id if isinstance(faq, FaqRecord) else faq.faq_id
        return [self._button(faq.question, CommandName.CHOICE, f"{log_id} {faq_id}")]

    def _all_categories_button(self) -> dict[str, str]:
        return self._button(texts.BUTTON_ALL_CATEGORIES, CommandName.CATEGORIES, "")

    @staticmethod
    def _button(text: str, command: CommandName, params: object) -> dict[str, str]:
        label = texts.shorten(text, texts.BUTTON_TEXT_LIMIT)
        return {"text": label, "action": command.value, "params": str(params)}

    def _say(
        self,
        event: Bitrix24Event,
        message: str,
        rows: Sequence[Sequence[dict[str, str]] | dict[str, str]] = (),
    ) -> int:
        """Reply in the event's dialog; a button press is answered as a command."""
        keyboard: Keyboard | None = self.api.create_keyboard(rows) if rows else None
        if event.is_command and event.command_id and event.message_id:
            try:
                return self.api.answer_command(
                    event.command_id, event.message_id, message, keyboard=keyboard
                )
            except Bitrix24APIError as exc:
                # e.g. the keyboard's message was deleted: the dialog still works
                if exc.http_status != 400:
                    raise
                logger.info(
                    "command answer refused in dialog %s (%s), sending a message",
                    event.dialog_id,
                    exc.code,
                )
        return self.api.send_message(event.dialog_id, message, keyboard=keyboard)


@dataclass(frozen=True)
class BotCommand:
    """One row of the command table: what is registered and who handles it."""

    name: CommandName
    title_ru: str
    title_en: str
    handler: Callable[[Conversation, Bitrix24Event], Decision]
    hidden: bool = True


COMMANDS: tuple[BotCommand, ...] = (
    BotCommand(CommandName.HELP, "Помощь", "Help", Conversation.show_help, False),
    BotCommand(
        CommandName.CATEGORIES, "Все темы", "All topics", Conversation.categories
    ),
    BotCommand(
        CommandName.CATEGORY,
        "Выбор категории",
        "Choose a category",
        Conversation.open_category,
    ),
    BotCommand(
        CommandName.FAQ, "Открыть вопрос", "Open a question", Conversation.open_faq
    ),
    BotCommand(
        CommandName.CHOICE,
        "Выбор похожего вопроса",
        "Choose a suggested question",
        Conversation.open_choice,
    ),
    BotCommand(
        CommandName.HELPFUL_YES, "Полезно", "Helpful", Conversation.rate_helpful
    ),
    BotCommand(
        CommandName.HELPFUL_NO,
        "Не помогло",
        "Not helpful",
        Conversation.rate_not_helpful,
    ),
)
COMMANDS_BY_NAME: dict[str, BotCommand] = {c.name.value: c for c in COMMANDS}


def _opened_turn(event: Bitrix24Event) -> Turn:
    """The turn of a button press, logged as the command it sent."""
    text = event.message_text or f"/{event.command_name} {event.command_params}"
    return Turn(event.user_id, event.dialog_id, text, event.message_id)
