"""The web admin in headless Chromium: sign in, add an entry, ask, read statistics.

Screenshots of each page are kept in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from admin_harness import EDITOR, add_accounts, admin_config, log_question
from werkzeug.serving import make_server

from web_admin import create_app

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def served_admin(tmp_path, database, admin_engine):
    add_accounts(database)
    vacation = database.add_faq(
        "Как оформить отпуск?",
        "Подайте заявление в разделе «Кадры → Заявления».",
        "Отпуск и кадры",
    )
    log_question(
        database,
        "как оформить отпуск",
        "answered",
        faq_id=vacation.id,
        score=94,
        helpful=True,
    )
    log_question(database, "где взять справку 2-НДФЛ", "no_answer")
    log_question(database, "справка о доходах", "no_answer", user_id="12")
    app = create_app(admin_config(tmp_path), database=database, engine=admin_engine)
    # the engine is built now, so the first question in the browser is quick
    admin_engine.ask("прогрев")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def page():
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        context = browser.new_context(
            viewport={"width": 1280, "height": 900}, locale="ru-RU"
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        yield page
        context.close()
        browser.close()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)


def test_an_editor_adds_an_entry_and_the_test_chat_answers_it(page, served_admin):
    page.goto(f"{served_admin}/faq")
    assert "/login" in page.url
    _shot(page, "1-login")
    page.fill("#username", EDITOR[0])
    page.fill("#password", EDITOR[1])
    page.click("button[type=submit]")
    page.wait_for_url("**/faq")
    assert page.locator("h1").inner_text().startswith("Вопросы и ответы")
    _shot(page, "2-faq-list")

    page.click("text=+ Новая запись")
    page.select_option("#category", "__new__")
    page.fill("#new_category", "Офис")
    page.fill("#question", "Как заказать визитки?")
    page.fill(
        "#answer",
        "Напишите [b]офис-менеджеру[/b].[br]Визитки печатают за три дня.\n"
        "• макет — в [url=https://intranet.example/brand]брендбуке[/url]\n"
        "<script>alert(1)</script>",
    )
    preview = page.locator("[data-preview-target]")
    preview.locator("b", has_text="офис-менеджеру").wait_for()
    assert preview.locator("script").count() == 0
    assert "<script>alert(1)</script>" in preview.inner_text()
    _shot(page, "3-faq-form-preview")
    page.click("text=Сохранить")
    page.wait_for_url("**/faq#faq-*")
    assert "Как заказать визитки?" in page.content()

    page.click("text=Проверить бота")
    page.fill("#question", "как заказать визитки")
    page.click("text=Спросить")
    result = page.locator("[data-test-result]")
    result.wait_for()
    assert "Ответил" in result.inner_text()
    assert (
        "Визитки печатают за три дня" in page.locator("[data-bot-reply]").inner_text()
    )
    _shot(page, "4-test-chat")

    blocked = []
    page.on(
        "console", lambda m: "Content Security Policy" in m.text and blocked.append(m)
    )
    page.click("text=Статистика")
    page.wait_for_url("**/stats")
    chart = page.locator("figure.chart svg.pygal-chart")
    assert chart.get_attribute("role") == "img"
    assert chart.locator(".series rect").count() >= 1
    assert "нет ответа" in chart.locator(".legends").text_content()
    assert "Те же числа таблицей" in page.content()
    _shot(page, "5-stats")
    page.goto(f"{served_admin}/stats?date_from=2020-01-01&date_to=2020-01-31")
    assert "Нет вопросов за этот период" in page.locator("figure.chart").text_content()
    _shot(page, "5-stats-empty")
    assert not blocked, [m.text for m in blocked]

    page.click("nav >> text=Журнал")
    page.wait_for_url("**/logs")
    _shot(page, "6-logs")

    page.click("text=Что добавить")
    page.wait_for_url("**/suggestions")
    _shot(page, "7-suggestions")
