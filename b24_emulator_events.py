"""The user side of the emulator: what users do, as events POSTed to the bot.

Each action builds the payload the platform would send (form-encoded PHP
bracket keys, ``auth[...]``, the handler's ``event_handler_id``) and posts it
once to the handler URL the bot registered, recording how the handler answered.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import urlencode

import requests

from b24_emulator_state import (
    ChatMessage,
    Delivery,
    EmulatedBot,
    EmulatedCommand,
    EmulatorError,
    EmulatorState,
)
from b24_event import flatten_php

logger = logging.getLogger(__name__)

_COMMAND_LINE_RE = re.compile(r"^/(\S*)( ?)(.*)$")


class EventDelivery(EmulatorState):
    """User actions delivered to the bot as events, mixed into Bitrix24Emulator."""

    def user_sends(
        self,
        text: str,
        user_id: int = 1,
        dialog_id: str | int | None = None,
        *,
        mention: bool = True,
        bot_id: int | None = None,
    ) -> Delivery:
        """A user writes to the bot; deliver the event the platform would send.

        ``dialog_id`` None means the user's private dialog with the bot; pass
        ``"chat<N>"`` for a group chat, where the bot gets the message only if
        mentioned. A line ``/cmd ...`` matching a registered command produces
        ONIMCOMMANDADD alone.
        """
        bot = self._pick_bot(bot_id)
        dialog = str(dialog_id) if dialog_id is not None else str(user_id)
        group = dialog.lower().startswith("chat")
        original = f"[USER={bot.bot_id}]{bot.name}[/USER], {text}" if group else text
        if group and not mention:
            original = text
        user_message = self._store_message(
            ChatMessage(0, dialog, user_id, original, from_bot=False)
        )

        command, command_params = self._typed_command(bot, text)
        if command is not None:
            payload = self._command_event(
                bot, command, command_params, "TEXTAREA", user_message, user_id, text
            )
            return self._deliver(command.handler_url, payload, user_message.message_id)

        if group and not mention:
            return Delivery("ONIMBOTMESSAGEADD", None, None, 0.0, "bot not mentioned")
        params = self._message_params(bot, user_message, user_id)
        params["MESSAGE"] = original.replace(
            f"[USER={bot.bot_id}]{bot.name}[/USER]", ""
        )
        if group:
            params["MESSAGE_ORIGINAL"] = original
            params["MENTIONED_LIST"] = {str(bot.bot_id): str(bot.bot_id)}
        payload = self._envelope(
            "ONIMBOTMESSAGEADD",
            bot,
            bot.handler_ids["EVENT_MESSAGE_ADD"],
            {
                "BOT": {str(bot.bot_id): self._bot_fields(bot)},
                "PARAMS": params,
                "USER": self._user_fields(user_id, flags=True),
            },
        )
        url = bot.handlers["EVENT_MESSAGE_ADD"]
        return self._deliver(url, payload, user_message.message_id)

    def press_button(
        self, message_id: int, button: int | str, user_id: int | None = None
    ) -> Delivery | None:
        """A user presses a keyboard button (0-based index or its text).

        A COMMAND button delivers ONIMCOMMANDADD with COMMAND_CONTEXT=KEYBOARD
        and the keyboard message's id; a SEND action sends its text; links and
        other client-side actions deliver nothing (None).
        """
        with self._lock:
            message = self._messages.get(message_id)
            if message is None or message.deleted:
                raise EmulatorError(f"message {message_id} does not exist")
            if not message.keyboard:
                raise EmulatorError(f"message {message_id} has no keyboard")
            buttons = message.buttons
            index = self._button_index(buttons, button)
            chosen = buttons[index]
            if chosen.get("DISABLED") == "Y":
                raise EmulatorError(f"button {index} of {message_id} is disabled")
            if (message_id, index) in self._blocked_presses:
                raise EmulatorError(
                    f"button {index} of message {message_id} is blocked after a press"
                )
            bot = self._bots.get(message.author_id)

        group = message.dialog_id.lower().startswith("chat")
        presser = user_id or (1 if group else int(message.dialog_id))
        if chosen.get("ACTION") == "SEND":
            return self.user_sends(chosen["ACTION_VALUE"], presser, message.dialog_id)
        if not chosen.get("COMMAND"):
            return None
        if bot is None:
            raise EmulatorError(f"the author of message {message_id} is gone")
        command = self._find_command(bot, chosen["COMMAND"])
        if command is None:
            raise EmulatorError(
                f"command {chosen['COMMAND']} is not registered; nothing is delivered"
            )

        if chosen.get("BLOCK") == "Y":
            with self._lock:
                self._blocked_presses.add((message_id, index))
        text = f"/{command.command} {chosen.get('COMMAND_PARAMS', '')}".strip()
        payload = self._command_event(
            bot,
            command,
            chosen.get("COMMAND_PARAMS", ""),
            "KEYBOARD",
            message,
            presser,
            text,
        )
        return self._deliver(command.handler_url, payload, message_id)

    def join_chat(
        self,
        user_id: int = 1,
        dialog_id: str | int | None = None,
        bot_id: int | None = None,
    ) -> Delivery:
        """A user opens a dialog with the bot or adds it to a chat."""
        bot = self._pick_bot(bot_id)
        dialog = str(dialog_id) if dialog_id is not None else str(user_id)
        group = dialog.lower().startswith("chat")
        params: dict[str, Any] = {
            "CHAT_TYPE": "C" if group else "P",
            "MESSAGE_TYPE": "C" if group else "P",
            "BOT_ID": str(bot.bot_id),
            "USER_ID": str(user_id),
            "DIALOG_ID": dialog,
            "LANGUAGE": "ru",
        }
        if group:
            params.update(
                {
                    "CHAT_ID": dialog[4:],
                    "CHAT_AUTHOR_ID": str(user_id),
                    "CHAT_ENTITY_TYPE": "",
                    "CHAT_ENTITY_ID": "",
                    "ACCESS_HISTORY": "Y",
                }
            )
        else:
            params.update({"TO_USER_ID": str(user_id), "FROM_USER_ID": str(bot.bot_id)})
        payload = self._envelope(
            "ONIMBOTJOINCHAT",
            bot,
            bot.handler_ids["EVENT_WELCOME_MESSAGE"],
            {
                "BOT": {str(bot.bot_id): self._bot_fields(bot)},
                "PARAMS": params,
                "USER": self._user_fields(user_id, flags=False),
            },
        )
        return self._deliver(bot.handlers["EVENT_WELCOME_MESSAGE"], payload)

    def delete_bot(self, bot_id: int | None = None) -> Delivery:
        """An administrator deletes the bot from the portal."""
        bot = self._pick_bot(bot_id)
        self._remove_bot(bot.bot_id)
        payload = self._envelope(
            "ONIMBOTDELETE",
            bot,
            bot.handler_ids["EVENT_BOT_DELETE"],
            {"BOT_ID": str(bot.bot_id), "BOT_CODE": bot.code},
        )
        return self._deliver(bot.handlers["EVENT_BOT_DELETE"], payload)

    # event building and delivery

    def _pick_bot(self, bot_id: int | None) -> EmulatedBot:
        with self._lock:
            if bot_id is not None:
                bot = self._bots.get(bot_id)
            else:
                bot = next(iter(self._bots.values()), None)
        if bot is None:
            raise EmulatorError("no bot is registered on the emulator")
        return bot

    def _typed_command(
        self, bot: EmulatedBot, text: str
    ) -> tuple[EmulatedCommand | None, str]:
        for line in text.splitlines():
            match = _COMMAND_LINE_RE.match(line.strip())
            if match:
                command = self._find_command(bot, match.group(1))
                if command is not None:
                    return command, match.group(3)
        return None, ""

    def _find_command(self, bot: EmulatedBot, name: str) -> EmulatedCommand | None:
        name = name.lstrip("/").lower()
        with self._lock:
            for command in self._commands.values():
                if command.command.lower() != name:
                    continue
                if command.bot_id == bot.bot_id or command.common == "Y":
                    return command
        return None

    def _message_params(
        self, bot: EmulatedBot, message: ChatMessage, user_id: int
    ) -> dict[str, Any]:
        dialog = message.dialog_id
        group = dialog.lower().startswith("chat")
        chat_type = "C" if group else "P"
        params: dict[str, Any] = {
            "MESSAGE_ID": str(message.message_id),
            "MESSAGE_TYPE": chat_type,
            "CHAT_TYPE": chat_type,
            "FROM_USER_ID": str(user_id),
            "AUTHOR_ID": str(user_id),
            "TO_USER_ID": str(bot.bot_id),
            "DIALOG_ID": dialog,
            "TO_CHAT_ID": dialog[4:] if group else str(1000 + user_id),
            "SYSTEM": "N",
            "COMMAND_CONTEXT": "TEXTAREA",
            "LANGUAGE": "ru",
            "PLATFORM_CONTEXT": "web",
        }
        if group:
            params.update({"CHAT_ID": dialog[4:], "CHAT_TITLE": f"Чат {dialog[4:]}"})
        return params

    def _command_event(
        self,
        bot: EmulatedBot,
        command: EmulatedCommand,
        command_params: str,
        context: str,
        message: ChatMessage,
        user_id: int,
        text: str,
    ) -> dict[str, Any]:
        params = self._message_params(bot, message, user_id)
        params["MESSAGE"] = text
        params["COMMAND_CONTEXT"] = context
        if message.dialog_id.lower().startswith("chat"):
            del params["TO_USER_ID"]
            params["BOT_IN_CHAT"] = {str(bot.bot_id): str(bot.bot_id)}
        entry = {
            "BOT_ID": str(command.bot_id),
            "BOT_CODE": bot.code,
            "COMMAND": command.command,
            "COMMAND_ID": str(command.command_id),
            "COMMAND_PARAMS": command_params,
            "COMMAND_CONTEXT": context,
            "MESSAGE_ID": str(message.message_id),
        }
        return self._envelope(
            "ONIMCOMMANDADD",
            bot,
            command.handler_id,
            {
                "COMMAND": {str(command.command_id): entry},
                "PARAMS": params,
                "USER": self._user_fields(user_id, flags=False),
            },
        )

    def _envelope(
        self, event: str, bot: EmulatedBot, handler_id: int, data: dict[str, Any]
    ) -> dict[str, Any]:
        auth = {
            "domain": self.domain,
            "client_endpoint": f"https://{self.domain}/rest/",
            "server_endpoint": "https://oauth.bitrix.info/rest/",
            "member_id": self.member_id,
        }
        if self.send_application_token:
            token = self.application_token
            auth["application_token"] = bot.client_id if token is None else token
        return {
            "event": event,
            "event_handler_id": str(handler_id),
            "data": data,
            "ts": str(int(time.time())),
            "auth": auth,
        }

    @staticmethod
    def _bot_fields(bot: EmulatedBot) -> dict[str, str]:
        return {"BOT_ID": str(bot.bot_id), "BOT_CODE": bot.code}

    def _user_fields(self, user_id: int, flags: bool) -> dict[str, str]:
        with self._lock:
            profile = self._users.get(user_id) or {
                "FIRST_NAME": "Пользователь",
                "LAST_NAME": str(user_id),
                "WORK_POSITION": "",
                "GENDER": "M",
            }
        fields = {
            "ID": str(user_id),
            "NAME": f"{profile['FIRST_NAME']} {profile['LAST_NAME']}".strip(),
            **profile,
        }
        if flags:
            fields.update(
                {"IS_BOT": "N", "IS_CONNECTOR": "N", "IS_NETWORK": "N"}
                | {"IS_EXTRANET": "N"}
            )
        return fields

    def _deliver(
        self, url: str, payload: dict[str, Any], message_id: int | None = None
    ) -> Delivery:
        # the platform posts once and never retries, whatever the handler says
        body = urlencode(flatten_php(payload))
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = requests.post(
                url,
                data=body.encode("ascii"),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                timeout=self.handler_timeout,
            )
            status = response.status_code
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        latency = time.monotonic() - started
        slow = latency > self.slow_handler_seconds
        delivery = Delivery(
            payload["event"], url, status, latency, error, message_id, slow
        )
        if slow:
            logger.warning(
                "bot handler took %.2fs for %s; the platform deprioritises slow "
                "handlers",
                latency,
                payload["event"],
            )
        logger.debug(
            "emulator delivered %s to %s: status %s in %.3fs",
            payload["event"],
            url,
            status,
            latency,
        )
        with self._lock:
            self._deliveries.append(delivery)
        return delivery

    @staticmethod
    def _button_index(buttons: list[dict[str, Any]], button: int | str) -> int:
        if isinstance(button, int):
            if 0 <= button < len(buttons):
                return button
            raise EmulatorError(f"no button {button}; there are {len(buttons)}")
        wanted = button.strip().casefold()
        for index, candidate in enumerate(buttons):
            if str(candidate.get("TEXT", "")).strip().casefold() == wanted:
                return index
        raise EmulatorError(f"no button with text {button!r}")
