"""Manifests, tags, the catalog and referrers of repositories."""

from __future__ import annotations

from dataclasses import dataclass

from cargobay.errors import DigestInvalid, ManifestTooLarge, ManifestUnknown, NameUnknown
from cargobay.metadata.base import Manifest, ManifestStore, NewManifest, Referrer, RepositoryStore
from cargobay.oci.digest import Digest, algorithm_of, compute_digest, is_digest, parse_digest
from cargobay.oci.manifest import parse_manifest
from cargobay.oci.names import RepositoryName, Tag, parse_tag


@dataclass(frozen=True, slots=True)
class PushedManifest:
    digest: Digest
    subject: Digest | None


def parse_reference(reference: str) -> Digest | Tag:
    """A manifest reference: a digest (DigestInvalid/Unsupported) or a tag (TagInvalid)."""
    return parse_digest(reference) if is_digest(reference) else parse_tag(reference)


class ManifestService:
    def __init__(
        self, manifests: ManifestStore, repositories: RepositoryStore, *, max_manifest_size: int
    ) -> None:
        self.manifests = manifests
        self.repositories = repositories
        self.max_manifest_size = max_manifest_size

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
            ),
            tag,
        )
        return PushedManifest(digest, parsed.subject.digest if parsed.subject else None)

    async def get(self, repository: RepositoryName, reference: str) -> Manifest:
        manifest = await self.manifests.get(repository, parse_reference(reference))
        if manifest is None:
            raise ManifestUnknown(detail={"reference": reference})
        return manifest

    async def delete(self, repository: RepositoryName, reference: str) -> None:
        """Delete a manifest by digest (with its tags), or only a tag by its name."""
        ref = parse_reference(reference)
        if is_digest(ref):
            found = await self.manifests.delete(repository, Digest(ref))
        else:
            found = await self.manifests.delete_tag(repository, Tag(ref))
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
