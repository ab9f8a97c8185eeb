"""The GitHub-compatible REST API (``/api/v3``)."""
