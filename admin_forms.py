"""Flask-WTF forms of the web admin; every state-changing form carries a CSRF token.

Labels and messages are in Russian: the admin is used by HR, IT support and office
managers, not developers.
"""

from __future__ import annotations

from datetime import date

from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (
    DateField,
    HiddenField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.i18n import get_translations
from wtforms.validators import (
    DataRequired,
    Length,
    Optional,
    StopValidation,
    ValidationError,
)

from admin_bbcode import MAX_MESSAGE_LENGTH
from faq_store import (
    MAX_CATEGORY_LENGTH,
    MAX_QUESTION_LENGTH,
    clean_line,
    clean_multiline,
)

NEW_CATEGORY = "__new__"

OUTCOME_LABELS = {
    "answered": "Ответил",
    "choices": "Предложил варианты",
    "no_answer": "Нет ответа",
    "smalltalk": "Светская беседа",
    "empty": "Пустое сообщение",
}
OUTCOME_FILTERS = {
    "": "Все",
    "answered": "Ответил",
    "choices": "Предложил варианты",
    "no_answer": "Нет ответа",
    "unhelpful": "Оценили «Не помогло»",
    "smalltalk": "Светская беседа",
}
PLATFORM_LABELS = {"bitrix24": "Битрикс24", "telegram": "Telegram", "web": "Веб"}
# the dates a filter takes: older or later ones are typos, and far-off ones
# overflow the date arithmetic of the period
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)
_RUSSIAN = get_translations(["ru"])


def options(pairs) -> list[SelectChoice]:
    """Turn (value, label) pairs into select options."""
    return [SelectChoice(value, label) for value, label in pairs]


def split_lines(text: str | None) -> list[str]:
    """Return the non-empty lines of `text`, cleaned, without repeats."""
    seen: set[str] = set()
    lines: list[str] = []
    for line in (text or "").splitlines():
        line = clean_line(line)
        if line and line.casefold() not in seen:
            seen.add(line.casefold())
            lines.append(line)
    return lines


def _line(value: str | None) -> str | None:
    """A filter: the text as it will be stored, so limits count what is kept."""
    return None if value is None else clean_line(value)


def _text(value: str | None) -> str | None:
    return None if value is None else clean_multiline(value)


class Form(FlaskForm):
    """A form whose built-in messages (of WTForms validators) are Russian too."""

    class Meta:
        def get_translations(self, form):
            return _RUSSIAN


class SignInForm(Form):
    username = StringField(
        "Логин",
        validators=[
            DataRequired("Введите логин."),
            Length(max=100, message="Логин не длиннее 100 символов."),
        ],
    )
    password = PasswordField(
        "Пароль",
        validators=[
            DataRequired("Введите пароль."),
            Length(max=200, message="Пароль не длиннее 200 символов."),
        ],
    )
    next = HiddenField()


class ActionForm(Form):
    """A form with nothing but the CSRF token: sign-out, delete, confirm."""


class FaqForm(Form):
    category = SelectField("Категория", choices=[], validate_choice=False)
    new_category = StringField(
        "Название новой категории",
        filters=[_line],
        validators=[
            Optional(),
            Length(max=MAX_CATEGORY_LENGTH, message="Не длиннее 100 символов."),
        ],
    )
    question = TextAreaField(
        "Вопрос",
        filters=[_line],
        validators=[
            DataRequired("Вопрос не может быть пустым."),
            Length(
                max=MAX_QUESTION_LENGTH,
                message=f"Вопрос не длиннее {MAX_QUESTION_LENGTH} символов.",
            ),
        ],
    )
    answer = TextAreaField(
        "Ответ",
        filters=[_text],
        validators=[
            DataRequired("Ответ не может быть пустым."),
            Length(
                max=MAX_MESSAGE_LENGTH,
                message=(
                    "Ответ длиннее 20 000 символов — это предел сообщения в "
                    "Битрикс24. Сократите его или разбейте на несколько записей."
                ),
            ),
        ],
    )
    phrasings = TextAreaField("Другие формулировки вопроса (по одной в строке)")
    # when the editor opened the entry: saving over a newer version is refused
    version = HiddenField()

    def validate_category(self, field: SelectField) -> None:
        if field.data == NEW_CATEGORY:
            if not (self.new_category.data or "").strip():
                raise ValidationError("Введите название новой категории.")
        elif not field.data:
            raise ValidationError("Выберите категорию или создайте новую.")
        elif field.data not in {str(choice.value) for choice in field.choices}:
            raise ValidationError("Такой категории больше нет, выберите другую.")

    def validate_phrasings(self, field: TextAreaField) -> None:
        for line in split_lines(field.data):
            if len(line) > MAX_QUESTION_LENGTH:
                raise ValidationError(
                    f"Каждая формулировка не длиннее {MAX_QUESTION_LENGTH} символов."
                )

    def category_name(self) -> str:
        """Return the chosen or newly typed category name."""
        if self.category.data == NEW_CATEGORY:
            return clean_line(self.new_category.data)
        labels = {str(choice.value): choice.label for choice in self.category.choices}
        return labels[self.category.data]


class CategoryForm(Form):
    name = StringField(
        "Название",
        filters=[_line],
        validators=[
            DataRequired("Название не может быть пустым."),
            Length(max=MAX_CATEGORY_LENGTH, message="Не длиннее 100 символов."),
        ],
    )


class PhrasingForm(Form):
    faq_id = SelectField("Запись FAQ", choices=[], coerce=int, validate_choice=False)
    texts = TextAreaField(
        "Формулировки (по одной в строке)",
        validators=[DataRequired("Введите хотя бы одну формулировку.")],
    )

    def validate_faq_id(self, field: SelectField) -> None:
        if not field.data:
            raise ValidationError("Выберите запись FAQ.")
        if field.data not in {c.value for c in field.choices}:
            raise ValidationError(
                f"Записи №{field.data} больше нет: её удалили, пока вы добавляли "
                "формулировки. Выберите другую запись."
            )


class ImportUploadForm(Form):
    file = FileField(
        "Файл CSV или XLSX",
        validators=[
            FileRequired("Выберите файл."),
            FileAllowed(["csv", "xlsx"], "Подходят только файлы .csv и .xlsx."),
        ],
    )


class ImportConfirmForm(Form):
    token = HiddenField(validators=[DataRequired("Загрузите файл ещё раз.")])


class TestChatForm(Form):
    question = TextAreaField(
        "Вопрос",
        validators=[
            DataRequired("Введите вопрос."),
            Length(max=MAX_MESSAGE_LENGTH, message="Слишком длинный вопрос."),
        ],
    )


class DayField(DateField):
    """A date of a filter, between FIRST_DAY and LAST_DAY, with Russian messages."""

    def process_formdata(self, valuelist) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError as exc:
            raise ValueError(
                f"Нет такой даты «{' '.join(valuelist)[:20]}»: укажите день "
                "в виде ГГГГ-ММ-ДД, например 2026-03-31."
            ) from exc

    def pre_validate(self, form) -> None:
        if self.data is not None and not FIRST_DAY <= self.data <= LAST_DAY:
            raise StopValidation(
                f"Дата должна быть между {FIRST_DAY:%d.%m.%Y} и {LAST_DAY:%d.%m.%Y}."
            )


class PeriodForm(Form):
    """Filters read from the query string; GET forms change nothing, so no CSRF.

    `notes` says how the period shown differs from the one asked for.
    """

    class Meta:
        csrf = False

    date_from = DayField("С", validators=[Optional()])
    date_to = DayField("По", validators=[Optional()])

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.notes: list[str] = []


class LogFilterForm(PeriodForm):
    platform = SelectField(
        "Платформа",
        choices=options([("", "Все"), *PLATFORM_LABELS.items()]),
        validators=[Optional()],
    )
    outcome = SelectField(
        "Что сделал бот",
        choices=options(OUTCOME_FILTERS.items()),
        validators=[Optional()],
    )
    q = StringField(
        "Текст содержит",
        validators=[
            Optional(),
            Length(max=200, message="Не длиннее 200 символов."),
        ],
    )
