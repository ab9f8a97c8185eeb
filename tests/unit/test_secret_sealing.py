"""Webhook secrets sealed at rest: what an operator rotating keys relies on."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from cargobay.auth.sealing import SealingError, load_or_create_keys


def test_the_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "secret-keys"
    box = load_or_create_keys(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    sealed = box.seal("hunter2")
    assert "hunter2" not in sealed and sealed.startswith(f"sealed:v1:{box.current}:")
    assert load_or_create_keys(path).open(sealed) == "hunter2"


def test_after_a_rotation_old_values_open_and_are_stale_until_sealed_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "secret-keys"
    old = load_or_create_keys(path)
    sealed = old.seal("hunter2")
    path.write_text(Fernet.generate_key().decode() + "\n" + path.read_text())
    new = load_or_create_keys(path)
    assert new.current != old.current
    assert new.open(sealed) == "hunter2" and new.stale(sealed)
    again = new.seal(new.open(sealed))
    assert not new.stale(again) and new.open(again) == "hunter2"


def test_a_plain_text_value_opens_as_itself_and_is_stale(tmp_path: Path) -> None:
    box = load_or_create_keys(tmp_path / "secret-keys")
    assert box.open("stored before encryption") == "stored before encryption"
    assert box.stale("stored before encryption")


def test_a_removed_key_or_a_changed_value_is_an_error_not_a_wrong_secret(tmp_path: Path) -> None:
    path = tmp_path / "secret-keys"
    sealed = load_or_create_keys(path).seal("hunter2")
    path.write_text(Fernet.generate_key().decode() + "\n")
    with pytest.raises(SealingError, match="no key"):
        load_or_create_keys(path).open(sealed)
    path.write_text(Fernet.generate_key().decode() + "\n")
    box = load_or_create_keys(path)
    forged = box.seal("hunter2")[:-4] + "AAAA"
    with pytest.raises(SealingError, match="damaged"):
        box.open(forged)


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secret-keys"
    path.write_text("not a key\n")
    with pytest.raises(ValueError, match="damaged"):
        load_or_create_keys(path)
