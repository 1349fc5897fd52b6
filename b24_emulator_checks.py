"""The emulated platform's checks of REST parameters: ids, texts, handler URLs,
keyboards, attachments and menus, with the platform's error codes and texts.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlencode, urlsplit

from b24_emulator_state import RestError

MAX_MESSAGE_LENGTH = 20_000
MAX_JSON_SIZE = 60_000

_DIALOG_ID_RE = re.compile(r"^([0-9]+|(chat|sg|crm)[0-9]+)$", re.IGNORECASE)
_URL_RE = re.compile(r"^(/|https?://)", re.IGNORECASE)
_COLOR_RE = re.compile(r"^#([a-fA-F0-9]){3}(([a-fA-F0-9]){3})?$")
_BUTTON_ACTIONS = {"PUT", "SEND", "COPY", "CALL", "DIALOG", "LIVECHAT", "HELP"}
_ATTACH_BLOCKS = {
    "MESSAGE",
    "LINK",
    "RICH_LINK",
    "USER",
    "GRID",
    "IMAGE",
    "FILE",
    "DELIMITER",
}


def parse_keyboard(value: Any, check_size: bool) -> list[dict[str, Any]] | None:
    """Return the KEYBOARD buttons as the platform keeps them, or None."""
    if _is_empty(value):
        return None
    value = _decode_json_param(value, "KEYBOARD_ERROR", "Incorrect keyboard params")
    if isinstance(value, dict) and "BUTTONS" in value:
        value = value["BUTTONS"]
    buttons: list[dict[str, Any]] = []
    for item in as_list(value):
        if isinstance(item, dict) and item.get("TYPE") == "NEWLINE":
            buttons.append({"TYPE": "NEWLINE"})
            continue
        button = _normalize_button(item)
        if button is not None:
            buttons.append(button)
    if not any(button.get("TYPE") != "NEWLINE" for button in buttons):
        raise RestError(400, "KEYBOARD_ERROR", "Incorrect keyboard params")
    if check_size and len(json.dumps(buttons, ensure_ascii=False)) >= MAX_JSON_SIZE:
        raise RestError(
            400,
            "KEYBOARD_OVERSIZE",
            "You have exceeded the maximum allowable size of keyboard",
        )
    return buttons


def parse_attach(value: Any) -> dict[str, Any] | None:
    """Return the ATTACH blocks the platform accepts, or None."""
    if _is_empty(value):
        return None
    value = _decode_json_param(value, "ATTACH_ERROR", "Incorrect attach params")
    attach: dict[str, Any] = {}
    blocks_source = value
    if isinstance(value, dict) and "BLOCKS" in value:
        attach = {key: item for key, item in value.items() if key != "BLOCKS"}
        blocks_source = value["BLOCKS"]
    blocks = [block for block in as_list(blocks_source) if _valid_block(block)]
    if not blocks:
        raise RestError(400, "ATTACH_ERROR", "Incorrect attach params")
    attach["BLOCKS"] = blocks
    if len(json.dumps(attach, ensure_ascii=False)) >= MAX_JSON_SIZE:
        raise RestError(
            400,
            "ATTACH_OVERSIZE",
            "You have exceeded the maximum allowable size of attach",
        )
    return attach


def parse_menu(value: Any) -> list[dict[str, Any]] | None:
    """Return the MENU items the platform accepts, or None."""
    if _is_empty(value):
        return None
    value = _decode_json_param(value, "MENU_ERROR", "Incorrect menu params")
    if isinstance(value, dict) and "ITEMS" in value:
        value = value["ITEMS"]
    items = [item for item in map(_normalize_button, as_list(value)) if item]
    if not items:
        raise RestError(400, "MENU_ERROR", "Incorrect menu params")
    return items


def to_int(value: Any) -> int:
    """Return the value as an int, 0 when it is not one (as PHP does)."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 0


def as_list(value: Any) -> list[Any]:
    # form bodies turn PHP lists into maps with numeric keys
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        if value and all(str(key).isdigit() for key in value):
            return [value[key] for key in sorted(value, key=int)]
        return list(value.values())
    return []


def _is_empty(value: Any) -> bool:
    return value is None or value in ("", [], {})


def is_clear(value: Any) -> bool:
    return _is_empty(value) or value == "N"


def _decode_json_param(value: Any, code: str, description: str) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            raise RestError(400, code, description) from None
    return value


def check_handler(params: dict[str, Any], name: str, title: str | None) -> None:
    """Raise the platform's error for a missing or refused handler URL."""
    url = str(params.get(name) or "").strip()
    code = f"{name}_ERROR"
    if not url:
        raise RestError(400, code, f'Handler for "{title}" event isn\'t specified')
    problem = handler_url_problem(url)
    if problem:
        raise RestError(400, code, problem)


def handler_url_problem(url: str) -> str | None:
    """The platform's check of a handler URL; None when it is accepted."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "Wrong handler URL"
    if not host or host.find(".") <= 0:
        return "Wrong handler URL"
    if parts.scheme.lower() not in ("http", "https"):
        return "Unsupported handler protocol"
    return None


def with_client_id(url: str, client_id: str) -> str:
    """Return the handler URL as the platform stores it, with ?CLIENT_ID=."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{urlencode({'CLIENT_ID': client_id})}"


def check_dialog_id(params: dict[str, Any]) -> str:
    """Return DIALOG_ID, or raise the platform's error for a bad one."""
    dialog = str(params.get("DIALOG_ID") or "").strip()
    if not dialog or dialog == "0" or not _DIALOG_ID_RE.match(dialog):
        raise RestError(400, "DIALOG_ID_EMPTY", "Dialog ID can't be empty")
    return dialog


def message_text(params: dict[str, Any]) -> str:
    """Return MESSAGE cut to the platform's limit, or raise when it is empty."""
    text = str(params.get("MESSAGE") or "").strip()
    if not text:
        raise RestError(400, "MESSAGE_EMPTY", "Message can't be empty")
    return truncate(text)


def truncate(text: str) -> str:
    if len(text) <= MAX_MESSAGE_LENGTH:
        return text
    return text[:MAX_MESSAGE_LENGTH] + " (...)"


def _normalize_button(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return None
    text = item.get("TEXT")
    if not isinstance(text, str) or not text.strip():
        return None
    button: dict[str, Any] = {"TEXT": text.strip()}
    link = str(item.get("LINK") or "")
    action = str(item.get("ACTION") or "").upper()
    if link and _URL_RE.match(link):
        button["LINK"] = link
    elif item.get("APP_ID"):
        button["APP_ID"] = item["APP_ID"]
        button["APP_PARAMS"] = str(item.get("APP_PARAMS") or "")
    elif action in _BUTTON_ACTIONS and item.get("ACTION_VALUE"):
        button["ACTION"] = action
        button["ACTION_VALUE"] = str(item["ACTION_VALUE"])
    elif str(item.get("COMMAND") or "").lstrip("/"):
        button["COMMAND"] = str(item["COMMAND"]).lstrip("/")
        button["COMMAND_PARAMS"] = str(item.get("COMMAND_PARAMS") or "")
    else:
        return None

    button["BLOCK"] = "Y" if item.get("BLOCK") == "Y" else "N"
    button["DISABLED"] = "Y" if item.get("DISABLED") == "Y" else "N"
    button["DISPLAY"] = "LINE" if item.get("DISPLAY") == "LINE" else "BLOCK"
    context = str(item.get("CONTEXT") or "ALL").upper()
    button["CONTEXT"] = context if context in ("MOBILE", "DESKTOP") else "ALL"
    if to_int(item.get("WIDTH")) > 0:
        button["WIDTH"] = to_int(item["WIDTH"])
    for key in ("BG_COLOR", "TEXT_COLOR", "OFF_BG_COLOR", "OFF_TEXT_COLOR"):
        if isinstance(item.get(key), str) and _COLOR_RE.match(item[key]):
            button[key] = item[key]
    return button


def _valid_block(block: Any) -> bool:
    if not isinstance(block, dict) or len(block) != 1:
        return False
    kind, content = next(iter(block.items()))
    if kind not in _ATTACH_BLOCKS:
        return False
    if kind == "MESSAGE":
        return isinstance(content, str) and bool(content.strip())
    if kind in ("LINK", "RICH_LINK", "IMAGE", "FILE"):
        entries = as_list(content) if kind in ("IMAGE", "FILE") else [content]
        if (
            kind in ("IMAGE", "FILE")
            and isinstance(content, dict)
            and "LINK" in content
        ):
            entries = [content]
        return bool(entries) and all(
            isinstance(entry, dict) and _URL_RE.match(str(entry.get("LINK") or ""))
            for entry in entries
        )
    return content not in (None, "")
