"""Ports: what the services need from the outside, as ``typing.Protocol`` stores, and the frozen
values those stores take and return. The services depend on these only; :mod:`cargobay.metadata`
implements them for SQLite and PostgreSQL, and :mod:`cargobay.app` wires the implementations in.
"""
