"""``cargobay retention`` as an operator runs it: set, show and clear the default of an
organization and a package's own policy; bad rules are one line on stderr and change nothing;
``apply`` on a registry with nothing to remove says so."""

from __future__ import annotations

import json
from pathlib import Path

from clikit import cargobay


def ok(*args: str | Path) -> str:
    done = cargobay(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_retention_policies_from_the_command_line(tmp_path: Path) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    ok("migrate", "--quiet", *data)
    ok("user", "create", "octo", *data)
    ok("org", "create", "acme", "--owner", "octo", *data)

    assert ok("retention", "show", "acme", *data).strip() == "acme: no retention policy"
    shown = ok(
        "retention",
        "set",
        "acme",
        "--untagged-days",
        "14",
        "--keep-tags",
        "5",
        "--keep",
        "v*",
        "--keep",
        "re:^rc-[0-9]+$",
        *data,
    )
    assert shown.strip() == (
        "acme: untagged versions go after 14 days; keep the 5 most recent tags;"
        " keep tags v* re:^rc-[0-9]+$"
    )
    body = json.loads(ok("retention", "show", "acme", "--json", *data))
    assert body["source"] == "owner" and body["policy"]["keep_tags"] == 5

    for bad in (["--untagged-days", "0"], ["--keep", "re:(a"], ["--keep", "a/b"]):
        done = cargobay("retention", "set", "acme", *bad, *data)
        assert done.returncode == 1 and done.stderr.startswith("cargobay: "), done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    after = json.loads(ok("retention", "show", "acme", "--json", *data))
    assert after["policy"]["keep_tags"] == 5

    missing = cargobay("retention", "show", "acme/nope", *data)
    assert missing.returncode == 1 and "no package 'acme/nope'" in missing.stderr
    report = ok("retention", "apply", "--dry-run", *data)
    assert report.strip() == "retention (dry run): would remove 0 versions of 0 packages"

    assert ok("retention", "clear", "acme", *data).strip() == "acme: no retention policy"
