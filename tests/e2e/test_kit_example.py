"""The ten-line end-to-end test of the test kit's docstring (``tests/kit/__init__.py``), run."""

from typing import Any

from kit import Oci, image


def test_a_pushed_image_is_served_back(registry: Any) -> None:
    built = image(layers=2)
    with Oci.of(registry) as oci:
        pushed = oci.push_image("e2e/hello", "v1", built)
        got = oci.get_manifest("e2e/hello", "v1")
    assert got.status_code == 200
    assert got.content == built.manifest
    assert got.headers["docker-content-digest"] == pushed.digest
