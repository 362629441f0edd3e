"""Fetching third-party URLs (workflow files, media params) safely.

These requests go to hosts other than the ComfyUI server, so they never carry the server's
credentials (API key, cookies, extra headers): a fresh session is used, with a timeout and a
size limit enforced while streaming.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from witness._version import __version__
from witness.errors import (
    InvalidArgumentError,
    PayloadTooLargeError,
    RequestTimeoutError,
    ServerUnavailableError,
    TransportError,
    error_class_for_status,
)
from witness.utils.redact import redact_url, scrub_exception

__all__ = ["DEFAULT_MAX_BYTES", "FetchedFile", "fetch_url", "filename_from_url"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_TIMEOUT = (10.0, 60.0)


class FetchedFile:
    """A downloaded file held in a temporary path; delete it with :meth:`cleanup`.

    Attributes:
        path: Where the body was written.
        name: A file name suggested by the URL (or ``Content-Disposition``).
        content_type: The response's ``Content-Type`` (may be empty).
        size: Bytes written.
    """

    def __init__(self, path: Path, name: str, content_type: str, size: int) -> None:
        self.path = path
        self.name = name
        self.content_type = content_type
        self.size = size

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    def cleanup(self) -> None:
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> FetchedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def filename_from_url(url: str, default: str = "download") -> str:
    """The last path segment of a URL, decoded, or ``default``."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return name or default


def fetch_url(
    url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    chunk_size: int = 1 << 16,
) -> FetchedFile:
    """Download an http(s) URL to a temporary file, with a size limit and a timeout.

    No credentials of the ComfyUI connection are sent.

    Args:
        url: An ``http://`` or ``https://`` URL.
        max_bytes: Abort (and delete the partial file) past this many bytes.
        timeout: Seconds, or ``(connect, read)``.
        chunk_size: Bytes per read.

    Returns:
        The downloaded file; the caller deletes it (``cleanup()`` or ``with``).

    Raises:
        InvalidArgumentError: Not an http(s) URL.
        PayloadTooLargeError: The body is larger than ``max_bytes``.
        ApiError: The host answered with an error status.
        TransportError: Connection failure or timeout.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in {"http", "https"}:
        raise InvalidArgumentError("url", f"expected an http(s) URL, got {redact_url(url)!r}")
    shown = redact_url(url)
    session = requests.Session()
    session.headers["User-Agent"] = f"witness/{__version__}"
    fd, tmp = tempfile.mkstemp(prefix="witness-fetch-")
    path = Path(tmp)
    try:
        try:
            with session.get(url, stream=True, timeout=timeout) as response:
                if response.status_code >= 400:
                    cls = error_class_for_status(response.status_code)
                    raise cls(
                        status=response.status_code,
                        method="GET",
                        url=shown,
                        server_message=response.reason or "",
                    )
                announced = response.headers.get("Content-Length")
                if announced and announced.isdigit() and int(announced) > max_bytes:
                    raise PayloadTooLargeError(
                        status=0,
                        method="GET",
                        url=shown,
                        limit=max_bytes,
                        size=int(announced),
                        server_message="download larger than the allowed size",
                    )
                size = 0
                with os.fdopen(fd, "wb") as handle:
                    fd = -1
                    for chunk in response.iter_content(chunk_size=chunk_size):
                        size += len(chunk)
                        if size > max_bytes:
                            raise PayloadTooLargeError(
                                status=0,
                                method="GET",
                                url=shown,
                                limit=max_bytes,
                                server_message="download larger than the allowed size",
                            )
                        handle.write(chunk)
                name = _disposition_name(response.headers.get("Content-Disposition", ""))
                content_type = response.headers.get("Content-Type", "")
        except requests.exceptions.Timeout as exc:
            limit = timeout[1] if isinstance(timeout, tuple) else timeout
            raise RequestTimeoutError(
                f"GET {shown}: no answer within {limit} s",
                method="GET",
                url=shown,
                timeout=float(limit),
                phase="read",
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise ServerUnavailableError(
                f"GET {shown}: cannot reach the host", method="GET", url=shown
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise TransportError(f"GET {shown}: {exc}", method="GET", url=shown) from exc
    except BaseException as exc:
        scrub_exception(exc)  # third-party URLs may carry tokens in their query
        if fd >= 0:
            os.close(fd)
        path.unlink(missing_ok=True)
        raise
    finally:
        session.close()
    logger.debug("fetched %s (%d bytes)", shown, size)
    return FetchedFile(path, name or filename_from_url(url), content_type, size)


def _disposition_name(header: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename" and value:
            return os.path.basename(value.strip().strip('"'))
    return ""
