"""Flask-WTF forms of the web admin; every state-changing form carries a CSRF token.

Labels and messages are in Russian: the admin is used by HR, IT support and office
managers, not developers.
"""

from __future__ import annotations

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
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from admin_bbcode import MAX_MESSAGE_LENGTH
from faq_store import MAX_CATEGORY_LENGTH, MAX_QUESTION_LENGTH

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


def options(pairs) -> list[SelectChoice]:
    """Turn (value, label) pairs into select options."""
    return [SelectChoice(value, label) for value, label in pairs]


def split_lines(text: str | None) -> list[str]:
    """Return the non-empty lines of `text`, stripped, without repeats."""
    seen: set[str] = set()
    lines: list[str] = []
    for line in (text or "").splitlines():
        line = " ".join(line.split())
        if line and line.casefold() not in seen:
            seen.add(line.casefold())
            lines.append(line)
    return lines


class SignInForm(FlaskForm):
    username = StringField(
        "Логин", validators=[DataRequired("Введите логин."), Length(max=100)]
    )
    password = PasswordField(
        "Пароль", validators=[DataRequired("Введите пароль."), Length(max=200)]
    )
    next = HiddenField()


class ActionForm(FlaskForm):
    """A form with nothing but the CSRF token: sign-out, delete, confirm."""


class FaqForm(FlaskForm):
    category = SelectField("Категория", choices=[], validate_choice=False)
    new_category = StringField(
        "Название новой категории",
        validators=[
            Optional(),
            Length(max=MAX_CATEGORY_LENGTH, message="Не длиннее 100 символов."),
        ],
    )
    question = TextAreaField(
        "Вопрос",
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
            return " ".join((self.new_category.data or "").split())
        labels = {str(choice.value): choice.label for choice in self.category.choices}
        return labels[self.category.data]


class CategoryForm(FlaskForm):
    name = StringField(
        "Название",
        validators=[
            DataRequired("Название не может быть пустым."),
            Length(max=MAX_CATEGORY_LENGTH, message="Не длиннее 100 символов."),
        ],
    )


class PhrasingForm(FlaskForm):
    faq_id = SelectField("Запись FAQ", choices=[], coerce=int, validate_choice=False)
    texts = TextAreaField(
        "Формулировки (по одной в строке)",
        validators=[DataRequired("Введите хотя бы одну формулировку.")],
    )

    def validate_faq_id(self, field: SelectField) -> None:
        if not field.data or field.data not in {c.value for c in field.choices}:
            raise ValidationError("Выберите запись FAQ.")


class ImportUploadForm(FlaskForm):
    file = FileField(
        "Файл CSV или XLSX",
        validators=[
            FileRequired("Выберите файл."),
            FileAllowed(["csv", "xlsx"], "Подходят только файлы .csv и .xlsx."),
        ],
    )


class ImportConfirmForm(FlaskForm):
    token = HiddenField(validators=[DataRequired()])


class TestChatForm(FlaskForm):
    question = TextAreaField(
        "Вопрос",
        validators=[
            DataRequired("Введите вопрос."),
            Length(max=MAX_MESSAGE_LENGTH, message="Слишком длинный вопрос."),
        ],
    )


class LogFilterForm(FlaskForm):
    """Filters read from the query string; GET forms change nothing, so no CSRF."""

    class Meta:
        csrf = False

    date_from = DateField("С", validators=[Optional()])
    date_to = DateField("По", validators=[Optional()])
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
    q = StringField("Текст содержит", validators=[Optional(), Length(max=200)])


class PeriodForm(FlaskForm):
    class Meta:
        csrf = False

    date_from = DateField("С", validators=[Optional()])
    date_to = DateField("По", validators=[Optional()])
