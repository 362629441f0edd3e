"""Keeping secrets out of messages, logs and reprs."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "SENSITIVE_QUERY_KEYS",
    "SecretFilter",
    "redact_text",
    "redact_url",
    "scrub_exception",
    "scrub_text",
]

REDACTED = "***"

# Query parameter names whose values are always hidden, whatever their value.
SENSITIVE_QUERY_KEYS = frozenset(
    {"token", "key", "api_key", "apikey", "access_token", "auth", "password", "secret", "sig"}
)


_QUERY_SECRET_RE = re.compile(
    r"(?i)(?<![A-Za-z0-9_])("
    + "|".join(sorted(SENSITIVE_QUERY_KEYS, key=len, reverse=True))
    + r")=([^&\s'\"#;]+)"
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


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Redact known secrets and the values of sensitive query parameters in free text."""
    return redact_text(_QUERY_SECRET_RE.sub(rf"\1={REDACTED}", text), secrets)


def scrub_exception(exc: BaseException, secrets: Iterable[str] = ()) -> BaseException:
    """Redact secrets inside a third-party exception chain, in place, before chaining it.

    ``raise WitnessError(...) from exc`` keeps ``exc`` (and its own causes) in every printed
    traceback. requests, urllib3 and websocket-client put the raw URL (with query-string
    tokens) or an echoed response body in their exceptions' ``args``; this rewrites those
    ``args`` (recursively through nested exceptions, ``__cause__`` and ``__context__``), and
    drops the ``request``/``response`` objects requests attaches (their headers hold the
    credentials).

    Returns:
        ``exc`` itself, for ``raise ... from scrub_exception(exc, secrets)``.
    """
    secrets = tuple(secrets)
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        new_args: list[object] = []
        for arg in current.args:
            if isinstance(arg, str):
                new_args.append(scrub_text(arg, secrets))
            elif isinstance(arg, BaseException):
                stack.append(arg)
                new_args.append(arg)
            else:
                new_args.append(arg)
        with contextlib.suppress(AttributeError, TypeError):  # exotic exception types
            current.args = tuple(new_args)
        attributes = getattr(current, "__dict__", None)
        names = {"url", "reason", *(attributes if isinstance(attributes, dict) else ())}
        for attr in sorted(names):
            value = getattr(current, attr, None)
            cleaned: object = value
            if isinstance(value, str):
                # Messages, URLs, and echoed bodies (JSONDecodeError.doc, urllib3's _message).
                cleaned = scrub_text(value, secrets)
            elif isinstance(value, bytes):
                # websocket-client's resp_body: the raw answer to the handshake.
                cleaned = scrub_text(value.decode("utf-8", "replace"), secrets).encode()
            elif isinstance(value, BaseException):
                stack.append(value)
            if cleaned is not value and cleaned != value:
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(current, attr, cleaned)
        # requests' exceptions keep the PreparedRequest (its headers carry the Authorization
        # header and cookies) and the Response (which links back to it): drop both.
        for attr in ("request", "response"):
            if getattr(current, attr, None) is not None:
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(current, attr, None)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
    return exc


class SecretFilter(logging.Filter):
    """A logging filter that redacts secrets in records (used on urllib3's logger, which logs
    request lines with their query strings at DEBUG)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets: set[str] = set(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # pragma: no cover - a broken record: leave it alone
            return True
        clean = scrub_text(message, self.secrets)
        if clean != message:
            record.msg = clean
            record.args = None
        return True
