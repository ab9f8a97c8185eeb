"""Package metadata from labels and annotations: precedence and limits."""

from __future__ import annotations

import json

from cargobay.oci.annotations import (
    DESCRIPTION,
    LICENSES,
    MAX_DESCRIPTION,
    MAX_LICENSES,
    SOURCE,
    PackageMetadata,
    config_labels,
    package_metadata,
)


def test_index_annotations_win_then_manifest_then_config_labels() -> None:
    index = {DESCRIPTION: "from the index"}
    manifest = {DESCRIPTION: "from the manifest", LICENSES: "MIT"}
    labels = {DESCRIPTION: "from labels", LICENSES: "Apache-2.0", SOURCE: "https://x/o/r"}
    assert package_metadata(index, manifest, labels) == PackageMetadata(
        source="https://x/o/r", description="from the index", licenses="MIT"
    )
    assert package_metadata(None, manifest, labels).description == "from the manifest"
    assert package_metadata(None, {}, labels).licenses == "Apache-2.0"
    assert package_metadata() == PackageMetadata()


def test_blank_values_are_skipped_and_long_ones_cut() -> None:
    meta = package_metadata(
        {DESCRIPTION: "   "},
        {DESCRIPTION: "d" * 600, LICENSES: "L" * 300},
    )
    assert meta.description == "d" * MAX_DESCRIPTION
    assert meta.licenses == "L" * MAX_LICENSES


def test_config_labels() -> None:
    config = {"architecture": "amd64", "config": {"Labels": {SOURCE: "s", "n": 1}}}
    assert config_labels(json.dumps(config).encode()) == {SOURCE: "s"}
    assert config_labels(b'{"config": {}}') == {}
    assert config_labels(b'{"config": {"Labels": null}}') == {}
    assert config_labels(b"not json") == {}
    assert config_labels(b"[]") == {}
