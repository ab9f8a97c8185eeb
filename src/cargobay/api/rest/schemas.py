"""JSON shapes of the REST API: GitHub's field names for packages, versions, users and
repositories (plus a few cargobay fields GitHub has no equivalent for)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, Field

from cargobay.ports.accounts import Account, TokenRecord
from cargobay.ports.packages import Grant, PackageRecord, VersionRecord


class SimpleUser(BaseModel):
    login: str
    id: int
    url: str
    html_url: str
    type: str
    site_admin: bool = False


class MinimalRepository(BaseModel):
    id: int
    name: str
    full_name: str
    private: bool
    owner: SimpleUser
    html_url: str
    url: str


class Package(BaseModel):
    id: int
    name: str
    package_type: Literal["container"] = "container"
    owner: SimpleUser
    version_count: int
    visibility: str
    url: str
    html_url: str
    created_at: datetime
    updated_at: datetime
    repository: MinimalRepository | None = None
    #: cargobay: what the newest version says, and the settings an admin can change.
    description: str | None = None
    license: str | None = None
    source_url: str | None = None
    download_count: int = 0
    inherit_access: bool = False


class ContainerMetadata(BaseModel):
    tags: list[str]
    #: cargobay: ``image``, ``index`` or ``artifact``; platform of an image; a child of an index
    #: (a platform image, or an attestation); the manifest's subject if it is a referrer.
    kind: str
    media_type: str
    platform: str | None = None
    is_child: bool = False
    attestation: bool = False
    #: Digests of the indexes that list this manifest (for a child).
    parents: list[str] = []
    subject: str | None = None
    artifact_type: str | None = None
    size: int
    download_count: int


class VersionMetadata(BaseModel):
    package_type: Literal["container"] = "container"
    container: ContainerMetadata


class PackageVersion(BaseModel):
    id: int
    name: str
    url: str
    package_html_url: str
    html_url: str
    license: str | None = None
    description: str | None = None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    metadata: VersionMetadata


class GrantOut(BaseModel):
    grantee_type: Literal["user", "team", "repository"]
    grantee: str = Field(description="login, team slug (org/team) or repository (owner/name)")
    role: Literal["read", "write", "admin"]


class Organization(BaseModel):
    login: str
    id: int
    url: str
    html_url: str
    type: Literal["Organization"] = "Organization"
    package_visibilities: list[str]
    inherit_access_default: bool


class Token(BaseModel):
    id: int
    note: str | None
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    #: Only in the response that creates it: the token itself, shown once.
    token: str | None = None


class Message(BaseModel):
    message: str
    documentation_url: str


class FieldError(BaseModel):
    resource: str
    field: str
    code: str
    message: str


class ValidationFailed(BaseModel):
    message: Literal["Validation Failed"]
    errors: list[FieldError]
    documentation_url: str


class Urls:
    """Absolute URLs of API resources and pages."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.api = f"{self.base}/api/v3"

    def user(
        self, login: str, type_: str = "User", site_admin: bool = False, id_: int = 0
    ) -> SimpleUser:
        return SimpleUser(
            login=login,
            id=id_,
            url=f"{self.api}/users/{login}",
            html_url=f"{self.base}/{login}",
            type=type_,
            site_admin=site_admin,
        )

    def account(self, account: Account) -> SimpleUser:
        return self.user(account.login, account.type, account.site_admin, account.id)

    def package_api(self, package: PackageRecord) -> str:
        name = quote(package.package_name, safe="")
        return f"{self.api}{package.owner_path}/container/{name}"

    def package_html(self, package: PackageRecord) -> str:
        return f"{self.base}{package.html_path}"

    def package(self, package: PackageRecord) -> Package:
        repository = None
        if package.repository and package.source_repository_id is not None:
            owner, _, name = package.repository.partition("/")
            repository = MinimalRepository(
                id=package.source_repository_id,
                name=name,
                full_name=package.repository,
                private=package.repository_private,
                owner=self.user(
                    owner,
                    package.repository_owner_type or "User",
                    package.repository_owner_site_admin,
                    id_=package.repository_owner_id or 0,
                ),
                html_url=f"{self.base}/{package.repository}",
                url=f"{self.api}/repos/{package.repository}",
            )
        return Package(
            id=package.id,
            name=package.package_name,
            owner=self.user(
                package.owner_login,
                package.owner_type,
                package.owner_site_admin,
                id_=package.owner_id,
            ),
            version_count=package.version_count,
            visibility=package.visibility,
            url=self.package_api(package),
            html_url=self.package_html(package),
            created_at=package.created_at,
            updated_at=package.updated_at,
            repository=repository,
            description=package.description,
            license=package.license,
            source_url=package.source_url,
            download_count=package.download_count,
            inherit_access=package.inherit_access,
        )

    def version(self, package: PackageRecord, version: VersionRecord) -> PackageVersion:
        html = self.package_html(package)
        return PackageVersion(
            id=version.id,
            name=version.digest,
            url=f"{self.package_api(package)}/versions/{version.id}",
            package_html_url=html,
            html_url=f"{html}/{version.id}",
            license=version.license,
            description=version.description,
            created_at=version.created_at,
            updated_at=version.updated_at,
            deleted_at=version.deleted_at,
            metadata=VersionMetadata(
                container=ContainerMetadata(
                    tags=list(version.tags),
                    kind=version.kind,
                    media_type=version.media_type,
                    platform=version.platform,
                    is_child=version.is_child,
                    attestation=version.attestation,
                    parents=list(version.parents),
                    subject=version.subject,
                    artifact_type=version.artifact_type if version.kind == "artifact" else None,
                    size=version.size,
                    download_count=version.download_count,
                )
            ),
        )

    def grant(self, grant: Grant) -> GrantOut:
        kind = "repository" if grant.grantee_type == "source_repository" else grant.grantee_type
        return GrantOut(grantee_type=kind, grantee=grant.grantee, role=grant.role)  # type: ignore[arg-type]

    def organization(self, org: Account) -> Organization:
        return Organization(
            login=org.login,
            id=org.id,
            url=f"{self.api}/orgs/{org.login}",
            html_url=f"{self.base}/{org.login}",
            package_visibilities=sorted(org.package_visibilities),
            inherit_access_default=org.inherit_access_default,
        )

    @staticmethod
    def token(record: TokenRecord, secret: str | None = None) -> Token:
        return Token(
            id=record.id,
            note=record.note,
            scopes=list(record.scopes),
            created_at=record.created_at,
            expires_at=record.expires_at,
            last_used_at=record.last_used_at,
            token=secret,
        )
