"""URL path building with every caller-supplied segment quoted."""

from __future__ import annotations

from urllib.parse import quote

from witness.errors import InvalidArgumentError

__all__ = ["quote_segment", "route"]


def quote_segment(value: object, *, argument: str = "path segment") -> str:
    """Percent-encode one URL path segment, including ``/``, ``?``, ``#`` and ``%``.

    Args:
        value: The segment (converted with ``str``).
        argument: Name used in the error when the value is empty.

    Raises:
        InvalidArgumentError: The segment is empty.
    """
    text = str(value)
    if not text:
        raise InvalidArgumentError(argument, "must not be empty")
    return quote(text, safe="")


def route(template: str, *segments: object) -> str:
    """Fill a route template's ``{}`` placeholders with quoted segments.

    Example:
        ``route("/history/{}", "a/b")`` gives ``"/history/a%2Fb"``.
    """
    if template.count("{}") != len(segments):
        raise ValueError(f"route {template!r} takes {template.count('{}')} segments")
    return template.format(*(quote_segment(s) for s in segments))
