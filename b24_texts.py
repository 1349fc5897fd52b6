"""What the bot says to users, in Russian, in one place.

Messages are Bitrix24 BB-code. Anything a user typed that is shown back goes through
`escape_bbcode` at the call site; FAQ questions and answers are written by admins
and are shown as they are.
"""

from __future__ import annotations

WELCOME = (
    "👋 Здравствуйте{name}! Я FAQ-бот: отвечаю на частые вопросы сотрудников "
    "по базе знаний компании.\n\n"
    "Напишите вопрос своими словами, например: «как оформить отпуск?» или "
    "«не работает VPN». Ещё можно выбрать тему ниже или в любой момент "
    "написать «категории»."
)
WELCOME_NO_FAQ = (
    "👋 Здравствуйте{name}! Я FAQ-бот, но база знаний пока пуста. Загляните чуть позже."
)

CATEGORIES = "📂 Выберите тему:"
NO_CATEGORIES = "База знаний пока пуста, темы появятся позже."
CATEGORY = "📂 [b]{name}[/b]\nВыберите вопрос:"
CATEGORY_MORE = (
    "\n\nПоказаны первые {shown} из {total}. Не нашли свой вопрос? Напишите его."
)
CATEGORY_EMPTY = "В теме «{name}» пока нет вопросов."
CATEGORY_GONE = "Этой темы больше нет. Вот актуальный список:"
FAQ_GONE = "Этот вопрос уже удалили из базы знаний. Попробуйте написать свой вопрос."

ANSWER = "[b]{question}[/b]\n\n{answer}"
SIMILAR = "\n\n[b]Похожие вопросы[/b] — на кнопках ниже."
RATE = "\n\nОтвет помог? Оцените, пожалуйста: 👍 или 👎."
CHOICES = "🤔 Возможно, вы имели в виду:"
NO_ANSWER = (
    "😔 К сожалению, я не нашёл ответа на вопрос «{question}». "
    "Попробуйте спросить по-другому или выберите тему."
)
NO_ANSWER_NEAR = "\n\nВозможно, подойдёт один из этих вопросов:"
EMPTY_MESSAGE = "Я понимаю только текст 🙂 Напишите, пожалуйста, вопрос словами."
FAILURE = (
    "😕 Что-то пошло не так, и я не смог ответить. Попробуйте, пожалуйста, "
    "ещё раз чуть позже."
)

THANKS_HELPFUL = "Спасибо за оценку! 🙌 Рад, что ответ помог."
THANKS_NOT_HELPFUL = "Спасибо, что сообщили 🙏 Постараюсь помочь иначе."
THANKS_NOT_HELPFUL_NEXT = "\n\nМожет быть, подойдёт один из этих вопросов:"
THANKS_NOT_HELPFUL_CATEGORIES = "\n\nИли выберите тему:"
ALREADY_RATED = "Этот ответ уже оценён, спасибо!"
NOT_YOUR_ANSWER = "Оценить ответ может только тот, кто задавал вопрос."
BAD_BUTTON = "Эта кнопка устарела. Напишите вопрос ещё раз, пожалуйста."

BUTTON_YES = "👍 Помогло"
BUTTON_NO = "👎 Не помогло"
BUTTON_ALL_CATEGORIES = "📂 Все темы"
CATEGORY_BUTTON = "{name} ({count})"

# longest button label; longer FAQ questions are shortened with an ellipsis
BUTTON_TEXT_LIMIT = 70
# longest piece of a user's question quoted back in a reply
QUOTE_LIMIT = 200

START_WORDS = frozenset(
    {"/start", "start", "/help", "help", "помощь", "/помощь", "справка", "меню"}
)
CATEGORY_WORDS = frozenset({"категории", "/категории", "темы", "разделы", "/cats"})


def shorten(text: str, limit: int) -> str:
    """Return `text` on one line, cut to `limit` characters with an ellipsis."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    return line[: limit - 1].rstrip() + "…"
