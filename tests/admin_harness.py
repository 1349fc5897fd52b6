"""Helpers for the web admin's tests: accounts, a client that signs in, logs."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from werkzeug.security import generate_password_hash

from config import Config, load_config
from database import Database
from models import QueryLog

EDITOR = ("anna", "editor-password-1")
VIEWER = ("victor", "viewer-password-1")
FAST_HASH = "pbkdf2:sha256:1000"
_TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


class LazyEngine:
    """Builds the real FAQ engine on first use: most pages never search."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._engine: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._engine is None:
            self._engine = self._build()
        return getattr(self._engine, name)


def admin_config(tmp_path: Path, **changes: Any) -> Config:
    """A configuration whose data, database and index live in `tmp_path`."""
    config = load_config({}, env_file=None).with_overrides(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'faq.db'}",
        chroma_path=tmp_path / "chroma",
        admin_secret_key="test-secret-key",
    )
    return config.with_overrides(**changes)


def add_accounts(database: Database) -> None:
    """An editor and a viewer; a cheap hash method keeps the tests quick."""
    for (username, password), role in ((EDITOR, "editor"), (VIEWER, "viewer")):
        password_hash = generate_password_hash(password, method=FAST_HASH)
        database.create_admin_user(username, password_hash, role)


def sign_in(app: Flask, account: tuple[str, str]) -> FlaskClient:
    client = app.test_client()
    page = client.get("/login")
    data = {"username": account[0], "password": account[1]}
    token = csrf_token(page.get_data(as_text=True))
    if token:
        data["csrf_token"] = token
    response = client.post("/login", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def csrf_token(html: str) -> str | None:
    found = _TOKEN.search(html)
    return found.group(1) if found else None


def log_question(
    database: Database,
    text: str,
    outcome: str = "no_answer",
    *,
    faq_id: int | None = None,
    score: float | None = None,
    candidates: tuple[tuple[int, float], ...] = (),
    platform: str = "bitrix24",
    user_id: str = "405",
    helpful: bool | None = None,
    at: datetime | None = None,
) -> int:
    """Store a question as the bot would; return its query log id."""
    ids = database.log_interaction(
        platform,
        user_id,
        user_id,
        text,
        text.lower(),
        outcome,
        faq_id=faq_id,
        score=score,
        candidates=candidates,
    )
    if helpful is not None:
        database.record_rating(ids.answer_log_id, user_id, helpful)
    if at is not None:
        with database.session() as session:
            session.execute(
                update(QueryLog)
                .where(QueryLog.id == ids.query_log_id)
                .values(created_at=at)
            )
    return ids.query_log_id
