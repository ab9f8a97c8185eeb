"""Property-based fuzzing against a real server (hypothesis, a fixed seed and a bounded number
of examples, so CI runs it the same way in seconds): manifest PUT bodies and every query
parameter. Nothing answers 5xx, and whatever manifest is accepted is stored byte for byte."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from apitest import OCI_CONFIG, OCI_INDEX, OCI_LAYER, OCI_MANIFEST, Registry, descriptor
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from kit import digest_of

pytestmark = pytest.mark.cargobay_only("fuzzing cargobay's own answers")

FUZZ = settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

#: Text as clients might send it: ASCII, digits of other scripts, controls, surrogates excluded.
TEXT = st.text(
    st.characters(
        codec="utf-8",
        categories=("L", "M", "N", "P", "S", "Z", "Cc"),
    ),
    max_size=40,
)
NUMBERISH = st.one_of(
    st.integers(min_value=-5, max_value=10**25).map(str),
    st.text(st.characters(categories=("Nd", "No", "Nl")), min_size=1, max_size=6),
    TEXT,
)
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), TEXT)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def fuzz_repo(api: Registry) -> tuple[str, dict[str, Any], dict[str, Any]]:
    repo = f"api/fuzz-{uuid.uuid4().hex[:8]}"
    config, layer = b'{"architecture":"amd64","os":"linux"}', b"fuzz layer"
    api.push_blob(repo, config)
    api.push_blob(repo, layer)
    return repo, descriptor(OCI_CONFIG, config), descriptor(OCI_LAYER, layer)


def _manifests(config: dict[str, Any], layer: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """Bodies near a valid manifest (fields replaced, added, repeated, nested) and far from it."""
    base = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [layer]}
    keys = st.sampled_from(
        [
            "schemaVersion",
            "mediaType",
            "config",
            "layers",
            "manifests",
            "subject",
            "annotations",
            "artifactType",
            "x",
        ]
    )

    @st.composite
    def mutated(draw: st.DrawFn) -> bytes:
        doc = dict(base)
        for _ in range(draw(st.integers(0, 3))):
            doc[draw(keys)] = draw(JSON)
        text = json.dumps(doc, indent=draw(st.sampled_from([None, 2])))
        if draw(st.booleans()):  # a key twice
            key = draw(keys)
            text = text[:-1].rstrip() + f', "{key}": {json.dumps(draw(JSON))}}}'
        if draw(st.booleans()):  # deep nesting somewhere
            depth = draw(st.integers(1, 3000))
            text = text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
        return text.encode()

    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode()
    return st.one_of(
        mutated(),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
        st.just(index),
        st.integers(1, 20_000).map(lambda d: b"[" * d + b"]" * d),
    )


def test_manifest_bodies(api: Registry, fuzz_repo: tuple[str, Any, Any]) -> None:
    repo, config, layer = fuzz_repo

    @FUZZ
    @seed(20261207)
    @given(body=_manifests(config, layer), media_type=st.sampled_from([OCI_MANIFEST, OCI_INDEX]))
    def put(body: bytes, media_type: str) -> None:
        r = api.put_manifest(repo, "fuzz", body, media_type)
        assert r.status_code < 500, (r.status_code, r.text[:300])
        if r.status_code == 201:
            digest = digest_of(body)
            assert r.headers["docker-content-digest"] == digest
            got = api.get_manifest(repo, digest)
            assert got.status_code == 200 and got.content == body
        else:
            assert r.status_code == 400, r.text
            assert r.json()["errors"][0]["code"] in ("MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN")

    put()


#: (method, path, parameter names) of every endpoint that reads query parameters.
ENDPOINTS = [
    ("GET", "/v2/{repo}/tags/list", ["n", "last"]),
    ("GET", "/v2/_catalog", ["n", "last"]),
    ("GET", "/v2/{repo}/referrers/{digest}", ["artifactType"]),
    ("POST", "/v2/{repo}/blobs/uploads/", ["digest", "mount", "from"]),
    ("GET", "/token", ["scope", "service", "account"]),
    ("GET", "/api/v3/user/packages", ["package_type", "visibility", "page", "per_page"]),
    ("GET", "/api/v3/orgs/api/packages", ["package_type", "visibility", "page", "per_page"]),
    ("GET", "/api/v3/user/packages/container/{name}/versions", ["page", "per_page", "state"]),
    ("GET", "/orgs/api/packages", ["page", "visibility", "q"]),
    ("GET", "/orgs/api/packages/container/package/{name}", ["tab", "page", "filter"]),
    ("GET", "/login", ["next"]),
]


def test_every_query_parameter(
    api: Registry, registry: Any, fuzz_repo: tuple[str, Any, Any]
) -> None:
    repo = fuzz_repo[0]
    name = repo.split("/", 1)[1]
    digest = fuzz_repo[1]["digest"]
    http = httpx.Client(base_url=registry.url, timeout=30)
    token = {"Authorization": f"Bearer {registry.token}"}

    @settings(FUZZ, max_examples=200)
    @seed(20261207)
    @given(
        endpoint=st.sampled_from(ENDPOINTS),
        values=st.lists(st.tuples(st.integers(0, 3), NUMBERISH), min_size=1, max_size=4),
        signed_in=st.booleans(),
    )
    def query(endpoint: tuple[str, str, list[str]], values: list[tuple[int, str]],
              signed_in: bool) -> None:  # fmt: skip
        method, path, names = endpoint
        params = [(names[i % len(names)], v) for i, v in values]
        url = path.format(repo=repo, name=name, digest=digest)
        if url.startswith(("/v2", "/token")):
            r = http.request(method, url, params=params, auth=registry.auth if signed_in else None)
        else:
            r = http.request(method, url, params=params, headers=token if signed_in else {})
        assert r.status_code < 500, (method, url, params, r.status_code, r.text[:300])

    try:
        query()
    finally:
        http.close()
