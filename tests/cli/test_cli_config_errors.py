"""Configuration mistakes, as an operator makes them: each is one line on stderr naming the
setting, where the value came from, the bad value and what is allowed; exit code 2; no
traceback; nothing started and nothing created."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from clikit import CONFIG, assert_one_clear_error, cargobay, clean_env, in_read_only_mount


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "not-a-dir"
    path.write_text("x")
    return path


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cargobay.toml"
    path.write_text(text)
    return path


def test_a_data_dir_naming_a_file(a_file: Path) -> None:
    assert_one_clear_error(
        cargobay("serve", "--data-dir", a_file), str(a_file), "not a directory", "--data-dir"
    )


@pytest.mark.parametrize(
    ("flag", "value", "allowed"),
    [("--workers", "-1", "greater than or equal to 1"), ("--port", "99999", "65535")],
)
def test_a_flag_out_of_range(tmp_path: Path, flag: str, value: str, allowed: str) -> None:
    done = cargobay("serve", flag, value, "--data-dir", tmp_path / "data")
    setting = flag.removeprefix("--")
    assert_one_clear_error(done, f"{setting} = {value}", f"(from {flag})", allowed)
    assert not (tmp_path / "data").exists()


def test_a_variable_that_is_not_a_number(tmp_path: Path) -> None:
    done = cargobay(
        "serve", "--data-dir", tmp_path / "d", env=clean_env(CARGOBAY_MAX_BLOB_SIZE="abc")
    )
    assert_one_clear_error(done, "max_blob_size = 'abc'", "CARGOBAY_MAX_BLOB_SIZE", "integer")


def test_a_misspelled_variable_names_the_closest_setting(tmp_path: Path) -> None:
    done = cargobay("serve", "--data-dir", tmp_path / "d", env=clean_env(CARGOBAY_MAX_BLOB_SIZ="5"))
    assert_one_clear_error(
        done, "unknown setting CARGOBAY_MAX_BLOB_SIZ", "did you mean CARGOBAY_MAX_BLOB_SIZE?"
    )


def test_variables_of_the_tests_and_benchmarks_are_not_settings(tmp_path: Path) -> None:
    env = clean_env(
        CARGOBAY_TEST_ANYTHING="1",
        CARGOBAY_BENCH_USER="bench",
        CARGOBAY_E2E_CRASH_ON_REFERENCE="1",
        CARGOBAY_DATA_DIR=str(tmp_path / "d"),
    )
    done = cargobay("config", "check", env=env)
    assert done.returncode == 0, done.stderr
    assert "configuration is valid" in done.stdout


def test_a_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = toml(tmp_path, "port = 5000\nmax_blob_size = \n")
    done = cargobay("serve", env=clean_env(CARGOBAY_CONFIG=str(path)), cwd=tmp_path)
    assert_one_clear_error(done, str(path), "not valid TOML", "line 2")
    assert not (tmp_path / "cargobay-data").exists()


def test_an_unknown_toml_key_names_the_line_and_the_closest_key(tmp_path: Path) -> None:
    path = toml(tmp_path, "# limits\nport = 5000\nmax_blob_siz = 3\n")
    done = cargobay("serve", env=clean_env(CARGOBAY_CONFIG=str(path)), cwd=tmp_path)
    assert_one_clear_error(
        done, f"{path}:3", "unknown setting 'max_blob_siz'", "did you mean max_blob_size?"
    )


def test_a_bad_toml_value_names_the_line(tmp_path: Path) -> None:
    path = toml(tmp_path, 'host = "127.0.0.1"\nworkers = 0\n')
    done = cargobay("serve", env=clean_env(CARGOBAY_CONFIG=str(path)), cwd=tmp_path)
    assert_one_clear_error(done, "workers = 0", f"(from {path}:2)", "greater than or equal to 1")


def test_a_flag_beats_the_variable_and_the_file(tmp_path: Path) -> None:
    path = toml(tmp_path, "port = 7001\n")
    env = clean_env(CARGOBAY_CONFIG=str(path), CARGOBAY_PORT="7002")
    done = cargobay("serve", "--port", "70000", env=env, cwd=tmp_path)
    assert_one_clear_error(done, "port = 70000", "(from --port)")
    done = cargobay("config", "show", env=env, cwd=tmp_path)
    assert "port = 7002  # CARGOBAY_PORT\n" in done.stdout


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    done = cargobay("serve", env=clean_env(CARGOBAY_CONFIG=str(missing)), cwd=tmp_path)
    assert_one_clear_error(done, f"CARGOBAY_CONFIG={missing}", "no such file")
    assert not (tmp_path / "cargobay-data").exists()


def test_a_wildcard_address_without_a_base_url_is_refused(tmp_path: Path) -> None:
    done = cargobay("serve", "--host", "0.0.0.0", "--data-dir", tmp_path / "d")
    assert_one_clear_error(done, "'0.0.0.0'", "--host", "--base-url", "CARGOBAY_BASE_URL")
    done = cargobay("config", "check", env=clean_env(CARGOBAY_HOST="::"))
    assert_one_clear_error(done, "'::'", "CARGOBAY_HOST", "CARGOBAY_BASE_URL")


def test_a_base_url_must_be_a_url(tmp_path: Path) -> None:
    done = cargobay("serve", "--base-url", "registry.example.com", "--data-dir", tmp_path / "d")
    assert_one_clear_error(done, "base_url = 'registry.example.com'", "--base-url", "https://")


# -- the data directory, on every command ----------------------------------------------------

COMMANDS = [
    ["serve"],
    ["migrate"],
    ["user", "create", "ghost"],
    ["token", "list", "--user", "ghost"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_data_dir_with_a_missing_parent(tmp_path: Path, command: list[str]) -> None:
    data = tmp_path / "missing" / "data"
    done = cargobay(*command, "--data-dir", data)
    message = assert_one_clear_error(done, str(data))
    assert "does not exist" in message or "no registry at" in message
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_data_dir_that_is_a_file(a_file: Path, command: list[str]) -> None:
    assert_one_clear_error(cargobay(*command, "--data-dir", a_file), "not a directory")


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory everyone may enter (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix="cargobay-cli-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root+setpriv")
@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["user", "list"]], ids=" ".join)
def test_a_data_dir_without_permission(open_dir: Path, command: list[str]) -> None:
    """As an unprivileged user, on a directory owned by root (root itself may write anywhere)."""
    (open_dir / "data").mkdir(mode=0o755)
    if command == ["user", "list"]:
        migrated = cargobay("migrate", "--data-dir", open_dir / "data")
        assert migrated.returncode == 0, migrated.stderr
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    done = cargobay(*command, "--data-dir", open_dir / "data", wrapper=nobody)
    assert_one_clear_error(done, str(open_dir / "data"), "Permission denied")
    done = cargobay(*command, "--data-dir", open_dir / "data" / "sub", wrapper=nobody)
    message = assert_one_clear_error(done, "data")
    assert "Permission denied" in message or "no registry at" in message


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root+unshare")
@pytest.mark.parametrize("command", [["serve"], ["migrate"]], ids=" ".join)
def test_a_read_only_data_dir(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "ro").mkdir()
    wrapper = in_read_only_mount(tmp_path / "ro")
    done = cargobay(*command, "--data-dir", tmp_path / "ro", wrapper=wrapper)
    assert_one_clear_error(done, "is not writable: Read-only file system")
    done = cargobay(*command, "--data-dir", tmp_path / "ro" / "data", wrapper=wrapper)
    assert_one_clear_error(done, "cannot create data directory", "Read-only file system")


def test_an_operator_command_never_creates_a_registry(tmp_path: Path) -> None:
    """Run from another directory, it says where it looked instead of making an empty one."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = cargobay("user", "create", "ghost", cwd=elsewhere)
    assert_one_clear_error(
        done, f"no registry at {elsewhere / 'cargobay-data'}", "cargobay serve", "migrate"
    )
    assert list(elsewhere.iterdir()) == []
    for command in (
        ["org", "create", "acme", "--owner", "x"],
        ["package", "grant", "a/b", "x", "read"],
    ):
        assert cargobay(*command, cwd=elsewhere).returncode == CONFIG
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["user", "list"]], ids=" ".join)
def test_a_database_that_does_not_answer(tmp_path: Path, command: list[str]) -> None:
    """One line, the password masked (nothing listens on port 9 of the loopback)."""
    url = "postgresql://cargobay:hunter22@127.0.0.1:9/cargobay"
    done = cargobay(
        *command, "--data-dir", tmp_path / "d", env=clean_env(CARGOBAY_DATABASE_URL=url)
    )
    message = assert_one_clear_error(
        done,
        "cannot reach the metadata database postgresql://cargobay:****@127.0.0.1:9",
        code=done.returncode,
    )
    assert done.returncode != 0 and "hunter22" not in message


def test_a_toml_table_is_an_unknown_key_on_its_line(tmp_path: Path) -> None:
    """Settings are top-level keys: ``[s3]`` with ``bucket`` in it is not ``s3_bucket``."""
    path = toml(tmp_path, 'port = 5000\n\n[s3]\nbucket = "x"\n')
    done = cargobay("config", "check", path, cwd=tmp_path)
    assert_one_clear_error(done, f"{path}:3: unknown setting 's3'")
