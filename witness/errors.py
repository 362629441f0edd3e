"""The exception tree of witness.

Every error witness raises derives from :class:`WitnessError`, so one ``except WitnessError``
catches them all. The tree::

    WitnessError
    ├── ConfigError                  a setting (argument, environment, .env) is invalid
    ├── InvalidArgumentError         a call argument is rejected before anything is sent
    ├── FeatureUnavailableError      the server lacks a capability (e.g. /api/jobs on 0.3.75)
    ├── TransportError               nothing usable came back from the server
    │   ├── ServerUnavailableError   connection refused / DNS / TLS / reset
    │   ├── RequestTimeoutError      connect or read timeout
    │   ├── DownloadTooLargeError    a third-party download is over witness's size limit
    │   └── WebSocketError           the websocket could not connect / broke (see below)
    ├── ResponseDecodeError          a 2xx whose body is not the JSON the route promises
    └── ApiError                     the server answered with an error status
        ├── BadRequestError          400
        │   └── PromptValidationError   400 from POST /prompt, with parsed node_errors
        ├── UnauthorizedError        401
        ├── ForbiddenError           403
        ├── NotFoundError            404
        ├── ConflictError            409
        ├── PayloadTooLargeError     413, with the server's limit in bytes
        ├── ServerError              5xx
        └── V2ApiError               the Comfy API v2 error envelope, one subclass per code
                                     (V2InvalidWorkflowError, V2QueueFullError, ...; each
                                     also under its status class where one fits)
    ├── WebSocketError               (a TransportError) the websocket could not connect / broke
    ├── WorkflowError                a workflow cannot be loaded, understood or run as given
    │   ├── WorkflowSourceError      the source cannot be read (missing file, URL failure, size)
    │   ├── WorkflowFormatError      not a workflow, bad JSON, or the wrong format
    │   ├── DSLError                 a title marker is malformed or names a field the node lacks
    │   ├── ParamError               params do not fit the workflow's signature
    │   │   ├── UnknownParamError
    │   │   └── MissingParamError
    │   ├── UIConversionError        a UI-format workflow cannot be converted
    │   └── WorkflowValidationError  pre-submit validation against /object_info failed
    ├── UploadError                  a media value cannot be uploaded (or the upload was not stored)
    ├── UnsafeOutputError            the server named an output file that cannot be fetched safely
    ├── ExecutionError               a prompt failed or was interrupted (raise_for_status)
    ├── WaitTimeoutError             a wait's deadline passed
    │   └── WitnessTimeoutError      a call's one Deadline passed (names the stage)
    ├── PromptLostError              the prompt is in neither queue nor history (server restarted)
    ├── NoCapableServerError         no server of a fleet has what a prompt needs (or all are down)
    ├── BatchMismatchError           a batch resumed with another workflow or job list
    └── RunningHubError              the RunningHub cloud API answered with an error code
        └── RunningHubTransportError (also a TransportError) no answer from RunningHub

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
    "BatchMismatchError",
    "ConfigError",
    "ConflictError",
    "DSLError",
    "DownloadTooLargeError",
    "ExecutionError",
    "FeatureUnavailableError",
    "ForbiddenError",
    "InvalidArgumentError",
    "MissingParamError",
    "NoCapableServerError",
    "NodeError",
    "NotFoundError",
    "ParamError",
    "PayloadTooLargeError",
    "PromptLostError",
    "PromptValidationError",
    "RequestTimeoutError",
    "ResponseDecodeError",
    "RunningHubError",
    "ServerError",
    "ServerUnavailableError",
    "TransportError",
    "UIConversionError",
    "UnauthorizedError",
    "UnknownParamError",
    "UnsafeOutputError",
    "UploadError",
    "WaitTimeoutError",
    "WebSocketError",
    "WebSocketHandshakeError",
    "WebSocketTimeoutError",
    "WebSocketUnavailableError",
    "WitnessError",
    "WitnessTimeoutError",
    "WorkflowError",
    "WorkflowFormatError",
    "WorkflowSourceError",
    "WorkflowValidationError",
    "error_class_for_status",
    "parse_node_errors",
    "websocket_handshake_class",
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

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle-safe (Ray, multiprocessing): rebuilt from its fields, not its __init__ args.
        return (_rebuild_error, (type(self), self.args, self.__dict__))


def _rebuild_error(cls: type[WitnessError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


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
        sent: Whether the request may have reached the server. ``False`` only when it
            provably did not leave (connection refused, DNS failure, connect timeout, TLS
            handshake): then resending is safe even for a non-idempotent request.
    """

    def __init__(self, message: str, *, method: str, url: str, sent: bool = True) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.sent = sent


class ServerUnavailableError(TransportError):
    """The server could not be reached (refused, reset, DNS or TLS failure)."""


class RequestTimeoutError(TransportError):
    """The server did not answer within the timeout.

    Attributes:
        timeout: The limit in seconds that was exceeded.
        phase: ``"connect"`` or ``"read"``.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        timeout: float,
        phase: str,
        sent: bool | None = None,
    ) -> None:
        super().__init__(
            message, method=method, url=url, sent=phase != "connect" if sent is None else sent
        )
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

    def __init__(self, *, status: int, method: str, url: str, content_type: str, body: str) -> None:
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
        retry_after: The answer's ``Retry-After`` header, when it had one.
    """

    retry_after: str | None = None

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


def parse_node_errors(node_errors: Any, prompt: Mapping[str, Any] | None = None) -> list[NodeError]:
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
            raw_extra = err.get("extra_info")
            extra: Mapping[str, Any] = raw_extra if isinstance(raw_extra, Mapping) else {}
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
        super().__init__(status=status, method=method, url=url, server_message=message, body=body)

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


class DownloadTooLargeError(TransportError):
    """A third-party download (workflow or media URL) is larger than witness allows.

    A limit witness enforces while streaming, not an HTTP status; nothing is kept.

    Attributes:
        limit: The allowed size in bytes.
        size: The size the host announced, or the bytes received when the download was
            stopped (then just over ``limit``).
    """

    def __init__(self, message: str, *, url: str, limit: int, size: int | None = None) -> None:
        super().__init__(message, method="GET", url=url, sent=True)
        self.limit = limit
        self.size = size


class WebSocketError(TransportError):
    """The websocket could not be opened, or broke and could not be re-opened.

    Opening failures are raised as the subclass that says what happened, each also the error
    the same failure is over HTTP: :class:`WebSocketUnavailableError` (a
    :class:`ServerUnavailableError`), :class:`WebSocketTimeoutError` (a
    :class:`RequestTimeoutError`) and :class:`WebSocketHandshakeError` (the
    :class:`ApiError` subclass of the upgrade's HTTP status).
    """


class WebSocketUnavailableError(WebSocketError, ServerUnavailableError):
    """The websocket's server could not be reached (refused, DNS, TLS, reset), exactly as
    :class:`ServerUnavailableError` over HTTP (``except ServerUnavailableError`` catches it)."""


class WebSocketTimeoutError(WebSocketError, RequestTimeoutError):
    """The websocket did not connect (``phase="connect"``) or its upgrade was not answered
    (``phase="read"``) in time; a :class:`RequestTimeoutError` as over HTTP."""


class WebSocketHandshakeError(WebSocketError):
    """The websocket upgrade (``GET /ws``) was answered with an HTTP error status.

    Each instance is also the :class:`ApiError` subclass of its status (a 403 is a
    :class:`ForbiddenError`, a 401 an :class:`UnauthorizedError`, a 5xx a
    :class:`ServerError`...), with the same fields as over HTTP; see
    :func:`websocket_handshake_class`.

    Attributes:
        status: The HTTP status of the upgrade answer.
        server_message: The server's explanation from the answer's body, when it sent one.
        body: The decoded JSON body, else the (truncated) text.
    """

    _HINTS: Mapping[int, str] = {
        401: "authentication required",
        403: "forbidden: the server's origin check or an auth proxy refused it",
        404: "no websocket at this path",
    }

    def __init__(
        self, *, status: int, method: str, url: str, server_message: str = "", body: Any = None
    ) -> None:
        self.status = status
        self.server_message = server_message
        self.body = body
        self.method = method
        self.url = url
        self.sent = True
        # Not TransportError.__init__: in the per-status classes the MRO continues with the
        # ApiError side, whose constructor takes keywords only.
        WitnessError.__init__(self, self._format_handshake(url))

    def _format_handshake(self, url: str) -> str:
        hint = self._HINTS.get(self.status) or ("server error" if self.status >= 500 else "")
        text = f"cannot open the websocket: HTTP {self.status}" + (f" ({hint})" if hint else "")
        if self.server_message:
            text += f": {self.server_message}"
        return f"{text} [{url}]"


_HANDSHAKE_CLASSES: dict[type[ApiError], type[ApiError]] = {}


def websocket_handshake_class(cls: type[ApiError]) -> type[ApiError]:
    """The class of a websocket upgrade refused with the status of ``cls``: a subclass of
    both :class:`WebSocketHandshakeError` and ``cls`` (made once per class)."""
    if cls is PayloadTooLargeError:
        cls = ApiError  # its size fields do not apply to an upgrade request
    made = _HANDSHAKE_CLASSES.get(cls)
    if made is None:
        made = type(
            f"WebSocket{cls.__name__}",
            (WebSocketHandshakeError, cls),
            {"__module__": __name__, "__doc__": f"{cls.__name__} at the websocket upgrade."},
        )
        _HANDSHAKE_CLASSES[cls] = made
    return made


class WorkflowError(WitnessError):
    """A workflow cannot be loaded, understood or run as given."""


class WorkflowSourceError(WorkflowError):
    """A workflow source cannot be read.

    Attributes:
        source: What was given (a path, URL or id; never file contents).
    """

    def __init__(self, message: str, *, source: str = "") -> None:
        super().__init__(message)
        self.source = source


class WorkflowFormatError(WorkflowError):
    """The data is not a workflow in the expected format (bad JSON, UI vs API format, ...)."""


class DSLError(WorkflowError):
    """A DSL marker in a node title is malformed or names a field the node does not have.

    Attributes:
        node_id: The node whose title is at fault.
        title: The title text.
    """

    def __init__(self, message: str, *, node_id: str = "", title: str = "") -> None:
        super().__init__(message)
        self.node_id = node_id
        self.title = title


class ParamError(WorkflowError, ValueError):
    """Parameters given to a workflow do not fit its signature.

    Attributes:
        names: The parameter names at fault.
        known: The parameter names the workflow declares.
    """

    def __init__(
        self, message: str, *, names: tuple[str, ...] = (), known: tuple[str, ...] = ()
    ) -> None:
        super().__init__(message)
        self.names = names
        self.known = known


class UnknownParamError(ParamError):
    """A parameter was given that the workflow does not declare."""


class MissingParamError(ParamError):
    """A required parameter (``$name!``) was not given."""


class UIConversionError(WorkflowError):
    """A UI-format workflow cannot be converted to API format.

    Attributes:
        node_ids: The nodes at fault.
        class_types: Their types, where known.
    """

    def __init__(
        self,
        message: str,
        *,
        node_ids: tuple[str, ...] = (),
        class_types: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.node_ids = node_ids
        self.class_types = class_types


class WorkflowValidationError(WorkflowError):
    """Pre-submit validation of a prompt against ``/object_info`` found problems.

    Attributes:
        problems: Every problem found (records with node id, class, title, input, expected,
            given).
    """

    def __init__(self, message: str, *, problems: tuple[Any, ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class UploadError(WitnessError):
    """A media value cannot be uploaded, or the server did not store the upload.

    Attributes:
        param: The parameter (or argument) whose value failed, when known.
    """

    def __init__(self, message: str, *, param: str = "") -> None:
        super().__init__(message)
        self.param = param


class UnsafeOutputError(WitnessError):
    """The server named an output file that cannot be fetched safely (an absolute path or
    ``..``); it is never written anywhere."""


class ExecutionError(WitnessError):
    """A prompt failed or was interrupted on the server.

    Attributes:
        prompt_id: The prompt.
        status: ``"failed"``, ``"interrupted"`` or ``"timeout"``.
        node_id: The node that raised, when known.
        node_type: Its class.
        exception_type: The Python exception type reported by the server.
        exception_message: Its message.
        traceback: The server-side traceback lines.
    """

    def __init__(
        self,
        message: str,
        *,
        prompt_id: str = "",
        status: str = "failed",
        node_id: str | None = None,
        node_type: str | None = None,
        exception_type: str | None = None,
        exception_message: str | None = None,
        traceback: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.prompt_id = prompt_id
        self.status = status
        self.node_id = node_id
        self.node_type = node_type
        self.exception_type = exception_type
        self.exception_message = exception_message
        self.traceback = traceback


class WaitTimeoutError(WitnessError, TimeoutError):
    """A wait did not finish before its deadline.

    Attributes:
        timeout: The deadline in seconds.
        what: What was waited for (e.g. a prompt id).
    """

    def __init__(self, message: str, *, timeout: float, what: str = "") -> None:
        super().__init__(message)
        self.timeout = timeout
        self.what = what


class WitnessTimeoutError(WaitTimeoutError):
    """The one deadline of a call passed (``execute(timeout=T)``), naming the stage it hit.

    Attributes:
        stage: The pipeline stage that was running: ``load``, ``convert``, ``validate``,
            ``upload``, ``submit``, ``wait`` or ``assemble`` (or a backend's own step).
        prompt_id: The prompt, when one had been submitted.
        result: The partial :class:`~witness.core.results.ExecuteResult` (status
            ``"timeout"``, outputs finished so far) when the deadline passed while waiting.
    """

    def __init__(
        self,
        message: str,
        *,
        timeout: float,
        stage: str,
        prompt_id: str | None = None,
        result: Any = None,
    ) -> None:
        super().__init__(message, timeout=timeout, what=prompt_id or stage)
        self.stage = stage
        self.prompt_id = prompt_id
        self.result = result


class PromptLostError(WitnessError):
    """A prompt is in neither the queue nor the history (typically: the server restarted).

    Attributes:
        prompt_id: The lost prompt.
        server: The server it was on, when known (a fleet names it).
    """

    def __init__(self, message: str, *, prompt_id: str, server: str | None = None) -> None:
        super().__init__(message)
        self.prompt_id = prompt_id
        self.server = server


class NoCapableServerError(WitnessError):
    """No server of a fleet can run a prompt; raised before anything is submitted.

    Attributes:
        lacks: Server URL → what it lacks (``"node class X"``, ``"model ckpt_name='m'"``,
            ``"down"``, ``"at its concurrency cap"``...).
    """

    def __init__(self, message: str, *, lacks: Mapping[str, tuple[str, ...]]) -> None:
        super().__init__(message)
        self.lacks = dict(lacks)


class BatchMismatchError(WitnessError):
    """A batch was resumed with another workflow or job list than its journal recorded.

    Attributes:
        journal_path: The journal.
        what: ``"workflow"`` or ``"jobs"``.
    """

    def __init__(self, message: str, *, journal_path: str, what: str) -> None:
        super().__init__(message)
        self.journal_path = journal_path
        self.what = what


class RunningHubError(WitnessError):
    """The RunningHub API answered with an error code (or an unusable answer).

    Attributes:
        code: RunningHub's numeric ``code`` (``None`` for transport-level problems).
        endpoint: The API path called.
        server_message: RunningHub's ``msg``.
    """

    def __init__(
        self, message: str, *, code: int | None = None, endpoint: str = "", server_message: str = ""
    ) -> None:
        super().__init__(message)
        self.code = code
        self.endpoint = endpoint
        self.server_message = server_message


# -- RunningHub error codes ------------------------------------------------------------------
# witness.runninghub.errors maps every documented code to one of these classes
# (its RUNNINGHUB_ERROR_CODES table); ``code`` keeps the exact number.


class RunningHubParamsError(RunningHubError):
    """301 PARAMS_INVALID: a required field is missing or malformed."""


class RunningHubBadPathError(RunningHubError):
    """412 TOKEN_INVALID (bad API path), or an HTTP 404 for an unknown route."""


class RunningHubAuthError(RunningHubError):
    """The key is rejected: 802 unauthorized/expired, 806 user not found, 811 corp key invalid."""


class RunningHubFreeUserError(RunningHubAuthError):
    """801 APIKEY_UNSUPPORTED_FREE_USER: free accounts cannot use the API."""


class RunningHubInsufficientFundsError(RunningHubError):
    """416 (consumer wallet) or 812 (enterprise key): not enough balance to run."""


class RunningHubWorkflowNotFoundError(RunningHubError):
    """380 WORKFLOW_NOT_EXISTS (or 901 for an AI app): no such workflow for this key."""


class RunningHubWebappNotFoundError(RunningHubWorkflowNotFoundError):
    """901 WEBAPP_NOT_EXISTS: no such AI app."""


class RunningHubWorkflowNotReadyError(RunningHubError):
    """810 WORKFLOW_NOT_SAVED_OR_NOT_RUNNING: save and run the workflow once on the site."""


class RunningHubNodeInfoError(RunningHubError):
    """803 APIKEY_INVALID_NODE_INFO: a nodeInfoList item names a missing node or input."""


class RunningHubValidationError(RunningHubError):
    """433 VALIDATE_PROMPT_FAILED: the prompt failed validation.

    Attributes:
        node_errors: Parsed per-input problems, when RunningHub sent ComfyUI's ``node_errors``.
        raw_node_errors: The ``node_errors`` mapping as received (may be empty).
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        endpoint: str = "",
        server_message: str = "",
        node_errors: tuple[NodeError, ...] = (),
        raw_node_errors: Mapping[str, Any] | None = None,
    ) -> None:
        if node_errors:
            message += "".join(f"\n  - {err}" for err in node_errors)
        super().__init__(message, code=code, endpoint=endpoint, server_message=server_message)
        self.node_errors = node_errors
        self.raw_node_errors: dict[str, Any] = dict(raw_node_errors or {})


class RunningHubCapacityError(RunningHubError):
    """No capacity right now (421, 415, 814); transient, worth retrying later."""


class RunningHubQueueFullError(RunningHubCapacityError):
    """421 TASK_QUEUE_MAXED: the shared-API concurrency cap is reached."""


class RunningHubInstanceBusyError(RunningHubCapacityError):
    """415 TASK_INSTANCE_MAXED: dedicated machines exhausted (retry in 30-120 s)."""


class RunningHubPersonalQueueFullError(RunningHubCapacityError):
    """814 PERSONAL_QUEUE_COUNT_LIMIT: more than 1000 tasks in the personal queue."""


class RunningHubExclusiveInstanceError(RunningHubError):
    """435 (no exclusive instance: send ``instanceType="plus"``) or 436 (membership expired)."""


class RunningHubTaskNotFoundError(RunningHubError):
    """807 APIKEY_TASK_NOT_FOUND or 423 TASK_NOT_FOUNED: no such task for this key."""


class RunningHubTaskNotFinishedError(RunningHubError):
    """804 (running) or 813 (queued) where a finished task was required."""


class RunningHubTaskFailedError(RunningHubError):
    """805 APIKEY_TASK_STATUS_ERROR: the task failed.

    Attributes:
        failed_reason: The parsed ``failedReason`` (node, exception, traceback), when sent.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        endpoint: str = "",
        server_message: str = "",
        failed_reason: Any = None,
    ) -> None:
        super().__init__(message, code=code, endpoint=endpoint, server_message=server_message)
        self.failed_reason = failed_reason


class RunningHubUploadError(RunningHubError):
    """808 APIKEY_UPLOAD_FAILED, or a file type RunningHub does not accept."""


class RunningHubFileTooLargeError(RunningHubUploadError):
    """809 APIKEY_FILE_SIZE_EXCEEDED, or the client-side 30 MB check before sending.

    Attributes:
        size: Size of the file in bytes, when known.
        limit: The limit in bytes.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        endpoint: str = "",
        server_message: str = "",
        size: int | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(message, code=code, endpoint=endpoint, server_message=server_message)
        self.size = size
        self.limit = limit


class RunningHubServerError(RunningHubError):
    """500 UNKNOWN_ERROR, or an HTTP 5xx answer.

    Attributes:
        http_status: The HTTP status when the failure was at the HTTP level, else ``None``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        endpoint: str = "",
        server_message: str = "",
        http_status: int | None = None,
    ) -> None:
        super().__init__(message, code=code, endpoint=endpoint, server_message=server_message)
        self.http_status = http_status


class RunningHubResponseError(RunningHubError):
    """An answer that is not RunningHub's ``{code, msg, data}`` JSON envelope.

    Attributes:
        http_status: HTTP status of the answer.
        body: The start of the body, secrets redacted.
    """

    def __init__(
        self, message: str, *, endpoint: str = "", http_status: int | None = None, body: str = ""
    ) -> None:
        super().__init__(message, endpoint=endpoint)
        self.http_status = http_status
        self.body = body


class RunningHubTransportError(RunningHubError, TransportError):
    """No answer from RunningHub: connection refused or dropped, or a timeout.

    A :class:`TransportError` too (``method`` is ``POST``, ``sent`` says whether the call may
    have reached RunningHub).
    """

    def __init__(
        self, message: str, *, endpoint: str = "", url: str = "", sent: bool = True
    ) -> None:
        WitnessError.__init__(self, message)
        self.code = None
        self.endpoint = endpoint
        self.server_message = ""
        self.method = "POST"
        self.url = url or endpoint
        self.sent = sent


class RunningHubCreateUnconfirmedError(RunningHubTransportError):
    """A task-creating request was sent but its answer was lost; it was NOT resent.

    RunningHub may or may not have created the task. Resending blindly could run (and bill)
    it twice, so witness stops and says so.

    Attributes:
        current_task_counts: The account's ``currentTaskCounts`` read right after the loss
            (a hint whether the task exists), or ``None`` when it could not be read.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        url: str = "",
        current_task_counts: int | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, url=url, sent=True)
        self.current_task_counts = current_task_counts


__all__ += [
    "RunningHubAuthError",
    "RunningHubBadPathError",
    "RunningHubCapacityError",
    "RunningHubCreateUnconfirmedError",
    "RunningHubExclusiveInstanceError",
    "RunningHubFileTooLargeError",
    "RunningHubFreeUserError",
    "RunningHubInstanceBusyError",
    "RunningHubInsufficientFundsError",
    "RunningHubNodeInfoError",
    "RunningHubParamsError",
    "RunningHubPersonalQueueFullError",
    "RunningHubQueueFullError",
    "RunningHubResponseError",
    "RunningHubServerError",
    "RunningHubTaskFailedError",
    "RunningHubTaskNotFinishedError",
    "RunningHubTaskNotFoundError",
    "RunningHubTransportError",
    "RunningHubUploadError",
    "RunningHubValidationError",
    "RunningHubWebappNotFoundError",
    "RunningHubWorkflowNotFoundError",
    "RunningHubWorkflowNotReadyError",
]


# -- Comfy API v2 ----------------------------------------------------------------------------


class V2ApiError(ApiError):
    """The Comfy API v2 (``/api/v2/*``) answered with its error envelope.

    The envelope is ``{"error": {"code", "message", "details"}}``; each code has a subclass
    (see :data:`V2_ERROR_CODES`), an unknown code is a plain :class:`V2ApiError`.

    Attributes:
        code: The machine-readable code (``invalid_workflow``, ``queue_full``...).
        details: The envelope's ``details`` object (e.g. ``node_errors``), or ``None``.
        Plus the :class:`ApiError` fields (``status``, ``method``, ``url``,
        ``server_message``, ``body``, ``retry_after``).
    """

    def __init__(
        self, *, code: str = "", details: Mapping[str, Any] | None = None, **fields: Any
    ) -> None:
        self.code = code
        self.details = dict(details) if isinstance(details, Mapping) else None
        super().__init__(**fields)

    def _format(self) -> str:
        text = f"{self.method} {self.url} failed with HTTP {self.status}"
        if self.code:
            text += f" [{self.code}]"
        if self.server_message:
            text += f": {self.server_message}"
        return text


class V2InvalidRequestError(V2ApiError, BadRequestError):
    """``invalid_request``: the request is malformed (bad field, bad header, bad limit)."""


class V2InvalidWorkflowError(V2ApiError):
    """``invalid_workflow`` (422): the workflow was refused; ``node_errors`` in ``details``.

    Attributes:
        node_errors: The parsed per-node problems (:class:`NodeError`), possibly empty.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        raw = (self.details or {}).get("node_errors")
        self.node_errors: list[NodeError] = parse_node_errors(raw) if raw else []


class V2WorkflowFormatUIError(V2InvalidWorkflowError):
    """``workflow_format_ui`` (422): a UI-export graph was sent where API format is needed."""


class V2MissingAssetError(V2ApiError):
    """``missing_asset`` (422): a ``core/ASSET`` reference names no usable asset."""


class V2IdempotencyKeyReuseError(V2ApiError, ConflictError):
    """``idempotency_key_reuse`` (422): the submit's Idempotency-Key was used before.

    Keys are single-use: an earlier attempt of the same submit may have created the job.
    """


class V2HashMismatchError(V2ApiError, ConflictError):
    """``hash_mismatch`` (409): the uploaded bytes do not match the declared hash."""


class V2NotFoundError(V2ApiError, NotFoundError):
    """``not_found`` (404): no such job or asset."""


class V2BlobNotFoundError(V2NotFoundError):
    """``blob_not_found`` (404): no blob with that hash (or path) the caller may use."""


class V2OutputUnavailableError(V2NotFoundError):
    """``output_unavailable`` (404): an output's bytes are gone; re-run to get them again."""


class V2UnauthorizedError(V2ApiError, UnauthorizedError):
    """``unauthorized`` (401): the API key (bearer token) is missing or wrong."""


class V2ForbiddenError(V2ApiError, ForbiddenError):
    """``forbidden`` / ``forbidden_origin`` (403)."""


class V2InsufficientCreditsError(V2ApiError):
    """``insufficient_credits`` (402): the account cannot pay for the run."""


class V2RateLimitError(V2ApiError):
    """429 (``queue_full``, ``too_many_streams``): try again after :attr:`retry_after`."""


class V2QueueFullError(V2RateLimitError):
    """``queue_full`` (429 + ``Retry-After``): the job was not accepted; safe to resubmit."""


class V2TooManyStreamsError(V2RateLimitError):
    """``too_many_streams`` (429): too many open event streams; poll instead."""


class V2PayloadTooLargeError(V2ApiError, PayloadTooLargeError):
    """``payload_too_large`` (413): the upload exceeds the server's limit."""


class V2UpstreamError(V2ApiError, ServerError):
    """``upstream_unreachable`` / ``upstream_error`` (5xx): the deployment's ComfyUI failed."""


#: Error-envelope code → the exception class raised for it.
V2_ERROR_CODES: dict[str, type[V2ApiError]] = {
    "invalid_request": V2InvalidRequestError,
    "invalid_workflow": V2InvalidWorkflowError,
    "workflow_format_ui": V2WorkflowFormatUIError,
    "missing_asset": V2MissingAssetError,
    "idempotency_key_reuse": V2IdempotencyKeyReuseError,
    "hash_mismatch": V2HashMismatchError,
    "not_found": V2NotFoundError,
    "blob_not_found": V2BlobNotFoundError,
    "output_unavailable": V2OutputUnavailableError,
    "unauthorized": V2UnauthorizedError,
    "forbidden": V2ForbiddenError,
    "forbidden_origin": V2ForbiddenError,
    "insufficient_credits": V2InsufficientCreditsError,
    "queue_full": V2QueueFullError,
    "too_many_streams": V2TooManyStreamsError,
    "payload_too_large": V2PayloadTooLargeError,
    "upstream_unreachable": V2UpstreamError,
    "upstream_error": V2UpstreamError,
}


def v2_error_from(exc: ApiError) -> ApiError:
    """The typed v2 error for an :class:`ApiError` whose body is the v2 error envelope.

    Returns ``exc`` itself when the body is not an envelope (a proxy's HTML page...).
    The ``retry_after`` of ``exc`` is kept.
    """
    body = exc.body
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping) or not isinstance(error.get("code"), str):
        return exc
    code = str(error["code"])
    cls = V2_ERROR_CODES.get(code, V2ApiError)
    message = error.get("message")
    details = error.get("details")
    typed = cls(
        status=exc.status,
        method=exc.method,
        url=exc.url,
        server_message=str(message) if message else exc.server_message,
        body=body,
        code=code,
        details=details if isinstance(details, Mapping) else None,
    )
    typed.retry_after = exc.retry_after
    return typed


__all__ += [
    "V2_ERROR_CODES",
    "V2ApiError",
    "V2BlobNotFoundError",
    "V2ForbiddenError",
    "V2HashMismatchError",
    "V2IdempotencyKeyReuseError",
    "V2InsufficientCreditsError",
    "V2InvalidRequestError",
    "V2InvalidWorkflowError",
    "V2MissingAssetError",
    "V2NotFoundError",
    "V2OutputUnavailableError",
    "V2PayloadTooLargeError",
    "V2QueueFullError",
    "V2RateLimitError",
    "V2TooManyStreamsError",
    "V2UnauthorizedError",
    "V2UpstreamError",
    "V2WorkflowFormatUIError",
    "v2_error_from",
]
