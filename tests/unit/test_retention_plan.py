"""What a retention policy removes (the pure plan the preview and the cleanup share), and which
tag patterns a policy accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cargobay.metadata.retention_plan import Inputs, TagRow, VersionRow, plan
from cargobay.ports.retention import RetentionPolicy
from cargobay.services.accounts import InvalidInput
from cargobay.services.retention_rules import validate

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _v(
    i: int,
    days: float,
    *,
    subject: str | None = None,
    pulled: float | None = None,
    downloads: int = 0,
) -> VersionRow:
    return VersionRow(
        id=i,
        digest=f"sha256:{i:064x}",
        subject=subject,
        kind="image",
        pushed_at=NOW - timedelta(days=days),
        last_pulled_at=NOW - timedelta(days=pulled) if pulled is not None else None,
        download_count=downloads,
    )


def _d(i: int) -> str:
    return f"sha256:{i:064x}"


def _inputs(
    versions: list[VersionRow],
    tags: dict[str, tuple[int, float]],
    listings: list[tuple[int, int]] = (),  # type: ignore[assignment]
    *,
    immutable: tuple[str, ...] = (),
    patterns: tuple[str, ...] = (),
    protected: int | None = None,
) -> Inputs:
    _, matches = validate(RetentionPolicy(tag_patterns=patterns))
    return Inputs(
        versions=versions,
        tags=[TagRow(n, v, NOW - timedelta(days=d)) for n, (v, d) in tags.items()],
        listings=[(parent, _d(child)) for parent, child in listings],
        immutable=lambda t: t in immutable,
        matches=matches,
        protected_downloads=protected,
    )


def _ids(policy: RetentionPolicy, inputs: Inputs) -> set[int]:
    return {r.id for r in plan(policy, inputs, NOW)}


def test_a_kept_index_keeps_its_platforms_attestation_and_signature() -> None:
    # 1: index (tagged) over 2, 3 (platforms) and 4 (attestation); 5 signs 1; 6 signs 2.
    versions = [
        _v(1, 90),
        _v(2, 90),
        _v(3, 90),
        _v(4, 90),
        _v(5, 90, subject=_d(1)),
        _v(6, 90, subject=_d(2)),
        _v(7, 90),
        _v(8, 1),
    ]
    inputs = _inputs(versions, {"latest": (1, 90)}, [(1, 2), (1, 3), (1, 4)])
    # 7 is an old untagged orphan; 8 a young one.
    assert _ids(RetentionPolicy(untagged_days=30), inputs) == {7}


def test_an_index_that_goes_takes_what_only_it_needed() -> None:
    # 1: old index (tag not kept) over 2, 3; 4 signs 1; 9: a newer index also listing 3.
    versions = [_v(1, 90), _v(2, 90), _v(3, 90), _v(4, 90, subject=_d(1)), _v(9, 1)]
    inputs = _inputs(versions, {"old": (1, 90), "new": (9, 1)}, [(1, 2), (1, 3), (9, 3)])
    removed = plan(RetentionPolicy(keep_tags=1), inputs, NOW)
    assert {r.id for r in removed} == {1, 2, 4}  # 3 stays: the kept index 9 lists it
    reasons = {r.id: r.reason for r in removed}
    assert "none of its tags is kept" in reasons[1]
    assert "part of index" in reasons[2] and "refers to" in reasons[4]


def test_tags_recent_patterns_immutable_pulled_protected() -> None:
    versions = [_v(i, 100 - i) for i in range(1, 9)] + [
        _v(9, 50, pulled=2),
        _v(10, 50, downloads=9),
    ]
    tags = {f"t{i}": (i, 100 - i) for i in range(1, 9)}
    tags |= {"v1.0": (1, 99), "stable": (2, 98), "t9": (9, 200), "t10": (10, 200)}
    inputs = _inputs(
        versions, tags, immutable=("t3",), patterns=("v*", "re:^stab(le)?$"), protected=5
    )
    policy = RetentionPolicy(keep_tags=2, tag_patterns=("v*", "re:^stab(le)?$"), pulled_days=7)
    # kept: 1 (v1.0), 2 (stable), 3 (immutable), 7 and 8 (2 most recent tags), 9 (pulled 2
    # days ago), 10 (downloaded more than the protected count)
    assert _ids(policy, inputs) == {4, 5, 6}


def test_no_tag_rule_keeps_every_tag_and_no_rule_removes_nothing() -> None:
    versions = [_v(1, 900), _v(2, 900)]
    inputs = _inputs(versions, {"a": (1, 900)})
    assert _ids(RetentionPolicy(untagged_days=1), inputs) == {2}
    assert _ids(RetentionPolicy(), inputs) == set()
    assert _ids(RetentionPolicy(pulled_days=3), inputs) == set()


def test_a_referrer_whose_subject_is_elsewhere_is_an_ordinary_untagged_version() -> None:
    versions = [_v(1, 90, subject="sha256:" + "f" * 64), _v(2, 2, subject="sha256:" + "e" * 64)]
    assert _ids(RetentionPolicy(untagged_days=30), _inputs(versions, {})) == {1}


@pytest.mark.parametrize(
    "pattern",
    ["re:(a", "re:(a)\\1", "", "x" * 129, "bad pattern", "re:" + "(a{1000}){1000}", "ta/g"],
)
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidInput):
        validate(RetentionPolicy(tag_patterns=(pattern,)))


def test_a_pathological_regular_expression_matches_in_linear_time() -> None:
    _, matches = validate(RetentionPolicy(tag_patterns=("re:(a+)+$",)))
    # Python's backtracking engine would not finish this in the age of the universe.
    assert not matches("a" * 127 + "!")
    assert matches("a" * 128)


@pytest.mark.parametrize(
    ("field", "value"), [("untagged_days", 0), ("keep_tags", 0), ("pulled_days", -1)]
)
def test_out_of_range_numbers_are_refused(field: str, value: int) -> None:
    with pytest.raises(InvalidInput):
        validate(RetentionPolicy(**{field: value}))  # type: ignore[arg-type]
