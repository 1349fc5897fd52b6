"""Import and export of the FAQ as CSV or XLSX.

An upload is parsed into rows, then planned against the current FAQ: each row is
added, changes an entry, leaves it as it is, or is rejected with reasons. The
admin shows the plan first; only a confirmation applies it, through
`Database.apply_faq_import`, in one transaction.
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.utils.exceptions import InvalidFileException

from admin_bbcode import MAX_MESSAGE_LENGTH
from faq_store import (
    MAX_CATEGORY_LENGTH,
    MAX_PHRASINGS,
    MAX_QUESTION_LENGTH,
    FaqImportRow,
    FaqRecord,
    QuestionIndex,
    ValidationError,
    clean_line,
    clean_multiline,
    clean_phrasings,
    has_word,
    question_key,
)

logger = logging.getLogger(__name__)

MAX_IMPORT_ROWS = 5000
EXPORT_COLUMNS = ("id", "external_id", "category", "question", "answer", "phrasings")
# cells starting with these are formulas to a spreadsheet; see OWASP "CSV injection"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

HEADER_ALIASES = {
    "id": "id",
    "№": "id",
    "external_id": "external_id",
    "external id": "external_id",
    "внешний id": "external_id",
    "внешний_id": "external_id",
    "category": "category",
    "категория": "category",
    "раздел": "category",
    "question": "question",
    "вопрос": "question",
    "answer": "answer",
    "ответ": "answer",
    "phrasings": "phrasings",
    "формулировки": "phrasings",
    "другие формулировки": "phrasings",
    "варианты вопроса": "phrasings",
}
REQUIRED_COLUMNS = ("category", "question", "answer")


class ImportFormatError(ValueError):
    """The file cannot be read as an FAQ table; the message is for the admin."""


class Action(StrEnum):
    ADD = "add"
    CHANGE = "change"
    SAME = "same"
    REJECT = "reject"


@dataclass(frozen=True)
class ImportRow:
    line: int
    category: str
    question: str
    answer: str
    phrasings: tuple[str, ...] | None = None
    faq_id: int | None = None
    external_id: str | None = None
    bad_id: str | None = None


@dataclass
class PlanItem:
    row: ImportRow
    action: Action
    target: FaqRecord | None = None
    reasons: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)


@dataclass
class ImportPlan:
    items: list[PlanItem]

    def of(self, action: Action) -> list[PlanItem]:
        return [item for item in self.items if item.action is action]

    @property
    def writes(self) -> list[PlanItem]:
        return [i for i in self.items if i.action in (Action.ADD, Action.CHANGE)]

    def faq_rows(self) -> list[FaqImportRow]:
        """The additions and changes, for `Database.apply_faq_import`."""
        return [
            FaqImportRow(
                category=item.row.category,
                question=item.row.question,
                answer=item.row.answer,
                phrasings=item.row.phrasings,
                faq_id=item.target.id if item.target is not None else None,
                external_id=item.row.external_id,
            )
            for item in self.writes
        ]


# ------------------------------------------------------------------ parsing


def _claim(claims: dict, key: object, line: int) -> int | None:
    """The earlier row that claimed `key` in the file, or None: then `line` has it."""
    earlier = claims.get(key)
    if earlier is None:
        claims[key] = line
    return earlier


def parse_upload(filename: str, data: bytes) -> list[ImportRow]:
    """Read an uploaded CSV or XLSX file into rows, or raise ImportFormatError."""
    name = filename.lower()
    if name.endswith(".xlsx"):
        table = _read_xlsx(data)
    elif name.endswith(".csv"):
        table = _read_csv(data)
    else:
        raise ImportFormatError("Подходят только файлы .csv и .xlsx.")
    return _rows_from_table(table)


def _read_csv(data: bytes) -> list[list[str]]:
    for encoding in ("utf-8-sig", "cp1251"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise ImportFormatError(
            "Не удалось прочитать текст файла: сохраните его как CSV в кодировке "
            "UTF-8 или Windows-1251."
        )
    first_line = text.split("\n", 1)[0]
    delimiter = max((";", ",", "\t"), key=first_line.count)
    try:
        return [list(row) for row in csv.reader(io.StringIO(text), delimiter=delimiter)]
    except csv.Error as exc:
        raise ImportFormatError(f"Файл CSV повреждён: {exc}.") from exc


_BROKEN_XLSX = (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError)


def _read_xlsx(data: bytes) -> list[list[str]]:
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except _BROKEN_XLSX as exc:
        raise ImportFormatError("Файл не похож на таблицу Excel (.xlsx).") from exc
    try:
        sheet = workbook.worksheets[0]
        table = []
        for values in sheet.iter_rows(values_only=True):
            table.append([_cell_text(value) for value in values])
            if len(table) > MAX_IMPORT_ROWS + 1:
                break
        return table
    except _BROKEN_XLSX as exc:
        raise ImportFormatError("Таблица Excel повреждена.") from exc
    finally:
        workbook.close()


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _rows_from_table(table: list[list[str]]) -> list[ImportRow]:
    table = [row for row in table if any(cell.strip() for cell in row)]
    if not table:
        raise ImportFormatError("Файл пустой.")
    header = [HEADER_ALIASES.get(cell.strip().casefold(), "") for cell in table[0]]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ImportFormatError(
            "В первой строке должны быть заголовки столбцов category, question, "
            "answer (или категория, вопрос, ответ); не найдены: "
            + ", ".join(missing)
            + "."
        )
    if len(table) - 1 > MAX_IMPORT_ROWS:
        raise ImportFormatError(
            f"Слишком много строк: не больше {MAX_IMPORT_ROWS} за один раз."
        )
    columns = {name: header.index(name) for name in set(header) if name}

    rows = []
    for line, cells in enumerate(table[1:], start=2):

        def cell(name: str, cells: list[str] = cells) -> str:
            index = columns.get(name)
            if index is None or index >= len(cells):
                return ""
            return _unprotect(cells[index]).strip()

        # texts are cleaned as the FAQ stores them, so an unchanged row
        # compares equal to its entry
        raw_id = clean_line(cell("id"))
        # isdigit() alone takes "²" and other digits int() refuses
        is_number = raw_id.isascii() and raw_id.isdigit() and int(raw_id) > 0
        faq_id = int(raw_id) if is_number else None
        phrasings = None
        if "phrasings" in columns:
            phrasings = tuple(
                text for text in map(clean_line, cell("phrasings").splitlines()) if text
            )
        rows.append(
            ImportRow(
                line=line,
                category=clean_line(cell("category")),
                question=clean_line(cell("question")),
                answer=clean_multiline(cell("answer")),
                phrasings=phrasings,
                faq_id=faq_id,
                external_id=clean_line(cell("external_id")) or None,
                bad_id=raw_id if raw_id and faq_id is None else None,
            )
        )
    return rows


def _unprotect(value: str) -> str:
    if value.startswith("'") and value[1:2] in FORMULA_PREFIXES:
        return value[1:]
    return value


# ----------------------------------------------------------------- planning


def plan_import(rows: Sequence[ImportRow], records: Sequence[FaqRecord]) -> ImportPlan:
    """Decide for each row whether it adds, changes, keeps or is rejected."""
    by_id = {record.id: record for record in records}
    by_external = {r.external_id: r for r in records if r.external_id}
    by_question = {question_key(r.question): r for r in records}
    index = QuestionIndex(records)
    seen_in_file: dict[str, int] = {}
    # a row per entry and per external id: a second one would undo the first,
    # or break the database's uniqueness when the import is applied
    external_in_file: dict[str, int] = {}
    targets_in_file: dict[int, int] = {}
    items = []

    for row in rows:
        reasons = _row_problems(row)
        target = None
        if row.bad_id:
            reasons.append(
                f"id «{row.bad_id}» — это не номер записи: нужно целое "
                "положительное число или пустая ячейка для новой записи."
            )
        elif row.faq_id is not None:
            target = by_id.get(row.faq_id)
            if target is None:
                reasons.append(f"В FAQ нет записи с id {row.faq_id}.")
        elif row.external_id:
            target = by_external.get(row.external_id)
        elif row.question:
            target = by_question.get(question_key(row.question))

        if row.external_id and target is None:
            earlier = _claim(external_in_file, row.external_id, row.line)
            if earlier is not None:
                reasons.append(
                    f"Внешний id «{row.external_id}» уже встречается в строке "
                    f"{earlier}."
                )
        if target is not None:
            earlier = _claim(targets_in_file, target.id, row.line)
            if earlier is not None:
                reasons.append(f"Запись №{target.id} уже меняет строка {earlier}.")

        texts = _unique([row.question, *(row.phrasings or ())]) if row.question else []
        for text in texts:
            key = question_key(text)
            if key in seen_in_file:
                reasons.append(
                    f"«{text}» уже встречается в строке {seen_in_file[key]}."
                )
            else:
                seen_in_file[key] = row.line
        exclude = target.id if target is not None else None
        reasons.extend(d.message() for d in index.duplicates(texts, exclude))

        if not reasons:
            reasons.extend(_phrasing_problems(row))
        if reasons:
            items.append(PlanItem(row, Action.REJECT, target, reasons))
        elif target is None:
            items.append(PlanItem(row, Action.ADD))
        else:
            changes = _changes(row, target)
            action = Action.CHANGE if changes else Action.SAME
            items.append(PlanItem(row, action, target, changes=changes))
    return ImportPlan(items)


def _unique(texts: Iterable[str]) -> list[str]:
    keys: set[str] = set()
    unique = []
    for text in texts:
        if question_key(text) not in keys:
            keys.add(question_key(text))
            unique.append(text)
    return unique


_NO_WORD = "нет ни одной буквы или цифры"


def _row_problems(row: ImportRow) -> list[str]:
    problems = []
    if not row.category:
        problems.append("Не указана категория.")
    elif len(row.category) > MAX_CATEGORY_LENGTH:
        problems.append("Название категории длиннее 100 символов.")
    elif not has_word(row.category):
        problems.append(f"В названии категории {_NO_WORD}.")
    if not row.question:
        problems.append("Пустой вопрос.")
    elif len(row.question) > MAX_QUESTION_LENGTH:
        problems.append(f"Вопрос длиннее {MAX_QUESTION_LENGTH} символов.")
    elif not has_word(row.question):
        problems.append(f"В вопросе {_NO_WORD}.")
    if not row.answer:
        problems.append("Пустой ответ.")
    elif len(row.answer) > MAX_MESSAGE_LENGTH:
        problems.append(
            f"Ответ длиннее 20 000 символов ({len(row.answer)}) — это предел "
            "сообщения в Битрикс24."
        )
    elif not has_word(row.answer):
        problems.append(f"В ответе {_NO_WORD}.")
    phrasings = row.phrasings or ()
    if len(phrasings) > MAX_PHRASINGS:
        problems.append(f"Больше {MAX_PHRASINGS} формулировок.")
    if any(len(p) > MAX_QUESTION_LENGTH for p in phrasings):
        problems.append(f"Формулировка длиннее {MAX_QUESTION_LENGTH} символов.")
    return problems


def _phrasing_problems(row: ImportRow) -> list[str]:
    """What the FAQ's own phrasing rules refuse (a phrasing of only signs)."""
    try:
        clean_phrasings(row.phrasings or (), row.question)
    except ValidationError as exc:
        return [f"{exc}."]
    return []


def _changes(row: ImportRow, target: FaqRecord) -> list[str]:
    changes = []
    if row.question != target.question:
        changes.append("вопрос")
    if row.answer != target.answer:
        changes.append("ответ")
    if row.category.casefold() != target.category.casefold():
        changes.append("категория")
    if row.phrasings is not None:
        changes.extend(
            _phrasing_changes(
                clean_phrasings(row.phrasings, row.question), target.phrasings
            )
        )
    return changes


def _phrasing_changes(new: Sequence[str], old: Sequence[str]) -> list[str]:
    """Say how many phrasings come and go; an empty cell deletes them all."""
    if list(new) == list(old):
        return []
    new_keys = {question_key(text) for text in new}
    old_keys = {question_key(text) for text in old}
    added = sum(question_key(text) not in old_keys for text in new)
    removed = sum(question_key(text) not in new_keys for text in old)
    changes = []
    if removed and not new:
        changes.append(f"формулировки будут удалены: {removed} (все, ячейка пустая)")
    elif removed:
        changes.append(f"формулировки будут удалены: {removed}")
    if added:
        changes.append(f"формулировки будут добавлены: {added}")
    return changes or ["формулировки: порядок или написание"]


# ---------------------------------------------------------------- exporting


def protect_cell(value: object) -> str:
    """Return the cell text so a spreadsheet never runs it as a formula.

    Control characters that no spreadsheet cell may hold (NUL and the like,
    from data stored before the FAQ refused them) are dropped: openpyxl
    raises on them, and Excel would refuse the CSV.
    """
    text = ILLEGAL_CHARACTERS_RE.sub("", "" if value is None else str(value))
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def faq_table(records: Iterable[FaqRecord]) -> list[list[str]]:
    """Return the FAQ as rows under EXPORT_COLUMNS."""
    return [
        [
            str(r.id),
            r.external_id or "",
            r.category,
            r.question,
            r.answer,
            "\n".join(r.phrasings),
        ]
        for r in records
    ]


def to_csv(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    """Return UTF-8 CSV with a BOM (so Excel reads Cyrillic) and safe cells."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow([protect_cell(value) for value in row])
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(
    header: Sequence[str], rows: Iterable[Sequence[object]], title: str
) -> bytes:
    """Return an XLSX workbook; every cell is stored as text, never a formula."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = title
    sheet.append(list(header))
    for row in rows:
        sheet.append([_xlsx_text(value) for value in row])
    for cells in sheet.iter_rows(min_row=2):
        for cell in cells:
            cell.data_type = "s"
    widths = {"category": 24, "question": 50, "answer": 80, "phrasings": 50}
    for index, name in enumerate(header, start=1):
        letter = sheet.cell(row=1, column=index).column_letter
        sheet.column_dimensions[letter].width = widths.get(name, 12)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _xlsx_text(value: object) -> str:
    """The cell text without the characters openpyxl refuses (see protect_cell)."""
    return ILLEGAL_CHARACTERS_RE.sub("", "" if value is None else str(value))
