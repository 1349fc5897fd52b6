"""Shared pytest fixtures. Each helper keeps its fixtures in its own marked block."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --- faq core fixtures (database, embedder, faq_search) -------------------------

# sentence-transformers must find models on disk only, never on a hub
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# openmp threads of the e5 engine spin badly on a busy two-core machine
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'faq.db'}"


@pytest.fixture
def database(database_url: str):
    """An empty, migrated sqlite database in the test's own folder."""
    from database import Database

    db = Database(database_url)
    db.init_schema()
    yield db
    db.close()


@pytest.fixture(scope="session")
def embedder():
    """The default offline embedder (bundled e5), loaded once per run."""
    from embeddings import E5Embedder

    return E5Embedder()


@pytest.fixture
def faq_search(database, embedder, tmp_path: Path):
    """A search index over `database` in the test's own chroma folder."""
    from faq_search import FAQSearch

    search = FAQSearch(database, embedder, chroma_path=tmp_path / "chroma")
    yield search
    search.close()


# --- end of faq core fixtures ---------------------------------------------------


# --- bitrix24 platform fixtures (b24_api, b24_event, b24_emulator) -------------


class EventSink:
    """A stand-in bot handler on 127.0.0.1 that records the events it receives.

    Set ``status`` to answer with another HTTP status, ``delay`` to answer
    slowly, ``on_event`` to react (e.g. reply through the REST client).
    """

    def __init__(self) -> None:
        import threading

        from flask import Flask, request
        from werkzeug.serving import make_server

        from b24_event import Bitrix24Event

        self.events: list[Bitrix24Event] = []
        self.status = 200
        self.delay = 0.0
        self.on_event = None
        self._arrived = threading.Condition()
        app = Flask("event_sink")

        @app.post("/webhook/bitrix24")
        def handler():
            import time

            event = Bitrix24Event.from_raw_body(
                request.get_data(), request.content_type, request.query_string
            )
            with self._arrived:
                self.events.append(event)
                self._arrived.notify_all()
            if self.on_event is not None:
                self.on_event(event)
            time.sleep(self.delay)
            return "", self.status

        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/webhook/bitrix24"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
        )
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 5.0):
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.events) >= count, timeout)
            return list(self.events)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def emulator():
    """A started in-process Bitrix24 on a free port of 127.0.0.1."""
    from b24_emulator import Bitrix24Emulator

    with Bitrix24Emulator() as emu:
        yield emu


@pytest.fixture
def fast_retry():
    from b24_api import RetryPolicy

    return RetryPolicy(max_attempts=8, initial=0.01, maximum=0.05, jitter=0.01)


@pytest.fixture
def b24_api(emulator, fast_retry):
    """A client of the emulator with pacing off and millisecond backoff."""
    from b24_api import Bitrix24API, RateLimiter

    api = Bitrix24API(
        emulator.webhook_url,
        emulator.client_id,
        rate_limiter=RateLimiter.unlimited(),
        retry=fast_retry,
        timeout=(1.0, 3.0),
    )
    yield api
    api.close()


@pytest.fixture
def event_sink():
    sink = EventSink()
    yield sink
    sink.close()


@pytest.fixture
def registered_bot(b24_api, event_sink) -> int:
    """A bot registered on the emulator whose events go to ``event_sink``."""
    return b24_api.register_bot("faqbot", "FAQ бот", event_sink.url)


# --- end of bitrix24 platform fixtures -----------------------------------------


# --- web admin fixtures (web_admin, admin_*) -----------------------------------


@pytest.fixture
def admin_engine(request, database):
    """The real FAQ engine over the test database, built on its first use."""
    from admin_harness import LazyEngine

    def build():
        from faq_core import FAQEngine

        return FAQEngine(database, request.getfixturevalue("faq_search"))

    return LazyEngine(build)


@pytest.fixture
def admin_app(tmp_path: Path, database, admin_engine):
    """The web admin with an editor and a viewer account; CSRF off for brevity."""
    from admin_harness import add_accounts, admin_config

    from web_admin import create_app

    add_accounts(database)
    app = create_app(admin_config(tmp_path), database=database, engine=admin_engine)
    app.config.update(TESTING=True, WTF_CSRF_ENABLED=False)
    return app


@pytest.fixture
def editor(admin_app):
    from admin_harness import EDITOR, sign_in

    return sign_in(admin_app, EDITOR)


@pytest.fixture
def viewer(admin_app):
    from admin_harness import VIEWER, sign_in

    return sign_in(admin_app, VIEWER)


# --- end of web admin fixtures --------------------------------------------------


# --- search quality fixtures (faq_core, lexical, smalltalk) ---------------------

# a small intranet faq of our own: (category, question, answer, phrasings)
SEARCH_FAQ = (
    (
        "Отпуск и кадры",
        "Как оформить отпуск?",
        "Подайте заявление в разделе «Кадры» не позже чем за две недели.",
        ("Как взять отпуск", "Заявление на отпуск"),
    ),
    (
        "Отпуск и кадры",
        "Как оформить больничный?",
        "Сообщите руководителю и пришлите номер электронного листка в отдел кадров.",
        (),
    ),
    (
        "ИТ и доступы",
        "Как подключиться к VPN из дома?",
        "Установите клиент VPN с портала и войдите под рабочей учётной записью.",
        ("Не работает VPN",),
    ),
    (
        "ИТ и доступы",
        "Как сбросить пароль от рабочей почты?",
        "Откройте портал самообслуживания и нажмите «Забыли пароль».",
        ("Не могу зайти в почту",),
    ),
    (
        "Офис",
        "Как заказать пропуск для гостя?",
        "Заполните заявку на гостевой пропуск у секретаря за день до визита.",
        (),
    ),
    (
        "Офис",
        "Где припарковать машину у офиса?",
        "Парковка для сотрудников на минус первом этаже, въезд по пропуску.",
        (),
    ),
    (
        "Зарплата и документы",
        "Когда выплачивают зарплату?",
        "Зарплату перечисляют 10 и 25 числа каждого месяца.",
        ("Когда аванс",),
    ),
    (
        "Зарплата и документы",
        "Как получить справку 2-НДФЛ?",
        "Закажите справку в разделе «Документы», она будет готова за три дня.",
        (),
    ),
    (
        "Безопасность",
        "Что делать, если пришло подозрительное письмо?",
        "Не открывайте вложения и перешлите письмо в службу безопасности.",
        ("Фишинговое письмо",),
    ),
)


@pytest.fixture(scope="module")
def search_faq_engine(tmp_path_factory, embedder):
    """A FAQEngine over `SEARCH_FAQ`, built once per test module."""
    from database import Database
    from faq_core import FAQEngine
    from faq_search import FAQSearch

    folder = tmp_path_factory.mktemp("search-faq")
    db = Database(f"sqlite:///{folder / 'faq.db'}")
    db.init_schema()
    for category, question, answer, phrasings in SEARCH_FAQ:
        db.add_faq(question, answer, category, phrasings=phrasings)
    search = FAQSearch(db, embedder, chroma_path=folder / "chroma")
    yield FAQEngine(db, search)
    search.close()
    db.close()


# --- end of search quality fixtures ---------------------------------------------


# --- telegram bot fixtures (bot, tg_conversation, tg_format) --------------------

# a small faq of the telegram tests: (category, question, answer, phrasings)
TELEGRAM_FAQ = (
    (
        "Отпуск",
        "Как оформить отпуск?",
        "Подайте [b]заявление[/b] в разделе «Кадры» за две недели. "
        "Подробнее: [url=https://hr.example.ru/vacation]правила отпусков[/url].",
        ("Как взять отпуск",),
    ),
    (
        "Отпуск",
        "Как оформить больничный?",
        "Сообщите руководителю и пришлите номер листка в отдел кадров.",
        (),
    ),
    (
        "ИТ",
        "Не работает VPN, что делать?",
        "Перезапустите клиент VPN; если не помогло, напишите в техподдержку.",
        ("VPN не подключается",),
    ),
    (
        "ИТ",
        "Как сбросить пароль от почты?",
        "Откройте портал самообслуживания и нажмите «Забыли пароль».",
        (),
    ),
    (
        "Офис",
        "Где получить пропуск в офис?",
        "Пропуск выдаёт охрана на первом этаже, возьмите паспорт.",
        (),
    ),
)


@pytest.fixture
def telegram_faq(database) -> dict[str, int]:
    """`TELEGRAM_FAQ` in the test database; FAQ ids by question."""
    return {
        question: database.add_faq(question, answer, category, phrasings).id
        for category, question, answer, phrasings in TELEGRAM_FAQ
    }


@pytest.fixture
def telegram_engine(database, telegram_faq, faq_search):
    """The real FAQ engine over `TELEGRAM_FAQ`, its index synced."""
    from faq_core import FAQEngine

    faq_search.ensure_fresh()
    return FAQEngine(database, faq_search)


# --- end of telegram bot fixtures -----------------------------------------------


# --- scale-out fixtures (PostgreSQL, a Chroma server) ---------------------------

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _reachable(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def postgres_database():
    """A migrated database in a schema of its own on the local PostgreSQL."""
    import uuid

    from sqlalchemy import text

    from database import Database

    pytest.importorskip("psycopg", reason="psycopg is not installed")
    if not _reachable(5432):
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    schema = f"faq_test_{uuid.uuid4().hex[:8]}"
    admin = Database(POSTGRES_URL)
    with admin.engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    db = Database(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    try:
        db.init_schema()
        yield db
    finally:
        db.close()
        with admin.engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.close()


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A Chroma server (`chroma run`, from the chromadb package) on a free port."""
    import shutil
    import socket
    import subprocess
    import time

    import requests

    binary = shutil.which("chroma") or str(Path(sys.executable).parent / "chroma")
    if not Path(binary).exists():
        pytest.skip("the chroma command of the chromadb package is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = tmp_path_factory.mktemp("chroma-server")
    log = (folder / "server.log").open("wb")
    command = [binary, "run", "--path", str(folder / "data")]
    server = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api/v2/heartbeat"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"chroma server did not start; see {log.name}")
        time.sleep(0.2)
    try:
        yield ("127.0.0.1", port)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


# --- end of scale-out fixtures ---------------------------------------------------
