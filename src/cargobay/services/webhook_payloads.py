"""Webhook payloads: which events a hook gets, and the JSON it is sent.

Publishing a version is sent as GitHub sends it: a ``registry_package`` event and a
``package`` event (``action`` ``published`` for a new version, ``updated`` when a version that
existed gets pushed again with a tag), with ``package`` / ``registry_package`` holding the
``package_version`` and its container metadata (tags, media type, platform), ``sender``,
``organization`` and ``repository`` when the package is linked to one. Deletes and restores
(GitHub has no event for them) are ``cargobay_package`` events with the actions
``package_deleted``, ``package_restored``, ``version_deleted``, ``version_restored`` and
``tag_deleted``, in the same shape.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from cargobay.ports.events import Action, Event
from cargobay.ports.packages import PackageRecord, VersionRecord

#: Event types a hook may subscribe to (``*``: all of them).
EVENT_TYPES = ("registry_package", "package", "cargobay_package")
SUBSCRIBABLE = frozenset({*EVENT_TYPES, "*"})

_CARGOBAY_ACTIONS = {
    Action.PACKAGE_DELETED: "package_deleted",
    Action.PACKAGE_RESTORED: "package_restored",
    Action.VERSION_DELETED: "version_deleted",
    Action.VERSION_RESTORED: "version_restored",
    Action.TAG_DELETED: "tag_deleted",
}


def deliveries_of(event: Event) -> list[tuple[str, str]]:
    """``(event type, action)`` pairs ``event`` is sent as (none for most events)."""
    if event.action is Action.VERSION_PUBLISHED:
        if event.data.get("new"):
            return [("registry_package", "published"), ("package", "published")]
        if event.data.get("tag"):
            return [("registry_package", "updated"), ("package", "updated")]
        return []
    action = _CARGOBAY_ACTIONS.get(event.action)
    return [("cargobay_package", action)] if action else []


def wants(events: tuple[str, ...], event_type: str) -> bool:
    return "*" in events or event_type in events


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


class Payloads:
    """Builds payloads with the site's absolute URLs."""

    def __init__(self, base_url: str, registry_address: str) -> None:
        self.base = base_url.rstrip("/")
        self.api = f"{self.base}/api/v3"
        self.registry = registry_address

    def account(self, login: str | None, type_: str | None, id_: int | None) -> dict[str, Any]:
        return {
            "login": login,
            "id": id_,
            "type": type_ or "User",
            "url": f"{self.api}/users/{login}",
            "html_url": f"{self.base}/{login}",
            "site_admin": False,
        }

    def payload(
        self,
        event: Event,
        event_type: str,
        action: str,
        package: PackageRecord | None,
        version: VersionRecord | None,
    ) -> dict[str, Any]:
        namespace = event.names.get("namespace") or (package.owner_login if package else None)
        namespace_type = event.names.get("namespace_type") or (
            package.owner_type if package else None
        )
        name = (event.package or "").partition("/")[2] or (package.package_name if package else "")
        body: dict[str, Any] = {"action": action}
        key = "registry_package" if event_type == "registry_package" else "package"
        body[key] = self._package(event, namespace, namespace_type, name, package, version)
        if package is not None and package.repository and package.source_repository_id:
            body["repository"] = {
                "id": package.source_repository_id,
                "name": package.repository.partition("/")[2],
                "full_name": package.repository,
                "private": package.repository_private,
                "html_url": f"{self.base}/{package.repository}",
                "url": f"{self.api}/repos/{package.repository}",
            }
        if namespace_type == "Organization":
            body["organization"] = {
                "login": namespace,
                "id": event.owner_id,
                "url": f"{self.api}/orgs/{namespace}",
            }
        sender = event.actor.login or event.names.get("workflow_repository")
        body["sender"] = self.account(
            sender, "User" if event.actor.login else "Bot", event.actor.user_id
        )
        body["cargobay"] = {"event_id": event.id, "action": event.action.value}
        return body

    def _package(
        self,
        event: Event,
        namespace: str | None,
        namespace_type: str | None,
        name: str,
        package: PackageRecord | None,
        version: VersionRecord | None,
    ) -> dict[str, Any]:
        scope = "orgs" if namespace_type == "Organization" else "users"
        html = f"{self.base}/{scope}/{namespace}/packages/container/package/{quote(name, safe='')}"
        found: dict[str, Any] = {
            "id": event.package_id,
            "name": name,
            "namespace": namespace,
            "description": package.description if package else None,
            "ecosystem": "CONTAINER",
            "package_type": "CONTAINER",
            "html_url": html,
            "created_at": _time(package.created_at if package else None),
            "updated_at": _time(package.updated_at if package else None),
            "visibility": package.visibility if package else None,
            "owner": self.account(namespace, namespace_type, event.owner_id),
            "registry": {
                "about_url": f"{self.base}/",
                "name": "cargobay Container registry",
                "type": "docker",
                "url": f"https://{self.registry}/{namespace}",
                "vendor": "cargobay",
            },
        }
        digest = event.digest or (version.digest if version else None)
        if digest is not None or event.version_id is not None:
            tag = event.data.get("tag")
            tags = list(version.tags) if version else ([tag] if tag else [])
            reference = f"{self.registry}/{event.package}"
            found["package_version"] = {
                "id": event.version_id,
                "version": digest,
                "name": digest,
                "description": version.description if version else None,
                "html_url": f"{html}/{event.version_id}",
                "created_at": _time(version.created_at if version else None),
                "updated_at": _time(version.updated_at if version else None),
                "package_url": f"{reference}:{tag}" if tag else f"{reference}@{digest}",
                "installation_command": f"docker pull {reference}@{digest}",
                "metadata": [],
                "container_metadata": {
                    "tag": {"name": tag or "", "digest": digest},
                    "tags": tags,
                    "labels": {},
                    "manifest": {
                        "digest": digest,
                        "media_type": version.media_type
                        if version
                        else event.data.get("media_type"),
                        "kind": version.kind if version else event.data.get("kind"),
                        "platform": version.platform if version else None,
                        "size": version.size if version else None,
                    },
                },
            }
        return found
