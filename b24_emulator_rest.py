"""The REST side of the emulator: the webhook endpoint and the imbot.* methods.

A call passes the platform's gates in the platform's order (webhook auth, the
rate limit, injected faults), then runs under the state lock; an error becomes
the platform's ``{"error", "error_description"}`` reply with its HTTP status.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from flask import Response, jsonify, request

from b24_emulator_checks import (
    as_list,
    check_dialog_id,
    check_handler,
    is_clear,
    message_text,
    parse_attach,
    parse_keyboard,
    parse_menu,
    to_int,
    truncate,
    with_client_id,
)
from b24_emulator_state import (
    ChatMessage,
    EmulatedBot,
    EmulatedCommand,
    EmulatorState,
    Fault,
    RestCall,
    RestError,
    TypingEvent,
)
from b24_event import MalformedFormError, parse_php_form

logger = logging.getLogger(__name__)

MAX_BOTS_PER_APP = 5
EDIT_WINDOW_SECONDS = 3 * 24 * 3600


class RestMethods(EmulatorState):
    """The webhook endpoint and the imbot.* methods, mixed into Bitrix24Emulator."""

    def _rest_view(self, user_id: str, key: str, method: str) -> Response:
        started = time.time()
        method = method.lower().removesuffix(".json")
        params = _request_params()
        if user_id != str(self.webhook_user_id) or key != self.webhook_key:
            return self._error_reply(
                method,
                params,
                RestError(401, "NO_AUTH_FOUND", "Wrong authorization data"),
            )
        if self.rate_limit_enabled and not self._bucket.allow():
            return self._error_reply(
                method,
                params,
                RestError(503, "QUERY_LIMIT_EXCEEDED", "Too many requests"),
            )

        fault = self._take_fault(method)
        if fault and fault.kind == "fail":
            error = RestError(fault.status, fault.code, fault.description)
            return self._error_reply(method, params, error)
        if fault and fault.kind == "drop" and not fault.after_execute:
            self._record(method, params, 0, "CONNECTION_DROPPED")
            return _drop_connection()

        try:
            result = self._execute(method, params)
        except RestError as exc:
            return self._error_reply(method, params, exc)

        self._record(method, params, 200, None)
        if fault and fault.kind == "drop":
            return _drop_connection()
        if fault and fault.kind == "slow":
            time.sleep(fault.delay)
        return jsonify({"result": result, "time": _time_block(started)})

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in (None, method):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return replace(fault)
        return None

    def _error_reply(
        self, method: str, params: dict[str, Any], error: RestError
    ) -> Response:
        self._record(method, params, error.status, error.code)
        response = jsonify(
            {"error": error.code, "error_description": error.description}
        )
        response.status_code = error.status
        return response

    def _record(
        self, method: str, params: dict[str, Any], status: int, error: str | None
    ) -> None:
        with self._lock:
            self._calls.append(RestCall(method, params, status, error, time.time()))

    def _execute(self, method: str, params: dict[str, Any]) -> Any:
        handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
            "imbot.register": self._imbot_register,
            "imbot.unregister": self._imbot_unregister,
            "imbot.bot.list": self._imbot_bot_list,
            "imbot.message.add": self._imbot_message_add,
            "imbot.message.update": self._imbot_message_update,
            "imbot.message.delete": self._imbot_message_delete,
            "imbot.command.register": self._imbot_command_register,
            "imbot.command.answer": self._imbot_command_answer,
            "imbot.chat.sendtyping": self._imbot_send_typing,
            "imbot.sendtyping": self._imbot_send_typing,
            "batch": self._batch,
        }
        handler = handlers.get(method)
        if handler is None:
            raise RestError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        with self._lock:
            return handler(params)

    def _batch(self, params: dict[str, Any]) -> dict[str, Any]:
        commands = params.get("CMD")
        halt = str(params.get("HALT", "0")) in ("1", "Y", "true", "True")
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        if not isinstance(commands, dict):
            commands = {}
        if len(commands) > 50:
            raise RestError(
                400, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded"
            )
        for key, command in commands.items():
            name, _, query = str(command).partition("?")
            name = name.lower().removesuffix(".json")
            try:
                sub_params = _upper_keys(
                    parse_php_form(parse_qsl(query, keep_blank_values=True))
                )
            except MalformedFormError:
                sub_params = {}
            try:
                if name == "batch":
                    raise RestError(
                        405, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed"
                    )
                results[key] = self._execute(name, sub_params)
                self._record(name, sub_params, 200, None)
            except RestError as exc:
                self._record(name, sub_params, exc.status, exc.code)
                errors[key] = {"error": exc.code, "error_description": exc.description}
                if halt:
                    break
        return {
            "result": results or [],
            "result_error": errors or [],
            "result_total": [],
            "result_next": [],
            "result_time": [],
        }

    # checks shared by the imbot methods

    @staticmethod
    def _need_client_id(params: dict[str, Any]) -> str:
        client_id = str(params.get("CLIENT_ID") or "").strip()
        if not client_id:
            raise RestError(
                403, "ACCESS_DENIED", "Access denied! Client ID not specified"
            )
        return "custom" + client_id

    def _resolve_bot(self, params: dict[str, Any], app_key: str) -> EmulatedBot:
        if "BOT_ID" in params:
            return self._own_bot(params["BOT_ID"], app_key)
        for bot in self._bots.values():
            if bot.app_key == app_key:
                return bot
        raise RestError(400, "BOT_ID_ERROR", "Bot not found")

    def _own_bot(self, bot_id: Any, app_key: str) -> EmulatedBot:
        bot = self._bots.get(to_int(bot_id))
        if bot is None:
            raise RestError(400, "BOT_ID_ERROR", "Bot not found")
        if bot.app_key != app_key:
            raise RestError(
                400, "APP_ID_ERROR", "Bot was installed by another rest application"
            )
        return bot

    def _allocate_handler_id(self) -> int:
        handler_id = self._next_handler_id
        self._next_handler_id += 1
        return handler_id

    # imbot.register and friends

    def _imbot_register(self, params: dict[str, Any]) -> int:
        params = dict(params)
        app_key = self._need_client_id(params)
        client_id = app_key.removeprefix("custom")
        names = (
            "EVENT_MESSAGE_ADD",
            "EVENT_MESSAGE_UPDATE",
            "EVENT_MESSAGE_DELETE",
            "EVENT_WELCOME_MESSAGE",
            "EVENT_BOT_DELETE",
        )
        if params.get("EVENT_HANDLER"):
            for name in names:
                params[name] = params["EVENT_HANDLER"]

        check_handler(params, "EVENT_MESSAGE_ADD", "Message add")
        for name in ("EVENT_MESSAGE_UPDATE", "EVENT_MESSAGE_DELETE"):
            if params.get(name):
                check_handler(params, name, None)
        check_handler(params, "EVENT_WELCOME_MESSAGE", "Welcome message")
        check_handler(params, "EVENT_BOT_DELETE", "Bot delete")
        code = str(params.get("CODE") or "").strip()
        if not code:
            raise RestError(400, "CODE_ERROR", "Bot code isn't specified")
        own = [bot for bot in self._bots.values() if bot.app_key == app_key]
        if self.cloud and len(own) >= MAX_BOTS_PER_APP:
            raise RestError(
                400,
                "MAX_COUNT_ERROR",
                "Has reached the maximum number of bots for application (max: 5)",
            )

        bot_type = str(params.get("TYPE") or "B").upper()
        bot_type = bot_type if bot_type in ("O", "B", "H", "S") else "B"
        openline = "Y" if params.get("OPENLINE") == "Y" or bot_type == "O" else "N"
        keep_edits = bot_type in ("S", "O") or openline == "Y"
        properties = params.get("PROPERTIES")
        if not isinstance(properties, dict) or not (
            properties.get("NAME") or properties.get("LAST_NAME")
        ):
            raise RestError(400, "NAME_ERROR", "Bot name isn't specified")

        for bot in self._bots.values():
            if bot.code == code:
                return bot.bot_id

        handlers = {
            name: with_client_id(str(params[name]), client_id)
            for name in names
            if params.get(name)
            and (
                keep_edits
                or name not in ("EVENT_MESSAGE_UPDATE", "EVENT_MESSAGE_DELETE")
            )
        }
        bot = EmulatedBot(
            bot_id=self._next_user_id,
            code=code,
            name=str(properties.get("NAME") or properties.get("LAST_NAME")),
            app_key=app_key,
            client_id=client_id,
            bot_type=bot_type,
            openline=openline,
            handlers=handlers,
            handler_ids={name: self._allocate_handler_id() for name in handlers},
            properties=dict(properties),
        )
        self._next_user_id += 1
        self._bots[bot.bot_id] = bot
        logger.info("emulator registered bot %s as %s", code, bot.bot_id)
        return bot.bot_id

    def _imbot_unregister(self, params: dict[str, Any]) -> bool:
        app_key = self._need_client_id(params)
        bot = self._own_bot(params.get("BOT_ID"), app_key)
        self._remove_bot(bot.bot_id)
        return True

    def _imbot_bot_list(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            str(bot.bot_id): {
                "ID": bot.bot_id,
                "NAME": bot.name,
                "CODE": bot.code,
                "OPENLINE": bot.openline,
            }
            for bot in self._bots.values()
        }

    # messages

    def _imbot_message_add(self, params: dict[str, Any]) -> int:
        app_key = self._need_client_id(params)
        bot = self._resolve_bot(params, app_key)
        system = params.get("SYSTEM") == "Y"
        from_user = to_int(params.get("FROM_USER_ID"))
        to_user = to_int(params.get("TO_USER_ID"))
        if from_user > 0 and to_user > 0:
            dialog, author, system = str(to_user), from_user, True
        else:
            dialog, author = check_dialog_id(params), bot.bot_id

        text = message_text(params)
        attach = parse_attach(params.get("ATTACH"))
        keyboard = parse_keyboard(
            params.get("KEYBOARD"), check_size=self.strict_keyboard_size
        )
        menu = parse_menu(params.get("MENU"))
        message = ChatMessage(
            0,
            dialog,
            author,
            text,
            from_bot=True,
            keyboard=keyboard,
            attach=attach,
            menu=menu,
            system=system,
        )
        return self._store_message(message).message_id

    def _imbot_message_update(self, params: dict[str, Any]) -> bool:
        app_key = self._need_client_id(params)
        bot = self._resolve_bot(params, app_key)
        message = self._editable_message(params, bot)

        changes: dict[str, Any] = {}
        for name, parse in (
            ("ATTACH", parse_attach),
            ("KEYBOARD", lambda value: parse_keyboard(value, check_size=True)),
            ("MENU", parse_menu),
        ):
            if name in params:
                value = params[name]
                changes[name.lower()] = None if is_clear(value) else parse(value)
        if "MESSAGE" in params:
            text = str(params.get("MESSAGE") or "").strip()
            if not text:
                changes["deleted"] = True
            else:
                changes["text"] = truncate(text)

        with self._changed:
            for name, value in changes.items():
                setattr(message, name, value)
            message.updated += 1
            self._changed.notify_all()
        return True

    def _imbot_message_delete(self, params: dict[str, Any]) -> bool:
        app_key = self._need_client_id(params)
        bot = self._resolve_bot(params, app_key)
        message = self._editable_message(params, bot)
        with self._changed:
            message.deleted = True
            message.keyboard = None
            if params.get("COMPLETE") == "Y":
                message.text = ""
            self._changed.notify_all()
        return True

    def _editable_message(
        self, params: dict[str, Any], bot: EmulatedBot
    ) -> ChatMessage:
        message_id = to_int(params.get("MESSAGE_ID"))
        if message_id <= 0:
            raise RestError(400, "MESSAGE_ID_ERROR", "Message ID can't be empty")
        message = self._messages.get(message_id)
        too_old = message and time.time() - message.created_at > EDIT_WINDOW_SECONDS
        if (
            message is None
            or message.deleted
            or message.author_id != bot.bot_id
            or too_old
        ):
            raise RestError(
                403,
                "CANT_EDIT_MESSAGE",
                "Time has expired for modification or you don't have access",
            )
        return message

    # commands

    def _imbot_command_register(self, params: dict[str, Any]) -> int:
        app_key = self._need_client_id(params)
        client_id = app_key.removeprefix("custom")
        check_handler(params, "EVENT_COMMAND_ADD", "Command add")
        name = str(params.get("COMMAND") or "").strip()
        if not name:
            raise RestError(400, "COMMAND_ERROR", "Command isn't specified")
        bot = self._own_bot(params.get("BOT_ID"), app_key)
        flags = {
            key: "Y" if params.get(key) == "Y" else "N"
            for key in ("COMMON", "HIDDEN", "EXTRANET_SUPPORT")
        }
        lang = params.get("LANG")
        if not lang:
            raise RestError(400, "LANG_ERROR", "Lang set can't be empty")

        name = name.lstrip("/")
        for command in self._commands.values():
            if command.bot_id == bot.bot_id and command.command == name:
                return command.command_id
        entries = [
            dict(entry)
            for entry in as_list(lang)
            if isinstance(entry, dict)
            and entry.get("LANGUAGE_ID")
            and entry.get("TITLE")
        ]
        command = EmulatedCommand(
            command_id=self._next_command_id,
            bot_id=bot.bot_id,
            command=name,
            app_key=app_key,
            handler_url=with_client_id(str(params["EVENT_COMMAND_ADD"]), client_id),
            handler_id=self._allocate_handler_id(),
            hidden=flags["HIDDEN"],
            common=flags["COMMON"],
            lang=entries,
        )
        self._next_command_id += 1
        self._commands[command.command_id] = command
        return command.command_id

    def _imbot_command_answer(self, params: dict[str, Any]) -> int:
        app_key = self._need_client_id(params)
        command: EmulatedCommand | None = None
        if "COMMAND_ID" in params:
            command = self._commands.get(to_int(params["COMMAND_ID"]))
            if command is None:
                raise RestError(400, "COMMAND_ID_ERROR", "Command not found")
            if command.app_key != app_key:
                raise RestError(
                    400,
                    "APP_ID_ERROR",
                    "Command was installed by another rest application",
                )
        elif "COMMAND" in params:
            name = str(params["COMMAND"]).lstrip("/")
            command = next(
                (
                    c
                    for c in self._commands.values()
                    if c.app_key == app_key and c.command == name
                ),
                None,
            )
            if command is None:
                raise RestError(400, "COMMAND_ID_ERROR", "Command not found")
        message_id = to_int(params.get("MESSAGE_ID"))
        if message_id <= 0:
            raise RestError(400, "MESSAGE_ID_EMPTY", "Message ID can't be empty")
        text = message_text(params)
        attach = parse_attach(params.get("ATTACH"))
        keyboard = parse_keyboard(params.get("KEYBOARD"), check_size=True)
        menu = parse_menu(params.get("MENU"))
        target = self._messages.get(message_id)
        if command is None or target is None:
            raise RestError(400, "WRONG_REQUEST", "Message isn't added")
        message = ChatMessage(
            0,
            target.dialog_id,
            command.bot_id,
            text,
            from_bot=True,
            keyboard=keyboard,
            attach=attach,
            menu=menu,
            system=params.get("SYSTEM") == "Y",
        )
        return self._store_message(message).message_id

    def _imbot_send_typing(self, params: dict[str, Any]) -> bool:
        app_key = self._need_client_id(params)
        bot = self._resolve_bot(params, app_key)
        dialog = check_dialog_id(params)
        self._typing.append(TypingEvent(bot.bot_id, dialog, time.time()))
        return True


# request helpers


def _request_params() -> dict[str, Any]:
    params: dict[str, Any] = {}
    for source in (request.query_string.decode("utf-8", "replace"), None):
        try:
            if source is not None:
                params.update(parse_php_form(parse_qsl(source, keep_blank_values=True)))
            elif request.is_json:
                body = request.get_json(silent=True)
                if isinstance(body, dict):
                    params.update(body)
            else:
                text = request.get_data().decode("utf-8", "replace")
                params.update(parse_php_form(parse_qsl(text, keep_blank_values=True)))
        except MalformedFormError as exc:
            logger.debug("emulator ignored a malformed parameter: %s", exc)
    return _upper_keys(params)


def _upper_keys(params: Mapping[str, Any]) -> dict[str, Any]:
    # the platform upper-cases top-level keys only (array_change_key_case)
    return {str(key).upper(): value for key, value in params.items()}


def _drop_connection() -> Response:
    connection = request.environ.get("werkzeug.socket")
    if connection is not None:
        with contextlib.suppress(OSError):
            connection.shutdown(socket.SHUT_RDWR)
    return Response(status=500)


def _time_block(started: float) -> dict[str, Any]:
    finished = time.time()
    return {
        "start": started,
        "finish": finished,
        "duration": finished - started,
        "processing": finished - started,
        "date_start": datetime.fromtimestamp(started, UTC).isoformat(),
        "date_finish": datetime.fromtimestamp(finished, UTC).isoformat(),
        "operating_reset_at": int(started) + 600,
        "operating": 0,
    }
