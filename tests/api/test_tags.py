"""Tag listing and the catalog (distribution-spec: Content Discovery, end-8a/8b; /v2/_catalog)."""

from __future__ import annotations

import random
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from apitest import IS_REFERENCE, OCI_MANIFEST, Registry, assert_error, describe

LINK = re.compile(r'^<([^>]+)>;\s*rel="?next"?$')


def next_link(api: Registry, resp: httpx.Response) -> httpx.URL | None:
    """The ``rel="next"`` URL of a page, or None when it has no ``Link`` header."""
    link = resp.headers.get("link")
    if link is None:
        return None
    match = LINK.match(link.strip())
    assert match, describe(resp)
    return httpx.URL(api.resolve(match.group(1)))


def tag_repo(api: Registry, repo: str, tags: list[str]) -> None:
    _, body = api.push_image(repo)
    for tag in random.sample(tags, len(tags)):
        api.push_manifest(repo, tag, body, OCI_MANIFEST)


#: Observed on Distribution 2.8.2: tags come back unsorted and ``n``/``last`` are ignored.
UNSORTED = pytest.mark.reference_deviation("2.8.2 lists tags unsorted and ignores n and last")

TAGS = ["a", "b", "b-1", "b.1", "c10", "c2", "latest", "v1", "v1.0", "z_9"]


@UNSORTED
def test_tags_are_listed_sorted(api: Registry, repo: str) -> None:
    tag_repo(api, repo, TAGS)
    resp = api.http.get(f"/v2/{repo}/tags/list")
    assert resp.status_code == 200, describe(resp)
    assert resp.headers["content-type"].startswith("application/json"), describe(resp)
    assert resp.json() == {"name": repo, "tags": sorted(TAGS)}, describe(resp)
    assert "link" not in resp.headers, describe(resp)


@UNSORTED
def test_tags_are_sorted_asciibetically_with_upper_case(api: Registry, repo: str) -> None:
    tags = ["Zeta", "alpha", "Alpha", "beta", "_x", "9"]
    tag_repo(api, repo, tags)
    listed = api.tags(repo)
    assert sorted(listed) == sorted(tags)
    # The spec allows case-insensitive or ASCII order; either is fine, but it is one of them.
    assert listed in (sorted(tags), sorted(tags, key=str.lower)), listed


@UNSORTED
def test_tag_pagination_follows_link_headers(api: Registry, repo: str) -> None:
    tag_repo(api, repo, TAGS)
    seen: list[str] = []
    url: httpx.URL | None = httpx.URL(api.resolve(f"/v2/{repo}/tags/list?n=3"))
    pages = 0
    while url is not None:
        resp = api.http.get(url)
        assert resp.status_code == 200, describe(resp)
        page = resp.json()["tags"]
        assert page, describe(resp)
        assert len(page) <= 3, describe(resp)
        seen += page
        url = next_link(api, resp)
        if url is not None:
            assert url.path == f"/v2/{repo}/tags/list", describe(resp)
            assert url.params.get("n") == "3", describe(resp)
            assert url.params.get("last") == page[-1], describe(resp)
        pages += 1
        assert pages <= len(TAGS)
    assert seen == sorted(TAGS)
    assert pages == 4


@UNSORTED
def test_tag_page_with_n_and_last(api: Registry, repo: str) -> None:
    tag_repo(api, repo, TAGS)
    resp = api.http.get(f"/v2/{repo}/tags/list", params={"n": 2, "last": "b"})
    assert resp.status_code == 200, describe(resp)
    assert resp.json() == {"name": repo, "tags": ["b-1", "b.1"]}, describe(resp)
    link = next_link(api, resp)
    assert link is not None, describe(resp)
    assert link.params.get("last") == "b.1", describe(resp)


@UNSORTED
def test_no_link_when_the_page_ends_the_list(api: Registry, repo: str) -> None:
    tag_repo(api, repo, ["a", "b", "c", "d"])
    resp = api.http.get(f"/v2/{repo}/tags/list", params={"n": 2, "last": "b"})
    assert resp.json()["tags"] == ["c", "d"], describe(resp)
    assert "link" not in resp.headers, describe(resp)
    resp = api.http.get(f"/v2/{repo}/tags/list", params={"n": 4})
    assert resp.json()["tags"] == ["a", "b", "c", "d"], describe(resp)
    assert "link" not in resp.headers, describe(resp)


@UNSORTED
def test_n_larger_than_the_list(api: Registry, repo: str) -> None:
    tag_repo(api, repo, ["a", "b"])
    resp = api.http.get(f"/v2/{repo}/tags/list", params={"n": 100})
    assert resp.status_code == 200, describe(resp)
    assert resp.json()["tags"] == ["a", "b"], describe(resp)
    assert "link" not in resp.headers, describe(resp)


@UNSORTED
def test_n_zero_is_an_empty_list_without_link(api: Registry, repo: str) -> None:
    tag_repo(api, repo, ["a", "b"])
    resp = api.http.get(f"/v2/{repo}/tags/list", params={"n": 0})
    assert resp.status_code == 200, describe(resp)
    assert resp.json()["tags"] == [], describe(resp)
    assert "link" not in resp.headers, describe(resp)


@UNSORTED
def test_last_without_n(api: Registry, repo: str) -> None:
    tag_repo(api, repo, TAGS)
    resp = api.http.get(f"/v2/{repo}/tags/list", params={"last": "latest"})
    assert resp.status_code == 200, describe(resp)
    assert resp.json()["tags"] == ["v1", "v1.0", "z_9"], describe(resp)


@UNSORTED
def test_last_after_the_end_is_empty(api: Registry, repo: str) -> None:
    tag_repo(api, repo, ["a", "b"])
    resp = api.http.get(f"/v2/{repo}/tags/list", params={"n": 5, "last": "zzz"})
    assert resp.status_code == 200, describe(resp)
    assert resp.json()["tags"] == [], describe(resp)
    assert "link" not in resp.headers, describe(resp)


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "99999999999999999999999"])
def test_malformed_n_is_a_client_error_or_ignored(api: Registry, repo: str, n: str) -> None:
    tag_repo(api, repo, ["a"])
    resp = api.http.get(f"/v2/{repo}/tags/list", params={"n": n})
    assert resp.status_code in (200, 400), describe(resp)
    if resp.status_code == 400:
        assert_error(resp, 400)


def test_unknown_repository_is_name_unknown(api: Registry, repo: str) -> None:
    assert_error(api.http.get(f"/v2/{repo}/tags/list"), 404, "NAME_UNKNOWN")


def test_tag_list_reflects_tag_moves(api: Registry, repo: str) -> None:
    api.push_image(repo, "x")
    api.push_image(repo, "x")
    api.push_image(repo, "y")
    assert api.tags(repo) == ["x", "y"]


def test_parallel_tag_pushes_are_all_listed(api: Registry, repo: str) -> None:
    _, body = api.push_image(repo)
    tags = [f"t{i:02d}" for i in range(12)]

    def push(tag: str) -> int:
        client = Registry(api.base_url, api.auth)
        try:
            return client.put_manifest(repo, tag, body, OCI_MANIFEST).status_code
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(push, tags))
    assert statuses == [201] * len(tags)
    assert sorted(api.tags(repo)) == tags


# -- catalog ------------------------------------------------------------------------------------


@pytest.fixture
def catalog_repos(api: Registry, registry: Any) -> list[str]:
    prefix = f"catalog-{uuid.uuid4().hex[:10]}"
    registry.create_namespace(prefix)  # a namespace of its own: pushes need it to exist
    names = [f"{prefix}/a", f"{prefix}/b", f"{prefix}/b/c", f"{prefix}/d", f"{prefix}/e-f"]
    for name in random.sample(names, len(names)):
        api.push_image(name, "latest")
    return sorted(names)


def catalog(api: Registry, **params: Any) -> httpx.Response:
    resp = api.http.get("/v2/_catalog", params=params)
    assert resp.status_code == 200, describe(resp)
    return resp


def test_catalog_lists_repositories_sorted(api: Registry, catalog_repos: list[str]) -> None:
    # Without n the registry picks the page size; follow the links to see everything.
    resp = catalog(api)
    repos = resp.json()["repositories"]
    url = next_link(api, resp)
    while url is not None:
        resp = api.http.get(url)
        assert resp.status_code == 200, describe(resp)
        repos += resp.json()["repositories"]
        url = next_link(api, resp)
    if not IS_REFERENCE:  # Distribution lists in directory-walk order ("a/b" before "a-c")
        assert repos == sorted(repos)
    assert [r for r in repos if r in catalog_repos] == catalog_repos


def test_catalog_pagination(api: Registry, catalog_repos: list[str]) -> None:
    prefix = catalog_repos[0].split("/")[0]
    resp = catalog(api, n=2, last=prefix)
    assert resp.json() == {"repositories": catalog_repos[:2]}, describe(resp)
    link = next_link(api, resp)
    assert link is not None, describe(resp)
    assert link.path == "/v2/_catalog", describe(resp)
    assert link.params.get("n") == "2", describe(resp)
    assert link.params.get("last") == catalog_repos[1], describe(resp)
    resp = api.http.get(link)
    assert resp.json() == {"repositories": catalog_repos[2:4]}, describe(resp)
    resp = catalog(api, n=1, last=catalog_repos[3])
    assert resp.json() == {"repositories": catalog_repos[4:5]}, describe(resp)


def test_catalog_follows_links_to_the_end(api: Registry, catalog_repos: list[str]) -> None:
    seen: list[str] = []
    url: httpx.URL | None = httpx.URL(api.resolve("/v2/_catalog?n=7"))
    while url is not None:
        resp = api.http.get(url)
        assert resp.status_code == 200, describe(resp)
        page = resp.json()["repositories"]
        assert len(page) <= 7, describe(resp)
        seen += page
        url = next_link(api, resp)
        if url is not None:
            assert page, describe(resp)
    if not IS_REFERENCE:
        assert seen == sorted(seen)
    assert len(seen) == len(set(seen))
    assert set(catalog_repos) <= set(seen)


def test_catalog_n_zero_is_empty(api: Registry, catalog_repos: list[str]) -> None:
    resp = catalog(api, n=0)
    assert resp.json()["repositories"] == [], describe(resp)
    assert "link" not in resp.headers, describe(resp)
