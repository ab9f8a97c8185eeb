"""Prometheus metrics from the outside: a server with two workers and a metrics listener; after
pushes and pulls the scraped counters (summed over both workers) moved by exactly what was
sent, the store gauges count what was stored, labels stay bounded, and the public port serves
no metrics."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import httpx
import pytest
from kit import Oci, digest_of, image
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e

if os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") == "reference":
    pytest.skip("cargobay's own metrics", allow_module_level=True)

NAMESPACE = "api"  # the conftest's test user owns it
MANIFESTS = "/v2/{name}/manifests/{reference}"
BLOBS = "/v2/{name}/blobs/{digest}"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(url: str) -> Samples:
    resp = httpx.get(url, timeout=30)
    assert resp.status_code == 200, resp.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(resp.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def fresh(server: Any, **kwargs: Any) -> httpx.Client:
    """A client opening a new connection per request (so both workers take some)."""
    return httpx.Client(
        base_url=server.url,
        timeout=30,
        limits=httpx.Limits(max_keepalive_connections=0),
        **kwargs,
    )


def test_counters_move_by_what_was_pushed_and_pulled(server_factory: Any) -> None:
    metrics_port = free_port()
    server = server_factory(workers=2, metrics_port=metrics_port, sign_in_failures=2)
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    assert httpx.get(f"{server.url}/metrics", timeout=30).status_code == 404
    before = scrape(url)
    repo = f"{NAMESPACE}/metered-{os.urandom(4).hex()}"
    blobs: list[bytes] = []
    manifests: list[bytes] = []
    with fresh(server, auth=(server.user, server.token)) as http:
        oci = Oci(http)
        for i in range(3):
            built = image(layer_size=1000 + i)
            for data in built.blobs.values():
                oci.push_blob_in_steps(repo, data)
                blobs.append(data)
            oci.push_manifest(repo, f"v{i}", built.manifest, built.media_type)
            manifests.append(built.manifest)
        for i, manifest in enumerate(manifests):
            for _ in range(2):
                got = http.get(
                    f"/v2/{repo}/manifests/v{i}",
                    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
                )
                assert got.content == manifest
        for data in blobs:
            assert http.get(f"/v2/{repo}/blobs/{digest_of(data)}").content == data
    # Each of the two workers counts failures itself (no Redis here): eight failures put at
    # least four on one worker, past its limit of two, whichever worker takes which request.
    with fresh(server) as anonymous:
        statuses = [
            anonymous.get("/v2/", auth=("nobody", "cbp_wrong")).status_code for _ in range(8)
        ]
    assert statuses[0] == 401 and 429 in statuses, statuses

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    deadline = time.monotonic() + 15
    while True:  # each worker writes its counts every second
        after = scrape(url)
        blob_gets = moved("registry_http_requests_total", handler=BLOBS, method="GET", code="200")
        if blob_gets >= 6 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    time.sleep(1.5)  # and whatever the other worker counted last
    after = scrape(url)
    requests = "registry_http_requests_total"
    assert moved(requests, handler=MANIFESTS, method="PUT", code="201") == 3
    assert moved(requests, handler=MANIFESTS, method="GET", code="200") == 6
    assert moved(requests, handler=BLOBS, method="GET", code="200") == 6
    assert moved(requests, handler="/v2/{name}/blobs/uploads/", method="POST", code="202") == 6
    assert moved(requests, handler="/v2/{name}/blobs/uploads/{uuid}", method="PUT", code="201") == 6
    duration = "registry_http_request_duration_seconds_count"
    assert moved(duration, handler=MANIFESTS, method="GET") == 6
    received = "registry_http_received_bytes_total"
    assert moved(received, handler="/v2/{name}/blobs/uploads/{uuid}") == sum(map(len, blobs))
    assert moved(received, handler=MANIFESTS) == sum(map(len, manifests))
    sent = "registry_http_sent_bytes_total"
    assert moved(sent, handler=BLOBS) == sum(map(len, blobs))
    assert moved(sent, handler=MANIFESTS) == 2 * sum(map(len, manifests))
    assert moved("cargobay_sign_in_rejections_total", handler="/v2/") >= 1
    assert value(after, "registry_http_in_flight_requests") == 0
    assert ("cargobay_db_pool_connections_in_use", frozenset()) in after
    for _, labels in after:
        for _, label in labels:
            assert repo not in label and "sha256:" not in label, label

    deadline = time.monotonic() + 20
    while True:  # the store's counts are cached for a few seconds
        counts = scrape(url)
        stored = (value(counts, "cargobay_manifests"), value(counts, "cargobay_blobs"))
        if stored == (3, 6) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert stored == (3, 6)
    assert value(counts, "cargobay_uploads") == 0
