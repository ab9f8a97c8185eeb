"""The registry's services, built together by the app."""

from __future__ import annotations

from dataclasses import dataclass

from cargobay.services.blobs import BlobService
from cargobay.services.downloads import DownloadCounter
from cargobay.services.manifests import ManifestService
from cargobay.services.quotas import QuotaService
from cargobay.services.uploads import UploadService


@dataclass(frozen=True, slots=True)
class Registry:
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    downloads: DownloadCounter
    max_page_size: int
    quotas: QuotaService | None = None
