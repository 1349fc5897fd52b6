"""The web admin: sign-in, roles, CSRF, every page, the FAQ forms, escaping."""

from __future__ import annotations

import io
import logging
import os
import stat

import pytest
from admin_harness import (
    EDITOR,
    VIEWER,
    add_accounts,
    admin_config,
    csrf_token,
    log_question,
    sign_in,
)
from sqlalchemy import func, select

import web_admin
from admin_bbcode import render_bbcode
from admin_common import EXTENSION_KEY
from models import QueryLog
from web_admin import create_app, safe_next

READ_PAGES = [
    "/faq",
    "/faq?q=отпуск",
    "/categories",
    "/logs",
    "/logs?outcome=unhelpful&platform=bitrix24",
    "/suggestions",
    "/stats",
    "/test-chat",
]
EDITOR_PAGES = ["/faq/new", "/faq/{faq_id}/edit", "/faq/{faq_id}/delete", "/import"]
EDITOR_POSTS = [
    (
        "/faq/new",
        {"category": "__new__", "new_category": "X", "question": "q", "answer": "a"},
    ),
    ("/faq/{faq_id}/edit", {"category": "1", "question": "q", "answer": "a"}),
    ("/faq/{faq_id}/delete", {}),
    ("/faq/preview", {"answer": "[b]x[/b]"}),
    ("/categories", {"new-name": "Новая"}),
    ("/categories/1/rename", {"c1-name": "Другое"}),
    ("/categories/1/delete", {}),
    ("/faq/phrasings", {"faq_id": "{faq_id}", "texts": "ещё вопрос"}),
    ("/import", {}),
    ("/import/confirm", {"token": "x"}),
]


@pytest.fixture
def faq_id(database) -> int:
    record = database.add_faq(
        "Как оформить отпуск?",
        "Подайте [b]заявление[/b] в разделе «Кадры».",
        "Отпуск и кадры",
        phrasings=["как уйти в отпуск"],
    )
    return record.id


def _form(**fields: str) -> dict[str, str]:
    data = {"category": "1", "question": "", "answer": "", "phrasings": ""}
    data.update(fields)
    return data


# ------------------------------------------------------------------ sign-in


@pytest.mark.parametrize("url", [*READ_PAGES, "/", "/faq/new", "/export", "/nowhere"])
def test_without_a_session_only_the_sign_in_page_opens(admin_app, url):
    response = admin_app.test_client().get(url)

    assert response.status_code == 302
    assert response.location.startswith("/login?next=")


def test_sign_in_page_and_static_files_are_public(admin_app):
    client = admin_app.test_client()

    assert "Вход в админку" in client.get("/login").get_data(as_text=True)
    assert client.get("/static/admin/admin.css").status_code == 200


def test_wrong_password_is_refused_with_a_readable_message(admin_app):
    response = admin_app.test_client().post(
        "/login", data={"username": EDITOR[0], "password": "wrong-password"}
    )

    assert response.status_code == 401
    assert "Неверный логин или пароль" in response.get_data(as_text=True)


def test_unknown_user_gets_the_same_message(admin_app):
    response = admin_app.test_client().post(
        "/login", data={"username": "nobody", "password": "whatever-123"}
    )

    assert response.status_code == 401
    assert "Неверный логин или пароль" in response.get_data(as_text=True)


def test_repeated_failures_lock_the_name_for_a_while(admin_app):
    services = admin_app.extensions[EXTENSION_KEY]
    services.throttle = web_admin.SignInThrottle(3, 60)
    client = admin_app.test_client()
    for _ in range(3):
        client.post("/login", data={"username": EDITOR[0], "password": "bad-one"})

    response = client.post(
        "/login", data={"username": EDITOR[0], "password": EDITOR[1]}
    )

    assert response.status_code == 429
    assert "Подождите 15 минут" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/logs?page=2", "/logs?page=2"),
        ("//evil.example/x", None),
        ("https://evil.example/", None),
        ("/\\evil.example", None),
        ("javascript:alert(1)", None),
        ("logs", None),
        ("", None),
    ],
)
def test_safe_next_keeps_only_local_paths(target, expected):
    assert safe_next(target) == expected


def test_sign_in_returns_to_the_page_asked_for(admin_app):
    client = admin_app.test_client()
    response = client.post(
        "/login",
        data={"username": VIEWER[0], "password": VIEWER[1], "next": "/stats"},
    )

    assert response.location == "/stats"


def test_sign_in_never_redirects_off_site(admin_app):
    response = admin_app.test_client().post(
        "/login",
        data={"username": VIEWER[0], "password": VIEWER[1], "next": "//evil.example"},
    )

    assert response.location == "/faq"


def test_session_cookie_is_httponly_and_samesite(admin_app):
    client = admin_app.test_client()
    response = client.post(
        "/login", data={"username": EDITOR[0], "password": EDITOR[1]}
    )

    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_pages_carry_security_headers(editor):
    response = editor.get("/faq")

    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


def test_sign_out_ends_the_session(editor):
    editor.post("/logout")

    assert editor.get("/faq").status_code == 302


def test_a_new_password_ends_old_sessions(editor, database):
    user = database.get_admin_user(EDITOR[0])
    database.set_admin_password(
        user.id, web_admin.generate_password_hash("new-pass-12")
    )

    assert editor.get("/faq").status_code == 302


# -------------------------------------------------------------------- roles


@pytest.mark.parametrize("url", READ_PAGES)
def test_every_page_opens_for_an_editor(editor, faq_id, url):
    assert editor.get(url).status_code == 200


@pytest.mark.parametrize("url", EDITOR_PAGES)
def test_every_edit_page_opens_for_an_editor(editor, faq_id, url):
    assert editor.get(url.format(faq_id=faq_id)).status_code == 200


@pytest.mark.parametrize("url", READ_PAGES)
def test_a_viewer_reads_logs_stats_and_the_test_chat(viewer, faq_id, url):
    assert viewer.get(url).status_code == 200


@pytest.mark.parametrize("url", EDITOR_PAGES)
def test_a_viewer_cannot_open_edit_pages(viewer, faq_id, url):
    response = viewer.get(url.format(faq_id=faq_id))

    assert response.status_code == 403
    assert "только редакторам" in response.get_data(as_text=True)


@pytest.mark.parametrize(("url", "data"), EDITOR_POSTS)
def test_a_viewer_cannot_change_anything(viewer, database, faq_id, url, data):
    revision = database.faq_revision()
    data = {k: v.format(faq_id=faq_id) for k, v in data.items()}

    response = viewer.post(url.format(faq_id=faq_id), data=data)

    assert response.status_code == 403
    assert database.faq_revision() == revision


def test_a_viewer_sees_no_edit_buttons(viewer, faq_id):
    page = viewer.get("/faq").get_data(as_text=True)

    assert "Новая запись" not in page
    assert "Изменить" not in page
    assert "viewer" not in page or "наблюдатель" in page


# --------------------------------------------------------------------- CSRF


@pytest.fixture
def csrf_app(tmp_path, database, admin_engine):
    add_accounts(database)
    app = create_app(admin_config(tmp_path), database=database, engine=admin_engine)
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=True)
    return app


def test_a_post_without_csrf_token_is_rejected(csrf_app, database):
    client = sign_in(csrf_app, EDITOR)

    response = client.post(
        "/faq/new",
        data=_form(
            category="__new__", new_category="Офис", question="Где?", answer="Тут"
        ),
    )

    assert response.status_code == 400
    assert "Форма устарела" in response.get_data(as_text=True)
    assert database.list_faqs() == []


def test_a_post_with_the_csrf_token_is_accepted(csrf_app, database):
    client = sign_in(csrf_app, EDITOR)
    token = csrf_token(client.get("/faq/new").get_data(as_text=True))

    response = client.post(
        "/faq/new",
        data=_form(
            csrf_token=token,
            category="__new__",
            new_category="Офис",
            question="Где кухня?",
            answer="На втором этаже.",
        ),
    )

    assert response.status_code == 302
    assert [r.question for r in database.list_faqs()] == ["Где кухня?"]


def test_sign_out_and_delete_need_the_token_too(csrf_app, database, faq_id):
    client = sign_in(csrf_app, EDITOR)

    assert client.post("/logout").status_code == 400
    assert client.post(f"/faq/{faq_id}/delete").status_code == 400
    assert database.get_faq(faq_id) is not None
    assert client.get("/faq").status_code == 200


def test_the_live_preview_needs_the_csrf_header(csrf_app):
    client = sign_in(csrf_app, EDITOR)
    token = csrf_token(client.get("/faq/new").get_data(as_text=True))

    assert client.post("/faq/preview", data={"answer": "x"}).status_code == 400
    response = client.post(
        "/faq/preview", data={"answer": "[b]x[/b]"}, headers={"X-CSRFToken": token}
    )
    assert response.json["html"] == "<b>x</b>"


def test_sign_in_itself_needs_the_token(csrf_app):
    response = csrf_app.test_client().post(
        "/login", data={"username": EDITOR[0], "password": EDITOR[1]}
    )

    assert response.status_code == 400


# ---------------------------------------------------------------- FAQ forms


def test_an_entry_is_created_with_a_new_category_and_phrasings(editor, database):
    response = editor.post(
        "/faq/new",
        data=_form(
            category="__new__",
            new_category="Офис",
            question="Как забронировать переговорную?",
            answer="В календаре Битрикс24.",
            phrasings="бронь переговорной\n\nзанять переговорку\n",
        ),
    )

    assert response.status_code == 302
    [record] = database.list_faqs()
    assert record.category == "Офис"
    assert record.phrasings == ("бронь переговорной", "занять переговорку")
    assert "добавлена" in editor.get("/faq").get_data(as_text=True)


def test_an_entry_is_edited(editor, database, faq_id):
    category_id = database.get_faq(faq_id).category_id
    response = editor.post(
        f"/faq/{faq_id}/edit",
        data=_form(
            category=str(category_id),
            question="Как оформить ежегодный отпуск?",
            answer="Новый ответ.",
            phrasings="отпуск оформление",
        ),
    )

    assert response.status_code == 302
    record = database.get_faq(faq_id)
    assert (record.question, record.answer) == (
        "Как оформить ежегодный отпуск?",
        "Новый ответ.",
    )
    assert record.phrasings == ("отпуск оформление",)


def test_an_entry_is_deleted_after_confirmation(editor, database, faq_id):
    page = editor.get(f"/faq/{faq_id}/delete").get_data(as_text=True)
    assert "Удалить запись" in page
    assert database.get_faq(faq_id) is not None

    editor.post(f"/faq/{faq_id}/delete")

    assert database.get_faq(faq_id) is None


def test_an_unknown_entry_is_a_readable_404(editor):
    response = editor.get("/faq/999/edit")

    assert response.status_code == 404
    assert "Страница не найдена" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"question": "", "answer": "Ответ"}, "Вопрос не может быть пустым"),
        ({"question": "Вопрос?", "answer": "   "}, "Ответ не может быть пустым"),
        ({"question": "Вопрос?", "answer": "я" * 20_001}, "длиннее 20 000 символов"),
        (
            {"question": "как оформить ОТПУСК", "answer": "x"},
            "Такой вопрос уже есть в записи",
        ),
        (
            {
                "question": "Новый вопрос",
                "answer": "x",
                "phrasings": "Как уйти в отпуск!",
            },
            "уже есть в записи",
        ),
        (
            {"category": "__new__", "question": "Вопрос?", "answer": "x"},
            "Введите название новой категории",
        ),
        ({"category": "", "question": "Вопрос?", "answer": "x"}, "Выберите категорию"),
    ],
)
def test_invalid_entries_get_readable_messages(
    editor, database, faq_id, fields, message
):
    response = editor.post("/faq/new", data=_form(**fields))

    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert len(database.list_faqs()) == 1


def test_an_answer_of_exactly_20000_characters_is_accepted(editor, database, faq_id):
    response = editor.post(
        "/faq/new", data=_form(question="Длинный ответ?", answer="я" * 20_000)
    )

    assert response.status_code == 302


def test_saving_an_entry_under_its_own_question_is_not_a_duplicate(
    editor, faq_id, database
):
    record = database.get_faq(faq_id)
    response = editor.post(
        f"/faq/{faq_id}/edit",
        data=_form(
            category=str(record.category_id), question=record.question, answer="Новый"
        ),
    )

    assert response.status_code == 302


def test_list_filters_by_text_and_category(editor, database, faq_id):
    other = database.add_faq("Где пропуск?", "У охраны.", "Офис")

    by_text = editor.get("/faq?q=пропуск").get_data(as_text=True)
    by_category = editor.get(f"/faq?category={other.category_id}").get_data(
        as_text=True
    )

    assert "Где пропуск?" in by_text and "Как оформить отпуск?" not in by_text
    assert "Где пропуск?" in by_category and "Как оформить отпуск?" not in by_category


def test_the_form_shows_the_answer_as_the_chat_would(editor, faq_id):
    page = editor.get(f"/faq/{faq_id}/edit").get_data(as_text=True)

    assert "Подайте <b>заявление</b>" in page


# --------------------------------------------------------------- categories


def test_categories_are_renamed_in_place(editor, database, faq_id):
    category_id = database.get_faq(faq_id).category_id

    editor.post(
        f"/categories/{category_id}/rename", data={f"c{category_id}-name": "Кадры"}
    )

    assert database.get_faq(faq_id).category == "Кадры"


def test_a_category_name_clash_is_explained(editor, database, faq_id):
    database.add_category("Офис")
    category_id = database.get_faq(faq_id).category_id

    response = editor.post(
        f"/categories/{category_id}/rename",
        data={f"c{category_id}-name": "офис"},
        follow_redirects=True,
    )

    assert "уже есть" in response.get_data(as_text=True)


def test_only_an_empty_category_can_be_deleted(editor, database, faq_id):
    used = database.get_faq(faq_id).category_id
    empty = database.add_category("Пустая").id

    refused = editor.post(f"/categories/{used}/delete", follow_redirects=True)
    editor.post(f"/categories/{empty}/delete")

    assert "есть вопросы" in refused.get_data(as_text=True)
    assert [c.name for c in database.list_categories()] == ["Отпуск и кадры"]


def test_a_category_is_added(editor, database):
    editor.post("/categories", data={"new-name": "Командировки"})

    assert [c.name for c in database.list_categories()] == ["Командировки"]


# --------------------------------------------- a change is answered at once


def test_a_saved_entry_is_answered_from_the_next_question(editor, database):
    editor.post(
        "/faq/new",
        data=_form(
            category="__new__",
            new_category="Офис",
            question="Как заказать визитки?",
            answer="Напишите офис-менеджеру, визитки печатают за три дня.",
        ),
    )

    page = editor.post("/test-chat", data={"question": "как заказать визитки"})

    text = page.get_data(as_text=True)
    assert "Ответил" in text
    assert "визитки печатают за три дня" in text


def test_the_test_chat_shows_candidates_and_writes_no_log(viewer, database, faq_id):
    response = viewer.post("/test-chat", data={"question": "как оформить отпуск"})

    text = response.get_data(as_text=True)
    assert "Ближайшие записи" in text
    assert "По смыслу" in text and "По словам" in text
    with database.session() as session:
        assert session.scalar(select(func.count(QueryLog.id))) == 0


def test_the_test_chat_says_when_there_is_no_answer(viewer, faq_id):
    text = viewer.post(
        "/test-chat", data={"question": "погода на Марсе завтра"}
    ).get_data(as_text=True)

    assert "Нет ответа" in text or "Предложил варианты" in text


# ----------------------------------------------------------------- escaping

HOSTILE = '<script>alert("x")</script> [url=javascript:alert(1)]жми[/url]'


def test_typed_markup_is_text_on_every_page(editor, database):
    record = database.add_faq(
        HOSTILE, HOSTILE, "<b>Категория</b>", phrasings=[HOSTILE + "!"]
    )
    log_question(database, HOSTILE, "no_answer")
    log_question(database, HOSTILE, "answered", faq_id=record.id, score=90)

    pages = [
        "/faq",
        f"/faq/{record.id}/edit",
        f"/faq/{record.id}/delete",
        "/categories",
        "/logs",
        "/suggestions",
        "/stats",
        "/faq/phrasings?log=1",
        "/faq/new?log=1",
    ]
    for url in pages:
        html = editor.get(url).get_data(as_text=True)
        assert "<script>alert" not in html, url
        assert "<b>Категория" not in html, url
        assert 'href="javascript' not in html, url
    chat = editor.post("/test-chat", data={"question": HOSTILE}).get_data(as_text=True)
    assert "<script>alert" not in chat
    assert "&lt;script&gt;" in chat
    assert "[url=javascript:alert(1)]" in editor.get("/logs").get_data(as_text=True)


@pytest.mark.parametrize(
    ("text", "html"),
    [
        (
            "[b]жирный[/b] [i]к[/i] [u]п[/u] [s]з[/s]",
            "<b>жирный</b> <i>к</i> <u>п</u> <s>з</s>",
        ),
        ("строка[br]строка", "строка<br>строка"),
        ("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"),
        ("[url=javascript:alert(1)]x[/url]", "[url=javascript:alert(1)]x[/url]"),
        (
            '[url=https://a.ru" onmouseover="x]y[/url]',
            "[url=https://a.ru&#34; onmouseover=&#34;x]y[/url]",
        ),
        (
            "[url=https://intranet.ru/a?b=1&c=2]портал[/url]",
            '<a href="https://intranet.ru/a?b=1&amp;c=2" rel="noopener noreferrer" '
            'target="_blank">портал</a>',
        ),
        ("[b]не закрыт", "[b]не закрыт"),
        ("[b][i]x[/b][/i]", "[b]<i>x[/b]</i>"),
        (
            "[color=red;background:url(x)]x[/color]",
            "[color=red;background:url(x)]x[/color]",
        ),
        ("[code][b]x[/b][/code]", '<code class="bb-code">[b]x[/b]</code>'),
        ("• пункт\n• пункт", "• пункт\n• пункт"),
    ],
)
def test_bbcode_is_escaped_first_then_rendered(text, html):
    assert str(render_bbcode(text)) == html


def test_the_preview_endpoint_renders_safely(editor):
    response = editor.post("/faq/preview", data={"answer": "[b]<img src=x>[/b]"})

    assert response.json["html"] == "<b>&lt;img src=x&gt;</b>"
    assert response.json["limit"] == 20_000


# --------------------------------------------------------- too-large bodies


def test_a_too_large_form_gets_a_readable_413_page(editor, admin_app):
    size = admin_app.config["MAX_CONTENT_LENGTH"] + 1024
    response = editor.post("/faq/new", data=_form(question="q", answer="я" * size))

    assert response.status_code == 413
    assert "Слишком большой объём данных" in response.get_data(as_text=True)


def test_a_too_large_upload_gets_a_readable_413_page(editor, admin_app):
    size = admin_app.config["MAX_CONTENT_LENGTH"] + 1024
    response = editor.post(
        "/import",
        data={"file": (io.BytesIO(b"x" * size), "faq.csv")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 413
    assert "разбейте файл на части" in response.get_data(as_text=True)


def test_a_20000_character_answer_fits_under_the_limit(editor, faq_id):
    response = editor.post(
        "/faq/new", data=_form(question="Очень длинный?", answer="ж" * 20_000)
    )

    assert response.status_code == 302


# ----------------------------------------------------- set-up and accounts


def test_the_session_key_is_generated_once_and_kept_private(
    tmp_path, database, admin_engine
):
    config = admin_config(tmp_path, admin_secret_key=None)

    first = create_app(config, database=database, engine=admin_engine)
    second = create_app(config, database=database, engine=admin_engine)

    key_file = tmp_path / "admin_secret_key"
    assert first.secret_key == second.secret_key == key_file.read_text().strip()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setattr(web_admin, "configure_root_logger", lambda level: None)
    return tmp_path


def test_create_admin_makes_an_account_that_signs_in(cli_env, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))

    code = web_admin.main(
        ["create-admin", "olga", "--role", "viewer", "--password-stdin"]
    )

    assert code == 0
    assert "создана" in capsys.readouterr().out
    from database import Database

    record = Database(f"sqlite:///{cli_env / 'cli.db'}").get_admin_user("olga")
    assert record.role == "viewer"
    assert record.password_hash != "a-long-password"
    assert web_admin.check_password_hash(record.password_hash, "a-long-password")


def test_create_admin_refuses_a_short_password(cli_env, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))

    with pytest.raises(SystemExit, match="слишком короткий"):
        web_admin.main(["create-admin", "olga", "--password-stdin"])


def test_create_admin_refuses_a_taken_name(cli_env, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    web_admin.main(["create-admin", "olga", "--password-stdin"])
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))

    with pytest.raises(SystemExit, match="уже есть"):
        web_admin.main(["create-admin", "olga", "--password-stdin"])


def test_set_password_replaces_the_hash(cli_env, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    web_admin.main(["create-admin", "olga", "--password-stdin"])
    monkeypatch.setattr("sys.stdin", io.StringIO("another-password\n"))

    assert web_admin.main(["set-password", "olga", "--password-stdin"]) == 0


HUGE_ID = "99999999999999999999999"


@pytest.mark.parametrize(
    ("url", "status"),
    [
        (f"/faq/{HUGE_ID}/edit", 404),
        (f"/faq/{HUGE_ID}/delete", 404),
        (f"/faq?category={HUGE_ID}", 200),
        (f"/logs?page={HUGE_ID}", 200),
        (f"/faq/phrasings?log={HUGE_ID}&faq={HUGE_ID}", 200),
        (f"/faq/new?log={HUGE_ID}", 200),
    ],
)
def test_numbers_no_database_can_store_are_not_a_500(editor, url, status):
    # sqlite and postgres cannot bind an integer past 64 bits: such an id
    # names no row and must be refused before the query
    assert editor.get(url).status_code == status


# ---------------------------------------- invisible characters and messages


def _errors_of(html: str, name: str) -> list[str]:
    """The error messages shown in the form field with this input name."""
    import re

    for block in html.split('<div class="field')[1:]:
        if f'name="{name}"' in block:
            return re.findall(r'<p class="error">([^<]*)</p>', block)
    return []


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        (
            {"question": "\u00a0\u200b", "answer": "Ответ"},
            "question",
            "Вопрос не может быть пустым",
        ),
        (
            {"question": "Вопрос?", "answer": "\u00a0\u200b\u3000"},
            "answer",
            "Ответ не может быть пустым",
        ),
        (
            {"question": "?!.,", "answer": "Ответ"},
            "question",
            "нужна хотя бы одна буква или цифра",
        ),
        (
            {"question": "Вопрос?", "answer": "Ответ", "phrasings": "?!"},
            "phrasings",
            "Формулировка «?!»: нужна хотя бы одна буква или цифра",
        ),
        (
            {
                "question": "Вопрос?",
                "answer": "Ответ",
                "phrasings": "\n".join(f"вариант {n}" for n in range(51)),
            },
            "phrasings",
            "Не больше 50 формулировок у вопроса",
        ),
        (
            {
                "category": "__new__",
                "new_category": "\u200b",
                "question": "Вопрос?",
                "answer": "Ответ",
            },
            "category",
            "Введите название новой категории",
        ),
        (
            {
                "category": "__new__",
                "new_category": "—",
                "question": "Вопрос?",
                "answer": "Ответ",
            },
            "new_category",
            "Категория: нужна хотя бы одна буква или цифра",
        ),
    ],
)
def test_an_entry_without_visible_words_is_refused_next_to_its_field(
    editor, database, faq_id, fields, field, message
):
    html = editor.post("/faq/new", data=_form(**fields)).get_data(as_text=True)

    assert any(message in error for error in _errors_of(html, field)), html
    assert len(database.list_faqs()) == 1


def test_questions_of_signs_do_not_share_a_duplicate_key(editor, database, faq_id):
    response = editor.post(
        "/faq/new", data=_form(question="?!., где пропуск", answer="У охраны.")
    )
    html = editor.post(
        "/faq/new", data=_form(question="?!.,", answer="Ответ")
    ).get_data(as_text=True)

    assert response.status_code == 302
    assert "уже есть в записи" not in html
    assert "нужна хотя бы одна буква или цифра" in html


def test_a_category_cannot_be_renamed_to_a_zero_width_space(editor, database, faq_id):
    editor.post("/categories/1/rename", data={"c1-name": "\u200b"})

    page = editor.get("/categories").get_data(as_text=True)
    assert "Название не может быть пустым" in page
    assert database.list_categories()[0].name == "Отпуск и кадры"


def test_a_nul_in_an_entry_is_not_stored(editor, database, faq_id):
    editor.post("/faq/new", data=_form(question="Вопрос\x00с нулём?", answer="Да"))

    assert database.list_faqs()[-1].question == "Вопрос с нулём?"


def test_an_answer_is_measured_after_trimming_like_the_counter(
    editor, database, faq_id
):
    answer = " \u00a0\n" + "я" * 19_999 + "   \n"

    preview = editor.post("/faq/preview", data={"answer": answer}).get_json()
    response = editor.post(
        "/faq/new", data=_form(question="Почти предел?", answer=answer)
    )

    assert preview["length"] == 19_999
    assert response.status_code == 302


def test_a_too_long_password_is_refused_in_russian(admin_app):
    response = admin_app.test_client().post(
        "/login", data={"username": "editor", "password": "x" * 201}
    )

    page = response.get_data(as_text=True)
    assert "Пароль не длиннее 200 символов" in page
    assert "Field cannot" not in page


def test_every_form_message_is_russian(admin_app):
    """Junk in every field of every form: each message must be in Russian."""
    import inspect as pyinspect
    import re

    from flask_wtf import FlaskForm
    from werkzeug.datastructures import MultiDict

    import admin_forms

    forms = [
        cls
        for _, cls in pyinspect.getmembers(admin_forms, pyinspect.isclass)
        if issubclass(cls, FlaskForm) and cls.__module__ == admin_forms.__name__
    ]
    junk = ["x" * 100_001, "2026-13-45", "", "\u200b"]
    for form_class in forms:
        for value in junk:
            with admin_app.test_request_context(method="POST"):
                names = [f.name for f in form_class(formdata=None)]
                form = form_class(formdata=MultiDict({n: value for n in names}))
                form.validate()
                for errors in form.errors.values():
                    for error in errors:
                        assert re.search("[а-яА-Я]", str(error)), (form_class, error)


# --------------------------------------------------- two editors at once


def _version_of(html: str) -> str:
    import re

    found = re.search(r'name="version" type="hidden" value="([^"]*)"', html)
    assert found, html
    return found.group(1)


def test_the_second_of_two_editors_is_warned_and_keeps_their_text(
    admin_app, database, faq_id
):
    first, second = sign_in(admin_app, EDITOR), sign_in(admin_app, EDITOR)
    url = f"/faq/{faq_id}/edit"
    opened = [_version_of(c.get(url).get_data(as_text=True)) for c in (first, second)]

    saved = first.post(
        url,
        data=_form(
            question="Как оформить отпуск?", answer="Ответ первого", version=opened[0]
        ),
    )
    refused = second.post(
        url,
        data=_form(
            question="Как оформить отпуск?", answer="Ответ второго", version=opened[1]
        ),
    )

    page = refused.get_data(as_text=True)
    assert saved.status_code == 302
    assert refused.status_code == 200
    assert "Запись изменили, пока вы её редактировали" in page
    assert "Ответ второго</textarea>" in page  # what they typed stays
    assert "Ответ первого" in page  # and what is stored now is shown
    assert database.get_faq(faq_id).answer == "Ответ первого"

    again = second.post(
        url,
        data=_form(
            question="Как оформить отпуск?",
            answer="Ответ второго",
            version=_version_of(page),
        ),
    )
    assert again.status_code == 302
    assert database.get_faq(faq_id).answer == "Ответ второго"


def test_phrasings_for_an_entry_deleted_meanwhile_say_so(editor, database, faq_id):
    editor.get(f"/faq/phrasings?faq={faq_id}")
    database.delete_faq(faq_id)

    page = editor.post(
        "/faq/phrasings", data={"faq_id": str(faq_id), "texts": "новый вопрос"}
    ).get_data(as_text=True)

    assert f"Записи №{faq_id} больше нет: её удалили" in page
    assert "Выберите запись FAQ." not in page


# ------------------------------------------------- exports of stored junk


def test_exports_survive_characters_a_spreadsheet_refuses(editor, database, faq_id):
    from openpyxl import load_workbook

    from models import Faq

    # stored before the FAQ refused control characters
    with database.session() as session:
        session.get(Faq, faq_id).question = "Вопрос\x00с нулём\x1b?"

    xlsx = editor.get("/export?format=xlsx")
    csv_export = editor.get("/export?format=csv")

    assert xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    assert sheet.cell(row=2, column=4).value == "Вопросс нулём?"
    assert "\x00" not in csv_export.data.decode("utf-8-sig")


def test_the_admin_writes_the_vectors_of_what_it_saves(tmp_path, database, caplog):
    # the bot's next question then finds the index up to date: no embedding of
    # the new entry on its side, no "does not match" repair after a restart
    from faq_search import FAQSearch

    add_accounts(database)
    config = admin_config(tmp_path)
    app = create_app(config, database=database)
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    search = app.extensions[EXTENSION_KEY].search
    client = sign_in(app, EDITOR)

    reply = client.post(
        "/faq/new",
        data={
            "category": "__new__",
            "new_category": "Кадры",
            "question": "Как оформить учебный отпуск?",
            "answer": "Через отдел кадров.",
            "phrasings": "учебный отпуск",
        },
    )

    assert reply.status_code == 302
    assert search.count() == 2
    with caplog.at_level(logging.INFO, logger="faq_search"):
        bot_side = FAQSearch(database, search.embedder, chroma_path=config.chroma_path)
    assert bot_side.count() == 2
    assert "does not match" not in caplog.text
    bot_side.close()
