"""``cargobay fsck`` on PostgreSQL + S3 (the session's Ceph RGW): an object deleted and a byte
flipped behind the registry's back, an orphan object; fsck finds them, ``--repair`` leaves a
consistent registry, and the untouched images pull byte for byte."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import ON_REFERENCE
from fsckkit import cargobay, fresh_postgres, fsck, pull_problems, push_image
from kit import digest_of
from registry_http import upload_blob

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(600),
    pytest.mark.skipif(ON_REFERENCE, reason="cargobay's own command"),
]


def key(digest: str) -> str:
    algorithm, encoded = digest.split(":", 1)
    return f"blobs/{algorithm}/{encoded}"


def test_fsck_on_postgresql_and_s3(
    server_factory: Any, s3_service: Any, s3_bucket: str, tmp_path: Path
) -> None:
    with fresh_postgres(tmp_path / "migrate") as url:
        server = server_factory(database_url=url, **s3_service.settings(s3_bucket))
        http = httpx.Client(base_url=server.url, auth=server.auth, timeout=60)
        try:
            base = secrets.token_bytes(32 * 1024)
            lost, flipped, kept = (push_image(http, "e2e/fsck", t, base) for t in "abc")
            code, report = fsck(server, "--verify")
            assert code == 0 and report["problems"] == 0, report
            assert report["blobs_known"] == report["blobs_stored"] == 7

            s3 = s3_service.client()
            gone, bad = lost.layers()[1], flipped.layers()[1]
            s3.delete_object(Bucket=s3_bucket, Key=key(gone))
            data = bytearray(flipped.blobs[bad])
            data[7] ^= 0x01
            s3.put_object(Bucket=s3_bucket, Key=key(bad), Body=bytes(data))
            orphan = secrets.token_bytes(777)
            s3.put_object(Bucket=s3_bucket, Key=key(digest_of(orphan)), Body=orphan)
            time.sleep(1.5)  # object times have a one-second resolution

            code, report = fsck(server)
            assert code == 1
            assert [m["digest"] for m in report["missing"]] == [gone]
            assert [o["digest"] for o in report["orphans"]] == [digest_of(orphan)]
            code, report = fsck(server, "--verify")
            assert code == 1 and [c["digest"] for c in report["corrupt"]] == [bad]

            code, report = fsck(server, "--verify", "--repair")
            assert code == 1 and len(report["unrepaired"]) == 2, report
            assert report["corrupt_removed"] == 1 and report["orphans_to_gc"] == 1
            for digest in (gone, bad):
                r = http.get(f"/v2/e2e/fsck/blobs/{digest}")
                assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
            assert pull_problems(http, kept) == []
            code, _ = cargobay(server, "gc", "--grace", "0s")
            assert code == 0
            listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="blobs/").get("Contents", [])
            assert key(digest_of(orphan)) not in {o["Key"] for o in listed}

            upload_blob(http, "e2e/fsck", lost.blobs[gone])
            upload_blob(http, "e2e/fsck", flipped.blobs[bad])
            for image in (lost, flipped, kept):
                assert pull_problems(http, image) == []
            code, report = fsck(server, "--verify")
            assert code == 0 and report["clean"], report
        finally:
            http.close()
            server.stop()
