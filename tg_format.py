"""Telegram HTML for the bot's texts: BB-code conversion and message splitting.

The bot's texts (`b24_texts`) and the FAQ answers are Bitrix24 BB-code. Telegram
takes a small HTML subset instead (https://core.telegram.org/bots/api#html-style):
`<b>`, `<i>`, `<u>`, `<s>`, `<a href>`, `<code>`, `<blockquote>`, with every other
`<`, `>` and `&` escaped. Text outside the known tags is escaped, so nothing an
admin or a user typed can become markup by accident.
"""

from __future__ import annotations

import html
import re

# a message may hold at most 4096 characters after entity parsing
# (https://core.telegram.org/bots/api#sendmessage)
MESSAGE_LIMIT = 4096

_TAG = re.compile(r"\[(/?)([a-zA-Z]+)(?:=([^\]\n]{1,2000}))?\]")
_PAIRED_TAGS = {
    "b": "b",
    "i": "i",
    "u": "u",
    "s": "s",
    "code": "code",
    "quote": "blockquote",
    "url": "a",
}
# formatting Telegram cannot show: the tag goes, its content stays
_DROPPED_TAGS = frozenset(
    {"color", "size", "font", "center", "left", "right", "justify", "list", "img"}
)
_SAFE_URL = re.compile(r"^(?:https?://|tg://|mailto:)[^\s<>\"'`]+$", re.IGNORECASE)

_HTML_TOKEN = re.compile(r"<(/?)([a-z]+)[^>]*>|&(?:#\d+|#x[0-9a-f]+|[a-z]+);|.", re.S)


def bbcode_to_html(text: str) -> str:
    """Return `text` as Telegram HTML: known BB-code tags converted, the rest escaped.

    Unknown tags stay as text; tags left open are closed at the end, and a
    closing tag that opens nothing is shown as typed.
    """
    parts: list[str] = []
    # open tags as (bb-code name, html name); an unsafe link opens nothing
    stack: list[tuple[str, str | None]] = []
    position = 0
    for match in _TAG.finditer(text):
        if match.start() < position:
            continue
        parts.append(_escape(text[position : match.start()]))
        position = match.end()
        closing, name, value = match.group(1), match.group(2).lower(), match.group(3)

        if name == "br" and not closing:
            parts.append("\n")
        elif name in _DROPPED_TAGS:
            pass
        elif closing and name in _PAIRED_TAGS:
            if any(open_name == name for open_name, _ in stack):
                while stack:
                    open_name, html_name = stack.pop()
                    if html_name:
                        parts.append(f"</{html_name}>")
                    if open_name == name:
                        break
            else:
                parts.append(_escape(match.group(0)))
        elif name == "url":
            position = _open_link(text, match, value, parts, stack)
        elif name in _PAIRED_TAGS:
            html_name = _PAIRED_TAGS[name]
            parts.append(f"<{html_name}>")
            stack.append((name, html_name))
        else:
            parts.append(_escape(match.group(0)))

    parts.append(_escape(text[position:]))
    parts.extend(f"</{h}>" for _, h in reversed(stack) if h)
    return "".join(parts)


def plain_to_html(text: str) -> str:
    """Return plain text (a small-talk reply, a user's words) escaped for HTML."""
    return _escape(text)


def split_html(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split Telegram HTML into messages of at most `limit` visible characters.

    Cuts at a paragraph break in the second half of the window, then at a line
    break, a sentence end, a space, and only then mid-word. Tags open at a cut
    are closed at the end of one message and opened again in the next. Length
    is counted in UTF-16 code units, as Telegram counts entity offsets.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2")
    tokens = [m.group(0) for m in _HTML_TOKEN.finditer(text)]
    chunks: list[str] = []
    start, opened = 0, []
    while start < len(tokens):
        end, still_open = _find_cut(tokens, start, opened, limit)
        chunk = "".join(opened) + "".join(tokens[start:end])
        chunk += "".join(_closing(tag) for tag in reversed(still_open))
        if _visible(chunk).strip():
            chunks.append(chunk.strip())
        start, opened = end, still_open
    return chunks


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _open_link(
    text: str,
    match: re.Match[str],
    value: str | None,
    parts: list[str],
    stack: list[tuple[str, str | None]],
) -> int:
    """Open `[url=...]` or convert a whole `[url]...[/url]`; return where to go on."""
    if value is not None:
        href = value.strip().strip("\"'")
        safe = bool(_SAFE_URL.match(href))
        if safe:
            parts.append(f'<a href="{html.escape(href, quote=True)}">')
        stack.append(("url", "a" if safe else None))
        return match.end()

    close = text.lower().find("[/url]", match.end())
    if close < 0:
        parts.append(_escape(match.group(0)))
        return match.end()
    href = text[match.end() : close].strip()
    if _SAFE_URL.match(href):
        escaped = html.escape(href, quote=True)
        parts.append(f'<a href="{escaped}">{_escape(href)}</a>')
    else:
        parts.append(_escape(href))
    return close + len("[/url]")


def _find_cut(
    tokens: list[str], start: int, opened: list[str], limit: int
) -> tuple[int, list[str]]:
    """Index of the first token of the next message, and the tags open there."""
    stack = list(opened)
    length = 0
    # best cut per kind: paragraph, line, sentence, space -> (index, open tags)
    cuts: dict[int, tuple[int, list[str]]] = {}
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token.startswith("<") and len(token) > 1:
            if token.startswith("</"):
                if stack:
                    stack.pop()
            else:
                stack.append(token)
            continue

        size = _units(html.unescape(token))
        if length + size > limit:
            for kind in range(4):
                if kind in cuts:
                    return cuts[kind]
            return (index, stack) if index > start else (index + 1, stack)
        length += size

        kind = _break_kind(tokens, index)
        if kind is not None and length >= limit // 2:
            cuts[kind] = (index + 1, list(stack))
    return len(tokens), stack


def _break_kind(tokens: list[str], index: int) -> int | None:
    token = tokens[index]
    before = tokens[index - 1] if index > 0 else ""
    if token == "\n":
        return 0 if before == "\n" else 1
    if token == " ":
        return 2 if before in (".", "!", "?", "…") else 3
    return None


def _closing(opening: str) -> str:
    name = re.match(r"<([a-z]+)", opening)
    return f"</{name.group(1)}>" if name else ""


def _visible(chunk: str) -> str:
    return html.unescape(re.sub(r"<[^>]*>", "", chunk))


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
