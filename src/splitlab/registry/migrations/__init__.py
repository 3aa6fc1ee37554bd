"""Alembic migrations of the registry's schema, applied by ``registry.schema.migrate``.

Every table name starts with a prefix (empty in production; tests use a unique one), passed to
each migration's ``upgrade(prefix)``. Add a migration with
``alembic -c src/splitlab/registry/migrations/alembic.ini revision -m "what"`` and write its
operations by hand; never edit a released one.
"""
