"""A private package answers exactly like a missing one (same status, same body) on every read
endpoint: to anonymous callers, and to signed-in callers who may not read it. Another package
type, a missing owner and a missing version are no different."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from kit import Operator
from resttest import Pusher, Rest, describe, package_path


def _shape(resp: httpx.Response) -> tuple[int, dict[str, Any]]:
    body = resp.json()
    assert set(body) == {"message", "documentation_url"}, describe(resp)
    return resp.status_code, body


def test_private_answers_like_missing(server: Any, rest: Rest) -> None:
    owner, outsider = f"pl-{uuid.uuid4().hex[:8]}", f"po-{uuid.uuid4().hex[:8]}"
    tokens = (
        Operator()
        .add("user", "create", owner)
        .pat("owner", owner, "read:packages,write:packages")
        .add("user", "create", outsider)
        .pat("outsider", outsider, "read:packages")
        .run(server)
    )
    pusher = Pusher(server.url, tokens["owner"])
    pusher.image(f"{owner}/secret", "v1")
    pusher.close()
    listing = rest.ok(f"/users/{owner}/packages", tokens["owner"], package_type="container")
    assert [p["name"] for p in listing] == ["secret"]
    versions = rest.ok(package_path(f"/users/{owner}", "secret") + "/versions", tokens["owner"])
    version_id = versions[0]["id"]
    scope = f"/users/{owner}"
    nobody = f"/users/nobody-{uuid.uuid4().hex[:8]}"

    def reads(base: str, name: str, kind: str = "container") -> list[str]:
        package = f"{base}/packages/{kind}/{name}"
        return [package, f"{package}/versions", f"{package}/versions/{version_id}"]

    private = reads(scope, "secret")
    missing = [
        *reads(scope, "missing"),
        *reads(scope, "secret", "npm"),
        *reads(scope, "secret", "maven"),
    ]
    for token in (None, tokens["outsider"]):
        expected = _shape(rest.get(private[0], token))
        assert expected[0] == (401 if token is None else 404)
        for path in private + missing:
            assert _shape(rest.get(path, token)) == expected, path
        for path in reads(nobody, "secret"):  # an owner that doesn't exist: not found either
            assert _shape(rest.get(path, token))[0] == expected[0], path
    # The list: the owner's private package is not in it, just as if it did not exist.
    anonymous_list = _shape(rest.get(f"{scope}/packages", None, package_type="container"))
    assert anonymous_list == _shape(rest.get(f"{nobody}/packages", None, package_type="container"))
    assert anonymous_list[0] == 401
    assert rest.ok(f"{scope}/packages", tokens["outsider"], package_type="container") == []
