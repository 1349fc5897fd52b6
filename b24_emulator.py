"""A local Bitrix24 for developing and testing the bot without a portal.

It serves the v1 ``imbot.*`` REST methods the bot uses through an incoming
webhook, with the platform's checks in the platform's order, its error codes,
HTTP statuses and texts, and delivers events to the bot's handler URL the way
the platform does (form-encoded PHP bracket keys, ``auth[...]``, ``?CLIENT_ID=``
on the stored URL, no retries). Everything is recorded so tests can assert on
what a user would see.

REST: ``POST {base_url}/rest/{user_id}/{webhook_key}/{method}[.json]`` with a
JSON or form body. Supported: imbot.register, imbot.unregister, imbot.bot.list,
imbot.message.add/update/delete, imbot.command.register, imbot.command.answer,
imbot.chat.sendTyping (alias imbot.sendTyping) and batch.

In-process use (tests, or the bot when no portal is configured)::

    with Bitrix24Emulator(port=5010, webhook_key="local", client_id="faqbot") as emu:
        api = Bitrix24API(emu.webhook_url, emu.client_id)
        ...                                 # the bot registers itself
        emu.user_sends("как оформить отпуск")
        answer = emu.wait_for_messages("1", count=1)[-1]
        emu.press_button(answer.message_id, 0)

Switches: ``set_rate_limit(True, drain_rate=2.0, capacity=50)``;
``fail_next(n)`` (500s), ``slow_next(n, delay)`` (reply after a delay, the
call still runs), ``drop_next(n)`` (close the connection).

The user side is also served over HTTP for other processes:
``POST /_emulator/send`` ``{"text", "user_id", "dialog_id", "mention"}``,
``POST /_emulator/press`` ``{"message_id", "button", "user_id"}`` (button: a
0-based index or the button text), ``POST /_emulator/join``,
``POST /_emulator/delete_bot``, ``GET /_emulator/messages?dialog_id=&after_id=``,
``GET /_emulator/state``.

Command line::

    python b24_emulator.py serve [--port 5010] [--key local] [--client-id faqbot]
    python b24_emulator.py chat [--url http://127.0.0.1:5010] [--user-id 1]

``serve`` runs the emulator in the foreground and prints the webhook URL for
the bot. ``chat`` is a terminal chat with the bot: type a question, read the
answer with its numbered buttons, type ``/1`` to press the first button,
``/quit`` to leave.

The emulator is split into modules: b24_emulator_state.py (records and shared
state), b24_emulator_rest.py (the REST methods), b24_emulator_checks.py (their
parameter checks), b24_emulator_events.py (user actions as events) and
b24_chat.py (the terminal chat).
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from b24_chat import TerminalChat, render_bbcode, render_keyboard
from b24_emulator_checks import MAX_MESSAGE_LENGTH, handler_url_problem, to_int
from b24_emulator_events import EventDelivery
from b24_emulator_rest import RestMethods
from b24_emulator_state import (
    ChatMessage,
    Delivery,
    EmulatedBot,
    EmulatedCommand,
    EmulatorError,
    Fault,
    LeakyBucket,
    RestCall,
    RestError,
    TypingEvent,
)

__all__ = [
    "MAX_MESSAGE_LENGTH",
    "Bitrix24Emulator",
    "ChatMessage",
    "Delivery",
    "EmulatedBot",
    "EmulatedCommand",
    "EmulatorError",
    "LeakyBucket",
    "RestCall",
    "RestError",
    "TypingEvent",
    "handler_url_problem",
    "main",
    "render_bbcode",
    "render_keyboard",
]

logger = logging.getLogger(__name__)

DEFAULT_PORT = 5010
DEFAULT_WEBHOOK_KEY = "emulatorkey"
DEFAULT_CLIENT_ID = "faqbot-local-client"
DEFAULT_DOMAIN = "emulator.bitrix24.local"
DEFAULT_MEMBER_ID = "emulator0member0id"


class _QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug("emulator %s %s -> %s", self.command, self.path, code)


class Bitrix24Emulator(RestMethods, EventDelivery):
    """An in-process Bitrix24 portal: REST for the bot, user actions for tests."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_key: str = DEFAULT_WEBHOOK_KEY,
        webhook_user_id: int = 1,
        client_id: str = DEFAULT_CLIENT_ID,
        *,
        domain: str = DEFAULT_DOMAIN,
        member_id: str = DEFAULT_MEMBER_ID,
        rate_limit: bool = False,
        drain_rate: float = 2.0,
        capacity: int = 50,
        cloud: bool = True,
        strict_keyboard_size: bool = False,
        application_token: str | None = None,
        send_application_token: bool = True,
        handler_timeout: float = 10.0,
        slow_handler_seconds: float = 1.5,
    ) -> None:
        self.host = host
        self.port = port
        self.webhook_key = webhook_key
        self.webhook_user_id = webhook_user_id
        self.client_id = client_id
        self.domain = domain
        self.member_id = member_id
        self.cloud = cloud
        self.strict_keyboard_size = strict_keyboard_size
        # None sends the bot's own CLIENT_ID, as the platform does for webhooks
        self.application_token = application_token
        self.send_application_token = send_application_token
        self.handler_timeout = handler_timeout
        self.slow_handler_seconds = slow_handler_seconds

        super().__init__()
        self.rate_limit_enabled = rate_limit
        self._bucket = LeakyBucket(drain_rate, capacity)
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.app = self._build_app()

    # lifecycle

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}/rest/{self.webhook_user_id}/{self.webhook_key}/"

    def start(self) -> Bitrix24Emulator:
        """Serve in a background thread; port 0 picks a free port."""
        if self._server is not None:
            return self
        self._server = make_server(
            self.host,
            self.port,
            self.app,
            threaded=True,
            request_handler=_QuietRequestHandler,
        )
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="b24-emulator",
            daemon=True,
        )
        self._thread.start()
        logger.info("bitrix24 emulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving; recorded state stays until the object is dropped."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread (the ``serve`` command)."""
        server = make_server(
            self.host,
            self.port,
            self.app,
            threaded=True,
            request_handler=_QuietRequestHandler,
        )
        self.port = server.server_port
        try:
            server.serve_forever()
        finally:
            server.server_close()

    def __enter__(self) -> Bitrix24Emulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # switches

    def set_rate_limit(
        self, enabled: bool = True, drain_rate: float = 2.0, capacity: int = 50
    ) -> None:
        with self._lock:
            self.rate_limit_enabled = enabled
            self._bucket = LeakyBucket(drain_rate, capacity)

    def fail_next(
        self,
        n: int = 1,
        method: str | None = None,
        *,
        status: int = 500,
        code: str = "INTERNAL_SERVER_ERROR",
        description: str = "Internal server error",
    ) -> None:
        """Answer the next ``n`` matching calls with an error, without running them."""
        self._add_fault(
            Fault("fail", n, method, status=status, code=code, description=description)
        )

    def slow_next(
        self, n: int = 1, delay: float = 1.0, method: str | None = None
    ) -> None:
        """Run the next ``n`` matching calls, then wait ``delay`` before replying."""
        self._add_fault(Fault("slow", n, method, delay=delay))

    def drop_next(
        self, n: int = 1, method: str | None = None, after_execute: bool = False
    ) -> None:
        """Close the connection without a reply, before or after running the call."""
        self._add_fault(Fault("drop", n, method, after_execute=after_execute))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: Fault) -> None:
        if fault.method:
            fault.method = fault.method.lower()
        with self._lock:
            self._faults.append(fault)

    # records

    @property
    def calls(self) -> list[RestCall]:
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[RestCall]:
        return [call for call in self.calls if call.method == method.lower()]

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    @property
    def typing_events(self) -> list[TypingEvent]:
        with self._lock:
            return list(self._typing)

    @property
    def bots(self) -> list[EmulatedBot]:
        with self._lock:
            return [replace(bot) for bot in self._bots.values()]

    @property
    def commands(self) -> list[EmulatedCommand]:
        with self._lock:
            return [replace(command) for command in self._commands.values()]

    def message(self, message_id: int) -> ChatMessage | None:
        with self._lock:
            message = self._messages.get(message_id)
            return replace(message) if message else None

    def age_message(self, message_id: int, seconds: float) -> None:
        """Make a message older, e.g. past the three days a bot may edit it."""
        with self._lock:
            self._messages[message_id].created_at -= seconds

    def messages(
        self,
        dialog_id: str | int | None = None,
        *,
        include_user: bool = False,
        include_deleted: bool = False,
        after_id: int = 0,
    ) -> list[ChatMessage]:
        """Bot messages (and optionally the user's) in a dialog, oldest first."""
        with self._lock:
            return [
                replace(message)
                for message in self._messages.values()
                if (dialog_id is None or message.dialog_id == str(dialog_id))
                and (include_user or message.from_bot)
                and (include_deleted or not message.deleted)
                and message.message_id > after_id
            ]

    def wait_for_messages(
        self,
        dialog_id: str | int,
        count: int = 1,
        timeout: float = 5.0,
        after_id: int = 0,
    ) -> list[ChatMessage]:
        """Wait until the dialog holds ``count`` bot messages; raise TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = self.messages(dialog_id, after_id=after_id)
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    texts = [message.text[:80] for message in found]
                    raise TimeoutError(
                        f"dialog {dialog_id}: {len(found)} of {count} bot messages "
                        f"after {timeout}s: {texts}"
                    )
                self._changed.wait(remaining)

    def add_user(
        self,
        user_id: int,
        first_name: str,
        last_name: str = "",
        work_position: str = "",
        gender: str = "M",
    ) -> None:
        with self._lock:
            self._users[user_id] = {
                "FIRST_NAME": first_name,
                "LAST_NAME": last_name,
                "WORK_POSITION": work_position,
                "GENDER": gender,
            }

    # the HTTP app: REST for the bot, the user side for other processes

    def _build_app(self) -> Flask:
        app = Flask("b24_emulator")
        app.add_url_rule(
            "/rest/<user_id>/<key>/<path:method>",
            "rest",
            self._rest_view,
            methods=["GET", "POST"],
        )
        user_routes: dict[str, tuple[Callable[[], Any], list[str]]] = {
            "send": (self._http_send, ["POST"]),
            "press": (self._http_press, ["POST"]),
            "join": (self._http_join, ["POST"]),
            "delete_bot": (self._http_delete_bot, ["POST"]),
            "messages": (self._http_messages, ["GET"]),
            "state": (self._http_state, ["GET"]),
        }
        for name, (view, methods) in user_routes.items():
            app.add_url_rule(f"/_emulator/{name}", name, view, methods=methods)
        return app

    def _http_send(self) -> Response:
        body = request.get_json(silent=True) or {}
        return self._user_action(
            lambda: self.user_sends(
                str(body.get("text", "")),
                int(body.get("user_id", 1)),
                body.get("dialog_id"),
                mention=bool(body.get("mention", True)),
            )
        )

    def _http_press(self) -> Response:
        body = request.get_json(silent=True) or {}
        return self._user_action(
            lambda: self.press_button(
                int(body.get("message_id", 0)),
                body.get("button", 0),
                body.get("user_id"),
            )
        )

    def _http_join(self) -> Response:
        body = request.get_json(silent=True) or {}
        return self._user_action(
            lambda: self.join_chat(int(body.get("user_id", 1)), body.get("dialog_id"))
        )

    def _http_delete_bot(self) -> Response:
        body = request.get_json(silent=True) or {}
        return self._user_action(lambda: self.delete_bot(body.get("bot_id")))

    def _user_action(self, action: Callable[[], Delivery | None]) -> Response:
        try:
            delivery = action()
        except (EmulatorError, ValueError, TypeError) as exc:
            response = jsonify({"error": str(exc)})
            response.status_code = 409
            return response
        return jsonify({"delivery": asdict(delivery) if delivery else None})

    def _http_messages(self) -> Response:
        dialog_id = request.args.get("dialog_id") or None
        after_id = to_int(request.args.get("after_id", 0))
        include_user = request.args.get("include_user") in ("1", "true")
        found = self.messages(dialog_id, include_user=include_user, after_id=after_id)
        return jsonify({"messages": [asdict(message) for message in found]})

    def _http_state(self) -> Response:
        return jsonify(
            {
                "webhook_url": self.webhook_url,
                "client_id": self.client_id,
                "bots": [asdict(bot) for bot in self.bots],
                "commands": [asdict(command) for command in self.commands],
                "calls": len(self.calls),
            }
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local Bitrix24 for the FAQ bot.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the emulator in the foreground")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument("--key", default=DEFAULT_WEBHOOK_KEY)
    serve.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    serve.add_argument("--rate-limit", action="store_true")
    chat = commands.add_parser("chat", help="talk to the bot from the terminal")
    chat.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}")
    chat.add_argument("--user-id", type=int, default=1)
    chat.add_argument("--poll", type=float, default=0.5)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "serve":
        emulator = Bitrix24Emulator(
            args.host,
            args.port,
            args.key,
            client_id=args.client_id,
            rate_limit=args.rate_limit,
        )
        print(f"webhook URL: {emulator.webhook_url}")
        print(f"CLIENT_ID:   {emulator.client_id}")
        emulator.serve_forever()
        return 0
    return TerminalChat(args.url, args.user_id, args.poll).run()


if __name__ == "__main__":
    sys.exit(main())
