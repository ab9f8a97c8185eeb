"""Manifests, tags, the catalog and referrers of repositories."""

from __future__ import annotations

from dataclasses import dataclass

from cargobay.errors import (
    BlobUnknown,
    DigestInvalid,
    ManifestTooLarge,
    ManifestUnknown,
    NameUnknown,
    TagInvalid,
    Unsupported,
)
from cargobay.oci import annotations as labels_
from cargobay.oci import mediatypes as mt
from cargobay.oci.digest import (
    ALGORITHMS,
    Digest,
    algorithm_of,
    compute_digest,
    is_digest,
    parse_digest,
)
from cargobay.oci.manifest import ParsedManifest, parse_manifest
from cargobay.oci.names import RepositoryName, Tag, parse_tag
from cargobay.ports.registry import (
    Manifest,
    ManifestStore,
    NewManifest,
    Referrer,
    RepositoryStore,
    StoredManifest,
)
from cargobay.services.events import Action, Event, EventBus, current_actor
from cargobay.storage.base import BlobStore

#: Image configs larger than this are not read for labels and platform.
MAX_CONFIG_READ = 1024 * 1024
IMAGE_CONFIGS = frozenset({mt.OCI_CONFIG, mt.DOCKER_CONFIG})


@dataclass(frozen=True, slots=True)
class PushedManifest:
    digest: Digest
    subject: Digest | None


@dataclass(frozen=True, slots=True)
class Description:
    kind: str
    platform: str | None
    description: str | None
    license: str | None
    source_url: str | None
    attestations: list[Digest]
    child_platforms: dict[Digest, str]


def parse_reference(reference: str) -> Digest | Tag:
    """A manifest reference: a digest of a supported algorithm (DigestInvalid when malformed) or
    a tag (TagInvalid). A tag can't hold ``:``, so anything else with one is an invalid tag."""
    if not is_digest(reference):
        return parse_tag(reference)
    if reference.partition(":")[0] not in ALGORITHMS:
        raise TagInvalid("invalid tag: a tag cannot contain ':'", {"tag": reference[:300]})
    return parse_digest(reference)


class ManifestService:
    def __init__(
        self,
        manifests: ManifestStore,
        repositories: RepositoryStore,
        store: BlobStore,
        *,
        max_manifest_size: int,
        events: EventBus | None = None,
    ) -> None:
        self.manifests = manifests
        self.repositories = repositories
        self.store = store
        self.max_manifest_size = max_manifest_size
        self.events = events or EventBus()

    async def _config(self, parsed: ParsedManifest) -> bytes | None:
        config = parsed.config
        if config is None or config.media_type not in IMAGE_CONFIGS:
            return None
        if config.size > MAX_CONFIG_READ:
            return None
        try:
            return b"".join([c async for c in self.store.read(config.digest, 0, config.size)])
        except BlobUnknown:
            return None

    async def _describe(self, parsed: ParsedManifest) -> Description:
        """Kind, platform and package metadata of a manifest about to be stored."""
        config = await self._config(parsed)
        labels = labels_.config_labels(config) if config else {}
        meta = labels_.package_metadata(parsed.annotations, labels)
        if parsed.is_index:
            kind = "index"
        elif parsed.config is not None and parsed.config.media_type in IMAGE_CONFIGS:
            kind = "image"
        else:
            kind = "artifact"
        attestations = [
            child.digest
            for child in parsed.manifests
            if child.annotations.get(labels_.REFERENCE_TYPE) == labels_.ATTESTATION
        ]
        child_platforms = {
            child.digest: p
            for child in parsed.manifests
            if (p := labels_.platform_string(child.platform)) and child.digest not in attestations
        }
        return Description(
            kind=kind,
            platform=labels_.config_platform(config) if config else None,
            description=meta.description,
            license=meta.licenses,
            source_url=meta.source,
            attestations=attestations,
            child_platforms=child_platforms,
        )

    async def put(
        self, repository: RepositoryName, reference: str, body: bytes, content_type: str | None
    ) -> PushedManifest:
        """Validate and store a manifest under a tag or its digest. Nothing changes on error."""
        if len(body) > self.max_manifest_size:
            raise ManifestTooLarge(
                f"manifest exceeds the limit of {self.max_manifest_size} bytes",
                limit=self.max_manifest_size,
            )
        ref = parse_reference(reference)
        parsed = parse_manifest(body, content_type)
        tag: Tag | None = None
        if is_digest(ref):
            digest = compute_digest(body, algorithm_of(Digest(ref)))
            if digest != ref:
                raise DigestInvalid(
                    "manifest digest does not match the reference",
                    {"expected": ref, "actual": digest},
                )
        else:
            tag = Tag(ref)
            digest = compute_digest(body)
        blobs = [parsed.config.digest] if parsed.config else []
        blobs += [layer.digest for layer in parsed.layers if not layer.foreign]
        described = await self._describe(parsed)
        emitted: list[Event] = []

        def events(stored: StoredManifest) -> list[Event]:
            emitted[:] = _pushed(repository, digest, tag, parsed, described, stored)
            return emitted

        await self.manifests.put(
            repository,
            NewManifest(
                digest=digest,
                media_type=parsed.media_type,
                content=body,
                subject=parsed.subject.digest if parsed.subject else None,
                artifact_type=parsed.referrer_artifact_type,
                annotations=parsed.annotations,
                blobs=blobs,
                manifests=[child.digest for child in parsed.manifests],
                kind=described.kind,
                platform=described.platform,
                description=described.description,
                license=described.license,
                source_url=described.source_url,
                attestations=described.attestations,
                child_platforms=described.child_platforms,
            ),
            tag,
            events,
        )
        await self.events.dispatch(emitted)
        return PushedManifest(digest, parsed.subject.digest if parsed.subject else None)

    async def get(self, repository: RepositoryName, reference: str) -> Manifest:
        """The manifest ``reference`` names. A reference that is no valid tag or digest can't
        name a manifest: ManifestUnknown, like any other missing one (spec.md "Pulling
        manifests": 404); only a push refuses it as invalid."""
        try:
            ref = parse_reference(reference)
        except (TagInvalid, DigestInvalid, Unsupported):
            raise ManifestUnknown(detail={"reference": reference[:300]}) from None
        manifest = await self.manifests.get(repository, ref)
        if manifest is None:
            raise ManifestUnknown(detail={"reference": reference})
        return manifest

    async def delete(self, repository: RepositoryName, reference: str) -> None:
        """Delete a manifest by digest (with its tags), or only a tag by its name."""
        ref = parse_reference(reference)
        actor = current_actor()
        if is_digest(ref):
            event = Event(Action.VERSION_DELETED, actor, package=repository, digest=ref)
            found = await self.manifests.delete(repository, Digest(ref), [event])
        else:
            event = Event(Action.TAG_DELETED, actor, package=repository, data={"tag": ref})
            found = await self.manifests.delete_tag(repository, Tag(ref), [event])
        if not found:
            raise ManifestUnknown(detail={"reference": reference})

    async def tags(self, repository: RepositoryName, *, last: str | None, limit: int) -> list[Tag]:
        tags = await self.manifests.list_tags(repository, last=last, limit=limit)
        if tags is None:
            raise NameUnknown(detail={"name": repository})
        return tags

    async def catalog(self, *, last: str | None, limit: int) -> list[RepositoryName]:
        return await self.repositories.list_names(last=last, limit=limit)

    async def referrers(
        self, repository: RepositoryName, subject: str, artifact_type: str | None
    ) -> list[Referrer]:
        return await self.manifests.referrers(repository, parse_digest(subject), artifact_type)


def _pushed(
    repository: RepositoryName,
    digest: Digest,
    tag: Tag | None,
    parsed: ParsedManifest,
    described: Description,
    stored: StoredManifest,
) -> list[Event]:
    """The events of a manifest push: every push publishes the version (``new`` says whether
    it was new, or active again); the first version publishes the package; a tag that now
    names this version moved."""
    actor = current_actor()

    def event(action: Action, data: dict[str, object]) -> Event:
        return Event(
            action,
            actor,
            owner_id=stored.owner_id,
            package_id=stored.package_id,
            package=repository,
            version_id=stored.id,
            digest=digest,
            data=data,
        )

    details: dict[str, object] = {
        "media_type": parsed.media_type,
        "kind": described.kind,
        "new": stored.new_version,
        "first_version": stored.first_version,
        "source_url": described.source_url,
        "subject": parsed.subject.digest if parsed.subject else None,
        "tag": tag,
    }
    found: list[Event] = []
    if stored.first_version and stored.new_version:
        found.append(event(Action.PACKAGE_PUBLISHED, details))
    found.append(event(Action.VERSION_PUBLISHED, details))
    if tag is not None and stored.tag_moved:
        found.append(event(Action.TAG_MOVED, {"tag": tag, "before": stored.tag_before}))
    return found
