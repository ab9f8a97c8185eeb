"""The operator's commands: settings resolved as ``serve`` resolves them, ``config show|check``,
users' passwords (NIST SP 800-63B rules), ``user list``, ``--version``, shell completion and a
start-up hint that can be run as printed."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from clikit import CONFIG, assert_one_clear_error, cargobay, clean_env

FAILED = 1


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory made by ``migrate`` (what ``serve`` does first)."""
    data = tmp_path_factory.mktemp("operator") / "data"
    done = cargobay("migrate", "--data-dir", data)
    assert done.returncode == 0, done.stderr
    return data


def test_the_start_up_hint_runs_as_printed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = cargobay("migrate", "--data-dir", data)
    assert done.returncode == 0, done.stderr
    hint = [line.strip() for line in done.stdout.splitlines() if "user create NAME" in line]
    assert hint, done.stdout
    command = shlex.split(hint[0].replace("NAME", "root-admin"))
    created = subprocess.run(
        command, env=clean_env(), cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert created.returncode == 0, (command, created.stderr)
    assert created.stdout.strip() == "created user root-admin"


def test_operator_commands_resolve_settings_as_serve_does(registry: Path, tmp_path: Path) -> None:
    """From another directory, the data directory of the environment or the TOML file."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = clean_env(CARGOBAY_DATA_DIR=str(registry))
    assert cargobay("user", "create", "envuser", env=env, cwd=elsewhere).returncode == 0
    config = tmp_path / "cargobay.toml"
    config.write_text(f'data_dir = "{registry}"\n')
    listed = cargobay("user", "list", env=clean_env(CARGOBAY_CONFIG=str(config)), cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert "envuser\tno\tno\tno\t-" in listed.stdout.splitlines()
    assert list(elsewhere.iterdir()) == []


def test_config_show_prints_each_source_and_masks_secrets(tmp_path: Path) -> None:
    config = tmp_path / "cargobay.toml"
    config.write_text('# a comment\n\nbase_url = "https://registry.example.com"\nworkers = 3\n')
    env = clean_env(
        CARGOBAY_CONFIG=str(config),
        CARGOBAY_WORKERS="4",
        CARGOBAY_S3_SECRET_ACCESS_KEY="very-secret-key",
        CARGOBAY_DATABASE_URL="postgresql://cargobay:hunter22@db.example.com:5432/cargobay",
    )
    done = cargobay("config", "show", "--data-dir", tmp_path / "d", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f'base_url = "https://registry.example.com"  # {config}:3' in lines
    assert "workers = 4  # CARGOBAY_WORKERS" in lines
    assert f'data_dir = "{tmp_path / "d"}"  # --data-dir' in lines
    assert "port = 5000  # default" in lines
    assert 's3_secret_access_key = "****"  # CARGOBAY_S3_SECRET_ACCESS_KEY' in lines
    assert (
        'database_url = "postgresql://cargobay:****@db.example.com:5432/cargobay"'
        "  # CARGOBAY_DATABASE_URL"
    ) in lines
    assert "very-secret-key" not in done.stdout and "hunter22" not in done.stdout
    assert not (tmp_path / "d").exists()  # nothing started, nothing created


def test_config_check_validates_a_file_without_starting_anything(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('host = "0.0.0.0"\nbase_url = "http://127.0.0.2:5000"\n')
    done = cargobay("config", "check", good, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"configuration is valid: 2 setting(s) set (from {good}), the rest are defaults"
    )
    bad = tmp_path / "bad.toml"
    bad.write_text('host = "0.0.0.0"\n')
    assert_one_clear_error(cargobay("config", "check", bad, cwd=tmp_path), "--base-url")
    assert list(tmp_path.iterdir()) == [good, bad] or sorted(tmp_path.iterdir()) == sorted(
        [good, bad]
    )


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short7!", "at least 8 characters"),
        ("x" * 257, "at most 256 characters"),
        ("iloveyou", "most common passwords"),
        ("Password123", "most common passwords"),
    ],
    ids=["7 characters", "257 characters", "common", "common, any case"],
)
def test_weak_passwords_are_refused_everywhere(registry: Path, password: str, why: str) -> None:
    """On ``user create`` and on ``user set-password``; nothing is changed."""
    data = ["--data-dir", str(registry)]
    done = cargobay("user", "create", "weak", "--password-stdin", *data, input=password + "\n")
    assert_one_clear_error(done, why, code=FAILED)
    cargobay("user", "create", "weakling", *data)
    done = cargobay("user", "set-password", "weakling", "--password-stdin", *data, input=password)
    assert_one_clear_error(done, why, code=FAILED)
    listed = cargobay("user", "list", *data).stdout.splitlines()
    assert not [line for line in listed if line.startswith("weak\t")]
    assert "weakling\tno\tno\tno\t-" in listed


def test_long_and_unusual_passwords_are_accepted(registry: Path) -> None:
    """No composition rules: 8 plain letters, 256 characters, spaces and emoji all do."""
    for login, password in [
        ("plain", "abcdefgh"),
        ("longest", "p" * 256),
        ("emoji", "🐳 sea of containers"),
    ]:
        done = cargobay(
            "user",
            "create",
            login,
            "--password-stdin",
            "--data-dir",
            registry,
            input=password + "\n",
        )
        assert done.returncode == 0, done.stderr


def test_set_password_needs_stdin_and_an_existing_user(registry: Path) -> None:
    done = cargobay("user", "set-password", "nobody-here", "--data-dir", registry)
    assert_one_clear_error(done, "--password-stdin", code=FAILED)
    done = cargobay(
        "user",
        "set-password",
        "nobody-here",
        "--password-stdin",
        "--data-dir",
        registry,
        input="a fine passphrase\n",
    )
    assert_one_clear_error(done, "no user named 'nobody-here'", code=FAILED)


def test_user_list_suspend_and_unsuspend(registry: Path) -> None:
    assert cargobay("user", "create", "lister", "--admin", "--data-dir", registry).returncode == 0
    assert (
        cargobay("user", "suspend", "lister", "--data-dir", registry).stdout == "suspended lister\n"
    )
    listed = cargobay("user", "list", "--data-dir", registry).stdout.splitlines()
    assert listed[0] == "login\tsite admin\tsuspended\tpassword\temail"
    assert "lister\tyes\tyes\tno\t-" in listed
    cargobay("user", "unsuspend", "lister", "--data-dir", registry)
    assert "lister\tyes\tno\tno\t-" in cargobay("user", "list", "--data-dir", registry).stdout
    done = cargobay("user", "suspend", "ghost", "--data-dir", registry)
    assert_one_clear_error(done, "no user named 'ghost'", code=FAILED)


def test_version_and_shell_completion() -> None:
    from importlib.metadata import version

    done = cargobay("--version")
    assert (done.returncode, done.stdout) == (0, f"cargobay {version('cargobay')}\n")
    script = Path(sys.executable).parent / "cargobay"  # what PATH finds after installing
    done = subprocess.run(
        [script, "--show-completion", "bash"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "_CARGOBAY_COMPLETE=complete_bash" in done.stdout


def test_an_unknown_command_is_one_clear_error() -> None:
    done = cargobay("usr", "list")
    assert done.returncode == CONFIG
    assert "Traceback" not in done.stderr


def sign_in(browser: Any, login: str, password: str) -> int:
    """Sign in on the login page as a browser does; the status of the answer (303: signed in)."""
    form = browser.get("/login").text
    marker = 'name="csrf" value="'
    csrf = form[form.index(marker) + len(marker) :].split('"', 1)[0]
    fields = {"csrf": csrf, "next": "/", "login": login, "password": password}
    return int(browser.post("/login", data=fields).status_code)


@pytest.mark.skipif(
    os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") == "reference",
    reason="cargobay's own accounts",
)
def test_an_admin_created_without_a_password_can_be_given_one(server_factory: Any) -> None:
    """``set-password`` on a live registry: the user signs in to the pages with it."""
    import httpx

    server = server_factory()
    login = server.user  # created by the test kit with --admin and no password
    env = clean_env(**server.env)
    data = ["--data-dir", str(server.data_dir)]
    done = cargobay(
        "user",
        "set-password",
        login,
        "--password-stdin",
        *data,
        env=env,
        input="a brand new passphrase\n",
    )
    assert (done.returncode, done.stdout) == (0, f"set the password of {login}\n"), done.stderr
    with httpx.Client(base_url=server.url, follow_redirects=False, timeout=30) as http:
        assert sign_in(http, login, "not it at all") == 401
        assert sign_in(http, login, "a brand new passphrase") == 303


@pytest.mark.skipif(
    os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") == "reference",
    reason="cargobay's own accounts",
)
def test_a_suspended_user_is_out_of_the_pages_and_the_api_until_unsuspended(
    server_factory: Any,
) -> None:
    """``user suspend`` on a live registry ends the user's open web session and stops their
    token at once; they can't sign in again. ``unsuspend`` lets them back in."""
    import httpx

    server = server_factory()
    env = clean_env(**server.env)
    data = ["--data-dir", str(server.data_dir)]
    login, password = "mallory-ops", "a long enough passphrase"

    def operator(*args: str, input: str = "") -> str:
        done = cargobay(*args, *data, env=env, input=input)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout.strip()

    operator("user", "create", login, "--password-stdin", input=password + "\n")
    token = operator("token", "create", "--user", login, "--scopes", "read:packages")

    def browser() -> httpx.Client:
        return httpx.Client(base_url=server.url, follow_redirects=False, timeout=30)

    with browser() as signed_in, browser() as newcomer, browser() as returning:

        def api_status() -> int:
            return httpx.get(
                f"{server.url}/api/v3/user", auth=(login, token), timeout=30
            ).status_code

        assert sign_in(signed_in, login, password) == 303
        assert signed_in.get("/settings/tokens").status_code == 200
        assert api_status() == 200

        operator("user", "suspend", login)
        signed_out = signed_in.get("/settings/tokens")
        assert signed_out.status_code == 303
        assert signed_out.headers["location"].startswith("/login")
        assert api_status() == 401
        assert sign_in(newcomer, login, password) == 401
        assert newcomer.get("/settings/tokens").status_code == 303

        operator("user", "unsuspend", login)
        assert api_status() == 200
        # The session the suspension ended stays ended: its holder signs in again.
        assert signed_in.get("/settings/tokens").status_code == 303
        assert sign_in(returning, login, password) == 303
        assert returning.get("/settings/tokens").status_code == 200

        new_password = "another long passphrase"
        operator("user", "set-password", login, "--password-stdin", input=new_password + "\n")
        assert returning.get("/settings/tokens").status_code == 303
        assert sign_in(returning, login, password) == 401
        assert sign_in(returning, login, new_password) == 303
