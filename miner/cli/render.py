"""Plain-text output for the CLI: one table renderer and the number formatters.

Terminal text is cleaned of control characters (a note title holding ``\\x1b[31m`` must not recolour
the user's terminal); wide CJK characters count as two columns.
"""
from __future__ import annotations

import math
import re
import unicodedata

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def add_view_args(parser, top: int | None = 20, segment: str | None = None) -> None:
    """The options every snapshot view shares: ``--run``, and ``--top`` / ``--segment`` when given."""
    if segment is not None:
        parser.add_argument("--segment", help=segment)
    if top is not None:
        parser.add_argument("--top", type=int, default=top, help=f"rows to show (default {top})")
    parser.add_argument("--run", help="snapshot run id (default latest)")


def clean(text) -> str:
    """Text safe to print: ANSI escapes and control characters removed, newlines as spaces."""
    return _CONTROL.sub("", "" if text is None else str(text)).replace("\n", " ").replace("\t", " ")


def blank(value) -> bool:
    try:
        return value is None or bool(value != value) or (isinstance(value, float) and math.isnan(value))
    except (TypeError, ValueError):       # pandas.NA and friends
        return True


def count(value) -> str:
    return "—" if blank(value) else f"{int(value):,}"


def pct(value, signed: bool = False) -> str:
    if blank(value):
        return "—"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def ratio(value) -> str:
    return "—" if blank(value) else f"{value:.2f}x"


def money(value) -> str:
    return "—" if blank(value) else f"¥{value:,.0f}"


def number(value, spec: str = "+.1f") -> str:
    return "—" if blank(value) else format(value, spec)


def width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _clip(text: str, max_width: int) -> str:
    while width(text) > max_width:
        text = text[:-2] + "…"
    return text


def table(headers: list[str], rows: list[list], max_col: int = 32, align_right_from: int = 1) -> str:
    """Aligned plain-text table; columns from ``align_right_from`` on are right-aligned (numbers)."""
    rows = [[_clip(clean(c), max_col) for c in r] for r in rows]
    widths = [max([width(h)] + [width(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells):
        out = []
        for i, c in enumerate(cells):
            pad = " " * (widths[i] - width(c))
            out.append(pad + c if i >= align_right_from else c + pad)
        return "  ".join(out).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])
