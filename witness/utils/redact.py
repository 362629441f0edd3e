"""Keeping secrets out of messages, logs and reprs."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "SENSITIVE_QUERY_KEYS", "redact_text", "redact_url"]

REDACTED = "***"

# Query parameter names whose values are always hidden, whatever their value.
SENSITIVE_QUERY_KEYS = frozenset(
    {"token", "key", "api_key", "apikey", "access_token", "auth", "password", "secret", "sig"}
)


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """Replace every occurrence of each secret in ``text`` with ``***``."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def redact_url(url: str, secrets: Iterable[str] = ()) -> str:
    """Hide credentials in a URL: user info, sensitive query values and known secrets."""
    secrets = tuple(secrets)
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url, secrets)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = REDACTED + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = [
            (k, REDACTED if k.lower() in SENSITIVE_QUERY_KEYS else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="*")
    return redact_text(
        urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)), secrets
    )
