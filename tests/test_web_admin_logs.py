"""The question log, its filters and export, suggestions and statistics."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from admin_harness import log_question

from admin_common import today_local
from admin_queries import OpenQuestion
from admin_suggest import suggest


@pytest.fixture
def faq_ids(database) -> dict[str, int]:
    vacation = database.add_faq(
        "Как оформить отпуск?", "Заявление в «Кадрах».", "Кадры"
    )
    vpn = database.add_faq("Не работает VPN", "Перезапустите клиент.", "IT")
    return {"vacation": vacation.id, "vpn": vpn.id}


@pytest.fixture
def logged(database, faq_ids) -> dict[str, int]:
    vacation, vpn = faq_ids["vacation"], faq_ids["vpn"]
    return {
        "answered": log_question(
            database,
            "как оформить отпуск",
            "answered",
            faq_id=vacation,
            score=93,
            candidates=((vacation, 93), (vpn, 40)),
            helpful=True,
        ),
        "unhelpful": log_question(
            database,
            "vpn тормозит",
            "answered",
            faq_id=vpn,
            score=88,
            candidates=((vpn, 88),),
            helpful=False,
            user_id="77",
        ),
        "choices": log_question(
            database, "отпуск впн", "choices", candidates=((vacation, 70), (vpn, 69))
        ),
        "no_answer": log_question(
            database,
            "что на обед в столовой?",
            "no_answer",
            platform="telegram",
            candidates=((vpn, 20),),
        ),
        "smalltalk": log_question(database, "спасибо", "smalltalk"),
    }


@pytest.mark.parametrize(
    ("query", "shown", "hidden"),
    [
        ("outcome=answered", ["как оформить отпуск", "vpn тормозит"], ["что на обед"]),
        ("outcome=choices", ["отпуск впн"], ["как оформить отпуск"]),
        ("outcome=no_answer", ["что на обед"], ["отпуск впн"]),
        ("outcome=unhelpful", ["vpn тормозит"], ["как оформить отпуск"]),
        ("platform=telegram", ["что на обед"], ["vpn тормозит"]),
        ("q=ОТПУСК", [], ["vpn тормозит"]),
        ("q=отпуск", ["как оформить отпуск", "отпуск впн"], ["vpn тормозит"]),
    ],
)
def test_the_log_filters(viewer, logged, query, shown, hidden):
    page = viewer.get(f"/logs?{query}").get_data(as_text=True)

    for text in shown:
        assert text in page
    for text in hidden:
        assert text not in page


def test_the_log_shows_what_the_bot_did(editor, logged, faq_ids):
    page = editor.get("/logs").get_data(as_text=True)

    assert "Битрикс24" in page and "Telegram" in page
    assert "Ответил" in page and "Нет ответа" in page and "Предложил варианты" in page
    assert f"№{faq_ids['vacation']} Как оформить отпуск?" in page
    assert "✓ 1" in page and "✗ 1" in page
    assert f"/faq/phrasings?log={logged['no_answer']}" in page
    assert f"/faq/new?log={logged['no_answer']}" in page


def test_the_log_filters_by_date(viewer, database, faq_ids):
    log_question(database, "старый вопрос", at=datetime.now() - timedelta(days=40))
    log_question(database, "свежий вопрос")
    since = (today_local() - timedelta(days=7)).isoformat()

    page = viewer.get(f"/logs?date_from={since}").get_data(as_text=True)

    assert "свежий вопрос" in page
    assert "старый вопрос" not in page


def test_the_log_is_paged(viewer, database):
    for n in range(55):
        log_question(database, f"вопрос номер {n:02d}")

    first = viewer.get("/logs").get_data(as_text=True)
    second = viewer.get("/logs?page=2").get_data(as_text=True)

    assert "вопрос номер 54" in first and "вопрос номер 04" not in first
    assert "вопрос номер 04" in second and "Страница 2 из 2" in second


def test_the_log_exports_to_csv_with_the_same_filters(viewer, logged):
    response = viewer.get("/logs/export.csv?outcome=no_answer")

    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert [row["question"] for row in rows] == ["что на обед в столовой?"]
    assert rows[0]["platform"] == "telegram"
    assert rows[0]["outcome"] == "no_answer"


def test_a_logged_formula_is_exported_as_text(viewer, database):
    log_question(database, "=cmd|' /C calc'!A0")

    text = viewer.get("/logs/export.csv").data.decode("utf-8-sig")

    assert "'=cmd" in text


def test_a_question_becomes_a_phrasing_of_the_suggested_entry(
    editor, database, logged, faq_ids
):
    form = editor.get(f"/faq/phrasings?log={logged['unhelpful']}").get_data(
        as_text=True
    )
    assert f'<option selected value="{faq_ids["vpn"]}"' in form
    assert "vpn тормозит" in form

    response = editor.post(
        "/faq/phrasings", data={"faq_id": faq_ids["vpn"], "texts": "vpn тормозит"}
    )

    assert response.status_code == 302
    assert database.get_faq(faq_ids["vpn"]).phrasings == ("vpn тормозит",)


def test_the_top_candidate_is_suggested_when_there_was_no_answer(
    editor, logged, faq_ids
):
    form = editor.get(f"/faq/phrasings?log={logged['no_answer']}").get_data(
        as_text=True
    )

    assert f'<option selected value="{faq_ids["vpn"]}"' in form


def test_a_phrasing_taken_by_another_entry_is_refused(
    editor, database, logged, faq_ids
):
    response = editor.post(
        "/faq/phrasings",
        data={"faq_id": faq_ids["vpn"], "texts": "Как оформить отпуск"},
    )

    assert "уже есть в записи" in response.get_data(as_text=True)
    assert database.get_faq(faq_ids["vpn"]).phrasings == ()


def test_a_question_starts_a_new_entry(editor, logged):
    page = editor.get(f"/faq/new?log={logged['no_answer']}").get_data(as_text=True)

    assert "что на обед в столовой?</textarea>" in page


def test_several_questions_start_an_entry_with_phrasings(editor, database):
    first = log_question(database, "[USER=926]Бот[/USER], где парковка?")
    second = log_question(database, "можно ли парковаться у офиса")

    page = editor.get(f"/faq/new?log={first}&log={second}").get_data(as_text=True)

    assert "где парковка?</textarea>" in page
    assert "можно ли парковаться у офиса</textarea>" in page


# -------------------------------------------------------------- suggestions


def _open(n: int, text: str, reason: str = "no_answer", faq_id=None) -> OpenQuestion:
    return OpenQuestion(n, text, datetime(2025, 3, 1, 12, n), reason, faq_id)


def test_suggestions_group_by_meaning_largest_first(embedder):
    questions = [
        _open(1, "не работает vpn"),
        _open(2, "впн не подключается"),
        _open(3, "vpn не работает дома", "unhelpful", faq_id=7),
        _open(4, "Не работает VPN!"),
        _open(5, "во сколько обед в столовой"),
        _open(6, "что на обед"),
        _open(7, "погода в москве"),
    ]

    groups = suggest(questions, embedder, {7: "Не работает VPN"})

    assert [g.size for g in groups] == [4, 2, 1]
    vpn = groups[0]
    assert vpn.title == "не работает vpn"
    assert (vpn.no_answer, vpn.unhelpful) == (3, 1)
    assert vpn.top_faq_id == 7
    assert {v.text for v in groups[1].variants} == {
        "во сколько обед в столовой",
        "что на обед",
    }


def test_suggestions_without_an_embedder_group_identical_texts():
    groups = suggest(
        [_open(1, "где обед"), _open(2, "Где обед?"), _open(3, "x")], None, {}
    )

    assert [g.size for g in groups] == [2, 1]


def test_the_suggestions_page_links_to_an_answer(editor, database, faq_ids):
    ids = [
        log_question(database, "не работает vpn"),
        log_question(database, "впн не подключается"),
        log_question(database, "где столовая"),
    ]

    page = editor.get("/suggestions").get_data(as_text=True)

    assert page.index("не работает vpn") < page.index("где столовая")
    links = {f"/faq/new?log={a}&amp;log={b}" for a, b in (ids[:2], ids[1::-1])}
    assert any(link in page for link in links)
    assert "Добавить к записи" in page


# --------------------------------------------------------------- statistics


def test_statistics_count_questions_rates_and_tops(viewer, logged, faq_ids):
    page = viewer.get("/stats").get_data(as_text=True)

    # 4 searched questions (small talk is not one), 2 answered
    assert '<span class="value">4</span><span class="label">вопросов' in page
    assert "50&nbsp;%" in page  # answered 2 of 4; helpful 1 of 2
    assert "оценок «Помогло» (1 из 2)" in page
    assert "№1 Как оформить отпуск?" in page
    assert "что на обед в столовой?" in page
    assert "Те же числа таблицей" in page


def _chart(page: str) -> str:
    return page[page.index('<figure class="chart">') : page.index("</figure>")]


def test_statistics_draw_a_pygal_chart_without_scripts(viewer, logged):
    response = viewer.get("/stats")
    chart = _chart(response.get_data(as_text=True))

    assert 'class="pygal-chart"' in chart and 'role="img"' in chart
    assert "stackedbar-graph" in chart
    for name in ("ответил", "предложил варианты", "нет ответа"):
        assert f">{name}<" in chart  # the legend
    assert "<title>Вопросов в день с " in chart
    assert f"{today_local():%d.%m}: нет ответа — 1" in chart  # a bar's tooltip
    assert "<?xml" not in chart and "<script" not in chart
    # the page's policy stays strict: scripts only from the app's own files
    assert "script-src 'self';" in response.headers["Content-Security-Policy"]


def test_statistics_of_an_empty_period_say_so(viewer, database):
    log_question(database, "давний вопрос", at=datetime.now() - timedelta(days=60))

    page = viewer.get("/stats").get_data(as_text=True)
    chart = _chart(page)

    assert "Нет вопросов за этот период" in chart
    assert "stackedbar-graph" in chart and "<rect" in chart
    assert "За этот период вопросов не было." in page


def test_the_chart_escapes_its_texts(viewer, logged, monkeypatch):
    import admin_log_views

    evil = "<script>alert(1)</script>"
    series = (("answered", evil), *admin_log_views.CHART_SERIES[1:])
    monkeypatch.setattr(admin_log_views, "CHART_SERIES", series)

    chart = _chart(viewer.get("/stats").get_data(as_text=True))

    assert evil not in chart
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in chart


def test_statistics_respect_the_period(viewer, database, faq_ids):
    log_question(database, "давний вопрос", at=datetime.now() - timedelta(days=60))
    old_day = (today_local() - timedelta(days=60)).isoformat()

    recent = viewer.get("/stats").get_data(as_text=True)
    old = viewer.get(f"/stats?date_from={old_day}&date_to={old_day}").get_data(
        as_text=True
    )

    assert "давний вопрос" not in recent
    assert "давний вопрос" in old


# ------------------------------------------------------------- date filters

DATE_PAGES = ["/logs", "/logs/export.csv", "/suggestions", "/stats"]


@pytest.mark.parametrize("url", DATE_PAGES)
@pytest.mark.parametrize(
    "query",
    [
        "date_to=9999-12-31",
        "date_from=9999-12-31",
        "date_from=0001-01-01&date_to=9999-12-31",
        "date_from=2026-13-45",
        "date_to=31.12.2026",
    ],
)
def test_no_date_breaks_a_page(viewer, logged, url, query):
    response = viewer.get(f"{url}?{query}")

    assert response.status_code == 200


@pytest.mark.parametrize("url", ["/logs", "/suggestions", "/stats"])
@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("date_from=2026-13-45", "Нет такой даты «2026-13-45»"),
        ("date_to=9999-12-31", "Дата должна быть между 01.01.2000 и 31.12.2100"),
        (
            "date_from=0001-01-01&date_to=9999-12-30",
            "Дата должна быть между 01.01.2000 и 31.12.2100",
        ),
    ],
)
def test_a_wrong_date_is_explained_and_the_default_period_shown(
    viewer, logged, url, query, message
):
    page = viewer.get(f"{url}?{query}").get_data(as_text=True)

    assert message in page
    if url == "/logs":  # no period by default: the whole log
        assert "как оформить отпуск" in page
    else:  # the last 30 days
        assert f'value="{today_local().isoformat()}"' in page


@pytest.mark.parametrize("url", ["/logs", "/stats"])
def test_a_reversed_period_is_turned_round_on_every_page(viewer, database, url):
    log_question(database, "вчерашний вопрос", at=datetime.now() - timedelta(days=1))
    later = (today_local() + timedelta(days=1)).isoformat()
    earlier = (today_local() - timedelta(days=3)).isoformat()

    page = viewer.get(f"{url}?date_from={later}&date_to={earlier}").get_data(
        as_text=True
    )

    assert "Даты шли в обратном порядке" in page
    assert "вчерашний вопрос" in page


def test_a_reversed_period_exports_the_same_rows(viewer, database):
    log_question(database, "вчерашний вопрос", at=datetime.now() - timedelta(days=1))
    later = (today_local() + timedelta(days=1)).isoformat()
    earlier = (today_local() - timedelta(days=3)).isoformat()

    body = viewer.get(f"/logs/export.csv?date_from={later}&date_to={earlier}").data

    assert "вчерашний вопрос" in body.decode("utf-8-sig")


def test_a_too_long_period_says_what_is_shown(viewer, database):
    page = viewer.get("/stats?date_from=2000-01-01&date_to=2100-12-31").get_data(
        as_text=True
    )

    assert "Период не длиннее 366 дней: показано с" in page


def test_the_bounds_of_a_period_never_overflow():
    from datetime import date

    from admin_common import utc_bounds

    start, end = utc_bounds(date.min, date.max)

    assert end is None
    assert start is None or start.year == 1


def test_the_log_export_drops_characters_a_spreadsheet_refuses(viewer, database):
    log_question(database, "вопрос\x00с нулём\x1b")

    response = viewer.get("/logs/export.csv")

    assert response.status_code == 200
    assert "вопросс нулём" in response.data.decode("utf-8-sig")
