"""Clean up chat messages before they are searched.

Users write to the bot the way they write to a colleague: with greetings,
politeness formulas, mentions, leftover BB-codes, shouting and typos. The
functions here turn such a message into the short question the FAQ index
should see, and never into something longer than ``MAX_QUERY_CHARS``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rapidfuzz import process
from rapidfuzz.distance import DamerauLevenshtein

logger = logging.getLogger(__name__)

# the embedding model reads at most 512 tokens; a long question is well under this
MAX_QUERY_CHARS = 600
# a raw message is cut before any regex runs, so a pasted blob costs little
MAX_RAW_CHARS = 4000
# a long word with no spaces is a hash, a link or base64, never a question word
MAX_WORD_CHARS = 40

# a mention's text is a name, not part of the question; a link's text is what
# the user wrote, so [url=...] is left to _BB_TAG, which keeps the text
_BB_MENTION = re.compile(
    r"\[(user|chat|dialog|lines)=[^\]]*\](.*?)\[/\1\]", re.IGNORECASE | re.DOTALL
)
_BB_TAG = re.compile(
    r"\[/?(b|i|u|s|url|img|code|quote|color|size|font|user|chat|dialog|send|put|"
    r"br|icon|left|right|center|justify|list|\*|table|tr|td|p|disk|call|attach|"
    r"context|pchat|timestamp)(=[^\]]*)?\]",
    re.IGNORECASE,
)
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_LONG_WORD = re.compile(rf"\S{{{MAX_WORD_CHARS + 1},}}")
# visible text that clean_markup drops as a blob rather than as markup
BLOB = re.compile(rf"{_URL.pattern}|\S{{{MAX_WORD_CHARS + 1},}}", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([!?.,;:])")
_REPEATED_PUNCT = re.compile(r"([!?.,;:\-])\1+")
_MIXED_PUNCT = re.compile(r"[!?]*\?[!?]*!+|!+\?[!?]*")
_LEADING_JUNK = re.compile(r"^[\s,.;:!\-—–)]+")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_WORD = re.compile(r"[a-zа-я0-9]+(?:-[a-zа-я0-9]+)*")

# greetings, addresses to the bot and politeness formulas that carry no
# meaning for search; matched at the start or the end of a sentence
_OPENERS = (
    r"здравствуй(те)?",
    r"здрасьте",
    r"привет(ствую)?",
    r"добр(ый|ого|ое|ой) (день|дня|утро|утра|вечер|вечера|времени суток)",
    r"доброго времени суток",
    r"hello",
    r"hi",
    r"коллеги",
    r"уважаем(ый|ая|ые) (коллеги|бот)",
    r"бот",
    r"ребята",
    r"(извините|простите)( за беспокойство)?",
    r"(у меня|есть) (такой |один |небольшой )?вопрос",
    r"вопрос",
    r"(подскажите|скажите|посоветуйте|поясните|объясните)( мне)?( пожалуйста)?",
    r"(не )?(подскажете|скажете|поможете)( мне)?( пожалуйста)?",
    r"(не )?(могли|можете) (бы )?(вы )?(мне )?(подсказать|сказать|помочь|объяснить)",
    r"можете ли вы (мне )?(подсказать|сказать|помочь|объяснить)( мне)?",
    r"помогите( мне)?( пожалуйста)?",
    r"(я )?(хотел|хотела|хотелось) бы (узнать|уточнить|спросить)",
    r"(хочу|хотим) (узнать|уточнить|спросить)",
    r"интересует",
    r"пожалуйста",
    r"пож",
    r"плиз",
    r"пжл?",
)
_CLOSERS = (
    r"(заранее )?(большое )?спасибо( заранее)?( большое)?",
    r"благодарю( заранее)?",
    r"заранее благодар(ен|на|ю|им)",
    r"пожалуйста",
    r"плиз",
    r"пжл?",
)
_OPENER = re.compile(r"^(?:(?:" + "|".join(_OPENERS) + r")\b[\s,.!:;\-—]*)+")
_CLOSER = re.compile(r"(?:[\s,.!:;\-—]*\b(?:" + "|".join(_CLOSERS) + r"))+[\s.!)]*$")
# a sentence that is only politeness after the openers are gone
_EMPTY_AFTER_STRIP = re.compile(r"^[\W_]*$")
_QUESTION_WORDS_TEXT = (
    "как где когда почему зачем что кто куда откуда сколько какой какая какое "
    "какие каким можно ли нужно надо не"
)
_QUESTION_WORDS = frozenset(_QUESTION_WORDS_TEXT.split())


@dataclass(frozen=True)
class NormalizedText:
    """A message as received and the text that should be searched."""

    raw: str
    searched: str

    @property
    def is_empty(self) -> bool:
        return not self.searched


def fold_case(text: str) -> str:
    """Lower-case the text and fold ё into е, as the index does."""
    return text.lower().replace("ё", "е")


def clean_markup(text: str) -> str:
    """Drop mentions, BB-codes, links, control characters and long blobs."""
    text = unicodedata.normalize("NFC", text[:MAX_RAW_CHARS])
    text = _BB_MENTION.sub(" ", text)
    text = _BB_TAG.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _LONG_WORD.sub(" ", text)
    text = "".join(
        ch if unicodedata.category(ch)[0] != "C" or ch == "\n" else " " for ch in text
    )
    return text


def strip_politeness(sentence: str) -> str:
    """Remove greetings and politeness formulas around a case-folded sentence."""
    stripped = _OPENER.sub("", sentence)
    stripped = _CLOSER.sub("", stripped)
    stripped = _LEADING_JUNK.sub("", stripped).strip()
    return "" if _EMPTY_AFTER_STRIP.match(stripped) else stripped


def _is_question(sentence: str) -> bool:
    if sentence.endswith("?"):
        return True

    words = _WORD.findall(sentence)
    return bool(words) and words[0] in _QUESTION_WORDS


def pick_question(sentences: list[str]) -> list[str]:
    """Keep the sentences that ask something when a message carries context.

    Short messages are kept whole; in a long one the question sentences are
    what the FAQ answers, and the story around them only adds noise.
    """
    if len(sentences) <= 2:
        return sentences

    questions = [s for s in sentences if _is_question(s)]
    if not questions:
        return sentences[-2:]

    return questions[:3]


def normalize_query(text: str | None) -> NormalizedText:
    """Turn a chat message into the text that is searched.

    The result is lower-case, with ё folded into е, without markup,
    greetings or politeness formulas, with punctuation runs squeezed, and at
    most ``MAX_QUERY_CHARS`` long. A message that is nothing but politeness
    or markup becomes empty.
    """
    raw = text or ""
    cleaned = fold_case(clean_markup(raw))
    cleaned = _MIXED_PUNCT.sub("?", cleaned)
    cleaned = _REPEATED_PUNCT.sub(r"\1", cleaned)

    sentences = []
    for part in _SENTENCE_END.split(cleaned):
        part = _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", part)).strip()
        part = strip_politeness(part)
        if part:
            sentences.append(part)

    searched = " ".join(pick_question(sentences))
    if len(searched) > MAX_QUERY_CHARS:
        searched = searched[:MAX_QUERY_CHARS].rsplit(" ", 1)[0]

    return NormalizedText(raw=raw, searched=searched)


def tokenize(text: str) -> list[str]:
    """Split case-folded text into words (letters, digits, inner hyphens)."""
    return _WORD.findall(fold_case(text))


class TypoCorrector:
    """Replace misspelt words with the closest word of the FAQ vocabulary.

    Only words that neither the FAQ nor the dictionary (``is_word``) knows
    are touched, only long enough ones, and only when a known word is within
    one or two edits, so a correct query is never rewritten.
    """

    def __init__(
        self,
        vocabulary: Iterable[str],
        is_word: Callable[[str], bool] | None = None,
    ) -> None:
        self._known = frozenset(vocabulary)
        self._is_word = is_word
        self._by_length: dict[int, list[str]] = {}
        for word in self._known:
            if len(word) >= 4 and word.isalpha():
                self._by_length.setdefault(len(word), []).append(word)

    def correct_word(self, word: str) -> str:
        if word in self._known or len(word) < 4 or not word.isalpha():
            return word

        if self._is_word is not None and self._is_word(word):
            return word

        max_edits = 1 if len(word) < 8 else 2
        choices: list[str] = []
        for length in range(len(word) - max_edits, len(word) + max_edits + 1):
            # people rarely miss the first letter; this also keeps «активировать»
            # from turning into «деактивировать»
            choices.extend(
                known
                for known in self._by_length.get(length, ())
                if known[0] == word[0]
            )
        if not choices:
            return word

        match = process.extractOne(
            word,
            choices,
            scorer=DamerauLevenshtein.distance,
            score_cutoff=max_edits,
        )
        return match[0] if match else word

    def correct(self, text: str) -> str:
        """Return case-folded text with unknown words replaced by their match."""
        return _WORD.sub(lambda m: self.correct_word(m.group()), fold_case(text))
