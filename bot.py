"""The Telegram FAQ bot: long polling with python-telegram-bot.

    python bot.py       # needs TELEGRAM_BOT_TOKEN (from @BotFather) in .env

It shares the database, the FAQ and the search index with the Bitrix24 bot
(`b24_bot.py`) and logs every question with platform ``telegram``, so the web
admin shows both chats side by side. The handlers here only translate updates;
`tg_conversation.Conversation` decides what to say.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from telegram import BotCommand, Update
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from b24_bot import near_score
from config import Config, ConfigError, load_config
from database import Database
from faq_core import build_engine
from logging_config import configure_root_logger
from tg_conversation import (
    ButtonPress,
    Conversation,
    Engine,
    IncomingMessage,
    SendMessage,
    deliver,
    failure_text,
)

logger = logging.getLogger(__name__)

# the menu Telegram shows next to the input field
MENU_COMMANDS = (
    BotCommand("start", "Начать и показать темы"),
    BotCommand("help", "Как пользоваться ботом"),
    BotCommand("categories", "Все темы базы знаний"),
)
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


def build_application(
    config: Config,
    *,
    database: Database | None = None,
    engine: Engine | None = None,
) -> Application:
    """Build the bot from configuration; pass parts in to replace them in tests.

    Raises `ConfigError` when TELEGRAM_BOT_TOKEN is not set, before anything
    heavy (the database, the embedding model) is loaded.
    """
    if not config.telegram_bot_token:
        raise ConfigError(
            "TELEGRAM_BOT_TOKEN is not set: create a bot with @BotFather and put "
            "its token in .env (see docs/telegram.md)"
        )
    if database is None:
        database = Database(config.database_url)
        database.init_schema()
    if engine is None:
        search, engine = build_engine(config, database)
        search.ensure_fresh()

    conversation = Conversation(engine, database, near_score=near_score(engine))
    handlers = TelegramHandlers(conversation)
    application = (
        Application.builder()
        .token(config.telegram_bot_token)
        .base_url(config.telegram_api_url)
        .post_init(_set_menu)
        .build()
    )
    new_messages = filters.UpdateType.MESSAGE
    application.add_handler(
        CommandHandler(["start", "help"], handlers.start, filters=new_messages)
    )
    application.add_handler(
        CommandHandler("categories", handlers.categories, filters=new_messages)
    )
    application.add_handler(CallbackQueryHandler(handlers.press))
    application.add_handler(
        MessageHandler(new_messages & filters.COMMAND, handlers.start)
    )
    application.add_handler(MessageHandler(new_messages & filters.TEXT, handlers.text))
    application.add_handler(
        MessageHandler(
            new_messages & filters.ChatType.PRIVATE & ~filters.StatusUpdate.ALL,
            handlers.text,
        )
    )
    application.add_error_handler(handlers.failed)
    return application


class TelegramHandlers:
    """python-telegram-bot callbacks: turn an update into a conversation step."""

    def __init__(self, conversation: Conversation) -> None:
        self.conversation = conversation

    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = _incoming(update, context)
        if message is not None:
            actions = await asyncio.to_thread(self.conversation.welcome, message)
            await deliver(context.bot, actions)

    async def categories(
        self, update: Update, context: ContextTypes.DEFAULT_TYPE
    ) -> None:
        message = _incoming(update, context)
        if message is not None:
            actions = await asyncio.to_thread(
                self.conversation.categories, message.chat_id
            )
            await deliver(context.bot, actions)

    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = _incoming(update, context)
        if message is not None:
            # the engine and the database block: keep the polling loop free
            actions = await asyncio.to_thread(self.conversation.on_message, message)
            await deliver(context.bot, actions)

    async def press(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None or update.effective_user is None:
            return
        chat = update.effective_chat
        press = ButtonPress(
            callback_query_id=query.id,
            chat_id=chat.id if chat is not None else update.effective_user.id,
            user_id=update.effective_user.id,
            data=query.data or "",
            message_id=query.message.message_id if query.message else None,
        )
        actions = await asyncio.to_thread(self.conversation.on_press, press)
        await deliver(context.bot, actions)

    async def failed(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Log a failed update and tell the user, so no question goes unanswered."""
        update_id = update.update_id if isinstance(update, Update) else None
        logger.error("update %s failed", update_id, exc_info=context.error)
        if not isinstance(update, Update):
            return
        try:
            if update.callback_query is not None:
                await context.bot.answer_callback_query(update.callback_query.id)
            if update.effective_chat is not None:
                chat_id = update.effective_chat.id
                await deliver(context.bot, [SendMessage(chat_id, failure_text())])
        except TelegramError as exc:
            logger.warning("could not apologize for update %s: %s", update_id, exc)


def _incoming(
    update: Update, context: ContextTypes.DEFAULT_TYPE
) -> IncomingMessage | None:
    message = update.effective_message
    user = update.effective_user
    if message is None or user is None or user.is_bot:
        return None
    text = message.text or message.caption or ""
    mention = f"@{context.bot.username}" if context.bot.username else None
    if mention and text.startswith(mention) and message.chat.type != ChatType.PRIVATE:
        text = text[len(mention) :].lstrip(" ,:")
    return IncomingMessage(
        chat_id=message.chat_id,
        user_id=user.id,
        text=text,
        message_id=message.message_id,
        user_name=user.first_name or "",
        private=message.chat.type == ChatType.PRIVATE,
    )


async def _set_menu(application: Application) -> None:
    try:
        await application.bot.set_my_commands(MENU_COMMANDS)
    except TelegramError as exc:
        logger.warning("could not set the command menu: %s", exc)
    logger.info("telegram bot @%s is ready", application.bot.username)


def main() -> int:
    try:
        config = load_config()
        configure_root_logger(config.log_level)
        application = build_application(config)
    except ConfigError as exc:
        print(f"bot.py: {exc}", file=sys.stderr)
        return 2

    logger.info("telegram bot starts long polling")
    application.run_polling(allowed_updates=ALLOWED_UPDATES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
