"""Store tests: run against SQLite, and against PostgreSQL when POSTAL_TEST_POSTGRESQL_URL is set."""
