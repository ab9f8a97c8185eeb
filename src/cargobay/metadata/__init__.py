"""Metadata: the only code that writes SQL. Protocols and value types in :mod:`.base`."""
