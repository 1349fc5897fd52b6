"""Import and export of the FAQ: preview first, one transaction on confirmation."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import Workbook, load_workbook

from admin_transfer import (
    Action,
    ImportFormatError,
    ImportRow,
    parse_upload,
    plan_import,
)

HEADER = ["category", "question", "answer", "phrasings"]


@pytest.fixture
def existing(database):
    vacation = database.add_faq(
        "Как оформить отпуск?", "Старый ответ.", "Кадры", phrasings=["отпуск оформить"]
    )
    vpn = database.add_faq("Не работает VPN", "Перезапустите клиент.", "IT")
    return vacation.id, vpn.id


def _csv(rows, header=HEADER, delimiter=",", encoding="utf-8-sig") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def _xlsx(rows, header=HEADER) -> bytes:
    workbook = Workbook()
    workbook.active.append(header)
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


MIXED_ROWS = [
    [
        "Офис",
        "Где получить пропуск?",
        "У охраны, с паспортом.",
        "пропуск\nоформить пропуск",
    ],
    ["Кадры", "как оформить отпуск", "Новый ответ.", ""],
    ["IT", "Не работает VPN", "Перезапустите клиент.", ""],
    ["", "Без категории?", "Ответ", ""],
    ["Офис", "Пустой ответ?", "", ""],
    ["Офис", "Длинный ответ?", "я" * 20_001, ""],
    ["Офис", "Где получить пропуск?", "Повтор.", ""],
    ["Офис", "Новая запись с чужой формулировкой", "x", "Отпуск оформить!"],
]


def _upload(client, data: bytes, name: str):
    return client.post(
        "/import",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


@pytest.mark.parametrize(
    ("name", "build"), [("faq.csv", _csv), ("faq.xlsx", _xlsx)], ids=["csv", "xlsx"]
)
def test_an_upload_is_previewed_and_nothing_is_written(
    editor, database, existing, name, build
):
    revision = database.faq_revision()

    page = _upload(editor, build(MIXED_ROWS), name).get_data(as_text=True)

    assert "будет добавлено" in page
    assert "Где получить пропуск?" in page
    assert "ответ" in page  # the change of entry 1
    for reason in (
        "Не указана категория.",
        "Пустой ответ.",
        "Ответ длиннее 20 000 символов",
        "уже встречается в строке 2",
        "уже есть в записи №1",
    ):
        assert reason in page
    assert database.faq_revision() == revision
    assert len(database.list_faqs()) == 2


@pytest.mark.parametrize(
    ("name", "build"), [("faq.csv", _csv), ("faq.xlsx", _xlsx)], ids=["csv", "xlsx"]
)
def test_confirmation_writes_the_plan_in_one_step(
    editor, database, existing, name, build
):
    vacation_id, _ = existing
    revision = database.faq_revision()
    _upload(editor, build(MIXED_ROWS), name)

    response = editor.post(
        "/import/confirm", data={"token": _token(editor)}, follow_redirects=True
    )

    assert "добавлено 1, изменено 1, отклонено 5" in response.get_data(as_text=True)
    assert database.faq_revision() == revision + 1
    records = {r.question: r for r in database.list_faqs()}
    assert records["Где получить пропуск?"].phrasings == ("пропуск", "оформить пропуск")
    assert records["Где получить пропуск?"].category == "Офис"
    vacation = database.get_faq(vacation_id)
    assert vacation.answer == "Новый ответ."
    assert vacation.question == "как оформить отпуск"
    assert vacation.phrasings == ()


def _token(client) -> str:
    with client.session_transaction() as session:
        return session["import_token"]


def test_the_confirmation_works_once(editor, database, existing):
    _upload(editor, _csv(MIXED_ROWS[:1]), "faq.csv")
    token = _token(editor)
    editor.post("/import/confirm", data={"token": token})

    again = editor.post("/import/confirm", data={"token": token}, follow_redirects=True)

    assert "Предпросмотр устарел" in again.get_data(as_text=True)
    assert len(database.list_faqs()) == 3


def test_another_session_cannot_confirm_someone_elses_upload(
    editor, admin_app, database, existing
):
    from admin_harness import EDITOR, sign_in

    _upload(editor, _csv(MIXED_ROWS[:1]), "faq.csv")
    other = sign_in(admin_app, EDITOR)

    other.post("/import/confirm", data={"token": _token(editor)})

    assert len(database.list_faqs()) == 2


def test_a_russian_excel_csv_in_cp1251_with_semicolons_is_read(editor, database):
    data = _csv(
        [["Офис", "Где кухня?", "На 2 этаже", ""]],
        header=["Категория", "Вопрос", "Ответ", "Формулировки"],
        delimiter=";",
        encoding="cp1251",
    )

    page = _upload(editor, data, "faq.csv").get_data(as_text=True)

    assert "Где кухня?" in page
    assert "будет добавлено" in page


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("faq.csv", b"a,b\n1,2\n", "не найдены: category, question, answer"),
        ("faq.csv", b"", "Файл пустой"),
        ("faq.xlsx", b"not a zip", "не похож на таблицу Excel"),
        ("faq.txt", b"category,question,answer\n", "только файлы .csv и .xlsx"),
    ],
)
def test_an_unusable_file_is_explained(editor, name, data, message):
    page = _upload(editor, data, name).get_data(as_text=True)

    assert message in page


def test_export_then_import_changes_nothing(editor, database, existing):
    exported = editor.get("/export?format=xlsx").data

    page = _upload(editor, exported, "faq.xlsx").get_data(as_text=True)

    assert "Всё уже актуально" in page
    assert "Нечего импортировать" not in page


def test_csv_export_round_trips_and_is_safe_in_excel(editor, database):
    database.add_faq('=HYPERLINK("http://x")', "- пункт\n- пункт", "Офис", ["+7 999"])

    response = editor.get("/export?format=csv")

    assert response.headers["Content-Disposition"].startswith("attachment;")
    text = response.data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == [
        "id",
        "external_id",
        "category",
        "question",
        "answer",
        "phrasings",
    ]
    assert rows[1][3].startswith("'=")
    [row] = parse_upload("faq.csv", response.data)
    assert row.question == '=HYPERLINK("http://x")'
    assert row.answer == "- пункт\n- пункт"
    assert row.phrasings == ("+7 999",)


def test_xlsx_export_stores_text_not_formulas(editor, database):
    database.add_faq("=1+1", "Ответ", "Офис")

    workbook = load_workbook(io.BytesIO(editor.get("/export?format=xlsx").data))

    cell = workbook.active["D2"]
    assert cell.value == "=1+1"
    assert cell.data_type == "s"


def test_rows_are_matched_by_id_and_external_id(database, existing):
    vacation_id, _ = existing
    rows = [
        ImportRow(2, "Кадры", "Отпуск: как оформить?", "Ответ", faq_id=vacation_id),
        ImportRow(3, "Кадры", "Q", "A", faq_id=999),
        ImportRow(4, "Кадры", "Новый вопрос", "A", external_id="hr-1"),
    ]

    plan = plan_import(rows, database.list_faqs())

    assert [item.action for item in plan.items] == [
        Action.CHANGE,
        Action.REJECT,
        Action.ADD,
    ]
    assert plan.items[0].changes == ["вопрос", "ответ"]
    assert plan.items[1].reasons == ["В FAQ нет записи с id 999."]


def test_a_file_without_rows_is_refused():
    with pytest.raises(ImportFormatError, match="пустой"):
        parse_upload("faq.csv", b"\n\n")


# ------------------------------------------------- repeated ids, plain words

EXTERNAL_HEADER = ["external_id", "category", "question", "answer"]


def test_a_repeated_external_id_is_rejected_in_the_preview(editor, database):
    data = _csv(
        [
            ["kb-1", "Офис", "Где пропуск?", "У охраны."],
            ["kb-1", "Офис", "Где кухня?", "Налево."],
        ],
        header=EXTERNAL_HEADER,
    )

    page = _upload(editor, data, "faq.csv").get_data(as_text=True)
    response = editor.post(
        "/import/confirm", data={"token": _token(editor)}, follow_redirects=True
    )

    assert "Внешний id «kb-1» уже встречается в строке 2." in page
    assert "Импорт выполнен: добавлено 1" in response.get_data(as_text=True)
    assert [r.question for r in database.list_faqs()] == ["Где пропуск?"]


def test_two_rows_for_one_entry_are_rejected(editor, database, existing):
    vacation_id, _ = existing
    data = _csv(
        [
            [str(vacation_id), "Кадры", "Как оформить отпуск?", "Первый ответ."],
            [str(vacation_id), "Кадры", "Как оформить отпуск?", "Второй ответ."],
        ],
        header=["id", "category", "question", "answer"],
    )

    page = _upload(editor, data, "faq.csv").get_data(as_text=True)

    assert f"Запись №{vacation_id} уже меняет строка 2." in page


def test_an_empty_phrasings_cell_says_the_phrasings_go(editor, database, existing):
    data = _csv([["Кадры", "Как оформить отпуск?", "Старый ответ.", ""]])

    page = _upload(editor, data, "faq.csv").get_data(as_text=True)

    assert "формулировки будут удалены: 1 (все, ячейка пустая)" in page


@pytest.mark.parametrize(
    ("count", "words"),
    [(1, "+ 1 формулировка"), (2, "+ 2 формулировки"), (5, "+ 5 формулировок")],
)
def test_the_phrasings_of_a_new_entry_are_counted_in_russian(editor, count, words):
    phrasings = "\n".join(f"где кухня {n}" for n in range(count))
    data = _csv([["Офис", "Где кухня?", "Налево.", phrasings]])

    page = _upload(editor, data, "faq.csv").get_data(as_text=True)

    assert words in page
    assert "формулировк." not in page


@pytest.mark.parametrize("raw_id", ["-5", "²", "0", "1.5"])
def test_an_id_that_is_not_an_entry_number_is_explained(editor, raw_id):
    data = _csv(
        [[raw_id, "Офис", "Где кухня?", "Налево."]],
        header=["id", "category", "question", "answer"],
    )

    page = _upload(editor, data, "faq.csv").get_data(as_text=True)

    assert f"id «{raw_id}» — это не номер записи: нужно целое положительное" in page


def test_an_unreadable_csv_names_both_encodings(editor):
    page = _upload(editor, b"category,question\n\x98\x98", "faq.csv").get_data(
        as_text=True
    )

    assert "UTF-8 или Windows-1251" in page


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (["Офис", "\u00a0\u200b", "Ответ", ""], "Пустой вопрос."),
        (["Офис", "Вопрос?", "\u00a0\u200b\u3000", ""], "Пустой ответ."),
        (["\u200b", "Вопрос?", "Ответ", ""], "Не указана категория."),
        (["Офис", "?!.,", "Ответ", ""], "В вопросе нет ни одной буквы или цифры."),
        (["Офис", "Вопрос?", "Ответ", "?!"], "Формулировка «?!»: нужна хотя бы одна"),
    ],
)
def test_an_import_row_of_invisible_characters_is_rejected(editor, row, reason):
    page = _upload(editor, _csv([row]), "faq.csv").get_data(as_text=True)

    assert reason in page
    assert "будет добавлено</h2>" not in page.replace("Будет", "будет")


def test_an_answer_with_spaces_round_it_is_unchanged(editor, database, existing):
    data = _csv(
        [["Кадры", "Как оформить отпуск?\u200b", "  Старый ответ.\u00a0"]],
        header=["category", "question", "answer"],
    )

    page = _upload(editor, data, "faq.csv").get_data(as_text=True)

    assert "Всё уже актуально" in page
