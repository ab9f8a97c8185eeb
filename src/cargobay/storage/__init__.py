"""Blob storage: bytes only, content-addressed. See :mod:`cargobay.storage.base`."""
