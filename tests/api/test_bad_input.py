"""Bad input gets a clear 4xx and changes nothing: manifests nested too deep or with a key twice,
numbers written with non-ASCII digits, a declared size past the blob limit, cancelling an
upload that doesn't exist, a tag with ``:``. Raw HTTP where clients can't send such bytes."""

from __future__ import annotations

import base64
import json
import socket
import time
from typing import Any

import httpx
import pytest
from apitest import (
    MAX_BLOB,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    Registry,
    assert_error,
    descriptor,
    random_config,
)
from kit import digest_of

pytestmark = pytest.mark.cargobay_only("cargobay's answers to malformed input")

NON_ASCII_DIGITS = ["²", "٣", "\uff13", "1²", "²0"]


def _basic(api: Registry) -> str:
    assert api.auth is not None
    return "Basic " + base64.b64encode(":".join(api.auth).encode()).decode()


def _catalog(api: Registry) -> list[str]:
    names: list[str] = []
    last = None
    while True:
        params = {"n": "1000", **({"last": last} if last else {})}
        r = api.http.get("/v2/_catalog", params=params)
        assert r.status_code == 200, r.text
        page = r.json()["repositories"]
        names += page
        if "link" not in r.headers:
            return names
        last = page[-1]


def _image(api: Registry, repo: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A config and a layer pushed to ``repo``; their descriptors."""
    config, layer = random_config(), b"layer bytes " + repo.encode()
    api.push_blob(repo, config)
    api.push_blob(repo, layer)
    return descriptor(OCI_CONFIG, config), descriptor(OCI_LAYER, layer)


def _nothing_stored(api: Registry, repo: str, body: bytes, tag: str) -> None:
    assert_error(api.get_manifest(repo, digest_of(body)), 404, "MANIFEST_UNKNOWN")
    assert tag not in (api.http.get(f"/v2/{repo}/tags/list").json().get("tags") or [])


# -- nesting -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    ["array", "object", "inside-a-valid-manifest", "in-an-annotation-value", "in-an-index"],
)
def test_a_manifest_nested_10000_deep_is_invalid(api: Registry, repo: str, shape: str) -> None:
    config, layer = _image(api, repo)
    deep_array = "[" * 10_000 + "]" * 10_000
    if shape == "array":
        text = deep_array
    elif shape == "object":
        text = '{"a":' * 10_000 + "1" + "}" * 10_000
    elif shape == "inside-a-valid-manifest":
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                    "layers": [layer], "x": "DEEP"}  # fmt: skip
        text = json.dumps(manifest).replace('"DEEP"', deep_array)
    elif shape == "in-an-annotation-value":
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                    "layers": [layer], "annotations": {"a": "DEEP"}}  # fmt: skip
        text = json.dumps(manifest).replace('"DEEP"', deep_array)
    else:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [], "x": "DEEP"}
        text = json.dumps(index).replace('"DEEP"', '{"a":' * 5000 + "1" + "}" * 5000)
    body = text.encode()
    before = _catalog(api)
    media_type = OCI_INDEX if shape == "in-an-index" else OCI_MANIFEST
    r = api.put_manifest(repo, "deep", body, media_type)
    assert_error(r, 400, "MANIFEST_INVALID")
    _nothing_stored(api, repo, body, "deep")
    assert _catalog(api) == before


def test_brackets_inside_strings_are_not_nesting(api: Registry, repo: str) -> None:
    """A deep-looking string is just a string: the manifest is accepted, bytes kept exactly."""
    config, layer = _image(api, repo)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config,
                "layers": [layer], "annotations": {"a": "[{" * 5000 + '\\"'}}  # fmt: skip
    body = json.dumps(manifest).encode()
    assert api.put_manifest(repo, "strings", body, OCI_MANIFEST).status_code == 201
    got = api.get_manifest(repo, "strings")
    assert got.status_code == 200 and got.content == body


# -- duplicate keys ----------------------------------------------------------------------------


@pytest.mark.parametrize("missing_first", [True, False])
def test_a_key_twice_is_invalid_whichever_comes_first(
    api: Registry, repo: str, missing_first: bool
) -> None:
    config, layer = _image(api, repo)
    missing = descriptor(OCI_LAYER, b"never pushed " + repo.encode())
    first, last = ([missing], [layer]) if missing_first else ([layer], [missing])
    head = f'{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{json.dumps(config)}'
    body = f'{head},"layers":{json.dumps(first)},"layers":{json.dumps(last)}}}'.encode()
    r = api.put_manifest(repo, "twice", body, OCI_MANIFEST)
    assert_error(r, 400, "MANIFEST_INVALID")
    _nothing_stored(api, repo, body, "twice")


@pytest.mark.parametrize(
    "where", ["schemaVersion", "mediaType", "config.digest", "layer.size", "annotation", "index"]
)
def test_any_duplicate_key_anywhere_is_invalid(api: Registry, repo: str, where: str) -> None:
    config, layer = _image(api, repo)
    c, la = json.dumps(config)[1:-1], json.dumps(layer)[1:-1]
    mt = f'"mediaType":"{OCI_MANIFEST}"'
    text = {
        "schemaVersion": f'{{"schemaVersion":2,"schemaVersion":2,{mt},"config":{{{c}}},'
        f'"layers":[{{{la}}}]}}',
        "mediaType": f'{{"schemaVersion":2,{mt},{mt},"config":{{{c}}},"layers":[{{{la}}}]}}',
        "config.digest": f'{{"schemaVersion":2,{mt},"config":{{{c},"digest":"{config["digest"]}"'
        f'}},"layers":[{{{la}}}]}}',
        "layer.size": f'{{"schemaVersion":2,{mt},"config":{{{c}}},"layers":[{{{la},"size":1}}]}}',
        "annotation": f'{{"schemaVersion":2,{mt},"config":{{{c}}},"layers":[{{{la}}}],'
        '"annotations":{"a":"1","a":"2"}}',
        "index": f'{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[],"manifests":[]}}',
    }[where]
    body = text.encode()
    media_type = OCI_INDEX if where == "index" else OCI_MANIFEST
    assert_error(api.put_manifest(repo, "dup", body, media_type), 400, "MANIFEST_INVALID")
    _nothing_stored(api, repo, body, "dup")


# -- numbers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", NON_ASCII_DIGITS)
def test_page_sizes_in_non_ascii_digits_are_invalid(api: Registry, repo: str, n: str) -> None:
    api.push_image(repo, "v1")
    assert_error(
        api.http.get(f"/v2/{repo}/tags/list", params={"n": n}), 400, "PAGINATION_NUMBER_INVALID"
    )
    assert_error(api.http.get("/v2/_catalog", params={"n": n}), 400, "PAGINATION_NUMBER_INVALID")


def test_page_sizes_past_any_number_are_the_largest_page(api: Registry, repo: str) -> None:
    api.push_image(repo, "v1")
    r = api.http.get(f"/v2/{repo}/tags/list", params={"n": "9" * 5000})
    assert r.status_code == 200 and r.json()["tags"] == ["v1"]


@pytest.mark.parametrize("value", ["²", "٣", "1٣", "-1", "1_0", " 1", "1e3", "9" * 40])
def test_content_length_must_be_ascii_digits(api: Registry, repo: str, value: str) -> None:
    """Raw sockets: an HTTP client won't send such a header. The server (its HTTP layer or
    the registry) refuses with a 400; never a 5xx, never a stored blob."""
    data = b"x" * 10
    url = httpx.URL(api.base_url)
    location = api.path_of(api.upload_location(repo))
    digest = digest_of(data)
    request = (
        f"PUT {location}?digest={digest} HTTP/1.1\r\nHost: {url.host}\r\n"
        f"Authorization: {_basic(api)}\r\n"
        f"Content-Length: {value}\r\nConnection: close\r\n\r\n"
    ).encode() + data
    with socket.create_connection((url.host, url.port), timeout=10) as s:
        s.sendall(request)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:300]
    assert not api.blob_exists(repo, digest)


@pytest.mark.parametrize("header", ["bytes=²-", "bytes=0-²", "bytes=-٣", "bytes=0-" + "9" * 5000])
def test_ranges_in_odd_digits_never_fail(api: Registry, repo: str, header: str) -> None:
    data = b"0123456789"
    digest = api.push_blob(repo, data)
    r = api.http.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header.encode()})
    assert r.status_code in (200, 206, 416), r.text
    if r.status_code in (200, 206):
        assert data.endswith(r.content) or data.startswith(r.content)


@pytest.mark.parametrize("header", ["0-²", "²-9", "0-٣"])
def test_content_ranges_in_non_ascii_digits_are_invalid(
    api: Registry, repo: str, header: str
) -> None:
    location = api.upload_location(repo)
    r = api.http.patch(location, content=b"0123456789", headers={"Content-Range": header.encode()})
    assert_error(r, 400, "BLOB_UPLOAD_INVALID")
    status = api.http.get(location)
    assert status.status_code == 204 and status.headers["range"] == "0-0"


# -- sizes -------------------------------------------------------------------------------------


def _declare(api: Registry, method: str, location: str, length: int) -> tuple[int, bytes, float]:
    """Send only the headers of a request declaring ``length`` bytes; the status and body of
    the answer, and how long it took (the body is never sent)."""
    url = httpx.URL(api.resolve(location))
    target = url.raw_path.decode()
    auth = _basic(api)
    request = (
        f"{method} {target} HTTP/1.1\r\nHost: {url.host}\r\nAuthorization: {auth}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {length}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection((url.host, url.port), timeout=20) as s:
        s.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body, time.monotonic() - started


def test_a_patch_declaring_more_than_the_limit_is_refused_before_reading(
    limited: tuple[Registry, Any], repo: str
) -> None:
    api, _ = limited
    location = api.upload_location(repo)
    status, body, took = _declare(api, "PATCH", location, 11 * 1000**3)
    assert status == 413 and json.loads(body)["errors"][0]["code"] == "SIZE_INVALID", body
    assert took < 10  # answered at once: nothing of the (unsent) body was waited for
    assert not api.blob_exists(repo, digest_of(b""))


def test_a_patch_passing_the_limit_with_what_is_already_there_is_refused(
    api: Registry, repo: str
) -> None:
    """The default 10 GB limit: 1000 bytes there, and a PATCH declaring the rest plus one."""
    location = api.upload_location(repo)
    first = b"a" * 1000
    r = api.http.patch(
        location, content=first, headers={"Content-Type": "application/octet-stream"}
    )
    assert r.status_code == 202, r.text
    status, body, took = _declare(api, "PATCH", r.headers["location"], 10 * 1000**3 - 999)
    assert status == 413 and json.loads(body)["errors"][0]["code"] == "SIZE_INVALID", body
    assert took < 10


def test_a_patch_sending_more_than_the_limit_is_refused(
    limited: tuple[Registry, Any], repo: str
) -> None:
    """Smaller declared sizes: the client sends its body, and reads the 413 after it."""
    api, _ = limited
    location = api.upload_location(repo)
    half = b"a" * (MAX_BLOB // 2 + 1)
    r = api.http.patch(location, content=half, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 202, r.text
    r = api.http.patch(
        r.headers["location"], content=half, headers={"Content-Type": "application/octet-stream"}
    )
    assert_error(r, 413, "SIZE_INVALID")
    assert not api.blob_exists(repo, digest_of(half + half))


# -- upload sessions and tags ------------------------------------------------------------------


def _push_token(registry: Any, repo: str) -> dict[str, str]:
    r = httpx.get(
        f"{registry.url}/token",
        params={"scope": f"repository:{repo}:pull,push", "service": f"127.0.0.1:{registry.port}"},
        auth=registry.auth,
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_cancelling_an_unknown_upload_is_upload_unknown(
    registry: Any, api: Registry, repo: str
) -> None:
    """Docker clients hold a pull,push token while pushing: cancelling is part of pushing."""
    api.push_blob(repo, b"makes the repository exist")
    headers = _push_token(registry, repo)
    for upload_id in ("0b2f4d6e-0000-4000-8000-000000000000", "not-an-upload-id"):
        r = httpx.delete(f"{registry.url}/v2/{repo}/blobs/uploads/{upload_id}", headers=headers)
        assert_error(r, 404, "BLOB_UPLOAD_UNKNOWN")
    location = api.upload_location(repo)
    r = httpx.delete(api.resolve(location), headers=headers)
    assert r.status_code == 204, r.text
    assert_error(api.http.get(location), 404, "BLOB_UPLOAD_UNKNOWN")


@pytest.mark.parametrize("reference", ["a:b", "v1:latest", "md5:0123", "sha384:" + "a" * 96])
def test_a_tag_with_a_colon_is_tag_invalid(api: Registry, repo: str, reference: str) -> None:
    config, layer = _image(api, repo)
    body = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}
    ).encode()
    assert_error(api.put_manifest(repo, reference, body, OCI_MANIFEST), 400, "TAG_INVALID")
    _nothing_stored(api, repo, body, reference)
    # A reference that cannot exist is not found (distribution-spec, pulling manifests).
    assert_error(api.get_manifest(repo, reference), 404, "MANIFEST_UNKNOWN")
