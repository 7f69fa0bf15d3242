"""Numbers and text formatted for people: one place, used by plots, report tables and notebook
narrative.

The ``escape_*`` helpers are the one place where text that comes from the data or the options
(customer ids, segment and channel names, product codes, column and file names, the currency)
is made inert for the output it goes into: HTML (:func:`escape_html`), Markdown that nbconvert
turns into HTML (:func:`escape_markdown`) and matplotlib text (:func:`chart_text`). Everything
that writes a report passes user text through one of them.
"""

from __future__ import annotations

import html
import math
import re

__all__ = ["chart_text", "count", "escape_html", "escape_markdown", "money", "number", "percent"]

# Characters that carry meaning in Markdown, in nbconvert's maths ($) or in auto-linking (:),
# plus HTML's own: in user text each becomes a numeric character reference, which Markdown
# shows as the character itself and never reads as syntax (links, images, emphasis, raw HTML,
# ``javascript:`` or bare-URL auto-links).
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_{}\[\]()<>#+!|~$:&\"'=/@^%;]")


def money(value: float, currency: str = "$", *, decimals: int | None = None) -> str:
    """Format an amount of money compactly: ``$1,234``, ``$12.3k``, ``$4.56M``.

    >>> money(1234.5)
    '$1,234'
    >>> money(2_345_678)
    '$2.35M'
    >>> money(-12.5, decimals=2)
    '-$12.50'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if decimals is not None:
        return f"{sign}{currency}{value:,.{decimals}f}"
    if value >= 1e9:
        return f"{sign}{currency}{value / 1e9:.2f}B"
    if value >= 1e6:
        return f"{sign}{currency}{value / 1e6:.2f}M"
    if value >= 1e5:
        return f"{sign}{currency}{value / 1e3:.0f}k"
    if value >= 100:
        return f"{sign}{currency}{value:,.0f}"
    return f"{sign}{currency}{value:,.2f}"


def percent(share: float, *, decimals: int = 0) -> str:
    """Format a share (0.583) as a percentage ('58%').

    >>> percent(0.583)
    '58%'
    >>> percent(0.0123, decimals=1)
    '1.2%'
    """
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return "n/a"
    return f"{100 * share:.{decimals}f}%"


def count(n: float) -> str:
    """Format a count with thousands separators: ``12,345``.

    >>> count(12345)
    '12,345'
    """
    return f"{round(n):,}"


def number(value: float, *, digits: int = 3) -> str:
    """Format a plain number with ``digits`` significant digits: ``1.23``, ``1,230``.

    >>> number(1.23456)
    '1.23'
    >>> number(1234.5)
    '1,234'
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def escape_html(text: object) -> str:
    """Make ``text`` inert in HTML: ``& < > " '`` become character references.

    >>> escape_html('<b onmouseover="alert(2)">seg</b>')
    '&lt;b onmouseover=&quot;alert(2)&quot;&gt;seg&lt;/b&gt;'
    """
    return html.escape(str(text), quote=True)


def escape_markdown(text: object) -> str:
    """Make ``text`` literal in Markdown that is rendered to HTML (nbconvert, Jupyter).

    Every character that Markdown, its maths (``$``) or its auto-linking could read as syntax is
    written as a numeric character reference, so the reader sees exactly ``text`` and no link,
    image, emphasis, HTML element or ``javascript:`` URL can come out of it.

    >>> escape_markdown("[click](javascript:alert(5))")
    '&#91;click&#93;&#40;javascript&#58;alert&#40;5&#41;&#41;'
    >>> escape_markdown("Champions")
    'Champions'
    """
    return _MARKDOWN_SPECIAL.sub(lambda m: f"&#{ord(m.group())};", str(text))


def chart_text(text: object) -> str:
    r"""Make ``text`` literal in a matplotlib title, label or legend: ``$`` is not maths.

    When ``rcParams["text.parse_math"]`` is off (report notebooks switch it off) text is shown
    as it is and returned unchanged; otherwise dollar signs are escaped.

    >>> import matplotlib as mpl
    >>> with mpl.rc_context({"text.parse_math": True}):
    ...     chart_text("$12 to $15")
    '\\$12 to \\$15'
    """
    import matplotlib as mpl

    text = str(text)
    if not mpl.rcParams.get("text.parse_math", True):
        return text
    return text.replace("$", r"\$")
