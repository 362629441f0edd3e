"""UserClient against the real single-user server, one multi-user server, and header wiring
at the HTTP boundary."""

from __future__ import annotations

import io
import json
import math
import shutil
from collections.abc import Iterator

import pytest
import responses

from scripts.comfyui_server import ComfyServer
from witness.api_clients import UserClient
from witness.config.settings import Settings
from witness.errors import (
    BadRequestError,
    ConflictError,
    ForbiddenError,
    InvalidArgumentError,
    NotFoundError,
    ServerError,
    UnauthorizedError,
)
from witness.transport.http import HttpClient

BASE = "http://comfy.test:8188"


@pytest.fixture
def users(http: HttpClient) -> UserClient:
    return UserClient(http)


@pytest.fixture
def folder(users: UserClient, comfy_server: ComfyServer | None, unique: str) -> Iterator[str]:
    """A userdata directory of the default user, removed afterwards."""
    name = f"witness_{unique}"
    yield name
    if comfy_server is not None:
        shutil.rmtree(comfy_server.user_dir / "default" / name, ignore_errors=True)
    else:
        for path in users.list_userdata(name, recurse=True):
            users.delete_userdata(f"{name}/{path}", missing_ok=True)


@pytest.fixture
def settings_restored(comfy_server: ComfyServer | None) -> Iterator[None]:
    """Put the default user's settings file back as it was."""
    if comfy_server is None:
        pytest.skip("needs the session's own server to restore settings")
    path = comfy_server.user_dir / "default" / "comfy.settings.json"
    before = path.read_bytes() if path.exists() else None
    yield
    if before is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(before)


@pytest.mark.integration
def test_users_single_user(users: UserClient) -> None:
    info = users.users()
    assert info["storage"] == "server"
    assert isinstance(info["migrated"], bool)


@pytest.mark.integration
def test_create_user_and_duplicates(
    users: UserClient, comfy_server: ComfyServer | None, unique: str
) -> None:
    name = f"Witness {unique}"
    try:
        user_id = users.create_user(name)
        assert user_id.startswith(f"Witness-{unique}_")
        with pytest.raises(BadRequestError, match="Duplicate username"):
            users.create_user(name)
    finally:
        if comfy_server is not None:
            users_file = comfy_server.user_dir / "users.json"
            entries = json.loads(users_file.read_text())
            users_file.write_text(json.dumps({k: v for k, v in entries.items() if v != name}))


@pytest.mark.integration
@pytest.mark.parametrize("name", ["", "   ", "__system", 7])
def test_bad_user_names_are_refused(users: UserClient, name: object) -> None:
    with pytest.raises(InvalidArgumentError):
        users.create_user(name)  # type: ignore[arg-type]


@pytest.mark.integration
def test_userdata_round_trip(users: UserClient, folder: str) -> None:
    first = f"{folder}/a.json"
    assert users.save_userdata(first, '{"x": 1}') == first
    info = users.save_userdata(f"{folder}/deep/b.bin", b"\x00\x01", full_info=True)
    assert info["path"] == f"{folder}/deep/b.bin"
    assert info["size"] == 2
    users.save_userdata(f"{folder}/c.txt", io.BytesIO(b"stream"))

    assert users.get_userdata(first) == b'{"x": 1}'
    assert users.get_userdata_json(first) == {"x": 1}
    assert users.get_userdata(f"{folder}/c.txt") == b"stream"
    assert sorted(users.list_userdata(folder)) == ["a.json", "c.txt"]
    assert sorted(users.list_userdata(folder, recurse=True)) == ["a.json", "c.txt", "deep/b.bin"]
    detailed = users.list_userdata(folder, recurse=True, full_info=True)
    assert {d["path"]: d["size"] for d in detailed}["deep/b.bin"] == 2
    split = users.list_userdata(folder, recurse=True, split=True)
    assert ["deep/b.bin", "deep", "b.bin"] in split

    tree = users.list_userdata_v2(folder)
    assert tree[0] == {"name": "deep", "path": f"{folder}/deep", "type": "directory"}
    assert [e["name"] for e in tree if e["type"] == "file"] == ["a.json", "b.bin", "c.txt"]
    assert any(e["path"] == folder for e in users.list_userdata_v2())


@pytest.mark.integration
def test_overwrite_move_and_delete(users: UserClient, folder: str) -> None:
    source, target = f"{folder}/one.txt", f"{folder}/sub/two.txt"
    users.save_userdata(source, "1")
    with pytest.raises(ConflictError):
        users.save_userdata(source, "again", overwrite=False)
    assert users.get_userdata(source) == b"1"
    assert users.move_userdata(source, target) == target
    with pytest.raises(NotFoundError):
        users.get_userdata(source)
    with pytest.raises(NotFoundError):
        users.move_userdata(source, target)
    users.save_userdata(source, "3")
    with pytest.raises(ConflictError):
        users.move_userdata(source, target, overwrite=False)
    moved = users.move_userdata(source, target, full_info=True)
    assert moved["path"] == target
    assert users.get_userdata(target) == b"3"
    users.delete_userdata(target)
    with pytest.raises(NotFoundError):
        users.delete_userdata(target)
    users.delete_userdata(target, missing_ok=True)


@pytest.mark.integration
def test_odd_file_names_survive_the_path_encoding(users: UserClient, folder: str) -> None:
    for name in ("with space.json", "q?mark#hash.json", "percent%41.json", "plus+amp&.json"):
        path = f"{folder}/{name}"
        users.save_userdata(path, name)
        assert users.get_userdata(path) == name.encode()
    assert sorted(users.list_userdata(folder)) == sorted(
        ["with space.json", "q?mark#hash.json", "percent%41.json", "plus+amp&.json"]
    )


@pytest.mark.integration
def test_userdata_errors(users: UserClient, folder: str) -> None:
    with pytest.raises(NotFoundError):
        users.list_userdata(f"{folder}/nope")
    with pytest.raises(ForbiddenError):
        users.list_userdata("../..")
    with pytest.raises(ForbiddenError):
        users.get_userdata("../../secret.txt")
    with pytest.raises(ForbiddenError):
        users.save_userdata("../escape.txt", "x")
    with pytest.raises(BadRequestError):
        users.list_userdata_v2("../..")
    with pytest.raises(NotFoundError):
        users.list_userdata_v2(f"{folder}/nope")
    with pytest.raises(InvalidArgumentError):
        users.list_userdata("")
    with pytest.raises(InvalidArgumentError):
        users.get_userdata("")
    with pytest.raises(InvalidArgumentError):
        users.save_userdata("a.txt", 42)  # type: ignore[call-overload]


@pytest.mark.integration
@pytest.mark.usefixtures("settings_restored")
def test_settings(users: UserClient, unique: str) -> None:
    key = f"Witness.Test.{unique}"
    assert users.get_setting(key) is None
    users.set_setting(key, {"a": [1, 2]})
    assert users.get_setting(key) == {"a": [1, 2]}
    users.update_settings({f"{key}.b": True, f"{key}.c": "x"})
    everything = users.settings()
    assert everything[key] == {"a": [1, 2]}  # merged, not replaced
    assert everything[f"{key}.b"] is True
    with pytest.raises(InvalidArgumentError):
        users.set_setting(key, math.nan)
    with pytest.raises(InvalidArgumentError):
        users.update_settings([("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        users.get_setting("")


@pytest.mark.integration
def test_i18n(users: UserClient) -> None:
    assert isinstance(users.i18n(), dict)


# -- multi-user ----------------------------------------------------------------------------


@pytest.mark.integration
def test_multi_user_server_separates_users(special_http: HttpClient, unique: str) -> None:
    admin = UserClient(special_http)
    alice = admin.create_user(f"alice {unique}")
    bob = admin.create_user(f"bob {unique}")
    listed = admin.users()["users"]
    assert listed[alice] == f"alice {unique}"

    admin.save_userdata("notes/a.txt", "alice's", user=alice)
    assert admin.get_userdata("notes/a.txt", user=alice) == b"alice's"
    with pytest.raises(NotFoundError):
        admin.get_userdata("notes/a.txt", user=bob)
    admin.set_setting("Comfy.Witness", 1, user=alice)
    assert admin.settings(user=alice) == {"Comfy.Witness": 1}
    assert admin.settings(user=bob) == {}

    # Settings.user is the default; a per-call user overrides it.
    as_alice = HttpClient(special_http.settings.with_overrides(user=alice))
    try:
        scoped = UserClient(as_alice)
        assert scoped.list_userdata("notes") == ["a.txt"]
        assert scoped.get_setting("Comfy.Witness") == 1
        assert scoped.settings(user=bob) == {}
        scoped.delete_userdata("notes/a.txt")
    finally:
        as_alice.close()

    stranger = "nobody_" + unique
    with pytest.raises(UnauthorizedError):
        admin.settings(user=stranger)
    with pytest.raises(ForbiddenError):
        admin.list_userdata_v2(user=stranger)
    with pytest.raises(ServerError):  # the server does not catch the unknown user here
        admin.get_userdata("notes/a.txt", user=stranger)
    with pytest.raises(UnauthorizedError):  # no header at all: no "default" user
        admin.settings()


@responses.activate
def test_comfy_user_header_per_call_overrides_settings() -> None:
    responses.add(responses.GET, f"{BASE}/api/settings", json={})
    client = UserClient(HttpClient(Settings(api_url=BASE, user="alice")))
    client.settings()
    client.settings(user="bob")
    sent = [c.request.headers["comfy-user"] for c in responses.calls]
    assert sent == ["alice", "bob"]
    with pytest.raises(InvalidArgumentError):
        client.settings(user="")


@responses.activate
def test_slash_in_file_names_is_sent_as_2f() -> None:
    responses.add(responses.DELETE, f"{BASE}/api/userdata/workflows%2Fa%20b.json", status=204)
    UserClient(HttpClient(Settings(api_url=BASE))).delete_userdata("workflows/a b.json")
    assert responses.calls[0].request.path_url == "/api/userdata/workflows%2Fa%20b.json"
