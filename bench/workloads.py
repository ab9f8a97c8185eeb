"""The workloads. Each measuring function takes a running Server and returns one sample:
a dict of metric name -> value. Setup functions prepare a server and are not timed."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import loadgen
from httpc import (
    BlobData,
    Conn,
    GiB,
    HTTPError,
    MiB,
    download,
    expect,
    path_of,
    upload_chunked,
    upload_put,
    upload_small,
)
from procs import CpuMeter, RssSampler, tree_pss_bytes, tree_rss_bytes
from servers import Server

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = ", ".join(
    [
        OCI_MANIFEST,
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
_seeds = itertools.count(1000)


def next_seed() -> int:
    return next(_seeds)


@dataclass
class Fixture:
    """What setup left on a server for the measuring functions."""

    get_blob: BlobData | None = None
    manifest_digest: str = ""
    tags: int = 0


def make_manifest(config: bytes, config_digest: str, layers: list[tuple[str, int]]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s}
            for d, s in layers
        ],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def config_blob(tag: str) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"bench": tag}},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()


def put_manifest(conn: Conn, repo: str, ref: str, body: bytes) -> str:
    r = conn.request("PUT", f"/v2/{repo}/manifests/{ref}", {"Content-Type": OCI_MANIFEST}, body)
    expect(r, 201, what=f"PUT manifest {repo}:{ref}")
    return r.header("docker-content-digest")


def small_image(conn: Conn, repo: str, tag: str) -> bytes:
    """Upload a config and a 4 KiB layer to repo; return the manifest bytes (not pushed)."""
    cfg = config_blob(tag)
    cfg_digest = upload_small(conn, repo, cfg)
    layer = hashlib.sha256(tag.encode()).digest() * 128
    layer_digest = upload_small(conn, repo, layer)
    return make_manifest(cfg, cfg_digest, [(layer_digest, len(layer))])


# -- setup --------------------------------------------------------------------------


def setup_manifest(server: Server, fx: Fixture) -> None:
    with server.conn() as c:
        body = small_image(c, "bench/manifests", "latest")
        fx.manifest_digest = put_manifest(c, "bench/manifests", "latest", body)
        r = c.request("GET", "/v2/bench/manifests/manifests/latest", {"Accept": ACCEPT})
        expect(r, 200, what="GET manifest after push")


def setup_get_blob(server: Server, fx: Fixture, size: int) -> None:
    blob = BlobData(next_seed(), size)
    with server.conn() as c:
        upload_put(c, "bench/blobs", blob)
        download(c, f"/v2/bench/blobs/blobs/{blob.digest}")  # warm the page cache
    fx.get_blob = blob


def setup_tags(server: Server, fx: Fixture, count: int, concurrency: int = 16) -> dict[str, float]:
    """PUT one manifest under `count` tags with `concurrency` connections."""
    with server.conn() as c:
        body = small_image(c, "bench/tags", "tags")
    local = threading.local()

    def put(i: int) -> None:
        if not hasattr(local, "conn"):
            local.conn = server.conn()
        put_manifest(local.conn, "bench/tags", f"t{i:06d}", body)

    t = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as ex:
        list(ex.map(put, range(count)))
    elapsed = time.perf_counter() - t
    fx.tags = count
    return {"tags.put_rps": count / elapsed}


# -- 1-3: blobs -----------------------------------------------------------------------


def _blob_sample(prefix: str, meter: CpuMeter, nbytes: int) -> dict[str, float]:
    return {
        f"{prefix}.mibps": nbytes / MiB / meter.wall,
        f"{prefix}.cpu_gib": meter.cpu / (nbytes / GiB),
    }


def upload_monolithic(server: Server, fx: Fixture, size: int) -> dict[str, float]:
    """Also leaves the blob in the fixture: the GET workloads read the last one uploaded."""
    blob = BlobData(next_seed(), size)
    _ = blob.digest  # computed before the clock starts
    with server.conn() as c:
        c.request("GET", "/v2/")  # connect outside the measurement
        with CpuMeter(server.pid) as m:
            upload_put(c, "bench/blobs", blob)
    fx.get_blob = blob
    return _blob_sample("upload_put", m, size)


def upload_in_chunks(server: Server, size: int, chunk: int = 8 * MiB) -> dict[str, float]:
    blob = BlobData(next_seed(), size)
    _ = blob.digest
    with server.conn() as c:
        c.request("GET", "/v2/")
        with CpuMeter(server.pid) as m:
            upload_chunked(c, "bench/blobs", blob, chunk)
    return _blob_sample("upload_chunked", m, size)


def patch_cost(server: Server, patches: int = 256, chunk: int = 64 * 1024) -> dict[str, float]:
    """Server CPU per PATCH, apart from the bytes: `patches` PATCHes of 64 KiB (hashing and
    writing 64 KiB is a few percent of a request's cost here)."""
    blob = BlobData(next_seed(), patches * chunk).sent_in(chunk)
    with server.conn() as c:
        c.request("GET", "/v2/")
        with CpuMeter(server.pid) as m:
            upload_chunked(c, "bench/blobs", blob, chunk)
    return {
        "upload_chunked.cpu_ms_patch": m.cpu * 1000 / patches,
        "upload_chunked.patches_s": patches / m.wall,
    }


def blob_get(
    server: Server, fx: Fixture, rng: str | None, size: int, total: int
) -> dict[str, float]:
    """GET the blob (or a range of it) on one connection until `total` bytes were read,
    so that one sample is long enough for the 10 ms resolution of /proc CPU times."""
    if fx.get_blob is None:  # the upload workload did not run or failed: upload one now
        setup_get_blob(server, fx, size)
    assert fx.get_blob is not None
    target = f"/v2/bench/blobs/blobs/{fx.get_blob.digest}"
    if rng:
        lo, hi = (int(x) for x in rng.split("=", 1)[1].split("-"))
        want = hi - lo + 1
    else:
        want = fx.get_blob.size
    got = 0
    with server.conn() as c:
        c.request("GET", "/v2/")
        with CpuMeter(server.pid) as m:
            for _ in range(max(1, total // want)):
                n = download(c, target, rng)
                if n != want:
                    raise HTTPError(f"GET returned {n} bytes, expected {want}")
                got += n
    return _blob_sample("get_range" if rng else "get_whole", m, got)


# -- 4-6: small requests --------------------------------------------------------------


def manifest_get(server: Server, duration: float, load_cpus: str) -> dict[str, float]:
    r = loadgen.wrk(
        server.url("/v2/bench/manifests/manifests/latest"),
        {"Accept": ACCEPT, **server.headers()},
        duration,
        cpus=load_cpus,
    )
    return _rate("manifest_get", r)


def manifest_head(server: Server, duration: float, load_cpus: str) -> dict[str, float]:
    r = loadgen.ab(
        server.url("/v2/bench/manifests/manifests/latest"),
        {"Accept": ACCEPT, **server.headers()},
        duration=duration,
        head=True,
        cpus=load_cpus,
    )
    return _rate("manifest_head", r)


def base_get(server: Server, duration: float, load_cpus: str) -> dict[str, float]:
    r = loadgen.wrk(server.url("/v2/"), server.headers(), duration, cpus=load_cpus)
    return _rate("v2", r)


def token_issue(server: Server, duration: float, load_cpus: str) -> dict[str, float]:
    auth = server.auth
    if auth is None or not auth.enabled:
        return {}
    host, port, path = auth.realm_target()
    headers = {"Authorization": auth.basic} if auth.basic else {}
    r = loadgen.wrk(f"http://{host}:{port}{path}", headers, duration, cpus=load_cpus)
    return _rate("token", r)


def _rate(prefix: str, r: dict[str, float]) -> dict[str, float]:
    if r["errors"] and r["errors"] > 0.01 * max(r["requests"], 1):
        raise HTTPError(f"{int(r['errors'])} errors in {int(r['requests'])} requests")
    return {
        f"{prefix}.rps": r["rps"],
        f"{prefix}.p99": r["p99_ms"],
        f"{prefix}.errors": r["errors"],
    }


# -- 7: tag listing -------------------------------------------------------------------

_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


def walk_tags(server: Server, fx: Fixture, page: int = 100) -> dict[str, float | str]:
    target: str | None = f"/v2/bench/tags/tags/list?n={page}"
    pages = 0
    seen = 0
    limit = fx.tags // page * 2 + 10
    with server.conn() as c:
        c.request("GET", "/v2/")
        t = time.perf_counter()
        while target:
            r = expect(c.request("GET", target), 200, what=f"GET {target}")
            pages += 1
            seen += len(json.loads(r.body).get("tags") or [])
            m = _LINK_NEXT.search(r.header("link"))
            target = path_of(m.group(1)) if m else None
            if pages > limit:
                raise HTTPError(f"tag walk did not end after {pages} pages")
        elapsed = time.perf_counter() - t
    if seen != fx.tags:
        raise HTTPError(f"tag walk saw {seen} tags, expected {fx.tags}")
    out: dict[str, float | str] = {
        "tags.walk_s": elapsed,
        "tags.pages_s": pages / elapsed,
        "tags.pages": pages,
    }
    if pages == 1 and fx.tags > page:
        out["tags.note"] = f"tag list: all {fx.tags} tags in one page (n={page} ignored)"
    return out


# -- 8: concurrent pushes ---------------------------------------------------------------


def concurrent_pushes(server: Server, images: int = 50) -> dict[str, float | str]:
    """`images` clients push at once; each image: 2 shared 4 MiB base layers, 1 unique
    1 MiB layer, a config, a manifest; every blob is HEAD-checked before upload."""
    rep = next_seed()
    bases = [BlobData(next_seed(), 4 * MiB).to_bytes() for _ in range(2)]
    base_digests = ["sha256:" + hashlib.sha256(b).hexdigest() for b in bases]
    uniques = [BlobData(next_seed(), 1 * MiB).to_bytes() for _ in range(images)]
    repo = "bench/push"
    barrier = threading.Barrier(images)

    def push(i: int) -> str | None:
        cfg = config_blob(f"push-{rep}-{i}")
        blobs = [*bases, uniques[i], cfg]
        digests = [*base_digests, "sha256:" + hashlib.sha256(uniques[i]).hexdigest()]
        digests.append("sha256:" + hashlib.sha256(cfg).hexdigest())
        try:
            barrier.wait(timeout=30)
            with server.conn() as c:
                for data, digest in zip(blobs, digests, strict=True):
                    r = c.request("HEAD", f"/v2/{repo}/blobs/{digest}")
                    if r.status == 404:
                        upload_small(c, repo, data)
                    elif r.status != 200:
                        return f"HEAD blob: HTTP {r.status}"
                layers = [(d, len(b)) for d, b in zip(digests[:3], blobs[:3], strict=True)]
                put_manifest(c, repo, f"img-{rep}-{i}", make_manifest(cfg, digests[3], layers))
        except Exception as e:
            return f"{type(e).__name__}: {e}"
        return None

    t = time.perf_counter()
    with ThreadPoolExecutor(images) as ex:
        results = list(ex.map(push, range(images)))
    elapsed = time.perf_counter() - t
    errors = [r for r in results if r]
    out: dict[str, float | str] = {"push.total_s": elapsed, "push.errors": float(len(errors))}
    if errors:
        out["push.first_error"] = errors[0]
    return out


# -- 9: memory ----------------------------------------------------------------------------


def rss_small_requests(server: Server, counts: tuple[int, int], load_cpus: str) -> dict[str, float]:
    """RSS of the server tree after counts[0] and after counts[1] manifest GETs (ab -k)."""
    url = server.url("/v2/bench/manifests/manifests/latest")
    headers = {"Accept": ACCEPT, **server.headers()}
    loadgen.ab(url, headers, requests=counts[0], cpus=load_cpus)
    time.sleep(0.3)
    first, first_pss = tree_rss_bytes(server.pid), tree_pss_bytes(server.pid)
    loadgen.ab(url, headers, requests=counts[1] - counts[0], cpus=load_cpus)
    time.sleep(0.3)
    second, second_pss = tree_rss_bytes(server.pid), tree_pss_bytes(server.pid)
    return {
        "rss.small_a_mb": first / 1e6,
        "rss.small_b_mb": second / 1e6,
        "rss.growth_pct": (second - first) / first * 100.0,
        "rss.small_a_pss_mb": first_pss / 1e6,
        "rss.small_b_pss_mb": second_pss / 1e6,
    }


def rss_big_blob(server: Server, size: int) -> dict[str, float]:
    """Peak RSS of the server tree (sampled every 50 ms) while a `size` blob is uploaded
    in one streamed PUT and then downloaded."""
    blob = BlobData(next_seed(), size)
    _ = blob.digest
    before = tree_rss_bytes(server.pid)
    with server.conn(timeout=600) as c, RssSampler(server.pid) as s:
        upload_put(c, "bench/blobs", blob)
        n = download(c, f"/v2/bench/blobs/blobs/{blob.digest}")
    if n != size:
        raise HTTPError(f"GET returned {n} bytes, expected {size}")
    return {
        "rss.before_mb": before / 1e6,
        "rss.peak_mb": s.peak / 1e6,
        "rss.peak_pss_mb": s.peak_pss / 1e6,
        "rss.samples": s.samples,
    }
