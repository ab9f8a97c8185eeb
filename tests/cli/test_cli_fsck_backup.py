"""``cargobay fsck``, ``backup`` and ``restore`` refuse what they can't do with one clear line:
no registry, a backend they don't copy, a directory that isn't a backup."""

from __future__ import annotations

import json
from pathlib import Path

from clikit import assert_one_clear_error, cargobay, clean_env


def test_fsck_and_backup_need_a_registry(tmp_path: Path) -> None:
    missing = tmp_path / "nothing-here"
    missing.mkdir()
    for args in (["fsck"], ["backup", str(tmp_path / "b")]):
        done = cargobay(*args, "--data-dir", missing)
        assert_one_clear_error(done, "no registry at")
    assert list(missing.iterdir()) == [], "nothing created"
    assert not (tmp_path / "b").exists()


def test_backup_of_postgresql_or_s3_points_to_the_documented_procedure(tmp_path: Path) -> None:
    env = clean_env(CARGOBAY_BLOB_STORE="s3", CARGOBAY_S3_BUCKET="b")
    done = cargobay("backup", tmp_path / "b", "--data-dir", tmp_path, env=env)
    assert_one_clear_error(done, "pg_dump", "docs/operations.md", code=1)
    done = cargobay("restore", tmp_path, "--data-dir", tmp_path / "d", env=env)
    assert_one_clear_error(done, "embedded default", code=1)


def test_restore_refuses_what_is_not_a_backup(tmp_path: Path) -> None:
    done = cargobay("restore", tmp_path, "--data-dir", tmp_path / "d")
    assert_one_clear_error(done, "not a cargobay backup", code=1)
    assert not (tmp_path / "d").exists()


def test_fsck_of_an_empty_registry_is_clean(tmp_path: Path) -> None:
    assert cargobay("migrate", "--data-dir", tmp_path).returncode == 0
    done = cargobay("fsck", "--json", "--data-dir", tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["clean"] and report["problems"] == 0 and report["blobs_known"] == 0
    done = cargobay("fsck", "--data-dir", tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("fsck: 0 blobs known")
