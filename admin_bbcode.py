"""Render an FAQ answer the way Bitrix24 chat shows it, safely.

Bitrix24 messages are BB-code only (no Markdown): `[b]`, `[i]`, `[u]`, `[s]`,
`[url]`, `[url=...]`, `[color=#...]`, `[size=N]`, `[code]`, `[br]` and plain line
breaks. The whole text is HTML-escaped first; only then are the allowed tags
turned into markup, so anything else a person typed (`<script>`, a `javascript:`
link, an unknown tag) stays visible as text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markupsafe import Markup, escape

# the platform cuts longer messages and appends " (...)"
MAX_MESSAGE_LENGTH = 20_000

_SIMPLE_TAGS = {"b": "b", "i": "i", "u": "u", "s": "s"}
_TOKEN = re.compile(r"\[(/?)([a-zA-Z]+)(?:=([^\]\n]{1,2000}))?\]")
_SAFE_URL = re.compile(r"^(?:https?://|/)[^\s<>\"'`]*$", re.IGNORECASE)
_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


@dataclass
class _Open:
    name: str
    index: int
    literal: str


def _unescape(text: str) -> str:
    return (
        text.replace("&#34;", '"')
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
    )


def _safe_href(escaped_value: str) -> str | None:
    """Return the value for an href attribute, or None if the URL is not allowed."""
    raw = _unescape(escaped_value).strip()
    if not _SAFE_URL.match(raw) or raw.startswith("//"):
        return None
    return str(escape(raw))


def render_bbcode(text: str) -> Markup:
    """Return chat-like HTML for `text`: escaped first, then the allowed tags."""
    escaped = str(escape(text.strip()))
    parts: list[str] = []
    stack: list[_Open] = []
    position = 0

    for match in _TOKEN.finditer(escaped):
        if match.start() < position:
            continue
        parts.append(escaped[position : match.start()])
        position = match.end()
        literal = match.group(0)
        closing, name, value = match.group(1), match.group(2).lower(), match.group(3)

        if name == "br" and not closing and value is None:
            parts.append("<br>")
        elif name == "code" and not closing:
            end = escaped.lower().find("[/code]", position)
            if end < 0:
                parts.append(literal)
                continue
            parts.append(f'<code class="bb-code">{escaped[position:end]}</code>')
            position = end + len("[/code]")
        elif name == "url" and not closing and value is None:
            end = escaped.lower().find("[/url]", position)
            href = _safe_href(escaped[position:end]) if end >= 0 else None
            if href is None:
                parts.append(literal)
                continue
            parts.append(
                f'<a href="{href}" rel="noopener noreferrer" '
                f'target="_blank">{escaped[position:end]}</a>'
            )
            position = end + len("[/url]")
        elif closing and value is None:
            if stack and stack[-1].name == name:
                stack.pop()
                parts.append("</a>" if name == "url" else _closing_html(name))
            else:
                parts.append(literal)
        else:
            opening = _opening_html(name, value, stack)
            if opening is None:
                parts.append(literal)
            else:
                stack.append(_Open(name, len(parts), literal))
                parts.append(opening)

    parts.append(escaped[position:])
    # a tag never closed is shown as typed, as the chat does
    for unclosed in stack:
        parts[unclosed.index] = unclosed.literal
    return Markup("".join(parts))


def _opening_html(name: str, value: str | None, stack: list[_Open]) -> str | None:
    if name in _SIMPLE_TAGS and value is None:
        return f"<{_SIMPLE_TAGS[name]}>"
    if name == "url" and value is not None:
        if any(item.name == "url" for item in stack):
            return None
        href = _safe_href(value)
        if href is None:
            return None
        return f'<a href="{href}" rel="noopener noreferrer" target="_blank">'
    if name == "color" and value is not None and _COLOR.match(value):
        return f'<span style="color:{value}">'
    if name == "size" and value is not None and value.isdigit():
        size = int(value)
        if 8 <= size <= 30:
            return f'<span style="font-size:{size}px">'
    return None


def _closing_html(name: str) -> str:
    if name in _SIMPLE_TAGS:
        return f"</{_SIMPLE_TAGS[name]}>"
    return "</span>"


def strip_bbcode(text: str) -> str:
    """Return the text without any BB-code tags (for short one-line previews)."""
    return _TOKEN.sub("", text)
