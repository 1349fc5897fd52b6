"""Small talk: messages that are not questions and must never get an FAQ entry.

Greetings, thanks, goodbyes, «ок», «да», a lone «?», emoji, the text of a
rating button typed by hand, empty messages (an attachment alone) and long
junk (a pasted blob, one letter held down) get a short reply of their own
(field reports 13 and 16). Anything that carries a question after the
greeting («привет, не работает VPN») is left to search.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from text_normalize import BLOB, MAX_RAW_CHARS, clean_markup, fold_case


class SmalltalkKind(StrEnum):
    EMPTY = "empty"
    GREETING = "greeting"
    THANKS = "thanks"
    GOODBYE = "goodbye"
    BOT_IDENTITY = "bot_identity"
    HOW_ARE_YOU = "how_are_you"
    ACK = "ack"
    NEGATIVE = "negative"
    HELP = "help"
    PUNCTUATION = "punctuation"
    EMOJI = "emoji"
    RATING = "rating"
    JUNK = "junk"


@dataclass(frozen=True)
class Smalltalk:
    kind: SmalltalkKind
    reply: str


_REPLIES: dict[SmalltalkKind, tuple[str, ...]] = {
    SmalltalkKind.EMPTY: (
        "Я понимаю только текст. Напишите, пожалуйста, ваш вопрос словами.",
        "Вложения я пока не читаю. Опишите вопрос текстом, и я поищу ответ.",
    ),
    SmalltalkKind.GREETING: (
        "Здравствуйте! Напишите ваш вопрос, и я поищу ответ в базе знаний.",
        "Добрый день! Чем могу помочь? Задайте вопрос своими словами.",
        "Привет! Спросите меня об отпуске, доступах, офисе или документах.",
    ),
    SmalltalkKind.THANKS: (
        "Пожалуйста! Обращайтесь, если появятся вопросы.",
        "Рад помочь! Если что-то ещё, просто напишите.",
        "Всегда пожалуйста 🙂",
    ),
    SmalltalkKind.GOODBYE: (
        "До свидания! Хорошего дня.",
        "Всего доброго! Пишите, если появятся вопросы.",
    ),
    SmalltalkKind.BOT_IDENTITY: (
        "Да, я бот: ищу ответы в базе знаний компании. Если ответа нет, "
        "подскажу, к кому обратиться.",
    ),
    SmalltalkKind.HOW_ARE_YOU: (
        "Всё хорошо, спасибо! Чем могу помочь?",
        "Работаю и готов помочь. Какой у вас вопрос?",
    ),
    SmalltalkKind.ACK: (
        "Хорошо! Если появится вопрос, просто напишите.",
        "Понял. Задайте вопрос, когда будет нужно.",
    ),
    SmalltalkKind.NEGATIVE: (
        "Понял. Попробуйте сформулировать вопрос иначе, и я поищу ещё раз.",
    ),
    SmalltalkKind.HELP: (
        "Я отвечаю на вопросы по базе знаний компании. Напишите вопрос своими "
        "словами, например: «Как оформить отпуск?»",
    ),
    SmalltalkKind.PUNCTUATION: (
        "Напишите, пожалуйста, ваш вопрос словами, и я поищу ответ.",
    ),
    SmalltalkKind.EMOJI: ("🙂", "Если появится вопрос, просто напишите."),
    # typed text stores no rating, so the reply must not claim one was stored
    SmalltalkKind.RATING: (
        "Спасибо! Чтобы оценить ответ, нажмите кнопку «👍 Помогло» или "
        "«👎 Не помогло» под ним.",
    ),
    SmalltalkKind.JUNK: (
        "Это не похоже на вопрос. Напишите, пожалуйста, коротко и словами, "
        "что вы хотите узнать.",
    ),
}

# whole-message patterns on case-folded text without punctuation
_PHRASES: tuple[tuple[SmalltalkKind, str], ...] = (
    (
        SmalltalkKind.GREETING,
        r"(привет(ик|ствую)?|здравствуй(те)?|здрасьте|хай|хэй|hello|hi|hey|"
        r"добр(ый|ое|ого) (день|утро|вечер|дня|утра|вечера|времени суток)|"
        r"доброго времени суток|доброе утро|салют|приветствую( вас)?)"
        r"( (бот|коллеги|всем|друзья|ребята))*",
    ),
    (
        SmalltalkKind.THANKS,
        r"((большое |огромное )?спасибо|спс|пасиб[оа]?|благодарю|сенкс|thanks|"
        r"thank you|спасибо большое|спасибо огромное|благодарю вас)"
        r"( (большое|огромное|бот|вам|тебе|за помощь|за ответ|помогло|"
        r"разобрался|разобралась|все понятно|понятно))*",
    ),
    (
        SmalltalkKind.GOODBYE,
        r"(пока|до свидания|до встречи|всего доброго|всего хорошего|бай|bye|"
        r"хорошего дня|до завтра)( (бот|всем))*",
    ),
    (
        SmalltalkKind.BOT_IDENTITY,
        r"(ты|вы) (бот|робот|человек|живой|живая|кто|настоящий|настоящая)|"
        r"кто (ты|вы)( такой| такая| такие)?|это бот|с кем я говорю|"
        r"я говорю с ботом|ты (живой )?человек",
    ),
    (
        SmalltalkKind.HOW_ARE_YOU,
        r"как (дела|ты|вы|поживаешь|поживаете|жизнь)|что нового|как настроение",
    ),
    (
        SmalltalkKind.ACK,
        r"(ок|окей|ok|okay|ага|угу|да|ясно|понятно|понял|поняла|хорошо|отлично|"
        r"супер|класс|норм|ладно|так|ну|ну да|все понятно|все ясно|принято|"
        r"договорились|круто|здорово|хорошо спасибо|ок спасибо)",
    ),
    (SmalltalkKind.NEGATIVE, r"(нет|не|неа|no|не то|не помогло|бесполезно)"),
    (
        SmalltalkKind.HELP,
        r"(помощь|помоги|помогите|help|меню|старт|start|что ты умеешь|"
        r"что вы умеете|что умеешь|как тобой пользоваться)",
    ),
    (
        SmalltalkKind.RATING,
        r"(полезно|бесполезно|не полезно|помогло|не помогло|нравится|"
        r"не нравится|like|dislike)",
    ),
)
_PATTERNS = tuple(
    (kind, re.compile(rf"(?:{pattern})(?: (?:{pattern}))*"))
    for kind, pattern in _PHRASES
)
# a rating button's label typed by hand: «👍 Полезно», «👎 Не помогло»
_RATING_TEXT = re.compile(r"^(полезно|бесполезно|не полезно|помогло|не помогло)$")
_NON_WORD = re.compile(r"[^\w\s]|_", re.UNICODE)
_SPACES = re.compile(r"\s+")
# a greeting and a thanks or goodbye in one message are still small talk
_COMBINABLE = frozenset(
    {
        SmalltalkKind.GREETING,
        SmalltalkKind.THANKS,
        SmalltalkKind.GOODBYE,
        SmalltalkKind.ACK,
    }
)
# thumbs down, frowns and tears typed alone
NEGATIVE_EMOJI = frozenset("👎😞😠😡😢😭☹🙁😕😔")
# messages this long are questions even when they start with a greeting
MAX_SMALLTALK_CHARS = 80
# a long message made of this few distinct words is a held key or a paste
JUNK_MIN_WORDS = 30
JUNK_MAX_DISTINCT = 3


def _is_symbol(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category.startswith(("S", "P", "Z", "M", "C")) or ch in "\u200d\ufe0f"


def _has_emoji(text: str) -> bool:
    return any(unicodedata.category(ch) == "So" for ch in text)


def _emoji_kind(text: str) -> SmalltalkKind:
    """A message of symbols only: a frown is «не то», anything else a nod."""
    if any(ch in NEGATIVE_EMOJI for ch in text):
        return SmalltalkKind.NEGATIVE
    return SmalltalkKind.EMOJI if _has_emoji(text) else SmalltalkKind.PUNCTUATION


def _words_only(text: str) -> str:
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text)).strip()


def _match_kind(words: str) -> SmalltalkKind | None:
    for kind, pattern in _PATTERNS:
        if pattern.fullmatch(words):
            return kind
    return None


def _split_kinds(words: str) -> SmalltalkKind | None:
    """Match «привет спасибо пока»-like chains made of combinable parts."""
    first: SmalltalkKind | None = None
    rest = words
    while rest:
        for kind, pattern in _PATTERNS:
            if kind not in _COMBINABLE:
                continue
            found = pattern.match(rest)
            if found and (found.end() == len(rest) or rest[found.end()] == " "):
                first = first or kind
                rest = rest[found.end() :].strip()
                break
        else:
            return None
    return first


def _is_junk(raw: str, cleaned: str) -> bool:
    """A blob (base64, a long run of letters, a bare link) with nothing left
    to search once it is dropped, or a long run of one or two words."""
    if not any(ch.isalnum() for ch in cleaned):
        return BLOB.search(raw[:MAX_RAW_CHARS]) is not None
    words = _words_only(cleaned).split()
    return len(words) >= JUNK_MIN_WORDS and len(set(words)) <= JUNK_MAX_DISTINCT


def detect(text: str | None) -> SmalltalkKind | None:
    """The kind of small talk `text` is, or None for anything to search."""
    cleaned = fold_case(clean_markup(text or "")).strip()
    if _is_junk(text or "", cleaned):
        return SmalltalkKind.JUNK
    if not cleaned or all(_is_symbol(ch) for ch in cleaned):
        if not cleaned:
            return SmalltalkKind.EMPTY
        return _emoji_kind(cleaned)

    if len(cleaned) > MAX_SMALLTALK_CHARS:
        return None

    words = _words_only(cleaned)
    if not words:
        return _emoji_kind(cleaned)

    if _has_emoji(cleaned) and _RATING_TEXT.match(words):
        return SmalltalkKind.RATING

    return _match_kind(words) or _split_kinds(words)


def reply_for(kind: SmalltalkKind, rng: random.Random | None = None) -> str:
    """A short fitting reply in Russian; `rng` picks among the variants."""
    variants = _REPLIES[kind]
    return (rng or random).choice(variants)


def respond(text: str | None, rng: random.Random | None = None) -> Smalltalk | None:
    """Small talk and its reply, or None when the message should be searched."""
    kind = detect(text)
    if kind is None:
        return None

    return Smalltalk(kind=kind, reply=reply_for(kind, rng))
