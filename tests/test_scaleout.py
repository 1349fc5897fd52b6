"""The larger install: PostgreSQL and a Chroma server, chosen by configuration.

The bot and the admin are separate processes there, each with its own Chroma
client; these tests give each side its own client and check that an edit on
one side is what the other side answers with.
"""

from __future__ import annotations

import uuid

import pytest
from b24_harness import ServedApp, bot_config, load_small_faq

from b24_bot import create_app
from faq_search import FAQSearch, make_chroma_client

pytestmark = [pytest.mark.scaleout, pytest.mark.timeout(180)]


@pytest.fixture
def collection() -> str:
    return f"faq_{uuid.uuid4().hex[:8]}"


def _search(database, embedder, server, collection: str) -> FAQSearch:
    host, port = server
    client = make_chroma_client(host=host, port=port)
    return FAQSearch(database, embedder, client=client, collection_name=collection)


def test_an_edit_on_one_side_is_found_on_the_other(
    postgres_database, embedder, chroma_server, collection
) -> None:
    database = postgres_database
    bot = _search(database, embedder, chroma_server, collection)
    admin = _search(database, embedder, chroma_server, collection)

    faq = database.add_faq("Как оформить отпуск?", "Заявление в «Кадрах».", "Кадры")
    admin.ensure_fresh()
    assert bot.search("как оформить отпуск", limit=1)[0].faq_id == faq.id

    database.update_faq(faq.id, question="Как получить пропуск для гостя?")
    admin.ensure_fresh()
    hit = bot.search("пропуск для гостя", limit=1)[0]
    assert (hit.faq_id, hit.matched_text) == (faq.id, "Как получить пропуск для гостя?")

    other = database.add_faq("Не работает VPN", "Переустановите клиент.", "IT")
    database.delete_faq(faq.id)
    admin.ensure_fresh()
    hits = bot.search("пропуск для гостя", limit=5)
    assert [h.faq_id for h in hits] == [other.id]
    assert bot.count() == admin.count() == 1
    assert bot.healthy() and admin.healthy()


def test_the_bot_answers_on_postgresql_and_a_chroma_server(
    tmp_path, emulator, postgres_database, chroma_server
) -> None:
    load_small_faq(postgres_database)
    host, port = chroma_server
    served = ServedApp().start()
    config = bot_config(
        tmp_path,
        emulator,
        served.url,
        database_url=postgres_database.url,
        chroma_host=host,
        chroma_port=port,
    )
    try:
        app = create_app(config)
        served.app = app
        health = app.test_client().get("/health").get_json()
        assert health["status"] == "ok" and health["chromadb_records"] == 16

        emulator.user_sends("как оформить отпуск", 7)

        answer = emulator.wait_for_messages("7", 1, timeout=30)[-1]
        assert answer.text.startswith("[b]Как оформить отпуск?[/b]")
    finally:
        if served.app is not None:
            served.app.extensions["faq_bot"].worker.stop()
        served.stop()
