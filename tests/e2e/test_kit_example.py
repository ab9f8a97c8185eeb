"""The ten-line end-to-end test of the test kit's docstring (``tests/kit/__init__.py``), run;
and the kit's other ways to push: chunked blob uploads, Docker images and their lists."""

from typing import Any

from kit import Oci, image, index, random_bytes
from kit.media import DOCKER_LIST, DOCKER_MANIFEST


def test_a_pushed_image_is_served_back(registry: Any) -> None:
    built = image(layers=2)
    with Oci.of(registry) as oci:
        pushed = oci.push_image("e2e/hello", "v1", built)
        got = oci.get_manifest("e2e/hello", "v1")
    assert got.status_code == 200
    assert got.content == built.manifest
    assert got.headers["docker-content-digest"] == pushed.digest


def test_a_blob_pushed_in_chunks_is_served_back_whole(registry: Any) -> None:
    data = random_bytes(300_000)
    with Oci.of(registry) as oci:
        digest = oci.push_blob_chunked("e2e/hello", data, chunk_size=128 * 1024)
        got = oci.get_blob("e2e/hello", digest)
    assert got.status_code == 200
    assert got.content == data


def test_a_docker_list_is_served_back_with_its_platforms(registry: Any) -> None:
    amd64 = image(media_type=DOCKER_MANIFEST)
    arm64 = image(media_type=DOCKER_MANIFEST, platform={"os": "linux", "architecture": "arm64"})
    listed = index([amd64.on("linux", "amd64"), arm64.on("linux", "arm64")], media_type=DOCKER_LIST)
    with Oci.of(registry) as oci:
        for child in (amd64, arm64):
            oci.push_image("e2e/hello", None, child)
        oci.push_image("e2e/hello", "multi", listed)
        got = oci.get_manifest("e2e/hello", "multi")
    assert got.status_code == 200
    assert got.headers["content-type"] == DOCKER_LIST
    platforms = [m["platform"]["architecture"] for m in got.json()["manifests"]]
    assert platforms == ["amd64", "arm64"]
