"""One sanitiser for every string that came from outside, before any face shows it.

Bodies, headers, certificate names, DNS names and `Location` are hostile: they may hold
escape sequences that repaint a terminal, Rich markup that drives the TUI, or the key echoed
back. `text` masks registered secrets, shows control characters escaped (`\\x1b`) instead of
emitting them, and bounds the length; `markup` also escapes Rich markup for the TUI.
"""

from __future__ import annotations

import unicodedata

from assure_doctor import redact

ELLIPSIS = "…"
DEFAULT_LIMIT = 300


def _escaped(char: str, keep_newlines: bool) -> str:
    code = ord(char)
    if keep_newlines and char == "\n":
        return char
    if code < 0x20 or 0x7F <= code <= 0x9F:
        return f"\\x{code:02x}"
    # Format characters (bidi overrides, zero-width joiners) reorder or hide what is shown.
    if unicodedata.category(char) in ("Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
        return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
    return char


def text(value: object, limit: int | None = DEFAULT_LIMIT, *, keep_newlines: bool = False
         ) -> str:
    """`value` as a safe, bounded string: secrets masked, control characters escaped, and cut
    to `limit` characters with an ellipsis (None: no limit)."""
    raw = redact.scrub(str(value))
    if limit is not None and len(raw) > limit * 4:
        raw = raw[: limit * 4]  # bound the work before escaping
    if raw.isascii() and raw.isprintable():
        safe = raw  # nothing to escape (most names and bodies): no walk character by character
    else:
        safe = "".join(_escaped(char, keep_newlines) for char in raw)
    if limit is not None and len(safe) > limit:
        return safe[: max(limit - 1, 0)] + ELLIPSIS
    return safe


def markup(value: object, limit: int | None = DEFAULT_LIMIT, *, keep_newlines: bool = False
           ) -> str:
    """`text`, then escaped for Rich markup (the TUI): `[x]` is shown, never interpreted."""
    from rich.markup import escape

    return escape(text(value, limit, keep_newlines=keep_newlines))
