"""The FAQ entries and categories, and the rules every write to them follows.

Every write goes through `_FaqWriter`, one per transaction: texts are trimmed and
checked against their limits, categories are matched ignoring case (and created
when new), phrasings are cleaned and de-duplicated, and no question or phrasing
may belong to two entries (compared by `question_key`). Each transaction that
changes the FAQ bumps its revision once, so the bot rebuilds its index once.

`Database` owns a `FaqStore` and delegates its FAQ methods to it.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from models import Category, Faq, FaqPhrasing, FaqRevision, utcnow

logger = logging.getLogger(__name__)

MAX_QUESTION_LENGTH = 1_000
MAX_ANSWER_LENGTH = 20_000
MAX_CATEGORY_LENGTH = 100
MAX_PHRASINGS = 50

_NOT_WORD = re.compile(r"[^\w]+")
# line breaks other than \n: an answer keeps its lines whatever system typed them
_LINE_BREAKS = re.compile(r"\r\n?|[\x85\u2028\u2029]")
# letters to Unicode that show as nothing: they would pass "has a letter"
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
_RETRY_MESSAGE = "Не удалось сохранить вопрос: данные изменились, попробуйте ещё раз"

SessionFactory = Callable[[], AbstractContextManager[Session]]


class ValidationError(ValueError):
    """Input that cannot be stored; the message is meant for an admin, in Russian.

    `field` names the part of an entry at fault ("question", "answer",
    "category", "phrasings"), so a form can show the message next to it.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class StaleEntryError(ValidationError):
    """The entry changed after the editor opened it, so saving would undo that."""

    def __init__(self, faq_id: int) -> None:
        super().__init__(
            "Запись изменили, пока вы её редактировали. Ниже — её текущий "
            "текст, а ваш вариант остался в форме: сравните, поправьте "
            "и сохраните ещё раз."
        )
        self.faq_id = faq_id


@dataclass(frozen=True)
class Duplicate:
    """A text that another entry already has as its question or a phrasing."""

    text: str
    faq_id: int
    faq_question: str

    def message(self) -> str:
        return f"«{self.text}» уже есть в записи №{self.faq_id} «{self.faq_question}»."


class DuplicateQuestionError(ValidationError):
    """The question or some phrasings of an entry belong to other entries."""

    def __init__(
        self, question: Duplicate | None, phrasings: Sequence[Duplicate] = ()
    ) -> None:
        self.question = question
        self.phrasings = tuple(phrasings)
        messages = [self.question_message] if self.question_message else []
        messages.extend(duplicate.message() for duplicate in self.phrasings)
        super().__init__(" ".join(messages))

    @property
    def question_message(self) -> str | None:
        if self.question is None:
            return None
        return (
            f"Такой вопрос уже есть в записи №{self.question.faq_id} "
            f"«{self.question.faq_question}». Добавьте формулировку туда или "
            "измените вопрос."
        )


@dataclass(frozen=True)
class FaqRecord:
    id: int
    external_id: str | None
    category_id: int
    category: str
    question: str
    answer: str
    phrasings: tuple[str, ...]
    updated_at: datetime


@dataclass(frozen=True)
class CategoryRecord:
    id: int
    name: str
    faq_count: int


@dataclass(frozen=True)
class FaqImportRow:
    """One entry of an import: changes entry `faq_id`, or adds one when it is None.

    `phrasings` None keeps the entry's phrasings; `external_id` is set on added
    entries only.
    """

    category: str
    question: str
    answer: str
    phrasings: tuple[str, ...] | None = None
    faq_id: int | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class ImportResult:
    added: int
    changed: int


def question_key(text: str) -> str:
    """Return the form of a question used to compare it with others.

    Two questions are the same when they differ only in letter case, ё/е,
    punctuation and spacing: «Как оформить отпуск?» and «как оформить  отпуск».
    """
    folded = clean_line(text).casefold().replace("ё", "е")
    return " ".join(_NOT_WORD.sub(" ", folded).split())


class QuestionIndex:
    """Every question and phrasing of the FAQ, keyed by `question_key`."""

    def __init__(self, records: Iterable[FaqRecord] = ()) -> None:
        self._owners: dict[str, tuple[int, str]] = {}
        for record in records:
            self.add(record.id, record.question, record.phrasings)

    def add(self, faq_id: int, question: str, phrasings: Iterable[str]) -> None:
        """Register the texts of one entry; a text keeps its first owner."""
        for text in (question, *phrasings):
            # a text without words (stored before the rules said so) would
            # clash with every other such text
            if key := question_key(text):
                self._owners.setdefault(key, (faq_id, question))

    def duplicates(
        self, texts: Iterable[str], exclude_id: int | None = None
    ) -> list[Duplicate]:
        """Return the texts that belong to an entry other than `exclude_id`."""
        found = []
        for text in texts:
            owner = self._owners.get(question_key(text) or None)
            if owner is not None and owner[0] != exclude_id:
                found.append(Duplicate(text, *owner))
        return found


class FaqStore:
    """Reads and writes of the FAQ, each in its own transaction."""

    def __init__(self, session: SessionFactory) -> None:
        self._session = session

    # -------------------------------------------------------------- faqs

    def list_faqs(
        self, category_id: int | None = None, search: str | None = None
    ) -> list[FaqRecord]:
        """All entries, by category order then id; `search` matches any text.

        The text filter runs in Python: sqlite's lower() ignores Cyrillic, and
        an FAQ is small enough to read whole.
        """
        with self._session() as session:
            stmt = (
                select(Faq)
                .join(Faq.category)
                .options(selectinload(Faq.phrasings), selectinload(Faq.category))
                .order_by(Category.sort_order, Category.id, Faq.id)
            )
            if category_id is not None:
                stmt = stmt.where(Faq.category_id == category_id)
            records = [_faq_record(faq) for faq in session.scalars(stmt)]
        if search and search.strip():
            needle = search.strip().casefold()
            records = [
                r
                for r in records
                if needle
                in "\n".join(
                    (r.question, r.answer, r.category, *r.phrasings)
                ).casefold()
            ]
        return records

    def get_faq(self, faq_id: int) -> FaqRecord | None:
        with self._session() as session:
            faq = session.get(Faq, faq_id)
            return _faq_record(faq) if faq is not None else None

    def get_faq_by_external_id(self, external_id: str) -> FaqRecord | None:
        with self._session() as session:
            faq = session.scalar(select(Faq).where(Faq.external_id == external_id))
            return _faq_record(faq) if faq is not None else None

    def add_faq(
        self,
        question: str,
        answer: str,
        category: str | int,
        phrasings: Iterable[str] = (),
        external_id: str | None = None,
    ) -> FaqRecord:
        external_id = clean_external_id(external_id)
        for attempt in range(2):
            try:
                with self._session() as session:
                    faq = _FaqWriter(session).add(
                        question, answer, category, phrasings, external_id
                    )
                    _bump_revision(session)
                    record = _faq_record(faq)
                break
            except IntegrityError as exc:
                if external_id and self.get_faq_by_external_id(external_id):
                    raise ValidationError(
                        f"Запись с внешним id {external_id!r} уже есть"
                    ) from exc
                if attempt:
                    raise ValidationError(_RETRY_MESSAGE) from exc
                # another writer created the same category a moment ago
        logger.info("faq %s added in category %r", record.id, record.category)
        return record

    def update_faq(
        self,
        faq_id: int,
        *,
        question: str | None = None,
        answer: str | None = None,
        category: str | int | None = None,
        phrasings: Iterable[str] | None = None,
        expected_updated_at: datetime | None = None,
    ) -> FaqRecord:
        """Change the given fields of an entry.

        With `expected_updated_at` the entry must still be as the editor saw
        it: if anyone saved it since, StaleEntryError is raised and nothing
        changes.
        """
        for attempt in range(2):
            try:
                with self._session() as session:
                    faq = _FaqWriter(session).update(
                        _require_faq(session, faq_id),
                        question=question,
                        answer=answer,
                        category=category,
                        phrasings=phrasings,
                        expected_updated_at=expected_updated_at,
                    )
                    _bump_revision(session)
                    record = _faq_record(faq)
                break
            except IntegrityError as exc:
                if attempt:
                    raise ValidationError(_RETRY_MESSAGE) from exc
        logger.info("faq %s updated", faq_id)
        return record

    def delete_faq(self, faq_id: int) -> None:
        with self._session() as session:
            session.delete(_require_faq(session, faq_id))
            _bump_revision(session)
        logger.info("faq %s deleted", faq_id)

    def upsert_faq_by_external_id(
        self,
        external_id: str,
        question: str,
        answer: str,
        category: str | int,
        phrasings: Iterable[str] | None = None,
    ) -> tuple[FaqRecord, bool]:
        """Insert or update the entry with this external id; True when created."""
        external_id = clean_external_id(external_id) or ""
        if not external_id:
            raise ValidationError("Внешний id записи не может быть пустым")
        existing = self.get_faq_by_external_id(external_id)
        if existing is None:
            return (
                self.add_faq(question, answer, category, phrasings or (), external_id),
                True,
            )
        return (
            self.update_faq(
                existing.id,
                question=question,
                answer=answer,
                category=category,
                phrasings=phrasings,
            ),
            False,
        )

    def apply_import(self, rows: Sequence[FaqImportRow]) -> ImportResult:
        """Add and change entries in one transaction, bumping the revision once.

        Each row follows the rules of `add_faq` and `update_faq`, against the FAQ
        as the rows before it left it; the first row that breaks one raises
        ValidationError and nothing of the import is stored.
        """
        if not rows:
            return ImportResult(0, 0)
        added = changed = 0
        try:
            with self._session() as session:
                writer = _FaqWriter(session)
                for row in rows:
                    if row.faq_id is None:
                        writer.add(
                            row.question,
                            row.answer,
                            row.category,
                            row.phrasings or (),
                            clean_external_id(row.external_id),
                        )
                        added += 1
                    else:
                        writer.update(
                            _require_faq(session, row.faq_id),
                            question=row.question,
                            answer=row.answer,
                            category=row.category,
                            phrasings=row.phrasings,
                        )
                        changed += 1
                _bump_revision(session)
        except IntegrityError as exc:
            raise ValidationError(
                "Не удалось выполнить импорт: данные изменились или внешние id "
                "повторяются, попробуйте ещё раз"
            ) from exc
        logger.info("faq import applied: %s added, %s changed", added, changed)
        return ImportResult(added, changed)

    # -------------------------------------------------------- categories

    def list_categories(self) -> list[CategoryRecord]:
        with self._session() as session:
            rows = session.execute(
                select(Category.id, Category.name, func.count(Faq.id))
                .outerjoin(Faq, Faq.category_id == Category.id)
                .group_by(Category.id, Category.name, Category.sort_order)
                .order_by(Category.sort_order, Category.id)
            ).all()
        return [CategoryRecord(id=r[0], name=r[1], faq_count=r[2]) for r in rows]

    def add_category(self, name: str) -> CategoryRecord:
        name = clean_text(
            name, "Название категории", MAX_CATEGORY_LENGTH, field="category"
        )
        with self._session() as session:
            if _find_category(session, name) is not None:
                raise ValidationError(f"Категория «{name}» уже есть")
            category = _new_category(session, name)
            _bump_revision(session)
            return CategoryRecord(id=category.id, name=category.name, faq_count=0)

    def rename_category(self, category_id: int, name: str) -> CategoryRecord:
        name = clean_text(
            name, "Название категории", MAX_CATEGORY_LENGTH, field="category"
        )
        with self._session() as session:
            category = session.get(Category, category_id)
            if category is None:
                raise ValidationError(f"Категория {category_id} не найдена")
            clash = _find_category(session, name)
            if clash is not None and clash.id != category_id:
                raise ValidationError(f"Категория «{name}» уже есть")
            category.name = name
            _bump_revision(session)
            count = session.scalar(
                select(func.count(Faq.id)).where(Faq.category_id == category_id)
            )
            return CategoryRecord(id=category.id, name=name, faq_count=count or 0)

    def delete_category(self, category_id: int) -> None:
        with self._session() as session:
            category = session.get(Category, category_id)
            if category is None:
                raise ValidationError(f"Категория {category_id} не найдена")
            if session.scalar(
                select(func.count(Faq.id)).where(Faq.category_id == category_id)
            ):
                raise ValidationError(
                    f"В категории «{category.name}» есть вопросы: "
                    "перенесите или удалите их сначала"
                )
            session.delete(category)
            _bump_revision(session)


class _FaqWriter:
    """The write rules of one transaction; it remembers what it wrote.

    Categories and the question index are read once, on first use, and kept up
    to date with each write, so an import checks every row against the rows
    before it as well as against the stored FAQ.
    """

    def __init__(self, session: Session) -> None:
        self.session = session
        self._categories: dict[str, Category] | None = None
        self._index: QuestionIndex | None = None

    def add(
        self,
        question: str,
        answer: str,
        category: str | int,
        phrasings: Iterable[str],
        external_id: str | None,
    ) -> Faq:
        question = _clean_question(question)
        answer = _clean_answer(answer)
        extra = clean_phrasings(phrasings, question)
        self._check_unique(question, extra, exclude_id=None)
        if external_id is not None:
            owner = self.session.scalar(
                select(Faq.id).where(Faq.external_id == external_id)
            )
            if owner is not None:
                raise ValidationError(
                    f"Внешний id «{external_id}» уже есть у записи №{owner}"
                )
        faq = Faq(
            external_id=external_id,
            category=self._category(category),
            question=question,
            answer=answer,
            phrasings=[FaqPhrasing(text=text) for text in extra],
        )
        self.session.add(faq)
        self.session.flush()
        self._remember(faq)
        return faq

    def update(
        self,
        faq: Faq,
        *,
        question: str | None,
        answer: str | None,
        category: str | int | None,
        phrasings: Iterable[str] | None,
        expected_updated_at: datetime | None = None,
    ) -> Faq:
        """Change the given fields; phrasings None keeps (and re-cleans) them."""
        if expected_updated_at is not None:
            self._claim(faq, expected_updated_at)
        if question is not None:
            question = _clean_question(question)
        if answer is not None:
            answer = _clean_answer(answer)
        extra = None
        if phrasings is not None:
            extra = clean_phrasings(phrasings, question or faq.question)
        self._check_unique(question, extra or [], exclude_id=faq.id)

        if question is not None:
            faq.question = question
        if answer is not None:
            faq.answer = answer
        if category is not None:
            faq.category = self._category(category)
        if extra is None and question is not None:
            extra = clean_phrasings([p.text for p in faq.phrasings], question)
        if extra is not None and [p.text for p in faq.phrasings] != extra:
            faq.phrasings = [FaqPhrasing(text=text) for text in extra]
        faq.updated_at = utcnow()
        self.session.flush()
        self._remember(faq)
        return faq

    def _claim(self, faq: Faq, expected_updated_at: datetime) -> None:
        """Stamp the entry only if nobody saved it since `expected_updated_at`.

        One conditional UPDATE, so of two editors saving at once exactly one
        wins, whatever the database's isolation level.
        """
        claimed = self.session.execute(
            update(Faq)
            .where(Faq.id == faq.id, Faq.updated_at == expected_updated_at)
            .values(updated_at=utcnow())
            .execution_options(synchronize_session=False)
        ).rowcount
        if not claimed:
            raise StaleEntryError(faq.id)

    def _check_unique(
        self, question: str | None, phrasings: list[str], exclude_id: int | None
    ) -> None:
        index = self._question_index()
        taken = index.duplicates([question], exclude_id) if question else []
        taken_phrasings = index.duplicates(phrasings, exclude_id)
        if taken or taken_phrasings:
            raise DuplicateQuestionError(taken[0] if taken else None, taken_phrasings)

    def _question_index(self) -> QuestionIndex:
        if self._index is None:
            self._index = QuestionIndex()
            questions = dict(self.session.execute(select(Faq.id, Faq.question)).all())
            texts: dict[int, list[str]] = {faq_id: [] for faq_id in questions}
            for faq_id, text in self.session.execute(
                select(FaqPhrasing.faq_id, FaqPhrasing.text).order_by(FaqPhrasing.id)
            ):
                texts[faq_id].append(text)
            for faq_id in sorted(questions):
                self._index.add(faq_id, questions[faq_id], texts[faq_id])
        return self._index

    def _remember(self, faq: Faq) -> None:
        if self._index is not None:
            self._index.add(faq.id, faq.question, [p.text for p in faq.phrasings])

    def _category(self, category: str | int) -> Category:
        if isinstance(category, int):
            found = self.session.get(Category, category)
            if found is None:
                raise ValidationError(
                    f"Категория {category} не найдена: похоже, её только что "
                    "удалили, выберите другую",
                    "category",
                )
            return found
        name = clean_text(category, "Категория", MAX_CATEGORY_LENGTH, field="category")
        if self._categories is None:
            self._categories = {
                c.name.casefold(): c for c in self.session.scalars(select(Category))
            }
        found = self._categories.get(name.casefold())
        if found is None:
            found = self._categories[name.casefold()] = _new_category(
                self.session, name
            )
        return found


# ------------------------------------------------------------------ helpers


def clean_line(value: str | None) -> str:
    """Return one line of text as it is stored: visible characters, single spaces.

    Zero-width and other format characters are dropped; control characters,
    line breaks and every kind of Unicode space (NBSP, U+3000) count as spaces.
    """
    return " ".join(_visible(value or "", keep="").split())


def clean_multiline(value: str | None) -> str:
    """Return an answer as it is stored: trimmed, with its lines and tabs kept."""
    return _visible(_LINE_BREAKS.sub("\n", value or ""), keep="\n\t").strip()


def has_word(text: str) -> bool:
    """Whether the text has a letter or a digit, so it can mean something."""
    return any(char.isalnum() for char in text)


def _visible(text: str, keep: str) -> str:
    """Drop format characters; turn control characters not in `keep` into spaces.

    Control characters (NUL above all) break exports and some databases; format
    characters (U+200B, U+FEFF, bidi marks) are invisible and make two equal
    looking texts differ.
    """
    if text.isprintable() and text.isascii():
        return text
    chars = []
    for char in text:
        if char in keep:
            chars.append(char)
        elif char in _BLANK_LETTERS:
            continue
        else:
            category = unicodedata.category(char)
            if category in ("Cf", "Cs"):
                continue
            chars.append(" " if category == "Cc" else char)
    return "".join(chars)


def clean_text(
    value: str | None,
    label: str,
    limit: int,
    *,
    field: str | None = None,
    multiline: bool = False,
) -> str:
    """Return the cleaned text, or raise ValidationError naming the field.

    The limit counts the cleaned text, as the admin's counter does.
    """
    text = clean_multiline(value) if multiline else clean_line(value)
    if not text:
        raise ValidationError(f"{label}: поле не может быть пустым", field)
    if len(text) > limit:
        raise ValidationError(
            f"{label}: не больше {limit} символов (сейчас {len(text)})", field
        )
    if not has_word(text):
        raise ValidationError(
            f"{label}: нужна хотя бы одна буква или цифра, а не только знаки", field
        )
    return text


def clean_external_id(value: str | int | None) -> str | None:
    if value is None:
        return None
    return clean_line(str(value)) or None


def clean_phrasings(phrasings: Iterable[str], question: str) -> list[str]:
    """Return the phrasings with spaces collapsed, without blanks and repeats.

    A phrasing that is the question, or an earlier phrasing, compared as the
    duplicate check compares them (`question_key`: case, ё/е, punctuation),
    is dropped; a string is read as one phrasing per line.
    """
    if isinstance(phrasings, str):
        phrasings = phrasings.splitlines()
    seen = {question_key(question)}
    cleaned = []
    for raw in phrasings:
        text = clean_line(raw)
        key = question_key(text)
        if not text or (key and key in seen):
            continue
        if len(text) > MAX_QUESTION_LENGTH:
            raise ValidationError(
                f"Формулировка: не больше {MAX_QUESTION_LENGTH} символов "
                f"(сейчас {len(text)})",
                "phrasings",
            )
        if not has_word(text):
            raise ValidationError(
                f"Формулировка «{text}»: нужна хотя бы одна буква или цифра",
                "phrasings",
            )
        seen.add(key)
        cleaned.append(text)
    if len(cleaned) > MAX_PHRASINGS:
        raise ValidationError(
            f"Не больше {MAX_PHRASINGS} формулировок у вопроса (сейчас {len(cleaned)})",
            "phrasings",
        )
    return cleaned


def _clean_question(value: str) -> str:
    return clean_text(value, "Вопрос", MAX_QUESTION_LENGTH, field="question")


def _clean_answer(value: str) -> str:
    return clean_text(value, "Ответ", MAX_ANSWER_LENGTH, field="answer", multiline=True)


def _bump_revision(session: Session) -> None:
    session.execute(
        update(FaqRevision)
        .where(FaqRevision.id == 1)
        .values(revision=FaqRevision.revision + 1)
    )


def _find_category(session: Session, name: str) -> Category | None:
    wanted = name.casefold()
    for category in session.scalars(select(Category)):
        if category.name.casefold() == wanted:
            return category
    return None


def _new_category(session: Session, name: str) -> Category:
    last = session.scalar(select(func.max(Category.sort_order)))
    category = Category(name=name, sort_order=(last or 0) + 1)
    session.add(category)
    session.flush()
    return category


def _require_faq(session: Session, faq_id: int) -> Faq:
    faq = session.get(Faq, faq_id)
    if faq is None:
        raise ValidationError(
            f"Запись №{faq_id} не найдена: похоже, её только что удалили."
        )
    return faq


def _faq_record(faq: Faq) -> FaqRecord:
    return FaqRecord(
        id=faq.id,
        external_id=faq.external_id,
        category_id=faq.category_id,
        category=faq.category.name,
        question=faq.question,
        answer=faq.answer,
        phrasings=tuple(p.text for p in faq.phrasings),
        updated_at=faq.updated_at,
    )
