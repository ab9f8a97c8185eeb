"""Alembic environment: runs against the engine cargobay passes in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from cargobay.metadata.schema import metadata

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    if connection.dialect.name == "postgresql":
        # Two `cargobay migrate` at once (e.g. two replicas' deploy jobs): one waits for the
        # other, then finds the schema up to date. Released at the end of the transaction.
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7305196)")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
