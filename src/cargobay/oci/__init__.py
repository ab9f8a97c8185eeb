"""Pure OCI spec code (standard library only): digests, names, media types, manifest parsing."""
