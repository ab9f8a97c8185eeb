"""Principals, access requests and the one authorize() decision."""
