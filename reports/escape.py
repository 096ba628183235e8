"""The one HTML escaper of the reports: text into HTML or SVG, in element content or an attribute.

Every ``&``, ``<``, ``>``, ``"`` and ``'`` becomes an entity, so report text (names, SQL, numbers,
tooltips) can never open a tag or end an attribute. ``None`` is empty text, never ``"None"``.
"""

from __future__ import annotations

from html import escape


def escape_html(value: object) -> str:
    """``value`` as text, safe inside HTML/SVG elements and quoted attributes."""
    return escape("" if value is None else str(value), quote=True)
