"""Postgres access: migrations, named queries, connection pool."""
