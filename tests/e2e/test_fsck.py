"""``cargobay fsck`` against a real server on SQLite + filesystem: a blob file deleted and a
byte flipped by hand, an orphan written behind the registry's back; fsck finds them,
``--repair`` leaves a consistent registry, and the untouched images pull byte for byte."""

from __future__ import annotations

import os
import secrets
import time

import httpx
import pytest
from fsckkit import blob_file, cargobay, fsck, pull_problems, push_image
from kit import digest_of
from registry_http import upload_blob

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_fsck_finds_lost_and_corrupt_bytes_and_repair_heals(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory()
    http = httpx.Client(base_url=server.url, auth=server.auth, timeout=30)
    base = secrets.token_bytes(32 * 1024)
    lost, flipped, kept = (push_image(http, "e2e/fsck", tag, base) for tag in ("a", "b", "c"))
    other = push_image(http, "e2e/fsck-other", "v1", base)

    code, report = fsck(server)
    assert code == 0 and report["clean"] and report["problems"] == 0, report
    assert report["blobs_known"] == report["blobs_stored"] == 1 + 2 * 4

    # Behind the registry's back: one layer's file gone, one byte flipped in another, and
    # bytes no metadata knows (written an hour ago).
    gone, bad = lost.layers()[1], flipped.layers()[1]
    blob_file(server.data_dir, gone).unlink()
    path = blob_file(server.data_dir, bad)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    orphan = secrets.token_bytes(1000)
    orphan_digest = digest_of(orphan)
    orphan_path = blob_file(server.data_dir, orphan_digest)
    orphan_path.parent.mkdir(parents=True, exist_ok=True)
    orphan_path.write_bytes(orphan)
    os.utime(orphan_path, (time.time() - 3600, time.time() - 3600))

    # Without --verify: the lost blob and the orphan (the flipped byte keeps the size).
    code, report = fsck(server)
    assert code == 1 and not report["clean"]
    assert [m["digest"] for m in report["missing"]] == [gone]
    assert report["missing"][0]["versions"] == [["e2e/fsck", lost.digest]]
    assert report["orphans"] == [{"digest": orphan_digest, "size": 1000}]
    assert report["corrupt"] == []
    # Reading everything back finds the flipped byte too.
    code, report = fsck(server, "--verify")
    assert code == 1
    assert [c["digest"] for c in report["corrupt"]] == [bad]
    assert report["corrupt"][0]["actual"] == digest_of(bytes(data))
    assert report["bytes_verified"] >= len(base) + 3 * 64 * 1024
    # The plain-text summary names each problem.
    code, text = cargobay(server, "fsck", "--verify")
    assert code == 1
    assert f"missing  {gone}" in text and f"corrupt  {bad}" in text
    assert f"orphan   {orphan_digest}" in text

    code, report = fsck(server, "--verify", "--repair")
    assert code == 1, "the versions listing lost bytes need a push: reported, not hidden"
    assert report["corrupt_removed"] == 1 and report["orphans_to_gc"] == 1
    assert len(report["unrepaired"]) == 2
    assert any(gone in line and lost.digest in line for line in report["unrepaired"])
    assert any(bad in line and flipped.digest in line for line in report["unrepaired"])

    # Never wrong bytes: both answer BLOB_UNKNOWN, and HEAD says so, so clients push again.
    for digest in (gone, bad):
        r = http.get(f"/v2/e2e/fsck/blobs/{digest}")
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
        assert http.head(f"/v2/e2e/fsck/blobs/{digest}").status_code == 404
    assert not path.exists(), "the corrupt bytes are removed"
    # Everything else pulls byte for byte.
    assert pull_problems(http, kept) == [] and pull_problems(http, other) == []

    # The orphan is the collector's now: still there (grace), gone after a run past it.
    assert orphan_path.exists()
    code, _ = cargobay(server, "gc", "--grace", "0s")
    assert code == 0 and not orphan_path.exists()
    assert pull_problems(http, kept) == [] and pull_problems(http, other) == []

    # Pushing the two blobs again heals the versions; then fsck is clean.
    upload_blob(http, "e2e/fsck", lost.blobs[gone])
    upload_blob(http, "e2e/fsck", flipped.blobs[bad])
    for image in (lost, flipped, kept, other):
        assert pull_problems(http, image) == []
    code, report = fsck(server, "--verify")
    assert code == 0 and report["clean"], report
    http.close()


def test_fsck_repair_drops_dangling_metadata_nothing_needs(server_factory) -> None:  # type: ignore[no-untyped-def]
    """A blob uploaded but in no version: its bytes lost, repair drops the link and the row,
    and the next fsck is clean without any push."""
    server = server_factory()
    http = httpx.Client(base_url=server.url, auth=server.auth, timeout=30)
    loose = secrets.token_bytes(5000)
    digest = upload_blob(http, "e2e/loose", loose)
    blob_file(server.data_dir, digest).unlink()
    code, report = fsck(server, "--repair")
    assert code == 0 and report["clean"], report
    assert report["missing"][0]["digest"] == digest
    assert report["links_dropped"] == 1 and report["rows_dropped"] == 1
    assert report["unrepaired"] == []
    code, report = fsck(server)
    assert code == 0 and report["problems"] == 0, report
    assert http.head(f"/v2/e2e/loose/blobs/{digest}").status_code == 404
    http.close()
