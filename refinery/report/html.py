"""HTML pieces for the report. Every value from the run folder goes through `cell` or `text`,
which escape it: documents are crawled web pages, and a page containing `<script>` must show
as text, never run in the reader's browser."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from typing import Any

from matplotlib.figure import Figure

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: 0.2em; }
section { margin-bottom: 2.5em; }
table { border-collapse: collapse; margin: 0.8em 0; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.reason td:first-child { padding-left: 2em; color: #555; }
p.absent { color: #888; font-style: italic; }
p.warning { color: #a33; font-weight: bold; }
pre.doc { white-space: pre-wrap; background: #fafafa; border: 1px solid #eee; padding: 0.5em;
          max-height: 14em; overflow: auto; font-size: 12px; }
img { max-width: 100%; }
"""


def text(value: Any) -> str:
    """A value as escaped text: counts with thousands separators, floats to 4 digits."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return html.escape(json.dumps(value, sort_keys=True))
    return html.escape(str(value))


def cell(value: Any, tag: str = "td") -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return (
        f'<{tag} class="num">{text(value)}</{tag}>' if numeric else f"<{tag}>{text(value)}</{tag}>"
    )


def table(
    header: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    caption: str = "",
    row_classes: Sequence[str] = (),
) -> str:
    """A table of escaped values; `row_classes[i]` styles row i (funnel reasons are indented);
    an empty `header` leaves the table without a head row (key/value facts)."""
    head = f"<thead><tr>{''.join(cell(h, 'th') for h in header)}</tr></thead>" if header else ""
    body = []
    for i, row in enumerate(rows):
        css = f' class="{row_classes[i]}"' if i < len(row_classes) and row_classes[i] else ""
        body.append(f"<tr{css}>{''.join(cell(v) for v in row)}</tr>")
    title = f"<caption>{text(caption)}</caption>" if caption else ""
    return f"<table>{title}{head}<tbody>{''.join(body)}</tbody></table>"


def section(anchor: str, title: str, body: Sequence[str]) -> str:
    return f'<section id="{text(anchor)}"><h2>{text(title)}</h2>{"".join(body)}</section>'


def heading(title: str, anchor: str = "") -> str:
    attribute = f' id="{text(anchor)}"' if anchor else ""
    return f"<h3{attribute}>{text(title)}</h3>"


def paragraph(words: str) -> str:
    return f"<p>{text(words)}</p>"


def absent(what: str) -> str:
    """The line a section shows instead of its content when the run has no inputs for it."""
    return f'<p class="absent">Not present: {text(what)}</p>'


def warning(words: str) -> str:
    """A line saying the numbers shown do not belong together (a stage redone alone, say)."""
    return f'<p class="warning">Warning: {text(words)}</p>'


def document(body: str) -> str:
    return f'<pre class="doc">{text(body)}</pre>'


def image(figure: Figure, alt: str) -> str:
    """A matplotlib figure as an inline PNG, so the page needs no other file."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight", metadata={"Software": None})
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{text(alt)}" src="data:image/png;base64,{data}">'


def page(title: str, parts: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{text(title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>{text(title)}</h1>{''.join(parts)}</body></html>\n"
    )
