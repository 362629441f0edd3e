"""Fetching third-party URLs (workflow files, media params, cloud outputs) safely.

These requests go to hosts other than the ComfyUI server, so they never carry the server's
credentials (API key, cookies, extra headers, query parameters): they go through the
credential-free :class:`~witness.transport.http.PublicClient` (the same retry policy, deadline
clamping and error mapping as every other request), with a timeout and a size limit
enforced while streaming.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from witness.errors import DownloadTooLargeError, InvalidArgumentError
from witness.transport.deadline import Deadline
from witness.transport.http import PublicClient
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
    deadline: Deadline | None = None,
    client: PublicClient | None = None,
) -> FetchedFile:
    """Download an http(s) URL to a temporary file, with a size limit and a timeout.

    No credentials of the ComfyUI connection are sent (see :class:`PublicClient`).

    Args:
        url: An ``http://`` or ``https://`` URL.
        max_bytes: Abort (and delete the partial file) past this many bytes.
        timeout: Seconds, or ``(connect, read)``; clamped to ``deadline``.
        chunk_size: Bytes per read.
        deadline: The call's deadline (default: the active ``Deadline.scope()``).
        client: The credential-free client to use (default: a fresh one, closed after).

    Returns:
        The downloaded file; the caller deletes it (``cleanup()`` or ``with``).

    Raises:
        InvalidArgumentError: Not an http(s) URL.
        DownloadTooLargeError: The body is larger than ``max_bytes`` (with the limit).
        ApiError: The host answered with an error status.
        TransportError: Connection failure or timeout.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme not in {"http", "https"}:
        raise InvalidArgumentError("url", f"expected an http(s) URL, got {redact_url(url)!r}")
    shown = redact_url(url)
    limits = (
        timeout
        if isinstance(timeout, tuple)
        else (min(float(timeout), DEFAULT_TIMEOUT[0]), float(timeout))
    )
    public = client if client is not None else PublicClient()
    fd, tmp = tempfile.mkstemp(prefix="witness-fetch-")
    path = Path(tmp)
    try:
        with public.get(url, timeout=limits, deadline=deadline) as response:
            announced = response.headers.get("Content-Length")
            if announced and announced.isdigit() and int(announced) > max_bytes:
                raise _too_large(shown, max_bytes, int(announced), announced=True)
            size = 0
            with os.fdopen(fd, "wb") as handle:
                fd = -1
                for chunk in public.transport.body(
                    response, chunk_size=chunk_size, deadline=deadline
                ):
                    size += len(chunk)
                    if size > max_bytes:
                        raise _too_large(shown, max_bytes, size, announced=False)
                    handle.write(chunk)
            name = _disposition_name(response.headers.get("Content-Disposition", ""))
            content_type = response.headers.get("Content-Type", "")
    except BaseException as exc:
        scrub_exception(exc)  # third-party URLs may carry tokens in their query
        if fd >= 0:
            os.close(fd)
        path.unlink(missing_ok=True)
        raise
    finally:
        if client is None:
            public.close()
    logger.debug("fetched %s (%d bytes)", shown, size)
    return FetchedFile(path, name or filename_from_url(url), content_type, size)


def _too_large(url: str, limit: int, size: int, *, announced: bool) -> DownloadTooLargeError:
    what = f"{size} bytes announced" if announced else f"stopped after {size} bytes"
    return DownloadTooLargeError(
        f"GET {url}: the download is over the allowed size of {limit} bytes ({what}); "
        "nothing was kept",
        url=url,
        limit=limit,
        size=size,
    )


def _disposition_name(header: str) -> str:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "filename" and value:
            return os.path.basename(value.strip().strip('"'))
    return ""
