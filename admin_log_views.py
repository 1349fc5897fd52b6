"""Pages that learn from the logs: the question log, suggestions, statistics and
the test chat. All of them read only; the test chat writes no log either.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import pygal
from flask import Blueprint, Response, render_template, request
from flask_login import current_user
from markupsafe import Markup
from pygal.etree import etree
from pygal.style import Style

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
from models import parse_id

logger = logging.getLogger(__name__)

insights = Blueprint("insights", __name__)

PAGE_SIZE = 50
# far past any real log, and small enough that its offset fits every database
MAX_PAGE = 10**9
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


def _checked(form: PeriodForm) -> PeriodForm:
    """Validate the filters of the query string the same way on every page.

    A filter that is wrong keeps its message, to show next to it, and falls
    back to its default, so the page still opens; a reversed period is turned
    round, and the form says so.
    """
    if not form.validate():
        for item in form:
            if item.errors:
                item.data = item.default
                item.raw_data = None
    first, last = form.date_from.data, form.date_to.data
    if first and last and first > last:
        _show_period(form, last, first)
        form.notes.append(
            f"Даты шли в обратном порядке: показано с {last:%d.%m.%Y} "
            f"по {first:%d.%m.%Y}."
        )
    return form


def _show_period(form: PeriodForm, first: date | None, last: date | None) -> None:
    form.date_from.data, form.date_to.data = first, last
    # the inputs show the dates used, not the ones typed
    form.date_from.raw_data = form.date_to.raw_data = None


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
    """The inclusive local dates of the form, or the last `default_days` days.

    The form is `_checked` already, so both dates are in order and in range.
    """
    last = form.date_to.data or today_local()
    first = form.date_from.data or last - timedelta(days=default_days - 1)
    first = min(first, last)
    longest = last - timedelta(days=MAX_PERIOD_DAYS - 1)
    if first < longest:
        form.notes.append(
            f"Период не длиннее {MAX_PERIOD_DAYS} дней: показано с "
            f"{longest:%d.%m.%Y} по {last:%d.%m.%Y}."
        )
        first = longest
    _show_period(form, first, last)
    return first, last


# --------------------------------------------------------------------- logs


@insights.route("/logs")
def logs():
    form = _checked(LogFilterForm(request.args))
    filters = _log_filter(form)
    # a page past the end shows the last one; a huge number must not reach SQL
    number = request.args.get("page", type=parse_id) or 1
    number = min(number, MAX_PAGE)
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
    form = _checked(LogFilterForm(request.args))
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
    form = _checked(PeriodForm(request.args))
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


# the colours of static/admin/admin.css: --good, --info, --bad for the series
CHART_STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#1f2933",
    foreground_strong="#1f2933",
    foreground_subtle="#6b7785",
    font_family='system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif',
    colors=("#1f9d55", "#d99a00", "#d64545"),
    opacity="1",
    opacity_hover=".8",
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=13,
    no_data_font_size=18,
    guide_stroke_color="#dde3ea",
    major_guide_stroke_color="#dde3ea",
    guide_stroke_dasharray="none",
    major_guide_stroke_dasharray="none",
)
CHART_SERIES = (
    ("answered", "ответил"),
    ("choices", "предложил варианты"),
    ("no_answer", "нет ответа"),
)


def _tag(element) -> str:
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _static_svg(title: str):
    """An xml filter: pygal's tree without its script, with titles to read.

    pygal always writes an inline config script for its tooltips; the pages'
    Content-Security-Policy would block it, so it goes. Native <title>s give
    each bar a tooltip without any script, and the chart an accessible name;
    zero-height bars go too.
    """

    def apply(root):
        root.set("role", "img")
        root.set("aria-label", title)
        for parent in list(root.iter()):
            for child in list(parent):
                if _tag(child) == "script":
                    parent.remove(child)
                elif _tag(child) == "title" and parent is root:
                    child.text = title
        for series in root.iter():
            names = series.get("class", "").split()
            if "series" not in names:
                continue
            index = next(int(n[6:]) for n in names if n.startswith("serie-"))
            for bars in list(series.iter()):
                for bar in list(bars):
                    desc = {d.get("class"): d.text for d in bar if _tag(d) == "desc"}
                    if desc.get("value") == "0":  # an empty segment: less to send
                        bars.remove(bar)
                    elif "value" in desc:
                        label = etree.SubElement(bar, "title")
                        name = CHART_SERIES[index][1]
                        label.text = f"{desc['x_label']}: {name} — {desc['value']}"
        return root

    return apply


def _count_ticks(top: int) -> list[int]:
    """Whole-number y ticks, about five, up to at least top (counts, not 0.8)."""
    step = next(n * 10**k for k in range(12) for n in (1, 2, 5) if 5 * n * 10**k >= top)
    return list(range(0, top + step, step))


def questions_chart(days: list[DayStats]) -> Markup:
    """The questions-per-day stacked bar chart, as inline SVG drawn by pygal.

    Everything pygal writes as text is escaped by its XML serializer, so the
    markup is safe to embed in the page.
    """
    title = "Вопросов в день"
    if days:
        title += f" с {days[0].day:%d.%m.%Y} по {days[-1].day:%d.%m.%Y}"
    chart = pygal.StackedBar(
        style=CHART_STYLE,
        js=[],
        disable_xml_declaration=True,
        width=900,
        height=300,
        margin=8,
        legend_at_bottom=True,
        legend_at_bottom_columns=3,
        truncate_legend=-1,
        truncate_label=-1,
        x_labels=[d.day.strftime("%d.%m") for d in days],
        x_labels_major_every=len(days) // 12 + 1,
        show_minor_x_labels=len(days) <= 16,
        no_data_text="Нет вопросов за этот период",
    )
    chart.add_xml_filter(_static_svg(title))
    # with no series pygal shows its no-data text; its 0–1 scale would only
    # distract then (and y_labels break its rendering without data)
    top = max((d.questions for d in days), default=0)
    if not top:
        chart.show_y_labels = chart.show_y_guides = False
        chart.height = 120
    else:
        chart.y_labels = _count_ticks(top)
        for kind, name in CHART_SERIES:
            chart.add(name, [getattr(d, kind) for d in days])
    return Markup(chart.render())


@insights.route("/stats")
def stats():
    form = _checked(PeriodForm(request.args))
    first, last = _period(form, 30)
    start, end = utc_bounds(first, last)
    result = statistics(services().database, first, last, LogFilter(start, end))
    return render_template(
        "admin/stats.html",
        form=form,
        stats=result,
        questions_chart=questions_chart(result.days),
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
