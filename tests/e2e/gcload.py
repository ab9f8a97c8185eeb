"""The online garbage-collection workload, from the outside: pushers (monolithic, chunked,
mounted and already-present blobs; base layers shared across repositories; some versions
deleted right away, so the server purges them and their blobs become garbage) run for a bounded
time beside ``cargobay gc`` run in a loop with a tiny grace period; then every image that was
not deleted is pulled and compared byte for byte."""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from images import OCI_MANIFEST
from kit import digest_of

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
OCTET = {"Content-Type": "application/octet-stream"}


@dataclass
class Pushed:
    repo: str
    tag: str
    manifest: bytes
    blobs: dict[str, bytes]


@dataclass
class Tally:
    pushes: int = 0
    deletes: int = 0
    blobs_sent: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    alive: list[Pushed] = field(default_factory=list)
    #: Blobs only deleted images used (their config and own layer): garbage in the end.
    garbage: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, mode: str) -> None:
        with self.lock:
            self.blobs_sent[mode] = self.blobs_sent.get(mode, 0) + 1


class Pusher:
    """One client pushing images to repositories of ``namespace``, through ``urls`` in turn."""

    def __init__(
        self, urls: Sequence[str], auth: tuple[str, str], namespace: str, bases: Sequence[bytes]
    ) -> None:
        self.clients = [httpx.Client(base_url=u, auth=auth, timeout=120) for u in urls]
        self.namespace = namespace
        self.bases = bases
        self.rng = random.Random(secrets.randbits(32))

    @property
    def http(self) -> httpx.Client:
        return self.rng.choice(self.clients)

    def close(self) -> None:
        for client in self.clients:
            client.close()

    def _retrying(
        self, action: Callable[[], httpx.Response], ok: tuple[int, ...]
    ) -> httpx.Response:
        for _ in range(20):
            r = action()
            if r.status_code != 503:
                break
            time.sleep(0.2)  # the collector is removing these very bytes: they come back after
        assert r.status_code in ok, (
            f"{r.request.method} {r.request.url} -> {r.status_code} {r.text}"
        )
        return r

    def push_blob(self, repo: str, data: bytes, mode: str, tally: Tally, source: str) -> None:
        digest = digest_of(data)
        http = self.http
        if mode == "existing":
            if http.head(f"/v2/{repo}/blobs/{digest}").status_code == 200:
                tally.count("existing")
                return
            mode = "monolithic"
        if mode == "mount":
            r = self._retrying(
                lambda: http.post(
                    f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source}
                ),
                (201, 202),
            )
            if r.status_code == 201:
                tally.count("mount")
                return
            location = r.headers["location"]
            mode = "monolithic"
        else:
            location = self._retrying(
                lambda: http.post(f"/v2/{repo}/blobs/uploads/"), (202,)
            ).headers["location"]
        if mode == "chunked" and len(data) > 1:
            half = len(data) // 2
            r = http.patch(
                location,
                content=data[:half],
                headers={**OCTET, "Content-Range": f"0-{half - 1}"},
            )
            assert r.status_code == 202, r.text
            location = r.headers["location"]
            r = http.patch(
                location,
                content=data[half:],
                headers={**OCTET, "Content-Range": f"{half}-{len(data) - 1}"},
            )
            assert r.status_code == 202, r.text
            final = httpx.URL(r.headers["location"]).copy_merge_params({"digest": digest})
            self._retrying(lambda: http.put(final, headers=OCTET), (201,))
        else:
            final = httpx.URL(location).copy_merge_params({"digest": digest})
            self._retrying(lambda: http.put(final, content=data, headers=OCTET), (201,))
        tally.count(mode)

    def push_image(self, repo: str, tag: str, tally: Tally, source: str) -> Pushed:
        config = json.dumps({"architecture": "amd64", "os": "linux", "id": secrets.token_hex(8)})
        base = self.rng.choice(self.bases)
        own = os.urandom(self.rng.randint(1000, 60_000))
        blobs = {digest_of(b): b for b in (config.encode(), base, own)}
        modes = ("monolithic", "chunked", "mount", "existing")
        for data in blobs.values():
            mode = "mount" if data is base and self.rng.random() < 0.4 else self.rng.choice(modes)
            self.push_blob(repo, data, mode, tally, source)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": OCI_CONFIG,
                    "digest": digest_of(config.encode()),
                    "size": len(config),
                },
                "layers": [
                    {"mediaType": LAYER, "digest": digest_of(b), "size": len(b)}
                    for b in (base, own)
                ],
            }
        ).encode()
        for _ in range(5):
            r = self.http.put(
                f"/v2/{repo}/manifests/{tag}",
                content=manifest,
                headers={"Content-Type": OCI_MANIFEST},
            )
            if r.status_code == 201:
                break
            # A blob HEAD said was there was unlinked by a purge since: push it again.
            assert r.status_code in (400, 503), r.text
            assert r.status_code == 503 or "MANIFEST_BLOB_UNKNOWN" in r.text, r.text
            with tally.lock:
                tally.retries += 1
            for data in blobs.values():
                self.push_blob(repo, data, "monolithic", tally, source)
        assert r.status_code == 201, r.text
        return Pushed(repo, tag, manifest, blobs)

    def run(self, index: int, deadline: float, tally: Tally) -> None:
        i = 0
        try:
            while time.monotonic() < deadline:
                repo = f"{self.namespace}/gc-{index}-{i % 4}"
                source = f"{self.namespace}/gc-{(index + 1) % 3}-{i % 4}"
                pushed = self.push_image(repo, f"t{index}-{i}", tally, source)
                with tally.lock:
                    tally.pushes += 1
                if self.rng.random() < 0.5:
                    digest = digest_of(pushed.manifest)
                    r = self.http.delete(f"/v2/{repo}/manifests/{digest}")
                    assert r.status_code == 202, r.text
                    with tally.lock:
                        tally.deletes += 1
                        tally.garbage |= set(list(pushed.blobs)[::2])  # config, own layer
                else:
                    with tally.lock:
                        tally.alive.append(pushed)
                i += 1
        except Exception as exc:
            with tally.lock:
                tally.errors.append(repr(exc))
        finally:
            self.close()


_LOOP = """
import asyncio, json, sys, time
from cargobay.app import build_blob_store, build_gc, build_metadata, build_registry
from cargobay.cli.common import settings_for
from cargobay.cli.gc import parse_duration
settings = settings_for(data_dir=sys.argv[1])
metadata = build_metadata(settings)
store = build_blob_store(settings)
service = build_gc(settings, metadata, store, build_registry(settings, metadata, store))
grace = parse_duration(sys.argv[2])
async def main():
    deadline = time.monotonic() + float(sys.argv[3])
    while time.monotonic() < deadline:
        report = await service.run_once(grace=grace)
        print(json.dumps(report.as_dict()), flush=True)
        await asyncio.sleep(0.05)
asyncio.run(main())
"""


@dataclass
class GcLoop:
    """``cargobay gc --json`` run again and again (a separate process, as an operator would)."""

    data_dir: Path
    env: dict[str, str]
    grace: str = "0.5s"
    reports: list[dict[str, object]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def once(self) -> dict[str, object]:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "cargobay",
                "gc",
                "--json",
                "--grace",
                self.grace,
                "--data-dir",
                str(self.data_dir),
            ],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            self.failures.append(done.stderr[-3000:])
            return {}
        report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        self.reports.append(report)
        return report

    def run(self, deadline: float) -> None:
        """Collections back to back until ``deadline``, in one process built as ``cargobay gc``
        builds its collector (a process per run would spend most of the time starting)."""
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                _LOOP,
                str(self.data_dir),
                self.grace,
                str(max(deadline - time.monotonic(), 0)),
            ],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        if done.returncode != 0:
            self.failures.append(done.stderr[-3000:])
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                self.reports.append(json.loads(line))

    def total(self, key: str) -> int:
        return sum(int(r[key]) for r in self.reports)  # type: ignore[call-overload]


def verify(urls: Sequence[str], auth: tuple[str, str], images: Sequence[Pushed]) -> list[str]:
    """Pull every image (manifest by tag, every blob, through every URL in turn, following
    redirects to the object store); returns what did not come back byte for byte."""
    lost = []
    clients = [
        httpx.Client(base_url=u, auth=auth, timeout=120, follow_redirects=True) for u in urls
    ]
    try:
        for n, image in enumerate(images):
            http = clients[n % len(clients)]
            r = http.get(
                f"/v2/{image.repo}/manifests/{image.tag}", headers={"Accept": OCI_MANIFEST}
            )
            if r.status_code != 200 or r.content != image.manifest:
                lost.append(f"manifest {image.repo}:{image.tag} -> {r.status_code}")
                continue
            for digest, data in image.blobs.items():
                r = http.get(f"/v2/{image.repo}/blobs/{digest}")
                if r.status_code != 200 or r.content != data:
                    lost.append(f"blob {image.repo}@{digest} -> {r.status_code}")
    finally:
        for client in clients:
            client.close()
    return lost


def run_workload(
    urls: Sequence[str],
    auth: tuple[str, str],
    namespace: str,
    gc_loop: GcLoop,
    seconds: float,
    pushers: int = 3,
) -> tuple[Tally, list[str]]:
    """Pushers and the collector side by side for ``seconds``; then a last collection and the
    pull of every image not deleted. Returns the tally and what was lost."""
    bases = [os.urandom(random.randint(50_000, 300_000)) for _ in range(4)]
    tally = Tally()
    deadline = time.monotonic() + seconds
    threads = [
        threading.Thread(target=Pusher(urls, auth, namespace, bases).run, args=(i, deadline, tally))
        for i in range(pushers)
    ]
    threads.append(threading.Thread(target=gc_loop.run, args=(deadline,)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    time.sleep(1.5)  # the server purges what was deleted last (restore window of 1 s)
    gc_loop.once()
    return tally, verify(urls, auth, tally.alive)


def figures(tally: Tally, gc_loop: GcLoop, lost: Sequence[str]) -> str:
    return (
        f"pushes={tally.pushes} deletes={tally.deletes} alive={len(tally.alive)}"
        f" blobs_sent={tally.blobs_sent} manifest_retries={tally.retries}"
        f" gc_runs={len(gc_loop.reports)} gc_skipped={gc_loop.total('skipped')}"
        f" blobs_checked={gc_loop.total('blobs_checked')}"
        f" blobs_deleted={gc_loop.total('blobs_deleted')}"
        f" orphans_deleted={gc_loop.total('orphans_deleted')}"
        f" recovered={gc_loop.total('recovered')} discovered={gc_loop.total('discovered')}"
        f" in_use={gc_loop.total('in_use')} recent={gc_loop.total('recent')}"
        f" bytes_freed={gc_loop.total('bytes_freed')} lost={len(lost)}"
    )
