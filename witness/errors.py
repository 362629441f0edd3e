"""The exception tree of witness.

Every error witness raises derives from :class:`WitnessError`, so one ``except WitnessError``
catches them all. The tree::

    WitnessError
    ├── ConfigError                  a setting (argument, environment, .env) is invalid
    ├── InvalidArgumentError         a call argument is rejected before anything is sent
    ├── FeatureUnavailableError      the server lacks a capability (e.g. /api/jobs on 0.3.75)
    ├── TransportError               nothing usable came back from the server
    │   ├── ServerUnavailableError   connection refused / DNS / TLS / reset
    │   └── RequestTimeoutError      connect or read timeout
    ├── ResponseDecodeError          a 2xx whose body is not the JSON the route promises
    └── ApiError                     the server answered with an error status
        ├── BadRequestError          400
        │   └── PromptValidationError   400 from POST /prompt, with parsed node_errors
        ├── UnauthorizedError        401
        ├── ForbiddenError           403
        ├── NotFoundError            404
        ├── ConflictError            409
        ├── PayloadTooLargeError     413, with the server's limit in bytes
        └── ServerError              5xx

Secrets never reach these messages: the HTTP client redacts URLs and bodies before it builds
an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ApiError",
    "BadRequestError",
    "ConfigError",
    "ConflictError",
    "FeatureUnavailableError",
    "ForbiddenError",
    "InvalidArgumentError",
    "NodeError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PromptValidationError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "ServerError",
    "ServerUnavailableError",
    "TransportError",
    "UnauthorizedError",
    "WitnessError",
    "error_class_for_status",
]


class WitnessError(Exception):
    """Root of every error raised by witness.

    Attributes:
        message: The human-readable description (also what ``str()`` returns).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(WitnessError, ValueError):
    """A configuration value is invalid.

    Attributes:
        name: The setting or environment variable that holds the bad value.
        value: The offending value (as given; secrets are never stored here).
    """

    def __init__(self, name: str, value: object, reason: str) -> None:
        super().__init__(f"invalid {name}={value!r}: {reason}")
        self.name = name
        self.value = value
        self.reason = reason


class InvalidArgumentError(WitnessError, ValueError):
    """A call argument was rejected before any request was sent.

    Attributes:
        argument: Name of the argument at fault.
    """

    def __init__(self, argument: str, reason: str) -> None:
        super().__init__(f"invalid argument {argument!r}: {reason}")
        self.argument = argument
        self.reason = reason


class FeatureUnavailableError(WitnessError):
    """The server does not offer a capability the call needs.

    Attributes:
        capability: What is missing, e.g. ``"GET /api/jobs"``.
    """

    def __init__(self, capability: str, detail: str = "") -> None:
        text = f"the server does not support {capability}"
        if detail:
            text += f" ({detail})"
        super().__init__(text)
        self.capability = capability


class TransportError(WitnessError):
    """No usable HTTP response arrived.

    Attributes:
        method: HTTP method of the failed request.
        url: The request URL, with secrets redacted.
    """

    def __init__(self, message: str, *, method: str, url: str) -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class ServerUnavailableError(TransportError):
    """The server could not be reached (refused, reset, DNS or TLS failure)."""


class RequestTimeoutError(TransportError):
    """The server did not answer within the timeout.

    Attributes:
        timeout: The limit in seconds that was exceeded.
        phase: ``"connect"`` or ``"read"``.
    """

    def __init__(self, message: str, *, method: str, url: str, timeout: float, phase: str) -> None:
        super().__init__(message, method=method, url=url)
        self.timeout = timeout
        self.phase = phase


class ResponseDecodeError(WitnessError):
    """A successful response did not carry the JSON the route promises.

    Typical cause: a reverse proxy answering with an HTML page.

    Attributes:
        status: HTTP status of the response.
        method: HTTP method.
        url: Redacted request URL.
        content_type: The response's ``Content-Type``.
        body: The start of the body (at most a few hundred characters).
    """

    def __init__(
        self, *, status: int, method: str, url: str, content_type: str, body: str
    ) -> None:
        super().__init__(
            f"{method} {url} returned HTTP {status} with a body that is not JSON "
            f"(Content-Type {content_type or 'unset'}): {body!r}"
        )
        self.status = status
        self.method = method
        self.url = url
        self.content_type = content_type
        self.body = body


class ApiError(WitnessError):
    """The server answered with an HTTP error status.

    Attributes:
        status: HTTP status code.
        method: HTTP method.
        url: Redacted request URL.
        server_message: The server's own explanation, extracted from whichever body form it
            used (empty, text, JSON or aiohttp's HTML/text 500 page); may be empty.
        body: The decoded JSON body when there was one, else the (truncated) text.
    """

    def __init__(
        self,
        *,
        status: int,
        method: str,
        url: str,
        server_message: str = "",
        body: Any = None,
    ) -> None:
        self.status = status
        self.method = method
        self.url = url
        self.server_message = server_message
        self.body = body
        super().__init__(self._format())

    def _format(self) -> str:
        text = f"{self.method} {self.url} failed with HTTP {self.status}"
        if self.server_message:
            text += f": {self.server_message}"
        return text


class BadRequestError(ApiError):
    """HTTP 400: the server rejected the request's content."""


class UnauthorizedError(ApiError):
    """HTTP 401: authentication is missing or wrong (often an auth proxy in front)."""


class ForbiddenError(ApiError):
    """HTTP 403: forbidden (origin check, path traversal, or an auth proxy)."""


class NotFoundError(ApiError):
    """HTTP 404, or a 200 whose body means "no such thing" (e.g. ``{}`` from /object_info/X)."""


class ConflictError(ApiError):
    """HTTP 409: the target exists and overwriting was not allowed."""


class PayloadTooLargeError(ApiError):
    """HTTP 413 (or a client-side pre-check): the request body exceeds the server's limit.

    Attributes:
        limit: The server's limit in bytes when known, else ``None``.
        size: The size of what was sent, when known.
    """

    def __init__(
        self,
        *,
        status: int,
        method: str,
        url: str,
        server_message: str = "",
        body: Any = None,
        limit: int | None = None,
        size: int | None = None,
    ) -> None:
        if limit is None:
            found = re.search(r"(\d+)", server_message or "")
            limit = int(found.group(1)) if found else None
        self.limit = limit
        self.size = size
        super().__init__(
            status=status, method=method, url=url, server_message=server_message, body=body
        )

    def _format(self) -> str:
        text = super()._format()
        details = []
        if self.size is not None:
            details.append(f"size {self.size} bytes")
        if self.limit is not None:
            details.append(f"server limit {self.limit} bytes ({self.limit / 2**20:.0f} MiB)")
        if details:
            text += " [" + ", ".join(details) + "]"
        return text


class ServerError(ApiError):
    """HTTP 5xx: the server failed (ComfyUI answers many malformed inputs with a bare 500)."""


@dataclass(frozen=True)
class NodeError:
    """One problem ComfyUI reported for one node input while validating a prompt.

    Attributes:
        node_id: Id of the node in the prompt.
        class_type: The node's class.
        title: The node's ``_meta.title`` when the workflow has one.
        type: ComfyUI's error type, e.g. ``value_smaller_than_min``.
        message: ComfyUI's message, e.g. ``Value 0 smaller than min of 1``.
        details: ComfyUI's details string.
        input_name: The input at fault, when known.
        received_value: The value that was sent, when reported.
        input_config: The input's spec (``["INT", {"min": 1, ...}]``), when reported.
        dependent_outputs: Output nodes that this problem blocks.
    """

    node_id: str
    class_type: str | None
    type: str
    message: str
    details: str = ""
    title: str | None = None
    input_name: str | None = None
    received_value: Any = None
    input_config: Any = None
    dependent_outputs: tuple[str, ...] = field(default_factory=tuple)

    @property
    def allowed(self) -> str | None:
        """A short description of the accepted values, from ``input_config``, if any."""
        config = self.input_config
        if not isinstance(config, list | tuple) or not config:
            return None
        kind, opts = config[0], config[1] if len(config) > 1 else {}
        if isinstance(kind, list):
            return "one of " + ", ".join(repr(c) for c in kind[:20])
        if not isinstance(opts, Mapping):
            return str(kind)
        if isinstance(opts.get("options"), list):
            return "one of " + ", ".join(repr(c) for c in opts["options"][:20])
        parts = [str(kind)]
        if "min" in opts:
            parts.append(f"min {opts['min']}")
        if "max" in opts:
            parts.append(f"max {opts['max']}")
        return " ".join(parts)

    def __str__(self) -> str:
        where = f"node {self.node_id}"
        if self.class_type:
            where += f" ({self.class_type}"
            where += f' "{self.title}")' if self.title else ")"
        elif self.title:
            where += f' "{self.title}"'
        if self.input_name:
            where += f", input {self.input_name!r}"
        text = f"{where}: {self.message or self.type} [{self.type}]"
        if self.details and self.details != self.input_name and self.details not in self.message:
            text += f" {self.details}"
        if self.received_value is not None:
            text += f"; received {self.received_value!r}"
        allowed = self.allowed
        if allowed:
            text += f"; allowed: {allowed}"
        return text


def parse_node_errors(
    node_errors: Any, prompt: Mapping[str, Any] | None = None
) -> list[NodeError]:
    """Flatten ComfyUI's ``node_errors`` mapping into :class:`NodeError` records.

    Args:
        node_errors: ``{node_id: {"errors": [...], "dependent_outputs": [...],
            "class_type": str}}`` as returned by ``POST /prompt``.
        prompt: The submitted prompt, used to add node titles (``_meta.title``).

    Returns:
        One record per reported error, in the server's order.
    """
    records: list[NodeError] = []
    if not isinstance(node_errors, Mapping):
        return records
    for node_id, entry in node_errors.items():
        if not isinstance(entry, Mapping):
            continue
        title = None
        node = prompt.get(str(node_id)) if prompt else None
        if isinstance(node, Mapping):
            meta = node.get("_meta")
            if isinstance(meta, Mapping) and isinstance(meta.get("title"), str):
                title = meta["title"]
        dependent = tuple(str(o) for o in entry.get("dependent_outputs") or ())
        class_type = entry.get("class_type")
        for err in entry.get("errors") or ():
            if not isinstance(err, Mapping):
                continue
            extra = err.get("extra_info") if isinstance(err.get("extra_info"), Mapping) else {}
            assert isinstance(extra, Mapping)
            records.append(
                NodeError(
                    node_id=str(node_id),
                    class_type=class_type if isinstance(class_type, str) else None,
                    title=title,
                    type=str(err.get("type", "")),
                    message=str(err.get("message", "")),
                    details=str(err.get("details", "") or ""),
                    input_name=extra.get("input_name"),
                    received_value=extra.get("received_value"),
                    input_config=extra.get("input_config"),
                    dependent_outputs=dependent,
                )
            )
    return records


class PromptValidationError(BadRequestError):
    """``POST /prompt`` answered 400: the prompt failed validation.

    Attributes:
        error_type: ComfyUI's top-level ``error.type`` (``prompt_outputs_failed_validation``,
            ``invalid_prompt``, ``prompt_no_outputs``, ``no_prompt``, ...).
        error: The raw top-level ``error`` object.
        node_errors: Parsed per-input problems (may be empty, e.g. for ``invalid_prompt``).
        raw_node_errors: ComfyUI's ``node_errors`` mapping, unmodified.
    """

    def __init__(
        self,
        *,
        status: int,
        method: str,
        url: str,
        body: Any,
        prompt: Mapping[str, Any] | None = None,
    ) -> None:
        body_map: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
        error = body_map.get("error")
        self.error: dict[str, Any] = dict(error) if isinstance(error, Mapping) else {}
        self.error_type = str(self.error.get("type", "") or "")
        self.raw_node_errors: dict[str, Any] = dict(body_map.get("node_errors") or {})
        self.node_errors = parse_node_errors(self.raw_node_errors, prompt)
        message = str(self.error.get("message", "") or "")
        details = str(self.error.get("details", "") or "")
        if isinstance(error, str):
            message = error
        if details:
            message = f"{message}: {details}" if message else details
        super().__init__(
            status=status, method=method, url=url, server_message=message, body=body
        )

    def _format(self) -> str:
        head = "prompt rejected by the server"
        if self.error_type:
            head += f" ({self.error_type})"
        if self.server_message:
            head += f": {self.server_message}"
        lines = [head]
        lines.extend(f"  - {err}" for err in self.node_errors)
        return "\n".join(lines)


_STATUS_CLASSES: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
}


def error_class_for_status(status: int) -> type[ApiError]:
    """Return the :class:`ApiError` subclass that represents an HTTP status."""
    if status in _STATUS_CLASSES:
        return _STATUS_CLASSES[status]
    if status >= 500:
        return ServerError
    return ApiError
