"""What the bot does with each Bitrix24 event: the conversation, in one place.

`Conversation.handle(event)` is called by the background worker for every stored
event and returns a `Decision` for the one log line the worker writes. Replies to
typed messages go out with `imbot.message.add`; replies to button presses and
typed commands with `imbot.command.answer`, which posts a new message in the
dialog of the pressed keyboard.

`COMMANDS` is the one table of bot commands: `register_bot.py` registers exactly
these, and `Conversation` routes presses through the same table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import b24_texts as texts
from b24_api import Bitrix24API, Bitrix24APIError, escape_bbcode
from b24_event import Bitrix24Event
from database import CategoryRecord, Database, FaqRecord, Outcome, RatingResult

logger = logging.getLogger(__name__)

PLATFORM = "bitrix24"
# how many related questions an answer offers as buttons
SIMILAR_LIMIT = 3
# how many questions a category shows as buttons before asking to type instead
CATEGORY_QUESTION_LIMIT = 20


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


class Candidate(Protocol):
    faq_id: int
    question: str
    score: float


class Reply(Protocol):
    """The part of `faq_core.Reply` the conversation reads."""

    outcome: str
    answer: Candidate | None
    choices: Sequence[Candidate]
    candidates: Sequence[Candidate]
    smalltalk_reply: str | None
    text_raw: str
    text_searched: str


class Engine(Protocol):
    def ask(self, text: str) -> Reply: ...


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
        self.engine = engine
        self.database = database
        # candidates scoring below this are never offered as buttons
        self.near_score = near_score

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
        reply = self.engine.ask(text)
        outcome = Outcome(reply.outcome)
        answer = reply.answer if outcome is Outcome.ANSWERED else None
        ids = self.database.log_interaction(
            PLATFORM,
            event.user_id,
            event.dialog_id,
            reply.text_raw,
            reply.text_searched,
            outcome,
            faq_id=answer.faq_id if answer else None,
            score=_top_score(reply),
            candidates=[(c.faq_id, c.score) for c in reply.candidates],
            message_id=event.message_id,
        )
        log_id = ids.answer_log_id
        decision = Decision(outcome.value, _top_score(reply), answer and answer.faq_id)

        if outcome is Outcome.ANSWERED and answer is not None:
            faq = self.database.get_faq(answer.faq_id)
            if faq is None:
                return self._no_answer(event, text, reply, log_id)
            self._send_answer(event, faq, log_id)
        elif outcome is Outcome.CHOICES:
            rows = [self._choice_button(log_id, c) for c in reply.choices]
            rows.append([self._all_categories_button()])
            self._say(event, texts.CHOICES, rows)
        elif outcome is Outcome.SMALLTALK:
            self._say(event, reply.smalltalk_reply or texts.EMPTY_MESSAGE)
        elif outcome is Outcome.EMPTY:
            if not event.is_group_chat:
                self._say(event, texts.EMPTY_MESSAGE)
        else:
            self._no_answer(event, text, reply, log_id)
        return decision

    def _no_answer(
        self, event: Bitrix24Event, text: str, reply: Reply, log_id: int
    ) -> None:
        quote = escape_bbcode(texts.shorten(text, texts.QUOTE_LIMIT))
        message = texts.NO_ANSWER.format(question=quote)
        near = [c for c in reply.candidates if c.score >= self.near_score]
        rows = [self._choice_button(log_id, c) for c in near[:SIMILAR_LIMIT]]
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
        category_id = _int_param(event.command_params)
        category = self._find_category(category_id)
        if category is None:
            self._say(event, texts.CATEGORY_GONE, self._category_rows())
            return Decision("category_gone")

        faqs = self.database.list_faqs(category_id=category.id)
        if not faqs:
            message = texts.CATEGORY_EMPTY.format(name=category.name)
            self._say(event, message, self._category_rows())
            return Decision("category_empty")

        shown = faqs[:CATEGORY_QUESTION_LIMIT]
        message = texts.CATEGORY.format(name=category.name)
        if len(faqs) > len(shown):
            message += texts.CATEGORY_MORE.format(shown=len(shown), total=len(faqs))
        rows = [[self._faq_button(faq)] for faq in shown]
        rows.append([self._all_categories_button()])
        self._say(event, message, rows)
        return Decision("category")

    def open_faq(self, event: Bitrix24Event) -> Decision:
        faq_id = _int_param(event.command_params)
        faq = self.database.get_faq(faq_id) if faq_id else None
        if faq is None:
            self._say(event, texts.FAQ_GONE, self._category_rows())
            return Decision("faq_gone")
        log_id = self._log_opened(event, faq, candidates=())
        self._send_answer(event, faq, log_id)
        return Decision("faq_opened", faq_id=faq.id)

    def open_choice(self, event: Bitrix24Event) -> Decision:
        """A "did you mean" or related-question button: open it, note the choice."""
        raw_log_id, _, raw_faq_id = event.command_params.strip().partition(" ")
        log_id, faq_id = _int_param(raw_log_id), _int_param(raw_faq_id)
        origin = self.database.get_answer_log(log_id) if log_id else None
        faq = self.database.get_faq(faq_id) if faq_id else None
        if faq is None:
            self._say(event, texts.FAQ_GONE, self._category_rows())
            return Decision("faq_gone")

        others: tuple[tuple[int, float], ...] = ()
        if origin is not None:
            self.database.record_choice(origin.id, faq.id)
            skip = {faq.id, origin.faq_id}
            others = tuple(pair for pair in origin.candidates if pair[0] not in skip)
        log_id = self._log_opened(event, faq, candidates=others)
        self._send_answer(event, faq, log_id)
        return Decision("choice", faq_id=faq.id)

    def show_help(self, event: Bitrix24Event) -> Decision:
        return self.welcome(event)

    # ratings

    def rate_helpful(self, event: Bitrix24Event) -> Decision:
        return self._rate(event, helpful=True)

    def rate_not_helpful(self, event: Bitrix24Event) -> Decision:
        return self._rate(event, helpful=False)

    def _rate(self, event: Bitrix24Event, helpful: bool) -> Decision:
        log_id = _int_param(event.command_params)
        result = (
            self.database.record_rating(log_id, event.user_id, helpful)
            if log_id
            else RatingResult.UNKNOWN_ANSWER
        )
        if result is RatingResult.NOT_ASKER:
            self._say(event, texts.NOT_YOUR_ANSWER)
            return Decision("rating_not_asker")
        if result is RatingResult.UNKNOWN_ANSWER:
            self._say(event, texts.BAD_BUTTON)
            return Decision("rating_unknown_answer")

        answer_log = self.database.get_answer_log(log_id)
        self._remove_rating_buttons(event, answer_log)
        if result is RatingResult.ALREADY_RATED:
            self._say(event, texts.ALREADY_RATED)
            return Decision("rating_repeated")
        if helpful:
            self._say(event, texts.THANKS_HELPFUL)
            return Decision("rated_helpful", faq_id=answer_log and answer_log.faq_id)

        message = texts.THANKS_NOT_HELPFUL
        rows: list[list[dict[str, str]]] = []
        if answer_log is not None:
            shown = {answer_log.faq_id, answer_log.chosen_faq_id}
            for faq in self._faqs(answer_log.candidates, skip=shown):
                rows.append(self._choice_button(log_id, faq))
        if rows:
            message += texts.THANKS_NOT_HELPFUL_NEXT
        categories = self._category_rows()
        if categories:
            message += texts.THANKS_NOT_HELPFUL_CATEGORIES
        self._say(event, message, rows + categories)
        return Decision("rated_not_helpful", faq_id=answer_log and answer_log.faq_id)

    def _remove_rating_buttons(self, event: Bitrix24Event, answer_log: Any) -> None:
        """Take the rating row off the pressed answer, keep its related questions."""
        message_id = event.message_id
        if not message_id:
            return
        rows = self._similar_rows(answer_log) if answer_log is not None else []
        keyboard = self.api.create_keyboard(rows) if rows else "N"
        self.api.update_message(message_id, keyboard=keyboard)

    # commands

    def on_command(self, event: Bitrix24Event) -> Decision:
        command = COMMANDS_BY_NAME.get(event.command_name)
        if command is None:
            return Decision(f"unknown_command:{event.command_name[:40]}")
        return command.handler(self, event)

    # building blocks

    def _send_answer(self, event: Bitrix24Event, faq: FaqRecord, log_id: int) -> None:
        message = texts.ANSWER.format(question=faq.question, answer=faq.answer)
        answer_log = self.database.get_answer_log(log_id)
        rows = self._similar_rows(answer_log) if answer_log is not None else []
        if rows:
            message += texts.SIMILAR
        message += texts.RATE
        rows.append(
            [
                self._button(texts.BUTTON_YES, CommandName.HELPFUL_YES, log_id),
                self._button(texts.BUTTON_NO, CommandName.HELPFUL_NO, log_id),
            ]
        )
        self._say(event, message, rows)

    def _similar_rows(self, answer_log: Any) -> list[list[dict[str, str]]]:
        """Related questions of an answer, derived from its stored candidates.

        Built the same way when the answer is sent and when its rating buttons
        are taken off, so the rest of the keyboard stays as it was.
        """
        skip = {answer_log.faq_id, answer_log.chosen_faq_id}
        faqs = self._faqs(answer_log.candidates, skip=skip)
        return [self._choice_button(answer_log.id, faq) for faq in faqs]

    def _faqs(
        self, candidates: Sequence[tuple[int, float]], skip: set[int | None]
    ) -> list[FaqRecord]:
        faqs = []
        for faq_id, score in candidates:
            if faq_id in skip or score < self.near_score:
                continue
            faq = self.database.get_faq(faq_id)
            if faq is not None:
                faqs.append(faq)
            if len(faqs) == SIMILAR_LIMIT:
                break
        return faqs

    def _log_opened(
        self,
        event: Bitrix24Event,
        faq: FaqRecord,
        candidates: Sequence[tuple[int, float]],
    ) -> int:
        """Log an entry opened by a button as an answered question of its own."""
        ids = self.database.log_interaction(
            PLATFORM,
            event.user_id,
            event.dialog_id,
            event.message_text or f"/{event.command_name} {event.command_params}",
            faq.question,
            Outcome.ANSWERED,
            faq_id=faq.id,
            candidates=candidates,
            message_id=event.message_id,
        )
        return ids.answer_log_id

    def _category_rows(self) -> list[list[dict[str, str]]]:
        return [
            [
                self._button(
                    texts.CATEGORY_BUTTON.format(name=c.name, count=c.faq_count),
                    CommandName.CATEGORY,
                    c.id,
                )
            ]
            for c in self.database.list_categories()
            if c.faq_count > 0
        ]

    def _find_category(self, category_id: int | None) -> CategoryRecord | None:
        if not category_id:
            return None
        for category in self.database.list_categories():
            if category.id == category_id:
                return category
        return None

    def _faq_button(self, faq: FaqRecord) -> dict[str, str]:
        return self._button(faq.question, CommandName.FAQ, faq.id)

    def _choice_button(
        self, log_id: int, faq: Candidate | FaqRecord
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


def _int_param(value: str) -> int | None:
    try:
        number = int(value.strip())
    except (AttributeError, ValueError):
        return None
    return number if number > 0 else None


def _top_score(reply: Reply) -> float | None:
    if reply.answer is not None:
        return reply.answer.score
    if reply.candidates:
        return reply.candidates[0].score
    return None
