"""Metadata: the only code that writes SQL. It implements the stores :mod:`cargobay.ports`
declares."""
