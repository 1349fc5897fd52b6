"""Web admin of the FAQ bot: keep the FAQ, read the logs, learn from them.

    python web_admin.py                          serve on ADMIN_HOST:ADMIN_PORT
    python web_admin.py create-admin NAME [--role editor|viewer] [--password-stdin]
    python web_admin.py set-password NAME [--password-stdin]

Production runs it under gunicorn: gunicorn -b 127.0.0.1:5003 'web_admin:create_app()'.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import sys
import threading
import time
from collections import deque
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter
from werkzeug.security import check_password_hash, generate_password_hash

from admin_bbcode import render_bbcode, strip_bbcode
from admin_common import (
    EXTENSION_KEY,
    AdminServices,
    AdminUser,
    password_fingerprint,
    plural,
    services,
    to_local,
)
from admin_forms import OUTCOME_LABELS, PLATFORM_LABELS, ActionForm, SignInForm
from config import Config, ConfigError, load_config
from database import AdminRole, Database, ValidationError
from faq_core import build_engine
from logging_config import configure_root_logger
from models import MAX_ID

logger = logging.getLogger(__name__)

SECRET_KEY_FILE = "admin_secret_key"
SESSION_LIFETIME = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 10
# sign-in attempts allowed per user name and address within the window
MAX_FAILED_SIGN_INS = 5
FAILED_SIGN_IN_WINDOW = 15 * 60
# a valid hash to check against when the user does not exist, so a wrong name
# takes as long as a wrong password
_DUMMY_HASH = generate_password_hash(secrets.token_hex(16))

auth = Blueprint("auth", __name__)


class RowIdConverter(IntegerConverter):
    """`<int:...>` limited to the ids a database can hold."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def create_app(
    config: Config | None = None,
    *,
    database: Database | None = None,
    engine: object | None = None,
) -> Flask:
    """Build the admin app; the database and FAQ engine are made unless given."""
    if config is None:
        # gunicorn's 'web_admin:create_app()': logging is set up here, as the bot does
        config = load_config()
        configure_root_logger(config.log_level)
    if database is None:
        database = Database(config.database_url)
        database.init_schema()
    search = None
    if engine is None:
        # the admin writes the vectors of what it saves, so the bot's next
        # question need not; an engine passed in (tests) keeps its own index
        search, engine = build_engine(config, database)

    app = Flask(__name__, static_url_path="/static")
    # every <int:...> in a route names a row: a number no database can store
    # is a 404, not an overflow in the query
    app.url_map.converters["int"] = RowIdConverter
    app.config.update(
        SECRET_KEY=config.admin_secret_key or _stored_secret_key(config.data_dir),
        MAX_CONTENT_LENGTH=config.max_content_length,
        MAX_FORM_MEMORY_SIZE=config.max_content_length,
        SESSION_COOKIE_NAME="faq_admin_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.admin_cookie_secure,
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
    )
    app.extensions[EXTENSION_KEY] = AdminServices(
        config=config,
        database=database,
        engine=engine,
        import_dir=config.data_dir / "admin_imports",
        search=search,
        throttle=SignInThrottle(MAX_FAILED_SIGN_INS, FAILED_SIGN_IN_WINDOW),
    )

    CSRFProtect(app)
    _setup_login(app)
    _setup_templates(app)
    _setup_errors(app)
    app.after_request(_security_headers)

    from admin_faq_views import faq
    from admin_log_views import insights

    app.register_blueprint(auth)
    app.register_blueprint(faq)
    app.register_blueprint(insights)
    logger.info("web admin ready on %s", database)
    return app


def _stored_secret_key(data_dir: Path) -> str:
    """Read the session key kept in the data folder, creating it on first start."""
    path = data_dir / SECRET_KEY_FILE
    if path.is_file():
        key = path.read_text(encoding="ascii").strip()
        if key:
            return key
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    os.chmod(path, 0o600)
    logger.info("generated a new admin session key in %s", path)
    return key


# ------------------------------------------------------------------ sign-in


def _setup_login(app: Flask) -> None:
    manager = LoginManager(app)
    manager.login_view = "auth.sign_in"
    manager.login_message = "Войдите, чтобы продолжить."
    manager.login_message_category = "info"

    @manager.user_loader
    def load_user(user_id: str) -> AdminUser | None:
        raw_id, _, fingerprint = user_id.partition(":")
        if not raw_id.isdigit():
            return None
        record = services().database.get_admin_user_by_id(int(raw_id))
        if record is None or password_fingerprint(record.password_hash) != fingerprint:
            return None
        return AdminUser(record)

    @app.before_request
    def require_sign_in():
        if request.endpoint in ("auth.sign_in", "static"):
            return None
        if not current_user.is_authenticated:
            return manager.unauthorized()
        return None


class SignInThrottle:
    """Counts failed sign-ins per name and address; too many lock them a while."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and now - failures[0] > self.window:
            failures.popleft()
        return failures

    def blocked(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return len(self._recent(key, time.monotonic())) >= self.limit

    def failed(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._recent(key, time.monotonic()).append(time.monotonic())

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)


def safe_next(target: str | None) -> str | None:
    """Return `target` if it is a path on this site, else None."""
    if not target:
        return None
    target = target.strip()
    parts = urlsplit(target)
    if (
        parts.scheme
        or parts.netloc
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or any(ord(ch) < 32 for ch in target)
    ):
        return None
    return target


@auth.route("/login", methods=["GET", "POST"])
def sign_in():
    if current_user.is_authenticated:
        return redirect(url_for("faq.list_faqs"))
    form = SignInForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    if form.validate_on_submit():
        username = form.username.data.strip()
        key = (username.casefold(), request.remote_addr or "")
        if services().throttle.blocked(key):
            logger.warning("sign-in for %r from %s throttled", username, key[1])
            form.password.errors.append(
                "Слишком много неудачных попыток. Подождите 15 минут."
            )
            return render_template("admin/login.html", form=form), 429
        record = services().database.get_admin_user(username)
        password_ok = check_password_hash(
            record.password_hash if record else _DUMMY_HASH, form.password.data
        )
        if record is None or not password_ok:
            services().throttle.failed(key)
            logger.info("failed sign-in for %r from %s", username, key[1])
            form.password.errors.append("Неверный логин или пароль.")
            return render_template("admin/login.html", form=form), 401
        services().throttle.succeeded(key)
        session.clear()
        session.permanent = True
        login_user(AdminUser(record))
        services().database.touch_login(record.id)
        logger.info("admin user %s signed in as %s", record.username, record.role)
        return redirect(safe_next(form.next.data) or url_for("faq.list_faqs"))
    return render_template("admin/login.html", form=form)


@auth.route("/logout", methods=["POST"])
def sign_out():
    form = ActionForm()
    if form.validate_on_submit():
        logger.info("admin user %s signed out", current_user.username)
        logout_user()
        session.clear()
        flash("Вы вышли из админки.", "info")
    return redirect(url_for("auth.sign_in"))


@auth.route("/")
def home():
    return redirect(url_for("faq.list_faqs"))


# -------------------------------------------------------- templates, errors


def _setup_templates(app: Flask) -> None:
    app.jinja_env.filters["bbcode"] = render_bbcode
    app.jinja_env.filters["plain"] = strip_bbcode
    app.jinja_env.filters["localtime"] = _format_time
    app.jinja_env.globals["plural"] = plural
    app.jinja_env.globals.update(
        OUTCOME_LABELS=OUTCOME_LABELS,
        PLATFORM_LABELS=PLATFORM_LABELS,
    )


def _format_time(value, pattern: str = "%d.%m.%Y %H:%M") -> str:
    local = to_local(value)
    return local.strftime(pattern) if local else ""


ERROR_TEXTS = {
    400: (
        "Неверный запрос",
        "Запрос не удалось разобрать. Вернитесь и попробуйте ещё раз.",
    ),
    403: ("Нет доступа", "Это действие доступно только редакторам FAQ."),
    404: ("Страница не найдена", "Такой страницы нет или запись уже удалили."),
    405: ("Так нельзя", "Эту страницу нельзя открыть таким способом."),
    413: (
        "Слишком большой объём данных",
        "Файл или текст больше допустимого. Для импорта разбейте файл на части; "
        "ответ в FAQ не может быть длиннее 20 000 символов.",
    ),
    500: ("Ошибка на сервере", "Что-то пошло не так. Попробуйте ещё раз чуть позже."),
}


def _setup_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        logger.warning("csrf check failed on %s: %s", request.path, error.description)
        return (
            render_template(
                "admin/error.html",
                title="Форма устарела",
                message="Обновите страницу и отправьте форму ещё раз.",
                code=400,
            ),
            400,
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = error.code or 500
        if code == 413:
            logger.warning(
                "request body too large on %s (%s bytes)",
                request.path,
                request.content_length,
            )
        title, message = ERROR_TEXTS.get(code, (error.name, error.description or ""))
        page = render_template(
            "admin/error.html", title=title, message=message, code=code
        )
        return page, code

    @app.errorhandler(ValidationError)
    def validation_error(error: ValidationError):
        return (
            render_template(
                "admin/error.html", title="Не удалось сохранить", message=str(error)
            ),
            400,
        )


def _security_headers(response):
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; object-src 'none'",
    )
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


# ---------------------------------------------------------------------- CLI


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Пароль: ")
    if first != getpass.getpass("Пароль ещё раз: "):
        raise SystemExit("Пароли не совпадают.")
    return first


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise SystemExit(
            f"Пароль слишком короткий: нужно не меньше {MIN_PASSWORD_LENGTH} символов."
        )


def create_admin(database: Database, username: str, password: str, role: str) -> None:
    """Create an admin account with a hashed password."""
    _check_password(password)
    try:
        database.create_admin_user(username, generate_password_hash(password), role)
    except ValidationError as exc:
        raise SystemExit(str(exc)) from exc
    logger.info("admin user %s created with role %s", username, role)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Веб-админка FAQ-бота")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="запустить админку (по умолчанию)")
    create = commands.add_parser("create-admin", help="создать учётную запись")
    create.add_argument("username")
    create.add_argument(
        "--role",
        choices=[role.value for role in AdminRole],
        default=AdminRole.EDITOR.value,
        help="editor меняет FAQ, viewer только смотрит (по умолчанию editor)",
    )
    create.add_argument("--password-stdin", action="store_true")
    reset = commands.add_parser("set-password", help="сменить пароль")
    reset.add_argument("username")
    reset.add_argument("--password-stdin", action="store_true")
    args = parser.parse_args(argv)

    try:
        config = load_config()
    except ConfigError as exc:
        print(f"Ошибка настройки: {exc}", file=sys.stderr)
        return 2
    configure_root_logger(config.log_level)

    if args.command in ("create-admin", "set-password"):
        database = Database(config.database_url)
        database.init_schema()
        password = _read_password(args.password_stdin)
        if args.command == "create-admin":
            create_admin(database, args.username, password, args.role)
            print(f"Учётная запись «{args.username}» ({args.role}) создана.")
        else:
            record = database.get_admin_user(args.username)
            if record is None:
                raise SystemExit(f"Пользователя «{args.username}» нет.")
            _check_password(password)
            database.set_admin_password(record.id, generate_password_hash(password))
            print(f"Пароль «{args.username}» изменён.")
        return 0

    app = create_app(config)
    logger.info(
        "web admin listening on http://%s:%s", config.admin_host, config.admin_port
    )
    app.run(host=config.admin_host, port=config.admin_port, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
