"""Field report 8: an entry added in the admin is answered by the running bot.

`web_admin.py` and `b24_bot.py` run as two real processes on one database and
one index folder; the user talks to the bot through the local Bitrix24. The bot
is never restarted between the admin's changes.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from database import Database

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "cross-process-pass"
USER = 7
pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}")
        try:
            requests.get(url, timeout=2, allow_redirects=False)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up in {timeout}s")


@pytest.fixture
def environment(tmp_path, emulator) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BITRIX24_", "ADMIN_", "DATABASE_", "CHROMA_"))
    }
    env.update(
        DATA_DIR=str(tmp_path),
        DATABASE_URL=f"sqlite:///{tmp_path / 'shared.db'}",
        CHROMA_PATH=str(tmp_path / "chroma"),
        LOG_LEVEL="INFO",
        ADMIN_HOST="127.0.0.1",
        ADMIN_PORT=str(_free_port()),
        ADMIN_SECRET_KEY="cross-process-secret",
        BITRIX24_WEBHOOK=emulator.webhook_url,
        BITRIX24_CLIENT_ID=emulator.client_id,
        BITRIX24_HOST="127.0.0.1",
        BITRIX24_PORT=str(_free_port()),
        PYTHONUNBUFFERED="1",
    )
    env["BITRIX24_HANDLER_URL"] = (
        f"http://127.0.0.1:{env['BITRIX24_PORT']}/webhook/bitrix24"
    )
    database = Database(env["DATABASE_URL"])
    database.init_schema()
    database.add_faq(
        "Как оформить отпуск?", "Заявление в разделе «Кадры».", "Отпуск и кадры"
    )
    database.close()
    return env


@pytest.fixture
def processes(environment, tmp_path):
    started: list[subprocess.Popen] = []
    logs = []

    def start(script: str, *args: str, name: str) -> subprocess.Popen:
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115
        logs.append(log)
        process = subprocess.Popen(
            [sys.executable, str(ROOT / script), *args],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
    for log in logs:
        log.close()


class AdminBrowser:
    """A person using the admin over HTTP, CSRF tokens and all."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = requests.Session()

    def _token(self, path: str) -> str:
        page = self.session.get(self.base_url + path, timeout=10).text
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)[1]

    def sign_in(self, username: str, password: str) -> None:
        response = self.session.post(
            self.base_url + "/login",
            data={
                "csrf_token": self._token("/login"),
                "username": username,
                "password": password,
            },
            timeout=10,
        )
        assert response.url.endswith("/faq"), response.text

    def post_form(self, path: str, **fields: str) -> requests.Response:
        fields["csrf_token"] = self._token(path)
        response = self.session.post(self.base_url + path, data=fields, timeout=30)
        assert response.status_code == 200, response.text
        return response


def _bot_says(emulator, text: str) -> str:
    before = len(emulator.messages(USER))
    delivery = emulator.user_sends(text, USER)
    assert delivery.status == 200
    messages = emulator.wait_for_messages(USER, before + 1, timeout=30)
    return "\n".join(message.text for message in messages[before:])


def test_an_entry_saved_in_the_admin_is_answered_by_the_running_bot(
    environment, processes, emulator
):
    created = subprocess.run(
        [sys.executable, "web_admin.py", "create-admin", "anna", "--password-stdin"],
        cwd=ROOT,
        env=environment,
        input=PASSWORD + "\n",
        text=True,
        capture_output=True,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    bot = processes("b24_bot.py", name="bot")
    admin = processes("web_admin.py", name="admin")
    bot_url = f"http://127.0.0.1:{environment['BITRIX24_PORT']}/health"
    admin_url = f"http://127.0.0.1:{environment['ADMIN_PORT']}"
    _wait_until_up(bot_url, bot)
    _wait_until_up(admin_url + "/login", admin)

    before = _bot_says(emulator, "Как заказать визитки?")
    assert "три дня" not in before

    browser = AdminBrowser(admin_url)
    browser.sign_in("anna", PASSWORD)
    browser.post_form(
        "/faq/new",
        category="__new__",
        new_category="Офис",
        question="Как заказать визитки?",
        answer="Напишите офис-менеджеру: визитки печатают за три дня.",
        phrasings="",
    )
    assert "печатают за три дня" in _bot_says(emulator, "Как заказать визитки?")

    faq_id = next(
        r.id
        for r in Database(environment["DATABASE_URL"]).list_faqs()
        if r.question == "Как заказать визитки?"
    )
    category_id = Database(environment["DATABASE_URL"]).get_faq(faq_id).category_id
    browser.post_form(
        f"/faq/{faq_id}/edit",
        category=str(category_id),
        question="Как заказать визитки?",
        answer="Закажите визитки в разделе «Заявки → Полиграфия».",
        phrasings="",
    )
    assert "Полиграфия" in _bot_says(emulator, "Как заказать визитки?")

    browser.post_form(f"/faq/{faq_id}/delete")
    after = _bot_says(emulator, "Как заказать визитки?")
    assert "Полиграфия" not in after
    assert bot.poll() is None and admin.poll() is None
