"""Pages that learn from the logs: the question log, suggestions, statistics and
the test chat. All of them read only; the test chat writes no log either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta

from flask import Blueprint, Response, render_template, request
from flask_login import current_user

from admin_common import Page, services, to_local, today_local, utc_bounds
from admin_forms import (
    OUTCOME_LABELS,
    PLATFORM_LABELS,
    LogFilterForm,
    PeriodForm,
    TestChatForm,
)
from admin_queries import (
    DayStats,
    LogFilter,
    iter_logs,
    log_page,
    open_questions,
    statistics,
)
from admin_suggest import suggest
from admin_transfer import to_csv

logger = logging.getLogger(__name__)

insights = Blueprint("insights", __name__)

PAGE_SIZE = 50
MAX_PERIOD_DAYS = 366
LOG_COLUMNS = (
    "time",
    "platform",
    "user_id",
    "dialog_id",
    "question",
    "searched_text",
    "outcome",
    "faq_id",
    "faq_question",
    "score",
    "chosen_faq_id",
    "helpful",
    "unhelpful",
)


def _log_filter(form: LogFilterForm) -> LogFilter:
    start, end = utc_bounds(form.date_from.data, form.date_to.data)
    return LogFilter(
        start=start,
        end=end,
        platform=form.platform.data or None,
        outcome=form.outcome.data or None,
        text=(form.q.data or "").strip() or None,
    )


def _period(form: PeriodForm, default_days: int) -> tuple[date, date]:
    """The inclusive local dates of the form, or the last `default_days` days."""
    last = form.date_to.data or today_local()
    first = form.date_from.data or last - timedelta(days=default_days - 1)
    if first > last:
        first, last = last, first
    first = max(first, last - timedelta(days=MAX_PERIOD_DAYS - 1))
    form.date_from.data, form.date_to.data = first, last
    return first, last


# --------------------------------------------------------------------- logs


@insights.route("/logs")
def logs():
    form = LogFilterForm(request.args)
    if not form.validate():
        form = LogFilterForm()
    filters = _log_filter(form)
    number = max(1, request.args.get("page", 1, type=int))
    rows, total = log_page(
        services().database, filters, (number - 1) * PAGE_SIZE, PAGE_SIZE
    )
    page = Page(number, PAGE_SIZE, total)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "admin/logs.html", form=form, rows=rows, page=page, args=args
    )


@insights.route("/logs/export.csv")
def export_logs():
    form = LogFilterForm(request.args)
    if not form.validate():
        form = LogFilterForm()
    filters = _log_filter(form)
    rows = (
        (
            _iso(row.created_at),
            row.platform,
            row.user_id,
            row.dialog_id,
            row.text_raw,
            row.text_searched,
            row.outcome or "",
            row.faq_id or "",
            row.faq_question or "",
            "" if row.score is None else f"{row.score:.1f}",
            row.chosen_faq_id or "",
            row.helpful,
            row.unhelpful,
        )
        for row in iter_logs(services().database, filters)
    )
    body = to_csv(LOG_COLUMNS, rows)
    logger.info("question log exported by %s", current_user.username)
    return Response(
        body,
        mimetype="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": (
                f'attachment; filename="questions-{today_local():%Y-%m-%d}.csv"'
            )
        },
    )


def _iso(value) -> str:
    local = to_local(value)
    return local.isoformat(timespec="seconds") if local else ""


# -------------------------------------------------------------- suggestions


@insights.route("/suggestions")
def suggestions():
    form = PeriodForm(request.args)
    if not form.validate():
        form = PeriodForm()
    first, last = _period(form, 30)
    start, end = utc_bounds(first, last)
    database = services().database
    questions = open_questions(database, LogFilter(start=start, end=end))
    faq_questions = {r.id: r.question for r in database.list_faqs()}
    groups = suggest(questions, services().embedder, faq_questions)
    return render_template(
        "admin/suggestions.html",
        form=form,
        groups=groups,
        open_count=len(questions),
    )


# --------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Column:
    """One day of the chart: stacked segments from the bottom up."""

    day: date
    x: float
    segments: tuple[tuple[str, float, float, int], ...]
    total: int


CHART_HEIGHT = 180
CHART_WIDTH = 720


def day_columns(days: list[DayStats]) -> tuple[list[Column], int, float]:
    """Geometry of the questions-per-day chart: columns, the top value, a width."""
    top = max((d.questions for d in days), default=0) or 1
    step = CHART_WIDTH / max(len(days), 1)
    width = max(step * 0.7, 1.0)
    columns = []
    for n, day in enumerate(days):
        y = float(CHART_HEIGHT)
        segments = []
        for kind in ("answered", "choices", "no_answer"):
            value = getattr(day, kind)
            height = CHART_HEIGHT * value / top
            y -= height
            if value:
                segments.append((kind, round(y, 2), round(height, 2), value))
        columns.append(
            Column(day.day, round(n * step, 2), tuple(segments), day.questions)
        )
    return columns, top, round(width, 2)


@insights.route("/stats")
def stats():
    form = PeriodForm(request.args)
    if not form.validate():
        form = PeriodForm()
    first, last = _period(form, 30)
    start, end = utc_bounds(first, last)
    result = statistics(services().database, first, last, LogFilter(start, end))
    columns, top, width = day_columns(result.days)
    return render_template(
        "admin/stats.html",
        form=form,
        stats=result,
        columns=columns,
        chart_top=top,
        column_width=width,
        chart_height=CHART_HEIGHT,
        chart_width=CHART_WIDTH,
    )


# ---------------------------------------------------------------- test chat


@insights.route("/test-chat", methods=["GET", "POST"])
def test_chat():
    form = TestChatForm()
    reply = None
    if form.validate_on_submit():
        # FAQEngine.ask only searches and decides; nothing is logged, so the
        # test chat never shows up in the statistics
        reply = services().engine.ask(form.question.data)
        logger.info(
            "test chat by %s: outcome %s in %s ms",
            current_user.username,
            reply.outcome,
            reply.took_ms,
        )
    return render_template(
        "admin/test_chat.html",
        form=form,
        reply=reply,
        outcome_labels=OUTCOME_LABELS,
        platform_labels=PLATFORM_LABELS,
    )
