"""Alembic migrations for the schema in L{postal.db.schema}."""
