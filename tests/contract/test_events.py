"""Domain events and the outbox, on every SQL backend: an event is stored in the transaction of
the change it describes (both or neither), ids follow commit order, consumers keep cursors, and
the retention prune never drops what a consumer has not handled."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from kit import digest_of

from cargobay.errors import Conflict, ManifestBlobUnknown
from cargobay.metadata.sql import SqlMetadata
from cargobay.oci.names import RepositoryName
from cargobay.ports.events import Action, Actor, Event, EventFilter
from cargobay.services.events import EventBus, bind_actor
from cargobay.services.manifests import ManifestService
from cargobay.storage.memory import MemoryBlobStore

pytestmark = pytest.mark.anyio

APP = RepositoryName("acme/app")
ALICE = Actor(user_id=7, login="alice", token_id=3, address="203.0.113.9")


async def create_package(meta: SqlMetadata, name: str, owner_id: int) -> int:
    created = await meta.packages.create(
        name,
        owner_id=owner_id,
        visibility="private",
        inherit_access=False,
        source_repository_id=None,
        published_by_repository_id=None,
        admin_user_id=None,
    )
    return created.id


def manifest(blob: bytes, label: str = "") -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.empty.v1+json",
                "digest": digest_of(b"{}"),
                "size": 2,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": digest_of(blob),
                    "size": len(blob),
                }
            ],
            "annotations": {"label": label},
        }
    ).encode()


async def service(meta: SqlMetadata, *blobs: bytes) -> tuple[ManifestService, list[Event]]:
    for blob in (b"{}", *blobs):
        await meta.blobs.link(APP, digest_of(blob), len(blob))
    bus = EventBus()
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    for action in Action:
        bus.subscribe(action, record)
    manifests = ManifestService(
        meta.manifests, meta.repositories, MemoryBlobStore(), max_manifest_size=1 << 20, events=bus
    )
    return manifests, seen


async def all_events(meta: SqlMetadata) -> list[Event]:
    return await meta.events.search(EventFilter(), limit=1000, newest_first=False)


async def test_a_push_stores_its_events_with_the_actor(meta: SqlMetadata) -> None:
    manifests, seen = await service(meta, b"layer")
    bind_actor(ALICE)
    body = manifest(b"layer")
    await manifests.put(APP, "v1", body, None)
    stored = await all_events(meta)
    assert [e.action for e in stored] == [
        Action.PACKAGE_PUBLISHED,
        Action.VERSION_PUBLISHED,
        Action.TAG_MOVED,
    ]
    assert [e.action for e in seen] == [e.action for e in stored]  # in-process, after commit
    first = stored[1]
    assert first.actor == ALICE
    assert first.package == APP and first.digest == digest_of(body)
    assert first.package_id is not None and first.version_id is not None
    assert first.data["tag"] == "v1" and first.data["new"] is True
    ids = [e.id for e in stored]
    assert ids == sorted(ids) and len(set(ids)) == 3


async def test_pushing_again_moves_tags_and_is_not_new(meta: SqlMetadata) -> None:
    manifests, _ = await service(meta, b"one", b"two")
    one, two = manifest(b"one"), manifest(b"two")
    await manifests.put(APP, "latest", one, None)
    await manifests.put(APP, "latest", two, None)
    await manifests.put(APP, "latest", two, None)  # nothing moves
    actions = [(e.action, e.data.get("new"), e.data.get("before")) for e in await all_events(meta)]
    assert actions[3:] == [
        (Action.VERSION_PUBLISHED, True, None),
        (Action.TAG_MOVED, None, digest_of(one)),
        (Action.VERSION_PUBLISHED, False, None),
    ]


async def test_a_refused_push_stores_no_event(meta: SqlMetadata) -> None:
    manifests, seen = await service(meta)
    with pytest.raises(ManifestBlobUnknown):
        await manifests.put(APP, "v1", manifest(b"never linked"), None)
    assert await all_events(meta) == []
    assert seen == []


async def test_a_failing_event_undoes_the_change(meta: SqlMetadata) -> None:
    manifests, _ = await service(meta, b"layer")
    body = manifest(b"layer")

    def broken(_stored: object) -> list[Event]:
        raise RuntimeError("the event could not be built")

    original = meta.manifests.put

    async def put(*args: object, **kwargs: object) -> object:
        return await original(*args[:3], broken)  # type: ignore[arg-type]

    meta.manifests.put = put  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        await manifests.put(APP, "v1", body, None)
    meta.manifests.put = original  # type: ignore[method-assign]
    assert await meta.manifests.get(APP, digest_of(body)) is None
    assert await all_events(meta) == []


async def test_a_conflicting_restore_stores_no_event(meta: SqlMetadata) -> None:
    owner = await meta.accounts.create("acme", "Organization")
    first = await create_package(meta, "acme/app", owner.id)
    gone = Event(Action.PACKAGE_DELETED, ALICE, package_id=first, owner_id=owner.id)
    await meta.package_records.delete(first, [gone])
    await create_package(meta, "acme/app", owner.id)  # the name is taken again
    back = Event(Action.PACKAGE_RESTORED, ALICE, package_id=first, owner_id=owner.id)
    with pytest.raises(Conflict):
        await meta.package_records.restore(first, [back])
    assert [e.action for e in await all_events(meta)] == [Action.PACKAGE_DELETED]


async def test_events_named_by_package_get_its_id_and_owner(meta: SqlMetadata) -> None:
    owner = await meta.accounts.create("acme", "Organization")
    package_id = await create_package(meta, "acme/app", owner.id)
    await meta.events.append([Event(Action.TAG_DELETED, ALICE, package="acme/app")])
    (found,) = await meta.events.search(EventFilter(owner_id=owner.id), limit=10, newest_first=True)
    assert (found.package_id, found.owner_id) == (package_id, owner.id)
    assert found.names["namespace"] == "acme"


async def test_consumer_cursors_and_retention(meta: SqlMetadata) -> None:
    old = datetime.now(UTC) - timedelta(days=400)
    await meta.events.append(
        [Event(Action.SIGN_IN_FAILED, Actor(address="192.0.2.1"), at=old) for _ in range(3)]
    )
    await meta.events.append([Event(Action.SIGN_IN_FAILED, Actor())])
    first, second, third, fourth = [e.id or 0 for e in await all_events(meta)]
    assert await meta.events.position("webhooks") == 0
    assert [e.id for e in await meta.events.after(0, limit=2)] == [first, second]
    await meta.events.advance("webhooks", second)
    await meta.events.advance("webhooks", first)  # never moves back
    assert await meta.events.position("webhooks") == second
    # Retention keeps what the slowest consumer has not handled yet.
    assert await meta.events.prune(datetime.now(UTC) - timedelta(days=365)) == 2
    assert [e.id for e in await all_events(meta)] == [third, fourth]
    await meta.events.advance("webhooks", fourth)
    assert await meta.events.prune(datetime.now(UTC) - timedelta(days=365)) == 1
    assert [e.id for e in await all_events(meta)] == [fourth]
