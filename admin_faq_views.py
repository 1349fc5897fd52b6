"""FAQ pages of the web admin: entries, categories, phrasings, import and export.

Every change goes through `Database` methods, which check it (a question or
phrasing of another entry included) and bump the FAQ revision, so the bot
answers with it from its next question on.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import asdict
from datetime import datetime

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user

from admin_bbcode import MAX_MESSAGE_LENGTH, render_bbcode
from admin_common import editor_required, index_changes, services, today_local
from admin_forms import (
    NEW_CATEGORY,
    ActionForm,
    CategoryForm,
    FaqForm,
    ImportConfirmForm,
    ImportUploadForm,
    PhrasingForm,
    options,
    split_lines,
)
from admin_queries import query_texts, top_candidate
from admin_transfer import (
    EXPORT_COLUMNS,
    Action,
    ImportFormatError,
    ImportRow,
    faq_table,
    parse_upload,
    plan_import,
    to_csv,
    to_xlsx,
)
from database import DuplicateQuestionError, FaqRecord, ValidationError
from faq_store import StaleEntryError, clean_multiline
from models import parse_id

logger = logging.getLogger(__name__)

faq = Blueprint("faq", __name__)

SAVED_NOTE = "Бот отвечает по-новому со следующего вопроса."
IMPORT_TTL_SECONDS = 24 * 3600


def _log_ids() -> list[int]:
    ids = (parse_id(v) for v in request.args.getlist("log"))
    return [i for i in ids if i is not None][:50]


def _get_faq_or_404(faq_id: int) -> FaqRecord:
    record = services().database.get_faq(faq_id)
    if record is None:
        abort(404)
    return record


# ------------------------------------------------------------------ entries


@faq.route("/faq")
def list_faqs():
    database = services().database
    categories = database.list_categories()
    category_id = request.args.get("category", type=parse_id)
    search = (request.args.get("q") or "").strip()[:200]
    records = database.list_faqs(category_id=category_id, search=search or None)
    return render_template(
        "admin/faq_list.html",
        records=records,
        categories=categories,
        category_id=category_id,
        search=search,
        total=sum(c.faq_count for c in categories),
    )


def _category_choices(form: FaqForm) -> None:
    categories = services().database.list_categories()
    form.category.choices = options(
        [
            ("", "— выберите категорию —"),
            *((str(c.id), c.name) for c in categories),
            (NEW_CATEGORY, "+ Новая категория…"),
        ]
    )


def _version(record: FaqRecord) -> str:
    return record.updated_at.isoformat()


def _opened_version(form: FaqForm) -> datetime | None:
    """When the entry was as the editor saw it; None for a form without one."""
    try:
        return datetime.fromisoformat(form.version.data or "")
    except ValueError:
        return None


def _save(form: FaqForm, record: FaqRecord | None) -> FaqRecord | None:
    """Store the form; None when the database refuses it, with the reasons shown.

    StaleEntryError is left to the caller, which shows the entry as it is now.
    """
    database = services().database
    phrasings = split_lines(form.phrasings.data)
    if form.category.data == NEW_CATEGORY:
        category: str | int = form.category_name()
    else:
        category = int(form.category.data)
    try:
        if record is None:
            return database.add_faq(
                form.question.data, form.answer.data, category, phrasings=phrasings
            )
        return database.update_faq(
            record.id,
            question=form.question.data,
            answer=form.answer.data,
            category=category,
            phrasings=phrasings,
            expected_updated_at=_opened_version(form),
        )
    except StaleEntryError:
        raise
    except DuplicateQuestionError as exc:
        if exc.question_message:
            form.question.errors.append(exc.question_message)
        form.phrasings.errors.extend(d.message() for d in exc.phrasings)
        return None
    except ValidationError as exc:
        _field_errors(form, exc.field).append(str(exc))
        return None


def _field_errors(form: FaqForm, name: str | None) -> list[str]:
    """The error list of the form field a storage error is about."""
    if name == "category":
        new = form.category.data == NEW_CATEGORY
        return (form.new_category if new else form.category).errors
    field = {
        "question": form.question,
        "answer": form.answer,
        "phrasings": form.phrasings,
    }.get(name or "", form.question)
    return field.errors


@faq.route("/faq/new", methods=["GET", "POST"])
@editor_required
def new_faq():
    form = FaqForm()
    _category_choices(form)
    if request.method == "GET":
        texts = query_texts(services().database, _log_ids())
        question = request.args.get("question") or (texts[0] if texts else "")
        form.question.data = question[:1000]
        form.phrasings.data = "\n".join(t for t in texts if t != question)
        category = request.args.get("category", "")
        if category.isdigit():
            form.category.data = category
    if form.validate_on_submit():
        record = _save(form, None)
        if record is not None:
            logger.info("faq %s added by %s", record.id, current_user.username)
            index_changes()
            flash(f"Запись №{record.id} добавлена. {SAVED_NOTE}", "success")
            return redirect(url_for("faq.list_faqs", _anchor=f"faq-{record.id}"))
    return render_template("admin/faq_form.html", form=form, record=None)


@faq.route("/faq/<int:faq_id>/edit", methods=["GET", "POST"])
@editor_required
def edit_faq(faq_id: int):
    record = _get_faq_or_404(faq_id)
    form = FaqForm()
    _category_choices(form)
    current = None
    if request.method == "GET":
        form.category.data = str(record.category_id)
        form.question.data = record.question
        form.answer.data = record.answer
        form.phrasings.data = "\n".join(record.phrasings)
        form.version.data = _version(record)
    if form.validate_on_submit():
        try:
            saved = _save(form, record)
        except StaleEntryError as exc:
            logger.info(
                "faq %s: stale edit by %s refused", faq_id, current_user.username
            )
            current = _get_faq_or_404(faq_id)
            # the next save is made knowing the current text, so it may win
            form.version.data = _version(current)
            flash(str(exc), "error")
        else:
            if saved is not None:
                logger.info("faq %s edited by %s", faq_id, current_user.username)
                index_changes()
                flash(f"Запись №{faq_id} сохранена. {SAVED_NOTE}", "success")
                return redirect(url_for("faq.list_faqs", _anchor=f"faq-{faq_id}"))
    return render_template(
        "admin/faq_form.html", form=form, record=current or record, current=current
    )


@faq.route("/faq/<int:faq_id>/delete", methods=["GET", "POST"])
@editor_required
def delete_faq(faq_id: int):
    record = _get_faq_or_404(faq_id)
    form = ActionForm()
    if form.validate_on_submit():
        services().database.delete_faq(faq_id)
        logger.info("faq %s deleted by %s", faq_id, current_user.username)
        index_changes()
        flash(f"Запись №{faq_id} удалена. Бот больше не предлагает её.", "success")
        return redirect(url_for("faq.list_faqs"))
    return render_template("admin/faq_delete.html", form=form, record=record)


@faq.route("/faq/preview", methods=["POST"])
@editor_required
def preview():
    answer = request.form.get("answer", "")
    return jsonify(
        html=str(render_bbcode(answer)),
        # counted as it is stored, so the counter and the limit agree
        length=len(clean_multiline(answer)),
        limit=MAX_MESSAGE_LENGTH,
    )


# --------------------------------------------------------------- categories


@faq.route("/categories", methods=["GET", "POST"])
def categories():
    database = services().database
    form = CategoryForm(prefix="new")
    if request.method == "POST":
        if not current_user.is_editor:
            abort(403)
        if form.validate_on_submit():
            try:
                category = database.add_category(form.name.data)
            except ValidationError as exc:
                form.name.errors.append(str(exc))
            else:
                flash(f"Категория «{category.name}» создана.", "success")
                return redirect(url_for("faq.categories"))
    return render_template(
        "admin/categories.html", categories=database.list_categories(), form=form
    )


@faq.route("/categories/<int:category_id>/rename", methods=["POST"])
@editor_required
def rename_category(category_id: int):
    form = CategoryForm(prefix=f"c{category_id}")
    if form.validate_on_submit():
        try:
            category = services().database.rename_category(category_id, form.name.data)
        except ValidationError as exc:
            flash(str(exc), "error")
        else:
            flash(f"Категория переименована в «{category.name}».", "success")
    else:
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
    return redirect(url_for("faq.categories"))


@faq.route("/categories/<int:category_id>/delete", methods=["POST"])
@editor_required
def delete_category(category_id: int):
    form = ActionForm()
    if form.validate_on_submit():
        try:
            services().database.delete_category(category_id)
        except ValidationError as exc:
            flash(str(exc), "error")
        else:
            flash("Категория удалена.", "success")
    return redirect(url_for("faq.categories"))


# ---------------------------------------------------- phrasings from the logs


@faq.route("/faq/phrasings", methods=["GET", "POST"])
@editor_required
def add_phrasings():
    database = services().database
    records = database.list_faqs()
    form = PhrasingForm()
    form.faq_id.choices = options(
        [(0, "— выберите запись —")]
        + [(r.id, f"№{r.id} · {r.category} · {r.question[:90]}") for r in records]
    )
    if request.method == "GET":
        log_ids = _log_ids()
        form.texts.data = "\n".join(query_texts(database, log_ids))
        suggested = request.args.get("faq", type=parse_id) or top_candidate(
            database, log_ids
        )
        form.faq_id.data = suggested or 0
    if form.validate_on_submit():
        target = next(r for r in records if r.id == form.faq_id.data)
        texts = split_lines(form.texts.data)
        try:
            database.update_faq(
                target.id,
                phrasings=[*target.phrasings, *texts],
                expected_updated_at=target.updated_at,
            )
        except StaleEntryError:
            form.texts.errors.append(
                f"Запись №{target.id} только что изменил кто-то другой: "
                "отправьте формулировки ещё раз."
            )
        except DuplicateQuestionError as exc:
            form.texts.errors.extend(d.message() for d in exc.phrasings)
        except ValidationError as exc:
            form.texts.errors.append(str(exc))
        else:
            logger.info(
                "%s phrasings added to faq %s by %s",
                len(texts),
                target.id,
                current_user.username,
            )
            index_changes()
            flash(
                f"Формулировки добавлены к записи №{target.id}. {SAVED_NOTE}",
                "success",
            )
            return redirect(url_for("faq.edit_faq", faq_id=target.id))
    return render_template("admin/phrasings.html", form=form)


# -------------------------------------------------------- import and export


def _import_path(token: str):
    return services().import_dir / f"{token}.json"


def _forget_old_imports() -> None:
    folder = services().import_dir
    if not folder.is_dir():
        return
    for path in folder.glob("*.json"):
        if time.time() - path.stat().st_mtime > IMPORT_TTL_SECONDS:
            path.unlink(missing_ok=True)


def _load_rows(token: str) -> list[ImportRow] | None:
    if not token or token != session.get("import_token"):
        return None
    path = _import_path(token)
    if not path.is_file():
        return None
    rows = []
    for data in json.loads(path.read_text(encoding="utf-8")):
        if data["phrasings"] is not None:
            data["phrasings"] = tuple(data["phrasings"])
        rows.append(ImportRow(**data))
    return rows


@faq.route("/import", methods=["GET", "POST"])
@editor_required
def import_faq():
    form = ImportUploadForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            rows = parse_upload(upload.filename or "", upload.read())
        except ImportFormatError as exc:
            form.file.errors.append(str(exc))
        else:
            _forget_old_imports()
            token = secrets.token_urlsafe(16)
            services().import_dir.mkdir(parents=True, exist_ok=True)
            _import_path(token).write_text(
                json.dumps([asdict(row) for row in rows], ensure_ascii=False),
                encoding="utf-8",
            )
            session["import_token"] = token
            plan = plan_import(rows, services().database.list_faqs())
            logger.info(
                "import of %s rows previewed by %s", len(rows), current_user.username
            )
            return render_template(
                "admin/import_preview.html",
                plan=plan,
                Action=Action,
                filename=upload.filename,
                confirm=ImportConfirmForm(token=token),
            )
    return render_template("admin/import.html", form=form)


@faq.route("/import/confirm", methods=["POST"])
@editor_required
def confirm_import():
    form = ImportConfirmForm()
    rows = _load_rows(form.token.data) if form.validate_on_submit() else None
    if rows is None:
        flash("Предпросмотр устарел: загрузите файл ещё раз.", "error")
        return redirect(url_for("faq.import_faq"))
    database = services().database
    plan = plan_import(rows, database.list_faqs())
    try:
        result = database.apply_faq_import(plan.faq_rows())
    except ValidationError as exc:
        logger.warning("import by %s refused: %s", current_user.username, exc)
        flash(f"Импорт не выполнен, ничего не изменено: {exc}", "error")
        return redirect(url_for("faq.import_faq"))
    _import_path(form.token.data).unlink(missing_ok=True)
    session.pop("import_token", None)
    rejected = len(plan.of(Action.REJECT))
    logger.info(
        "import by %s: %s added, %s changed, %s rejected",
        current_user.username,
        result.added,
        result.changed,
        rejected,
    )
    index_changes()
    flash(
        f"Импорт выполнен: добавлено {result.added}, изменено {result.changed}, "
        f"отклонено {rejected}. {SAVED_NOTE}",
        "success",
    )
    return redirect(url_for("faq.list_faqs"))


@faq.route("/export")
def export_faq():
    fmt = request.args.get("format", "csv")
    rows = faq_table(services().database.list_faqs())
    name = f"faq-{today_local():%Y-%m-%d}"
    if fmt == "xlsx":
        body = to_xlsx(EXPORT_COLUMNS, rows, "FAQ")
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    elif fmt == "csv":
        body = to_csv(EXPORT_COLUMNS, rows)
        mimetype = "text/csv; charset=utf-8"
    else:
        abort(404)
    return Response(
        body,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )
