"""What a retention policy removes from a package: a pure function over the package's active
versions, so the preview and the cleanup decide alike.

The rules (see ``docs/retention.md``):

* a version is kept on its own if it has an immutable tag, if one of its tags is kept (the
  ``keep_tags`` most recent tags and those matching ``tag_patterns``; every tag when neither is
  set), if it was pulled within ``pulled_days``, if it is protected (a public package's version
  downloaded more than the protected count), or if it is untagged, not part of anything, and
  last pushed less than ``untagged_days`` ago (or that rule is off);
* a kept version keeps everything it needs: the manifests an index lists, and the referrers
  (signatures, attestations, SBOMs) whose subject it is, transitively;
* everything else goes: untagged versions past their age, tagged versions none of whose tags is
  kept, and the children and referrers nothing kept needs any more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cargobay.ports.retention import Removal, RetentionPolicy


@dataclass(frozen=True, slots=True)
class VersionRow:
    """What the plan needs of one active version."""

    id: int
    digest: str
    subject: str | None
    kind: str
    pushed_at: datetime
    last_pulled_at: datetime | None
    download_count: int


@dataclass(frozen=True, slots=True)
class TagRow:
    name: str
    version_id: int
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Inputs:
    versions: Sequence[VersionRow]
    tags: Sequence[TagRow]
    #: (index id, listed digest) for every active index of the package.
    listings: Sequence[tuple[int, str]]
    #: Whether a tag is immutable.
    immutable: Callable[[str], bool]
    #: Whether a tag matches one of the policy's patterns.
    matches: Callable[[str], bool]
    #: Versions downloaded more often than this are kept (None: no such protection).
    protected_downloads: int | None = None


def plan(policy: RetentionPolicy, inputs: Inputs, now: datetime) -> list[Removal]:
    """The versions ``policy`` removes, oldest first."""
    if not policy.active:
        return []
    by_id = {v.id: v for v in inputs.versions}
    by_digest = {v.digest: v for v in inputs.versions}
    children: dict[int, list[int]] = {}
    listed: dict[int, list[int]] = {}
    for parent, digest in inputs.listings:
        child = by_digest.get(digest)
        if parent in by_id and child is not None:
            children.setdefault(parent, []).append(child.id)
            listed.setdefault(child.id, []).append(parent)
    referrers: dict[str, list[int]] = {}
    for v in inputs.versions:
        if v.subject and v.subject in by_digest:
            referrers.setdefault(v.subject, []).append(v.id)
    tags_of: dict[int, list[str]] = {}
    for t in inputs.tags:
        if t.version_id in by_id:
            tags_of.setdefault(t.version_id, []).append(t.name)

    kept_tags = _kept_tags(policy, inputs)
    pulled_since = now - timedelta(days=policy.pulled_days) if policy.pulled_days else None
    untagged_before = (
        now - timedelta(days=policy.untagged_days) if policy.untagged_days is not None else None
    )

    def own_reason_to_go(v: VersionRow) -> str | None:
        """None: kept on its own; "": its fate is its parents' or its subject's; else why."""
        names = tags_of.get(v.id, [])
        if any(inputs.immutable(n) for n in names):
            return None
        if pulled_since is not None and v.last_pulled_at and v.last_pulled_at >= pulled_since:
            return None
        if inputs.protected_downloads is not None and v.download_count > inputs.protected_downloads:
            return None
        if names:
            if kept_tags is None or any(n in kept_tags for n in names):
                return None
            return "none of its tags is kept (" + ", ".join(sorted(names)) + ")"
        if v.id in listed or (v.subject and v.subject in by_digest):
            return ""
        if untagged_before is None or v.pushed_at >= untagged_before:
            return None
        return f"untagged, last pushed more than {policy.untagged_days} days ago"

    reasons = {v.id: own_reason_to_go(v) for v in inputs.versions}
    kept: set[int] = set()
    stack = [i for i, r in reasons.items() if r is None]
    while stack:
        current = stack.pop()
        if current in kept:
            continue
        kept.add(current)
        stack.extend(children.get(current, ()))
        stack.extend(referrers.get(by_id[current].digest, ()))

    removals = []
    for v in inputs.versions:
        if v.id in kept:
            continue
        reason = reasons[v.id]
        if not reason:
            if v.id in listed:
                index = by_id[listed[v.id][0]]
                reason = f"part of index {index.digest}, which goes"
            else:
                reason = f"refers to {v.subject}, which goes"
        removals.append(
            Removal(
                v.id, v.digest, v.kind, tuple(sorted(tags_of.get(v.id, ()))), v.pushed_at, reason
            )
        )
    removals.sort(key=lambda r: (r.pushed_at, r.id))
    return removals


def _kept_tags(policy: RetentionPolicy, inputs: Inputs) -> set[str] | None:
    """The tags the policy keeps (None: every tag)."""
    if not policy.prunes_tags:
        return None
    kept = {t.name for t in inputs.tags if inputs.matches(t.name)}
    if policy.keep_tags:
        newest = sorted(inputs.tags, key=lambda t: (t.updated_at, t.name), reverse=True)
        kept |= {t.name for t in newest[: policy.keep_tags]}
    return kept
