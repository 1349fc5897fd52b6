"""What the views of the web admin share: services, the role rule, times, pages."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar

from flask import abort, current_app
from flask_login import UserMixin, current_user

from config import Config
from database import AdminRole, AdminUserRecord, Database

logger = logging.getLogger(__name__)

EXTENSION_KEY = "faq_admin"
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class AdminServices:
    """Everything a request needs, built once by `create_app`."""

    config: Config
    database: Database
    engine: Any
    import_dir: Path
    # the index the admin writes after a change; None leaves it to the bot
    search: Any = None
    # failed sign-ins of this app (web_admin.SignInThrottle)
    throttle: Any = None

    @property
    def embedder(self) -> Any:
        """The engine's embedder, used to group questions by meaning."""
        return getattr(getattr(self.engine, "search", None), "embedder", None)


def services() -> AdminServices:
    return current_app.extensions[EXTENSION_KEY]


def index_changes() -> None:
    """Write the vectors of what was just saved; the bot syncs anyway if this fails."""
    search = services().search
    if search is None:
        return
    try:
        search.ensure_fresh()
    except Exception as exc:
        # the database is the source of truth: the bot's next search catches up
        logger.warning("faq index not updated after an edit: %s", exc, exc_info=True)


class AdminUser(UserMixin):
    """The signed-in account, as Flask-Login sees it."""

    def __init__(self, record: AdminUserRecord) -> None:
        self.record = record
        self.username = record.username
        self.role = AdminRole(record.role)

    def get_id(self) -> str:
        # the id carries a fingerprint of the password hash, so changing the
        # password ends every session signed in with the old one
        return f"{self.record.id}:{password_fingerprint(self.record.password_hash)}"

    @property
    def is_editor(self) -> bool:
        return self.role is AdminRole.EDITOR

    @property
    def role_label(self) -> str:
        return "редактор" if self.is_editor else "наблюдатель"


def password_fingerprint(password_hash: str) -> str:
    import hashlib

    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def editor_required(view: F) -> F:
    """Let only editors through; a viewer gets 403."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_authenticated or not current_user.is_editor:
            abort(403)
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


# ------------------------------------------------------------------- times
# the database keeps naive UTC; people read and filter in the server's local time


def local_zone():
    return datetime.now().astimezone().tzinfo


def to_local(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC).astimezone(local_zone())


def utc_bounds(
    date_from: date | None, date_to: date | None
) -> tuple[datetime | None, datetime | None]:
    """Turn an inclusive range of local dates into naive UTC [start, end).

    The forms keep dates to a sane range; a bound at the very edge of what
    `date` holds becomes no bound rather than an OverflowError.
    """

    def to_utc(day: date, days_after: int = 0) -> datetime | None:
        try:
            local = datetime.combine(
                day + timedelta(days=days_after), time.min, tzinfo=local_zone()
            )
            return local.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            return None

    start = to_utc(date_from) if date_from else None
    end = to_utc(date_to, 1) if date_to else None
    return start, end


def plural(count: int, one: str, few: str, many: str) -> str:
    """The Russian form of a noun for `count`: 1 запись, 2 записи, 5 записей."""
    tens, units = count % 100, count % 10
    if units == 1 and tens != 11:
        return one
    if 2 <= units <= 4 and not 12 <= tens <= 14:
        return few
    return many


def today_local() -> date:
    return datetime.now(local_zone()).date()


@dataclass(frozen=True)
class Page:
    """One page of a long list, for the pager under a table."""

    number: int
    size: int
    total: int

    @property
    def count(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def has_prev(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.count
