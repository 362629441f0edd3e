"""Users, per-user files (``/userdata``), settings and ``/i18n``.

On a server started with ``--multi-user`` the user is chosen by the ``comfy-user`` header:
``Settings.user`` sets it for every request, and each method's ``user=`` argument overrides it
for one call. Without ``--multi-user`` the server ignores the header (everything belongs to
the ``default`` user).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any, Literal, cast, overload
from urllib.parse import quote

from witness.api_clients._common import (
    JSON_HEADERS,
    as_list,
    as_mapping,
    check_text,
    encode_json,
    unexpected_shape,
    user_header,
)
from witness.api_clients.types import UserdataEntry, UserdataFileInfo, UsersInfo
from witness.errors import InvalidArgumentError, NotFoundError
from witness.transport.http import HttpClient
from witness.utils.paths import quote_segment, route

__all__ = ["UserClient"]

_SYSTEM_USER_PREFIX = "__"


class UserClient:
    """Users, userdata files and settings.

    Args:
        http: The shared HTTP client.

    Example:
        >>> users = UserClient(http)
        >>> users.save_userdata("workflows/a.json", b"{}")
        'workflows/a.json'
        >>> users.list_userdata("workflows")
        ['a.json']
    """

    def __init__(self, http: HttpClient) -> None:
        self._http = http

    # -- users -------------------------------------------------------------------------

    def users(self) -> UsersInfo:
        """Storage mode and users.

        Route: ``GET /users``.

        Returns:
            Single-user: ``{"storage": "server", "migrated": bool}``; multi-user:
            ``{"storage": "server", "users": {user_id: name}}``.
        """
        data = self._http.request_json("GET", "/users")
        return cast(UsersInfo, as_mapping(self._http, data, "GET", "/users"))

    def create_user(self, username: str) -> str:
        """Create a user (also works, and writes ``users.json``, on single-user servers).

        Route: ``POST /users``.

        Args:
            username: The display name.

        Returns:
            The new user id (sanitized name + ``_`` + uuid4), for ``comfy-user``.

        Raises:
            InvalidArgumentError: Empty name, or one starting with ``__`` (reserved).
            BadRequestError: The name exists already (``Duplicate username.``).
        """
        name = check_text(username, "username").strip()
        if not name:
            raise InvalidArgumentError("username", "must not be blank")
        if name.startswith(_SYSTEM_USER_PREFIX):
            raise InvalidArgumentError("username", "must not start with '__' (system users)")
        data = self._http.request_json(
            "POST",
            "/users",
            data=encode_json({"username": username}, "username"),
            headers=JSON_HEADERS,
            idempotent=False,
        )
        if not isinstance(data, str) or not data:
            raise unexpected_shape(self._http, "POST", "/users", data)
        return data

    # -- userdata ------------------------------------------------------------------------

    @overload
    def list_userdata(
        self,
        directory: str,
        *,
        recurse: bool = ...,
        full_info: Literal[False] = ...,
        split: Literal[False] = ...,
        user: str | None = ...,
    ) -> list[str]: ...

    @overload
    def list_userdata(
        self,
        directory: str,
        *,
        recurse: bool = ...,
        full_info: Literal[True],
        split: bool = ...,
        user: str | None = ...,
    ) -> list[UserdataFileInfo]: ...

    @overload
    def list_userdata(
        self,
        directory: str,
        *,
        recurse: bool = ...,
        full_info: Literal[False] = ...,
        split: Literal[True],
        user: str | None = ...,
    ) -> list[list[str]]: ...

    def list_userdata(
        self,
        directory: str,
        *,
        recurse: bool = False,
        full_info: bool = False,
        split: bool = False,
        user: str | None = None,
    ) -> list[str] | list[UserdataFileInfo] | list[list[str]]:
        """Files (not directories) in a userdata directory, relative to it.

        Route: ``GET /userdata?dir=...``.

        Args:
            directory: Directory under the user's root, e.g. ``"workflows"``.
            recurse: Include subdirectories.
            full_info: Return ``{path, size, modified, created}`` records.
            split: Return ``[path, *components]`` lists (ignored with ``full_info``).
            user: ``comfy-user`` for this call.

        Raises:
            InvalidArgumentError: ``directory`` is empty.
            NotFoundError: The directory does not exist.
            ForbiddenError: The directory escapes the user's root.
        """
        check_text(directory, "directory")
        params = {"dir": directory, "recurse": recurse, "full_info": full_info, "split": split}
        data = self._http.request_json("GET", "/userdata", params=params, headers=user_header(user))
        return as_list(self._http, data, "GET", "/userdata")

    def list_userdata_v2(self, path: str = "", *, user: str | None = None) -> list[UserdataEntry]:
        """Directories and files under a userdata path, recursively; paths are relative to
        the user's root. Directories first, then alphabetical.

        Route: ``GET /v2/userdata``.

        Args:
            path: Directory under the user's root (``""``: the root).
            user: ``comfy-user`` for this call.

        Returns:
            Entries, or ``[]`` when the user has no directory yet.

        Raises:
            NotFoundError: ``path`` does not exist.
            BadRequestError: ``path`` escapes the root or is not a directory.
            ForbiddenError: Unknown user (multi-user servers).
        """
        params = {"path": path} if path else None
        data = self._http.request_json(
            "GET", "/v2/userdata", params=params, headers=user_header(user)
        )
        return cast(list[UserdataEntry], as_list(self._http, data, "GET", "/v2/userdata"))

    def get_userdata(self, file: str, *, user: str | None = None) -> bytes:
        """A userdata file's content.

        Route: ``GET /userdata/{file}`` (``/`` in ``file`` is sent as ``%2F``).

        Args:
            file: Path under the user's root, e.g. ``"workflows/a.json"``.
            user: ``comfy-user`` for this call.

        Raises:
            InvalidArgumentError: ``file`` is empty.
            NotFoundError: No such file.
            ForbiddenError: The path escapes the user's root.
        """
        return self._http.request("GET", self._file_route(file), headers=user_header(user)).content

    def get_userdata_json(self, file: str, *, user: str | None = None) -> Any:
        """A userdata file decoded as JSON (e.g. a saved workflow).

        Route: ``GET /userdata/{file}``.

        Raises:
            ResponseDecodeError: The file is not JSON.
            NotFoundError: No such file.
        """
        response = self._http.request("GET", self._file_route(file), headers=user_header(user))
        return self._http.decode_json(response)

    @overload
    def save_userdata(
        self,
        file: str,
        content: bytes | str | IO[bytes],
        *,
        overwrite: bool = ...,
        full_info: Literal[False] = ...,
        user: str | None = ...,
    ) -> str: ...

    @overload
    def save_userdata(
        self,
        file: str,
        content: bytes | str | IO[bytes],
        *,
        overwrite: bool = ...,
        full_info: Literal[True],
        user: str | None = ...,
    ) -> UserdataFileInfo: ...

    def save_userdata(
        self,
        file: str,
        content: bytes | str | IO[bytes],
        *,
        overwrite: bool = True,
        full_info: bool = False,
        user: str | None = None,
    ) -> str | UserdataFileInfo:
        """Write a userdata file (parent directories are created).

        Route: ``POST /userdata/{file}``.

        Args:
            file: Path under the user's root.
            content: The bytes, text (UTF-8) or a binary file object.
            overwrite: Replace an existing file (``False``: ConflictError if it exists).
            full_info: Return ``{path, size, modified, created}`` instead of the path.
            user: ``comfy-user`` for this call.

        Returns:
            The stored path relative to the user's root (OS separators) or its info.

        Raises:
            InvalidArgumentError: ``file`` is empty or ``content`` of a wrong type.
            ConflictError: The file exists and ``overwrite`` is false.
            ForbiddenError: The path escapes the user's root.
            BadRequestError: The server could not write the name.
        """
        path = self._file_route(file)
        if isinstance(content, str):
            content = content.encode("utf-8")
        elif not isinstance(content, bytes | bytearray) and not hasattr(content, "read"):
            raise InvalidArgumentError("content", "must be bytes, str or a binary file object")
        params = {"overwrite": overwrite, "full_info": full_info}
        data = self._http.request_json(
            "POST",
            path,
            params=params,
            data=content,
            headers={"Content-Type": "application/octet-stream", **(user_header(user) or {})},
            # Rewriting the same bytes is harmless; creating with overwrite=false is not.
            idempotent=overwrite and isinstance(content, bytes | bytearray),
        )
        return self._path_or_info(data, "POST", path, full_info)

    def delete_userdata(
        self, file: str, *, missing_ok: bool = False, user: str | None = None
    ) -> None:
        """Delete a userdata file.

        Route: ``DELETE /userdata/{file}``.

        Args:
            file: Path under the user's root.
            missing_ok: Do not raise when the file does not exist.
            user: ``comfy-user`` for this call.

        Raises:
            NotFoundError: No such file (unless ``missing_ok``).
            ForbiddenError: The path escapes the user's root.
        """
        try:
            self._http.request("DELETE", self._file_route(file), headers=user_header(user)).close()
        except NotFoundError:
            if not missing_ok:
                raise

    @overload
    def move_userdata(
        self,
        file: str,
        destination: str,
        *,
        overwrite: bool = ...,
        full_info: Literal[False] = ...,
        user: str | None = ...,
    ) -> str: ...

    @overload
    def move_userdata(
        self,
        file: str,
        destination: str,
        *,
        overwrite: bool = ...,
        full_info: Literal[True],
        user: str | None = ...,
    ) -> UserdataFileInfo: ...

    def move_userdata(
        self,
        file: str,
        destination: str,
        *,
        overwrite: bool = True,
        full_info: bool = False,
        user: str | None = None,
    ) -> str | UserdataFileInfo:
        """Move or rename a userdata file. Not retried (a second try finds no source).

        Route: ``POST /userdata/{file}/move/{destination}``.

        Args:
            file: The source path under the user's root.
            destination: The new path under the user's root.
            overwrite: Replace an existing destination (``False``: ConflictError).
            full_info: Return ``{path, size, modified, created}`` instead of the path.
            user: ``comfy-user`` for this call.

        Returns:
            The destination path (OS separators) or its info.

        Raises:
            NotFoundError: The source does not exist.
            ConflictError: The destination exists and ``overwrite`` is false.
            ForbiddenError: A path escapes the user's root.
        """
        path = f"{self._file_route(file)}/move/{_userdata_segment(destination, 'destination')}"
        params = {"overwrite": overwrite, "full_info": full_info}
        data = self._http.request_json(
            "POST", path, params=params, headers=user_header(user), idempotent=False
        )
        return self._path_or_info(data, "POST", path, full_info)

    # -- settings ------------------------------------------------------------------------

    def settings(self, *, user: str | None = None) -> dict[str, Any]:
        """All of the user's frontend settings (``{}`` when none).

        Route: ``GET /settings``.

        Raises:
            UnauthorizedError: Unknown user (multi-user servers).
        """
        data = self._http.request_json("GET", "/settings", headers=user_header(user))
        return as_mapping(self._http, data, "GET", "/settings")

    def get_setting(self, setting_id: str, *, user: str | None = None) -> Any:
        """One setting's value, ``None`` when unset.

        Route: ``GET /settings/{id}``.

        Raises:
            InvalidArgumentError: ``setting_id`` is empty.
            UnauthorizedError: Unknown user (multi-user servers).
        """
        check_text(setting_id, "setting_id")
        return self._http.request_json(
            "GET", route("/settings/{}", setting_id), headers=user_header(user)
        )

    def update_settings(self, values: Mapping[str, Any], *, user: str | None = None) -> None:
        """Merge settings into the user's settings (keys not given are kept).

        Route: ``POST /settings``.

        Raises:
            InvalidArgumentError: ``values`` is not a mapping or not JSON-serializable.
            UnauthorizedError: Unknown user (multi-user servers).
        """
        if not isinstance(values, Mapping):
            raise InvalidArgumentError("values", "must be a mapping of setting ids to values")
        self._post_json("/settings", dict(values), "values", user)

    def set_setting(self, setting_id: str, value: Any, *, user: str | None = None) -> None:
        """Set one setting (any JSON value).

        Route: ``POST /settings/{id}``.

        Raises:
            InvalidArgumentError: Empty id, or ``value`` is not JSON-serializable.
            UnauthorizedError: Unknown user (multi-user servers).
        """
        check_text(setting_id, "setting_id")
        self._post_json(route("/settings/{}", setting_id), value, "value", user)

    def i18n(self) -> dict[str, Any]:
        """Translations contributed by custom nodes: ``{lang: {nodeDefs, commands, ...}}``.

        Route: ``GET /i18n``.
        """
        return as_mapping(self._http, self._http.request_json("GET", "/i18n"), "GET", "/i18n")

    # -- internals -----------------------------------------------------------------------

    @staticmethod
    def _file_route(file: str) -> str:
        return "/userdata/" + _userdata_segment(file, "file")

    def _post_json(self, path: str, value: Any, argument: str, user: str | None) -> None:
        headers = {**JSON_HEADERS, **(user_header(user) or {})}
        body = encode_json(value, argument)
        # Writing the same settings twice has the same effect as once.
        self._http.request("POST", path, data=body, headers=headers, idempotent=True).close()

    def _path_or_info(
        self, data: Any, method: str, path: str, full_info: bool
    ) -> str | UserdataFileInfo:
        if full_info:
            return cast(UserdataFileInfo, as_mapping(self._http, data, method, path))
        if not isinstance(data, str):
            raise unexpected_shape(self._http, method, path, data)
        return data


def _userdata_segment(name: str, argument: str) -> str:
    """Quote a userdata path as one URL segment (``/`` becomes ``%2F``).

    The server decodes the segment once more when it still contains ``%`` after routing,
    so a name that itself contains ``%`` is quoted twice to arrive intact.
    """
    segment = quote_segment(check_text(name, argument), argument=argument)
    return quote(segment, safe="") if "%" in name else segment
